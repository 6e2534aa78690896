"""Job files an attacker inflated: crontabs, systemd units, at jobs, anacrontab and SchedLgU.txt larger
than 4 MiB are hashed (streaming) and named in one gap each, never read into memory or parsed; the
normal-sized files next to them are still read. Real ones are a few KB (SchedLgU.txt is 32 KB by default).
"""

from __future__ import annotations

import shutil

from triage.collect import Context
from triage.run import run

FIVE_MIB = 5 * 1024 * 1024
FIVE_MIB_OF_ZEROS_SHA256 = "c036cbb7553a909f8b8877d4461924307f27ecb66cff928eeeafd569c3887e29"
INFLATED_UNIX_FILES = ("etc/anacrontab", "etc/crontab", "etc/systemd/system/evil.timer",
                       "var/spool/cron/atjobs/a0001001a2b3c", "var/spool/cron/crontabs/root")


def _sparse(path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)


def test_inflated_crontab_unit_at_job_and_anacrontab_are_hashed_not_parsed_and_the_rest_is_read(tmp_path):
    root = tmp_path / "linux"
    for name in INFLATED_UNIX_FILES:
        _sparse(root / name, FIVE_MIB)
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "etc/cron.d/good").write_text("SHELL=/bin/sh\n*/5 * * * * root /usr/local/bin/backdoor.sh\n")
    (root / "etc/systemd/system/ok.timer").write_text("[Timer]\nOnCalendar=daily\n")
    ctx = Context(quiet=True)
    case = run([str(root)], ctx)
    assert sorted((j.kind, j.entry, j.command) for j in case.unix_jobs) == [
        ("cron", "/etc/cron.d/good:2", "/usr/local/bin/backdoor.sh"),
        ("systemd_timer", "/etc/systemd/system/ok.timer", None),
    ]
    assert sorted((g.location, g.problem) for g in ctx.gaps) == sorted(
        (f"/{name}", f"file too large for a scheduled-job file ({FIVE_MIB} bytes, SHA-256 {FIVE_MIB_OF_ZEROS_SHA256}); "
                     "hashed but not parsed") for name in INFLATED_UNIX_FILES)


def test_inflated_schedlgu_is_hashed_not_parsed_and_the_task_files_are_read(windows_images, tmp_path):
    root = tmp_path / "windows"
    (root / "Windows/System32/Tasks").mkdir(parents=True)
    shutil.copyfile(windows_images["tree"] / "Windows/System32/Tasks/SysHealthMonitor",
                    root / "Windows/System32/Tasks/SysHealthMonitor")
    _sparse(root / "Windows/Tasks/SchedLgU.txt", FIVE_MIB)
    ctx = Context(quiet=True)
    case = run([str(root)], ctx)
    assert [d.task for d in case.definitions] == ["\\SysHealthMonitor"] and not case.definitions[0].errors
    assert case.events == []
    assert [(g.location, g.problem) for g in ctx.gaps if "SchedLgU" in g.location] == [(
        "sysvol/Windows/Tasks/SchedLgU.txt",
        f"file too large for SchedLgU.txt ({FIVE_MIB} bytes, SHA-256 {FIVE_MIB_OF_ZEROS_SHA256}); hashed but not parsed")]
