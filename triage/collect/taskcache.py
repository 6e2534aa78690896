"""The registry copy of every scheduled task: SOFTWARE\\...\\Schedule\\TaskCache (Windows Vista and later).

On Windows 10 the Schedule service runs tasks from these keys, not from the XML files, so this is
where Tarrask (Tree key without ``SD``), Index tampering, GhostTask (registry-only tasks) and
rewritten ``Actions`` hide. One :class:`TaskDefinition` (source ``taskcache``) is emitted per task,
with every raw registry fact in ``details`` under stable names the stealth checks read
(:mod:`triage.detect.stealth`).

Three copies of the hive are read, each kept apart (dissect's registry plugin merges the live hive
and ``RegBack`` into one key collection, and never applies transaction logs):

* the SOFTWARE file as it is on disk;
* when that file is dirty, the state after replaying ``SOFTWARE.LOG1``/``.LOG2`` - what Windows
  loads at the next boot. Evidence stays read-only: the hive and its logs are copied to a
  temporary directory; only log entries the specification says apply (valid Marvin32 hashes,
  sequence number from the hive's secondary sequence number on, in order) are handed to regipy's
  recovery, which ignores sequence numbers and would otherwise re-apply stale entries;
* ``config\\RegBack\\SOFTWARE`` when present, for differences.

Records come from the replayed state when there is one; what exists only after replay is flagged
(``details["only_after_log_replay"]``), what the logs removed is still emitted and flagged.
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage.collect import Context, Source
from triage.collect.filefacts import read_error, read_file
from triage.collect.windows_tasks import MAX_DEFINITION_BYTES, Where, find_path, windows_dir
from triage.parsers.hive_log import BASE_BLOCK, hive_is_dirty, replay_plan
from triage.parsers.taskcache import decode_actions
from triage.parsers.taskcache_definition import (
    TASKCACHE,
    RegKey,
    RegValue,
    TaskKeys,
    key_time,
    task_definition,
    tasks_in,
)
from triage.records import TaskDefinition
from triage.timeutil import iso

HKLM_SOFTWARE = r"HKLM\SOFTWARE"

# The replay copies the hive and its logs into memory: a real SOFTWARE hive is tens to a few hundred
# MB and its logs smaller; larger ones are a gap, not a multi-GB read.
MAX_HIVE_BYTES = 512 * 1024 * 1024
MAX_HIVE_LOG_BYTES = 256 * 1024 * 1024


@dataclass
class HiveState:
    """Every key below TaskCache (lower-case path -> key) and the CLSID servers actions name."""

    label: str  # "hive", "hive + logs", "RegBack"
    file: str
    keys: dict[str, RegKey] = field(default_factory=dict)
    com_servers: dict[str, tuple[str, str, RegValue]] = field(default_factory=dict)  # clsid -> (key path, dll, value)

    def key(self, path: str) -> RegKey | None:
        return self.keys.get(path.lower())

    def children(self, path: str) -> list[RegKey]:
        prefix = path.lower() + "\\"
        return [k for p, k in self.keys.items() if p.startswith(prefix) and "\\" not in p[len(prefix):]]


def _read_state(root: Any, label: str, file: str, where: Where) -> HiveState | None:
    """Snapshot TaskCache from a dissect hive (regutil RegfHive); None when the key does not exist."""
    state = HiveState(label=label, file=file)
    try:
        top = root.key(TASKCACHE)
    except Exception:
        return None
    stack = [(TASKCACHE, top)]
    while stack:
        path, key = stack.pop()
        try:
            node = getattr(key, "key", None)
            cell = getattr(node, "cell", None)
            raw_time = getattr(cell, "LastWriteTime", None)
            snap = RegKey(path=path, written=key_time(raw_time), written_filetime=raw_time)
            for value in key.values():
                kv = getattr(value, "kv", None)
                data = kv.data if kv is not None else b""
                snap.values[str(value.name).lower()] = RegValue(name=str(value.name), type=int(value.type), data=bytes(data))
            state.keys[path.lower()] = snap
            for sub in key.subkeys():
                stack.append((f"{path}\\{sub.name}", sub))
        except Exception as exc:
            # dissect's regf raises NotImplementedError(b'<signature>') for a cell it does not recognise
            damaged = f"damaged hive cell/bin in {file} (a key or value cell has no valid signature): " \
                if isinstance(exc, NotImplementedError) else ""
            where.ctx.gap(where.evidence, f"{HKLM_SOFTWARE}\\{path} ({label})",
                          f"registry key not readable: {damaged}{type(exc).__name__}: {exc}")
    return state


def _read_com_servers(root: Any, state: HiveState, class_ids: set[str]) -> None:
    for clsid in sorted(class_ids):
        path = f"Classes\\CLSID\\{clsid}\\InprocServer32"
        value = _default_value(root, path)
        if value is not None:
            state.com_servers[clsid.upper()] = (f"{HKLM_SOFTWARE}\\{path}", value.text(), value)


def _default_value(root: Any, path: str) -> RegValue | None:
    try:
        key = root.key(path)
        for value in key.values():
            if str(value.name) in ("", "(Default)", "(default)"):
                kv = getattr(value, "kv", None)
                return RegValue(name="", type=int(value.type), data=bytes(kv.data if kv is not None else b""))
    except Exception:
        return None
    return None


# --------------------------------------------------------------------------------------------
# Transaction logs (decoded by triage.parsers.hive_log)


@dataclass
class Replay:
    state: HiveState
    logs: list[str]
    entries: list[str]  # "SOFTWARE.LOG1 entry 5 at 0x200"


def _replay(hive_path: Any, where: Where) -> Replay | None:
    """Copy the hive and its logs out of the evidence, replay the applicable entries with regipy,
    and snapshot the recovered copy. None when the hive is clean or has no usable log."""
    from regipy.recovery import apply_transaction_logs
    from dissect.target.helpers.regutil import RegfHive

    try:
        _, hive_bytes = read_file(hive_path, MAX_HIVE_BYTES)
    except Exception as exc:
        where.ctx.gap(where.evidence, str(hive_path), f"hive not readable for log replay: {read_error(exc)}")
        return None
    if not hive_is_dirty(hive_bytes[:BASE_BLOCK]):
        return None
    logs: dict[str, bytes] = {}
    for sibling in _siblings(hive_path):
        if sibling.name.lower() in (hive_path.name.lower() + ".log1", hive_path.name.lower() + ".log2"):
            try:
                logs[sibling.name] = read_file(sibling, MAX_HIVE_LOG_BYTES)[1]
            except Exception as exc:
                where.ctx.gap(where.evidence, str(sibling), f"transaction log not readable: {read_error(exc)}")
    if not logs:
        where.ctx.gap(where.evidence, str(hive_path), "hive is dirty but no .LOG1/.LOG2 is present: recent changes are missing")
        return None
    plan = replay_plan(hive_bytes[:BASE_BLOCK], logs)
    for problem in plan.problems:
        where.ctx.gap(where.evidence, str(hive_path.parent), problem)
    if plan.log_bytes is None:
        return None
    with tempfile.TemporaryDirectory(prefix="triage-regf-") as tmp:
        work = Path(tmp)
        (work / "hive").write_bytes(hive_bytes)
        (work / "log").write_bytes(plan.log_bytes)
        try:
            apply_transaction_logs(str(work / "hive"), str(work / "log"), restored_hive_path=str(work / "replayed"))
            with (work / "replayed").open("rb") as handle:
                root = RegfHive(work / "replayed", handle)
                state = _read_state(root, "hive + logs", f"{hive_path} + {', '.join(plan.logs)}", where)
                if state is not None:
                    _read_com_servers(root, state, _class_ids(state))
        except Exception as exc:
            where.ctx.gap(where.evidence, str(hive_path), f"transaction log replay failed: {type(exc).__name__}: {exc}")
            return None
    if state is None:
        return None
    return Replay(state=state, logs=plan.logs,
                  entries=[f"{e.log} entry {e.sequence} at 0x{e.offset:x}" for e in plan.entries])


def _siblings(path: Any) -> list[Any]:
    try:
        return sorted(path.parent.iterdir(), key=lambda p: p.name)
    except Exception:
        return []


# --------------------------------------------------------------------------------------------
# Records


def _class_ids(state: HiveState) -> set[str]:
    ids = set()
    for key in state.children(f"{TASKCACHE}\\Tasks"):
        value = key.value("Actions")
        if value is not None:
            ids |= {a.class_id for a in decode_actions(value.data).actions if a.class_id}
    return ids


def _key_location(key: RegKey) -> str:
    return f"{HKLM_SOFTWARE}\\{key.path}"


def collect(source: Source, ctx: Context) -> Iterator[TaskDefinition]:
    """One TaskDefinition per task in TaskCache, sorted by task path then GUID."""
    target = source.target
    if target is None or (source.os_family is not None and source.os_family != "windows"):
        return
    where = Where(source, ctx)
    try:
        collection = target.registry.key(f"{HKLM_SOFTWARE}\\{TASKCACHE}")
        keys = list(collection)
    except Exception as exc:
        if type(exc).__name__ == "UnsupportedPluginError":  # not collected: "not examined", not a gap
            ctx.progress(f"{where.evidence}: no SOFTWARE hive in the evidence: TaskCache not examined")
        elif source.os_family == "windows":
            ctx.gap(where.evidence, f"{HKLM_SOFTWARE}\\{TASKCACHE}", f"TaskCache not readable: {type(exc).__name__}: {exc}")
        return
    live = [k for k in keys if "regback" not in str(getattr(k.hive, "filepath", "")).lower()]
    backups = [k for k in keys if k not in live]
    if not live:
        ctx.gap(where.evidence, f"{HKLM_SOFTWARE}\\{TASKCACHE}", "TaskCache is only in the RegBack copy of SOFTWARE")
        return
    live_hive = live[0].hive
    primary = _read_state(live_hive, "hive", str(live_hive.filepath), where)
    if primary is None:
        ctx.gap(where.evidence, f"{HKLM_SOFTWARE}\\{TASKCACHE}", "TaskCache key not found in SOFTWARE")
        return
    ctx.examined(where.evidence, "taskcache", f"{HKLM_SOFTWARE}\\{TASKCACHE}", host=source.host.hostname,
                 files=[str(live_hive.filepath)])
    _read_com_servers(live_hive, primary, _class_ids(primary))
    replay = _replay(live_hive.filepath, where)
    regback = None
    if backups:
        regback = _read_state(backups[0].hive, "RegBack", str(backups[0].hive.filepath), where)
    current = replay.state if replay else primary
    user_classes = _UserClasses(target)
    task_files = _TaskFiles(target, source.task_file_digests)

    records: list[TaskDefinition] = []
    current_tasks = tasks_in(current.keys)
    primary_tasks = {t.identity: t for t in tasks_in(primary.keys)}
    regback_tasks = {t.identity: t for t in tasks_in(regback.keys)} if regback else None
    seen = set()
    for keys_ in current_tasks:
        seen.add(keys_.identity)
        record = _record(keys_, current, where, user_classes)
        if replay is not None:
            record.details["log_replay"] = _replay_facts(keys_, primary_tasks.get(keys_.identity), replay)
            record.details["only_after_log_replay"] = keys_.identity not in primary_tasks
        else:
            record.details["only_after_log_replay"] = False
        record.details["regback"] = _regback_facts(keys_, regback, regback_tasks)
        records.append(record)
    if replay is not None:
        for identity, keys_ in primary_tasks.items():
            if identity in seen:
                continue
            record = _record(keys_, primary, where, user_classes)
            record.details["only_after_log_replay"] = False
            record.details["removed_by_log_replay"] = True
            record.details["log_replay"] = {"applied": True, "logs": replay.logs, "entries": replay.entries,
                                            "differences": ["task keys removed by the log entries"]}
            record.details["regback"] = _regback_facts(keys_, regback, regback_tasks)
            records.append(record)
    records.sort(key=lambda r: ((r.task or "").lower(), r.details.get("guid") or ""))
    _compare_with_task_files(records, task_files)
    for record in records:
        if record.errors:
            more = f" (+{len(record.errors) - 1} more)" if len(record.errors) > 1 else ""
            ctx.gap(where.evidence, record.provenance.location, f"partly decoded: {record.errors[0]}{more}")
    yield from records


class _TaskFiles:
    """The task XML file Windows keeps beside each registry entry (System32\\Tasks\\<task path>)."""

    def __init__(self, target: Any, digests: dict[str, tuple[str, int]]):
        self.digests = digests  # what the task-file collector already read
        windir = None
        try:
            windir = windows_dir(target)
        except Exception:
            windir = None
        self.folder = find_path(windir, "System32", "Tasks") if windir is not None else None
        self._listings: dict[str, dict[str, Any] | None] = {}  # each folder is listed once, not once per task

    def _child(self, folder: Any, name: str) -> Any:
        """Case-insensitive child of ``folder`` (None when absent or the folder cannot be listed)."""
        key = str(folder)
        if key not in self._listings:
            try:
                self._listings[key] = {child.name.lower(): child for child in folder.iterdir()}
            except Exception:
                self._listings[key] = None
        listing = self._listings[key]
        return None if listing is None else listing.get(name.lower())

    def facts(self, task: str) -> dict[str, Any] | None:
        if self.folder is None or not task:
            return None
        path = self.folder
        for name in [p for p in task.split("\\") if p]:
            path = self._child(path, name)
            if path is None:
                return None
        if (known := self.digests.get(str(path))) is not None:
            return {"path": str(path), "sha256": known[0], "crc32": known[1]}
        try:
            _, data = read_file(path, MAX_DEFINITION_BYTES)
        except Exception:  # the task file collector reports it
            return None
        return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "crc32": zlib.crc32(data)}


def _compare_with_task_files(records: list[TaskDefinition], files: _TaskFiles) -> None:
    """Hash and CRC32 against the task file. Which bytes Windows hashes is not confirmed by any real
    sample (SHA-256 and CRC32 of the file bytes are the working assumption), so every record also says
    whether the assumption held for at least one task of this hive (``*_basis_confirmed``)."""
    hash_matches = crc_matches = 0
    for record in records:
        facts = files.facts(record.task) if record.details.get("tree_key") else None
        record.details["task_file"] = facts
        if facts is None:
            continue
        if record.details.get("hash_hex"):
            hash_matches += record.details["hash_hex"] == facts["sha256"]
        if record.details.get("crc32"):
            crc_matches += record.details["crc32"] == facts["crc32"]
    for record in records:
        record.details["hash_basis_confirmed"] = hash_matches > 0
        record.details["crc32_basis_confirmed"] = crc_matches > 0


class _UserClasses:
    """Per-user COM registrations (NTUSER Software\\Classes, UsrClass.dat) override HKLM for that user."""

    def __init__(self, target: Any):
        self.target = target
        self.loaded = False

    def server(self, sid: str | None, clsid: str) -> tuple[str, str, RegValue] | None:
        if not sid:
            return None
        if not self.loaded:
            self.loaded = True
            try:
                self.target.registry.load_user_hives()
            except Exception:
                return None
        path = f"HKEY_USERS\\{sid}\\Software\\Classes\\CLSID\\{clsid}\\InprocServer32"
        try:
            value = _default_value(self.target.registry, path)
        except Exception:
            return None
        return (path, value.text(), value) if value is not None else None


def _record(keys: TaskKeys, state: HiveState, where: Where, user_classes: _UserClasses) -> TaskDefinition:
    definition = task_definition(keys, hive_root=HKLM_SOFTWARE, hive_file=state.file, artifact="taskcache",
                                 evidence=where.evidence, evidence_sha256=where.source.ref.sha256,
                                 host=where.source.host.hostname, tz=where.source.tz)
    _resolve_com(definition, state, user_classes)
    return definition


def _resolve_com(definition: TaskDefinition, state: HiveState, user_classes: _UserClasses) -> None:
    """The DLL a ComHandler action really loads: the user's own classes first, then HKLM."""
    user_sid = definition.settings.get("user_sid")
    for action in definition.actions:
        if action.kind != "comhandler" or not action.class_id:
            continue
        clsid = action.class_id.upper()
        found = user_classes.server(user_sid, clsid) or state.com_servers.get(clsid)
        if found is None:
            action.details["com_server"] = "not registered (no InprocServer32 in HKLM or the user's classes)"
            continue
        path, dll, value = found
        action.resolved_dll = dll
        action.details["resolved_from"] = path
        action.details["resolved_raw"] = value.data.hex()


