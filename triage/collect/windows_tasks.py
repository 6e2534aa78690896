"""Windows task definitions on disk: task XML files, legacy ``.job`` files, GPO Preferences
``ScheduledTasks.xml`` and ``SchedLgU.txt``, each with the facts of the file that holds it.

Every file in the task folders is read whatever its name (dissect skips names with a dot, so a task
called ``Update.Service`` is invisible to it). A file that does not parse still yields a
TaskDefinition carrying its file facts and ``errors``, plus one gap line: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from triage.collect import Context, Source
from triage.collect.filefacts import file_facts, read_error, read_small_file
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
            task = display_task_path(str(path)[len(str(folder)):])
            definitions.append(_task_xml(path, task, "\\".join(parts), where))

    legacy = find_path(windir, "Tasks")
    schedlgu_files = [p for p in (find_path(_root(target), "SchedLgU.txt"), find_path(windir, "SchedLgU.txt")) if p]
    if legacy is not None:
        ctx.examined(where.evidence, "task_files", str(legacy), host=source.host.hostname)
        for path in _walk(legacy, where):
            name = path.name.lower()
            if name.endswith(".job"):
                definitions.append(_job(path, where))
            elif name == SCHEDLGU_NAME:
                schedlgu_files.append(path)
            elif name not in LEGACY_FOLDER_NON_TASKS:
                where.ctx.gap(where.evidence, str(path), "file in the legacy Tasks folder is not a .job file "
                              "(Task Scheduler 1.0 ignores it); not parsed")
    for path in {str(p).lower(): p for p in schedlgu_files}.values():
        events.extend(_schedlgu(path, where))

    for path in _gpp_files(target, windir, where):
        definitions.extend(_gpp(path, where))

    definitions.sort(key=lambda d: (normalise_task_path(d.task), d.provenance.location, d.provenance.value_name or ""))
    events.sort(key=lambda e: (e.provenance.location, e.provenance.offset or 0))
    yield from definitions
    yield from events


def _task_xml(path: Any, task: str, folder: str, where: Where) -> TaskDefinition:
    provenance = where.provenance("task_xml", str(path))
    facts, data, problem = _read(path, where)
    if data is None:
        return _unparsed(task, "task_xml", provenance, facts, problem)
    try:
        definition = parse_task_xml(data, task=task, provenance=provenance, local_tz=where.source.tz)
    except TaskXmlError as exc:
        where.ctx.gap(where.evidence, str(path), f"task XML not parsed: {exc}")
        return _unparsed(task, "task_xml", provenance, facts, f"task XML not parsed: {exc}")
    definition.file = facts
    definition.host = where.source.host.hostname
    definition.details["task_folder"] = folder
    _report_partial(definition, where)
    return definition


def _job(path: Any, where: Where) -> TaskDefinition:
    provenance = where.provenance("job", str(path))
    # Task Scheduler 1.0 names a task after its file without ".job": same path as its 2.0 twin.
    task = display_task_path(path.name[:-4])
    facts, data, problem = _read(path, where)
    if data is None:
        return _unparsed(task, "job", provenance, facts, problem)
    try:
        definition = parse_job(data, task=task, provenance=provenance, local_tz=where.source.tz)
    except JobError as exc:
        where.ctx.gap(where.evidence, str(path), f".job not parsed: {exc}")
        return _unparsed(task, "job", provenance, facts, f".job not parsed: {exc}")
    definition.file = facts
    definition.host = where.source.host.hostname
    _report_partial(definition, where)
    return definition


def _gpp(path: Any, where: Where) -> list[TaskDefinition]:
    provenance = where.provenance("gpp", str(path))
    task = display_task_path(f"GPO {path.name}")
    facts, data, problem = _read(path, where)
    if data is None:
        return [_unparsed(task, "gpp", provenance, facts, problem)]
    try:
        definitions = parse_gpp_scheduled_tasks(data, path=str(path), provenance=provenance, local_tz=where.source.tz)
    except GppError as exc:
        where.ctx.gap(where.evidence, str(path), f"GPO ScheduledTasks.xml not parsed: {exc}")
        return [_unparsed(task, "gpp", provenance, facts, f"GPO ScheduledTasks.xml not parsed: {exc}")]
    for definition in definitions:
        definition.file = facts
        definition.host = where.source.host.hostname
        _report_partial(definition, where)
    return definitions


def _schedlgu(path: Any, where: Where) -> list[TaskEvent]:
    try:
        facts, data = read_small_file(path, MAX_DEFINITION_BYTES)
    except Exception as exc:
        where.ctx.gap(where.evidence, str(path), f"unreadable: {type(exc).__name__}: {exc}")
        return []
    if data is None:  # Windows keeps SchedLgU.txt at 32 KB by default
        where.ctx.gap(where.evidence, str(path), f"file too large for SchedLgU.txt ({facts.size} bytes, SHA-256 "
                                                 f"{facts.sha256}); hashed but not parsed")
        return []
    try:
        events = parse_schedlgu(data, provenance=where.provenance("schedlgu", str(path)), local_tz=where.source.tz)
    except SchedLgUError as exc:
        where.ctx.gap(where.evidence, str(path), f"SchedLgU.txt not parsed: {exc}")
        return []
    for event in events:
        event.host = where.source.host.hostname
    return events


def _read(path: Any, where: Where) -> tuple[FileFacts, bytes | None, str | None]:
    try:
        facts, data = read_small_file(path, MAX_DEFINITION_BYTES)
    except Exception as exc:
        problem = f"unreadable: {read_error(exc)}"
        if _is_symlink(path):  # a link to a folder (possibly a loop) is listed, never followed
            problem = f"symbolic link to {_link_target(path)!r} not followed: {read_error(exc)}"
        where.ctx.gap(where.evidence, str(path), problem)
        return file_facts(path), None, problem
    if data is None:
        problem = f"file too large for a task definition ({facts.size} bytes); hashed but not parsed"
        where.ctx.gap(where.evidence, str(path), problem)
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


def _is_symlink(path: Any) -> bool:
    try:
        return path.is_symlink()
    except Exception:
        return False


def _link_target(path: Any) -> str:
    try:
        return str(path.readlink())
    except Exception:
        return "?"


def _walk(folder: Any, where: Where, *, report: bool = True) -> Iterator[Any]:
    """Every file below a folder, names sorted, any name; unlistable folders become gaps."""
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except Exception as exc:
        if report:
            where.ctx.gap(where.evidence, str(folder), f"folder not listable: {type(exc).__name__}: {exc}")
        return
    for child in children:
        try:
            is_dir = child.is_dir() and not child.is_symlink()  # a junction could loop; its target is walked anyway
        except Exception as exc:
            if report:
                where.ctx.gap(where.evidence, str(child), f"entry not readable: {type(exc).__name__}: {exc}")
            continue
        if is_dir:
            yield from _walk(child, where, report=report)
        else:
            yield child
