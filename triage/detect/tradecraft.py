"""Tradecraft seen across a task's events rather than in one definition.

- **Create, run, delete within minutes** (Security 4698 then 4699, TaskScheduler 106 then 141, or a
  ``schtasks /create`` then ``schtasks /delete`` command line of the same task in 4688 / Sysmon 1): how
  Impacket's atexec and SMBexec-style tools, and local elevation tools such as WinPwnage's
  ``elevate`` (``schtasks /create /xml %TEMP%\\elevator.xml``, ``/run``, ``/delete``), run one command
  through the scheduler and remove the trace (public source: the EVTX-ATTACK-SAMPLES
  ``temp_scheduled_task_4698_4699``, ``LM_ScheduledTask_ATSVC_target_host`` and
  ``sysmon_1_11_exec_as_system_via_schedtask`` logs, SigmaHQ ``win_security_atsvc_task``, and
  https://github.com/rootm0s/WinPwnage ``elevate_4``). Stock Windows
  tasks and Group Policy's per-policy ``\\Microsoft\\Windows\\GroupPolicy\\{GUID}`` tasks, which Windows itself
  creates and removes, are left alone.
"""

from __future__ import annotations

import re
from datetime import datetime

from triage.detect import Hit, JudgeContext
from triage.detect.baseline import is_stock_name
from triage.parsers.task_cmdline import parse_task_command
from triage.records import Entity, EvidenceItem, TaskEvent

ONE_SHOT_SECONDS = 15 * 60
_CREATED = {("security", 4698), ("microsoft-windows-taskscheduler/operational", 106)}
_DELETED = {("security", 4699), ("microsoft-windows-taskscheduler/operational", 141)}
_GROUP_POLICY_TASK = re.compile(r"^\\microsoft\\windows\\grouppolicy\\\{[0-9a-f-]{36}\}$")


def check_tradecraft(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    if entity.kind != "windows_task" or _GROUP_POLICY_TASK.match(entity.key) or is_stock_name(entity.task, entity.host, ctx.baseline):
        return []
    return _create_run_delete(entity)


def _when(event: TaskEvent) -> datetime | None:
    try:
        return datetime.fromisoformat((event.time.utc or "").replace("Z", "+00:00"))
    except ValueError:
        return None


def _command_operation(event: TaskEvent) -> str | None:
    """``create`` / ``delete`` / ... when the event is a process running a task command on this task."""
    if event.action != "process_creation" or not event.command_line:
        return None
    found = parse_task_command(event.command_line)
    return found.operation if found and found.task else None


def _create_run_delete(entity: Entity) -> list[Hit]:
    created = [e for e in entity.events if _when(e) and ((e.channel.lower(), e.event_id) in _CREATED
                                                        or _command_operation(e) == "create")]
    deleted = [e for e in entity.events if _when(e) and ((e.channel.lower(), e.event_id) in _DELETED
                                                        or _command_operation(e) == "delete")]
    pairs = []
    for start in created:
        after = [d for d in deleted if 0 <= (_when(d) - _when(start)).total_seconds() <= ONE_SHOT_SECONDS]
        if after:
            end = min(after, key=_when)
            pairs.append((start, end, int((_when(end) - _when(start)).total_seconds())))
    if not pairs:
        return []
    shortest = min(seconds for _, _, seconds in pairs)
    evidence = []
    for start, end, _seconds in pairs:
        for event in (start, end):
            item = EvidenceItem(source=f"{event.channel} {event.event_id}",
                                location=f"{event.provenance.location} record {event.provenance.offset}",
                                value=event.provenance.raw or event.action, time=event.time.utc,
                                evidence_sha256=event.provenance.evidence_sha256)
            if item not in evidence:
                evidence.append(item)
    minutes = "under a minute" if shortest < 60 else f"{round(shortest / 60)} minute(s)"
    return [Hit(rule="task_created_then_deleted", risk="High", techniques=["T1053.005", "T1070"],
                title=f"Task was created and deleted again within {minutes} (one-shot execution through the scheduler, as atexec, SMBexec and elevation tools do)",
                evidence=evidence, single_source_ok=True,
                action=f"Recover what {entity.task} ran (4698 TaskContent, 4688/Sysmon 1 children of the scheduler) "
                       "and where the request came from (4624 logon of the creating account, 5145 atsvc access).")]
