"""Task Scheduler 1.0 ``.job`` files (at.exe jobs and the ``%windir%\\Tasks`` compatibility copies).

Layout: MS-TSCH ".JOB File Format" (fixed section 68 bytes, variable section, 48-byte triggers,
optional job signature), cross-checked with libyal dtformats and the real samples in the corpus.
Unlike dissect, every trigger type is decoded (ONCE, boot, logon and idle included) and status,
exit code, job UUID, product version and signature are kept. A truncated file gives what could be
read plus ``errors``.

Raises only :class:`JobError`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, tzinfo

from dissect.cstruct import cstruct

from triage.parsers import ParseError
from triage.records import Action, Provenance, Stamp, TaskDefinition, Trigger
from triage.timeutil import local_stamp
from triage.vocab import Basis, Precision


class JobError(ParseError):
    """The bytes are not a .job file (shorter than the fixed section)."""


_JOB_DEF = """
struct SYSTEMTIME {
    uint16  year;
    uint16  month;
    uint16  weekday;
    uint16  day;
    uint16  hour;
    uint16  minute;
    uint16  second;
    uint16  millisecond;
};

struct JOB_FIXED {
    uint16      product_version;        /* 0x00 */
    uint16      format_version;         /* 0x02 */
    char        job_uuid[16];           /* 0x04 */
    uint16      app_name_offset;        /* 0x14 */
    uint16      triggers_offset;        /* 0x16 */
    uint16      error_retry_count;      /* 0x18 */
    uint16      error_retry_interval;   /* 0x1a minutes */
    uint16      idle_deadline;          /* 0x1c minutes */
    uint16      idle_wait;              /* 0x1e minutes */
    uint32      priority;               /* 0x20 */
    uint32      max_run_time;           /* 0x24 milliseconds */
    uint32      exit_code;              /* 0x28 */
    uint32      status;                 /* 0x2c */
    uint32      flags;                  /* 0x30 */
    SYSTEMTIME  last_run;               /* 0x34 local time */
};

