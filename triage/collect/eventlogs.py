"""Event logs: find every .evtx in the evidence, stream its records, yield task events.

Where logs are looked for: ``Windows\\System32\\winevt\\Logs`` of a Windows target; in a
collection (a folder, zip or tar: KAPE / Velociraptor output, or logs copied anywhere) every
``*.evtx`` in it; and loose ``.evtx`` files given as evidence (``Source.evtx_files``).

When ``ctx.options["sigma_evaluator"]`` holds a :class:`triage.detect.sigma.SigmaEvaluator`, every
event read (task-related or not) is also fed to it, so Sigma rules see the whole log in the same
single pass; the caller collects its matches after the collectors ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from triage.collect import Context, Source
from triage.collect.filefacts import read_error
from triage.detect.sigma import EventRef
from triage.evidence import sha256_file
from triage.evtx_reader import EvtxReader
from triage.parsers.evtx_task import EvtxTaskError, task_event
from triage.records import TaskEvent

LOGS_DIR = "Windows/System32/winevt/Logs"
COLLECTION_KINDS = {"dir", "zip", "tar", "kape-dir"}


def collect(source: Source, ctx: Context) -> Iterator[TaskEvent]:
    files = list(_log_files(source, ctx))
    if files:
        ctx.progress(f"reading {len(files)} event log(s) from {source.name}")
    for location, opener in files:
        try:
            fh = opener()
        except Exception as exc:  # dissect filesystems raise their own error types
            ctx.gap(source.name, location, f"cannot open event log: {_describe(exc)}")
            continue
        try:
            yield from read_log(fh, location, source, ctx)
        finally:
            fh.close()


def read_log(fh: BinaryIO, location: str, source: Source, ctx: Context) -> Iterator[TaskEvent]:
    """Task events of one log; problems become one gap line each; records read before an error are kept."""
    evaluator = ctx.options.get("sigma_evaluator")
    # A folder of loose logs has no hash of its own: each row carries the SHA-256 of its own .evtx file.
    file_sha256 = source.ref.sha256
    if file_sha256 is None and Path(location) in source.evtx_files:
        file_sha256 = sha256_file(Path(location))
    ref = EventRef(location=location, evidence=source.ref.path, evidence_sha256=file_sha256, local_tz=source.tz)

    def problem(where: str, text: str) -> None:
        ctx.gap(source.name, f"{location} ({where})", text)

    reader = EvtxReader(fh, location, on_problem=problem)
    try:
        for record in reader:
            try:
                event = task_event(record.fields, location=location, evidence=ref.evidence,
                                   evidence_sha256=ref.evidence_sha256, local_tz=ref.local_tz)
            except EvtxTaskError as exc:
                problem(f"record at offset 0x{record.offset:x}", str(exc))
                continue
            if evaluator is not None:
                evaluator.add(record.fields, ref)
            if event is not None:
                yield event
    except Exception as exc:  # a damaged container fails the read with the library's own error types
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else read_error(exc)
        ctx.gap(source.name, location, f"read error after {reader.stats.records} record(s): {text}")


def _log_files(source: Source, ctx: Context) -> Iterator[tuple[str, Any]]:
    """(location, opener) for every log in the evidence, each file once, in path order."""
    for path in sorted(source.evtx_files, key=str):
        yield str(path), (lambda p=path: open(p, "rb"))
    target = source.target
    if target is None:
        return
    seen: dict[str, Any] = {}
    try:
        roots = sorted(target.fs.path("/").iterdir(), key=lambda p: (p.name.lower() == "sysvol", str(p)))
    except Exception as exc:
        ctx.gap(source.name, "/", f"cannot list the evidence's file systems: {_describe(exc)}")
        return
    for root in roots:
        folder = root.joinpath(*LOGS_DIR.split("/"))
        candidates = []
        try:
            if source.ref.kind in COLLECTION_KINDS:
                candidates = _evtx_below(root)
            elif folder.is_dir():
                candidates = [p for p in folder.iterdir() if p.name.lower().endswith(".evtx")]
        except Exception as exc:
            ctx.gap(source.name, str(folder), f"cannot list event logs: {_describe(exc)}")
            continue
        for path in candidates:
            # sysvol is the system drive again (c:): a file seen under a drive letter is not read twice.
            relative = str(path)[len(str(root)):].lower()
            key = relative if root.name.lower() in ("sysvol", "c:") else str(path).lower()
            if key in seen:
                continue
            seen[key] = path
    for key in sorted(seen):
        path = seen[key]
        yield str(path), (lambda p=path: p.open("rb"))


def _evtx_below(folder: Any) -> list[Any]:
    """Every ``*.evtx`` (any case) below a folder, symlinked folders not entered.

    Not ``rglob``: on a directory collection it re-resolves each entry from the root, listing its
    folder again, which is quadratic (10,000 task files took over two minutes).
    """
    found, pending = [], [folder]
    while pending:
        for child in pending.pop().iterdir():
            if child.is_dir() and not child.is_symlink():
                pending.append(child)
            elif child.name.lower().endswith(".evtx"):
                found.append(child)
    return found


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
