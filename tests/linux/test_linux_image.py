"""Every planted Linux job on every form of the test image (raw GPT, E01, tar, directory), each log
line tied to its entry, file facts from ext4, and a builder that gives the same bytes twice."""

from __future__ import annotations

import hashlib
from zoneinfo import ZoneInfo

import pytest

from test_images import linux_scenario as scenario
from test_images.build_linux import build_linux
from triage.collect import Context, Source
from triage.collect.unix_jobs import collect
from triage.records import EvidenceRef, HostInfo, to_dict

FORMS = ("raw", "e01", "tar", "dir")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("planted", scenario.PLANTED, ids=lambda p: p.entry)
def test_planted_entry_found_with_user_schedule_and_command(collected, form, planted):
    job = collected[form].job(planted.entry)
    assert (job.kind, job.user, job.schedule, job.command, job.enabled) == (
        planted.kind, planted.user, planted.schedule, planted.command, planted.enabled)


@pytest.mark.parametrize("form", FORMS)
def test_every_log_line_is_linked_to_the_entry_that_explains_it(collected, form):
    found = {}
    for event in collected[form].events:
        line = int(event.provenance.value_name.split()[1])
        found[(event.provenance.location, line)] = (event.action, event.task)
    assert found == scenario.LOG_LINKS


@pytest.mark.parametrize("form", FORMS)
def test_all_forms_give_the_same_jobs(collected, form):
    def summary(c):
        return [(j.kind, j.entry, j.user, j.schedule, j.command, j.enabled, j.errors) for j in c.jobs]
    assert summary(collected[form]) == summary(collected["raw"])
    assert len(collected[form].jobs) == 46


def test_host_counts_by_kind(collected):
    kinds = {}
    for job in collected["raw"].jobs:
        kinds[job.kind] = kinds.get(job.kind, 0) + 1
    assert kinds == {"anacron": 4, "at": 3, "cron": 23, "cron_script": 10, "systemd_timer": 6}
    assert len(collected["raw"].events) == 33


def test_syslog_times_are_local_berlin_converted_to_utc(collected):
    event = next(e for e in collected["raw"].events if e.task == "/var/spool/cron/crontabs/root:8")
    assert (event.time.as_written, event.time.utc, event.time.basis, event.time.timezone) == (
        "Mar 13 06:00:02", "2024-03-13T05:00:02Z", "local, year inferred", "Europe/Berlin")
    assert (event.user, event.process_id, event.channel) == ("root", 640, "syslog")


def test_rotated_syslog_across_new_year_gets_both_years(collected):
    times = [e.time.utc for e in collected["raw"].events if e.provenance.location == "/var/log/syslog.1"]
    # Dec 31 23:39 is 2023 and Jan  1 00:09 is 2024 (local, UTC+1)
    assert times == ["2023-12-31T22:39:01Z", "2023-12-31T23:09:01Z"]


def test_runs_and_crontab_edits_are_noted_on_the_entry(collected):
    root_reboot = collected["raw"].job("/var/spool/cron/crontabs/root:8")
    assert root_reboot.details["logged_runs"] == {"count": 1, "first": "2024-03-13T05:00:02Z", "last": "2024-03-13T05:00:02Z"}
    assert [(e["time"], e["action"], e["by"]) for e in root_reboot.details["crontab_edits"]] == [
        ("2024-03-12T22:13:40Z", "crontab_edit_begin", "root"),
        ("2024-03-12T22:14:05Z", "crontab_replace", "root"),
        ("2024-03-12T22:14:05Z", "crontab_edit_end", "root"),
        ("2024-03-12T22:15:01Z", "crontab_reload", "root"),
    ]
    www = collected["raw"].job("/var/spool/cron/crontabs/www-data:4")
    assert [(e["action"], e["by"]) for e in www.details["crontab_edits"]] == [("crontab_replace", "root"), ("crontab_reload", "www-data")]
    timer = collected["raw"].job("/etc/systemd/system/dbus-helper.timer")
    assert timer.details["logged_runs"]["count"] == 2


