"""Checks on what memory shows: stealth flags of the in-memory TaskCache and task processes.

The volatility plugins (plugins/taskcache_mem.py, plugins/taskprocs.py) record what they saw as
flags; this module turns those flags into hunt-report reasons.
"""

from __future__ import annotations

from triage.detect import Hit, JudgeContext
from triage.records import Entity, EvidenceItem

# in-memory TaskCache flag → (risk, technique, title)
_REGISTRY_FLAGS = {
    "sd_missing": ("Critical", "T1564", "In-memory TaskCache Tree key has no SD value (Tarrask): the task is hidden but loaded"),
    "index_zero": ("High", "T1564", "In-memory TaskCache Tree Index is 0: the task is hidden from enumeration"),
    "index_missing": ("High", "T1564", "In-memory TaskCache Tree Index value is missing: the task is hidden from enumeration"),
    "sd_empty_dacl": ("High", "T1564", "In-memory TaskCache Tree SD has an empty DACL (GhostTask fingerprint)"),
    "tree_without_tasks": ("Medium", "T1112", "In-memory TaskCache Tree key points to a missing Tasks key"),
    "tasks_without_tree": ("Medium", "T1112", "In-memory TaskCache Tasks key has no Tree key"),
}
# process flag → (risk, technique, title)
_PROCESS_FLAGS = {
    "task_not_in_registry": ("High", "T1070.009", "A process the Task Scheduler started belongs to no task in the registry (task deleted after it loaded)"),
    "encoded_powershell": ("High", "T1027", "A task process runs encoded PowerShell"),
}


def check_memory(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    hits = []
    for definition in entity.definitions:
        if definition.source != "memory_taskcache":
            continue
        for flag in definition.details.get("stealth") or []:
            if flag not in _REGISTRY_FLAGS:
                continue
            risk, technique, title = _REGISTRY_FLAGS[flag]
            hits.append(Hit(
                rule=f"memory_taskcache_{flag}", risk=risk, techniques=[technique], title=title, single_source_ok=True,
                evidence=[EvidenceItem(source="in-memory TaskCache (SOFTWARE hive)", location=definition.provenance.location,
                                       value=flag, evidence_sha256=definition.provenance.evidence_sha256)],
                action=f"Dump the SOFTWARE hive from memory (windows.registry.hivelist --dump) and the task's processes; "
                       f"check whether {entity.task} is still on disk.",
            ))
    # "belongs to no task in the registry" needs a registry that was read: on disk, whole, or in memory
    disk_registry = ctx.stores.absence(entity.host, ("taskcache",))
    memory_registry = ctx.stores.for_host(entity.host, "memory_taskcache")
    registry_read = disk_registry.claimable or bool(memory_registry)
    looked = disk_registry.evidence("no task matches this process") + [
        EvidenceItem(source="store examined: in-memory TaskCache", location=s.location,
                     value="read; no task matches this process") for s in memory_registry]
    for process in entity.processes:
        for flag in process.flags:
            if flag not in _PROCESS_FLAGS or (flag == "task_not_in_registry" and not registry_read):
                continue
            risk, technique, title = _PROCESS_FLAGS[flag]
            hits.append(Hit(
                rule=f"memory_process_{flag}", risk=risk, techniques=[technique], title=title, single_source_ok=True,
                evidence=[EvidenceItem(source=f"memory process {process.name} pid {process.pid}",
                                       location=process.provenance.location,
                                       value=process.command_line or process.name,
                                       time=process.created.utc if process.created else None,
                                       evidence_sha256=process.provenance.evidence_sha256),
                          *(looked if flag == "task_not_in_registry" else [])],
                action=f"Dump process {process.pid} ({process.name}) and its image file; ancestry: {' > '.join(process.ancestry)}.",
            ))
    return hits
