"""Encoder for legacy Task Scheduler 1.0 ``.job`` files (MS-TSCH ".JOB File Format").

Layout: a 68-byte fixed section, then the variable section (running instance count, five
counted UTF-16 strings, user data, 8 reserved bytes, the trigger array). The optional job
signature is not written, as at.exe jobs created through NetScheduleJobAdd carry none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from dissect.cstruct import cstruct

JOB_DEF = """
struct SYSTEMTIME {
    uint16 year; uint16 month; uint16 weekday; uint16 day;
    uint16 hour; uint16 minute; uint16 second; uint16 millisecond;
};

struct FIXED_SECTION {
    uint16     product_version;
    uint16     file_version;
    char       job_uuid[16];
    uint16     app_name_len_offset;
    uint16     triggers_offset;
    uint16     error_retry_count;
    uint16     error_retry_interval;
    uint16     idle_deadline;
    uint16     idle_wait;
    uint32     priority;
    uint32     maximum_run_time;
    uint32     exit_code;
    uint32     status;
    uint32     flags;
    SYSTEMTIME last_run_time;
};

struct TRIGGER {
    uint16 trigger_size;
    uint16 reserved1;
    uint16 begin_year;
    uint16 begin_month;
    uint16 begin_day;
    uint16 end_year;
    uint16 end_month;
    uint16 end_day;
    uint16 start_hour;
    uint16 start_minute;
    uint32 minutes_duration;
    uint32 minutes_interval;
    uint32 flags;
    uint32 trigger_type;
    uint16 type_specific[3];
    uint16 padding;
    uint16 reserved2;
    uint16 reserved3;
};
"""
c_job = cstruct().load(JOB_DEF)

# MS-TSCH trigger types
ONCE, DAILY, WEEKLY, MONTHLYDATE, MONTHLYDOW, ON_IDLE, AT_SYSTEMSTART, AT_LOGON = range(8)
TRIGGER_TYPE_NAMES = ("ONCE", "DAILY", "WEEKLY", "MONTHLYDATE", "MONTHLYDOW", "ON_IDLE", "AT_SYSTEMSTART", "AT_LOGON")

STATUS_READY, STATUS_RUNNING, STATUS_HAS_NOT_RUN = 0x41300, 0x41301, 0x41303
PRIORITY_NORMAL = 0x20
TRIGGER_HAS_END_DATE = 0x1
FIXED_SIZE = 0x44


@dataclass(frozen=True)
class JobTrigger:
    """One 48-byte trigger; ``type_specific`` are the three type-dependent words (see MS-TSCH)."""

    trigger_type: int
    begin: datetime  # local date and start time as the user typed it
    end: datetime | None = None
    minutes_duration: int = 0
    minutes_interval: int = 0
    type_specific: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class AtJob:
    """Everything a .job file holds. Times are local wall-clock times, as Task Scheduler 1.0 stores them."""

    job_uuid: uuid.UUID
    application: str
    parameters: str
    working_directory: str
    author: str
    comment: str
    triggers: tuple[JobTrigger, ...]
    last_run: datetime | None
    product_version: int = 0x0A00
    exit_code: int = 0
    status: int = STATUS_READY
    flags: int = 0
    maximum_run_time_ms: int = 72 * 3600 * 1000
    idle_deadline: int = 60
    idle_wait: int = 10
    reserved: tuple[int, int] = field(default=(0, 0))  # start error HRESULT, task flags


def _counted(text: str) -> bytes:
    """u16 character count including the terminator, then UTF-16LE; an empty string is count 0."""
    if not text:
        return b"\0\0"
    encoded = (text + "\0").encode("utf-16-le")
    return (len(encoded) // 2).to_bytes(2, "little") + encoded


def _systemtime(moment: datetime | None) -> dict:
    if moment is None:
        return dict(year=0, month=0, weekday=0, day=0, hour=0, minute=0, second=0, millisecond=0)
    return dict(
        year=moment.year, month=moment.month, weekday=(moment.weekday() + 1) % 7, day=moment.day,
        hour=moment.hour, minute=moment.minute, second=moment.second, millisecond=moment.microsecond // 1000,
    )


def encode_trigger(index: int, trigger: JobTrigger) -> bytes:
    end = trigger.end
    return c_job.TRIGGER(
        trigger_size=0x30,
        reserved1=index,
        begin_year=trigger.begin.year, begin_month=trigger.begin.month, begin_day=trigger.begin.day,
        end_year=end.year if end else 0, end_month=end.month if end else 0, end_day=end.day if end else 0,
        start_hour=trigger.begin.hour, start_minute=trigger.begin.minute,
        minutes_duration=trigger.minutes_duration, minutes_interval=trigger.minutes_interval,
        flags=TRIGGER_HAS_END_DATE if end else 0,
        trigger_type=trigger.trigger_type,
        type_specific=list(trigger.type_specific),
        padding=0, reserved2=0, reserved3=0,
    ).dumps()


def encode_job(job: AtJob) -> bytes:
    """The .job file bytes for ``job``."""
    variable = b"\0\0"  # running instance count
    variable += b"".join(
        _counted(text) for text in (job.application, job.parameters, job.working_directory, job.author, job.comment)
    )
    variable += b"\0\0"  # user data size
    variable += (8).to_bytes(2, "little") + job.reserved[0].to_bytes(4, "little") + job.reserved[1].to_bytes(4, "little")
    triggers_offset = FIXED_SIZE + len(variable)
    variable += len(job.triggers).to_bytes(2, "little")
    variable += b"".join(encode_trigger(i, trigger) for i, trigger in enumerate(job.triggers))
    fixed = c_job.FIXED_SECTION(
        product_version=job.product_version,
        file_version=1,
        job_uuid=job.job_uuid.bytes_le,
        app_name_len_offset=FIXED_SIZE + 2,
        triggers_offset=triggers_offset,
        error_retry_count=0,
        error_retry_interval=0,
        idle_deadline=job.idle_deadline,
        idle_wait=job.idle_wait,
        priority=PRIORITY_NORMAL,
        maximum_run_time=job.maximum_run_time_ms,
        exit_code=job.exit_code,
        status=job.status,
        flags=job.flags,
        last_run_time=c_job.SYSTEMTIME(**_systemtime(job.last_run)),
    ).dumps()
    assert len(fixed) == FIXED_SIZE
    return fixed + variable
