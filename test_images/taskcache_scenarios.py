"""TaskCache content of the Windows test image: the registry copy of every task, plus the stealth set.

Data only, like :mod:`test_images.windows_tree`; :mod:`test_images.build` turns it into the SOFTWARE
hive (and its transaction logs). Three entry points:

* :func:`stealth_task_files` - the task XML files the stealth scenarios need on disk (add them to
  the planted tasks *before* calling the other two);
* :func:`taskcache_keys` - ``Schedule\\TaskCache`` keys for the SOFTWARE hive: a consistent entry
  (Tree ``Id``/``Index``/``SD``, ``Tasks\\{GUID}`` values, ``Boot``/``Logon``/``Plain``/``Maintenance``
  index key) for every parseable task file, as Windows 10 writes them, and the stealth set;
* :func:`dirty_software_hive` with :func:`log_only_keys` - a dirty SOFTWARE hive whose last task exists
  only in ``SOFTWARE.LOG1`` (Windows 8.1+ log format: ``HvLE`` entries with Marvin32 hashes).

Working assumptions of the builder (the real samples do not settle them): ``Hash`` is the SHA-256 of
the task file bytes and the JobBucket CRC32 is ``zlib.crc32`` of the same bytes; ``Index`` is the
number of the index key the task is listed under (1 Boot, 2 Logon, 3 Plain, 4 Maintenance; GhostTask
writes 3 with ``Plain``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from test_images.taskcache_blobs import (
    comhandler_action,
    default_settings,
    email_action,
    encode_actions,
    encode_dynamic_info,
    encode_security_descriptor,
    encode_triggers,
    exec_action,
    filetime,
    generic_trigger,
    ghosttask_triggers,
    job_bucket,
    message_action,
    time_trigger,
    triggers_blob,
    user_info,
)
from test_images.taskxml import el, render
from test_images.windows_tree import (
    LOCAL,
    USER_AUTHOR,
    USER_SID,
    FileTimes,
    PlantedTask,
    RegKey,
    binary,
    dword,
    exec_action as xml_exec_action,
    local_text,
    principal,
    registration_info,
    schtasks_settings,
    sz,
    task_element,
    utc,
)
from triage.parsers.task_xml import TaskXmlError, duration_seconds, parse_task_xml
from triage.records import Provenance, TaskDefinition, Trigger

TASKCACHE = r"Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache"
SYSTEM_PYTHON = "/usr/bin/python3"
HIVE_FILL = Path(__file__).with_name("hive_fill.py")
GUID_NAMESPACE = uuid.UUID("5c2d1a7e-42f0-4a33-9b6e-7a8d3c1f0e21")

# --- the stealth set ------------------------------------------------------------------------

TARRASK_TASK = r"\Microsoft\Windows\WinUpdate\WinUpdate"  # Tree key without SD (HAFNIUM Tarrask)
INDEX_ZERO_TASK = r"\Microsoft\Windows\Maintenance\SvcHealthCheck"  # Tree Index = 0
INDEX_DELETED_TASK = r"\Microsoft\Windows\Chkdsk\SyncHealth"  # Tree Index value deleted
GHOST_TASK = r"\OneDrive Standalone Sync Service"  # registry only, written the GhostTask way
XML_ONLY_TASK = r"\Microsoft\Windows\Maintenance\TempCleanup"  # task file, never registered
REWRITTEN_TASK = r"\Microsoft\Office\Office Feature Updates"  # registry Actions rewritten after registration
EDITED_XML_TASK = r"\Adobe Acrobat Update Task"  # XML edited after registration (Hash mismatch)
TREE_ONLY_TASK = r"\Microsoft\Windows\Maintenance\LegacyCleanup"  # Tree Id names a Tasks key that is gone
TASKS_ONLY_TASK = r"\Microsoft\Windows\Maintenance\ReportUpload"  # Tasks key whose Tree key is gone
LOG_ONLY_TASK = r"\Microsoft\Windows\Servicing\ComponentHealth"  # only in SOFTWARE.LOG1 (dirty hive)

REWRITTEN_COMMAND = r"C:\Users\Public\Libraries\odrep.exe"
TARRASK_COMMAND = r"C:\ProgramData\Microsoft\WinUpdate\winupdate.exe"
GHOST_COMMAND = r"C:\Users\Public\Libraries\OneDriveSync.exe"
GHOST_SDDL = "O:BAG:SYD:"  # GhostTask's Tree SD: owner/group, DACL present and empty
SYSTEM_TASK_SDDL = "O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FR;;;AU)"

REWRITTEN_AT = utc(2024, 3, 12, 15, 10, 27)  # when the Actions value was overwritten
GHOST_WRITTEN = utc(2024, 3, 12, 15, 22, 40)
LOG_ONLY_CREATED = utc(2024, 3, 14, 8, 58, 2)  # registered 28 s before power was cut: never flushed

INDEX_KEYS = {1: "Boot", 2: "Logon", 3: "Plain", 4: "Maintenance"}

# Accounts the test machine knows: principal as written in XML -> (SID, SID_NAME_USE, name kept).
_WELL_KNOWN = {
    "s-1-5-18": ("S-1-5-18", 5, ""), "nt authority\\system": ("S-1-5-18", 5, ""), "system": ("S-1-5-18", 5, ""),
    "localsystem": ("S-1-5-18", 5, ""),
    "s-1-5-19": ("S-1-5-19", 5, ""), "nt authority\\local service": ("S-1-5-19", 5, ""),
    "s-1-5-20": ("S-1-5-20", 5, ""), "nt authority\\network service": ("S-1-5-20", 5, ""),
    USER_SID.lower(): (USER_SID, 1, USER_AUTHOR), USER_AUTHOR.lower(): (USER_SID, 1, USER_AUTHOR),
}
_SERVICE_SIDS = {"S-1-5-18", "S-1-5-19", "S-1-5-20"}


@dataclass(frozen=True)
class RegistryEntry:
    """How one task is registered: which values its keys hold (``None`` = value left out)."""

    task: str
    guid: str
    definition: TaskDefinition
    file_bytes: bytes  # the XML the registry copy was made from (Hash and CRC32 are taken over it)
    created: datetime
    tree_written: datetime
    tasks_written: datetime
    last_run: datetime | None = None
    actions: bytes | None = None  # overrides the Actions derived from the XML
    tree: bool = True
    tasks: bool = True
    sd: str | None = "default"
    index: int | None | str = "default"  # "default" = from the trigger kinds; None = value deleted


def task_guid(task: str) -> str:
    return "{" + str(uuid.uuid5(GUID_NAMESPACE, task.lower())).upper() + "}"


# --- task files the stealth set needs -------------------------------------------------------


def _planted(name: str, created: datetime, purpose: str, task, modified: datetime | None = None) -> PlantedTask:
    return PlantedTask(name=name, data=render(task), times=FileTimes.at(created, modified), origin="scenario",
                       purpose=purpose, task=task)


def _system_task(name: str, date: datetime, trigger, command: str, arguments: str | None, author: str,
                 hidden: bool = False, description: str | None = None):
    return task_element(
        registration_info(name, local_text(date), author, description),
        (trigger,), schtasks_settings(hidden=hidden), (xml_exec_action(command, arguments),),
        principal("S-1-5-18", run_level="HighestAvailable", logon_type=None),
    )


def _boot():
    return el("BootTrigger", el("Enabled", "true"))


def _daily(start: datetime):
    return el("CalendarTrigger", el("StartBoundary", local_text(start)), el("Enabled", "true"),
               el("ScheduleByDay", el("DaysInterval", "1")))


EDITED_ORIGINAL_AUTHOR = USER_AUTHOR
EDITED_NEW_AUTHOR = "Adobe Systems Incorporated"


def _edited_task(author: str, description: str):
    created = utc(2024, 3, 12, 15, 31, 9)
    return task_element(
        registration_info(EDITED_XML_TASK, local_text(created), author, description),
        (_daily(utc(2024, 3, 12, 17, 0)),), schtasks_settings(),
        (xml_exec_action(r"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\AdobeARM.exe"),),
        principal(USER_AUTHOR),
    )


def _rewritten_task():
    created = utc(2024, 3, 12, 15, 8, 51)
    return task_element(
        registration_info(REWRITTEN_TASK, local_text(created), "Microsoft Office",
                          "Keeps Office feature updates current."),
        (el("LogonTrigger", el("Enabled", "true")),), schtasks_settings(),
        (xml_exec_action(r"C:\Program Files\Common Files\Microsoft Shared\ClickToRun\OfficeC2RClient.exe",
                         "/frequentupdate SCHEDULEDTASK"),),
        principal(USER_AUTHOR),
    )


def stealth_task_files() -> list[PlantedTask]:
    """Task files of the stealth scenarios (the GhostTask and Tasks-only tasks have none)."""
    tarrask_created = utc(2024, 3, 12, 15, 2, 14)
    index0_created = utc(2024, 3, 12, 15, 4, 33)
    index_deleted_created = utc(2024, 3, 12, 15, 6, 2)
    xml_only_created = utc(2024, 3, 12, 15, 27, 45)
    tree_only_created = utc(2024, 3, 12, 15, 35, 20)
    edited_at = utc(2024, 3, 13, 9, 12, 55)
    return sorted([
        _planted(TARRASK_TASK, tarrask_created, "Tarrask: the Tree key's SD value was deleted (hidden from schtasks)",
                 _system_task(TARRASK_TASK, tarrask_created, _boot(), TARRASK_COMMAND, "-k netsvcs", "Microsoft Corporation")),
        _planted(INDEX_ZERO_TASK, index0_created, "Tree Index set to 0 (hidden from enumeration)",
                 _system_task(INDEX_ZERO_TASK, index0_created, _daily(utc(2024, 3, 12, 16, 0)),
                              r"C:\Users\Public\Libraries\svchost.exe", "-k LocalService", "Microsoft Corporation")),
        _planted(INDEX_DELETED_TASK, index_deleted_created, "Tree Index value deleted (hidden from enumeration)",
                 _system_task(INDEX_DELETED_TASK, index_deleted_created, _boot(),
                              r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                              r"-w hidden -nop -f C:\ProgramData\svc\sync.ps1", "Microsoft Corporation")),
        _planted(XML_ONLY_TASK, xml_only_created, "task file dropped into the Tasks folder, never registered",
                 _system_task(XML_ONLY_TASK, xml_only_created, _boot(), r"C:\ProgramData\svc\cleanup.exe", None,
                              "Microsoft Corporation")),
        _planted(REWRITTEN_TASK, utc(2024, 3, 12, 15, 8, 51), "benign XML; registry Actions rewritten to odrep.exe",
                 _rewritten_task()),
        _planted(EDITED_XML_TASK, utc(2024, 3, 12, 15, 31, 9), "XML edited after registration: Author and Description changed",
                 _edited_task(EDITED_NEW_AUTHOR, "Keeps Adobe Acrobat Reader up to date."), modified=edited_at),
        _planted(TREE_ONLY_TASK, tree_only_created, "Tree Id names a Tasks key that was deleted",
                 _system_task(TREE_ONLY_TASK, tree_only_created, _boot(), r"C:\ProgramData\svc\legacy.exe", None,
                              "Microsoft Corporation")),
        _planted(LOG_ONLY_TASK, LOG_ONLY_CREATED, "registered just before the power was cut: registry only in SOFTWARE.LOG1",
                 _system_task(LOG_ONLY_TASK, LOG_ONLY_CREATED, _boot(), r"C:\ProgramData\svc\health.exe", "--quiet",
                              "Microsoft Corporation")),
    ], key=lambda t: t.name.lower())


# --- XML definition -> registry values ------------------------------------------------------


def _parse(task: PlantedTask, data: bytes | None = None) -> TaskDefinition | None:
    try:
        return parse_task_xml(data if data is not None else task.data, task=task.name,
                              provenance=Provenance(artifact="task_xml", location=task.file_path), local_tz=LOCAL)
    except TaskXmlError:
        return None


def _account(text: str | None) -> tuple[str, int, str] | None:
    if not text:
        return None
    known = _WELL_KNOWN.get(text.lower())
    if known:
        return known
    if text.upper().startswith("S-1-"):
        return text, 4 if text.startswith("S-1-5-32-") else 5, ""
    raise KeyError(f"task principal {text!r}: add it to _WELL_KNOWN")


def _bool(settings: dict, name: str, default: bool) -> bool:
    value = settings.get(name)
    return value if isinstance(value, bool) else default


def _flags(definition: TaskDefinition, sid: str, is_group: bool) -> int:
    """JobBucket flags Windows derives from the task's settings and principal (schema defaults apply)."""
    s = definition.settings
    idle = s.get("IdleSettings") if isinstance(s.get("IdleSettings"), dict) else {}
    flags = 0x2000000  # Task
    for name, bit, default in (
        ("RunOnlyIfIdle", 0x2, False), ("DisallowStartIfOnBatteries", 0x10, True), ("StopIfGoingOnBatteries", 0x20, True),
        ("StartWhenAvailable", 0x40, False), ("RunOnlyIfNetworkAvailable", 0x80, False), ("AllowStartOnDemand", 0x100, True),
        ("WakeToRun", 0x200, False), ("Enabled", 0x400000, True), ("Hidden", 0x800000, False),
        ("AllowHardTerminate", 0x40000000, True),
    ):
        if _bool(s, name, default):
            flags |= bit
    if _bool(idle, "RestartOnIdle", False):
        flags |= 0x4
    if _bool(idle, "StopOnIdleEnd", True):
        flags |= 0x8
    policy = {"Parallel": 0x400, "StopExisting": 0x800, "Queue": 0x1000}.get(str(s.get("MultipleInstancesPolicy")), 0x2000)
    flags |= policy
    logon = {"S4U": 0x4000, "Password": 0x40000, "InteractiveTokenOrPassword": 0x80000}.get(definition.logon_type or "")
    if is_group:
        logon = 0x8000
    elif logon is None:
        logon = 0x20000 if sid in _SERVICE_SIDS else 0x10000
    flags |= logon
    if definition.run_level == "HighestAvailable":
        flags |= 0x1000000
    return flags


