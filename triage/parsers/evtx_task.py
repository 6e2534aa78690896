"""One decoded event → one TaskEvent, when the event is about a scheduled task or task tooling.

Input is the flat field dict :mod:`triage.evtx_reader` produces (System fields plus EventData /
UserData by name). Security 4698–4702 carry the whole task XML (TaskContent / TaskContentNew); it
is parsed with the disk-side parser (:func:`triage.parsers.task_xml.parse_task_xml`), so a task
deleted from disk and registry is rebuilt, with its actions and triggers, from the log.

What counts as task-related (anything else returns None):
- Security 4698–4702; 4688 of schtasks.exe / at.exe; 5145 on the ``atsvc`` pipe;
- every Microsoft-Windows-TaskScheduler/Operational event (unknown ids as ``generic``);
- Sysmon 1 of schtasks/at/taskeng/taskhostw, of a command line that runs schtasks or at.exe, or a
  child of the Schedule service (parent taskeng/taskhostw, or parent command line ``-s Schedule``);
  Sysmon 11 under a ``\\Tasks\\`` folder; Sysmon 12/13/14 under ``Schedule\\TaskCache``;
- PowerShell 4104 script blocks using the ScheduledTasks cmdlets, PS_ScheduledTask or Schedule.Service.

Raises only :class:`EvtxTaskError` (an event without EventID or TimeCreated).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from datetime import tzinfo
from typing import Any

from triage.parsers import ParseError
from triage.parsers.task_cmdline import parse_powershell_task, parse_task_command, to_definition
from triage.parsers.task_xml import TaskXmlError, parse_task_xml
from triage.records import Provenance, Stamp, TaskDefinition, TaskEvent
from triage.taskpath import display_task_path


class EvtxTaskError(ParseError):
    """The event lacks what every event has (EventID, TimeCreated): not a decodable event."""


SECURITY = "security"
TASKSCHEDULER = "microsoft-windows-taskscheduler/operational"
SYSMON = "microsoft-windows-sysmon/operational"
POWERSHELL = ("microsoft-windows-powershell/operational", "powershellcore/operational")

SECURITY_TASK_ACTIONS = {4698: "created", 4699: "deleted", 4700: "enabled", 4701: "disabled", 4702: "updated"}

# Microsoft-Windows-TaskScheduler/Operational event ids (message table of schedsvc / the manifest).
TASKSCHEDULER_ACTIONS = {
    100: "started", 102: "finished", 106: "registered", 107: "time_trigger", 108: "event_trigger",
    109: "registration_trigger", 110: "run_by_user", 111: "terminated", 114: "missed_start",
    117: "idle_trigger", 118: "boot_trigger", 119: "logon_trigger", 120: "session_trigger",
    121: "session_trigger", 122: "session_trigger", 129: "process_created", 140: "updated",
    141: "deleted", 142: "disabled", 200: "action_started", 201: "action_completed",
    202: "action_failed", 325: "launch_queued", 329: "terminated", 330: "terminated", 331: "terminated",
    400: "service_started", 402: "service_stopping",
}
# Launch failures: start failed, action start failed, logon/impersonation failure, launch
# condition not met, engine failure, request ignored (already running), on batteries, not logged on.
LAUNCH_FAILURES = {101, 103, 104, 105, 130, 135, 203, 204, 205, 311, 322, 326, 332}

TASK_TOOLS = {"schtasks.exe", "at.exe"}
TASK_HOSTS = {"taskeng.exe", "taskhostw.exe"}
_TASK_PROGRAMS = TASK_TOOLS | TASK_HOSTS
_TOOL_IN_COMMAND = re.compile(r"(?:^|[\\/\s\"'&|(])(?:schtasks(?:\.exe)?|at\.exe|at)\s+(?:[/\\-]|\d{1,2}:\d{2})", re.I)
_SCHEDULE_SERVICE = re.compile(r"-s\s+Schedule\b", re.I)
_PS_TASK_CMDLETS = re.compile(
    r"\b(?:Register|New|Set|Unregister|Start|Stop|Enable|Disable|Get)-ScheduledTask\w*\b|PS_ScheduledTask|Schedule\.Service|\bschtasks\b",
    re.I,
)
_PS_TASK_NAME = re.compile(r"-TaskName\s+(?:\"([^\"]*)\"|'([^']*)'|([^\s;|)]+))", re.I)
_TASKS_FOLDER = re.compile(r"\\(?:System32|SysWOW64)\\Tasks\\(.+)$", re.I)
_TASKCACHE = re.compile(r"\\Schedule\\TaskCache\\(.*)$", re.I)


def event_stamp(event: Mapping[str, Any]) -> Stamp:
    """TimeCreated/SystemTime as logged (UTC); both decoders stop at microseconds."""
    written = event.get("TimeCreated_SystemTime")
    if not isinstance(written, str) or len(written) < 20:
        raise EvtxTaskError("event has no TimeCreated timestamp")
    utc = written.replace(".000000Z", "Z")
    return Stamp(meaning="event_logged", utc=utc, as_written=written, basis="utc", precision="1us")


def event_id(event: Mapping[str, Any]) -> int:
    try:
        return int(event["EventID"])
    except (KeyError, TypeError, ValueError):
        raise EvtxTaskError("event has no numeric EventID") from None


def channel_of(event: Mapping[str, Any]) -> str:
    return str(event.get("Channel") or "")


def basename(path: Any) -> str:
    text = str(path or "")
    return text[max(text.rfind("\\"), text.rfind("/")) + 1:].strip().strip('"').lower()


def is_task_related(event: Mapping[str, Any]) -> bool:
    """Whether the event is about a task or task tooling (see module doc)."""
    channel = channel_of(event).lower()
    eid = event_id(event)
    if channel == SECURITY:
        if eid in SECURITY_TASK_ACTIONS:
            return True
        if eid == 4688:
            return basename(event.get("NewProcessName")) in TASK_TOOLS
        if eid == 5145:
            return str(event.get("RelativeTargetName") or "").strip().lower() == "atsvc"
        return False
    if channel == TASKSCHEDULER:
        return True
    if channel == SYSMON:
        if eid == 1:
            return _sysmon_process_is_task_related(event)
        if eid == 11:
            return "\\tasks\\" in str(event.get("TargetFilename") or "").lower()
        if eid in (12, 13, 14):
            return _TASKCACHE.search(str(event.get("TargetObject") or "")) is not None
        return False
    if channel in POWERSHELL and eid == 4104:
        return _PS_TASK_CMDLETS.search(str(event.get("ScriptBlockText") or "")) is not None
    return False


def _sysmon_process_is_task_related(event: Mapping[str, Any]) -> bool:
    image = basename(event.get("Image"))
    original = str(event.get("OriginalFileName") or "").lower()
    if image in _TASK_PROGRAMS or original in TASK_TOOLS:
        return True
    if _TOOL_IN_COMMAND.search(str(event.get("CommandLine") or "")):
        return True
    parent = basename(event.get("ParentImage"))
    parent_command = str(event.get("ParentCommandLine") or "")
    return parent in TASK_HOSTS or bool(_SCHEDULE_SERVICE.search(parent_command))


def task_event(
    event: Mapping[str, Any],
    *,
    location: str,
    evidence: str | None = None,
    evidence_sha256: str | None = None,
    local_tz: tzinfo | None = None,
) -> TaskEvent | None:
    """The TaskEvent for a task-related event, else None."""
    if not is_task_related(event):
        return None
    return _build(event, location, evidence, evidence_sha256, local_tz)


def generic_event(
    event: Mapping[str, Any],
    *,
    location: str,
    evidence: str | None = None,
    evidence_sha256: str | None = None,
    local_tz: tzinfo | None = None,
) -> TaskEvent:
    """Any event as a TaskEvent (task-specific when it is task-related, ``generic`` otherwise).

    Used for events a Sigma rule matched: the finding must show them whatever they are.
    """
    if is_task_related(event):
        return _build(event, location, evidence, evidence_sha256, local_tz)
    built = _base(event, location, evidence, evidence_sha256, "generic")
    _fill_subject(built, event)
    return built



# Field names and the values that repeat from event to event (channel, provider, computer, level...)
# are shared between events instead of held once per event: a log of a million task events fits in
# memory. Unique values (record ids, times, GUIDs) are left alone.
_SHARED_VALUE_FIELDS = frozenset({
    "Channel", "Computer", "Provider_Name", "Provider_Guid", "Keywords", "Level", "Opcode", "Task", "Version",
    "EventID", "EventID_Qualifiers", "Security_UserID", "UserName", "TaskName", "EventData_Name", "ActionName",
    "Image", "ParentImage", "SubjectUserName", "SubjectDomainName", "SubjectUserSid", "User", "IntegrityLevel",
})


def _compact_fields(event: dict) -> dict:
    out = {}
    for key in sorted(event):
        value = event[key]
        if key in _SHARED_VALUE_FIELDS and isinstance(value, str) and len(value) <= 256:
            value = sys.intern(str(value))  # str(): dissect hands out str subclasses, which cannot be interned
        out[sys.intern(str(key))] = value
    return out

def _base(event: Mapping[str, Any], location: str, evidence: str | None, sha256: str | None, action: str) -> TaskEvent:
    eid = event_id(event)
    stamp = event_stamp(event)
    record_id = event.get("EventRecordID")
    provenance = Provenance(
        artifact="evtx",
        location=location,
        evidence=evidence,
        evidence_sha256=sha256,
        value_name=f"{channel_of(event)} {eid}",
        offset=int(record_id) if isinstance(record_id, int) or str(record_id or "").isdigit() else None,
        raw=_raw(event, eid),
    )
    return TaskEvent(
        time=stamp,
        channel=channel_of(event),
        event_id=eid,
        action=action,
        provenance=provenance,
        host=_text(event.get("Computer")),
        fields=_compact_fields(event),
    )


# The fields that say what happened, in the order a reader wants them, for Provenance.raw.
_KEY_FIELDS = (
    "TaskName", "Path", "ProcessID", "ActionName", "ResultCode", "UserContext", "UserName",
    "SubjectUserName", "NewProcessName", "Image", "CommandLine", "ParentImage", "ParentCommandLine",
    "TargetFilename", "EventType", "TargetObject", "Details", "NewName", "RelativeTargetName", "ShareName",
    "IpAddress", "ScriptBlockText",
)


def _raw(event: Mapping[str, Any], eid: int) -> str:
    parts = [f"{channel_of(event)} {eid} record {event.get('EventRecordID')}"]
    for key in _KEY_FIELDS:
        value = event.get(key)
        if value not in (None, "", "-"):
            text = " ".join(str(value).split())
            parts.append(f"{key}={text[:300]}")
    return "; ".join(parts)


def _build(event: Mapping[str, Any], location: str, evidence: str | None, sha256: str | None, local_tz: tzinfo | None) -> TaskEvent:
    channel = channel_of(event).lower()
    eid = event_id(event)
    if channel == SECURITY:
        return _security(event, eid, location, evidence, sha256, local_tz)
    if channel == TASKSCHEDULER:
        return _taskscheduler(event, eid, location, evidence, sha256)
    if channel == SYSMON:
        return _sysmon(event, eid, location, evidence, sha256)
    built = _base(event, location, evidence, sha256, "script_block")
    _fill_subject(built, event)
    script = str(event.get("ScriptBlockText") or "")
    built.task = _task_from_ps(script)
    registered = parse_powershell_task(script)
    if registered is not None:
        built.definition = to_definition(registered, provenance=_command_provenance(built, "ScriptBlockText"),
                                         host=built.host, creating_user=built.user)
        if built.definition is not None:
            built.task = built.definition.task
    return built


def _security(event, eid, location, evidence, sha256, local_tz) -> TaskEvent:
    if eid in SECURITY_TASK_ACTIONS:
        built = _base(event, location, evidence, sha256, SECURITY_TASK_ACTIONS[eid])
        _fill_subject(built, event)
        built.task = _task(event.get("TaskName"))
        content = event.get("TaskContentNew") if eid == 4702 else event.get("TaskContent")
        if isinstance(content, str) and content.strip():
            built.definition = _definition(content, built, eid, local_tz)
        return built
    if eid == 4688:
        built = _base(event, location, evidence, sha256, "process_creation")
        _fill_subject(built, event)
        built.image = _text(event.get("NewProcessName"))
        built.parent_image = _text(event.get("ParentProcessName"))
        built.command_line = _text(event.get("CommandLine"))
        built.process_id = _int(event.get("NewProcessId"))
        _attach_command_task(built)
        return built
    built = _base(event, location, evidence, sha256, "share_access")
    _fill_subject(built, event)
    return built


def _definition(content: str, built: TaskEvent, eid: int, local_tz) -> TaskDefinition:
    """The task as the log recorded it, via the disk-side parser; unreadable XML stays visible."""
    source = f"evtx_{eid}"
    field_name = "TaskContentNew" if eid == 4702 else "TaskContent"
    provenance = Provenance(
        artifact="evtx", location=built.provenance.location, evidence=built.provenance.evidence,
        evidence_sha256=built.provenance.evidence_sha256, value_name=field_name, offset=built.provenance.offset,
    )
    task = built.task or "\\"
    try:
        definition = parse_task_xml(content.encode("utf-8"), task=task, provenance=provenance, local_tz=local_tz)
    except TaskXmlError as exc:
        return TaskDefinition(task=task, source=source, provenance=provenance, host=built.host,
                              errors=[f"{field_name} unreadable: {exc}"], details={"raw_xml": content})
    definition.source = source
    definition.host = built.host
    return definition


def _taskscheduler(event, eid, location, evidence, sha256) -> TaskEvent:
    action = "launch_failed" if eid in LAUNCH_FAILURES else TASKSCHEDULER_ACTIONS.get(eid, "generic")
    built = _base(event, location, evidence, sha256, action)
    built.task = _task(event.get("TaskName"))
    built.user = _text(event.get("UserContext")) or _text(event.get("UserName"))
    built.user_sid = _text(event.get("Security_UserID"))
    built.process_id = _int(event.get("ProcessID")) if "ProcessID" in event else _int(event.get("EnginePID"))
    built.image = _text(event.get("Path")) or _text(event.get("ActionName"))
    built.result_code = _hresult(event.get("ResultCode"))
    return built


def _sysmon(event, eid, location, evidence, sha256) -> TaskEvent:
    if eid == 1:
        built = _base(event, location, evidence, sha256, "process_creation")
        built.user = _text(event.get("User"))
        built.image = _text(event.get("Image"))
        built.parent_image = _text(event.get("ParentImage"))
        built.command_line = _text(event.get("CommandLine"))
        built.process_id = _int(event.get("ProcessId"))
        built.logon_id = _text(event.get("LogonId"))
        _attach_command_task(built)
        return built
    if eid == 11:
        built = _base(event, location, evidence, sha256, "file_created")
        target = str(event.get("TargetFilename") or "")
        match = _TASKS_FOLDER.search(target)
        built.task = display_task_path(match.group(1)) if match else None
    else:
        event_type = str(event.get("EventType") or "")
        action = {13: "registry_set", 14: "registry_renamed"}.get(eid) or (
            "registry_deleted" if event_type.lower().startswith("delete") else "registry_created")
        built = _base(event, location, evidence, sha256, action)
        built.task = _task_from_taskcache(str(event.get("TargetObject") or ""), event_type)
    built.user = _text(event.get("User"))
    built.image = _text(event.get("Image"))
    built.process_id = _int(event.get("ProcessId"))
    return built


def _task_from_taskcache(target: str, event_type: str) -> str | None:
    """``...\\TaskCache\\Tree\\Folder\\Name[\\Value]`` → ``\\Folder\\Name`` (values end in Value)."""
    match = _TASKCACHE.search(target)
    if not match:
        return None
    parts = [p for p in match.group(1).split("\\") if p]
    if len(parts) < 2 or parts[0].lower() != "tree":
        return None
    parts = parts[1:]
    if event_type.lower().endswith("value") and parts:
        parts = parts[:-1]
    return display_task_path("\\".join(parts)) if parts else None


def _attach_command_task(built: TaskEvent) -> None:
    """A schtasks/at/PowerShell command line names its task (Windows quoting rules) and, when it
    creates or changes one, rebuilds it as a ``command_line`` definition; the command stays the event's."""
    found = parse_task_command(built.command_line)
    if found is None or not found.task:
        return
    built.task = display_task_path(found.task)
    built.definition = to_definition(found, provenance=_command_provenance(built, "CommandLine"),
                                     host=built.host, creating_user=built.user)
    if built.definition is not None:  # who ran the creating command: a loader (rundll32, mshta) is tradecraft
        parent_command = _text(built.fields.get("ParentCommandLine"))
        if built.parent_image:
            built.definition.details["creating_parent_image"] = built.parent_image
        if parent_command:
            built.definition.details["creating_parent_command_line"] = parent_command


