"""The one TaskCache mapping and the one stealth judgement: the drifts between disk and memory reconciled,
each checked on the same key values read as the disk collector and as the memory plugin label them."""

from __future__ import annotations

import struct

from triage.detect.stealth import tree_stealth
from triage.parsers.taskcache_definition import (
    TASKCACHE,
    RegKey,
    RegValue,
    key_time,
    stealth_flags,
    task_definition,
    tasks_in,
)

GUID = "{11111111-2222-3333-4444-555555555555}"
WRITTEN = 0x01DA7000_00000000  # a FILETIME in 2024


def _sid(authority: int, *subs: int) -> bytes:
    return struct.pack("<BB", 1, len(subs)) + authority.to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)


def _empty_dacl_sd() -> bytes:
    """Self-relative O:BAG:SYD: (DACL present, no ACE): what GhostTask writes into the Tree key."""
    owner, group = _sid(5, 32, 544), _sid(5, 18)
    acl = struct.pack("<BBHHH", 2, 0, 8, 0, 0)
    header = 20
    return struct.pack("<BBHIIII", 1, 0, 0x8004, header, header + len(owner), 0, header + len(owner) + len(group)) + owner + group + acl


def _sz(name: str, text: str) -> RegValue:
    return RegValue(name=name, type=1, data=(text + "\0").encode("utf-16-le"))


def _keys(*, sd: bytes | None, tasks: bool) -> dict[str, RegKey]:
    tree = RegKey(path=f"{TASKCACHE}\\Tree\\Updater", written=key_time(WRITTEN), written_filetime=WRITTEN)
    tree.values = {"id": _sz("Id", GUID), "index": RegValue(name="Index", type=4, data=struct.pack("<I", 3))}
    if sd is not None:
        tree.values["sd"] = RegValue(name="SD", type=3, data=sd)
    keys = {tree.path.lower(): tree}
    if tasks:
        task = RegKey(path=f"{TASKCACHE}\\Tasks\\{GUID}", written=key_time(WRITTEN), written_filetime=WRITTEN)
        task.values = {"path": _sz("Path", "\\Updater"), "date": _sz("Date", "2024-03-01T10:00:00")}
        keys[task.path.lower()] = task
    return keys


def _both(keys: dict[str, RegKey]):
    """The same keys mapped as the disk collector does and as the memory plugin does."""
    [found] = tasks_in(keys)
    disk = task_definition(found, hive_root=r"HKLM\SOFTWARE", hive_file="SOFTWARE", artifact="taskcache")
    memory = task_definition(found, hive_root=r"\REGISTRY\MACHINE\SOFTWARE", hive_file="SOFTWARE", artifact="memory_taskcache")
    return disk, memory


def test_tarrask_is_critical_when_the_task_loads_and_high_when_it_cannot_on_disk_and_in_memory():
    for has_tasks, risk in ((True, "Critical"), (False, "High")):
        disk, memory = _both(_keys(sd=None, tasks=has_tasks))
        assert [(flag, level) for flag, level, _, _ in tree_stealth(disk)] == [("sd_missing", risk)]
        assert tree_stealth(memory) == tree_stealth(disk)


def test_an_empty_dacl_is_one_ghosttask_clue_not_a_finding_alone_on_disk_and_in_memory():
    disk, memory = _both(_keys(sd=_empty_dacl_sd(), tasks=True))
    assert disk.details["sd_sddl"] == memory.details["sd_sddl"] == "O:BAG:SYD:"
    assert stealth_flags(disk.details) == stealth_flags(memory.details) == ["sd_empty_dacl"]
    assert tree_stealth(disk) == tree_stealth(memory) == []
    assert "Tree SD has an empty DACL" in disk.details["ghost_fingerprints"]
    assert disk.details["ghost_fingerprints"] == memory.details["ghost_fingerprints"]


def test_date_and_key_times_have_one_meaning_on_disk_and_in_memory():
    disk, memory = _both(_keys(sd=_empty_dacl_sd(), tasks=True))
    for record in (disk, memory):
        assert (record.date.meaning, record.date.as_written) == ("registration_date", "2024-03-01T10:00:00")
        assert [(s.meaning, s.as_written) for s in record.stamps] == [
            ("key_last_written", f"0x{WRITTEN:016x} (Tree key)"), ("key_last_written", f"0x{WRITTEN:016x} (Tasks key)")]
        utc = record.stamps[0].utc
        assert record.details["key_last_written"] == {"tree": utc, "tasks": utc} and utc.startswith("2024-")