def _naive_local(stamp) -> datetime | None:
    """A trigger time as Windows stores it: local wall clock (localized) or UTC."""
    if stamp is None or stamp.utc is None:
        return None
    if stamp.basis == "local":
        return datetime.fromisoformat(stamp.as_written.split(".")[0])
    return datetime.fromisoformat(stamp.utc.replace("Z", "+00:00"))


def _bitmap(names: list, order: list[str]) -> int:
    return sum(1 << order.index(str(n)) for n in names if str(n) in order)


_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_WEEKS = ["1", "2", "3", "4", "Last"]
_STATES = {"ConsoleConnect": 1, "ConsoleDisconnect": 2, "RemoteConnect": 3, "RemoteDisconnect": 4,
           "SessionLock": 5, "SessionUnlock": 6}


def _trigger(trigger: Trigger):
    """Windows keeps local start/end times as wall clock (is_localized) and Z/offset times as UTC."""
    made = _local_trigger(trigger)
    for name, stamp in (("start", trigger.start), ("end", trigger.end)):
        value = getattr(made, name)
        if stamp is not None and stamp.basis != "local" and value is not None and value.is_set:
            value.is_localized = False
    return made


def _local_trigger(trigger: Trigger):
    start = _naive_local(trigger.start)
    end = _naive_local(trigger.end)
    interval = trigger.repetition_seconds or 0
    duration = duration_seconds(trigger.repetition_duration) or 0
    d = trigger.details
    if trigger.kind in ("time", "daily", "weekly", "monthly_date", "monthly_dow"):
        base = start or datetime(2000, 1, 1)
        common = dict(end=end, repetition_interval=interval, repetition_duration=duration, enabled=trigger.enabled is not False)
        if trigger.kind == "time":
            return time_trigger(base, mode="once", **common)
        if trigger.kind == "daily":
            return time_trigger(base, mode="daily", interval=int(d.get("days_interval", 1)), **common)
        if trigger.kind == "weekly":
            return time_trigger(base, mode="weekly", interval=int(d.get("weeks_interval", 1)),
                                days_of_week=_bitmap(d.get("days_of_week", []), _DAYS), **common)
        months = _bitmap(d.get("months", []), _MONTHS)
        if trigger.kind == "monthly_date":
            days = sum(1 << (int(day) - 1) for day in d.get("days_of_month", []) if str(day).isdigit())
            return time_trigger(base, mode="monthly_date", days_of_month=days, months=months, **common)
        weeks = _bitmap([("Last" if str(w) == "Last" else str(w)) for w in d.get("weeks_of_month", [])], _WEEKS)
        return time_trigger(base, mode="monthly_dow", days_of_week=_bitmap(d.get("days_of_week", []), _DAYS),
                            weeks_of_month=weeks, months=months, **common)
    user = None
    if trigger.user_id:
        sid, kind, name = _account(trigger.user_id)
        user = user_info(sid, name, sid_type=kind)
    queries = [(name, value) for name, value in (d.get("value_queries") or {}).items()]
    return generic_trigger(
        trigger.kind, delay=duration_seconds(trigger.delay) or 0, repetition_interval=interval,
        repetition_duration=duration, enabled=trigger.enabled is not False, start=start, end=end, user=user,
        session_state=_STATES.get(str(d.get("state_change"))), subscription=d.get("subscription") or "",
        value_queries=queries, wnf_state_name=str(d.get("state_name") or "").lower(),
        wnf_data=bytes.fromhex(str(d.get("data") or "")),
    )


