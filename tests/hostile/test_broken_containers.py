"""Broken evidence: triage names what is wrong and where, lists the gap, and keeps everything else.

Each case damages one known place in a copy of a good builder output (test_images/damage.py), runs
``triage.run.run`` and the CLI, and compares with the undamaged image: every task file, TaskCache
entry and event of the good image is still there except the damaged one, which is in the gaps.
"""

from __future__ import annotations

import re

import json
from collections import Counter

import pytest

from test_images import damage
from test_images.memimage import build_memory_image
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
    assert hive_gaps[0].problem == ("registry key not readable: damaged hive cell/bin in sysvol/windows/system32/config/SOFTWARE "
                                    "(a key or value cell has no valid signature): NotImplementedError: b'\\xcc\\xcc'")
    assert _inventory(case) == _inventory(good_runs["tree"][0])
    assert main(["-q", str(broken.path)]) == EXIT_GAPS


def test_truncated_e01_is_one_gap_naming_the_cut_section_and_exit_code_2(windows_images, tmp_path, capsys):
    broken = damage.truncated_e01(windows_images["e01"], tmp_path / "e01" / "windows10.E01")
    case, ctx = _run(broken.path)
    assert case.opened == 0 and case.definitions == [] and case.events == []
    assert [(g.evidence, g.location) for g in ctx.gaps] == [(str(broken.path), str(broken.path))]
    found = re.fullmatch(r"cannot open as a disk image or collection: section sectors at offset 0x817 points past the end "
                         rf"of the file \(to 0x([0-9a-f]+); the file is {broken.offset} bytes\): truncated segment",
                         ctx.gaps[0].problem)
    assert found and int(found.group(1), 16) > broken.offset
    assert main(["-q", str(broken.path)]) == EXIT_USAGE
    assert "no evidence could be opened" in capsys.readouterr().err


# Files whose data shares the 64 KiB VMDK grain / the 32 KiB E01 chunk with SysHealthMonitor's first cluster.
GRAIN_45_TASKS = ["\\Microsoft\\Windows\\WinUpdate\\WinUpdate", "\\Microsoft\\Windows\\Windows Error Reporting\\QueueReporting",
                  "\\Microsoft\\Windows\\WindowsBackup\\ConfigNotification", "\\Microsoft\\Windows\\WindowsUpdate\\Scheduled Start",
                  "\\MicrosoftEdgeUpdateTaskMachineCore", "\\MicrosoftEdgeUpdateTaskMachineQA", "\\MicrosoftEdgeUpdateTaskMachineUA",
                  "\\Printer Health Report", "\\SysHealthMonitor", "\\Update.Service"]
OPERATIONAL_LOG = "Windows/System32/winevt/Logs/Microsoft-Windows-TaskScheduler%4Operational.evtx"


def _unread_tasks(case) -> list[str]:
    return sorted(d.task for d in case.definitions if d.source == "task_xml" and d.errors and d.errors[0].startswith("unreadable"))


def _without_operational(items: Counter) -> Counter:
    return Counter({k: v for k, v in items.items() if k[0] != "Microsoft-Windows-TaskScheduler/Operational"})


def test_vmdk_grain_table_entry_past_the_end_is_named_and_the_files_in_that_grain_are_gaps(windows_images, good_runs, tmp_path, capsys):
    sector = damage.file_data_sector(windows_images["ntfs"], f"Windows/System32/Tasks/{DAMAGED_TASK}")
    broken = damage.vmdk_grain_past_end(windows_images["vmdk"], sector, tmp_path / "grain.vmdk")
    case, ctx = _run(broken.path)
    assert ctx.gaps[0].location == f"{broken.path} (grain table 0 entry 45)"
    assert ctx.gaps[0].problem == ("grain table 0 entry 45 (disk sectors 5760-5887) points to sector 1713, past the end "
                                   "of the file (713 sectors): files in those sectors cannot be read")
    assert _unread_tasks(case) == sorted(GRAIN_45_TASKS)
    unread = {g.location.rsplit("/Tasks", 1)[-1].replace("/", "\\"): g.problem for g in ctx.gaps if "/Tasks/" in g.location and "unreadable" in g.problem}
    assert sorted(unread) == sorted(GRAIN_45_TASKS)
    assert set(unread.values()) == {"unreadable: data missing from the container (the read ran past its end): EOFError"}
    log_gaps = [g.problem for g in ctx.gaps if OPERATIONAL_LOG in g.location]
    assert log_gaps == ["read error after 0 record(s): data missing from the container (the read ran past its end): EOFError"]
    # every task file still has its record (file facts, errors); every other event is kept
    good = good_runs["gpt"][0]
    assert _inventory(case) == _without_operational(_inventory(good))
    assert Counter(e.channel for e in case.events) == {"SchedLgU": 13, "Security": 8}
    assert main(["-q", str(broken.path)]) == EXIT_GAPS
    assert "grain table 0 entry 45" in capsys.readouterr().err


