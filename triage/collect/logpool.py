"""Event logs read by a pool of worker processes (``triage --workers N``), output as if read one by one.

Each log is one job: a worker decodes it, turns its records into task events and runs Sigma on them,
and hands back a :class:`LogResult`: the events, every ``ctx.gap`` / ``ctx.note`` / ``ctx.examined``
call it made (recorded, not printed) and its Sigma part. The parent takes the results strictly in log
order and replays them, so the case folder, the warnings and their order are the same for any number
of workers. A log inside an image or collection is first copied by the parent (which holds the opened
evidence) into the run's temporary directory, and the worker reads the copy; a loose ``.evtx`` is read
where it lies.

Workers are forked, so they start with the opened evidence and the converted Sigma rules already in
memory. They ignore SIGINT (Ctrl-C reaches the whole process group; the parent alone handles it) and
die on SIGTERM: when the parent is interrupted it terminates them before the run's temporary directory
is removed. A worker that dies (out of memory, a crash in a decoder) costs the logs it held a gap each,
after one retry of each log alone, never the rest of the run and never a traceback.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from triage.collect import Context, Source
from triage.collect.filefacts import read_error
from triage.evidence import HASHED
from triage.records import TaskEvent

Opener = Callable[[], BinaryIO]
ReadOne = Callable[[str, Opener, Source, Any], "LogResult"]
COPY_CHUNK = 1 << 20
IN_FLIGHT_PER_WORKER = 2  # logs queued per worker: enough to keep it busy, few results waiting in memory


@dataclass
class LogResult:
    """One log's outcome, ready to be replayed into the run's context in log order."""

    events: list[TaskEvent] = field(default_factory=list)
    calls: list[tuple[str, tuple, dict]] = field(default_factory=list)  # (method, args, kwargs) on the Context
    sigma: Any = None  # triage.detect.sigma.SigmaPart
    hashed: dict = field(default_factory=dict)  # files hashed while reading (triage.evidence.HASHED entries)

    def replay(self, ctx: Context) -> None:
        for method, args, kwargs in self.calls:
            getattr(ctx, method)(*args, **kwargs)
        HASHED.update(self.hashed)


class RecordingContext(Context):
    """A Context that records gaps, notes and stores read instead of printing them (replayed later)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.calls: list[tuple[str, tuple, dict]] = []

    def gap(self, evidence: str, location: str, problem: str) -> None:  # type: ignore[override]
        self.calls.append(("gap", (evidence, location, problem), {}))

    def note(self, evidence: str, location: str, text: str) -> None:
        self.calls.append(("note", (evidence, location, text), {}))

    def examined(self, evidence: str, store: str, location: str, **facts: Any) -> None:
        self.calls.append(("examined", (evidence, store, location), facts))