def _actions(definition: TaskDefinition) -> bytes:
    actions = []
    for action in definition.actions:
        if action.kind == "exec":
            actions.append(exec_action(action.command or "", action.arguments or "", action.working_directory or ""))
        elif action.kind == "comhandler":
            actions.append(comhandler_action(action.class_id or "", action.data or ""))
        elif action.kind == "sendemail":
            d = action.details
            actions.append(email_action(d.get("from", ""), d.get("to", ""), d.get("subject", ""), d.get("body", ""),
                                        d.get("server", ""), cc=d.get("cc", ""), bcc=d.get("bcc", ""),
                                        reply_to=d.get("reply_to", "")))
        elif action.kind == "showmessage":
            actions.append(message_action(action.details.get("title", ""), action.details.get("body", "")))
    return encode_actions(actions, version=3, context=definition.details.get("actions_context") or definition.principal_id or "Author")


def _index(definition: TaskDefinition) -> int:
    kinds = {t.kind for t in definition.triggers}
    if "MaintenanceSettings" in definition.settings:
        return 4
    if "boot" in kinds:
        return 1
    if "logon" in kinds:
        return 2
    return 3


def _schema(definition: TaskDefinition) -> int:
    major, _, minor = str(definition.details.get("schema_version") or "1.2").partition(".")
    return (int(major) << 16) | int(minor or 0)


