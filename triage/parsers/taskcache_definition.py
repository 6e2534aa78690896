"""The one mapping from TaskCache registry keys to a :class:`TaskDefinition`, on disk and in memory.

Pure: the caller snapshots the keys below ``...\\Schedule\\TaskCache`` (names, types, raw bytes, last-write
FILETIMEs) into :class:`RegKey` objects - the disk collector from dissect's regf reader
(:mod:`triage.collect.taskcache`), the volatility plugin from the in-memory hive
(:mod:`triage.volplugins.taskcache_mem`) - and this module turns them into records with every raw fact in
``details`` under the stable names the stealth checks read (:mod:`triage.detect.stealth`). The same bytes
give the same definition whichever reader supplied them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage.parsers.security_descriptor import SecurityDescriptorError, parse_security_descriptor
from triage.parsers.taskcache import (
    action_records,
    decode_actions,
    decode_dynamic_info,
    decode_triggers,
    dynamic_info_stamps,
    principal_facts,
    settings_facts,
    trigger_records,
)
from triage.records import Provenance, Stamp, TaskDefinition
from triage.taskpath import display_task_path, normalise_task_path
from triage.timeutil import filetime_stamp, iso, xml_datetime_stamp

TASKCACHE = r"Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache"
INDEX_KEYS = ("Boot", "Logon", "Plain", "Maintenance")
GHOSTTASK_START = (1992, 5, 1)
REG_TYPES = {0: "REG_NONE", 1: "REG_SZ", 2: "REG_EXPAND_SZ", 3: "REG_BINARY", 4: "REG_DWORD", 5: "REG_DWORD_BIG_ENDIAN",
             6: "REG_LINK", 7: "REG_MULTI_SZ", 8: "REG_RESOURCE_LIST", 11: "REG_QWORD"}
TEXT_TYPES = {1, 2, 6, 7}


@dataclass
class RegValue:
    name: str
    type: int
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-16-le", errors="replace").split("\0", 1)[0]

    def number(self) -> int | None:
        if self.type == 4 and len(self.data) >= 4:
            return struct.unpack_from("<I", self.data)[0]
        return None

    def shown(self) -> str:
        """The value as an examiner reads it: text, number, or hex for binary data."""
        if self.type in TEXT_TYPES:
            return self.text()
        number = self.number()
        return f"0x{number:08x} ({number})" if number is not None else self.data.hex()

    def fact(self) -> dict[str, Any]:
        return {"type": REG_TYPES.get(self.type, str(self.type)), "hex": self.data.hex(), "shown": self.shown()}


@dataclass
class RegKey:
    path: str  # relative to the hive root
    written: datetime | None
    written_filetime: int | None
    values: dict[str, RegValue] = field(default_factory=dict)  # lower-case name -> value
    problems: list[str] = field(default_factory=list)  # values the reader could not read

    def value(self, name: str) -> RegValue | None:
        return self.values.get(name.lower())


class _Snapshot:
    """Lookup by path over a {lower-case path: key} snapshot."""

    def __init__(self, keys: dict[str, RegKey]):
        self.keys = keys

    def key(self, path: str) -> RegKey | None:
        return self.keys.get(path.lower())

    def children(self, path: str) -> list[RegKey]:
        prefix = path.lower() + "\\"
        return [k for p, k in self.keys.items() if p.startswith(prefix) and "\\" not in p[len(prefix):]]


def key_time(filetime: int | None) -> datetime | None:
    """A key's last-write FILETIME as an aware UTC datetime (None when 0 or out of range)."""
    stamp = filetime_stamp(filetime, "key_last_written") if filetime else None
    return datetime.fromisoformat(stamp.utc.replace("Z", "+00:00")) if stamp is not None and stamp.utc else None


@dataclass
class TaskKeys:
    """The keys that make up one task in one hive state."""

    task: str | None  # display path (Tree path, else the Tasks key's Path value)
    guid: str | None  # "{...}" upper case
    tree: RegKey | None
    tasks: RegKey | None
    index_keys: list[str]

    @property
    def identity(self) -> str:
        return (normalise_task_path(self.task) if self.tree is not None else "") + "|" + (self.guid or "")


