"""TaskCache collector on the test image's SOFTWARE hive (built with hivex by the image builder), read
through a real dissect Target; every key and value triage reports is re-read with python-registry."""

from __future__ import annotations

import hashlib
import os
from datetime import timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dissect.target import Target
from Registry import Registry

from test_images import taskcache_scenarios as scenarios
from test_images.build import build_hive
from test_images.regf import filetime
from test_images.taskcache_blobs import encode_actions, exec_action
from test_images.windows_tree import (
    BEACON_TASK, COM_HIJACK_CLSID, COM_HIJACK_DLL, COM_TASK, PlantedHive, RegKey, all_tasks, binary, dword, stock_tasks, sz,
)
from triage.collect import Context, Source
from triage.collect.taskcache import collect
from triage.parsers.hive_log import hive_is_dirty, log_entries
from triage.records import EvidenceRef, HostInfo, TaskDefinition

BERLIN = ZoneInfo("Europe/Berlin")
HKLM = "HKLM\\SOFTWARE\\"
TASKCACHE = HKLM + scenarios.TASKCACHE


def planted_tasks():
    return sorted(all_tasks() + scenarios.stealth_task_files(), key=lambda t: t.name.lower())


def write_target(root: Path, tasks, software: bytes, logs: tuple[bytes, bytes] | None = None,
                 regback: bytes | None = None) -> Path:
    config = root / "Windows" / "System32" / "config"
    config.mkdir(parents=True)
    (config / "SOFTWARE").write_bytes(software)
    if logs:
        (config / "SOFTWARE.LOG1").write_bytes(logs[0])
        (config / "SOFTWARE.LOG2").write_bytes(logs[1])
    if regback:
        (config / "RegBack").mkdir()
        (config / "RegBack" / "SOFTWARE").write_bytes(regback)
    for task in tasks:
        path = root / task.file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(task.data)
        os.utime(path, (task.times.accessed.timestamp(), task.times.modified.timestamp()))
    return root


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The dirty-hive form: SOFTWARE without the log-only task, SOFTWARE.LOG1/.LOG2, RegBack from install day."""
    work = tmp_path_factory.mktemp("taskcache")
    tasks = planted_tasks()
    clean = scenarios.software_hive(tasks, work / "build")
    dirty = scenarios.dirty_software_hive(clean, scenarios.log_only_keys(tasks), work / "build")
    regback = scenarios.software_hive(stock_tasks(), work / "regback")
    root = write_target(work / "evidence", tasks, dirty.primary, (dirty.log1, dirty.log2), regback)
    (work / "replayed.hive").write_bytes(dirty.replayed)
    return {"root": root, "dirty": dirty, "clean": clean, "replayed": work / "replayed.hive", "tasks": tasks, "work": work}


def run(root: Path, tz=BERLIN) -> tuple[list[TaskDefinition], Context]:
    ctx = Context(quiet=True)
    source = Source(ref=EvidenceRef(path=str(root), kind="dir", sha256="ab" * 32), target=Target.open(root), tz=tz,
                    os_family="windows", host=HostInfo(hostname="WS-FIN-042"))
    return list(collect(source, ctx)), ctx


@pytest.fixture(scope="module")
def collected(image):
    records, ctx = run(image["root"])
    return {r.task: r for r in records}, records, ctx


def test_one_record_per_registered_task_and_none_for_unregistered_files(image, collected):
    by_task, records, _ = collected
    registered = {e.task for e in scenarios.registry_entries(image["tasks"])}
    expected = registered | {scenarios.GHOST_TASK, scenarios.TASKS_ONLY_TASK, scenarios.LOG_ONLY_TASK}
    assert sorted(by_task, key=str.lower) == sorted(expected, key=str.lower)
    assert len(records) == len(expected) == 44
    assert scenarios.XML_ONLY_TASK not in by_task


def _python_registry_key(hive: Registry.Registry, location: str):
    return hive.open(location[len(HKLM):])


def test_every_reported_key_and_value_matches_python_registry(image, collected):
    _, records, _ = collected
    primary = Registry.Registry(str(image["root"] / "Windows/System32/config/SOFTWARE"))
    replayed = Registry.Registry(str(image["replayed"]))
    compared = 0
    for record in records:
        hive = replayed if record.details["only_after_log_replay"] else primary
        for which in ("tree", "tasks"):
            location = record.details[f"{which}_key"]
            if location is None:
                continue
            key = _python_registry_key(hive, location)
            assert record.details["key_last_written"][which] == key.timestamp().replace(tzinfo=timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")
            independent = {v.name(): (v.raw_data().hex(), v.value_type()) for v in key.values()}
            ours = {name: (fact["hex"], fact["type"]) for name, fact in record.details["values"][which].items()}
            assert {n: h for n, (h, _) in ours.items()} == {n: h for n, (h, _) in independent.items()}
            types = {1: "REG_SZ", 3: "REG_BINARY", 4: "REG_DWORD"}
            assert {n: t for n, (_, t) in ours.items()} == {n: types[t] for n, (_, t) in independent.items()}
            compared += len(independent)
        for index_key in record.details["index_keys"]:
            hive.open(f"{scenarios.TASKCACHE}\\{index_key}\\{record.details['guid']}")
    assert compared == 558


def test_tarrask_tree_key_has_no_sd_but_keeps_id_and_index(collected):
    record = collected[0][scenarios.TARRASK_TASK]
    d = record.details
    assert (d["sd_present"], d["sd_sddl"], d["index"], d["guid"]) == (False, None, 1, scenarios.task_guid(scenarios.TARRASK_TASK))
    assert d["tree_key"] == f"{TASKCACHE}\\Tree\\Microsoft\\Windows\\WinUpdate\\WinUpdate"
    assert d["key_last_written"]["tree"] == "2024-03-12T15:02:58Z"
    assert [a.command for a in record.actions] == [scenarios.TARRASK_COMMAND]


def test_index_zero_and_index_deleted_are_told_apart(collected):
    zero = collected[0][scenarios.INDEX_ZERO_TASK].details
    deleted = collected[0][scenarios.INDEX_DELETED_TASK].details
    assert (zero["index_present"], zero["index"]) == (True, 0)
    assert (deleted["index_present"], deleted["index"]) == (False, None)


def test_ghosttask_fingerprints_are_listed(collected):
    record = collected[0][scenarios.GHOST_TASK]
    assert record.details["ghost_fingerprints"] == [
        "no Hash value", "no Schema value", "JobBucket CRC32 is 0", "zeros where Windows leaves uninitialised bytes",
        "trigger start 1992-05-01", "Tree SD has an empty DACL", "DynamicInfo creation time is local time, not UTC",
    ]
    assert (record.details["sd_sddl"], record.details["sd_dacl_empty"], record.details["index_keys"]) == ("O:BAG:SYD:", True, ["Plain"])
    assert record.details["hash_hex"] is None and record.details["schema"] is None
    registered = [s for s in record.stamps if s.meaning == "registered"][0]
    # DynamicInfo holds 16:22:40 local wall clock written as if it were UTC: one hour after the key write.
    assert (registered.utc, record.details["key_last_written"]["tasks"]) == ("2024-03-12T16:22:40Z", "2024-03-12T15:22:40Z")


def test_windows_written_tasks_show_no_ghost_fingerprint(collected):
    by_task = collected[0]
    assert [t for t, r in by_task.items() if r.details["ghost_fingerprints"] and t != scenarios.GHOST_TASK] == []


def test_record_fields_from_the_registry_copy(collected):
    record = collected[0][BEACON_TASK]
    created = next(t for t in all_tasks() if t.name == BEACON_TASK).times.fn_created  # registration = file creation
    created_utc = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raw = f"0x{filetime(created):016x}"
    assert (record.source, record.user_id, record.run_level, record.enabled, record.hidden) == (
        "taskcache", "S-1-5-21-2847163290-1933645801-3375812043-1001", "LeastPrivilege", True, False)
    assert (record.date.as_written, record.date.utc, record.date.basis) == ("2024-03-12T15:03:27", "2024-03-12T14:03:27Z", "local")
    assert [(s.meaning, s.utc, s.as_written) for s in record.stamps] == [
        ("key_last_written", created_utc, f"{raw} (Tree key)"),
        ("registered", created_utc, raw),
        ("key_last_written", created_utc, f"{raw} (Tasks key)"),
    ]
    assert [(t.kind, t.start.utc) for t in record.triggers] == [("logon", "2024-03-12T14:03:00Z")]
    assert record.provenance.artifact == "taskcache"
    assert record.provenance.location == f"{TASKCACHE}\\Tasks\\{scenarios.task_guid(record.task)}"
    assert record.provenance.value_name == "Actions"
    assert record.provenance.raw == record.details["actions_hex"]


def test_comhandler_resolves_to_the_dll_in_the_user_profile(collected):
    [action] = collected[0][COM_TASK].actions
    assert (action.class_id, action.resolved_dll, action.details["resolved_from"]) == (
        COM_HIJACK_CLSID, COM_HIJACK_DLL, f"{HKLM}Classes\\CLSID\\{COM_HIJACK_CLSID}\\InprocServer32")


def test_hash_matches_the_task_file_for_every_unchanged_task(image, collected):
    by_task = collected[0]
    files = {t.name: t.data for t in image["tasks"]}
    mismatched = sorted(t for t, r in by_task.items()
                        if r.details["hash_hex"] and t in files and r.details["hash_hex"] != hashlib.sha256(files[t]).hexdigest())
    assert mismatched == [scenarios.EDITED_XML_TASK]
    assert by_task[scenarios.EDITED_XML_TASK].details["hash_basis_confirmed"] is True


def test_log_only_task_is_found_only_after_replay(image, collected):
    root = image["root"]
    hive = root / "Windows/System32/config/SOFTWARE"
    assert hive_is_dirty(hive.read_bytes()[:4096])
    # dissect opens the dirty hive as it is and never applies its logs: the task does not exist for it.
    dissect_tree = Target.open(root).registry.key(f"{TASKCACHE}\\Tree\\Microsoft\\Windows")
    assert "Servicing" not in {k.name for k in dissect_tree.subkeys()}
    record = collected[0][scenarios.LOG_ONLY_TASK]
    assert record.details["only_after_log_replay"] is True
    assert record.details["log_replay"]["entries"] == ["SOFTWARE.LOG1 entry 2 at 0x200", "SOFTWARE.LOG1 entry 3 at 0x6400"]
    assert "Tasks\\Actions: added" in record.details["log_replay"]["differences"]
    assert [a.command_line for a in record.actions] == [r"C:\ProgramData\svc\health.exe --quiet"]
    others = [r.task for r in collected[1] if r.details["only_after_log_replay"]]
    assert others == [scenarios.LOG_ONLY_TASK]


def test_stale_log_entry_is_not_replayed(image):
    # LOG2 holds entry 1, older than the hive's secondary sequence number 2: already in the hive.
    entries, problems = log_entries("SOFTWARE.LOG2", image["dirty"].log2)
    assert ([e.sequence for e in entries], problems) == ([1], [])
    entries, _ = log_entries("SOFTWARE.LOG1", image["dirty"].log1)
    assert [e.sequence for e in entries] == [2, 3]


def test_dirty_hive_without_logs_gives_one_gap_and_no_log_task(image, tmp_path):
    root = write_target(tmp_path / "nologs", image["tasks"], image["dirty"].primary)
    records, ctx = run(root)
    assert scenarios.LOG_ONLY_TASK not in {r.task for r in records}
    assert [g.problem for g in ctx.gaps] == ["hive is dirty but no .LOG1/.LOG2 is present: recent changes are missing"]


def test_corrupt_log_entry_is_not_applied(image, tmp_path):
    log1 = bytearray(image["dirty"].log1)
    log1[0x200 + 40 + 100] ^= 0xFF  # inside entry 2's dirty page references / pages: Hash-1 no longer matches
    root = write_target(tmp_path / "corrupt", image["tasks"], image["dirty"].primary, (bytes(log1), image["dirty"].log2))
    records, ctx = run(root)
    assert scenarios.LOG_ONLY_TASK not in {r.task for r in records}
    assert [g.problem for g in ctx.gaps] == [
        "SOFTWARE.LOG1: log entry 2 at 0x200 fails its Marvin32 hash; later entries ignored"]


def test_regback_copy_differences_are_reported(collected):
    by_task = collected[0]
    stock = by_task[r"\Microsoft\Windows\Defrag\ScheduledDefrag"].details["regback"]
    assert (stock["present"], stock["differences"]) == (True, [])
    planted = by_task[scenarios.TARRASK_TASK].details["regback"]
    assert planted["present"] is False and "Tree\\Id: added" in planted["differences"]
    assert planted["file"].endswith("RegBack/SOFTWARE")


def test_orphans_are_records_with_flags(collected):
    tree_only = collected[0][scenarios.TREE_ONLY_TASK].details
    tasks_only = collected[0][scenarios.TASKS_ONLY_TASK].details
    assert (tree_only["tree_without_tasks"], tree_only["tasks_key"], tree_only["index"]) == (True, None, 1)
    assert (tasks_only["tasks_without_tree"], tasks_only["tree_key"]) == (True, None)
    assert tasks_only["path_value"] == scenarios.TASKS_ONLY_TASK


def test_same_input_gives_the_same_records(image, collected):
    again, _ = run(image["root"])
    assert [r.details for r in again] == [r.details for r in collected[1]]


def test_truncated_actions_blob_is_decoded_partially_with_raw_hex_and_flagged(tmp_path):
    full = encode_actions([exec_action(r"C:\Windows\System32\cmd.exe", "/c whoami"), exec_action("calc.exe")])
    truncated = full[:-9]
    guid = "{0F0E0D0C-0B0A-4908-8706-050403020100}"
    base = scenarios.TASKCACHE
    keys = (RegKey(f"{base}\\Tree\\Truncated", (sz("Id", guid), dword("Index", 3))),
            RegKey(f"{base}\\Tasks\\{guid}", (sz("Path", "\\Truncated"), binary("Actions", truncated))))
    hive = build_hive(PlantedHive("Windows/System32/config/SOFTWARE", "SOFTWARE", "CMI-CreateHive{T}", keys,
                                  stock_tasks()[0].times), tmp_path)
    root = write_target(tmp_path / "evidence", [], hive)
    records, ctx = run(root)
    [record] = records
    assert [a.command for a in record.actions] == [r"C:\Windows\System32\cmd.exe", "calc.exe"]
    assert record.details["actions_hex"] == truncated.hex()
    assert record.errors == record.details["decode_errors"] == [
        f"Actions: truncated: action[1].arguments.length needs 4 bytes at offset 0x88, value is {len(truncated)} bytes"]
    assert [g.line() for g in ctx.gaps] == [
        f"{root}: {TASKCACHE}\\Tasks\\{guid}: partly decoded: {record.errors[0]}"]


def test_not_windows_evidence_yields_nothing_and_no_gap():
    ctx = Context(quiet=True)
    source = Source(ref=EvidenceRef(path="linux.img", kind="raw"), target=object(), os_family="linux")
    assert list(collect(source, ctx)) == [] and ctx.gaps == []



def test_task_files_read_by_the_task_file_collector_are_not_read_again(image, collected, monkeypatch):
    """The TaskCache comparison takes each task file's SHA-256 and CRC32 from the task-file collector's read
    (10,000 tasks: every file was read twice) and reaches the same facts as reading the file itself."""
    from triage.collect import taskcache, windows_tasks

    ctx = Context(quiet=True)
    source = Source(ref=EvidenceRef(path=str(image["root"]), kind="dir", sha256="ab" * 32),
                    target=Target.open(image["root"]), tz=BERLIN, os_family="windows",
                    host=HostInfo(hostname="WS-FIN-042"))
    xml_files = [d for d in windows_tasks.collect(source, ctx) if d.source == "task_xml" and d.file and d.file.sha256]
    assert len(source.task_file_digests) == len(xml_files) > 40
    reads = []
    real_read = taskcache.read_file
    monkeypatch.setattr(taskcache, "read_file", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    records = list(collect(source, ctx))
    assert [str(path) for path in reads if "system32/tasks" in str(path).lower()] == []  # hives are read, not tasks
    alone = {r.task: r.details["task_file"] for r in collected[1]}  # the collector alone reads every file itself
    assert {r.task: r.details["task_file"] for r in records} == alone
    assert sum(facts is not None for facts in alone.values()) >= 40