def _sd(definition: TaskDefinition, sid: str) -> str:
    if sid in _SERVICE_SIDS or sid.startswith("S-1-5-32-") or sid == "S-1-5-4":
        return SYSTEM_TASK_SDDL
    return f"O:{sid}G:{sid}D:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FA;;;{sid})"


def _entry_keys(entry: RegistryEntry) -> list[RegKey]:
    definition = entry.definition
    principal_text = definition.user_id or definition.group_id
    sid, sid_type, name = _account(principal_text) or ("S-1-5-18", 5, "")
    is_group = definition.user_id is None and definition.group_id is not None
    flags = _flags(definition, sid, is_group)
    crc = zlib.crc32(entry.file_bytes)
    bucket = job_bucket(user_info(sid, name, sid_type=sid_type), principal_id=definition.principal_id or "Author",
                        flags=flags, crc32=crc, settings=default_settings())
    triggers = encode_triggers(triggers_blob([_trigger(t) for t in definition.triggers], bucket))
    index = _index(definition)
    path = definition.task
    keys: list[RegKey] = []
    if entry.tree:
        tree_values = [sz("Id", entry.guid)]
        index_value = index if entry.index == "default" else entry.index
        if index_value is not None:
            tree_values.append(dword("Index", index_value))
        sddl = _sd(definition, sid) if entry.sd == "default" else entry.sd
        if sddl is not None:
            tree_values.append(binary("SD", encode_security_descriptor(sddl)))
        keys.append(RegKey(rf"{TASKCACHE}\Tree{path}", tuple(tree_values), written=entry.tree_written))
    if entry.tasks:
        values = [sz("Path", path), binary("Hash", hashlib.sha256(entry.file_bytes).digest()),
                  dword("Schema", _schema(definition))]
        if definition.date is not None:
            values.append(sz("Date", definition.date.as_written))
        for value_name, text in (("Author", definition.author), ("Description", definition.description),
                                 ("Source", definition.source_attr), ("Documentation", definition.documentation),
                                 ("Version", definition.version), ("SecurityDescriptor", definition.security_descriptor)):
            if text:
                values.append(sz(value_name, text))
        values.append(sz("URI", definition.uri or path))
        values += [
            binary("Triggers", triggers),
            binary("Actions", entry.actions if entry.actions is not None else _actions(definition)),
            binary("DynamicInfo", encode_dynamic_info(filetime(entry.created),
                                                      filetime(entry.last_run) if entry.last_run else 0)),
        ]
        keys.append(RegKey(rf"{TASKCACHE}\Tasks\{entry.guid}", tuple(values), written=entry.tasks_written))
        keys.append(RegKey(rf"{TASKCACHE}\{INDEX_KEYS[index]}\{entry.guid}", (), written=entry.created))
    return keys


