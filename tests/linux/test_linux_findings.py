"""`triage` on the Linux image end to end: the planted cron, at and timer persistence become findings
with the right ATT&CK sub-technique, on every form of the image."""

from __future__ import annotations

import pytest

from triage.collect import Context
from triage.detect import RISK_ORDER
from triage.run import run


@pytest.mark.parametrize("form", ["e01", "raw", "tar", "dir"])
def test_planted_linux_persistence_becomes_findings(linux_images, form):
    ctx = Context(quiet=True)
    case = run([str(linux_images[form])], ctx, hunt_date="20260101")
    by_task = {f.task: f for f in case.findings}
    reboot_shell = by_task["/var/spool/cron/crontabs/root:8"]
    assert (reboot_shell.technique, reboot_shell.risk_level, reboot_shell.user) == ("T1053.003", "Critical", "root")
    curl_bash = by_task["/etc/cron.d/php-sessionclean:3"]
    assert curl_bash.technique == "T1053.003" and RISK_ORDER[curl_bash.risk_level] >= RISK_ORDER["High"]
    web = by_task["/var/spool/cron/crontabs/www-data:4"]
    assert web.user == "www-data"
    assert "unix_service_account_job" in {r["rule"] for r in web.details["reasons"]}
    assert by_task["/etc/systemd/system/dbus-helper.timer"].technique == "T1053.006"
    assert by_task["/home/bob/.config/systemd/user/gnome-sync.timer"].technique == "T1053.006"
    at_jobs = [f for f in case.findings if f.technique == "T1053.002"]
    assert {f.task.rsplit("/", 1)[0] for f in at_jobs} == {"/var/spool/cron/atjobs", "/var/spool/at"}
    # a run-parts script is judged on what it runs, not only its path
    script = by_task["/etc/cron.hourly/sys-health"]
    assert (script.risk_level, script.rule) == ("High", "unix_download_exec")
    # stock Debian content raises nothing
    assert not [f for f in case.findings if f.task.startswith(("/lib/systemd/system/", "/etc/cron.daily/"))]


def test_logged_cron_runs_corroborate_the_entry(linux_images):
    case = run([str(linux_images["e01"])], Context(quiet=True), hunt_date="20260101")
    entity = next(e for e in case.entities if e.key == "/var/spool/cron/crontabs/root:8")
    assert entity.kind == "cron" and entity.events
    finding = next(f for f in case.findings if f.task == entity.task)
    # two independent artifacts: the crontab file and the syslog that logged its edits and its runs (one log)
    assert (finding.confidence, finding.confidence_basis) == ("Medium", "2 independent artifact(s) agree: job file, syslog log")