def task_guid(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip().strip("\0").upper()
    if not text:
        return None
    return text if text.startswith("{") else "{" + text + "}"


def tasks_in(keys: dict[str, RegKey]) -> list[TaskKeys]:
    """Every task below TaskCache in a snapshot {lower-case key path: key}: Tree keys holding Id or Index,
    each with its Tasks key, then Tasks keys no Tree key names; sorted by task path then GUID."""
    state = _Snapshot(keys)
    tree_root = f"{TASKCACHE}\\Tree"
    tasks_root = f"{TASKCACHE}\\Tasks"
    index = {name: {k.path.rsplit("\\", 1)[-1].upper() for k in state.children(f"{TASKCACHE}\\{name}")}
             for name in INDEX_KEYS}
    found: list[TaskKeys] = []
    referenced: set[str] = set()
    for path, key in sorted(state.keys.items()):
        if not path.startswith(tree_root.lower() + "\\"):
            continue
        if key.value("Id") is None and key.value("Index") is None:
            continue  # a folder: task keys hold Id and Index (Tarrask and Index tampering leave one of them)
        id_value = key.value("Id")
        guid = task_guid(id_value.text()) if id_value else None
        tasks = state.key(f"{tasks_root}\\{guid}") if guid else None
        if guid:
            referenced.add(guid)
        task = display_task_path(key.path[len(tree_root):])
        found.append(TaskKeys(task=task, guid=guid, tree=key, tasks=tasks,
                               index_keys=[n for n in INDEX_KEYS if guid and guid in index[n]]))
    for key in state.children(tasks_root):
        guid = task_guid(key.path.rsplit("\\", 1)[-1])
        if guid in referenced:
            continue
        path_value = key.value("Path")
        shown_path = display_task_path(path_value.text()) if path_value and path_value.text() else None
        found.append(TaskKeys(task=shown_path, guid=guid, tree=None, tasks=key,
                               index_keys=[n for n in INDEX_KEYS if guid in index[n]]))
    return sorted(found, key=lambda t: ((t.task or "").lower(), t.guid or ""))


def task_definition(keys: TaskKeys, *, hive_root: str, hive_file: str, artifact: str, evidence: str | None = None,
                    evidence_sha256: str | None = None, host: str | None = None, tz: Any = None) -> TaskDefinition:
    """The one TaskCache-to-definition mapping, for the SOFTWARE hive on disk and in memory alike.

    ``hive_root`` prefixes key locations (``HKLM\\SOFTWARE`` on disk, ``\\REGISTRY\\MACHINE\\SOFTWARE`` in
    memory); ``artifact`` is the record's source (``taskcache``, ``memory_taskcache``); ``tz`` is the
    machine's zone for the local-time Date value and GhostTask's local-time clue (None when unknown)."""
    def location(key: RegKey) -> str:
        return f"{hive_root}\\{key.path}"

    tree, tasks = keys.tree, keys.tasks
    main = tasks or tree
    assert main is not None  # tasks_in pairs every task with a Tree key, a Tasks key or both
    actions_value = tasks.value("Actions") if tasks else None
    id_value = tree.value("Id") if tree else None
    provenance = Provenance(
        artifact=artifact, location=location(main), evidence=evidence, evidence_sha256=evidence_sha256,
        value_name="Actions" if actions_value else ("Id" if main is tree else None),
        raw=actions_value.data.hex() if actions_value else (id_value.shown() if id_value else None),
    )
    definition = TaskDefinition(task=keys.task or "", source=artifact, provenance=provenance, host=host)
    details: dict[str, Any] = {
        "guid": keys.guid,
        "hive": hive_file,
        "tree_key": location(tree) if tree else None,
        "tasks_key": location(tasks) if tasks else None,
        "tree_without_tasks": tree is not None and tasks is None,
        "tasks_without_tree": tasks is not None and tree is None,
        "index_keys": keys.index_keys,
        "values": {},
    }
    errors: list[str] = [problem for key in (tree, tasks) if key is not None for problem in key.problems]
    if tree is not None:
        details["values"]["tree"] = _facts(tree)
        index = tree.value("Index")
        details["index"] = index.number() if index else None
        details["index_present"] = index is not None
        _security_descriptor(tree, details, errors)
    else:
        details.update(index=None, index_present=False, sd_sddl=None, sd_present=False, sd_dacl_empty=None)
    stamps: list[Stamp] = []
    if tree is not None:
        stamps += _key_stamp(tree, "Tree")
    if tasks is not None:
        details["values"]["tasks"] = _facts(tasks)
        _tasks_values(tasks, definition, details, errors, stamps, tz)
        stamps += _key_stamp(tasks, "Tasks")
    else:
        details.update(hash_hex=None, schema=None, version=None, security_descriptor=None, crc32=None)
    details["key_last_written"] = {which: iso(key.written) if key.written else None
                                   for which, key in (("tree", tree), ("tasks", tasks)) if key is not None}
    details["ghost_fingerprints"] = _ghost_fingerprints(details, tasks, tz)
    errors += [problem for key in (tree, tasks) if key is not None for problem in _text_after_nul(key)]
    details["decode_errors"] = list(errors)
    definition.stamps = stamps
    definition.errors = errors
    definition.details = details
    return definition


def _facts(key: RegKey) -> dict[str, dict[str, Any]]:
    return {v.name: v.fact() for v in sorted(key.values.values(), key=lambda v: v.name.lower())}


def _text_after_nul(key: RegKey) -> list[str]:
    """REG_SZ text past an embedded NUL: regedit and the Task Scheduler stop at the NUL, so an
    attacker can hide the rest of a name there. The whole text is reported (the hex is in ``values``)."""
    problems = []
    for value in sorted(key.values.values(), key=lambda v: v.name.lower()):
        if value.type in (1, 2):  # REG_SZ, REG_EXPAND_SZ (a REG_MULTI_SZ is NUL-separated by design)
            whole = value.data.decode("utf-16-le", errors="replace").rstrip("\0")
            if whole != value.text():
                problems.append(f"{value.name}: text after an embedded NUL, hidden from Windows tools: {whole}")
    return problems


def _key_stamp(key: RegKey, which: str) -> list[Stamp]:
    if key.written_filetime is None:
        return []
    stamp = filetime_stamp(key.written_filetime, "key_last_written")
    if stamp is None:
        return []
    stamp.as_written = f"0x{key.written_filetime:016x} ({which} key)"
    return [stamp]


def _security_descriptor(tree: RegKey, details: dict[str, Any], errors: list[str]) -> None:
    sd = tree.value("SD")
    details.update(sd_present=sd is not None, sd_sddl=None, sd_owner=None, sd_dacl=None, sd_dacl_empty=None)
    if sd is None:
        return
    try:
        parsed = parse_security_descriptor(sd.data)
    except SecurityDescriptorError as exc:
        errors.append(f"Tree SD: {exc}")
        return
    details.update(sd_sddl=parsed.sddl, sd_owner=parsed.owner, sd_dacl_empty=parsed.dacl_empty,
                   sd_dacl=[ace.sddl for ace in parsed.dacl] if parsed.dacl is not None else None)


def _tasks_values(tasks: RegKey, definition: TaskDefinition, details: dict[str, Any], errors: list[str],
                  stamps: list[Stamp], tz: Any) -> None:
    def text(name: str) -> str | None:
        value = tasks.value(name)
        return value.text() if value is not None else None

    definition.uri = text("URI")
    definition.author = text("Author")
    definition.description = text("Description")
    definition.source_attr = text("Source")
    definition.documentation = text("Documentation")
    definition.version = text("Version")
    definition.security_descriptor = text("SecurityDescriptor")
    definition.date = xml_datetime_stamp(text("Date"), "registration_date", tz)
    hash_value = tasks.value("Hash")
    schema = tasks.value("Schema")
    details.update(
        path_value=text("Path"), hash_hex=hash_value.data.hex() if hash_value else None,
        schema=schema.number() if schema else None, version=text("Version"),
        security_descriptor=text("SecurityDescriptor"),
    )
    actions = tasks.value("Actions")
    if actions is not None:
        blob = decode_actions(actions.data)
        definition.actions = action_records(blob)
        details["actions_hex"] = blob.raw_hex
        details["actions_layout"] = blob.layout_variant
        details["actions_context"] = blob.context
        errors += [f"Actions: {e}" for e in blob.errors]
    else:
        details["actions_hex"] = None
    triggers = tasks.value("Triggers")
    details["crc32"] = None
    if triggers is not None:
        trig = decode_triggers(triggers.data, tz)
        definition.triggers = trigger_records(trig, tz)
        facts = principal_facts(trig)
        for name in ("principal_id", "user_id", "logon_type", "run_level", "enabled", "hidden"):
            if name in facts:
                setattr(definition, name, facts[name])
        definition.settings = settings_facts(trig)
        bucket = trig.job_bucket
        details["crc32"] = bucket.crc32 if bucket else None
        details["triggers_hex"] = trig.raw_hex
        details["uninitialised_padding_all_zero"] = trig.uninitialised_padding_all_zero
        details["trigger_starts"] = [t.start.filetime for t in trig.triggers if t.start and t.start.is_set]
        errors += [f"Triggers: {e}" for e in trig.errors]
    else:
        details["triggers_hex"] = None
    dynamic = tasks.value("DynamicInfo")
    if dynamic is not None:
        info = decode_dynamic_info(dynamic.data)
        details["dynamic_info_hex"] = info.raw_hex
        details["dynamic_info"] = {"created": info.created, "last_run": info.last_run,
                                   "status_0x14": info.status_0x14, "status_0x18": info.status_0x18,
                                   "last_successful_run": info.last_successful_run}
        stamps += dynamic_info_stamps(info)
        errors += [f"DynamicInfo: {e}" for e in info.errors]
    else:
        details["dynamic_info_hex"] = None


def _ghost_fingerprints(details: dict[str, Any], tasks: RegKey | None, tz: Any) -> list[str]:
    """What GhostTask-style direct registry writes leave behind (netero1010/GhostTask, artifacts.md).

    Version and SecurityDescriptor are left out: Windows itself writes them only when the XML has
    them, so their absence proves nothing. The 0x48 filler is written by Windows too."""
    if tasks is None:
        return []
    found = []
    if tasks.value("Hash") is None:
        found.append("no Hash value")
    if tasks.value("Schema") is None:
        found.append("no Schema value")
    if details.get("crc32") == 0:
        found.append("JobBucket CRC32 is 0")
    if details.get("uninitialised_padding_all_zero"):
        found.append("zeros where Windows leaves uninitialised bytes")
    for start in details.get("trigger_starts", []):
        moment = _filetime_datetime(start)
        if moment and (moment.year, moment.month, moment.day) == GHOSTTASK_START:
            found.append("trigger start 1992-05-01")
            break
    if details.get("sd_dacl_empty"):
        found.append("Tree SD has an empty DACL")
    created = (details.get("dynamic_info") or {}).get("created")
    if created and tasks.written and tz is not None:
        offset = tasks.written.astimezone(tz).utcoffset()
        moment = _filetime_datetime(created)
        if moment and offset and abs((moment - tasks.written) - offset).total_seconds() <= 2:
            found.append("DynamicInfo creation time is local time, not UTC")
    return found


def stealth_flags(details: dict[str, Any]) -> list[str]:
    """What a definition's keys show of hiding, as flags: ``sd_missing``, ``sd_empty_dacl``,
    ``index_missing``/``index_zero``, ``tree_without_tasks``, ``tasks_without_tree``. Facts, not judgements: the one
    judgement of them is :func:`triage.detect.stealth.tree_stealth`."""
    flags = []
    if details.get("tree_key"):
        if not details.get("sd_present"):
            flags.append("sd_missing")
        elif details.get("sd_dacl_empty"):
            flags.append("sd_empty_dacl")
        if not details.get("index_present"):
            flags.append("index_missing")
        elif details.get("index") == 0:
            flags.append("index_zero")
    if details.get("tree_without_tasks"):
        flags.append("tree_without_tasks")
    if details.get("tasks_without_tree"):
        flags.append("tasks_without_tree")
    return flags


def _filetime_datetime(value: int) -> datetime | None:
    stamp = filetime_stamp(value, "x")
    return datetime.fromisoformat(stamp.utc.replace("Z", "+00:00")) if stamp is not None and stamp.utc else None


__all__ = ["RegKey", "RegValue", "TaskKeys", "key_time", "stealth_flags", "task_definition", "task_guid", "tasks_in"]
