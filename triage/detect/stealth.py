"""Structural checks across a task's stores: XML file, TaskCache Tree key, Tasks key, index keys.

Each check reads the raw facts the TaskCache collector keeps in ``details`` (stable names, see
:mod:`triage.collect.taskcache`) and cites them exactly: key path and value name, raw value, key
last-write time (UTC), task file path and SHA-256.

- Tree key without ``SD`` (Tarrask), ``Index`` 0 or missing: the task is hidden from enumeration.
- Hidden flag (XML or JobBucket) on a task that is not an unchanged stock task.
- Registry-only task (no task file): GhostTask and similar, with the GhostTask fingerprints found.
- Task file with no registry entry, registry entry with no task file, missing SD/Index/keys: only where the
  store said to lack it was read for the task's host with no gap over it (:mod:`triage.stores`).
- Actions, principal or triggers in the registry that differ from the XML: on Windows 10 the
  registry copy is what runs.
- ``Hash``/CRC32 that do not match the task file: reported as unconfirmed supporting evidence, never
  as tampering on its own (SHA-256 / CRC32 of the file bytes is a working assumption).
- Tree ``Id`` naming a missing Tasks key, and a Tasks key with no Tree key.
- Task that exists only after replaying the hive's transaction logs (written, not yet flushed).
"""

from __future__ import annotations

from collections import Counter

from triage.detect import Hit, JudgeContext
from triage.detect.baseline import is_unchanged_stock
from triage.parsers.taskcache_definition import stealth_flags
from triage.records import Action, Entity, EvidenceItem, TaskDefinition, Trigger
from triage.stores import Absence

MISSING = "(value missing)"

# Accounts an XML principal may name by alias; the JobBucket keeps the SID (and a name for users).
WELL_KNOWN_ACCOUNTS = {
    "s-1-5-18": {"system", "nt authority\\system", "localsystem", "local system"},
    "s-1-5-19": {"local service", "nt authority\\local service", "localservice"},
    "s-1-5-20": {"network service", "nt authority\\network service", "networkservice"},
    "s-1-5-32-544": {"administrators", "builtin\\administrators"},
    "s-1-5-32-545": {"users", "builtin\\users"},
    "s-1-5-4": {"interactive", "nt authority\\interactive"},
}


def principal_matches(xml_name: str | None, registry_sid: str | None, registry_name: str | None) -> bool:
    """Whether an XML UserId/GroupId names the account the JobBucket holds (SID or name, aliases)."""
    if not xml_name:
        return True
    name = xml_name.strip().lower()
    sid = (registry_sid or "").lower()
    if name == sid or (registry_name and name == registry_name.strip().lower()):
        return True
    return name in WELL_KNOWN_ACCOUNTS.get(sid, set())


