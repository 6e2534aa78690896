"""Run-wide state every stage reports to (gaps, notes, stores examined, progress), the typed run
options, and the evidence item as opened (:class:`Source`). Its own module, below collect/, export/
and detect/, so none of them imports another through it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypedDict

from triage.names import escape_controls, escaped_text
from triage.records import EvidenceRef, Gap, HostInfo, StoreRead


class RunOptions(TypedDict, total=False):
    """What the command line hands the stages (``triage`` and ``triage hunt`` alike)."""

    symbols: str | None  # volatility symbol folder or ISF file
    sigma: list[Any] | None  # extra Sigma rule files / folders (--sigma)
    iocs: Any  # triage.intel.IocSet from --ioc files, or None
    sigma_evaluator: Any  # triage.detect.sigma.SigmaEvaluator the event-log collector feeds (set by run)
    workers: int  # processes reading event logs (--workers; 1 = in-process)
    work_dir: str | None  # where the case is built (-o's parent): the run's event store goes beside it


@dataclass
class Context:
    """Run-wide state collectors report to: gaps, progress, options."""

    quiet: bool = False
    gaps: list[Gap] = field(default_factory=list)
    notes: list[Gap] = field(default_factory=list)  # read fine, worth telling (EVTX slack): no warning, no exit 1
    options: RunOptions = field(default_factory=lambda: RunOptions())
    stores: list[StoreRead] = field(default_factory=list)  # what was examined, per evidence item and host

    def note(self, evidence: str, location: str, text: str) -> None:
        """Record something the examiner should know that is not a failure to read (kept in the manifest)."""
        self.notes.append(Gap(evidence=evidence, location=location, problem=" ".join(str(text).split())))

    def gap(self, evidence: str, location: str, problem: str) -> Gap:
        """Record something that could not be read and print it as one clear line.

        The record keeps the location exactly (a file name may hold a newline or a bidi override);
        the printed line shows such characters escaped, so one gap is always one terminal line.
        """
        problem = escaped_text(" ".join(str(problem).split()) or "unreadable")
        gap = Gap(evidence=escaped_text(evidence), location=escaped_text(location), problem=problem)
        self.gaps.append(gap)
        shown = Gap(evidence=escape_controls(gap.evidence), location=escape_controls(gap.location),
                    problem=escape_controls(problem))
        print(f"triage: warning: {shown.line()}", file=sys.stderr)
        return gap

    def examined(self, evidence: str, store: str, location: str, **facts: Any) -> None:
        """Record that a store was read (see :class:`triage.records.StoreRead`); absence checks rely on it."""
        self.stores.append(StoreRead(evidence=evidence, store=store, location=location, **facts))

    def progress(self, message: str) -> None:
        if not self.quiet:  # progress names evidence files: escaped like every line triage prints
            print(f"triage: {escape_controls(message)}", file=sys.stderr)



@dataclass
class Source:
    """One evidence item as opened: a dissect Target, loose EVTX files, or a memory image."""

    ref: EvidenceRef
    target: Any = None  # dissect.target.Target, when the item is a disk image or a collection
    evtx_files: list[Path] = field(default_factory=list)  # loose .evtx given as evidence
    memory: Path | None = None
    host: HostInfo = field(default_factory=HostInfo)
    tz: tzinfo | None = None  # the machine's time zone (from its registry / /etc/localtime)
    os_family: str | None = None  # "windows", "linux", ...
    # SHA-256 and CRC32 of each whole task file the task-file collector read, by path: the TaskCache collector
    # compares its registry hashes with them instead of reading every task file a second time
    task_file_digests: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.path


__all__ = ["Context", "RunOptions", "Source"]