def test_run_without_entry_is_kept_and_named_after_what_ran(collected):
    orphans = [(e.action, e.command_line, e.task, e.time.as_written) for e in collected["raw"].events
               if e.fields.get("link", "").startswith("ran, no longer defined")]
    assert orphans == [
        ("cron_run", "/tmp/.x/kworker -s", "cron log: (root) CMD (/tmp/.x/kworker -s)", "Mar 13 06:20:01"),
        ("cron_run", "/usr/local/bin/sync-www.sh   ", "cron log: (root) CMD (/usr/local/bin/sync-www.sh)", "Mar 13 08:44:01"),
    ]
    at_run = next(e for e in collected["raw"].events if e.action == "at_run")
    assert at_run.task is None and at_run.fields["link"] == "no at job file (atd deletes a job's file when it runs it)"
    # the tree holds /etc/crontab, cron.d and the spools: the claim "no longer defined" stands on a look
    assert {e.fields["definitions_examined"] for e in collected["raw"].events if "definitions_examined" in e.fields} == {None}


def test_crontab_line_ending_in_blanks_links_every_run_at_its_minutes(collected):
    """cron logs ``CMD (/usr/local/bin/sync-www.sh   )`` with the line's trailing blanks; every run
    at a */30 minute is the entry's, the 08:44 run (same user and command) is not."""
    job = collected["raw"].job("/etc/cron.d/sync-www:2")
    assert job.command == "/usr/local/bin/sync-www.sh"
    assert job.details["logged_runs"] == {"count": 2, "first": "2024-03-13T07:30:01Z", "last": "2024-03-13T08:00:01Z"}
    stray = next(e for e in collected["raw"].events if e.time.as_written == "Mar 13 08:44:01")
    assert stray.fields["same_command_entries"] == ["/etc/cron.d/sync-www:2"]


@pytest.mark.parametrize("form", ["raw", "e01"])
def test_ext4_file_facts_owner_mode_hash_and_four_times(collected, form):
    job = collected[form].job("/var/spool/cron/crontabs/www-data:4")
    data = next(n.data for n in scenario.nodes() if n.path == "/var/spool/cron/crontabs/www-data")
    facts = job.file
    assert (facts.owner, facts.mode, facts.size, facts.sha256) == ("33:107", "-rw-------", len(data), hashlib.sha256(data).hexdigest())
    assert job.details["file_owner"] == "www-data"
    assert {t.meaning: t.utc for t in facts.times} == {
        "modified": "2024-03-12T22:31:40Z", "accessed": "2024-03-12T22:31:40Z",
        "changed": "2024-03-14T09:12:44Z", "born": "2024-03-12T22:31:40Z"}


def test_tar_file_facts_keep_owner_and_mtime(collected):
    facts = collected["tar"].job("/var/spool/cron/crontabs/www-data:4").file
    assert facts.owner == "33:107"
    assert [(t.meaning, t.utc) for t in facts.times] == [("modified", "2024-03-12T22:31:40Z")]


def test_at_job_not_executable_is_disabled_and_kept(collected):
    job = collected["raw"].job("/var/spool/cron/atjobs/a0000201b30474")
    assert (job.enabled, job.details["executable"], job.file.mode, job.details["uid"]) == (False, False, "-rw-------", 1000)
    assert [(s.meaning, s.utc, s.precision) for s in job.stamps] == [("scheduled_run", "2024-03-16T03:00:00Z", "1min")]


def test_cron_scripts_follow_run_parts_rules(collected):
    scripts = {j.entry: (j.enabled, j.details["run_parts_name_ok"], j.details["executable"])
               for j in collected["raw"].jobs if j.kind == "cron_script"}
    assert scripts["/etc/cron.hourly/sys-health"] == (True, True, True)
    assert scripts["/etc/cron.daily/backup.sh"] == (False, False, True)  # a dot: run-parts skips it
    assert scripts["/etc/cron.weekly/cleanup"] == (False, True, False)  # no exec bit
    assert scripts["/etc/cron.daily/.placeholder"] == (False, False, False)
    sys_health = collected["raw"].job("/etc/cron.hourly/sys-health")
    assert sys_health.file.sha256 == hashlib.sha256(scenario.SYS_HEALTH.encode()).hexdigest()