def _command_provenance(built: TaskEvent, field_name: str) -> Provenance:
    return Provenance(
        artifact="evtx", location=built.provenance.location, evidence=built.provenance.evidence,
        evidence_sha256=built.provenance.evidence_sha256, value_name=field_name, offset=built.provenance.offset,
        raw=built.command_line if field_name == "CommandLine" else None,
    )


class NetworkLogons:
    """Security 4624 network logons (LogonType 3) of one log, so a 4698/4702 made in such a session is
    known as made from another computer (the way atexec and remote schtasks register tasks).

    Feed every event to :meth:`see` in log order; :meth:`annotate` a task event after. Only the logon id,
    source address and account are kept per logon, never the event itself.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[str, str]] = {}

    def see(self, event: Mapping[str, Any]) -> None:
        if str(event.get("EventID")) != "4624" or str(event.get("LogonType")) != "3" or channel_of(event).lower() != SECURITY:
            return
        logon_id = _text(event.get("TargetLogonId"))
        if logon_id:
            account = "\\".join(p for p in (_text(event.get("TargetDomainName")), _text(event.get("TargetUserName"))) if p)
            self._by_id[logon_id.lower()] = (_text(event.get("IpAddress")) or "", account)

    def annotate(self, built: TaskEvent) -> None:
        if built.event_id not in (4698, 4702) or not built.logon_id or built.channel.lower() != SECURITY:
            return
        found = self._by_id.get(built.logon_id.lower())
        if found is None:
            return
        address, account = found
        built.fields = {**built.fields, "triage_network_logon": f"4624 type 3 from {address or 'unknown address'} as {account}"}
        if built.definition is not None:
            built.definition.details["created_over_network_logon"] = {"logon_id": built.logon_id, "source_address": address,
                                                                      "account": account}


def task_folders(tasks: Iterable[str | None]) -> set[str]:
    """The folders (normalised paths) that hold the given tasks."""
    from triage.taskpath import normalise_task_path

    known = {normalise_task_path(task) for task in tasks if task}
    return {path.rsplit("\\", depth)[0] for path in known for depth in range(1, path.count("\\"))}


def unlink_folder_events(events: Iterable[TaskEvent], folders: set[str]) -> int:
    """Sysmon 11 names a file under ``\\Tasks\\``; when that path is one of ``folders`` (:func:`task_folders`
    of every known task) it is a folder, not a task: the event keeps its place on the timeline but names no
    task. Returns how many. A run applies it to each event read back from its store."""
    from triage.taskpath import normalise_task_path

    unlinked = 0
    for event in events:
        if event.event_id == 11 and event.task and normalise_task_path(event.task) in folders \
                and event.channel.lower() == SYSMON:
            event.fields = {**event.fields, "triage_folder": event.task}
            event.task = None
            unlinked += 1
    return unlinked


def _task_from_ps(script: str) -> str | None:
    match = _PS_TASK_NAME.search(script)
    if not match:
        return None
    name = next(g for g in match.groups() if g is not None).strip()
    return display_task_path(name) if name and not name.startswith("$") else None


def _fill_subject(built: TaskEvent, event: Mapping[str, Any]) -> None:
    name = _text(event.get("SubjectUserName"))
    domain = _text(event.get("SubjectDomainName"))
    if name:
        built.user = f"{domain}\\{name}" if domain else name
    built.user_sid = _text(event.get("SubjectUserSid")) or _text(event.get("Security_UserID"))
    built.logon_id = _text(event.get("SubjectLogonId"))


def _task(value: Any) -> str | None:
    """The task path as logged; ``NT TASK\\...`` (how some TaskScheduler events name it) is the same task."""
    text = _text(value)
    if text and text[:8].lower() == "nt task\\":
        text = text[7:]
    return display_task_path(text) if text else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text and text != "-" else None


def _int(value: Any) -> int | None:
    """Decimal or 0x-hex process ids (4688 logs hex, Sysmon and TaskScheduler decimal)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _hresult(value: Any) -> str | None:
    number = _int(value)
    if number is None:
        return _text(value)
    return f"0x{number & 0xFFFFFFFF:08X}"
