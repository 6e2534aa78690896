"""The in-memory TaskCache: decoded with triage's decoder, stealth checks, and volatility's defects."""

from __future__ import annotations

from triage.parsers.taskcache_definition import stealth_flags


def _stamp(definition, meaning):
    return next(s.utc for s in definition.stamps if s.meaning == meaning)


def test_memory_taskcache_holds_every_task_with_full_paths(win10):
    assert sorted(win10.definitions) == [r"\Microsoft\Windows\Defrag\ScheduledDefrag", r"\Microsoft\Windows\Maintenance\SyncData",
                                         r"\Microsoft\Windows\Wininet\CacheTask", r"\WinUpdateCheck"]
    assert {d.source for d in win10.definitions.values()} == {"memory_taskcache"}


def test_tarrask_task_without_sd_and_index_zero_task_are_flagged(win10):
    stealth = {task: stealth_flags(d.details) for task, d in win10.definitions.items()}
    assert stealth == {r"\Microsoft\Windows\Defrag\ScheduledDefrag": [], r"\Microsoft\Windows\Maintenance\SyncData": ["index_zero"],
                       r"\Microsoft\Windows\Wininet\CacheTask": [], r"\WinUpdateCheck": ["sd_missing"]}
    assert win10.definitions[r"\Microsoft\Windows\Defrag\ScheduledDefrag"].details["sd_sddl"] == \
        "O:BAG:SYD:(A;;0x1f019f;;;BA)(A;;0x1f019f;;;SY)(A;;0x1200a9;;;AU)"


def test_actions_triggers_and_times_are_decoded(win10):
    tarrask = win10.definitions[r"\WinUpdateCheck"]
    assert [a.command for a in tarrask.actions] == [r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"]
    assert tarrask.principal_id == "LocalSystem" and tarrask.user_id == "S-1-5-18"
    assert [t.kind for t in tarrask.triggers] == ["boot"]
    assert _stamp(tarrask, "registered") == "2024-05-14T09:05:41Z"
    assert _stamp(tarrask, "last_run") == "2024-05-14T09:12:03Z"
    cache = win10.definitions[r"\Microsoft\Windows\Wininet\CacheTask"]
    assert cache.hidden is True and cache.actions[0].class_id == "{0358B920-0AC7-461F-98F4-58E32CD89148}"
    assert all(d.errors == [] for d in win10.definitions.values())


def test_volatility_scheduled_tasks_swaps_times_and_mangles_clsids_where_triage_does_not(images, win10, vol):
    rows = {r["Task Name"]: r for r in vol(images["win10"], "windows.registry.scheduled_tasks")}
    defrag = win10.definitions[r"\Microsoft\Windows\Defrag\ScheduledDefrag"]
    # volatility keeps only the leaf name and reports the last run as the creation time
    assert "ScheduledDefrag" in rows and r"\Microsoft\Windows\Defrag\ScheduledDefrag" not in rows
    assert rows["ScheduledDefrag"]["Creation Time"].startswith("2024-05-10T03:00:00")
    assert rows["ScheduledDefrag"]["Last Run Time"].startswith("2019-12-07T09:10:00")
    assert _stamp(defrag, "registered") == "2019-12-07T09:10:00Z" and _stamp(defrag, "last_run") == "2024-05-10T03:00:00Z"
    # volatility drops the leading zeros of the CLSID groups
    assert rows["CacheTask"]["Action"] == "{358b920-ac7-461f-98f4-58e32cd89148}"
    assert win10.definitions[r"\Microsoft\Windows\Wininet\CacheTask"].actions[0].class_id == "{0358B920-0AC7-461F-98F4-58E32CD89148}"
    # and it has no notion of the missing SD
    assert "SD" not in rows["WinUpdateCheck"] and stealth_flags(win10.definitions[r"\WinUpdateCheck"].details) == ["sd_missing"]


def test_win7_taskcache_decodes_version_1_actions(win7):
    task = win7.definitions[r"\AdobeFlashSync"]
    assert task.actions[0].command_line == r'cmd.exe /c "C:\Windows\Temp\bk.bat"'
    assert "context" not in task.actions[0].details  # Actions version 1 has no context string
    assert stealth_flags(task.details) == [] and task.errors == []


def _disk_definitions(tmp_path, scenario: str, memory_hive_name: str, evidence: str) -> list:
    """The scenario's SOFTWARE hive bytes (the very regf cells the memory image holds) written as a file,
    read by the disk collector's regf reader (dissect) and mapped as the memory plugin maps them."""
    from dissect.target.helpers.regutil import RegfHive
    from test_images.memimage import SCENARIOS, _filetime, serialize_hive, software_hive
    from triage.collect import Context, Source
    from triage.collect.taskcache import _read_state
    from triage.collect.windows_tasks import Where
    from triage.parsers.taskcache_definition import task_definition, tasks_in
    from triage.records import EvidenceRef
    from triage.volplugins.taskcache_mem import HIVE_ROOT

    sc = SCENARIOS[scenario]()
    base_block, bins = serialize_hive(software_hive(sc), "\\SystemRoot\\System32\\Config\\SOFTWARE", _filetime(sc.boot))
    tmp_path.mkdir()
    hive_file = tmp_path / "SOFTWARE"
    hive_file.write_bytes(base_block + bins)
    ctx = Context(quiet=True)
    with hive_file.open("rb") as handle:
        where = Where(Source(ref=EvidenceRef(path=str(hive_file), kind="directory")), ctx)
        state = _read_state(RegfHive(hive_file, handle), "hive", str(hive_file), where)
    assert state is not None and ctx.gaps == []
    return [task_definition(keys, hive_root=HIVE_ROOT, hive_file=memory_hive_name, artifact="memory_taskcache",
                            evidence=evidence) for keys in tasks_in(state.keys)]


def test_disk_and_memory_taskcache_give_identical_definitions_for_the_same_bytes(tmp_path, win10, win7):
    from triage.records import to_dict

    for scenario, run in (("win10", win10), ("win7", win7)):
        memory = sorted(run.definitions.values(), key=lambda d: d.task.lower())
        disk = _disk_definitions(tmp_path / scenario, scenario, memory[0].details["hive"], memory[0].provenance.evidence)
        assert [d.task for d in disk] == [d.task for d in memory] and len(disk) >= 2
        assert [to_dict(d) for d in disk] == [to_dict(d) for d in memory]
    # the drifts are gone: one meaning per value, one stamp form per key time
    tarrask = win10.definitions[r"\WinUpdateCheck"]
    assert tarrask.date.meaning == "registration_date"
    assert sorted({s.meaning for s in tarrask.stamps}) == ["key_last_written", "last_run", "last_successful_run", "registered"]
    assert [s.as_written.split(" ", 1)[1] for s in tarrask.stamps if s.meaning == "key_last_written"] == ["(Tree key)", "(Tasks key)"]
    assert set(tarrask.details["key_last_written"]) == {"tree", "tasks"}
