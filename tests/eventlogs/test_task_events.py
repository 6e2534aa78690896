"""Task events from real logs: names, process ids, users, and tasks rebuilt from 4698 content."""

from __future__ import annotations

import json
from collections import Counter

from triage.parsers.evtx_task import EvtxTaskError, generic_event, task_event
from triage.records import to_dict

from evtx_corpus import ATTACK, BELKASOFT, SIGMA, VELO, read, task_events


def test_taskscheduler_log_gives_all_20_events_with_their_lifecycle_actions():
    events = task_events(VELO / "TaskScheduler.evtx")
    assert len(events) == 20
    assert Counter(e.action for e in events) == {
        "registered": 3, "updated": 1, "process_created": 2, "started": 2, "action_started": 2, "run_by_user": 2,
        "action_completed": 2, "finished": 2, "deleted": 3, "disabled": 1}
    assert [e.task for e in events if e.action == "registered"] == ["\\T1053_005_OnLogon", "\\T1053_005_OnStartup", "\\T1053_005_powershell"]


def test_129_puts_the_task_process_id_on_the_task():
    created = [e for e in task_events(VELO / "TaskScheduler.evtx") if e.event_id == 129]
    assert [(e.task, e.process_id, e.image, e.time.utc) for e in created] == [
        ("\\T1053_005_OnLogon", 6292, "cmd.exe", "2021-01-27T11:41:33.455849Z"),
        ("\\T1053_005_powershell", 6632, "calc.exe", "2021-01-27T11:42:05.631171Z"),
    ]
    first = created[0]
    assert first.provenance.artifact == "evtx" and first.provenance.offset == 2603
    assert first.time.meaning == "event_logged" and first.time.precision == "1us"
    assert first.fields["ProcessID"] == 6292 and list(first.fields) == sorted(first.fields)


def test_action_completed_keeps_the_result_code_as_an_hresult():
    done = [e for e in task_events(VELO / "TaskScheduler.evtx") if e.event_id == 201]
    assert [(e.task, e.result_code, e.process_id) for e in done] == [
        ("\\T1053_005_OnLogon", "0x80070001", 6292), ("\\T1053_005_powershell", "0x00000000", 6632)]


def test_security_4698_rebuilds_each_task_with_actions_and_triggers():
    events = task_events(VELO / "SecurityTasks.evtx")
    created = {e.task: e for e in events if e.event_id == 4698}
    assert sorted(created) == ["\\T1053_005_OnLogon", "\\T1053_005_OnStartup", "\\T1053_005_powershell"]
    rebuilt = {task: [(a.kind, a.command_line) for a in e.definition.actions] for task, e in created.items()}
    assert rebuilt == {"\\T1053_005_OnLogon": [("exec", "cmd.exe /c calc.exe")],
                       "\\T1053_005_OnStartup": [("exec", "cmd.exe /c calc.exe")],
                       "\\T1053_005_powershell": [("exec", "calc.exe")]}
    assert {t: [x.kind for x in e.definition.triggers] for t, e in created.items()} == {
        "\\T1053_005_OnLogon": ["logon"], "\\T1053_005_OnStartup": ["boot"], "\\T1053_005_powershell": ["logon"]}
    onlogon = created["\\T1053_005_OnLogon"]
    assert (onlogon.user, onlogon.user_sid, onlogon.logon_id) == (
        "RE-DEV\\yolo", "S-1-5-21-128822557-2730879828-3162054034-1000", "0x30e6e")
    assert onlogon.definition.source == "evtx_4698" and onlogon.definition.author == "RE-DEV\\yolo"
    assert onlogon.definition.provenance.value_name == "TaskContent" and onlogon.definition.provenance.offset == 20022
    # every deleted task (4699, empty content) is known from its 4698 in the same log
    deleted = [e.task for e in events if e.event_id == 4699]
    assert sorted(deleted) == sorted(created) and all(e.definition is None for e in events if e.event_id == 4699)


def test_4702_rebuilds_the_updated_definition_from_task_content_new():
    updated = [e for e in task_events(VELO / "SecurityTasks.evtx") if e.event_id == 4702][0]
    assert updated.definition.source == "evtx_4702"
    assert [a.command_line for a in updated.definition.actions] == ["cmd.exe /c ping -n 10"]


