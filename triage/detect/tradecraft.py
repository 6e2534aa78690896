"""Tradecraft seen across a task's events rather than in one definition.

- **Create, run, delete within minutes** (Security 4698 then 4699, or TaskScheduler 106 then 141): how
  Impacket's atexec and SMBexec-style tools run one command through the scheduler and remove the
  trace (public source: the EVTX-ATTACK-SAMPLES ``temp_scheduled_task_4698_4699`` and
  ``LM_ScheduledTask_ATSVC_target_host`` logs, and SigmaHQ ``win_security_atsvc_task``). Stock Windows
  tasks and Group Policy's per-policy ``\\Microsoft\\Windows\\GroupPolicy\\{GUID}`` tasks, which Windows itself
  creates and removes, are left alone.
"""

from __future__ import annotations

import re
from datetime import datetime

from triage.detect import Hit, JudgeContext
from triage.detect.baseline import is_stock_name
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


def _create_run_delete(entity: Entity) -> list[Hit]:
    created = [e for e in entity.events if (e.channel.lower(), e.event_id) in _CREATED and _when(e)]
    deleted = [e for e in entity.events if (e.channel.lower(), e.event_id) in _DELETED and _when(e)]
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
                title=f"Task was created and deleted again within {minutes} (atexec/SMBexec-style one-shot execution)",
                evidence=evidence, single_source_ok=True,
                action=f"Recover what {entity.task} ran (4698 TaskContent, 4688/Sysmon 1 children of the scheduler) "
                       "and where the request came from (4624 logon of the creating account, 5145 atsvc access).")]
