"""One run's footprint outside its case folder: a single temporary directory, and clean ends on signals.

Every temporary file of a run (the dirty-hive replay copies ``triage-regf-*``, volatility's cache
``triage-vol-cache-*``, anything a library makes through :mod:`tempfile`) goes under one directory
``$TMPDIR/triage-run-<pid>-*``: :func:`run_scope` points :data:`tempfile.tempdir` there and removes
it on every exit path. SIGINT and SIGTERM raise :class:`Interrupted` (a ``BaseException``, so no
``except Exception`` of a collector swallows it): the stack unwinds through every ``with`` block
(volatility's global settings are restored by its session's ``__exit__``, a case being built is
discarded), then the temporary directory and any unfinished case folder are removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from triage.export.casefolder import LIVE_TEMP, remove_own_tree

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal ended the run; ``exit_code`` is 128 + the signal number (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
        self.name = signal.Signals(signum).name


def _raise(signum, _frame) -> None:
    for sig in HANDLED:  # a second Ctrl-C must not interrupt the clean-up
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def run_scope(prefix: str = "triage-run", *, signals: bool = True) -> Iterator[Path]:
    """The run's temporary directory, with SIGINT/SIGTERM turned into :class:`Interrupted` meanwhile.

    ``signals=False`` where handlers cannot be installed (a Dask worker's task thread); child
    processes started meanwhile (a local Dask cluster) inherit ``TMPDIR`` pointing into the directory."""
    saved_handlers = {sig: signal.getsignal(sig) for sig in HANDLED} if signals else {}
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    run_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-"))
    tempfile.tempdir = os.environ["TMPDIR"] = str(run_dir)
    for sig in saved_handlers:
        signal.signal(sig, _raise)
    try:
        yield run_dir
    finally:
        for sig in saved_handlers:
            signal.signal(sig, signal.SIG_IGN)
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        if signals:
            for folder in list(LIVE_TEMP):  # an unfinished case folder (temporary sibling of -o)
                remove_own_tree(folder)
                LIVE_TEMP.discard(folder)
        remove_own_tree(run_dir)
        for sig, handler in saved_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
