"""The closed vocabularies of the record model, as ``StrEnum`` so a typo is a NameError, not a silent
new value. Members are ``str``: records serialise to the same JSON whether a field holds a member or
the plain text, and comparisons with text keep working (``Basis.UTC == "utc"``).

What a value means is documented here once; :mod:`triage.records` names these types on its fields and
``tests/test_vocab.py`` checks that every record a test image yields keeps to them.
"""

from __future__ import annotations

from enum import StrEnum


class Basis(StrEnum):
    """How a :class:`~triage.records.Stamp`'s ``utc`` was obtained."""

    UTC = "utc"  # stored as UTC
    LOCAL = "local"  # stored as local time, converted with the machine's zone (``timezone``)
    LOCAL_YEAR_INFERRED = "local, year inferred"  # classic syslog time: local wall clock, year not written
    OFFSET = "offset"  # written with an explicit UTC offset
    LOCAL_UNCONVERTED = "local-unconverted"  # local time but no zone known: ``utc`` is empty
    UNPARSED = "unparsed"  # the value could not be read as a time (or was missing): ``utc`` is empty


class Precision(StrEnum):
    """The resolution of the value as written."""

    NS = "1ns"
    HUNDRED_NS = "100ns"
    US = "1us"
    MS = "1ms"
    S = "1s"
    MIN = "1min"
    DAY = "1d"
    UNKNOWN = "unknown"  # unparsed values


class Risk(StrEnum):
    CRITICAL = "Critical"
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"


class Confidence(StrEnum):
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"


class Kind(StrEnum):
    """What an :class:`~triage.records.Entity` is."""

    WINDOWS_TASK = "windows_task"
    CRON = "cron"
    AT = "at"
    ANACRON = "anacron"
    SYSTEMD_TIMER = "systemd_timer"
    CRON_SCRIPT = "cron_script"


class Meaning(StrEnum):
    """What a time says happened."""

    CREATED = "created"
    MODIFIED = "modified"
    ACCESSED = "accessed"
    CHANGED = "changed"
    BORN = "born"
    MFT_MODIFIED = "mft_modified"
    SI_CREATED = "si_created"
    SI_MODIFIED = "si_modified"
    SI_ACCESSED = "si_accessed"
    SI_MFT_MODIFIED = "si_mft_modified"
    FN_CREATED = "fn_created"
    FN_MODIFIED = "fn_modified"
    FN_ACCESSED = "fn_accessed"
    FN_MFT_MODIFIED = "fn_mft_modified"
    REGISTRATION_DATE = "registration_date"  # RegistrationInfo/Date (task XML, TaskCache Date value, 4698)
    REGISTERED = "registered"  # the scheduler's own registration time (TaskCache DynamicInfo, event 106)
    KEY_LAST_WRITTEN = "key_last_written"  # registry key last-write; as_written names the key
    LAST_RUN = "last_run"
    LAST_RUN_DATE = "last_run_date"
    LAST_SUCCESSFUL_RUN = "last_successful_run"
    LAST_TRIGGER = "last_trigger"
    SCHEDULED_RUN = "scheduled_run"
    TRIGGER_START = "trigger_start"
    TRIGGER_END = "trigger_end"
    GPP_ITEM_CHANGED = "gpp_item_changed"
    EVENT_LOGGED = "event_logged"  # a log line or event record's own time (EVTX, SchedLgU, syslog, cron log)
    PROCESS_CREATED = "process_created"
    PROCESS_EXITED = "process_exited"


__all__ = ["Basis", "Confidence", "Kind", "Meaning", "Precision", "Risk"]
