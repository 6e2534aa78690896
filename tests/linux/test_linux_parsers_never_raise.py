"""The Unix parsers take any text and only ever raise their one documented error."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.parsers.anacrontab import AnacrontabError, parse_anacrontab, parse_stamp
from triage.parsers.atjob import parse_at_job
from triage.parsers.cronlog import parse_log
from triage.parsers.crontab import CrontabError, next_run, parse_crontab
from triage.parsers.systemd_unit import SystemdUnitError, next_elapse, parse_timespan, parse_unit

LINES = st.lists(st.one_of(
    st.text(max_size=40),
    st.sampled_from(["@reboot x", "*/5 * * * * root y", "A=b", "[Timer]", "OnCalendar=*:0/15", "x \\",
                     "Feb 29 01:02:03 h CRON[1]: (u) CMD (c)", "1 5 id cmd", "# atrun uid=1 gid=2",
                     "${SHELL:-/bin/sh} << 'marcinDELIMITER1'", "cd / || {", "}", "5-1 * * * *", "٣ * * * * z"]),
), max_size=12).map("\n".join)
SCHEDULE = st.one_of(st.text(max_size=20), st.lists(st.sampled_from(["*", "*/0", "1-5", "5-1", "7", "mon", "a", "1,2/3", "99", "²"]), max_size=6).map(" ".join))
START = datetime(2024, 3, 14, tzinfo=timezone.utc)
BERLIN = ZoneInfo("Europe/Berlin")


@settings(max_examples=150, deadline=None)
@given(LINES)
def test_text_parsers_never_raise(text):
    parse_crontab(text, "/c", user_column=True)
    parse_crontab(text, "/c", user_column=False, owner="u")
    parse_anacrontab(text, "/a")
    parse_unit(text, "x.timer", "/u")
    parse_log(text, "/l", channel="syslog", mtime=START, tz=BERLIN)
    parse_at_job("a0000101b2feb6", text.encode("utf-8", "surrogatepass"), "/j", executable=True)


@settings(max_examples=150, deadline=None)
@given(SCHEDULE)
def test_schedules_raise_only_their_error(schedule):
    for call, error in ((lambda: next_run(schedule, START, BERLIN), CrontabError),
                        (lambda: next_elapse(schedule, START, BERLIN), SystemdUnitError),
                        (lambda: parse_timespan(schedule), SystemdUnitError),
                        (lambda: parse_stamp(schedule.encode("utf-8", "surrogatepass")), AnacrontabError)):
        try:
            call()
        except error:
            pass