def _folder_keys(paths: list[str]) -> list[RegKey]:
    """Tree folder keys carry an SD of their own (the folder's security), as on Windows."""
    folders = sorted({"\\".join(p.split("\\")[:i]) for p in paths for i in range(2, p.count("\\") + 1)}, key=str.lower)
    sd = binary("SD", encode_security_descriptor(SYSTEM_TASK_SDDL))
    return [RegKey(rf"{TASKCACHE}\Tree{folder}", (sd,)) for folder in folders]


def _ghost_keys() -> list[RegKey]:
    """GhostTask.c: Tree (Index 3, Id, SD O:BAG:SYD:), Plain\\{GUID}, Tasks (Author, Path, URI, Date,
    Actions, DynamicInfo, Triggers); no Hash, Schema, Version or SecurityDescriptor. DynamicInfo's
    creation FILETIME is built from the *local* clock, and every pad Windows leaves uninitialised is zero."""
    guid = task_guid(GHOST_TASK)
    created_from_local_clock = filetime(GHOST_WRITTEN.astimezone(LOCAL).replace(tzinfo=None))
    return [
        RegKey(rf"{TASKCACHE}\Tree{GHOST_TASK}", (dword("Index", 3), sz("Id", guid),
                                                  binary("SD", encode_security_descriptor(GHOST_SDDL))),
               written=GHOST_WRITTEN),
        RegKey(rf"{TASKCACHE}\Plain\{guid}", (), written=GHOST_WRITTEN),
        RegKey(rf"{TASKCACHE}\Tasks\{guid}", (
            sz("Author", "Microsoft Corporation"), sz("Path", GHOST_TASK), sz("URI", GHOST_TASK),
            sz("Date", "2024-03-12T16:22:40"),
            binary("Actions", encode_actions([exec_action(GHOST_COMMAND, "/silent")], version=3, context="Author")),
            binary("DynamicInfo", encode_dynamic_info(created_from_local_clock)),
            binary("Triggers", ghosttask_triggers("S-1-5-18", mode="daily", hour=9, minute=0)),
        ), written=GHOST_WRITTEN),
    ]


