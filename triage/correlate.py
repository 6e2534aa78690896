"""The join: one entity per task across every source, and every timestamp on one timeline.

Windows tasks are joined by normalised task path, and registry records with no path by their
GUID; Unix jobs by their entry id. Nothing here reads evidence: everything comes in records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from triage import sources
from triage.parsers.task_processes import TASK_GUID, TASK_HOSTS, matches_exec
from triage.records import (
    Entity,
    Provenance,
    Stamp,
    TaskDefinition,
    TaskEvent,
    TaskProcess,
    TimelineEvent,
    UnixJob,
)
from triage.sources import SourceName
from triage.store import CaseStore, StoredEvents, StoredTaskTimeline
from triage.stores import StoreIndex, host_key
from triage.taskpath import display_task_path, normalise_task_path
from triage.timeorder import utc_key

# Stamp meanings → the words a timeline row uses.
_WHAT = {
    "registration_date": "task XML RegistrationInfo/Date",
    "si_created": "task file created ($STANDARD_INFORMATION)",
    "si_modified": "task file modified ($STANDARD_INFORMATION)",
    "si_mft_modified": "task file MFT entry changed ($STANDARD_INFORMATION)",
    "si_accessed": "task file accessed ($STANDARD_INFORMATION)",
    "fn_created": "task file created ($FILE_NAME)",
    "fn_modified": "task file modified ($FILE_NAME)",
    "fn_mft_modified": "task file MFT entry changed ($FILE_NAME)",
    "fn_accessed": "task file accessed ($FILE_NAME)",
    "last_run": "last run",
    "last_successful_run": "last successful run",
    "created": "created",
    "modified": "file modified",
    "changed": "inode changed",
    "accessed": "file accessed",
    "born": "file created (crtime)",
    "key_last_written": "registry key last written",
    "process_created": "process started",
    "process_exited": "process exited",
}

_WINDOWS_UNIX_KIND = {"cron": "cron", "anacron": "anacron", "cron_script": "cron_script", "at": "at", "systemd_timer": "systemd_timer"}


def _what(stamp: Stamp, prefix: str = "") -> str:
    text = _WHAT.get(stamp.meaning, stamp.meaning.replace("_", " "))
    return f"{prefix}{text}" if prefix else text


_UNNAMED_HOSTS = {"", "localhost"}
HELD_EVENTS = 2000  # a task with more events is judged over its stored events and rows, not held (issue 17)
T = TypeVar("T")


def mark_other_computers(events: Iterable[TaskEvent], evidence_host: str | None) -> int:
    """Flag events one evidence item holds that another computer logged (a Security log copied from
    another machine): their Computer stays their host, ``evidence_host`` names where they were found.
    Returns how many were flagged. ``localhost`` names no machine (dissect's name for a system without
    /etc/hostname, syslog's before the hostname is set): it is never taken for another computer."""
    if host_key(evidence_host) in _UNNAMED_HOSTS:
        return 0
    flagged = 0
    for event in events:
        if host_key(event.host) not in _UNNAMED_HOSTS and host_key(event.host) != host_key(evidence_host):
            event.evidence_host = evidence_host
            flagged += 1
    return flagged


def event_entity_key(event: TaskEvent) -> str:
    """The entity an event with a task joins: its task path, plus ``@host`` when another computer logged it."""
    key = normalise_task_path(event.task or "") if event.channel not in ("syslog", "cron", "journal") else (event.task or "")
    return f"{key}@{host_key(event.host)}" if event.evidence_host else key


class _Entities:
    """Entities being built, by key. Records join in one order (definitions, Unix jobs, events, processes): an
    entity's name, kind and host come from the first record that names them."""

    def __init__(self, definitions: Iterable[TaskDefinition], unix_jobs: Iterable[UnixJob]):
        self.by_key: dict[str, Entity] = {}
        self.events: dict[str, list[TaskEvent]] = {}  # each entity's events while it is built
        definitions = list(definitions)
        guid_to_key: dict[str, str] = {}
        # Registry records name their GUID; a GUID seen with a path lets path-less records join it.
        for definition in definitions:
            guid = (definition.details.get("guid") or "").lower()
            if guid and definition.task:
                guid_to_key.setdefault(guid, normalise_task_path(definition.task))
        for definition in definitions:
            guid = (definition.details.get("guid") or "").lower()
            if definition.task:
                key, display = normalise_task_path(definition.task), display_task_path(definition.task)
            else:
                key = guid_to_key.get(guid, f"{{{guid}}}")
                display = key
            entity = self.entity_for(key, display, "windows_task", definition.host)
            entity.definitions.append(definition)
            if guid and guid not in entity.guids:
                entity.guids.append(guid)
        for job in unix_jobs:
            self.entity_for(job.entry, job.entry, _WINDOWS_UNIX_KIND.get(job.kind, job.kind), job.host).unix_jobs.append(job)

    def entity_for(self, key: str, display: str, kind: str, host: str | None) -> Entity:
        entity = self.by_key.get(key)
        if entity is None:
            events = self.events[key] = []
            entity = self.by_key[key] = Entity(key=key, task=display, kind=kind, host=host, events=events)
        if entity.host is None and host:
            entity.host = host
        return entity

    def add_event(self, event: TaskEvent, *, keep: bool = True) -> None:
        """Join the event to its entity; ``keep`` False: the entity's events are read from the store instead."""
        if not event.task:
            return
        kind = "windows_task" if event.channel not in ("syslog", "cron", "journal") else "cron"
        key = event_entity_key(event)
        entity = self.entity_for(key, display_task_path(event.task) if kind == "windows_task" else event.task, kind,
                                 event.host)
        if keep:
            self.events[key].append(event)
        if event.definition is not None:  # a task rebuilt from 4698/4702 TaskContent is a definition too
            entity.definitions.append(event.definition)

    def add_process(self, process: TaskProcess) -> None:
        if (named := process_entity(process)) is not None:
            self.entity_for(*named, "windows_task", process.host).processes.append(process)


def process_entity(process: TaskProcess) -> tuple[str, str] | None:
    """(entity key, display name) of the task a process belongs to; None for task tooling of no task."""
    if process.task:
        return normalise_task_path(process.task), display_task_path(process.task)
    if process.details.get("task_entity"):  # the scheduler runs it, no definition names it: still a task
        return process.details["task_entity"], process.details["task_entity_name"]
    return None


def _finish(entity: Entity, stores: StoreIndex | None) -> None:
    _describe(entity, stores)
    entity.timeline = sorted(_entity_timeline(entity), key=timeline_sort_key)


def _describe(entity: Entity, stores: StoreIndex | None) -> None:
    entity.sources = sorted(_sources(entity))
    entity.status = _status(entity, stores)


def correlate(
    definitions: Iterable[TaskDefinition],
    events: Iterable[TaskEvent],
    processes: Iterable[TaskProcess],
    unix_jobs: Iterable[UnixJob],
    stores: StoreIndex | None = None,
) -> tuple[list[Entity], list[TimelineEvent]]:
    """Group every record into per-task entities and build the sorted case timeline (all in memory; a run
    streams through :func:`correlate_stored` instead).

    Events another computer logged (``evidence_host`` set) form that computer's own entities, keyed
    ``<task>@<host>``, so they never corroborate or contradict the evidence item's own tasks.
    ``stores`` (what was examined per host) lets a task's status say when its definition was not examined.
    """
    entities = _Entities(definitions, unix_jobs)
    for event in events:
        entities.add_event(event)
    for process in processes:
        entities.add_process(process)
    timeline: list[TimelineEvent] = []
    for entity in entities.by_key.values():
        _finish(entity, stores)
        timeline.extend(entity.timeline)
    ordered = sorted(entities.by_key.values(), key=lambda e: e.key)
    return ordered, sorted(timeline, key=timeline_sort_key)


def correlate_stored(definitions: Iterable[TaskDefinition], store: CaseStore, processes: Iterable[TaskProcess],
                     unix_jobs: Iterable[UnixJob], stores: StoreIndex | None, judge: Callable[[Entity], T],
                     dated: Callable[[TimelineEvent], bool]) -> list[tuple[Entity, T]]:
    """:func:`correlate` one task at a time, over the events in ``store``: each entity is built whole (its
    events loaded), judged (``judge``, which sees it whole), its timeline rows written to the store with the
    rows of no task (``dated``: see :meth:`CaseStore.add_rows`), and then its events and timeline are left in
    the store (read again only when used). Same entities, same rows and the same tie order as :func:`correlate`.
    Returns (entity, judgement) pairs in key order."""
    entities = _Entities(definitions, unix_jobs)
    groups: dict[str, list[int]] = {}
    loose_groups = []
    for number, first in store.event_groups().items():
        if first.task:
            groups.setdefault(event_entity_key(first), []).append(number)
        else:
            loose_groups.append(number)
    processes = list(processes)
    by_process: dict[str, list[TaskProcess]] = {}
    for process in processes:
        if (named := process_entity(process)) is not None:
            by_process.setdefault(named[0], []).append(process)
    judged = []
    for key in sorted({*entities.by_key, *groups, *by_process}):
        # A task of many events (one task of 1 GB of logs has 35,000) is built and judged over store-backed
        # views, so what it holds does not grow with the logs; the others are held whole, which is faster.
        held = key not in groups or store.event_count(groups[key]) <= HELD_EVENTS
        for event in store.events(groups[key]) if key in groups else ():
            entities.add_event(event, keep=held)
        for process in by_process.get(key, ()):
            entities.add_process(process)
        entity = entities.by_key[key]
        if held:
            _finish(entity, stores)
            judged.append((entity, judge(entity)))
            store.add_rows(key, entity.timeline, row_order, dated)
        else:
            entity.events = StoredEvents(store, groups[key])
            _describe(entity, stores)
            store.add_rows(key, _entity_timeline(entity), row_order, dated, task_order=timeline_sort_key)
            entity.timeline = StoredTaskTimeline(store, key)
            judged.append((entity, judge(entity)))
        entity.events = StoredEvents(store, groups.get(key, []))
        del entities.events[key]
        entity.timeline = StoredTaskTimeline(store, key)
    store.add_rows("", _unattached_rows(store.events(loose_groups) if loose_groups else (), processes), row_order,
                   dated)
    store.finish_rows()
    return judged


def unattached_timeline(events: Iterable[TaskEvent], processes: Iterable[TaskProcess]) -> list[TimelineEvent]:
    """Timeline rows for task tooling seen without a task name (schtasks.exe runs, atsvc access...)."""
    return sorted(_unattached_rows(events, processes), key=timeline_sort_key)


def _unattached_rows(events: Iterable[TaskEvent], processes: Iterable[TaskProcess]) -> Iterator[TimelineEvent]:
    """The rows of :func:`unattached_timeline`, unsorted, one at a time."""
    yield from (_event_row(e, key="") for e in events if not e.task and _has_time(e.time))
    yield from (row for p in processes if not p.task and not p.details.get("task_entity")
                for row in _process_rows(p, key="", host=p.host))


def row_order(row: TimelineEvent) -> tuple:
    """The exports' order of timeline rows: :func:`timeline_sort_key`, then every other field that tells two
    rows apart, so the same input always gives the same bytes."""
    prov = row.provenance
    return (utc_key(row.utc), row.task, row.what, row.source, prov.location, prov.offset or 0, prov.value_name or "",
            row.meaning, row.as_written or "", prov.raw or "", prov.evidence or "", sorted(map(str, row.details.items())))


def timeline_sort_key(row: TimelineEvent) -> tuple:
    return (utc_key(row.utc), row.task, row.what, row.source, row.provenance.location, row.provenance.offset or 0)


def _sources(entity: Entity) -> set[str]:
    found = {d.source for d in entity.definitions}
    found |= {f"evtx:{e.channel}" if e.provenance.artifact == "evtx" else e.provenance.artifact for e in entity.events}
    if entity.processes:
        found.add("memory")
    found |= {j.kind for j in entity.unix_jobs}
    return found


def _status(entity: Entity, stores: StoreIndex | None = None) -> str | None:
    """A short statement of the task's state that examiners read first."""
    if entity.kind != "windows_task":
        from triage.detect.unix_checks import unix_status  # late: detect imports records the correlator builds

        return unix_status(entity)
    status = _state(entity)
    if stores is not None and not entity.definitions and entity.events:
        relative = "\\" + entity.task.strip("\\")
        looked = stores.absence(entity.host, ("task_files", "taskcache"), {"task_files": relative, "taskcache": "Tree" + relative})
        if not looked.claimable:
            status = f"{status}; definition not examined: {looked.reason}"
    if any(e.evidence_host for e in entity.events):
        found_in = sorted({e.evidence_host for e in entity.events if e.evidence_host})
        status = f"{status}; logged by {entity.host}, found in the evidence of {', '.join(found_in)}"
    return status


def _state(entity: Entity) -> str:
    on_disk = any(d.source in sources.task_file_sources() for d in entity.definitions)
    in_registry = any(d.source == SourceName.TASKCACHE for d in entity.definitions)
    if on_disk and in_registry:
        return "task file and registry entry"
    if on_disk:
        return "task file only"
    if in_registry:
        return "registry only (no task file)"
    rebuilt = sorted((e for e in entity.events if e.definition is not None), key=lambda e: (utc_key(e.time.utc), e.provenance.offset or 0))
    deleted = any(e.action == "deleted" for e in entity.events)
    if rebuilt:
        when = rebuilt[0].time.utc or rebuilt[0].time.as_written
        return f"{'deleted, ' if deleted else 'known from events only, '}rebuilt from {rebuilt[0].event_id} at {when}"
    if any(d.source == SourceName.MEMORY_TASKCACHE for d in entity.definitions):
        return "in-memory registry copy" + (", running" if entity.processes else "")
    if any(d.source == SourceName.COMMAND_LINE for d in entity.definitions):
        return "rebuilt from a task-creating command line" + (", running" if entity.processes else "")
    if entity.processes:
        return "running task not linked to a definition"
    return "deleted, known from events only" if deleted else "known from events only"


def _entity_timeline(entity: Entity) -> Iterator[TimelineEvent]:
    """The entity's timeline rows, unsorted, one at a time."""
    for definition in entity.definitions:
        yield from _definition_rows(definition, entity.key, entity.host)
    for event in entity.events:
        if _has_time(event.time):
            yield _event_row(event, entity.key)
    for process in entity.processes:
        yield from _process_rows(process, entity.key, entity.host)
    for job in entity.unix_jobs:
        yield from _unix_rows(job, entity.key)


def _has_time(stamp: Stamp) -> bool:
    """A log entry with no time at all (a SchedLgU header or version line) is an event, not a timeline row."""
    return bool(stamp.utc or stamp.as_written)


def _row(stamp: Stamp, what: str, key: str, host: str | None, source: str, provenance: Provenance, **details) -> TimelineEvent:
    return TimelineEvent(
        utc=stamp.utc, what=what, meaning=stamp.meaning, task=key, host=host, source=source,
        provenance=provenance, precision=stamp.precision, as_written=stamp.as_written, basis=stamp.basis,
        details={k: v for k, v in details.items() if v is not None},
    )


def _definition_rows(definition: TaskDefinition, key: str, host: str | None) -> list[TimelineEvent]:
    rows = []
    prov = definition.provenance
    source = definition.source
    if definition.date is not None:
        rows.append(_row(definition.date, f"{_label(source)} registration date", key, host, source,
                         _stamp_provenance(definition, definition.date)))
    if definition.file is not None:
        file_prov = Provenance(artifact=prov.artifact, location=definition.file.path, evidence=prov.evidence,
                               evidence_sha256=prov.evidence_sha256, raw=definition.file.sha256)
        for stamp in definition.file.times:
            rows.append(_row(stamp, _what(stamp), key, host, source, file_prov))
    for stamp in definition.stamps:
        what = f"{_label(source)} {_what(stamp)}"
        which = (stamp.as_written or "").rpartition(" (")[2]
        if stamp.meaning == "key_last_written" and which in ("Tree key)", "Tasks key)"):
            what = f"{_label(source)} {which[:-1]} last written"  # the Tree and the Tasks key are two keys
        rows.append(_row(stamp, what, key, host, source, _stamp_provenance(definition, stamp)))
    return rows


# Registry times and the value or key each is read from (TaskCache on disk and in memory).
_DYNAMIC_INFO_MEANINGS = frozenset({"registered", "created", "last_run", "last_successful_run"})


def _stamp_provenance(definition: TaskDefinition, stamp: Stamp) -> Provenance:
    """The exact place a definition's time was read: the XML's ``RegistrationInfo/Date``, a TaskCache
    ``Date`` value, the ``DynamicInfo`` value, the Tree or the Tasks key's last-write time; the
    definition's own provenance otherwise."""
    prov = definition.provenance
    if definition.source not in (SourceName.TASKCACHE, SourceName.MEMORY_TASKCACHE):
        if stamp is definition.date and (definition.source == SourceName.TASK_XML or definition.source.startswith("evtx_")):
            element = "RegistrationInfo/Date"
            return dataclasses.replace(prov, value_name=f"{prov.value_name}/{element}" if prov.value_name else element,
                                       raw=stamp.as_written)
        return prov
    details = definition.details
    values = (details.get("values") or {}).get("tasks") or {}
    tasks_key = details.get("tasks_key") or prov.location
    written = stamp.as_written or ""
    if stamp.meaning in ("key_last_written", "tree_key_last_written", "tasks_key_last_written"):
        tree = stamp.meaning == "tree_key_last_written" or written.endswith("(Tree key)")
        location = details.get("tree_key") if tree else tasks_key
        return dataclasses.replace(prov, location=location or prov.location, value_name=None,
                                   raw=written.split(" ", 1)[0] or None)
    if stamp is definition.date:
        value = values.get("Date") or {}
        return dataclasses.replace(prov, location=tasks_key, value_name="Date", raw=value.get("hex") or stamp.as_written)
    if stamp.meaning in _DYNAMIC_INFO_MEANINGS:
        value = values.get("DynamicInfo") or {}
        return dataclasses.replace(prov, location=tasks_key, value_name="DynamicInfo",
                                   raw=value.get("hex") or details.get("dynamic_info_hex") or stamp.as_written)
    return prov


def _label(source: str) -> str:
    return sources.label(source)


def _event_row(event: TaskEvent, key: str) -> TimelineEvent:
    label = f"{event.channel} {event.event_id}" if event.event_id is not None else event.channel
    what = f"{label}: {event.action.replace('_', ' ')}"
    return _row(event.time, what, key, event.host, event.provenance.artifact, event.provenance,
                user=event.user, process_id=event.process_id, command_line=event.command_line,
                result_code=event.result_code)


def _process_rows(process: TaskProcess, key: str, host: str | None) -> list[TimelineEvent]:
    rows = []
    for stamp in (process.created, process.exited):
        if stamp is not None:
            rows.append(_row(stamp, f"{_what(stamp)}: {process.name} (pid {process.pid})", key, host, "memory",
                             process.provenance, process_id=process.pid, command_line=process.command_line,
                             decoded_command=process.details.get("decoded_command")))
    return rows


def _unix_rows(job: UnixJob, key: str) -> list[TimelineEvent]:
    rows = []
    if job.file is not None:
        file_prov = Provenance(artifact=job.provenance.artifact, location=job.file.path, evidence=job.provenance.evidence,
                               evidence_sha256=job.provenance.evidence_sha256, raw=job.file.sha256)
        for stamp in job.file.times:
            rows.append(_row(stamp, f"{job.kind} file {_what(stamp)}", key, job.host, job.kind, file_prov))
    for stamp in job.stamps:
        rows.append(_row(stamp, f"{job.kind} {_what(stamp)}", key, job.host, job.kind, job.provenance))
    return rows


def filter_timeline(rows: list[TimelineEvent], *, since: str | None = None, until: str | None = None,
                    task: str | None = None) -> list[TimelineEvent]:
    """``--since/--until`` (UTC ISO prefixes compare as text) and ``--task``."""
    wanted = normalise_task_path(task) if task and task.startswith("\\") else task
    out = []
    for row in rows:
        if since and (row.utc is None or utc_key(row.utc) < utc_key(since)):
            continue
        if until and (row.utc is None or utc_key(row.utc) > utc_key(until)):
            continue
        if wanted and row.task != wanted:
            continue
        out.append(row)
    return out


# --- task processes (memory) linked to their tasks ----------------------------------------------

EVENT_LINK_TOLERANCE = timedelta(seconds=5)


def _parse_utc(stamp: Stamp | None) -> datetime | None:
    if stamp is None or not stamp.utc:
        return None
    return datetime.fromisoformat(stamp.utc.replace("Z", "+00:00"))


def link_task_processes(processes: list[TaskProcess], events: Iterable[TaskEvent] = (),
                        definitions: Iterable[TaskDefinition] = ()) -> list[TaskProcess]:
    """Set ``task`` and ``link_reason`` on task processes; returns the same list.

    In order: (1) a taskhost(w)/taskeng argument that is a task's GUID or its ComHandler CLSID;
    (2) a command line that runs a decoded Exec action; (3) TaskScheduler event 129 (the event's
    process id and a create time within 5 s); then every descendant inherits its nearest linked
    ancestor's task. When definitions are given, a process the scheduler started that matches no
    task is flagged ``task_not_in_registry`` (the task was deleted after it was loaded, or hidden).
    """
    definitions = list(definitions)
    guid_to_task: dict[str, str] = {}
    clsid_to_tasks: dict[str, set[str]] = {}
    exec_actions: list[tuple[str, str, str | None]] = []
    for definition in definitions:
        guid = str(definition.details.get("guid") or "").upper()
        if guid:
            guid_to_task[guid] = definition.task
        for action in definition.actions:
            if action.kind == "comhandler" and action.class_id:
                clsid_to_tasks.setdefault(action.class_id.upper(), set()).add(definition.task)
            elif action.kind == "exec" and action.command:
                exec_actions.append((definition.task, action.command, action.arguments))
    by_key = {(p.pid, p.created.utc if p.created else None): p for p in processes}
    for proc in processes:
        if proc.task:
            continue
        role = proc.details.get("role")
        if proc.name.lower() in TASK_HOSTS and proc.command_line:
            for guid in TASK_GUID.findall(proc.command_line):
                guid = guid.upper()
                if guid in guid_to_task:
                    proc.task, proc.link_reason = guid_to_task[guid], f"{proc.name} argument {guid} is the task's GUID"
                    break
                if len(clsid_to_tasks.get(guid, ())) == 1:
                    proc.task = next(iter(clsid_to_tasks[guid]))
                    proc.link_reason = f"{proc.name} argument {guid} is the task's ComHandler CLSID"
                    break
        if not proc.task and proc.command_line and role in ("task_process", "task_host"):
            matches = sorted({task for task, command, arguments in exec_actions if matches_exec(proc.command_line, command, arguments)})
            if len(matches) == 1:
                proc.task, proc.link_reason = matches[0], "command line runs the task's Exec action"
            elif matches:
                proc.details["exec_action_matches"] = matches
        if definitions and not proc.task and role == "task_process":
            proc.flags = sorted(set(proc.flags) | {"task_not_in_registry"})
    for event in sorted(events, key=lambda e: (utc_key(e.time.utc), e.provenance.offset or 0)):
        if event.event_id != 129 or event.process_id is None or not event.task:
            continue
        logged = _parse_utc(event.time)
        for proc in processes:
            created = _parse_utc(proc.created)
            if proc.pid != event.process_id or logged is None or created is None:
                continue
            if abs(logged - created) > EVENT_LINK_TOLERANCE:
                continue
            reason = (f"TaskScheduler event 129 (record {event.provenance.offset}) logged process id {proc.pid} "
                      f"for {event.task} at {event.time.utc}")
            if proc.task and proc.task.lower() != event.task.lower():
                proc.details["event_129_task"] = event.task
            elif not proc.task:
                proc.task, proc.link_reason = event.task, reason
    for proc in sorted(processes, key=lambda p: (utc_key(p.created.utc) if p.created else "", p.pid)):
        if proc.task or proc.details.get("role") == "schedule_host":
            continue
        key = _parent_key(proc, processes)
        parent = by_key.get(key) if key else None
        if parent is not None and parent.task and parent.details.get("role") != "schedule_host":
            proc.task = parent.task
            proc.link_reason = f"descendant of {parent.name} ({parent.pid}), which runs the task"
    _assign_task_entities(processes, by_key)
    return processes


def _assign_task_entities(processes: list[TaskProcess], by_key: dict) -> None:
    """Give every process the scheduler runs that no definition names a task entity of its own (details
    ``task_entity`` key and ``task_entity_name``): keyed by its task host's GUID argument (taskhost(w).exe
    runs one task per GUID), else by the process the scheduler started (the root of its subtree)."""
    for proc in processes:
        proc.details.pop("task_entity", None)
        proc.details.pop("task_entity_name", None)
        if proc.task or proc.details.get("role") == "schedule_host":
            continue
        root, seen = proc, {id(proc)}
        while root.details.get("role") not in ("task_process", "task_host"):
            key = _parent_key(root, processes)
            parent = by_key.get(key) if key else None
            if parent is None or id(parent) in seen or parent.details.get("role") == "schedule_host":
                break
            seen.add(id(parent))
            root = parent
        guids = TASK_GUID.findall(root.command_line or "") if root.name.lower() in ("taskhostw.exe", "taskhost.exe", "taskhostex.exe") else []
        if guids:
            proc.details["task_entity"] = f"memory:{guids[0].lower()}"
            proc.details["task_entity_name"] = f"(running task) {guids[0].upper()}"
        else:
            proc.details["task_entity"] = f"memory:{root.name.lower()}:{root.pid}"
            proc.details["task_entity_name"] = f"(running task) {root.name} pid {root.pid}"


def _parent_key(proc: TaskProcess, processes: list[TaskProcess]) -> tuple[int, str | None] | None:
    """Key of the parent record: same PID as ppid, created before the child (latest such)."""
    created = utc_key(proc.created.utc) if proc.created else ""
    candidates = [p for p in processes if p.pid == proc.ppid and p is not proc and (utc_key(p.created.utc) if p.created else "") <= created]
    if not candidates:
        return None
    parent = max(candidates, key=lambda p: utc_key(p.created.utc) if p.created else "")
    return parent.pid, parent.created.utc if parent.created else None


# ---------------------------------------------------------------------------------------------------
# Running volatility3 in-process
# ---------------------------------------------------------------------------------------------------
