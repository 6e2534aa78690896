"""A task folder an attacker (or a busy server) filled with thousands of task files: every one is
reported, in bounded time and memory.

The evidence is a directory collection in tmp_path: ``Windows/System32/Tasks`` holding N small valid
task XML files made from one template with distinct names. The run is the real command
(``python -m triage DIR -o CASE``) in a child process started by GNU time, so its peak memory is
that process's own.
10,000 files run in the normal suite; 100,000 only with ``TRIAGE_SLOW=1``.

Measured on the 2-core machine: 10,000 files take about 10 s and 300 MB; before the event-log
search stopped using ``rglob`` (quadratic on a directory collection) the same run took 140 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = """<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo><Date>2024-02-01T10:00:00</Date><Author>WS\\admin</Author><URI>\\{name}</URI></RegistrationInfo>
  <Triggers><CalendarTrigger><StartBoundary>2024-02-01T10:00:00</StartBoundary>
    <ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay></CalendarTrigger></Triggers>
  <Settings><Enabled>true</Enabled></Settings>
  <Actions Context="Author"><Exec><Command>C:\\Tools\\job{n}.exe</Command><Arguments>--run {n}</Arguments></Exec></Actions>
</Task>
"""
PROJECT = Path(__file__).resolve().parents[2]
# The one gap any registry-less collection has: no SYSTEM time zone, so local times stay unconverted.
# (No SOFTWARE hive is not a gap: TaskCache is listed as "not examined".)
REGISTRY_LESS_GAPS = 1


def _task_folder(root: Path, count: int) -> list[str]:
    tasks = root / "Windows" / "System32" / "Tasks"
    tasks.mkdir(parents=True)
    names = [f"Bulk{n:06d}" for n in range(count)]
    for n, name in enumerate(names):
        (tasks / name).write_bytes(TEMPLATE.format(name=name, n=n).encode("utf-16"))
    return names


def _triage_measured(evidence: Path, case: Path, tmp: Path) -> tuple[int, float, float]:
    """(exit code, CPU seconds, peak resident MB) of one ``triage`` run in a child process.

    GNU time (Debian package ``time``) forks the child from its own small process: a child forked
    straight from pytest would count pytest's pages, copied at fork, in its own peak. CPU time (user +
    system), unlike wall-clock time, does not grow with other processes' load on the machine."""
    report = tmp / "usage.txt"
    child = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", str(report), sys.executable, "-m", "triage", "-q",
                            str(evidence), "-o", str(case)], cwd=PROJECT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    user, system, peak_kb = report.read_text().split()[-3:]
    return child.returncode, float(user) + float(system), int(peak_kb) / 1024


def _check_every_task_reported(tmp_path: Path, count: int) -> tuple[float, float]:
    names = _task_folder(tmp_path / "evidence", count)
    code, seconds, peak_mb = _triage_measured(tmp_path / "evidence", tmp_path / "case", tmp_path)
    assert code == 1  # gaps: the collection has no registry
    manifest = json.loads((tmp_path / "case" / "manifest.json").read_text())
    assert manifest["counts"]["definitions"] == count and manifest["counts"]["tasks"] == count
    assert len(manifest["gaps"]) == REGISTRY_LESS_GAPS  # no file was unreadable, none is a gap
    reported = []
    with (tmp_path / "case" / "tasks.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            entity = json.loads(line)
            (definition,) = entity["definitions"]
            assert definition["source"] == "task_xml" and not definition.get("errors")
            reported.append(entity["task"])
    assert reported == [f"\\{name}" for name in names]  # every file, once, in path order
    last = json.loads(line)["definitions"][0]["actions"][0]
    assert last == {"kind": "exec", "command": f"C:\\Tools\\job{count - 1}.exe", "arguments": f"--run {count - 1}"}
    print(f"{count} task files: {seconds:.1f} s CPU, peak {peak_mb:.0f} MB")
    return seconds, peak_mb


def test_ten_thousand_task_files_are_all_reported_in_linear_time_and_500_mb(tmp_path):
    reference, _ = _check_every_task_reported(tmp_path / "1000", 1_000)
    seconds, peak_mb = _check_every_task_reported(tmp_path / "10000", 10_000)
    assert seconds < 3 * 10 * reference  # 10x the files, at most 3x the linear share (the quadratic search: 100x)
    assert peak_mb < 500


@pytest.mark.skipif(os.environ.get("TRIAGE_SLOW") != "1", reason="100,000 files: set TRIAGE_SLOW=1")
def test_hundred_thousand_task_files_are_all_reported_in_bounded_time_and_memory(tmp_path):
    reference, _ = _check_every_task_reported(tmp_path / "10000", 10_000)
    seconds, peak_mb = _check_every_task_reported(tmp_path / "100000", 100_000)
    assert seconds < 3 * 10 * reference
    assert peak_mb < 4000
