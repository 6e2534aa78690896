""".job parser against the two real .job files in the corpus and files built with the test-image encoder."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_images.jobfile import (
    AT_LOGON, AT_SYSTEMSTART, DAILY, MONTHLYDATE, MONTHLYDOW, ON_IDLE, ONCE, STATUS_HAS_NOT_RUN, WEEKLY, AtJob,
    JobTrigger, encode_job,
)
from triage.parsers.job import JobError, parse_job
from triage.records import Provenance
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

AT_TASK = CORPUS / "fox-it__dissect.target" / "tests" / "_data" / "plugins" / "os" / "windows" / "tasks" / "AtTask.job"
WINTASK = CORPUS / "log2timeline__plaso" / "test_data" / "wintask.job"
NEW_YORK = ZoneInfo("America/New_York")


def parse(data: bytes, tz=NEW_YORK):
    return parse_job(data, task="\\At1", provenance=Provenance(artifact="job", location="At1.job"), local_tz=tz)


def every_trigger_job(**changes) -> AtJob:
    begin = datetime(2024, 7, 1, 3, 15)
    values = dict(
        job_uuid=uuid.UUID("12345678-1234-5678-9abc-def012345678"),
        application="C:\\Windows\\System32\\cmd.exe", parameters="/c C:\\Users\\Public\\run.bat",
        working_directory="C:\\Users\\Public", author="CORP\\mallory", comment="at job",
        triggers=(
            JobTrigger(ONCE, begin),
            JobTrigger(DAILY, begin, end=datetime(2024, 12, 31), minutes_duration=1440, minutes_interval=90, type_specific=(3, 0, 0)),
            JobTrigger(WEEKLY, begin, type_specific=(2, 0x2A, 0)),
            JobTrigger(MONTHLYDATE, begin, type_specific=(0x0001, 0x4000, 0x0801)),
            JobTrigger(MONTHLYDOW, begin, type_specific=(5, 0x41, 0x0FFF)),
            JobTrigger(ON_IDLE, begin),
            JobTrigger(AT_SYSTEMSTART, begin),
            JobTrigger(AT_LOGON, begin),
        ),
        last_run=datetime(2024, 7, 2, 3, 15, 0, 250000),
        exit_code=0xC000013A, status=STATUS_HAS_NOT_RUN, flags=0x200 | 0x4,
    )
    values.update(changes)
    return AtJob(**values)


def test_dissect_attask_job_values():
    d = parse(AT_TASK.read_bytes(), tz=ZoneInfo("UTC"))
    # PROVENANCE.md: author user1, comment, NOTEPAD.EXE in C:\Documents and Settings\John,
    # last run 2023-05-21T10:44:25.794 (dissect stamped it with UTC), enabled, 4 triggers.
    assert (d.author, d.description) == ("user1", "At job task for testing purposes")
    assert [(a.command, a.working_directory) for a in d.actions] == [("C:\\WINDOWS\\NOTEPAD.EXE", "C:\\Documents and Settings\\John")]
    assert [(s.meaning, s.as_written, s.utc) for s in d.stamps] == [("last_run", "2023-05-21 10:44:25.794", "2023-05-21T10:44:25.794000Z")]
    assert d.enabled is True and d.hidden is False
    assert [t.kind for t in d.triggers] == ["daily", "monthly_dow", "weekly", "monthly_date"]
    assert d.triggers[2].details["days_of_week"] == ["Monday", "Wednesday", "Friday"]
    assert d.triggers[3].details["days_of_month"] == [15]
    assert d.triggers[3].details["months"] == ["March", "May", "June", "July", "August", "October"]
    assert (d.details["product_version_name"], d.details["status_name"], d.details["job_uuid"]) == (
        "Windows XP", "ready", "92528912-0afb-48d0-a97e-fd9bad9e90df")
    assert d.errors == []


def test_plaso_google_update_job_values():
    d = parse(WINTASK.read_bytes())
    # PROVENANCE.md: author Brian, GoogleUpdate.exe /ua /installsource scheduler, last run 2013-08-24 12:42:00.112, 1 trigger.
    assert d.author == "Brian"
    assert d.description.startswith("Keeps your Google software up to date. If this task is disabled or stopped, your Google software will not be kept up to ")
    assert [(a.command, a.arguments) for a in d.actions] == [
        ("C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe", "/ua /installsource scheduler")]
    last_run = d.stamps[0]
    # Local time in New York (EDT, UTC-4) on 2013-08-24.
    assert (last_run.as_written, last_run.utc, last_run.basis) == ("2013-08-24 12:42:00.112", "2013-08-24T16:42:00.112000Z", "local")
    assert len(d.triggers) == 1 and d.triggers[0].kind == "daily"
    assert (d.triggers[0].repetition_interval, d.triggers[0].repetition_seconds, d.triggers[0].repetition_duration) == ("PT1H", 3600, "P1D")
    assert d.details["product_version_name"] == "Windows 7"


def test_every_trigger_type_is_decoded():
    d = parse(encode_job(every_trigger_job()))
    assert d.errors == []
    assert [t.details["job_trigger_type"] for t in d.triggers] == [
        "ONCE", "DAILY", "WEEKLY", "MONTHLYDATE", "MONTHLYDOW", "ON_IDLE", "AT_SYSTEMSTART", "AT_LOGON"]
    assert [t.kind for t in d.triggers] == ["time", "daily", "weekly", "monthly_date", "monthly_dow", "idle", "boot", "logon"]
    once = d.triggers[0]
    assert (once.start.as_written, once.start.utc, once.end) == ("2024-07-01 03:15", "2024-07-01T07:15:00Z", None)
    daily = d.triggers[1]
    assert (daily.details["days_interval"], daily.end.as_written, daily.end.utc) == (3, "2024-12-31", "2024-12-31T05:00:00Z")
    assert (daily.repetition_interval, daily.repetition_seconds, daily.repetition_duration) == ("PT1H30M", 5400, "P1D")
    assert (d.triggers[2].details["weeks_interval"], d.triggers[2].details["days_of_week"]) == (2, ["Monday", "Wednesday", "Friday"])
    assert d.triggers[3].details["days_of_month"] == [1, 31]
    assert d.triggers[3].details["months"] == ["January", "December"]
    dow = d.triggers[4].details
    assert (dow["week_of_month"], dow["days_of_week"], len(dow["months"])) == ("last", ["Sunday", "Saturday"], 12)


def test_status_exit_code_uuid_and_flags_are_named():
    d = parse(encode_job(every_trigger_job()))
    assert (d.details["status"], d.details["status_name"]) == ("0x00041303", "has not run")
    assert d.details["exit_code"] == 0xC000013A
    assert d.details["job_uuid"] == "12345678-1234-5678-9abc-def012345678"
    assert (d.details["product_version"], d.details["product_version_name"]) == ("0x0a00", "Windows 10")
    assert d.details["flag_names"] == ["disabled", "hidden"]
    assert (d.enabled, d.hidden) == (False, True)
    assert d.settings["priority_name"] == ["normal"] and d.settings["max_run_time_ms"] == 72 * 3600 * 1000
    assert [(s.as_written, s.utc) for s in d.stamps] == [("2024-07-02 03:15:00.250", "2024-07-02T07:15:00.250000Z")]


def test_never_run_job_has_no_last_run_and_no_zone_keeps_local_time():
    d = parse(encode_job(every_trigger_job(last_run=None)), tz=None)
    assert d.stamps == []
    assert (d.triggers[0].start.utc, d.triggers[0].start.basis) == (None, "local-unconverted")


def test_job_signature_is_kept():
    signed = encode_job(every_trigger_job()) + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + bytes(range(64))
    d = parse(signed)
    assert (d.details["signature_version"], d.details["signature_min_client_version"]) == (1, 1)
    assert d.details["signature"] == bytes(range(64)).hex()
    assert d.errors == []


def test_truncated_job_gives_partial_decode_with_errors():
    data = encode_job(every_trigger_job())
    d = parse(data[: len(data) - 100])
    assert d.author == "CORP\\mallory"
    assert len(d.triggers) == 5
    # 8 triggers of 48 bytes end the file; cutting 100 bytes leaves 5 whole ones and 44 bytes of the 6th.
    assert d.errors == [f"file ends at 0x{len(data) - 100:x} inside the trigger 6 of 8 (0x{len(data) - 3 * 48:x}, 48 bytes)"]


def test_shorter_than_fixed_section_raises_job_error():
    with pytest.raises(JobError, match="shorter than the 68-byte fixed section"):
        parse(b"\x01\x05" * 10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_raise_only_job_error(data):
    try:
        parse(data)
    except JobError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=700), st.binary(min_size=1, max_size=8))
def test_corrupted_real_job_never_raises_anything_else(position, junk):
    data = bytearray(AT_TASK.read_bytes())
    data[position:position + len(junk)] = junk
    try:
        parse(bytes(data))
    except JobError:
        pass
