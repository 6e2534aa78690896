"""systemd unit parsing and OnCalendar next elapse (hand-computed), and cron/atd/systemd log lines
from real public syslog files."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from triage.parsers.cronlog import assign_years, classify, parse_log
from triage.parsers.systemd_unit import SystemdUnitError, next_elapse, parse_timespan, parse_unit, timer_job

BERLIN = ZoneInfo("Europe/Berlin")
AFTER = datetime(2024, 3, 14, 9, 12, 44, tzinfo=timezone.utc)  # 10:12:44 CET, a Thursday


def test_logrotate_timer_and_service_from_upstream(corpus):
    timer = parse_unit((corpus / "logrotate__logrotate/examples/logrotate.timer").read_text(), "logrotate.timer", "/lib/systemd/system/logrotate.timer")
    service = parse_unit((corpus / "logrotate__logrotate/examples/logrotate.service").read_text(), "logrotate.service", "/lib/systemd/system/logrotate.service")
    job = timer_job(timer, service, "/lib/systemd/system/logrotate.timer", user="root", scope="system")
    assert (job.schedule, job.command, job.user) == ("OnCalendar=daily", "/usr/sbin/logrotate /etc/logrotate.conf", "root")
    assert (job.details["persistent"], job.details["randomized_delay"], job.details["service_description"]) == ("true", "1h", "Rotate log files")
    assert parse_timespan(job.details["randomized_delay"]) == 3600
    assert timer.errors == [] and service.errors == []
    assert service.values("Service", "ProtectSystem") == ["full"]


def test_continuation_comments_and_bad_lines():
    text = "[Service]\n# comment\nExecStart=/bin/a \\\n  --flag\n; other comment\nExecStart=/bin/b\nnonsense\n[Timer]\nOnBootSec=\n"
    unit = parse_unit(text, "x.service", "/etc/systemd/system/x.service")
    assert unit.values("Service", "ExecStart") == ["/bin/a    --flag", "/bin/b"]
    assert unit.errors == ["/etc/systemd/system/x.service:7: not a Key=Value line: 'nonsense'"]
    dropin = parse_unit("[Service]\nExecStart=\nExecStart=/bin/c\n", "x.service", "/etc/systemd/system/x.service.d/a.conf", into=unit)
    assert dropin.values("Service", "ExecStart") == ["/bin/c"]
    assert dropin.sources == ["/etc/systemd/system/x.service", "/etc/systemd/system/x.service.d/a.conf"]


@pytest.mark.parametrize("expression,expected", [
    ("minutely", "2024-03-14T09:13:00Z"),
    ("hourly", "2024-03-14T10:00:00Z"),
    ("daily", "2024-03-14T23:00:00Z"),
    ("weekly", "2024-03-17T23:00:00Z"),  # Monday 00:00 CET
    ("monthly", "2024-03-31T22:00:00Z"),  # April 1 00:00 CEST
    ("yearly", "2024-12-31T23:00:00Z"),
    ("*-*-* 03:30:00", "2024-03-15T02:30:00Z"),
    ("*-*-* 6,18:00", "2024-03-14T17:00:00Z"),
    ("Mon *-*-* 02:00", "2024-03-18T01:00:00Z"),
    ("Sat,Sun 12:00", "2024-03-16T11:00:00Z"),
    ("*:0/15", "2024-03-14T09:15:00Z"),
    ("*-*-01 04:00:00", "2024-04-01T02:00:00Z"),
    ("2025-06-01 00:00:00", "2025-05-31T22:00:00Z"),
])
def test_next_elapse_hand_computed(expression, expected):
    assert next_elapse(expression, AFTER, BERLIN).strftime("%Y-%m-%dT%H:%M:%SZ") == expected


@pytest.mark.parametrize("expression", ["Mon..Fri *-*-* 04:00 Europe/Paris", "*-*~01", "2024-02-30", "tomorrow", "*:61"])
def test_unsupported_calendar_is_refused(expression):
    with pytest.raises(SystemdUnitError):
        next_elapse(expression, AFTER, BERLIN)


def test_timespans():
    assert [parse_timespan(t) for t in ("90", "5min", "1h 30min", "2d", "1w")] == [90, 300, 5400, 172800, 604800]
    with pytest.raises(SystemdUnitError):
        parse_timespan("soon")


def test_python_crontab_syslog_runs(corpus):
    path = corpus / "AiratNig__python-crontab/tests/data/test.log"
    result = parse_log(path.read_text(), str(path), channel="syslog", mtime=datetime(2020, 5, 1, tzinfo=timezone.utc), tz=timezone.utc)
    runs = [(e.user, e.command_line) for e in result.events]
    assert (result.lines, len(runs)) == (32, 19)
    assert runs.count(("user", "userscript &> /dev/null")) == 11
    assert runs.count(("root", "rootscript &> /dev/null")) == 6 and runs.count(("root", "shadowscript &> /dev/null")) == 2
    assert result.events[0].time.utc == "2020-04-04T21:24:01Z"


def test_plaso_cron_syslog_with_year_rollover(corpus):
    path = corpus / "log2timeline__plaso/test_data/syslog/syslog_cron.log"
    result = parse_log(path.read_text(), str(path), channel="syslog", mtime=datetime(2016, 1, 25, tzinfo=timezone.utc), tz=timezone.utc)
    assert len(result.events) == 9 and {e.action for e in result.events} == {"cron_run"}
    # March lines come before the January ones: they belong to the year before the file's mtime
    assert [e.time.utc[:4] for e in result.events] == ["2015"] * 6 + ["2016"] * 3
    assert result.events[1].command_line == "sleep $(( 1 * 60 )); touch /tmp/afile.txt"
    assert result.events[-1].host == "myhostname.myhost.com"


def test_museum_syslog_cron_and_systemd_lines(corpus):
    path = corpus / "AndrewRathbun__DFIRArtifactMuseum/Linux/GeminiIntrusion/var/log/syslog"
    result = parse_log(path.read_text(), str(path), channel="syslog", mtime=datetime(2024, 5, 12, tzinfo=timezone.utc), tz=ZoneInfo("UTC"))
    assert [(e.action, e.command_line or e.fields.get("description")) for e in result.events] == [
        ("cron_run", "/tmp/.cache_proc"), ("cron_run", "/tmp/.cache_proc"),
        ("timer_service_starting", "Hostname Service"), ("timer_service_start", "Hostname Service"),
        ("cron_run", "/usr/local/bin/fix_logs.sh"),
    ]


def test_rhel_crond_www_data_and_crontab_edits_are_recognised():
    # plaso's cron plugin needs reporter CRON and an alphanumeric user: these two fall through there
    assert (classify("CROND", "(root) CMD (run-parts /etc/cron.hourly)").action) == "cron_run"
    www = classify("CRON", "(www-data) CMD (php /var/www/cron.php)")
    assert (www.action, www.user, www.command) == ("cron_run", "www-data", "php /var/www/cron.php")
    edit = classify("crontab", "(root) REPLACE (www-data)")
    assert (edit.action, edit.user, edit.fields) == ("crontab_replace", "root", {"crontab_owner": "www-data"})
    assert classify("crontab", "(bob) DELETE (bob)").action == "crontab_delete"
    assert classify("crontab", "(bob) LIST (bob)").action == "crontab_list"
    at = classify("atd", "Starting job 7 (a0000701b2feb6) for user 'bob' (1000)")
    assert (at.action, at.user, at.fields["job_file"]) == ("at_run", "bob", "a0000701b2feb6")
    started = classify("systemd", "Started dbus-helper.service - D-Bus Session Helper.")
    assert started.fields == {"unit": "dbus-helper.service", "description": "D-Bus Session Helper"}
    assert classify("CRON", "pam_unix(cron:session): session closed for user root") is None


def test_iso_timestamps_and_unparseable_lines():
    text = ("2024-03-14T10:00:01.123456+01:00 web CRON[1]: (root) CMD (x)\n"
            "2024-03-14T10:00:02 web CRON[2]: (root) CMD (y)\n"
            "garbage line\n")
    result = parse_log(text, "/var/log/syslog", channel="syslog", mtime=None, tz=BERLIN)
    assert [(e.time.utc, e.time.basis) for e in result.events] == [("2024-03-14T09:00:01.123456Z", "offset"), ("2024-03-14T09:00:02Z", "local")]
    assert result.unrecognised_timestamps == 1


def test_year_assignment_walks_back_from_mtime():
    assert assign_years([11, 12, 1, 2], datetime(2024, 2, 10, tzinfo=timezone.utc)) == [2023, 2023, 2024, 2024]
    assert assign_years([12], datetime(2024, 1, 3, tzinfo=timezone.utc)) == [2023]
    assert assign_years([3, None, 3], None) == [None, None, None]