def _task_values(keys: TaskKeys | None) -> dict[str, RegValue]:
    out: dict[str, RegValue] = {}
    if keys is None:
        return out
    for label, key in (("Tree", keys.tree), ("Tasks", keys.tasks)):
        if key is not None:
            for value in key.values.values():
                out[f"{label}\\{value.name}"] = value
    for name in keys.index_keys:
        out[f"{name}\\{keys.guid}"] = RegValue(name="", type=0, data=b"")
    return out


def _differences(before: TaskKeys | None, after: TaskKeys) -> list[str]:
    old, new = _task_values(before), _task_values(after)
    changes = []
    for name in sorted(set(old) | set(new), key=str.lower):
        if name not in old:
            changes.append(f"{name}: added")
        elif name not in new:
            changes.append(f"{name}: removed")
        elif (old[name].type, old[name].data) != (new[name].type, new[name].data):
            changes.append(f"{name}: changed")
    return changes


def _replay_facts(keys: TaskKeys, before: TaskKeys | None, replay: Replay) -> dict[str, Any]:
    return {"applied": True, "logs": replay.logs, "entries": replay.entries, "differences": _differences(before, keys)}


def _regback_facts(keys: TaskKeys, regback: HiveState | None, regback_tasks: dict[str, TaskKeys] | None) -> dict[str, Any] | None:
    if regback is None or regback_tasks is None:
        return None
    old = regback_tasks.get(keys.identity)
    written = [k.written for k in regback.keys.values() if k.written]
    return {"file": regback.file, "present": old is not None, "differences": _differences(old, keys),
            "newest_key_written": iso(max(written)) if written else None}


__all__ = ["collect"]
