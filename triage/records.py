"""The one record model every source, the correlator, the timeline and every export share.

Records are plain dataclasses so parsers stay pure (no dissect or volatility import here) and
exports can serialise them with :func:`to_dict` deterministically. Every record carries a
:class:`Provenance` (where exactly it came from) and every time value is a :class:`Stamp`
(value as written, UTC value, what it means, how precise it is).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from triage.vocab import Basis, Precision


@dataclass(kw_only=True, slots=True)
class Provenance:
    """Where a record came from: evidence item, artifact kind, and the exact place inside it."""

    artifact: str  # e.g. "task_xml", "job", "gpp", "schedlgu", "taskcache", "evtx", "crontab", "memory"
    location: str  # path inside the evidence, registry key path, or log/channel name
    evidence: str | None = None  # evidence item (file or directory given on the command line)
    evidence_sha256: str | None = None
    value_name: str | None = None  # registry value name, XML element, event field
    offset: int | None = None  # byte offset in a file / record id in a log
    raw: str | None = None  # raw value (text, or hex for binary), kept for the report


@dataclass(kw_only=True, slots=True)
class Stamp:
    """One timestamp with its meaning.

    ``basis`` says how ``utc`` was obtained and ``precision`` how fine the value is: the closed
    vocabularies :class:`triage.vocab.Basis` and :class:`triage.vocab.Precision` (``utc``, ``local``,
    ``local, year inferred``, ``offset``, ``local-unconverted``, ``unparsed``); ``meaning`` is one of
    :class:`triage.vocab.Meaning`.
    """

    meaning: str  # a triage.vocab.Meaning value: created, registration_date, registered, last_run, event_logged, ...
    utc: str | None  # ISO 8601, always with a trailing "Z"; None when it cannot be known
    as_written: str | None = None  # the value exactly as the source has it
    basis: Basis = Basis.UTC
    timezone: str | None = None
    precision: Precision = Precision.S


@dataclass(kw_only=True, slots=True)
class FileFacts:
    """Facts about one file in the evidence (task XML, .job, crontab, unit file, ...)."""

    path: str
    size: int | None = None
    sha256: str | None = None
    owner: str | None = None
    mode: str | None = None  # unix permission string, when the filesystem has it
    times: list[Stamp] = field(default_factory=list)  # $SI / $FN / inode times, each with its meaning
    inode: int | None = None  # MFT record number or inode


@dataclass(kw_only=True, slots=True)
class Action:
    """One task action. ``kind``: exec, comhandler, sendemail, showmessage, unknown."""

    kind: str
    action_id: str | None = None
    command: str | None = None
    arguments: str | None = None
    working_directory: str | None = None
    class_id: str | None = None
    data: str | None = None
    resolved_dll: str | None = None  # ComHandler: InprocServer32 the CLSID resolves to
    details: dict[str, Any] = field(default_factory=dict)  # email/message fields and anything else

    @property
    def command_line(self) -> str:
        parts = [p for p in (self.command, self.arguments) if p]
        if self.kind == "comhandler":
            parts = [p for p in (self.class_id, self.resolved_dll, self.data) if p]
        return " ".join(parts)


@dataclass(kw_only=True, slots=True)
class Trigger:
    """One trigger. ``kind``: time, daily, weekly, monthly_date, monthly_dow, boot, logon, idle,
    event, registration, session_state_change, wnf, custom, unknown."""

    kind: str
    trigger_id: str | None = None
    enabled: bool | None = None
    start: Stamp | None = None
    end: Stamp | None = None
    repetition_interval: str | None = None  # ISO 8601 duration as in the XML, e.g. "PT30M"
    repetition_duration: str | None = None
    repetition_seconds: int | None = None  # interval normalised to seconds (for rules)
    delay: str | None = None
    user_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class TaskDefinition:
    """A Windows scheduled task as one source defines it (XML file, .job, GPP, 4698 content, TaskCache)."""

    task: str  # full task path, e.g. "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag"
    source: str  # task_xml, job, gpp, taskcache, evtx_4698, evtx_4702, memory_taskcache
    provenance: Provenance
    host: str | None = None
    uri: str | None = None
    author: str | None = None
    description: str | None = None
    source_attr: str | None = None  # RegistrationInfo/Source
    documentation: str | None = None
    version: str | None = None
    date: Stamp | None = None  # RegistrationInfo/Date (or .job last-run etc. in stamps)
    security_descriptor: str | None = None
    principal_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    logon_type: str | None = None
    run_level: str | None = None
    enabled: bool | None = None
    hidden: bool | None = None
    actions: list[Action] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    stamps: list[Stamp] = field(default_factory=list)  # other times (last run, created, ...)
    file: FileFacts | None = None
    details: dict[str, Any] = field(default_factory=dict)  # format-specific extras, unknown elements
    errors: list[str] = field(default_factory=list)  # parts that could not be decoded


@dataclass(kw_only=True, slots=True)
class TaskEvent:
    """One logged event about a task or task tooling (EVTX, SchedLgU.txt, syslog cron line)."""

    time: Stamp
    channel: str  # Security, Microsoft-Windows-TaskScheduler/Operational, Sysmon, SchedLgU, syslog
    event_id: int | None
    action: str  # created, updated, deleted, enabled, disabled, started, finished, process_created, ...
    provenance: Provenance
    task: str | None = None
    host: str | None = None
    user: str | None = None
    user_sid: str | None = None
    logon_id: str | None = None
    process_id: int | None = None
    command_line: str | None = None
    image: str | None = None
    parent_image: str | None = None
    result_code: str | None = None
    definition: TaskDefinition | None = None  # task rebuilt from 4698/4702 TaskContent
    fields: dict[str, Any] = field(default_factory=dict)  # the event's data fields as logged
    evidence_host: str | None = None  # set when the event's Computer is not the host of the evidence item holding it


@dataclass(kw_only=True, slots=True)
class TaskProcess:
    """A process seen in memory that the Task Scheduler hosts or started."""

    pid: int
    ppid: int | None
    name: str
    provenance: Provenance
    host: str | None = None  # the computer the memory image was taken from (its registry names it)
    command_line: str | None = None
    image_path: str | None = None
    created: Stamp | None = None
    exited: Stamp | None = None
    session: int | None = None
    user_sid: str | None = None
    ancestry: list[str] = field(default_factory=list)
    task: str | None = None  # linked task path, when known
    link_reason: str | None = None
    flags: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class UnixJob:
    """A cron line, anacron job, at job or systemd timer."""

    kind: str  # cron, anacron, cron_script, at, systemd_timer
    entry: str  # stable identity: file path plus line or unit name
    provenance: Provenance
    host: str | None = None
    user: str | None = None
    schedule: str | None = None
    command: str | None = None
    enabled: bool | None = None
    file: FileFacts | None = None
    stamps: list[Stamp] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(kw_only=True, slots=True)
class HostInfo:
    """What the evidence says about the machine."""

    hostname: str | None = None
    os: str | None = None
    timezone: str | None = None  # the time zone name as the registry / system has it
    evidence: str | None = None
    timezone_source: str | None = None  # where the zone was read (Linux: /etc/localtime, /etc/timezone, ...)


@dataclass(kw_only=True, slots=True)
class Gap:
    """Something in the evidence that could not be read: recorded, never silently dropped."""

    evidence: str
    location: str
    problem: str

    def line(self) -> str:
        where = f"{self.evidence}: {self.location}" if self.location and self.location != self.evidence else self.evidence
        return f"{where}: {self.problem}"


@dataclass(kw_only=True, slots=True)
class StoreRead:
    """One store of task evidence that was examined for a host (task folders, TaskCache, one event-log
    channel, crontabs, cron logs, memory). A claim that something is missing stands only on a store
    recorded here, and only where no gap covers it; a store never recorded was "not examined"."""

    evidence: str
    store: str  # task_files, taskcache, eventlog, crontabs, cron_logs, memory
    location: str  # folder, registry key, or log file
    host: str | None = None
    channel: str | None = None  # event logs: the channel as logged
    records: int | None = None  # event logs: records read for this host and channel
    files: list[str] = field(default_factory=list)  # files the store is made of (the SOFTWARE hive, ...)


@dataclass(kw_only=True, slots=True)
class EwfFacts:
    """An E01 checked against itself when it is opened, before anything is judged: its segment files,
    the acquisition metadata and MD5/SHA-1 the acquisition tool stored, and what the media hashes to."""

    segments: list[FileFacts] | None = None  # None: the segment files were not found
    acquisition: dict[str, str] | None = None  # header/header2 fields; None: the sections were not read
    stored_hashes: dict[str, str] | None = None  # {"md5": hex, "sha1": hex} as stored; {} none stored
    media_size: int | None = None
    computed_hashes: dict[str, str] | None = None  # of the media data, for each hash stored
    match: dict[str, bool] | None = None
    status: str  # triage.ewf: "verified", "mismatch", "no hash stored in the image", "unreadable" (last in JSON)


@dataclass(kw_only=True, slots=True)
class EvidenceRef:
    """One evidence item as opened: how, its size and hash, and for an E01 its own hashes checked."""

    path: str
    kind: str  # e01, raw, vmdk, vhdx, qcow2, kape-dir, zip, dir, evtx, memory, ...
    size: int | None = None
    sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ewf: EwfFacts | None = None  # set by triage.evidence for EWF images


@dataclass(kw_only=True, slots=True)
class TimelineEvent:
    """One point on the case timeline: what happened to which task, when, and from which record."""

    utc: str | None  # ISO 8601 Z; None when only a local time without zone is known
    what: str  # file created, XML Date, registered, key last written, last run, deleted, ...
    meaning: str  # the Stamp meaning this row came from
    task: str  # entity key (task path or unix entry)
    host: str | None
    source: str  # artifact kind: task_xml, taskcache, evtx, memory, crontab, ...
    provenance: Provenance
    precision: Precision = Precision.S
    as_written: str | None = None
    basis: Basis = Basis.UTC
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class EvidenceItem:
    """One supporting fact of a finding, exactly as a hunt report lists it."""

    source: str  # artifact: task XML file, TaskCache Tree key, Security 4698, ...
    location: str  # path, registry key (and value), log file and record id
    value: str  # the raw value that supports the finding
    time: str | None = None  # UTC ISO 8601 of the fact, when it has one
    evidence_sha256: str | None = None


@dataclass(kw_only=True, slots=True)
class Finding:
    """A hunt-report finding (Hunt ID TH-HUNTIN-<YYYYMMDD>-<SEQ>)."""

    hunt_id: str
    title: str
    technique: str  # T1053.005 / .002 / .003 / .006 (+ related ids in ``techniques``)
    host: str | None
    user: str | None
    task: str
    risk_level: str  # Critical / High / Medium / Low
    confidence: str  # High / Medium / Low
    recommended_action: str
    evidence: list[EvidenceItem] = field(default_factory=list)
    rule: str | None = None  # rule id or structural check name that raised it
    techniques: list[str] = field(default_factory=list)
    confidence_basis: str | None = None  # how the confidence was reached (sources that agree)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class Entity:
    """Everything known about one task, from every source, with its own timeline."""

    key: str  # normalised task path (Windows) or unix entry id
    task: str  # display form of the task path / entry
    kind: str  # windows_task, cron, at, anacron, systemd_timer, cron_script
    host: str | None
    sources: list[str] = field(default_factory=list)  # which sources saw it
    status: str | None = None  # e.g. "deleted, rebuilt from 4698 at ..."
    definitions: list[TaskDefinition] = field(default_factory=list)
    events: Sequence[TaskEvent] = field(default_factory=list)  # a run's: read from its store (triage.store)
    processes: list[TaskProcess] = field(default_factory=list)
    unix_jobs: list[UnixJob] = field(default_factory=list)
    guids: list[str] = field(default_factory=list)
    timeline: Sequence[TimelineEvent] = field(default_factory=list)  # a run's: read from its store


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}  # per type: its dataclass field names, None for other types


def to_dict(obj: Any) -> Any:
    """Serialise records to plain JSON-able values, dropping None so outputs stay readable.

    Field order is the dataclass order, so the same input always gives the same bytes. Field names are
    looked up once per type: every export serialises every record through here.
    """
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind not in _FIELD_NAMES:
        is_record = dataclasses.is_dataclass(obj) and not isinstance(obj, type)
        _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(obj)) if is_record else None
    names = _FIELD_NAMES[kind]
    if names is not None:
        out = {}
        for name in names:
            value = to_dict(getattr(obj, name))
            if value is None or value == [] or value == {}:
                continue
            out[name] = value
        return out
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj
