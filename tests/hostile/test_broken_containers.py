"""Broken evidence: triage names what is wrong and where, lists the gap, and keeps everything else.

Each case damages one known place in a copy of a good builder output (test_images/damage.py), runs
``triage.run.run`` and the CLI, and compares with the undamaged image: every task file, TaskCache
entry and event of the good image is still there except the damaged one, which is in the gaps.
"""

from __future__ import annotations

from collections import Counter

import pytest

from test_images import damage
from test_images.taskcache_scenarios import stealth_task_files
from test_images.windows_tree import all_tasks, at_jobs
from triage.cli import EXIT_GAPS, EXIT_USAGE, main
from triage.collect import Context
from triage.run import run

SECURITY_LOG = "Windows/System32/winevt/Logs/Security.evtx"
SOFTWARE = "Windows/System32/config/SOFTWARE"
DAMAGED_TASK = "SysHealthMonitor"


def _inventory(case) -> Counter:
    """Every record a user would count: definitions by (source, task, file) and events by (channel, location, id)."""
    items = Counter((d.source, d.task, d.provenance.location.split(":", 1)[-1].lstrip("/c")) for d in case.definitions)
    items.update((e.channel, e.provenance.location.split(":", 1)[-1].lstrip("/c"), e.provenance.offset) for e in case.events)
    return items


def _run(path) -> tuple:
    ctx = Context(quiet=True)
    return run([str(path)], ctx), ctx


@pytest.fixture(scope="module")
def good_runs(windows_images):
    return {form: _run(windows_images[form]) for form in ("gpt", "tree")}


def test_good_image_holds_every_planted_task_file_and_job(good_runs):
    case, ctx = good_runs["gpt"]
    sources = Counter(d.source for d in case.definitions)
    assert sources["task_xml"] == len(all_tasks() + stealth_task_files()) == 45
    assert sources["job"] == len(at_jobs()) == 8
    assert sources["taskcache"] == 44
    assert Counter(e.channel for e in case.events) == {
        "Microsoft-Windows-TaskScheduler/Operational": 20, "SchedLgU": 13, "Security": 8}
    assert len(ctx.gaps) == 2  # the two planted broken task files (DiagTrackSync, WinUpdateCheck)


def test_corrupt_mft_record_of_one_task_file_is_a_gap_and_every_other_artifact_is_kept(windows_images, good_runs, tmp_path, capsys):
    broken = damage.corrupt_mft_record(windows_images["gpt"], windows_images["ntfs"],
                                       f"Windows/System32/Tasks/{DAMAGED_TASK}", tmp_path / "mft.raw")
    case, ctx = _run(broken.path)
    new_gaps = [g for g in ctx.gaps if g.line() not in {x.line().replace(str(windows_images["gpt"]), str(broken.path)) for x in good_runs["gpt"][1].gaps}]
    assert [(g.location, g.problem) for g in new_gaps] == [
        (f"sysvol/Windows/System32/Tasks/{DAMAGED_TASK}", "entry not readable: BrokenMftError: Invalid MFT record Signature: b'BAAD'")]
    assert new_gaps[0].evidence == str(broken.path)
    lost = _inventory(good_runs["gpt"][0]) - _inventory(case)
    assert list(lost) == [("task_xml", f"\\{DAMAGED_TASK}", f"sysvol/Windows/System32/Tasks/{DAMAGED_TASK}")]
    assert not _inventory(case) - _inventory(good_runs["gpt"][0])
    assert main(["-q", str(broken.path)]) == EXIT_GAPS
    assert DAMAGED_TASK in capsys.readouterr().out


def test_corrupt_evtx_chunk_header_is_reported_and_its_records_are_still_recovered(windows_images, good_runs, tmp_path):
    broken = damage.corrupt_evtx_chunk(windows_images["tree"], SECURITY_LOG, tmp_path / "evtx")
    case, ctx = _run(broken.path)
    chunk_gaps = [g for g in ctx.gaps if SECURITY_LOG in g.location]
    assert [(g.location.split(":", 1)[-1], g.problem) for g in chunk_gaps] == [
        (f"/{SECURITY_LOG} (chunk 0 at offset 0x1000)", "bad ElfChnk signature; scanning the chunk for records anyway")]
    assert _inventory(case) == _inventory(good_runs["tree"][0])  # all 8 Security events recovered by the record scan
    assert Counter(e.channel for e in case.events)["Security"] == 8
    assert main(["-q", str(broken.path)]) == EXIT_GAPS


def test_bad_hive_bin_in_software_is_a_gap_naming_the_key_and_the_tasks_are_kept(windows_images, good_runs, tmp_path):
    broken = damage.corrupt_hive_bin(windows_images["tree"], SOFTWARE, tmp_path / "hive", bin_index=4)
    case, ctx = _run(broken.path)
    hive_gaps = [g for g in ctx.gaps if "TaskCache" in g.location]
    assert [(g.location, g.problem.split(":")[0]) for g in hive_gaps] == [
        ("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Boot (hive)", "registry key not readable")]
    assert _inventory(case) == _inventory(good_runs["tree"][0])
    assert main(["-q", str(broken.path)]) == EXIT_GAPS


def test_truncated_e01_is_one_gap_naming_the_file_and_exit_code_2(windows_images, tmp_path, capsys):
    broken = damage.truncated_e01(windows_images["e01"], tmp_path / "e01" / "windows10.E01")
    case, ctx = _run(broken.path)
    assert case.opened == 0 and case.definitions == [] and case.events == []
    assert [(g.evidence, g.location) for g in ctx.gaps] == [(str(broken.path), str(broken.path))]
    assert ctx.gaps[0].problem.startswith("cannot open as a disk image or collection:")
    assert main(["-q", str(broken.path)]) == EXIT_USAGE
    assert "no evidence could be opened" in capsys.readouterr().err
