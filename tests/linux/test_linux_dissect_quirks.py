"""dissect.target 3.25.1 ``cronjobs`` next to triage on the same image (peers.md): dissect splits
@reboot lines by position, keeps the user column inside the command unless a tab follows it, drops
an anacron job, has no at-job reader, and its ``services`` plugin dies on one malformed unit file. triage gets each of these right."""

from __future__ import annotations

import pytest
from flow.record.exceptions import RecordDescriptorError

from test_images import linux_scenario as scenario


def dissect_cron(collected):
    return [r for r in collected["raw"].target.cronjobs() if r._desc.name == "unix/cronjob"]


def test_reboot_line_is_mis_split_by_dissect_and_whole_in_triage(collected):
    record = next(r for r in dissect_cron(collected) if r.minute == "@reboot")
    assert (record.hour, record.day, record.month) == ("/usr/bin/nohup", "/bin/bash", "-c")
    assert record.command != scenario.REVERSE_SHELL
    job = collected["raw"].job("/var/spool/cron/crontabs/root:8")
    assert (job.schedule, job.command, job.user) == ("@reboot", scenario.REVERSE_SHELL, "root")


def test_user_column_stays_in_dissect_command_but_not_in_triage(collected):
    record = next(r for r in dissect_cron(collected) if str(r.source) == "/etc/cron.d/php-sessionclean")
    assert record.command == "root " + scenario.CURL_BASH
    tab_separated = [r.command for r in dissect_cron(collected) if str(r.source) == "/etc/crontab"]
    # inconsistent: only the first tab-separated line loses its user column
    assert tab_separated[0] == scenario.HOURLY_CMD and tab_separated[1].startswith("root\t")
    job = collected["raw"].job("/etc/cron.d/php-sessionclean:3")
    assert (job.user, job.command) == ("root", scenario.CURL_BASH)
    assert [j.command.startswith("root") for j in collected["raw"].jobs if j.entry.startswith("/etc/crontab:")] == [False] * 4


def test_anacron_job_dropped_by_dissect_found_by_triage(collected):
    sources = [(str(r.source), r.hour, r.day) for r in dissect_cron(collected) if str(r.source) == "/etc/anacrontab"]
    assert sources == [("/etc/anacrontab", "5", "cron.daily"), ("/etc/anacrontab", "10", "cron.weekly"), ("/etc/anacrontab", "15", "cron.monthly")]
    job = collected["raw"].job("/etc/anacrontab:13")
    assert (job.details["job_identifier"], job.command) == ("cache-refresh", "/bin/sh /var/tmp/.cache/refresh.sh")


def test_dissect_has_no_at_or_cron_script_records_triage_has(collected):
    dissect_sources = {str(r.source) for r in dissect_cron(collected)}
    assert not any("atjobs" in s or "/var/spool/at/" in s or "cron.hourly" in s for s in dissect_sources)
    kinds = {j.kind for j in collected["raw"].jobs}
    assert {"at", "cron_script", "systemd_timer"} <= kinds


def test_one_malformed_unit_kills_dissect_services_but_not_triage(collected):
    """broken.timer has a line without '=': dissect turns it into a record field name and the whole
    ``services`` plugin dies before yielding anything; triage reports that line and reads every timer."""
    with pytest.raises(RecordDescriptorError, match="Timer_this line is not an assignment"):
        list(collected["raw"].target.services())
    assert "/etc/systemd/system/broken.timer:6" in " ".join(collected["raw"].gaps)
    assert sum(j.kind == "systemd_timer" and not j.details.get("unit_file_missing") for j in collected["raw"].jobs) == 5
    job = collected["raw"].job("/etc/systemd/system/dbus-helper.timer")
    assert job.command == scenario.TIMER_CMD and job.enabled is True
