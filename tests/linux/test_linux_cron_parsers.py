"""crontab / anacrontab / at parsers on real public files and edge cases, and cron next-run times
checked against hand-computed values."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from triage.parsers.anacrontab import AnacrontabError, parse_anacrontab, parse_stamp
from triage.parsers.atjob import AtJobError, parse_at_job, parse_job_name
from triage.parsers.crontab import CrontabError, logged_command, next_run, parse_crontab

BERLIN = ZoneInfo("Europe/Berlin")
PC = "AiratNig__python-crontab/tests/data"


def jobs(corpus, rel, **kw):
    path = corpus / rel
    result = parse_crontab(path.read_text(), str(path), **kw)
    return result, [(j.user, j.schedule, j.command) for j in result.jobs]


def test_system_crontab_fixture_splits_user_column(corpus):
    result, found = jobs(corpus, f"{PC}/crontab", user_column=True)
    assert found == [("peter", "* * * * *", "parker"), ("driver", "* 2 * * *", "parker")]
    assert result.errors == []
    _, one = jobs(corpus, f"{PC}/crontabs/system_one", user_column=True)
    _, two = jobs(corpus, f"{PC}/crontabs/system_two", user_column=True)
    assert one == [("bilbo", "* * * * *", "baggins"), ("frodo", "* 2 * * *", "baggins")]
    assert two == [("plastic", "1 2 3 * *", "baggins")]


def test_user_crontab_keeps_shell_comment_in_command_and_reads_reboot(corpus):
    result, found = jobs(corpus, f"{PC}/test.tab", user_column=False, owner="u")
    assert found == [
        ("u", "*/30 * * * *", "firstcommand"),
        ("u", "* 10-20/3 * * *", "range"),
        ("u", "* * * 10 *", "byweek # Comment One"),
        ("u", "00 5 * * *", "spaced    # Comment  Two"),
        ("u", "@reboot", "rebooted # re-id"),
    ]
    assert [j.entry.rsplit(":", 1)[1] for j in result.jobs] == ["6", "7", "9", "11", "14"]
    assert result.errors == []


def test_nicknames_are_schedules(corpus):
    _, found = jobs(corpus, f"{PC}/specials_enc.tab", user_column=False, owner="u")
    assert [(s, c) for _, s, c in found] == [("@hourly", "hourly"), ("@daily", "daily"), ("@midnight", "midnight"),
                                             ("@weekly", "weekly"), ("@reboot", "reboot")]
    _, plain = jobs(corpus, f"{PC}/specials.tab", user_column=False, owner="u")
    assert len(plain) == 3


@pytest.mark.parametrize("name,count", [("basic", 1), ("hgreen", 2), ("jgreen", 2), ("user", 1)])
def test_spool_crontabs_take_user_from_file_name(corpus, name, count):
    result, found = jobs(corpus, f"{PC}/spool/{name}", user_column=False, owner=name)
    assert len(found) == count and all(user == name for user, _, _ in found)
    assert result.errors == []


def test_cronie_cron_d_files_with_environment(corpus):
    result, found = jobs(corpus, "cronie-crond__cronie/contrib/0hourly", user_column=True)
    assert found == [("root", "01 * * * *", "run-parts /etc/cron.hourly")]
    assert [(n, v) for _, n, v in result.environment] == [("SHELL", "/bin/bash"), ("PATH", "/sbin:/bin:/usr/sbin:/usr/bin"), ("MAILTO", "root")]
    assert result.jobs[0].details["environment"]["MAILTO"] == "root"
    _, daily = jobs(corpus, "cronie-crond__cronie/contrib/dailyjobs", user_column=True)
    assert [s for _, s, _ in daily] == ["02 4 * * *", "22 4 * * 0", "42 4 1 * *"]
    assert daily[0][2] == "[ ! -f /etc/cron.hourly/0anacron ] && run-parts /etc/cron.daily"


def test_percent_ends_command_and_feeds_stdin():
    result = parse_crontab("30 8 * * 1-5 /bin/report.sh 50\\% % line one%line two\n", "/x", user_column=False, owner="bob")
    job = result.jobs[0]
    assert job.command == "/bin/report.sh 50\\% % line one%line two"
    assert (job.details["runs"], job.details["stdin"]) == ("/bin/report.sh 50% ", " line one\nline two")
    assert logged_command(job.command) == "/bin/report.sh 50% "


def test_malformed_and_env_lines():
    text = "CRON_TZ = 'UTC'\n*/5 * * * * root a=b\n61 * * * * root x\n@every 5m root x\nMAILTO=\"\"\n@reboot root /bin/x\n"
    result = parse_crontab(text, "/etc/cron.d/t", user_column=True)
    assert [(j.entry, j.user, j.schedule, j.command) for j in result.jobs] == [
        ("/etc/cron.d/t:2", "root", "*/5 * * * *", "a=b"), ("/etc/cron.d/t:6", "root", "@reboot", "/bin/x")]
    assert result.jobs[1].details["environment"] == {"CRON_TZ": "UTC", "MAILTO": ""}
    assert result.errors == ["/etc/cron.d/t:3: not a cron entry or variable: '61 * * * * root x'",
                             "/etc/cron.d/t:4: not a cron entry or variable: '@every 5m root x'"]


@pytest.mark.parametrize("schedule,after,expected", [
    ("*/5 * * * *", "2024-03-14T09:12:44Z", "2024-03-14T09:15:00Z"),
    ("17 * * * *", "2024-03-14T09:12:44Z", "2024-03-14T09:17:00Z"),
    ("@daily", "2024-03-14T09:12:44Z", "2024-03-14T23:00:00Z"),  # midnight CET
    ("@hourly", "2024-03-14T09:12:44Z", "2024-03-14T10:00:00Z"),
    ("@weekly", "2024-03-14T09:12:44Z", "2024-03-16T23:00:00Z"),  # Sunday 00:00 CET
    ("@monthly", "2024-03-14T09:12:44Z", "2024-03-31T22:00:00Z"),  # April 1 00:00 CEST
    ("@yearly", "2024-03-14T09:12:44Z", "2024-12-31T23:00:00Z"),
    ("0 0 13 * 5", "2024-03-14T00:00:00Z", "2024-03-14T23:00:00Z"),  # day-of-month OR Friday
    ("0 0 */2 * 1", "2024-03-14T00:00:00Z", "2024-03-24T23:00:00Z"),  # '*/2' counts as '*': AND (odd day and Monday)
    ("30 2 * * *", "2024-03-30T12:00:00Z", "2024-04-01T00:30:00Z"),  # 02:30 does not exist on March 31
    ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-28T23:00:00Z"),
    ("0 9 * * mon-fri", "2024-03-15T09:00:00Z", "2024-03-18T08:00:00Z"),
])
def test_next_run_hand_computed(schedule, after, expected):
    start = datetime.fromisoformat(after.replace("Z", "+00:00"))
    assert next_run(schedule, start, BERLIN).strftime("%Y-%m-%dT%H:%M:%SZ") == expected


def test_next_run_refuses_reboot_and_bad_fields():
    start = datetime(2024, 3, 14, tzinfo=timezone.utc)
    for schedule in ("@reboot", "61 * * * *", "* * * *", "* * 31 2 *"):
        with pytest.raises(CrontabError):
            next_run(schedule, start, BERLIN)


def test_cronie_anacrontab(corpus):
    result = parse_anacrontab((corpus / "cronie-crond__cronie/contrib/anacrontab").read_text(), "/etc/anacrontab")
    assert [(j.details["job_identifier"], j.details["period_days"], j.details["delay_minutes"], j.command) for j in result.jobs] == [
        ("cron.daily", 1, 5, "nice run-parts /etc/cron.daily"),
        ("cron.weekly", 7, 25, "nice run-parts /etc/cron.weekly"),
        ("cron.monthly", 30, 45, "nice run-parts /etc/cron.monthly"),
    ]
    assert [n for _, n, _ in result.environment] == ["SHELL", "PATH", "MAILTO", "RANDOM_DELAY", "START_HOURS_RANGE"]
    assert result.errors == []


def test_anacron_stamp():
    assert parse_stamp(b"20240313\n").isoformat() == "2024-03-13"
    for bad in (b"", b"2024-03-13", b"20241399"):
        with pytest.raises(AnacrontabError):
            parse_stamp(bad)


def test_at_job_name_gives_queue_number_and_time():
    queue, number, when = parse_job_name("b0000a01b2feb6")
    assert (queue, number, when.isoformat()) == ("b", 10, "2024-03-15T02:30:00+00:00")
    with pytest.raises(AtJobError):
        parse_job_name(".SEQ")


def test_at_job_without_here_document_and_without_header():
    script = b"#!/bin/sh\n# atrun uid=0 gid=0\n# mail root 1\numask 22\nHOME=/root; export HOME\ncd /root || {\n\t echo 'x' >&2\n\t exit 1\n}\n/usr/bin/id\nrm -f /tmp/y\n"
    job = parse_at_job("=0000301b2feb6", script, "/var/at/jobs/=0000301b2feb6", executable=True)
    assert (job.user, job.command, job.enabled) == ("root", "/usr/bin/id\nrm -f /tmp/y", True)
    assert (job.details["running_now"], job.details["mail_always"], job.details["working_directory"]) == (True, True, "/root")
    garbage = parse_at_job("a0000101b2feb6", b"\xff\xfe garbage", "/x", executable=False)
    assert garbage.errors == ["no '# atrun uid=' header"] and garbage.enabled is False