def test_anacron_job_has_last_run_from_spool_stamp(collected):
    job = collected["raw"].job("/etc/anacrontab:13")
    assert job.details["last_run_date"] == "2024-03-13"
    assert [(s.meaning, s.as_written, s.utc) for s in job.stamps] == [("last_run_date", "20240313", "2024-03-12T23:00:00Z")]


def test_system_timer_uses_drop_in_command_enablement_and_stamp(collected):
    job = collected["raw"].job("/etc/systemd/system/dbus-helper.timer")
    assert job.details["exec_start"] == [scenario.TIMER_CMD]  # ExecStart= in override.conf cleared the original
    assert job.details["service_sources"] == ["/etc/systemd/system/dbus-helper.service",
                                              "/etc/systemd/system/dbus-helper.service.d/override.conf"]
    assert job.details["enabled_by"] == ["/etc/systemd/system/timers.target.wants/dbus-helper.timer"]
    assert job.details["persistent"] == "true"
    assert [(s.meaning, s.utc) for s in job.stamps] == [("last_trigger", "2024-03-14T09:00:00Z")]
    assert job.details["first_elapse_after_modified"] == {"*:0/15": "2024-03-12T22:45:00Z"}


def test_user_timer_belongs_to_bob_and_is_enabled_by_his_wants_link(collected):
    job = collected["raw"].job("/home/bob/.config/systemd/user/gnome-sync.timer")
    assert (job.details["scope"], job.enabled) == ("user:bob", True)
    assert job.details["enabled_by"] == ["/home/bob/.config/systemd/user/timers.target.wants/gnome-sync.timer"]
    assert [(s.meaning, s.utc) for s in job.stamps] == [("last_trigger", "2024-03-13T06:00:00Z")]


def test_cron_first_run_after_file_was_written(collected):
    assert collected["raw"].job("/etc/cron.d/php-sessionclean:3").details["first_run_after_modified"] == "2024-03-12T22:25:00Z"
    assert collected["raw"].job("/var/spool/cron/crontabs/www-data:4").details["first_run_after_modified"] == "2024-03-12T22:40:00Z"
    # CRON_TZ=America/New_York: Monday 09:00 EDT
    assert collected["raw"].job("/var/spool/cron/alice:3").details["first_run_after_modified"] == "2024-03-18T13:00:00Z"


def test_malformed_crontab_lines_and_unit_are_reported_not_fatal(collected):
    gaps = [g.split(": ", 1)[1] for g in collected["raw"].gaps]
    assert gaps == [
        "/var/spool/cron/crontabs/bob:6: not a cron entry or variable: '*/15 * * * /home/bob/bin/poll.sh'",
        "/var/spool/cron/crontabs/bob:7: line ends with a backslash; cron does not join lines, the next line is a separate entry",
        "/var/spool/cron/crontabs/bob:8: not a cron entry or variable: '--verbose'",
        "/etc/systemd/system/broken.timer:6: not a Key=Value line: 'this line is not an assignment'",
    ]
    broken = collected["raw"].job("/etc/systemd/system/broken.timer")
    assert broken.enabled is False
    assert broken.errors[1:] == ["service unit broken.service not found",
                                 "next elapse: unsupported OnCalendar 'Mon..Fri *-*-* 04:00 Europe/Paris'"]


def test_output_is_identical_on_a_second_collection(collected):
    first = collected["raw"]
    source = Source(ref=EvidenceRef(path=str(first.path), kind="raw"), target=first.target,
                    host=HostInfo(hostname="web-prod-07"), tz=ZoneInfo("Europe/Berlin"))
    again = list(collect(source, Context(quiet=True)))
    assert [to_dict(r) for r in again] == [to_dict(r) for r in first.records]


def test_builder_is_deterministic(linux_images, tmp_path):
    second = build_linux(tmp_path / "again")
    for form in ("raw", "e01", "tar", "ext4"):
        assert hashlib.sha256(second[form].read_bytes()).hexdigest() == hashlib.sha256(linux_images[form].read_bytes()).hexdigest(), form
