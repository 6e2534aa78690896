"""Limits an attacker can push: a huge file named like a task, a symlink loop in a collection.

The evidence is a directory collection built in tmp_path (a sparse 2 GiB file costs no disk space).
"""

from __future__ import annotations

import resource
import shutil

from triage.cli import EXIT_GAPS, main
from triage.collect import Context
from triage.run import run

TWO_GIB = 2 * 1024 ** 3
TWO_GIB_OF_ZEROS_SHA256 = "a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51"


def test_two_gib_file_named_like_a_task_is_hashed_streaming_not_parsed_and_the_loop_is_one_gap(windows_images, tmp_path):
    root = tmp_path / "collection"
    tasks = root / "Windows" / "System32" / "Tasks"
    (tasks / "Sub").mkdir(parents=True)
    shutil.copyfile(windows_images["tree"] / "Windows/System32/Tasks/SysHealthMonitor", tasks / "SysHealthMonitor")
    with (tasks / "Big Task").open("wb") as handle:
        handle.truncate(TWO_GIB)
    (tasks / "Sub" / "loop").symlink_to("..")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ctx = Context(quiet=True)
    case = run([str(root)], ctx)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500  # streamed: 2 GiB read, not held
    by_task = {d.task: d for d in case.definitions if d.source == "task_xml"}
    assert sorted(by_task) == ["\\Big Task", "\\Sub\\loop", "\\SysHealthMonitor"]
    big = by_task["\\Big Task"]
    assert big.file.size == TWO_GIB
    assert big.file.sha256 == TWO_GIB_OF_ZEROS_SHA256  # hashed in full, 1 MiB at a time
    assert big.errors == [f"file too large for a task definition ({TWO_GIB} bytes); hashed but not parsed"]
    assert by_task["\\SysHealthMonitor"].actions[0].command_line.startswith("cmd.exe /c vssadmin.exe delete shadows")
    task_gaps = sorted((g.location.rsplit("Tasks/", 1)[-1], g.problem) for g in ctx.gaps if "/Tasks/" in g.location)
    assert task_gaps == [
        ("Big Task", f"file too large for a task definition ({TWO_GIB} bytes); hashed but not parsed"),
        ("Sub/loop", "symbolic link to '..', not followed"),
    ]
    assert main(["-q", str(root)]) == EXIT_GAPS
