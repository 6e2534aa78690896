"""The one table of sources, and the registries of parsers and collectors.

Every stage that treats sources differently reads this table instead of typing a source's name:
confidence (which independent kind of evidence a record is), the correlator (labels, where a task is
defined), the baseline (which sources define tasks), the timeline CSV (source code and display name)
and the fuzz targets (``tests/hostile/parser_targets.py``, every registered parser).

Adding a source is a parser (bytes in, records out, raising a :class:`~triage.parsers.ParseError`), a
collector (usually :func:`triage.collect.perfile.collect_files`), and one call to :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Evidence(StrEnum):
    """Independent kinds of evidence an examiner can cite; confidence counts how many agree."""

    TASK_FILE = "task file"
    TASKCACHE = "TaskCache"
    MEMORY = "memory"
    SECURITY_LOG = "Security log"


class SourceName(StrEnum):
    """The built-in sources (``TaskDefinition.source`` and ``Provenance.artifact`` values)."""

    TASK_XML = "task_xml"
    JOB = "job"
    GPP = "gpp"
    TASKCACHE = "taskcache"
    MEMORY_TASKCACHE = "memory_taskcache"
    EVTX_4698 = "evtx_4698"
    EVTX_4701 = "evtx_4701"
    EVTX_4702 = "evtx_4702"
    COMMAND_LINE = "command_line"
    MEMORY = "memory"
    EVTX = "evtx"
    SCHEDLGU = "schedlgu"
    SYSLOG = "syslog"
    CRONLOG = "cronlog"
    JOURNAL = "journal"
    CRON = "cron"
    ANACRON = "anacron"
    CRON_SCRIPT = "cron_script"
    AT = "at"
    SYSTEMD_TIMER = "systemd_timer"


@dataclass(frozen=True)
class SourceInfo:
    """One source: its name, what it counts as for confidence, how the CSV timeline and the findings name it."""

    name: str
    evidence: str | None = None  # Evidence kind its definitions count as (None: not independent evidence)
    csv_code: str | None = None  # timeline CSV "source" column (None: TASK, or FILE for file times)
    display: str | None = None  # timeline CSV "sourcetype" column (None: the name)
    label: str | None = None  # short label in timeline descriptions (None: the name)
    defines_task: bool = False  # its TaskDefinitions carry actions the baseline compares
    task_file: bool = False  # a task definition file on disk (task XML, .job, GPP)


@dataclass(frozen=True)
class ParserInfo:
    """A parser of evidence bytes: ``call(data)`` decodes as a collector would, raising only ``error``."""

    name: str
    source: str
    call: Callable[[bytes], object]
    error: type[Exception]
    examples: Callable[[], Iterable[bytes]] = field(default=lambda: ())  # seeds for the fuzzers


SOURCES: dict[str, SourceInfo] = {}
PARSERS: dict[str, ParserInfo] = {}
COLLECTORS: dict[str, Callable[..., Iterator[Any]]] = {}  # registered beyond run.COLLECTORS' built-ins
# Modules that add a source: each calls register() when imported; listing one here is the registration.
SOURCE_MODULES: list[str] = []


def add_source(info: SourceInfo) -> SourceInfo:
    SOURCES[info.name] = info
    return info


def register(info: SourceInfo, *, parser: ParserInfo | None = None,
             collector: Callable[..., Iterator[Any]] | None = None) -> SourceInfo:
    """Add a source, its parser and its collector in one call: confidence, correlation, the CSV timeline,
    the run and the fuzz targets all pick it up from here."""
    add_source(info)
    if parser is not None:
        PARSERS[parser.name] = parser
    if collector is not None:
        COLLECTORS[info.name] = collector
    return info


def unregister(name: str) -> None:
    """Remove a source with its parsers and collector (tests that add a toy source clean up with this)."""
    SOURCES.pop(name, None)
    COLLECTORS.pop(name, None)
    for parser in [p for p in PARSERS.values() if p.source == name]:
        PARSERS.pop(parser.name)


def info(name: str) -> SourceInfo | None:
    return SOURCES.get(name)


def evidence_kind(name: str) -> str | None:
    found = SOURCES.get(name)
    return found.evidence if found else None


def csv_code(name: str) -> str | None:
    found = SOURCES.get(name)
    return found.csv_code if found else None


def display_name(name: str) -> str:
    found = SOURCES.get(name)
    return found.display or name if found else name


def label(name: str) -> str:
    found = SOURCES.get(name)
    return found.label or name if found else name


def task_file_sources() -> frozenset[str]:
    return frozenset(n for n, s in SOURCES.items() if s.task_file)


def definition_sources() -> frozenset[str]:
    return frozenset(n for n, s in SOURCES.items() if s.defines_task)


class _DefiningSources:
    """``name in DEFINING_SOURCES``: read at each test, so a source registered later counts too."""

    def __contains__(self, name: object) -> bool:
        found = SOURCES.get(name) if isinstance(name, str) else None
        return bool(found and found.defines_task)


DEFINING_SOURCES = _DefiningSources()


def load_source_modules() -> None:
    """Import every module in :data:`SOURCE_MODULES` (each registers its source once, on first import)."""
    for module in SOURCE_MODULES:
        importlib.import_module(module)


def registered_collectors() -> list[tuple[str, Callable[..., Iterator[Any]]]]:
    load_source_modules()
    return sorted(COLLECTORS.items())


def registered_parsers() -> dict[str, ParserInfo]:
    load_source_modules()
    return dict(PARSERS)


S, E = SourceName, Evidence
for _info in (
    SourceInfo(name=S.TASK_XML, evidence=E.TASK_FILE, display="Task Scheduler XML file", label="task XML",
               defines_task=True, task_file=True),
    SourceInfo(name=S.JOB, evidence=E.TASK_FILE, display="Task Scheduler .job file", label=".job", defines_task=True,
               task_file=True),
    SourceInfo(name=S.GPP, evidence=E.TASK_FILE, display="Group Policy ScheduledTasks.xml",
               label="GPO ScheduledTasks.xml", defines_task=True, task_file=True),
    SourceInfo(name=S.TASKCACHE, evidence=E.TASKCACHE, csv_code="REG", display="TaskCache registry key",
               label="TaskCache", defines_task=True),
    SourceInfo(name=S.MEMORY_TASKCACHE, evidence=E.MEMORY, csv_code="MEM", display="TaskCache in memory",
               label="in-memory TaskCache", defines_task=True),
    SourceInfo(name=S.EVTX_4698, evidence=E.SECURITY_LOG, label="4698 TaskContent", defines_task=True),
    SourceInfo(name=S.EVTX_4701, evidence=E.SECURITY_LOG),
    SourceInfo(name=S.EVTX_4702, evidence=E.SECURITY_LOG, label="4702 TaskContentNew", defines_task=True),
    SourceInfo(name=S.COMMAND_LINE, defines_task=True),
    SourceInfo(name=S.MEMORY, csv_code="MEM", display="Memory image"),
    SourceInfo(name=S.EVTX, csv_code="EVT", display="Windows event log"),
    SourceInfo(name=S.SCHEDLGU, csv_code="LOG", display="SchedLgU.txt"),
    SourceInfo(name=S.SYSLOG, csv_code="LOG", display="syslog"),
    SourceInfo(name=S.CRONLOG, csv_code="LOG", display="cron log"),
    SourceInfo(name=S.JOURNAL, csv_code="LOG", display="systemd journal"),
    SourceInfo(name=S.CRON, csv_code="CRON", display="crontab"),
    SourceInfo(name=S.ANACRON, csv_code="CRON", display="anacrontab"),
    SourceInfo(name=S.CRON_SCRIPT, csv_code="CRON", display="cron script"),
    SourceInfo(name=S.AT, csv_code="CRON", display="at job"),
    SourceInfo(name=S.SYSTEMD_TIMER, csv_code="CRON", display="systemd timer"),
):
    add_source(_info)
del S, E, _info