def check_stealth(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    if entity.kind != "windows_task":
        return []
    registry = [d for d in entity.definitions if d.source == "taskcache"]
    files = [d for d in entity.definitions if d.source == "task_xml"]
    hits: list[Hit] = []
    registry_read = registry_absence(entity, ctx)  # missing values and keys are only missing in a registry read whole
    for reg in registry:
        if registry_read.claimable:
            hits += _tree_hits(entity, reg, files, registry_read)
            hits += _orphan_hits(entity, reg, registry_read)
        hits += _replay_hits(entity, reg)
    hits += _hidden_hits(entity, registry, files, ctx)
    if registry and not files:
        hits += _registry_only_hits(entity, registry, file_absence(entity, ctx))
    if files and not registry:
        hits += _file_only_hits(entity, files, registry_read)
    for reg in registry:
        for xml in files:
            hits += _mismatch_hits(entity, reg, xml)
            hits += _hash_hits(entity, reg, xml)
    return hits


def registry_absence(entity: Entity, ctx: JudgeContext) -> Absence:
    """May a missing TaskCache key or value of this task be claimed? Only where the hive was read for its
    host and no gap covers its TaskCache (or the task's own Tree key)."""
    return ctx.stores.absence(entity.host, ("taskcache",), {"taskcache": "Tree" + _task_relative(entity)})


def file_absence(entity: Entity, ctx: JudgeContext) -> Absence:
    """May a missing task file be claimed? Only where the task folders were read for its host, no gap over them."""
    return ctx.stores.absence(entity.host, ("task_files",), {"task_files": _task_relative(entity)})


def _task_relative(entity: Entity) -> str:
    return "\\" + entity.task.strip("\\") if entity.task.startswith("\\") else "\\(no path)"


# --- evidence helpers -------------------------------------------------------------------------


def _written(reg: TaskDefinition, which: str) -> str | None:
    return (reg.details.get("key_last_written") or {}).get(which)


def _value_item(reg: TaskDefinition, which: str, value_name: str, source: str) -> EvidenceItem:
    """One registry value as evidence: key\\value, the value as shown (or missing), key last-write."""
    key = reg.details.get(f"{which}_key") or reg.provenance.location
    fact = (reg.details.get("values") or {}).get(which, {}).get(value_name)
    if fact is None:
        shown = MISSING
    elif fact["type"] in ("REG_BINARY", "REG_NONE"):
        shown = fact["hex"]
    else:
        shown = fact["shown"]
    return EvidenceItem(source=source, location=f"{key}\\{value_name}", value=shown, time=_written(reg, which),
                        evidence_sha256=reg.provenance.evidence_sha256)


def _file_item(xml: TaskDefinition, what: str = "task XML file") -> EvidenceItem:
    created = None
    if xml.file is not None:
        for stamp in xml.file.times:
            if stamp.meaning in ("si_created", "born", "created", "modified") and stamp.utc:
                created = stamp.utc
                break
    sha = xml.file.sha256 if xml.file is not None else None
    return EvidenceItem(source=what, location=(xml.file.path if xml.file else xml.provenance.location),
                        value=f"sha256 {sha}" if sha else "(file not readable)", time=created,
                        evidence_sha256=xml.provenance.evidence_sha256)


def _export(reg: TaskDefinition) -> str:
    keys = [k for k in (reg.details.get("tree_key"), reg.details.get("tasks_key")) if k]
    return "export " + " and ".join(keys) if keys else "export the TaskCache keys"


# --- checks ---------------------------------------------------------------------------------


# What each TaskCache stealth flag (triage.parsers.taskcache_definition.stealth_flags) means, for the disk
# and the in-memory hive alike. An empty DACL is not here: GhostTask writes one, but alone it proves nothing;
# it is one of the GhostTask fingerprints (_registry_only_hits, memory_checks).
_TARRASK = "TaskCache Tree key has no SD value: the task is hidden from schtasks and the Task Scheduler UI but still runs (Tarrask)"


def tree_stealth(reg: TaskDefinition) -> list[tuple[str, str, list[str], str]]:
    """(flag, risk, techniques, title) for each hiding a definition's Tree key shows: the one judgement of
    the TaskCache stealth flags, read by the disk checks here and the memory checks. A Tree key without SD
    is Critical when its Tasks key exists (the task loads and runs), High when not (it cannot load)."""
    found = []
    for flag in stealth_flags(reg.details):
        if flag == "sd_missing":
            risk = "Critical" if reg.details.get("tasks_key") else "High"
            found.append((flag, risk, ["T1564", "T1070.009", "T1112"], _TARRASK))
        elif flag in ("index_missing", "index_zero"):
            what = "missing" if flag == "index_missing" else "0"
            found.append((flag, "High", ["T1564", "T1112"],
                          f"TaskCache Tree Index value is {what}: the task is hidden from task enumeration"))
    return found


def _tree_hits(entity: Entity, reg: TaskDefinition, files: list[TaskDefinition], read: Absence) -> list[Hit]:
    if not reg.details.get("tree_key"):
        return []
    hits = []
    file_items = [_file_item(x) for x in files]
    for flag, risk, techniques, title in tree_stealth(reg):
        if flag == "sd_missing":
            hits.append(Hit(
                rule="taskcache_tree_without_sd", risk=risk, techniques=techniques, title=title,
                evidence=[_value_item(reg, "tree", "SD", "TaskCache Tree key"), _value_item(reg, "tree", "Id", "TaskCache Tree key"),
                          *file_items, *read.evidence("the Tree key has no SD value")],
                action=(f"Disable and remove {entity.task} (restore an SD first, or delete its TaskCache Tree/Tasks keys offline); "
                        f"{_export(reg)}; check Security 4657 / Sysmon 12-13 for the deletion of the SD value and the writer process."),
                single_source_ok=True,
            ))
        else:
            hits.append(Hit(
                rule="taskcache_index_tampered", risk=risk, techniques=techniques, title=title,
                evidence=[_value_item(reg, "tree", "Index", "TaskCache Tree key"), *file_items,
                          *read.evidence("the Tree key's Index is missing or 0")],
                action=(f"Disable {entity.task}; {_export(reg)}; check Sysmon 12/13 for the deletion or change of the Index value."),
                single_source_ok=True,
            ))
    return hits


def _orphan_hits(entity: Entity, reg: TaskDefinition, read: Absence) -> list[Hit]:
    d = reg.details
    if d.get("tree_without_tasks"):
        return [Hit(
            rule="taskcache_tree_id_without_tasks_key", risk="Medium", techniques=["T1070.009"],
            title=f"TaskCache Tree Id {d.get('guid')} names a Tasks key that does not exist (task partly deleted from the registry)",
            evidence=[_value_item(reg, "tree", "Id", "TaskCache Tree key"), *read.evidence("no Tasks key with this GUID")],
            action=(f"{_export(reg)}; look for the missing Tasks\\{d.get('guid')} key in RegBack, Volume Shadow Copies and "
                    "the SOFTWARE transaction logs; check TaskScheduler 141 / Security 4699 for the deletion."),
        )]
    if d.get("tasks_without_tree"):
        return [Hit(
            rule="taskcache_tasks_key_without_tree", risk="Medium", techniques=["T1070.009"],
            title=f"TaskCache Tasks key {d.get('guid')} has no Tree key (task partly deleted, or written by hand)",
            evidence=[_value_item(reg, "tasks", "Path", "TaskCache Tasks key"),
                      _value_item(reg, "tasks", "Actions", "TaskCache Tasks key"), *read.evidence("no Tree key for this task")],
            action=f"{_export(reg)}; check Sysmon 12/13 for who removed the Tree key; the task does not load without it.",
        )]
    return []


def _replay_hits(entity: Entity, reg: TaskDefinition) -> list[Hit]:
    d = reg.details
    if not d.get("only_after_log_replay"):
        return []
    replay = d.get("log_replay") or {}
    return [Hit(
        rule="taskcache_only_in_transaction_log", risk="High", techniques=["T1112"],
        title="Task exists only after replaying the SOFTWARE transaction logs: freshly written, not yet flushed to the hive",
        evidence=[EvidenceItem(source="SOFTWARE transaction log entries", location=", ".join(replay.get("entries", [])),
                               value="; ".join(replay.get("differences", [])), time=_written(reg, "tasks"),
                               evidence_sha256=reg.provenance.evidence_sha256),
                  _value_item(reg, "tasks", "Actions", "TaskCache Tasks key (after log replay)")],
        action=(f"Disable {entity.task}; collect SOFTWARE with SOFTWARE.LOG1 and SOFTWARE.LOG2 together (tools that ignore "
                "the logs will not show this task); check TaskScheduler 106 / Security 4698 around the last-write time."),
        single_source_ok=True,
    )]


def _hidden_hits(entity: Entity, registry: list[TaskDefinition], files: list[TaskDefinition], ctx: JudgeContext) -> list[Hit]:
    hidden_files = [x for x in files if x.hidden]
    hidden_registry = [r for r in registry if r.hidden]
    if not (hidden_files or hidden_registry) or is_unchanged_stock(entity, ctx.baseline):
        return []
    evidence = [EvidenceItem(source="task XML Settings/Hidden", location=x.file.path if x.file else x.provenance.location,
                             value="<Hidden>true</Hidden>", time=None, evidence_sha256=x.provenance.evidence_sha256)
                for x in hidden_files]
    for reg in hidden_registry:
        item = _value_item(reg, "tasks", "Triggers", "TaskCache JobBucket flags")
        item.value = f"flags {reg.settings.get('job_bucket_flags')} (Hidden 0x800000 set)"
        evidence.append(item)
    return [Hit(rule="task_hidden_flag", risk="Medium", techniques=["T1564"],
                title="Task is marked Hidden (not shown in the Task Scheduler UI by default)",
                evidence=evidence,
                action=f"Review {entity.task} with 'Show hidden tasks'; collect its task file and TaskCache keys.")]


def _registry_only_hits(entity: Entity, registry: list[TaskDefinition], files_read: Absence) -> list[Hit]:
    hits = []
    for reg in registry:
        d = reg.details
        if not (d.get("tree_key") and d.get("tasks_key")):
            continue  # a half entry the service cannot load: the orphan checks report it
        fingerprints = d.get("ghost_fingerprints") or []
        evidence = [_value_item(reg, "tree", "Id", "TaskCache Tree key"), _value_item(reg, "tasks", "Actions", "TaskCache Tasks key")]
        if fingerprints:
            evidence.append(EvidenceItem(source="GhostTask fingerprints", location=d["tasks_key"], value="; ".join(fingerprints),
                                         time=_written(reg, "tasks"), evidence_sha256=reg.provenance.evidence_sha256))
        listed = f" (GhostTask fingerprints: {', '.join(fingerprints)})" if fingerprints else ""
        action = (f"Disable {entity.task} by deleting its TaskCache keys offline; {_export(reg)}; collect the binaries its "
                  "actions name; check TaskScheduler 129/100/200 for its runs (no 106/4698 is expected when written directly).")
        if files_read.claimable:
            hits.append(Hit(
                rule="taskcache_registry_only", risk="Critical" if len(fingerprints) >= 2 else "High",
                techniques=["T1112", "T1070"],
                title=f"Task is defined in the registry (TaskCache) but has no task file{listed}",
                evidence=[*evidence, *files_read.evidence("no task file for this task")], action=action, single_source_ok=True,
            ))
        elif len(fingerprints) >= 2:  # the registry values themselves, not a missing file, are the evidence here
            hits.append(Hit(
                rule="taskcache_ghosttask_fingerprints", risk="High", techniques=["T1112", "T1070"],
                title=f"TaskCache entry was written the way GhostTask writes it{listed}; its task file could not be "
                      f"looked for ({files_read.reason})",
                evidence=evidence, action=action, single_source_ok=True,
            ))
    return hits


def _file_only_hits(entity: Entity, files: list[TaskDefinition], registry_read: Absence) -> list[Hit]:
    if not registry_read.claimable:
        return []
    checked = files
    unreadable = all(x.errors and not x.actions for x in checked)
    return [Hit(
        rule="task_file_without_registry", risk="Low" if unreadable else "Medium", techniques=["T1070.009"],
        title=("Task file has no TaskCache entry: dropped but never registered, or deleted from the registry"
               + (" (the file does not parse either)" if unreadable else "")),
        evidence=[*(_file_item(x) for x in checked), *registry_read.evidence("no TaskCache entry for this task")],
        action=(f"Collect {checked[0].file.path if checked[0].file else checked[0].provenance.location}; check TaskScheduler 106/141 "
                "and Security 4698/4699 for its registration or deletion, and RegBack / shadow copies for a former TaskCache entry."),
    )]


def _norm(text: str | None) -> str:
    return (text or "").strip()


def _action_key(action: Action) -> tuple:
    if action.kind == "comhandler":
        return ("comhandler", _norm(action.class_id).upper(), _norm(action.data))
    if action.kind == "exec":
        return ("exec", _norm(action.command), _norm(action.arguments), _norm(action.working_directory))
    return (action.kind,)


def _shown_actions(actions: list[Action]) -> str:
    return " | ".join(" ".join(p for p in (a.kind, a.command_line or _norm(a.class_id)) if p) for a in actions) or "(none)"


def _trigger_key(trigger: Trigger) -> tuple:
    return (trigger.kind, trigger.start.utc if trigger.start else None, trigger.repetition_seconds or 0)


def _mismatch_hits(entity: Entity, reg: TaskDefinition, xml: TaskDefinition) -> list[Hit]:
    if not reg.details.get("tasks_key") or reg.details.get("actions_hex") is None:
        return []
    hits = []
    location = xml.file.path if xml.file else xml.provenance.location
    reg_actions, xml_actions = [_action_key(a) for a in reg.actions], [_action_key(a) for a in xml.actions]
    principal_differs = xml.user_id or xml.group_id
    principal_differs = principal_differs and not principal_matches(
        xml.user_id or xml.group_id, reg.settings.get("user_sid"), reg.settings.get("user_name"))
    run_level_differs = (xml.run_level or "LeastPrivilege") != (reg.run_level or "LeastPrivilege") and reg.run_level
    if reg_actions != xml_actions or principal_differs or run_level_differs:
        evidence = []
        what = []
        if reg_actions != xml_actions:
            what.append("actions")
            item = _value_item(reg, "tasks", "Actions", "TaskCache Actions (what the service runs)")
            item.value = f"{_shown_actions(reg.actions)} (raw {reg.details.get('actions_hex')})"
            evidence += [item, EvidenceItem(source="task XML Actions", location=location, value=_shown_actions(xml.actions),
                                            evidence_sha256=xml.provenance.evidence_sha256)]
        if principal_differs or run_level_differs:
            what.append("principal")
            item = _value_item(reg, "tasks", "Triggers", "TaskCache JobBucket principal")
            item.value = (f"{reg.settings.get('user_sid')} {reg.settings.get('user_name') or ''} run level {reg.run_level}").replace("  ", " ")
            evidence += [item, EvidenceItem(source="task XML Principal", location=location,
                                            value=f"{xml.user_id or xml.group_id} run level {xml.run_level or 'LeastPrivilege'}",
                                            evidence_sha256=xml.provenance.evidence_sha256)]
        hits.append(Hit(
            rule="taskcache_differs_from_xml", risk="High", techniques=["T1112", "T1036"], contradicts=True,
            title=f"TaskCache {' and '.join(what)} differ from the task file: Windows runs the registry copy",
            evidence=evidence,
            action=(f"Disable {entity.task}; {_export(reg)} and collect {location}; collect what the registry actions run; "
                    "check Sysmon 13 / Security 4657 for writes to the Actions value."),
            single_source_ok=True,
        ))
    if Counter(_trigger_key(t) for t in reg.triggers) != Counter(_trigger_key(t) for t in xml.triggers):
        item = _value_item(reg, "tasks", "Triggers", "TaskCache Triggers")
        item.value = "; ".join(f"{t.kind} {t.start.utc if t.start else ''}".strip() for t in reg.triggers) or "(none)"
        hits.append(Hit(
            rule="taskcache_triggers_differ_from_xml", risk="Medium", techniques=["T1112"], contradicts=True,
            title="TaskCache triggers differ from the task file's triggers",
            evidence=[item, EvidenceItem(source="task XML Triggers", location=location,
                                         value="; ".join(f"{t.kind} {t.start.utc if t.start else ''}".strip() for t in xml.triggers) or "(none)",
                                         evidence_sha256=xml.provenance.evidence_sha256)],
            action=f"{_export(reg)}; compare its Triggers value with {location}.",
        ))
    return hits


def _hash_hits(entity: Entity, reg: TaskDefinition, xml: TaskDefinition) -> list[Hit]:
    d = reg.details
    file_facts = d.get("task_file") or {}
    sha = xml.file.sha256 if xml.file is not None and xml.file.sha256 else file_facts.get("sha256")
    reasons, evidence = [], []
    if d.get("hash_hex") and sha and d["hash_hex"] != sha and d.get("hash_basis_confirmed", True):
        reasons.append("Hash")
        evidence.append(_value_item(reg, "tasks", "Hash", "TaskCache Hash"))
    crc = d.get("crc32")
    if crc and file_facts.get("crc32") is not None and crc != file_facts["crc32"] and d.get("crc32_basis_confirmed", True):
        reasons.append("CRC32")
        item = _value_item(reg, "tasks", "Triggers", "TaskCache JobBucket CRC32")
        item.value = f"0x{crc:08x} (file CRC32 0x{file_facts['crc32']:08x})"
        evidence.append(item)
    if not reasons:
        return []
    if _norm(reg.author) != _norm(xml.author):
        evidence += [_value_item(reg, "tasks", "Author", "TaskCache Author (as registered)"),
                     EvidenceItem(source="task XML RegistrationInfo/Author", location=xml.file.path if xml.file else xml.provenance.location,
                                  value=xml.author or MISSING, evidence_sha256=xml.provenance.evidence_sha256)]
    return [Hit(
        rule="taskcache_hash_mismatch", risk="Low", techniques=["T1112"],
        title=(f"UNCONFIRMED: TaskCache {' and '.join(reasons)} {'does' if len(reasons) == 1 else 'do'} not match the task file. "
               "Which bytes Windows hashes is "
               "not confirmed by any real sample (SHA-256 / CRC32 of the file bytes is the working assumption, and it held "
               "for other tasks of this hive); supporting evidence that the file was edited after registration, not proof "
               "of tampering on its own"),
        evidence=[*evidence, _file_item(xml)],
        action=(f"Compare {xml.file.path if xml.file else xml.provenance.location} with the TaskCache values and with the "
                "TaskContent of the last 4698/4702 event; find who wrote the file last ($MFT, $UsnJrnl)."),
        contradicts=True,
    )]


__all__ = ["check_stealth", "file_absence", "principal_matches", "registry_absence", "tree_stealth"]