def _tasks_only_keys() -> list[RegKey]:
    """A Tasks key whose Tree key is gone (a half-deleted task): the service never loads it."""
    guid = task_guid(TASKS_ONLY_TASK)
    written = utc(2024, 3, 12, 15, 40, 3)
    actions = encode_actions([exec_action(r"C:\ProgramData\svc\upload.exe", r"--to \\10.1.2.3\drop")], context="LocalSystem")
    bucket = job_bucket(user_info("S-1-5-18", "", sid_type=5), principal_id="LocalSystem",
                        flags=0x2000000 | 0x400000 | 0x20000 | 0x2000 | 0x100 | 0x40000000, crc32=0x1D2C3B4A)
    triggers = encode_triggers(triggers_blob([generic_trigger("boot")], bucket))
    return [RegKey(rf"{TASKCACHE}\Tasks\{guid}", (
        sz("Path", TASKS_ONLY_TASK), binary("Hash", hashlib.sha256(b"ReportUpload").digest()), dword("Schema", 0x10002),
        sz("Date", "2024-03-12T16:40:03"), sz("Author", "Microsoft Corporation"), sz("URI", TASKS_ONLY_TASK),
        binary("Triggers", triggers), binary("Actions", actions),
        binary("DynamicInfo", encode_dynamic_info(filetime(written))),
    ), written=written)]


def registry_entries(tasks: list[PlantedTask]) -> list[RegistryEntry]:
    """One entry per parseable task file (the XML-only and log-only tasks excepted), stealth variants applied."""
    entries = []
    for task in sorted(tasks, key=lambda t: t.name.lower()):
        if task.name in (XML_ONLY_TASK, LOG_ONLY_TASK):
            continue
        data = task.data
        if task.name == EDITED_XML_TASK:
            data = render(_edited_task(EDITED_ORIGINAL_AUTHOR, "Keeps Adobe Acrobat Reader up to date."))
        definition = _parse(task, data)
        if definition is None:
            continue  # a file Windows could not have registered (truncated, hostile DTD)
        created = task.times.fn_created
        entry = dict(task=task.name, guid=task_guid(task.name), definition=definition, file_bytes=data,
                     created=created, tree_written=created, tasks_written=created)
        if task.name == TARRASK_TASK:
            entry.update(sd=None, tree_written=utc(2024, 3, 12, 15, 2, 58))
        elif task.name == INDEX_ZERO_TASK:
            entry.update(index=0, tree_written=utc(2024, 3, 12, 15, 5, 1))
        elif task.name == INDEX_DELETED_TASK:
            entry.update(index=None, tree_written=utc(2024, 3, 12, 15, 6, 40))
        elif task.name == REWRITTEN_TASK:
            entry.update(actions=encode_actions([exec_action(REWRITTEN_COMMAND)], version=3, context="Author"),
                         tasks_written=REWRITTEN_AT)
        elif task.name == TREE_ONLY_TASK:
            entry.update(tasks=False)
        entries.append(RegistryEntry(**entry))
    return entries


