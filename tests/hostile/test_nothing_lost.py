"""Nothing lost: one image damaged in two places at once still yields every readable artifact, and
every unreadable one is named in the gaps.

The raw GPT disk of the test machine gets (1) a wrecked MFT record for one task file and (2) a torn
record inside the first chunk of the TaskScheduler Operational log, both in the same copy. The good
image is counted first, against the builder's own lists where they exist (task files, at jobs,
TaskCache GUIDs) and against the logs' record numbers (1..N, none missing); then the damaged run
must differ from the good one by exactly the two damaged artifacts, each named by a gap.
"""

from __future__ import annotations

import struct
from collections import Counter

import pytest
from dissect.ntfs import NTFS

from test_images import damage
from test_images.build import PARTITION_START, SECTOR, image_tasks
from test_images.taskcache_scenarios import TASKCACHE, log_only_keys, taskcache_keys
from test_images.windows_tree import at_jobs
from triage.cli import EXIT_GAPS, main
from triage.collect import Context
from triage.evtx_reader import EvtxReader
from triage.run import run
from triage.taskpath import display_task_path

DAMAGED_TASK = "SysHealthMonitor"
OPERATIONAL = "Microsoft-Windows-TaskScheduler/Operational"
OPERATIONAL_LOG = "Windows/System32/winevt/Logs/Microsoft-Windows-TaskScheduler%4Operational.evtx"
TORN_RECORD_ID = 4  # EventID 140 "task updated", at file offset 0x1c88 (chunk 0)


def _inventory(case) -> Counter:
    """Definitions by (source, task, file or key) and events by (channel, file, record number)."""
    items = Counter((d.source, d.task, d.provenance.location.split(":", 1)[-1].lstrip("/c")) for d in case.definitions)
    items.update((e.channel, e.provenance.location.split(":", 1)[-1].lstrip("/c"), e.provenance.offset) for e in case.events)
    return items


def _builder_taskcache_guids() -> set[str]:
    """Every task the builder registered: Tasks\\{GUID} keys and the Id of every Tree task key."""
    guids = set()
    for key in taskcache_keys(image_tasks()) + log_only_keys(image_tasks()):
        relative = key.path[len(TASKCACHE) + 1:]
        values = {v.name: v for v in key.values}
        if relative.startswith("Tasks\\"):
            guids.add(relative.split("\\")[1].upper())
        elif relative.startswith("Tree\\") and "Id" in values:
            guids.add(values["Id"].data.decode("utf-16-le").rstrip("\0").upper())
    return guids


def _file_offset_on_disk(volume, path_in_volume: str, offset: int) -> int:
    """Byte offset in the GPT disk of ``offset`` inside a non-resident file of the NTFS volume."""
    with volume.open("rb") as handle:
        fs = NTFS(handle)
        position = 0
        for lcn, clusters in fs.mft.get(path_in_volume).dataruns():
            size = clusters * fs.cluster_size
            if position <= offset < position + size:
                return PARTITION_START * SECTOR + lcn * fs.cluster_size + offset - position
            position += size
    raise ValueError(f"offset 0x{offset:x} is not in {path_in_volume}")


def _tear_record(disk, volume, record_offset: int) -> None:
    """Make a record's leading size disagree with its trailing copy, as a torn write leaves it."""
    at = _file_offset_on_disk(volume, OPERATIONAL_LOG, record_offset + 4)
    with disk.open("r+b") as handle:
        handle.seek(at)
        size, = struct.unpack("<I", handle.read(4))
        handle.seek(at)
        handle.write(struct.pack("<I", size + 8))


@pytest.fixture(scope="module")
def good(windows_images):
    ctx = Context(quiet=True)
    return run([str(windows_images["gpt"])], ctx), ctx


def test_good_image_output_holds_everything_the_builder_planted(windows_images, good):
    case, _ = good
    xml_tasks = sorted(d.task for d in case.definitions if d.source == "task_xml")
    assert xml_tasks == sorted(display_task_path(t.name) for t in image_tasks())
    assert len(xml_tasks) == 45
    assert sorted(d.task for d in case.definitions if d.source == "job") == sorted(
        display_task_path(j.name[:-4]) for j in at_jobs())
    cached = {d.details["guid"] for d in case.definitions if d.source == "taskcache"}
    assert cached == _builder_taskcache_guids() and len(cached) == 44
    for log, channel in ((OPERATIONAL_LOG, OPERATIONAL), ("Windows/System32/winevt/Logs/Security.evtx", "Security")):
        with (windows_images["tree"] / log).open("rb") as handle:
            records = list(EvtxReader(handle))
        assert [r.record_id for r in records] == list(range(1, len(records) + 1))  # the log itself misses nothing
        assert sorted(e.provenance.offset for e in case.events if e.channel == channel) == sorted(
            r.fields["EventRecordID"] for r in records)  # every record is an event (by its EventRecordID)
    assert Counter(e.channel for e in case.events) == {OPERATIONAL: 20, "SchedLgU": 13, "Security": 8}


def test_two_damages_at_once_lose_exactly_the_two_damaged_artifacts_and_name_both(windows_images, good, tmp_path):
    broken = damage.corrupt_mft_record(windows_images["gpt"], windows_images["ntfs"],
                                       f"Windows/System32/Tasks/{DAMAGED_TASK}", tmp_path / "two.raw")
    with (windows_images["tree"] / OPERATIONAL_LOG).open("rb") as handle:
        torn = next(r for r in EvtxReader(handle) if r.record_id == TORN_RECORD_ID)
    torn_at = torn.offset
    _tear_record(broken.path, windows_images["ntfs"], torn_at)
    ctx = Context(quiet=True)
    case = run([str(broken.path)], ctx)

    good_case, good_ctx = good
    lost = _inventory(good_case) - _inventory(case)
    assert sorted(lost) == sorted([
        ("task_xml", f"\\{DAMAGED_TASK}", f"sysvol/Windows/System32/Tasks/{DAMAGED_TASK}"),
        (OPERATIONAL, OPERATIONAL_LOG, torn.fields["EventRecordID"]),
    ])
    assert not _inventory(case) - _inventory(good_case)  # nothing invented either

    old = {(g.location, g.problem) for g in good_ctx.gaps}
    new = [(g.location, g.problem) for g in ctx.gaps if (g.location, g.problem) not in old]
    chunk = f"/c:/{OPERATIONAL_LOG} (chunk 0 at offset 0x1000)"
    assert new == [
        (f"sysvol/Windows/System32/Tasks/{DAMAGED_TASK}", "entry not readable: BrokenMftError: Invalid MFT record Signature: b'BAAD'"),
        (chunk, "record data checksum mismatch (records altered or torn); decoding each record on its own"),
        (chunk, f"record {TORN_RECORD_ID} at chunk offset 0x{torn_at - 0x1000:x} is torn (size fields disagree); "
                f"resumed at 0x{torn_at - 0x1000 + 0x250:x}"),
    ]
    assert all(g.evidence == str(broken.path) for g in ctx.gaps)
    assert main(["-q", str(broken.path)]) == EXIT_GAPS