struct JOB_TRIGGER {
    uint16  size;
    uint16  reserved1;
    uint16  begin_year;
    uint16  begin_month;
    uint16  begin_day;
    uint16  end_year;
    uint16  end_month;
    uint16  end_day;
    uint16  start_hour;
    uint16  start_minute;
    uint32  minutes_duration;
    uint32  minutes_interval;
    uint32  flags;
    uint32  trigger_type;
    uint16  type_specific0;
    uint16  type_specific1;
    uint16  type_specific2;
    uint16  padding;
    uint16  reserved2;
    uint16  reserved3;
};
"""
_C = cstruct().load(_JOB_DEF)
FIXED_SIZE = len(_C.JOB_FIXED)
TRIGGER_SIZE = len(_C.JOB_TRIGGER)
# The count field is 16 bits; Windows writes a handful. Decoding 65,535 crafted triggers would take
# seconds, so past this many the rest are kept as raw hex and flagged (time bounded, nothing dropped).
MAX_DECODED_TRIGGERS = 1024

PRODUCT_VERSIONS = {
    0x0400: "Windows NT 4.0", 0x0500: "Windows 2000", 0x0501: "Windows XP", 0x0502: "Windows Server 2003",
    0x0600: "Windows Vista", 0x0601: "Windows 7", 0x0602: "Windows 8", 0x0603: "Windows 8.1", 0x0A00: "Windows 10",
}
STATUS_NAMES = {
    0x00041300: "ready", 0x00041301: "running", 0x00041302: "disabled", 0x00041303: "has not run",
    0x00041304: "no more runs", 0x00041305: "not scheduled", 0x00041306: "terminated",
    0x00041307: "no valid triggers", 0x00041308: "event trigger",
}
# MS-TSCH numbers bits from the most significant end; these are the little-endian values.
JOB_FLAGS = {
    0x1: "interactive", 0x2: "delete_when_done", 0x4: "disabled", 0x10: "start_only_if_idle",
    0x20: "kill_on_idle_end", 0x40: "dont_start_if_on_batteries", 0x80: "kill_if_going_on_batteries",
    0x100: "run_only_if_docked", 0x200: "hidden", 0x400: "run_if_connected_to_internet",
    0x800: "restart_on_idle_resume", 0x1000: "system_required", 0x2000: "run_only_if_logged_on",
    0x1000000: "application_name_set",
}
# Win32 priority-class constants (MS-TSCH agrees; libyal's table swaps idle and high).
PRIORITIES = {0x20: "normal", 0x40: "idle", 0x80: "high", 0x100: "realtime"}
TRIGGER_TYPES = {
    0: ("ONCE", "time"), 1: ("DAILY", "daily"), 2: ("WEEKLY", "weekly"), 3: ("MONTHLYDATE", "monthly_date"),
    4: ("MONTHLYDOW", "monthly_dow"), 5: ("ON_IDLE", "idle"), 6: ("AT_SYSTEMSTART", "boot"), 7: ("AT_LOGON", "logon"),
}
TRIGGER_FLAGS = {0x1: "has_end_date", 0x2: "kill_at_duration_end", 0x4: "disabled"}
DAYS_OF_WEEK = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKS_OF_MONTH = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "last"}


def parse_job(data: bytes, *, task: str, provenance: Provenance, local_tz: tzinfo | None) -> TaskDefinition:
    """Decode one .job file; what cannot be read is listed in ``errors``."""
    try:
        return _parse(bytes(data), task, provenance, local_tz)
    except JobError:
        raise
    except Exception as exc:  # the contract is one error type, whatever the input
        raise JobError(f"unreadable .job file: {type(exc).__name__}: {exc}") from exc


def _parse(data: bytes, task: str, provenance: Provenance, local_tz: tzinfo | None) -> TaskDefinition:
    if len(data) < FIXED_SIZE:
        raise JobError(f".job file is {len(data)} bytes, shorter than the {FIXED_SIZE}-byte fixed section")
    fixed = _C.JOB_FIXED(data[:FIXED_SIZE])
    definition = TaskDefinition(task=task, source="job", provenance=provenance)
    errors = definition.errors
    details = definition.details
    details["product_version"] = f"0x{fixed.product_version:04x}"
    if fixed.product_version in PRODUCT_VERSIONS:
        details["product_version_name"] = PRODUCT_VERSIONS[fixed.product_version]
    details["format_version"] = fixed.format_version
    if fixed.format_version != 1:
        errors.append(f"format version is {fixed.format_version}, expected 1")
    details["job_uuid"] = str(uuid.UUID(bytes_le=bytes(fixed.job_uuid)))
    details["status"] = f"0x{fixed.status:08x}"
    details["status_name"] = STATUS_NAMES.get(fixed.status, "unknown")
    details["exit_code"] = fixed.exit_code
    details["flags"] = f"0x{fixed.flags:08x}"
    details["flag_names"] = _flag_names(fixed.flags, JOB_FLAGS)

    definition.enabled = not fixed.flags & 0x4
    definition.hidden = bool(fixed.flags & 0x200)
    definition.settings = {
        "error_retry_count": fixed.error_retry_count,
        "error_retry_interval_minutes": fixed.error_retry_interval,
        "idle_deadline_minutes": fixed.idle_deadline,
        "idle_wait_minutes": fixed.idle_wait,
        "priority": f"0x{fixed.priority:08x}",
        "priority_name": _flag_names(fixed.priority, PRIORITIES) or ["unknown"],
        "max_run_time_ms": fixed.max_run_time,
    }
    last_run = _systemtime_stamp(fixed.last_run, "last_run", local_tz, errors)
    if last_run:
        definition.stamps.append(last_run)

    reader = _Reader(data, FIXED_SIZE)
    try:
        details["running_instance_count"] = reader.u16()
        if fixed.app_name_offset != reader.offset:
            errors.append(f"application name offset is 0x{fixed.app_name_offset:x}, the field is at 0x{reader.offset:x}")
        command = reader.unicode("application name")
        arguments = reader.unicode("parameters")
        working_directory = reader.unicode("working directory")
        definition.actions.append(Action(kind="exec", command=command, arguments=arguments,
                                         working_directory=working_directory))
        definition.author = reader.unicode("author")
        definition.description = reader.unicode("comment")
        user_data = reader.take(reader.u16(), "user data")
        if user_data:
            details["user_data"] = user_data.hex()
        reserved_size = reader.u16()
        if reserved_size:
            reserved = reader.take(reserved_size, "reserved data")
            if reserved_size >= 8:
                details["start_error"] = f"0x{int.from_bytes(reserved[:4], 'little'):08x}"
                details["reserved_task_flags"] = f"0x{int.from_bytes(reserved[4:8], 'little'):08x}"
        if fixed.triggers_offset != reader.offset:
            errors.append(f"triggers offset is 0x{fixed.triggers_offset:x}, the trigger count is at 0x{reader.offset:x}")
        count = reader.u16()
        details["trigger_count"] = count
        for index in range(min(count, MAX_DECODED_TRIGGERS)):
            raw = reader.take(TRIGGER_SIZE, f"trigger {index + 1} of {count}")
            definition.triggers.append(_trigger(_C.JOB_TRIGGER(raw), index, local_tz, errors))
        if count > MAX_DECODED_TRIGGERS:
            start = reader.offset
            skipped = reader.take((count - MAX_DECODED_TRIGGERS) * TRIGGER_SIZE, f"triggers {MAX_DECODED_TRIGGERS + 1}-{count}")
            details["undecoded_triggers"] = skipped.hex()
            errors.append(f"trigger count is {count}: only the first {MAX_DECODED_TRIGGERS} are decoded, the other "
                          f"{count - MAX_DECODED_TRIGGERS} (0x{start:x}-0x{reader.offset:x}) are kept as hex")
        _read_signature(reader, details, errors)
    except _Truncated as exc:
        errors.append(str(exc))
    return definition


class _Truncated(Exception):
    pass


class _Reader:
    """Sequential little-endian reader over the variable section that reports truncation by field name."""

    def __init__(self, data: bytes, offset: int):
        self.data = data
        self.offset = offset

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise _Truncated(f"file ends at 0x{len(self.data):x} inside the {what} (0x{self.offset:x}, {size} bytes)")
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    def u16(self) -> int:
        return int.from_bytes(self.take(2, "16-bit count"), "little")

    def unicode(self, what: str) -> str:
        """u16 character count (terminator included) + UTF-16LE text."""
        count = self.u16()
        raw = self.take(count * 2, what)
        return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]

    def remaining(self) -> int:
        return len(self.data) - self.offset


def _read_signature(reader: _Reader, details: dict, errors: list[str]) -> None:
    """Optional job signature: u16 signature version, u16 minimum client version, 64 bytes."""
    left = reader.remaining()
    if left == 0:
        return
    if left < 68:
        details["trailing_bytes"] = reader.take(left, "trailing data").hex()
        errors.append(f"{left} trailing bytes after the triggers are not a job signature")
        return
    details["signature_version"] = reader.u16()
    details["signature_min_client_version"] = reader.u16()
    details["signature"] = reader.take(64, "job signature").hex()
    if reader.remaining():
        details["trailing_bytes"] = reader.take(reader.remaining(), "trailing data").hex()


def _trigger(raw, index: int, local_tz: tzinfo | None, errors: list[str]) -> Trigger:
    type_name, kind = TRIGGER_TYPES.get(raw.trigger_type, (f"0x{raw.trigger_type:x}", "unknown"))
    if kind == "unknown":
        errors.append(f"trigger {index + 1}: unknown trigger type {raw.trigger_type}")
    details: dict = {
        "job_trigger_type": type_name,
        "flags": f"0x{raw.flags:08x}",
        "flag_names": _flag_names(raw.flags, TRIGGER_FLAGS),
        "duration_minutes": raw.minutes_duration,
        "interval_minutes": raw.minutes_interval,
        "type_specific": [raw.type_specific0, raw.type_specific1, raw.type_specific2],
    }
    if raw.size != TRIGGER_SIZE:
        errors.append(f"trigger {index + 1}: size field is {raw.size}, expected {TRIGGER_SIZE}")
    if raw.reserved1 or raw.padding or raw.reserved2 or raw.reserved3:
        details["reserved"] = [raw.reserved1, raw.padding, raw.reserved2, raw.reserved3]
    trigger = Trigger(kind=kind, enabled=not raw.flags & 0x4, details=details)
    trigger.start = _date_stamp(raw.begin_year, raw.begin_month, raw.begin_day, raw.start_hour, raw.start_minute,
                                "trigger_start", local_tz, errors, index)
    if raw.flags & 0x1:
        trigger.end = _date_stamp(raw.end_year, raw.end_month, raw.end_day, None, None, "trigger_end", local_tz,
                                  errors, index)
    if raw.minutes_interval:
        trigger.repetition_interval = _iso_minutes(raw.minutes_interval)
        trigger.repetition_seconds = raw.minutes_interval * 60
    if raw.minutes_duration:
        trigger.repetition_duration = _iso_minutes(raw.minutes_duration)
    if kind == "daily":
        details["days_interval"] = raw.type_specific0
    elif kind == "weekly":
        details["weeks_interval"] = raw.type_specific0
        details["days_of_week"] = _bits(raw.type_specific1, DAYS_OF_WEEK)
    elif kind == "monthly_date":
        day_bits = raw.type_specific0 | (raw.type_specific1 << 16)
        details["days_of_month"] = [day + 1 for day in range(31) if day_bits & (1 << day)]
        details["months"] = _bits(raw.type_specific2, MONTHS)
    elif kind == "monthly_dow":
        details["week_of_month"] = WEEKS_OF_MONTH.get(raw.type_specific0, f"unknown ({raw.type_specific0})")
        details["days_of_week"] = _bits(raw.type_specific1, DAYS_OF_WEEK)
        details["months"] = _bits(raw.type_specific2, MONTHS)
    return trigger


def _systemtime_stamp(value, meaning: str, local_tz: tzinfo | None, errors: list[str]) -> Stamp | None:
    """SYSTEMTIME in local time; all zero means never."""
    fields = (value.year, value.month, value.day, value.hour, value.minute, value.second, value.millisecond)
    if not any(fields):
        return None
    written = (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
               f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.millisecond:03d}")
    try:
        naive = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                         value.millisecond * 1000)
    except ValueError:
        errors.append(f"{meaning} SYSTEMTIME {written} is not a valid date")
        return Stamp(meaning=meaning, utc=None, as_written=written, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
    return local_stamp(naive, meaning, written, local_tz, precision=Precision.MS)


def _date_stamp(year: int, month: int, day: int, hour: int | None, minute: int | None, meaning: str,
                local_tz: tzinfo | None, errors: list[str], index: int) -> Stamp | None:
    if not (year or month or day):
        return None
    written = f"{year:04d}-{month:02d}-{day:02d}"
    if hour is not None:
        written += f" {hour:02d}:{minute:02d}"
    try:
        naive = datetime(year, month, day, hour or 0, minute or 0)
    except ValueError:
        errors.append(f"trigger {index + 1}: {meaning} {written} is not a valid date")
        return Stamp(meaning=meaning, utc=None, as_written=written, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
    return local_stamp(naive, meaning, written, local_tz, precision=Precision.MIN if hour is not None else Precision.DAY)


def _iso_minutes(minutes: int) -> str:
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    if hours or mins:
        text += "T" + (f"{hours}H" if hours else "") + (f"{mins}M" if mins else "")
    return text


def _bits(value: int, names: tuple[str, ...]) -> list[str]:
    return [name for bit, name in enumerate(names) if value & (1 << bit)]


def _flag_names(value: int, names: dict[int, str]) -> list[str]:
    out = [name for bit, name in names.items() if value & bit]
    unknown = value & ~sum(names)
    if unknown:
        out.append(f"unknown_0x{unknown:08x}")
    return out
