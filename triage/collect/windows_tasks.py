"""Windows task definitions on disk: task XML files, legacy ``.job`` files, GPO Preferences
``ScheduledTasks.xml`` and ``SchedLgU.txt``, each with the facts of the file that holds it.

Every file in the task folders is read whatever its name (dissect skips names with a dot, so a task
called ``Update.Service`` is invisible to it). A file that does not parse still yields a
TaskDefinition carrying its file facts and ``errors``, plus one gap line: nothing is dropped silently.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from triage.collect import Context, Source
from triage.collect.filefacts import UnreadableFile, file_facts, read_error, read_small_file
from triage.collect.names import escaped_text
from triage.parsers.gpp import GppError, parse_gpp_scheduled_tasks
from triage.parsers.job import JobError, parse_job
from triage.parsers.schedlgu import SchedLgUError, parse_schedlgu
from triage.parsers.task_xml import TaskXmlError, parse_task_xml
from triage.records import FileFacts, Provenance, TaskDefinition, TaskEvent
from triage.taskpath import display_task_path, normalise_task_path

# Task Scheduler 2.0 stores one XML file per task here; the path below the folder is the task path.
XML_TASK_FOLDERS = (("System32", "Tasks"), ("System32", "Tasks_Migrated"), ("SysWOW64", "Tasks"))
# Files Windows keeps in %windir%\Tasks that are not task definitions.
LEGACY_FOLDER_NON_TASKS = {"desktop.ini", "sa.dat"}
SCHEDLGU_NAME = "schedlgu.txt"
# The largest real task XML / .job / GPO file is a few KB; anything above this is hashed, not parsed.
MAX_DEFINITION_BYTES = 4 * 1024 * 1024
# Task Scheduler accepts at most 32 actions per task; a file holding more was not written by it.
MAX_ACTIONS = 32


@dataclass
class Where:
    """What every record from this evidence item shares."""

    source: Source
    ctx: Context

    @property
    def evidence(self) -> str:
        return self.source.ref.path

    def provenance(self, artifact: str, location: str) -> Provenance:
        return Provenance(artifact=artifact, location=location, evidence=self.source.ref.path,
                          evidence_sha256=self.source.ref.sha256)


def collect(source: Source, ctx: Context) -> Iterator[TaskDefinition | TaskEvent]:
    """Task definitions sorted by task path, then SchedLgU events in file order."""
    target = source.target
    if target is None:
        return
    where = Where(source, ctx)
    windir = windows_dir(target)
    if windir is None:
        return
    definitions: list[TaskDefinition] = []
    events: list[TaskEvent] = []

    for parts in XML_TASK_FOLDERS:
        folder = find_path(windir, *parts)
        if folder is None:
            continue
        ctx.examined(where.evidence, "task_files", str(folder), host=source.host.hostname)
        for path in _walk(folder, where):
            # str(): NTFS names come back as cstruct wchar arrays, which pathlib cannot intern
            task = display_task_path(escaped_text(str(path)[len(str(folder)):]))
            definitions += _guarded(where, path, _task_xml, path, task, "\\".join(parts), where)

    legacy = find_path(windir, "Tasks")
    schedlgu_files = [p for p in (find_path(_root(target), "SchedLgU.txt"), find_path(windir, "SchedLgU.txt")) if p]
    if legacy is not None:
        ctx.examined(where.evidence, "task_files", str(legacy), host=source.host.hostname)
        for path in _walk(legacy, where):
            name = path.name.lower()
            if name.endswith(".job"):
                definitions += _guarded(where, path, _job, path, where)
            elif name == SCHEDLGU_NAME:
                schedlgu_files.append(path)
            elif name not in LEGACY_FOLDER_NON_TASKS:
                where.ctx.gap(where.evidence, escaped_text(str(path)), "file in the legacy Tasks folder is not a .job file "
                              "(Task Scheduler 1.0 ignores it); not parsed")
    for path in {str(p).lower(): p for p in schedlgu_files}.values():
        events += _guarded(where, path, _schedlgu, path, where)

    for path in _gpp_files(target, windir, where):
        definitions += _guarded(where, path, _gpp, path, where)

    definitions.sort(key=lambda d: (normalise_task_path(d.task), d.provenance.location, d.provenance.value_name or ""))
    events.sort(key=lambda e: (e.provenance.location, e.provenance.offset or 0))
    yield from definitions
    yield from events


def _guarded(where: Where, path: Any, read: Callable[..., Any], *args: Any) -> list:
    """``read(*args)``: the record(s) of one file; anything unexpected while reading it (MemoryError
    included) costs only that file, as one gap, and the records of every other file are kept."""
    try:
        records = read(*args)
    except Exception as exc:
        where.ctx.gap(where.evidence, escaped_text(str(path)), f"not read: {read_error(exc)}")
        return []
    return records if isinstance(records, list) else [records]


def _task_xml(path: Any, task: str, folder: str, where: Where) -> TaskDefinition:
    provenance = where.provenance("task_xml", escaped_text(str(path)))
    facts, data, problem = _read(path, where)
    if data is None:
        return _unparsed(task, "task_xml", provenance, facts, problem)
    if facts.sha256:
        where.source.task_file_digests[str(path)] = (facts.sha256, zlib.crc32(data))
    try:
        definition = parse_task_xml(data, task=task, provenance=provenance, local_tz=where.source.tz)
    except TaskXmlError as exc:
        where.ctx.gap(where.evidence, provenance.location, f"task XML not parsed: {exc}")
        return _unparsed(task, "task_xml", provenance, facts, f"task XML not parsed: {exc}")
    definition.file = facts
    definition.host = where.source.host.hostname
    definition.details["task_folder"] = folder
    _report_partial(definition, where)
    if len(definition.actions) > MAX_ACTIONS:
        where.ctx.gap(where.evidence, provenance.location, f"task holds {len(definition.actions)} actions (Task Scheduler "
                      f"allows {MAX_ACTIONS}): all are listed, detection rules are written for the first {MAX_ACTIONS}")
    return definition


def _job(path: Any, where: Where) -> TaskDefinition:
    provenance = where.provenance("job", escaped_text(str(path)))
    # Task Scheduler 1.0 names a task after its file without ".job": same path as its 2.0 twin.
    task = display_task_path(escaped_text(path.name[:-4]))
    facts, data, problem = _read(path, where)
    if data is None:
        return _unparsed(task, "job", provenance, facts, problem)
    try:
        definition = parse_job(data, task=task, provenance=provenance, local_tz=where.source.tz)
    except JobError as exc:
        where.ctx.gap(where.evidence, provenance.location, f".job not parsed: {exc}")
        return _unparsed(task, "job", provenance, facts, f".job not parsed: {exc}")
    definition.file = facts
    definition.host = where.source.host.hostname
    _report_partial(definition, where)
    return definition


def _gpp(path: Any, where: Where) -> list[TaskDefinition]:
    provenance = where.provenance("gpp", escaped_text(str(path)))
    task = display_task_path(f"GPO {escaped_text(path.name)}")
    facts, data, problem = _read(path, where)
    if data is None:
        return [_unparsed(task, "gpp", provenance, facts, problem)]
    try:
        definitions = parse_gpp_scheduled_tasks(data, path=provenance.location, provenance=provenance, local_tz=where.source.tz)
    except GppError as exc:
        where.ctx.gap(where.evidence, provenance.location, f"GPO ScheduledTasks.xml not parsed: {exc}")
        return [_unparsed(task, "gpp", provenance, facts, f"GPO ScheduledTasks.xml not parsed: {exc}")]
    for definition in definitions:
        definition.file = facts
        definition.host = where.source.host.hostname
        _report_partial(definition, where)
    return definitions


def _schedlgu(path: Any, where: Where) -> list[TaskEvent]:
    location = escaped_text(str(path))
    try:
        facts, data = read_small_file(path, MAX_DEFINITION_BYTES)
    except Exception as exc:
        where.ctx.gap(where.evidence, location, f"unreadable: {read_error(exc)}")
        return []
    if data is None:  # Windows keeps SchedLgU.txt at 32 KB by default
        where.ctx.gap(where.evidence, location, f"file too large for SchedLgU.txt ({facts.size} bytes, SHA-256 "
                                                 f"{facts.sha256}); hashed but not parsed")
        return []
    try:
        events = parse_schedlgu(data, provenance=where.provenance("schedlgu", location), local_tz=where.source.tz)
    except SchedLgUError as exc:
        where.ctx.gap(where.evidence, location, f"SchedLgU.txt not parsed: {exc}")
        return []
    for event in events:
        event.host = where.source.host.hostname
    return events


def _read(path: Any, where: Where) -> tuple[FileFacts, bytes | None, str | None]:
    location = escaped_text(str(path))
    try:
        facts, data = read_small_file(path, MAX_DEFINITION_BYTES)
    except UnreadableFile as exc:  # a link (possibly a loop), FIFO or device is listed, never read
        where.ctx.gap(where.evidence, location, str(exc))
        return file_facts(path), None, str(exc)
    except Exception as exc:
        problem = f"unreadable: {read_error(exc)}"
        where.ctx.gap(where.evidence, location, problem)
        return file_facts(path), None, problem
    if data is None:
        problem = f"file too large for a task definition ({facts.size} bytes); hashed but not parsed"
        where.ctx.gap(where.evidence, location, problem)
        return facts, None, problem
    return facts, data, None


def _unparsed(task: str, source: str, provenance: Provenance, facts: FileFacts, problem: str | None) -> TaskDefinition:
    """The file exists, so the task does too, even if its content could not be decoded."""
    return TaskDefinition(task=task, source=source, provenance=provenance, file=facts, errors=[problem or "unreadable"])


def _report_partial(definition: TaskDefinition, where: Where) -> None:
    if definition.errors:
        more = f" (+{len(definition.errors) - 1} more)" if len(definition.errors) > 1 else ""
        where.ctx.gap(where.evidence, definition.provenance.location,
                      f"partly decoded: {definition.errors[0]}{more}")


def _gpp_files(target: Any, windir: Any, where: Where) -> list[Any]:
    """GPO Preferences task files: the machine's GPO cache, history, and SYSVOL on a domain controller."""
    roots = [find_path(windir, "System32", "GroupPolicy", "DataStore"), find_path(windir, "SYSVOL"),
             find_path(_root(target), "ProgramData", "Microsoft")]
    found = []
    for root in roots:
        if root is None:
            continue
        for path in _walk(root, where, report=False):
            parent = path.parent
            if parent.name.lower() == "scheduledtasks" and parent.parent.name.lower() == "preferences":
                found.append(path)
    return found