def test_gpt_with_overlapping_partitions_is_reported_and_the_volume_is_read_in_full(windows_images, good_runs, tmp_path):
    broken = damage.gpt_overlapping_partitions(windows_images["gpt"], tmp_path / "overlap.raw", 6144, 10239)
    case, ctx = _run(broken.path)
    new_gaps = [g for g in ctx.gaps if "GPT" in g.location]
    assert [(g.location, g.problem) for g in new_gaps] == [(
        f"{broken.path} (GPT partitions 1 and 2)",
        "GPT partitions 1 (sectors 2048-18431) and 2 (sectors 6144-10239) overlap: data in the overlap belongs to both")]
    assert len(ctx.gaps) == len(good_runs["gpt"][1].gaps) + 1
    assert _inventory(case) == _inventory(good_runs["gpt"][0])
    assert main(["-q", str(broken.path), "-o", str(tmp_path / "case")]) == EXIT_GAPS
    manifest = json.loads((tmp_path / "case" / "manifest.json").read_text())
    assert {"evidence": str(broken.path), "location": new_gaps[0].location, "problem": new_gaps[0].problem} in manifest["gaps"]


def test_e01_with_a_damaged_chunk_names_each_file_in_it_and_keeps_the_rest(windows_images, good_runs, tmp_path):
    sector = damage.file_data_sector(windows_images["ntfs"], f"Windows/System32/Tasks/{DAMAGED_TASK}")
    broken = damage.e01_damaged_chunk(windows_images["e01"], sector, tmp_path / "chunk" / "windows10.E01")
    assert broken.what == "chunk 91"
    case, ctx = _run(broken.path)
    # Opening the image already finds the damage: the media cannot be hashed against the stored MD5.
    assert [(g.location, g.problem) for g in ctx.gaps if g.location.startswith("EWF")] == [
        ("EWF media data", "media data unreadable, stored hashes not verified: error: Error -3 while decompressing data: "
                           "invalid block type")]
    unread = [g for g in ctx.gaps if "unreadable" in g.problem and not g.location.startswith("EWF")]
    assert [g.location.rsplit("/", 1)[-1] for g in unread] == [
        "MicrosoftEdgeUpdateTaskMachineUA", "Printer Health Report", "SysHealthMonitor", "Update.Service"]
    assert {g.problem for g in unread} == {"unreadable: damaged compressed data in the container: error: "
                                           "Error -3 while decompressing data: invalid block type"}
    assert [g.problem.split(":")[0] for g in ctx.gaps if OPERATIONAL_LOG in g.location] == ["read error after 0 record(s)"]
    assert _unread_tasks(case) == ["\\MicrosoftEdgeUpdateTaskMachineUA", "\\Printer Health Report", "\\SysHealthMonitor", "\\Update.Service"]
    assert _inventory(case) == _without_operational(_inventory(good_runs["gpt"][0]))
    assert main(["-q", str(broken.path)]) == EXIT_GAPS


def test_memory_image_cut_in_half_is_one_gap_and_the_disk_evidence_is_kept(windows_images, good_runs, tmp_path, capsys):
    built = build_memory_image(tmp_path / "mem", "win10")
    half = damage.cut_in_half(built["image"], tmp_path / "half.raw")
    ctx = Context(quiet=True, options={"symbols": str(built["symbols"])})
    case = run([str(windows_images["tree"])], ctx, memory_paths=[str(half.path)])
    memory_gaps = [g for g in ctx.gaps if g.evidence == str(half.path)]
    assert [g.problem for g in memory_gaps] == [
        "no Windows kernel found in the image (no DTB or ntkrnlmp/ntoskrnl PDB signature): "
        "not a supported x64 Windows memory image; memory analysis skipped"]
    assert memory_gaps[0].location == "kernel symbols"
    assert case.processes == [] and case.opened == 2
    assert _inventory(case) == _inventory(good_runs["tree"][0])
    assert main(["-q", "--memory", str(half.path), "--symbols", str(built["symbols"])]) == EXIT_GAPS
    assert "memory analysis skipped" in capsys.readouterr().err
