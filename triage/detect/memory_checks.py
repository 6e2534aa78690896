"""Checks on what memory shows: stealth flags of the in-memory TaskCache and task processes.

The volatility plugins (triage/volplugins/taskcache_mem.py, taskprocs.py) record what they saw as
flags; this module turns those flags into hunt-report reasons.
"""

from __future__ import annotations

import re

from triage.detect import Hit, JudgeContext, content_rules
from triage.detect.baseline import is_unchanged_stock
from triage.detect.stealth import tree_stealth
from triage.parsers.command_line import split_program
from triage.parsers.taskcache_definition import stealth_flags
from triage.records import Action, Entity, EvidenceItem, TaskDefinition, TaskProcess

# in-memory TaskCache flag → (risk, technique, title) for what the Tree key alone cannot show; Tarrask and
# Index tampering are judged by triage.detect.stealth.tree_stealth, for disk and memory alike
_ORPHAN_FLAGS = {
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
        judged = [(flag, risk, techniques, f"In-memory {title}") for flag, risk, techniques, title in tree_stealth(definition)]
        judged += [(flag, _ORPHAN_FLAGS[flag][0], [_ORPHAN_FLAGS[flag][1]], _ORPHAN_FLAGS[flag][2])
                   for flag in stealth_flags(definition.details) if flag in _ORPHAN_FLAGS]
        fingerprints = definition.details.get("ghost_fingerprints") or []
        if len(fingerprints) >= 2:  # as on disk when the task file cannot be looked for
            judged.append(("ghosttask_fingerprints", "High", ["T1112", "T1070"],
                           f"In-memory TaskCache entry was written the way GhostTask writes it ({', '.join(fingerprints)})"))
        for flag, risk, techniques, title in judged:
            hits.append(Hit(
                rule=f"memory_taskcache_{flag}", risk=risk, techniques=techniques, title=title, single_source_ok=True,
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
        shown = False  # the full process evidence once per process; further reasons cite its command line
        for flag in process.flags:
            if flag not in _PROCESS_FLAGS or (flag == "task_not_in_registry" and not registry_read):
                continue
            risk, technique, title = _PROCESS_FLAGS[flag]
            evidence = process_evidence(process)
            hits.append(Hit(
                rule=f"memory_process_{flag}", risk=risk, techniques=[technique], title=title, single_source_ok=True,
                evidence=[*(evidence[:1] if shown else evidence), *(looked if flag == "task_not_in_registry" else [])],
                action=f"Dump process {process.pid} ({process.name}) and its image file; ancestry: {' > '.join(process.ancestry)}.",
            ))
            shown = True
    if not is_unchanged_stock(entity, ctx.baseline):  # a stock task's own children are not judged as its action
        hits += _content_rule_hits(entity)
    return hits


def process_evidence(process: TaskProcess) -> list[EvidenceItem]:
    """What a hunt report shows of a task process: its command line, the decoded -EncodedCommand and the
    addresses in it, and the chain of parents back to the Task Scheduler."""
    where, sha = process.provenance.location, process.provenance.evidence_sha256
    time = process.created.utc if process.created else None
    source = f"memory process {process.name} pid {process.pid}"
    items = [EvidenceItem(source=source, location=where, value=process.command_line or process.name, time=time,
                          evidence_sha256=sha)]
    if process.details.get("decoded_command"):
        items.append(EvidenceItem(source=f"{source}: decoded -EncodedCommand", location=where,
                                  value=process.details["decoded_command"], time=time, evidence_sha256=sha))
    for kind in ("urls", "ips", "domains"):
        if process.details.get(f"decoded_{kind}"):
            items.append(EvidenceItem(source=f"{source}: {kind} in the decoded command", location=where,
                                      value=", ".join(process.details[f"decoded_{kind}"]), time=time, evidence_sha256=sha))
    items.append(EvidenceItem(source=f"{source}: ancestry", location=where,
                              value=" > ".join([*process.ancestry, f"{process.name} ({process.pid})"]), time=time,
                              evidence_sha256=sha))
    return items


def _techniques(rule) -> list[str]:
    return sorted(str(tag.name).upper() for tag in rule.tags
                  if tag.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", tag.name))


def _as_task_action(entity: Entity, process: TaskProcess) -> list[dict]:
    """The content rules' rows for a process, as if its command line were the task's Exec action."""
    program, arguments = split_program(process.command_line or "")
    action = Action(kind="exec", command=program, arguments=arguments)
    stand_in = TaskDefinition(task=entity.task, source="memory", provenance=process.provenance, actions=[action],
                              user_id=process.user_sid)
    return content_rules.definition_rows(stand_in)


def _content_rule_hits(entity: Entity) -> list[Hit]:
    """The content rules (triage/rules/definitions) judged on what task processes ran, as a task action
    would be: a process whose command line is not already one of the entity's definition actions (a
    task known only from memory, or a child the task started)."""
    if not entity.processes:
        return []
    actions = {" ".join((a.command_line or "").split()).lower() for d in entity.definitions for a in d.actions}
    hits = []
    for rule in content_rules.load_rules():
        if rule.logsource.category == "unix_job":
            continue
        matched = []
        for process in entity.processes:
            if not process.command_line or " ".join(process.command_line.split()).lower() in actions:
                continue
            if any(content_rules.rule_matches(rule, row) for row in _as_task_action(entity, process)):
                matched.append(process)
        if not matched:
            continue
        evidence = [EvidenceItem(source=f"memory process {p.name} pid {p.pid} ({rule.title})", location=p.provenance.location,
                                 value=p.command_line or p.name, time=p.created.utc if p.created else None,
                                 evidence_sha256=p.provenance.evidence_sha256) for p in matched]
        hits.append(Hit(
            rule=f"{rule.name or rule.id} (memory process)", title=f"{rule.title} (running in memory)",
            risk=content_rules.LEVEL_TO_RISK[rule.level.name.lower() if rule.level else "low"], techniques=_techniques(rule),
            evidence=evidence, single_source_ok=True,
            action=str(rule.custom_attributes.get("recommended_action", "")).replace("{task}", entity.task),
        ))
    return hits