def _root(target: Any) -> Any:
    return target.fs.path("sysvol")


def windows_dir(target: Any) -> Any:
    """%windir% with its real case; dissect's %windir% expansion needs registry hives, so fall back."""
    candidates = [["sysvol", "Windows"], ["sysvol", "WINNT"]]
    try:
        candidates.append(str(target.resolve("%windir%")).strip("/").split("/"))
    except Exception:
        pass
    for parts in candidates:
        if not parts or not parts[0]:
            continue
        found = find_path(target.fs.path(parts[0]), *parts[1:])
        if found is not None and _is_dir(found):
            return found
    return None


def find_path(base: Any, *names: str) -> Any:
    """Case-insensitive lookup that returns the path with the names as the filesystem spells them."""
    current = base
    for name in names:
        try:
            children = {child.name.lower(): child for child in current.iterdir()}
        except Exception:
            return None
        current = children.get(name.lower())
        if current is None:
            return None
    return current


def _is_dir(path: Any) -> bool:
    try:
        return path.is_dir()
    except Exception:
        return False


def _walk(folder: Any, where: Where, *, report: bool = True) -> Iterator[Any]:
    """Every file below a folder, names sorted, any name; unlistable folders become gaps."""
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except Exception as exc:
        if report:
            where.ctx.gap(where.evidence, escaped_text(str(folder)), f"folder not listable: {read_error(exc)}")
        return
    for child in children:
        try:  # a link is never followed (a junction or link could loop; its target is walked anyway)
            is_dir = not child.is_symlink() and child.is_dir()
        except Exception as exc:
            if report:
                where.ctx.gap(where.evidence, escaped_text(str(child)), f"entry not readable: {read_error(exc)}")
            continue
        if is_dir:
            yield from _walk(child, where, report=report)
        else:
            yield child