def test_atexec_task_is_rebuilt_from_the_log_after_its_deletion():
    events = task_events(ATTACK / "Lateral Movement/LM_ScheduledTask_ATSVC_target_host.evtx")
    assert [(e.event_id, e.action, e.task) for e in events] == [
        (5145, "share_access", None), (4698, "created", "\\CYAlyNSS"), (4699, "deleted", "\\CYAlyNSS")]
    assert events[0].fields["RelativeTargetName"] == "atsvc" and events[0].user == "EXAMPLE\\Administrator"
    assert [a.command_line for a in events[1].definition.actions] == ["cmd.exe /C tasklist > %windir%\\Temp\\CYAlyNSS.tmp 2>&1"]


def test_sysmon_task_tooling_events_name_their_task():
    events = task_events(ATTACK / "Privilege Escalation/sysmon_1_11_exec_as_system_via_schedtask.evtx")
    assert [(e.event_id, e.action, e.task, e.process_id is not None) for e in events] == [
        (1, "process_creation", "\\elevator", True), (11, "file_created", "\\elevator", True),
        (1, "process_creation", "\\elevator", True), (1, "process_creation", None, True),
        (1, "process_creation", "\\elevator", True)]
    assert events[3].parent_image.endswith("taskeng.exe")  # the payload the task started


def test_taskcache_value_deletion_names_the_task_from_the_tree_key():
    path = (SIGMA / "regression_data/rules/windows/registry/registry_delete/registry_delete_schtasks_hide_task_via_sd_value_removal"
            / "acd74772-5f88-45c7-956b-6a7b36c294d2.evtx")
    [event] = task_events(path)
    assert (event.action, event.task, event.image) == ("registry_deleted", "\\MaliciousTask", "C:\\Windows\\system32\\reg.exe")


# PROVENANCE "scheduled-task-relevant events" counts; two files differ on purpose (see comments).
RELEVANT = {
    ATTACK / "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx": 2,
    ATTACK / "AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx": 2,
    ATTACK / "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx": 3,
    ATTACK / "Execution/sysmon_exec_from_vss_persistence.evtx": 2,
    ATTACK / "Persistence/persistence_sysmon_11_13_1_shime_appfix.evtx": 5,
    ATTACK / "Persistence/persistence_SilentProcessExit_ImageHijack_sysmon_13_1.evtx": 2,
    ATTACK / "Privilege Escalation/Sysmon_UACME_34.evtx": 2,
    ATTACK / "Privilege Escalation/privesc_spoolsv_spl_file_write_sysmon11.evtx": 2,
    ATTACK / "Credential Access/ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx": 4,
    # UScheduler writes are a near miss (not TaskCache): PROVENANCE lists them, they are not task events
    ATTACK / "Privilege Escalation/PrivEsc_CVE-2020-1313_Sysmon_13_UScheduler_Cmdline.evtx": 0,
    ATTACK / "Lateral Movement/LM_sysmon_remote_task_src_powershell.evtx": 0,
    # + `cmd.exe /c "at 13:20 /interactive cmd"`: the at.exe invocation itself, as for schtasks
    ATTACK / "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx": 7,
    # + the cmd.exe child of taskhostw.exe: the hijacked CDSSync task's payload
    ATTACK / "Privilege Escalation/sysmon_uacbypass_CDSSync_schtask_hijack_byeintegrity5.evtx": 2,
    BELKASOFT: 3851,
}


def test_task_related_event_counts_per_corpus_log():
    assert {path: len(task_events(path)) for path in RELEVANT} == RELEVANT


def test_output_is_byte_identical_across_runs():
    path = VELO / "SecurityTasks.evtx"
    first = json.dumps([to_dict(e) for e in task_events(path)], sort_keys=False)
    assert first == json.dumps([to_dict(e) for e in task_events(path)], sort_keys=False)


def test_unreadable_task_content_keeps_the_event_and_says_why():
    fields = dict(read(VELO / "SecurityTasks.evtx")[0].fields)
    fields["TaskContent"] = "<Task><broken"
    event = task_event(fields, location="x.evtx")
    assert event.action == "created" and event.definition.errors[0].startswith("TaskContent unreadable: ")
    assert event.definition.details["raw_xml"] == "<Task><broken"


def test_event_without_event_id_raises_the_documented_error_only():
    for broken in ({}, {"EventID": "x", "TimeCreated_SystemTime": "2021-01-01T00:00:00.000000Z"},
                   {"EventID": 4698, "TimeCreated_SystemTime": None}):
        try:
            generic_event(broken, location="x")
        except EvtxTaskError:
            continue
        raise AssertionError(f"no EvtxTaskError for {broken}")
