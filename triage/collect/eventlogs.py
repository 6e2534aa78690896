"""Event logs: find every .evtx in the evidence, stream its records, yield task events.

Where logs are looked for: ``Windows\\System32\\winevt\\Logs`` of a Windows target; in a
collection (a folder, zip or tar: KAPE / Velociraptor output, or logs copied anywhere) every
``*.evtx`` in it; and loose ``.evtx`` files given as evidence (``Source.evtx_files``).

When ``ctx.options["sigma_evaluator"]`` holds a :class:`triage.detect.sigma.SigmaEvaluator`, every
event read (task-related or not) is also fed to it, so Sigma rules see the whole log in the same
single pass; the caller collects its matches after the collectors ran.
"""

from __future__ import annotations

import stat
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from triage.collect import Context, Source, logpool
from triage.collect.filefacts import UnreadableFile, check_regular, read_error
from triage.collect.names import escaped_text
from triage.detect.sigma import EventRef
from triage.evidence import sha256_file
from triage.evtx_reader import EvtxReader
from triage.parsers.evtx_task import EvtxTaskError, NetworkLogons, task_event
from triage.records import TaskEvent

LOGS_DIR = "Windows/System32/winevt/Logs"
COLLECTION_KINDS = {"dir", "zip", "tar", "kape-dir"}


def collect(source: Source, ctx: Context) -> Iterator[TaskEvent]:
    files = list(_log_files(source, ctx))
    if files:
        ctx.progress(f"reading {len(files)} event log(s) from {source.name}")
    evaluator = ctx.options.get("sigma_evaluator")
    workers = _usable_workers(ctx.options.get("workers"), len(files))
    if workers > 1:
        results = logpool.read_in_pool(files, source, evaluator, workers, _read_one)
    else:
        local = evaluator.fresh() if evaluator is not None else None
        results = (_read_one(location, opener, source, local) for location, opener in files)
    for result in results:  # in log order, however the logs were shared out: the same output
        result.replay(ctx)
        if evaluator is not None and result.sigma is not None:
            evaluator.absorb(result.sigma)
        yield from result.events


def _usable_workers(asked: Any, logs: int) -> int:
    """Processes to read logs with: as asked (1 when not given), at most one per log; 1 inside a daemonic
    process (a Dask worker may not start children) or where processes cannot be forked."""
    workers = min(int(asked or 1), logs)
    if workers > 1 and not logpool.can_fork():
        return 1
    return workers


def _read_one(location: str, opener: Callable[[], BinaryIO], source: Source, local: Any) -> logpool.LogResult:
    """One log read into a :class:`logpool.LogResult`: its task events, the gaps, notes and stores it
    reported (replayed later, in log order), and what Sigma (``local``, an evaluator of this process
    drained per log) found on its events."""
    ctx = logpool.RecordingContext()
    if local is not None:
        ctx.options["sigma_evaluator"] = local
    events: list[TaskEvent] = []
    try:
        fh = opener()
    except UnreadableFile as exc:
        ctx.gap(source.name, location, f"event log not read: {exc}")
    except Exception as exc:  # dissect filesystems raise their own error types
        ctx.gap(source.name, location, f"cannot open event log: {_describe(exc)}")
    else:
        try:
            events = list(read_log(fh, location, source, ctx))
        finally:
            fh.close()
    return logpool.LogResult(events=events, calls=ctx.calls, sigma=local.drain() if local is not None else None)


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

    def note(where: str, text: str) -> None:
        ctx.note(source.name, f"{location} ({where})", text)

    reader = EvtxReader(fh, location, on_problem=problem, on_note=note)
    read_for: Counter[tuple[str, str]] = Counter()  # (channel, computer) -> records: the stores this log examined
    logons = NetworkLogons()  # a task registered in a network logon session was registered remotely
    try:
        for record in reader:
            logons.see(record.fields)
            read_for[(str(record.fields.get("Channel") or "unknown channel"), str(record.fields.get("Computer") or ""))] += 1
            try:
                event = task_event(record.fields, location=location, evidence=ref.evidence,
                                   evidence_sha256=ref.evidence_sha256, local_tz=ref.local_tz)
            except EvtxTaskError as exc:
                problem(f"record at offset 0x{record.offset:x}", str(exc))
                continue
            if evaluator is not None:
                evaluator.add(record.fields, ref)
            if event is not None:
                logons.annotate(event)
                yield event
    except Exception as exc:  # a damaged container fails the read with the library's own error types
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else read_error(exc)
        ctx.gap(source.name, location, f"read error after {reader.stats.records} record(s): {text}")
    for (channel, computer), count in sorted(read_for.items()):
        ctx.examined(source.name, "eventlog", location, host=computer or source.host.hostname, channel=channel, records=count)


def _log_files(source: Source, ctx: Context) -> Iterator[tuple[str, Any]]:
    """(location, opener) for every log in the evidence, each file once, in path order."""
    for path in sorted(source.evtx_files, key=str):
        yield escaped_text(str(path)), (lambda p=path: _open_regular_host_file(p))
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
            if not root.is_dir():
                continue  # a README or a dangling /vmlinuz at the top of a tree is not a drive
            if source.ref.kind in COLLECTION_KINDS:
                candidates = _evtx_below(root, lambda where, exc: ctx.gap(
                    source.name, escaped_text(str(where)), f"entry skipped while looking for event logs: {_describe(exc)}"))
            elif folder.is_dir():
                candidates = [p for p in folder.iterdir() if p.name.lower().endswith(".evtx")]
        except Exception as exc:
            ctx.gap(source.name, escaped_text(str(folder)), f"cannot list event logs: {_describe(exc)}")
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
        yield escaped_text(str(path)), (lambda p=path: _open_regular(p))


def _open_regular(path: Any) -> BinaryIO:
    """An event log of the evidence opened for reading; a FIFO, device or link is refused, not read."""
    check_regular(path)
    return path.open("rb")


def _open_regular_host_file(path: Path) -> BinaryIO:
    """A loose .evtx given as evidence: the examiner's link is followed, but only to a regular file."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise UnreadableFile("not a regular file; not read")
    return open(path, "rb")


def _evtx_below(folder: Any, skipped: Callable[[Any, BaseException], None]) -> list[Any]:
    """Every ``*.evtx`` (any case) below a folder, symbolic links not entered. An entry that cannot
    be listed or examined (a link loop, a damaged folder) is skipped on its own, reported through
    ``skipped``: the rest of the folder, and every other root, is still searched.

    Not ``rglob``: on a directory collection it re-resolves each entry from the root, listing its
    folder again, which is quadratic (10,000 task files took over two minutes).
    """
    found, pending = [], [folder]
    while pending:
        current = pending.pop()
        try:
            children = list(current.iterdir())
        except Exception as exc:
            skipped(current, exc)
            continue
        for child in children:
            try:
                if not child.is_symlink() and child.is_dir():
                    pending.append(child)
                elif child.name.lower().endswith(".evtx"):  # a link is listed here and refused when opened
                    found.append(child)
            except Exception as exc:
                skipped(child, exc)
    return found


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
