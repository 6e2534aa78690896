"""The in-memory TaskCache: decoded with triage's decoder, stealth checks, and volatility's defects."""

from __future__ import annotations


def _stamp(definition, meaning):
    return next(s.utc for s in definition.stamps if s.meaning == meaning)


def test_memory_taskcache_holds_every_task_with_full_paths(win10):
    assert sorted(win10.definitions) == [r"\Microsoft\Windows\Defrag\ScheduledDefrag", r"\Microsoft\Windows\Maintenance\SyncData",
                                         r"\Microsoft\Windows\Wininet\CacheTask", r"\WinUpdateCheck"]
    assert {d.source for d in win10.definitions.values()} == {"memory_taskcache"}


def test_tarrask_task_without_sd_and_index_zero_task_are_flagged(win10):
    stealth = {task: d.details["stealth"] for task, d in win10.definitions.items()}
    assert stealth == {r"\Microsoft\Windows\Defrag\ScheduledDefrag": [], r"\Microsoft\Windows\Maintenance\SyncData": ["index_zero"],
                       r"\Microsoft\Windows\Wininet\CacheTask": [], r"\WinUpdateCheck": ["sd_missing"]}
    assert win10.definitions[r"\Microsoft\Windows\Defrag\ScheduledDefrag"].details["tree_sd"] == \
        "O:BAG:SYD:(A;;0x1f019f;;;BA)(A;;0x1f019f;;;SY)(A;;0x1200a9;;;AU)"


def test_actions_triggers_and_times_are_decoded(win10):
    tarrask = win10.definitions[r"\WinUpdateCheck"]
    assert [a.command for a in tarrask.actions] == [r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"]
    assert tarrask.principal_id == "LocalSystem" and tarrask.user_id == "S-1-5-18"
    assert [t.kind for t in tarrask.triggers] == ["boot"]
    assert _stamp(tarrask, "created") == "2024-05-14T09:05:41Z"
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
    assert _stamp(defrag, "created") == "2019-12-07T09:10:00Z" and _stamp(defrag, "last_run") == "2024-05-10T03:00:00Z"
    # volatility drops the leading zeros of the CLSID groups
    assert rows["CacheTask"]["Action"] == "{358b920-ac7-461f-98f4-58e32cd89148}"
    assert win10.definitions[r"\Microsoft\Windows\Wininet\CacheTask"].actions[0].class_id == "{0358B920-0AC7-461F-98F4-58E32CD89148}"
    # and it has no notion of the missing SD
    assert "SD" not in rows["WinUpdateCheck"] and win10.definitions[r"\WinUpdateCheck"].details["stealth"] == ["sd_missing"]


def test_win7_taskcache_decodes_version_1_actions(win7):
    task = win7.definitions[r"\AdobeFlashSync"]
    assert task.actions[0].command_line == r'cmd.exe /c "C:\Windows\Temp\bk.bat"'
    assert "context" not in task.actions[0].details  # Actions version 1 has no context string
    assert task.details["stealth"] == [] and task.errors == []