def taskcache_keys(tasks: list[PlantedTask]) -> list[RegKey]:
    """``Schedule\\TaskCache`` keys for the SOFTWARE hive, sorted by key path.

    ``tasks``: every planted task file, the :func:`stealth_task_files` included."""
    keys: list[RegKey] = []
    paths = []
    for entry in registry_entries(tasks):
        keys += _entry_keys(entry)
        paths.append(entry.task)
    keys += _ghost_keys() + _tasks_only_keys()
    paths += [GHOST_TASK]
    keys += _folder_keys(paths)
    keys += [RegKey(rf"{TASKCACHE}\{name}", ()) for name in ("Boot", "Logon", "Maintenance", "Plain", "Tasks", "Tree")]
    return sorted(keys, key=lambda k: k.path.lower())


def log_only_keys(tasks: list[PlantedTask]) -> list[RegKey]:
    """The keys of :data:`LOG_ONLY_TASK` (written to the logs, not to the primary SOFTWARE file)."""
    task = next(t for t in tasks if t.name == LOG_ONLY_TASK)
    entry = RegistryEntry(task=task.name, guid=task_guid(task.name), definition=_parse(task), file_bytes=task.data,
                          created=LOG_ONLY_CREATED, tree_written=LOG_ONLY_CREATED, tasks_written=LOG_ONLY_CREATED)
    return _entry_keys(entry)


# --- the dirty hive -------------------------------------------------------------------------

BASE_BLOCK = 4096
LOG_BASE_BLOCK = 512
PAGE = 4096
FILE_TYPE_LOG_NEW = 6
MARVIN32_SEED = 0x82EF4D887A4E55C5
_MASK = 0xFFFFFFFF


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _mix(lo: int, hi: int) -> tuple[int, int]:
    hi ^= lo
    lo = (_rotl(lo, 20) + hi) & _MASK
    hi = _rotl(hi, 9) ^ lo
    lo = (_rotl(lo, 27) + hi) & _MASK
    hi = _rotl(hi, 19)
    return lo, hi


def marvin32(data: bytes, seed: int = MARVIN32_SEED) -> int:
    """64-bit Marvin32 (the log-entry hash of the Windows 8.1+ registry log format)."""
    lo, hi = seed & _MASK, seed >> 32
    whole = len(data) - len(data) % 4
    for (word,) in struct.iter_unpack("<I", data[:whole]):
        lo = (lo + word) & _MASK
        lo, hi = _mix(lo, hi)
    final = 0x80 << (8 * (len(data) - whole))
    for i, byte in enumerate(data[whole:]):
        final |= byte << (8 * i)
    lo = (lo + final) & _MASK
    lo, hi = _mix(lo, hi)
    lo, hi = _mix(lo, hi)
    return (hi << 32) | lo


