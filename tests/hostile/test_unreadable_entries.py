"""Only regular files are read from evidence: a FIFO would block the read forever and a character
device never ends (before: a FIFO in ``System32\\Tasks`` or as ``SOFTWARE.LOG2`` hung the run; a link to
a device was read without end, 5.4 GB). Each becomes one gap line; links are never followed.

Evidence: a copy of the builder's WS-FIN-042 directory tree with the hostile entries added; the run is
the real command in a child process (tests/hostile/child_run.py), the untouched tree the reference.
"""

from __future__ import annotations

import json
import os
import shutil
import stat

from tests.hostile.child_run import ONE_GB_MB, run_triage

TASKS = "Windows/System32/Tasks"
DEV_ZERO = os.makedev(1, 5)


def _task_files(case) -> dict[str, str]:
    """Task path -> SHA-256 of every task XML file definition in tasks.jsonl."""
    out = {}
    for line in (case / "tasks.jsonl").read_text(encoding="utf-8").splitlines():
        for definition in json.loads(line)["definitions"]:
            if definition["source"] == "task_xml":
                out[definition["task"]] = (definition.get("file") or {}).get("sha256")
    return out


def _can_mknod(tmp_path) -> bool:
    try:
        os.mknod(tmp_path / "probe", stat.S_IFCHR | 0o600, DEV_ZERO)
    except (PermissionError, OSError):
        return False
    (tmp_path / "probe").unlink()
    return True


def test_fifos_a_device_and_a_link_to_dev_zero_are_gaps_and_everything_else_is_read(windows_images, tmp_path):
    clean = run_triage([windows_images["tree"]], tmp_path, "clean")
    root = tmp_path / "evidence"
    shutil.copytree(windows_images["tree"], root, symlinks=True)
    os.mkfifo(root / TASKS / "Evil FIFO")
    (root / "Windows/System32/config/SOFTWARE.LOG2").unlink()
    os.mkfifo(root / "Windows/System32/config/SOFTWARE.LOG2")
    (root / TASKS / "Zero Link").symlink_to("/dev/zero")
    device = _can_mknod(tmp_path)
    if device:
        os.mknod(root / TASKS / "Zero Device", stat.S_IFCHR | 0o600, DEV_ZERO)

    hostile = run_triage([root], tmp_path, "hostile")

    assert hostile.code == 1 and hostile.peak_mb < ONE_GB_MB
    expected = {
        f"sysvol/{TASKS}/Evil FIFO": "not a regular file (FIFO); not read",
        f"sysvol/{TASKS}/Zero Link": "symbolic link to '/dev/zero', not followed",
    }
    if device:
        expected[f"sysvol/{TASKS}/Zero Device"] = "not a regular file (character device); not read"
    gaps = dict(hostile.gaps())
    for location, problem in expected.items():
        assert gaps[location] == problem
        assert f"{location}: {problem}" in hostile.stderr
    (log2,) = [loc for loc in gaps if loc.lower().endswith("config/software.log2")]
    assert gaps[log2] == "transaction log not readable: not a regular file (FIFO); not read"
    # every task file of the clean tree is still read, byte for byte the same; the hostile entries are
    # listed as tasks that exist but could not be read
    clean_files, hostile_files = _task_files(clean.case), _task_files(hostile.case)
    added = {"\\Evil FIFO", "\\Zero Link"} | ({"\\Zero Device"} if device else set())
    assert set(hostile_files) == set(clean_files) | added
    assert {task: sha for task, sha in hostile_files.items() if task not in added} == clean_files
    assert hostile.manifest["counts"]["events"] == clean.manifest["counts"]["events"] == 41


def test_fifo_and_device_given_as_evidence_are_refused_and_the_image_beside_them_is_read_in_full(
        committed_windows_e01, tmp_path):
    fifo = tmp_path / "evidence.fifo"
    os.mkfifo(fifo)
    alone = run_triage([committed_windows_e01], tmp_path, "alone")
    beside = run_triage([fifo, "/dev/zero", committed_windows_e01], tmp_path, "beside")
    assert beside.code == 1 and beside.peak_mb < ONE_GB_MB
    for path in (str(fifo), "/dev/zero"):
        assert (path, "not a regular file, directory or block device: not read") in beside.gaps()
    assert beside.manifest["counts"] == {**alone.manifest["counts"], "gaps": alone.manifest["counts"]["gaps"] + 2}
    assert [e["path"] for e in beside.manifest["evidence"]] == [str(committed_windows_e01)]