def can_fork() -> bool:
    """Whether this process may start a forked pool (a daemonic process, e.g. a Dask worker, may not)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


# Set in the parent just before the pool forks; the workers inherit them (nothing is pickled).
_SHARED: dict[str, Any] = {}


def _worker_start() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    evaluator = _SHARED.get("evaluator")
    _SHARED["local"] = evaluator.fresh() if evaluator is not None else None


def _work(location: str, copy: str | None) -> LogResult:
    opener: Opener = (lambda: open(copy, "rb")) if copy else _SHARED["openers"][location]
    before = set(HASHED)
    try:
        result = _SHARED["read_one"](location, opener, _SHARED["source"], _SHARED["local"])
        result.hashed = {identity: HASHED[identity] for identity in HASHED.keys() - before}
        return result
    finally:
        if copy:
            os.unlink(copy)


def read_in_pool(files: list[tuple[str, Opener]], source: Source, evaluator: Any, workers: int,
                 read_one: ReadOne) -> Iterator[LogResult]:
    """Results of ``read_one`` on every (location, opener), in the order given, read by ``workers`` processes."""
    _SHARED.update(source=source, evaluator=evaluator, read_one=read_one, openers=dict(files), local=None)
    loose = {str(path) for path in source.evtx_files}
    pool = _new_pool(workers)
    pending: deque[tuple[str, Opener, Future | LogResult | None]] = deque()
    queue = iter(files)
    finished = False
    try:
        while True:
            while len(pending) < workers * IN_FLIGHT_PER_WORKER and (item := next(queue, None)) is not None:
                location, opener = item
                pending.append((location, opener, _submit(pool, location, opener, source, loose)))
            if not pending:
                finished = True
                return
            location, opener, job = pending.popleft()
            result = _outcome(job)
            if result is None:  # the pool broke (a worker died): this log and every queued one are read alone
                _stop(pool)
                yield _alone(location, opener, source, loose)
                retry, pending = list(pending), deque()
                for again_location, again_opener, again in retry:
                    done = _outcome(again, finished_only=True)
                    yield done if isinstance(done, LogResult) else _alone(again_location, again_opener, source, loose)
                pool = _new_pool(workers)
                continue
            if isinstance(result, Exception):  # a result that could not come back (e.g. not picklable)
                result = _in_parent(location, opener, source)
            yield result
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop(pool)
        _SHARED.clear()


def _outcome(job: Future | LogResult | None, finished_only: bool = False) -> LogResult | Exception | None:
    """A queued log's result; None when the pool broke before it was done (or it was never queued), the
    exception when its result could not come back. ``finished_only``: do not wait for it."""
    if job is None or isinstance(job, LogResult):
        return job
    if finished_only and not job.done():
        return None
    try:
        return job.result()
    except BrokenProcessPool:
        return None
    except Exception as exc:
        return None if finished_only else exc


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start)


def _submit(pool: ProcessPoolExecutor, location: str, opener: Opener, source: Source,
            loose: set[str]) -> Future | LogResult | None:
    """Queue one log. A log inside the evidence is copied out first; one that cannot be opened or copied
    whole is read here, in this process, so its gaps and the records before a read error are exactly
    those one process reports."""
    copy = None
    if location not in loose:
        try:
            copy = _copy_out(opener)
        except Exception:
            return _in_parent(location, opener, source)
    try:
        return pool.submit(_work, location, copy)
    except BrokenProcessPool:  # a worker died meanwhile: the log is read alone (see read_in_pool)
        if copy:
            os.unlink(copy)
        return None


def _in_parent(location: str, opener: Opener, source: Source) -> LogResult:
    """One log read by this process, exactly as with one worker."""
    if "parent_local" not in _SHARED:
        evaluator = _SHARED.get("evaluator")
        _SHARED["parent_local"] = evaluator.fresh() if evaluator is not None else None
    return _SHARED["read_one"](location, opener, source, _SHARED["parent_local"])


def _copy_out(opener: Opener) -> str:
    handle, copy = tempfile.mkstemp(prefix="triage-evtx-", suffix=".evtx")
    try:
        with opener() as src, os.fdopen(handle, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
    except BaseException:
        os.unlink(copy)
        raise
    return copy


def _alone(location: str, opener: Opener, source: Source, loose: set[str]) -> LogResult:
    """A log whose worker died, read again in a pool of its own: if it kills that one too, it is a gap."""
    pool = _new_pool(1)
    try:
        job = _submit(pool, location, opener, source, loose)
        if job is None:
            raise BrokenProcessPool("the worker process reading it died")
        return job if isinstance(job, LogResult) else job.result()
    except Exception as exc:
        reason = "the worker process reading it died" if isinstance(exc, BrokenProcessPool) else read_error(exc)
        return _failed(location, source, f"event log not read: {reason}")
    finally:
        _stop(pool)


def _failed(location: str, source: Source, problem: str) -> LogResult:
    return LogResult(calls=[("gap", (source.name, location, problem), {})])


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: on an interrupt or an error its workers must not outlive the run."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()