def _checksum(block: bytes) -> int:
    value = 0
    for (word,) in struct.iter_unpack("<I", block[:508]):
        value ^= word
    return {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(value, value)


def _base_block(hive: bytes, seq1: int, seq2: int, hbins_size: int, file_type: int = 0, size: int = BASE_BLOCK) -> bytes:
    block = bytearray(hive[:size])
    struct.pack_into("<II", block, 4, seq1, seq2)
    struct.pack_into("<I", block, 28, file_type)
    struct.pack_into("<I", block, 40, hbins_size)
    struct.pack_into("<I", block, 508, _checksum(bytes(block)))
    return bytes(block)


def log_entry(sequence: int, hbins_size: int, pages: list[tuple[int, bytes]]) -> bytes:
    """One ``HvLE`` log entry: header, dirty page references, pages, padded to 512 bytes; both hashes set."""
    references = b"".join(struct.pack("<II", offset, len(data)) for offset, data in pages)
    body = references + b"".join(data for _, data in pages)
    size = 40 + len(body)
    size += -size % 512
    body = body.ljust(size - 40, b"\0")
    head = struct.pack("<4sIIIII", b"HvLE", size, 0, sequence, hbins_size, len(pages))
    hash1 = marvin32(body)
    hash2 = marvin32(head + struct.pack("<Q", hash1))
    return head + struct.pack("<QQ", hash1, hash2) + body


def _dirty_pages(before: bytes, after: bytes) -> list[tuple[int, bytes]]:
    """4096-byte pages of the hive bins data that differ (offsets relative to the hive bins data)."""
    pages = []
    for offset in range(BASE_BLOCK, len(after), PAGE):
        if before[offset:offset + PAGE] != after[offset:offset + PAGE]:
            pages.append((offset - BASE_BLOCK, after[offset:offset + PAGE]))
    return pages


def _free_bins(start: int, size: int) -> bytes:
    """Hive bins holding one free cell: space the hive had already grown into."""
    header = struct.pack("<4sII8sQI", b"hbin", start, size, b"\0" * 8, 0, 0)
    return header + struct.pack("<i", size - 32) + bytes(size - 36)


def _fill(path: Path, keys: list[RegKey]) -> None:
    job = {"hive": str(path), "keys": [
        {"path": key.path, "values": [[v.name, v.type, v.data.hex()] for v in key.values]} for key in keys]}
    result = subprocess.run([SYSTEM_PYTHON, str(HIVE_FILL)], input=json.dumps(job).encode(), capture_output=True)
    if result.returncode:
        raise RuntimeError(f"hive_fill.py: {result.stderr.decode(errors='replace').strip()}")


def software_hive(tasks: list[PlantedTask], work: Path) -> bytes:
    """The SOFTWARE hive of the image with TaskCache (built exactly as ``build.build_hive`` does)."""
    from test_images.build import build_hive
    from test_images.windows_tree import PlantedHive, planted_hives

    work.mkdir(parents=True, exist_ok=True)
    software = next(h for h in planted_hives(tasks) if h.path.endswith("/SOFTWARE"))
    hive = PlantedHive(software.path, software.base_name, software.root_name,
                       tuple(software.keys) + tuple(taskcache_keys(tasks)), software.times, software.base_time)
    return build_hive(hive, work)


@dataclass(frozen=True)
class DirtyHive:
    primary: bytes  # SOFTWARE as on disk: dirty (sequence numbers differ), without the log-only task
    log1: bytes  # SOFTWARE.LOG1: the two unreconciled entries that add the task
    log2: bytes  # SOFTWARE.LOG2: one old entry, already applied to the primary file
    replayed: bytes  # what a correct replay gives (for tests)


def dirty_software_hive(clean: bytes, extra_keys: list[RegKey], work: Path) -> DirtyHive:
    """Write ``extra_keys`` into transaction logs instead of the hive, as Windows 8.1+ does between
    reconciles: entry 1 adds the Tasks and index keys, entry 2 the Tree key. ``clean`` is the hive
    built by :func:`test_images.build.build_hive` (key times already pinned)."""
    from test_images.regf import set_key_times

    work.mkdir(parents=True, exist_ok=True)
    seq = struct.unpack_from("<I", clean, 8)[0]  # secondary sequence number: the first entry's number
    steps = [[k for k in extra_keys if "\\Tree\\" not in k.path], [k for k in extra_keys if "\\Tree\\" in k.path]]
    states = [clean]
    path = work / "SOFTWARE.dirty.tmp"
    path.write_bytes(clean)
    for step in steps:
        _fill(path, step)
        states.append(set_key_times(path.read_bytes(), {k.path: k.written for k in step if k.written}))
        path.write_bytes(states[-1])
    path.unlink()
    final = states[-1]
    hbins = len(final) - BASE_BLOCK
    # The primary file already has the space the entries write into (a free bin at its end).
    grown = clean + (_free_bins(len(clean) - BASE_BLOCK, len(final) - len(clean)) if len(final) > len(clean) else b"")
    primary = _base_block(grown, seq + 1, seq, hbins) + grown[BASE_BLOCK:]
    entries = []
    previous = primary
    for number, state in enumerate(states[1:]):
        pages = _dirty_pages(previous, state)
        entries.append(log_entry(seq + number, hbins, pages))
        previous = state
    log1 = _base_block(primary, seq + 1, seq + 1, hbins, FILE_TYPE_LOG_NEW, LOG_BASE_BLOCK) + b"".join(entries)
    stale_page = BASE_BLOCK  # the first hive bin, as the primary file already holds it
    stale = log_entry(seq - 1, len(clean) - BASE_BLOCK, [(0, primary[stale_page:stale_page + PAGE])])
    log2 = _base_block(primary, seq, seq, len(clean) - BASE_BLOCK, FILE_TYPE_LOG_NEW, LOG_BASE_BLOCK) + stale
    replayed = _base_block(final, seq + 2, seq + 2, hbins) + final[BASE_BLOCK:]
    return DirtyHive(primary=primary, log1=log1, log2=log2, replayed=replayed)


__all__ = [
    "DirtyHive", "EDITED_XML_TASK", "GHOST_TASK", "INDEX_DELETED_TASK", "INDEX_ZERO_TASK", "LOG_ONLY_TASK",
    "REWRITTEN_TASK", "TARRASK_TASK", "TASKS_ONLY_TASK", "TREE_ONLY_TASK", "XML_ONLY_TASK", "dirty_software_hive",
    "log_only_keys", "stealth_task_files", "task_guid", "taskcache_keys",
]
