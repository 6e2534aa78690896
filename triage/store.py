"""One run's task events and timeline rows on disk, so memory stays bounded however many events the logs hold.

Issue 17: 1 GB of TaskScheduler logs (618,560 task events) needed 7.2 GB of memory when every event, every
timeline row and every export was held at once. Events are written here in batches as the collectors yield
them; correlation loads one task's events at a time (:class:`StoredEvents`), writes that task's timeline rows
back, and the exports read the rows in their final order with one ordered query (:class:`StoredTimeline`).

Why stdlib ``sqlite3``: it ships with Python (no new dependency for a wheel), sorts and indexes on disk with a
bounded page cache (the timeline of a million rows is ordered without holding it), and one file in a private
temporary folder is easy to remove. Records are stored pickled: the file is written and read by this process
only, inside a folder it made (mode 0700), so no foreign pickle is ever loaded, and pickle round-trips every
record type exactly. The folder (mode 0700) is made beside the case folder being built (``-o``'s parent, the
disk meant for the case: a temporary directory may be small or held in memory), else under the run's temporary
directory; never inside evidence. It is removed when the store is closed or garbage-collected, and at exit
(SIGINT/SIGTERM end a run with an exception, ``triage.runscope``, so the exit is a normal one).

Rows are ordered by a byte string that sorts as the export's Python sort key does (:func:`sortable`), with the
order in which rows were produced breaking ties, as Python's stable sort did, so the outputs stay byte-identical.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from triage.records import TaskEvent, TimelineEvent

BATCH = 2000  # records written per executemany: few round trips, little held
CACHE_KIB = 16 * 1024  # SQLite page cache (its sorter spills to disk beyond it)
LINE_BLOCK = 1 << 20  # characters of a tasks.jsonl line stored per block
_INT_BIAS = 1 << 127

T = TypeVar("T")


def sortable(key: tuple) -> bytes:
    """Bytes whose order (memcmp, as SQLite compares BLOBs) is the order of ``key`` as a Python tuple.

    Strings are UTF-8 (code-point order) with 0x00 and 0x01 escaped and a 0x00 terminator, so a prefix sorts
    first; None is the empty string (the sort keys never compare None with a string: Python would fail);
    integers are fixed-width big-endian; a list is its items one after another (a shorter prefix first)."""
    out = bytearray()
    for value in key:
        _append(out, value)
    return bytes(out)


def _append(out: bytearray, value: Any) -> None:
    if value is None or isinstance(value, str):
        text = (value or "").encode("utf-8", "surrogatepass")
        out += text.replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01") + b"\x00"
    elif isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise TypeError(f"no sortable form for {type(value).__name__}")
    elif isinstance(value, int):
        out += (value + _INT_BIAS).to_bytes(16, "big")
    else:
        for item in value:
            _append(out, item)


class StoreError(Exception):
    """The work store cannot be written or read (its disk is full, a file-size limit is reached): the run cannot
    go on without losing records, so it stops with one line instead of a traceback or a silent gap."""


class _Connection:
    """The SQLite connection, with every SQLite failure turned into one :class:`StoreError` naming the folder
    and, where a probe write shows it, the system's reason (SQLite itself only says "disk I/O error")."""

    def __init__(self, path: Path) -> None:
        self.folder = path.parent
        self._db = self._guard(sqlite3.connect, path, isolation_level=None)

    def _guard(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except sqlite3.Error as exc:
            reason = _system_reason(self.folder)
            raise StoreError(f"cannot use the work store in {self.folder}: {exc}{reason}") from None

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Rows:
        return _Rows(self, self._guard(self._db.execute, sql, args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._guard(self._db.executemany, sql, rows)

    def close(self) -> None:
        self._db.close()


class _Rows:
    """A cursor whose reading is guarded too (an ORDER BY may spill to a temporary file)."""

    def __init__(self, connection: _Connection, cursor: sqlite3.Cursor) -> None:
        self._connection, self._cursor = connection, cursor

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def fetchone(self) -> Any:
        return self._connection._guard(self._cursor.fetchone)


def _system_reason(folder: Path) -> str:
    """Why a write into ``folder`` fails, as the system says it (File too large, No space left on device)."""
    probe = folder / "probe"
    try:
        with probe.open("wb") as handle:
            handle.write(bytes(1 << 20))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return f" ({exc.strerror or exc})"
    finally:
        probe.unlink(missing_ok=True)
    return ""


class CaseStore:
    """The run's events (grouped by task, host, evidence item and kind) and timeline rows, in one SQLite file.

    ``prepare`` is applied to every event read back: the fixes that need the whole run first (the host a
    loose log's events belong to, another computer's events flagged, a Sysmon folder event unlinked)."""

    def __init__(self, beside: str | None = None) -> None:
        """``beside``: the folder the case is built in (``-o``'s parent, when it exists): the store goes there,
        on the disk meant for the case, not in a temporary directory that may be small or in memory."""
        if beside and os.path.isdir(beside):
            self.folder = Path(tempfile.mkdtemp(prefix=f".triage-store-{os.getpid()}-", dir=beside))
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="triage-store-"))
        # Removed with the store, or at exit (SIGINT/SIGTERM end a run by an exception: the exit is normal).
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.folder, True)
        self._db = _Connection(self.folder / "case.sqlite")
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, grp INTEGER NOT NULL, event_id INTEGER, "
                         "blob BLOB NOT NULL)")
        self._db.execute("CREATE TABLE rows (seq INTEGER PRIMARY KEY, task TEXT NOT NULL, task_sort BLOB NOT NULL, "
                         "pos INTEGER NOT NULL, sort BLOB NOT NULL, utc TEXT, dated INTEGER NOT NULL, "
                         "blob BLOB NOT NULL)")
        # Indexed from the start: a task judged over its stored rows reads them back before every row is in.
        self._db.execute("CREATE INDEX rows_by_task ON rows (task, task_sort, pos)")
        self._db.execute("CREATE TABLE tasks (key TEXT NOT NULL, part INTEGER NOT NULL, text TEXT NOT NULL, "
                         "PRIMARY KEY (key, part))")
        self._groups: dict[tuple, int] = {}
        self._pending_events: list[tuple[int, int | None, bytes]] = []
        self._pending_rows: list[tuple[str, bytes, int, bytes, str | None, bool, bytes]] = []
        self._indexed = False
        self.prepare: Callable[[TaskEvent], None] = lambda event: None

    def close(self) -> None:
        self._db.close()
        self._finalizer()

    # --- events ---------------------------------------------------------------------------------------

    def add_event(self, event: TaskEvent) -> None:
        """Keep one collected event (written with the next batch)."""
        group = (event.task, event.host, event.provenance.evidence, event.channel, event.event_id == 11)
        number = self._groups.setdefault(group, len(self._groups))
        self._pending_events.append((number, event.event_id, pickle.dumps(event, pickle.HIGHEST_PROTOCOL)))
        if len(self._pending_events) >= BATCH:
            self._flush_events()

    def _flush_events(self) -> None:
        if self._pending_events:
            self._db.executemany("INSERT INTO events (grp, event_id, blob) VALUES (?, ?, ?)", self._pending_events)
            self._pending_events = []

    def event_tasks(self) -> set[str]:
        """Every task name the events give, as logged (before :attr:`prepare`)."""
        return {group[0] for group in self._groups if group[0]}

    def event_groups(self) -> dict[int, TaskEvent]:
        """Each group's first event (prepared): every event of a group has its task, host, evidence item, channel
        and Sysmon-11-ness, so it joins the same task. In the order the groups were first seen."""
        self._flush_events()
        self._index_events()
        found = {}
        for number in range(len(self._groups)):
            row = self._db.execute("SELECT blob FROM events WHERE grp = ? ORDER BY seq LIMIT 1", (number,)).fetchone()
            found[number] = self._event(row[0])
        return found

    def _index_events(self) -> None:
        if not self._indexed:
            self._db.execute("CREATE INDEX events_by_group ON events (grp, seq)")
            self._indexed = True

    def events(self, groups: Iterable[int] | None = None, event_id: int | None = None) -> Iterator[TaskEvent]:
        """Events (prepared) in the order they were collected: all, or those of some groups, or of one event id."""
        self._flush_events()
        where, args = self._where(grp=_listed(groups), event_id=event_id)
        for (blob,) in self._db.execute(f"SELECT blob FROM events {where} ORDER BY seq", args):
            yield self._event(blob)

    def event_count(self, groups: Iterable[int] | None = None) -> int:
        self._flush_events()
        where, args = self._where(grp=_listed(groups))
        return self._db.execute(f"SELECT count(*) FROM events {where}", args).fetchone()[0]

    @staticmethod
    def _where(**columns: Any) -> tuple[str, list]:
        """``WHERE`` for the columns given a value (None: any); a set or list of values is an ``IN``."""
        clauses, args = [], []
        for column, wanted in columns.items():
            if wanted is None:
                continue
            if isinstance(wanted, (set, list, tuple)):
                values = sorted(set(wanted))
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args += values
            else:
                clauses.append(f"{column} = ?")
                args.append(wanted)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args

    def _event(self, blob: bytes) -> TaskEvent:
        event = pickle.loads(blob)
        self.prepare(event)
        return event

    # --- timeline rows --------------------------------------------------------------------------------

    def add_rows(self, task: str, rows: Iterable[TimelineEvent], order: Callable[[TimelineEvent], tuple],
                 dated: Callable[[TimelineEvent], bool],
                 task_order: Callable[[TimelineEvent], tuple] | None = None) -> None:
        """Keep one task's timeline rows; ``order`` is the exports' sort key, ``dated`` tells the rows
        timeline.jsonl takes from those it leaves to the undated file. The task's own timeline is the order given,
        or with ``task_order`` the rows sorted by it here (on disk; ties in the order given)."""
        for pos, row in enumerate(rows):
            task_sort = sortable(task_order(row)) if task_order else b""
            self._pending_rows.append((task, task_sort, pos, sortable(order(row)), row.utc, dated(row),
                                       pickle.dumps(row, pickle.HIGHEST_PROTOCOL)))
            if len(self._pending_rows) >= BATCH:
                self._flush_rows()

    def _flush_rows(self) -> None:
        if self._pending_rows:
            self._db.executemany("INSERT INTO rows (task, task_sort, pos, sort, utc, dated, blob) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending_rows)
            self._pending_rows = []

    def finish_rows(self) -> None:
        """Every row is in: index them for the exports' order."""
        self._flush_rows()
        self._db.execute("CREATE INDEX rows_in_order ON rows (sort, seq)")

    def rows(self, tasks: Iterable[str] | None = None, *, dated: bool | None = None) -> Iterator[TimelineEvent]:
        """Timeline rows in the exports' order (ties in the order they were added): all, or some tasks' rows,
        or only the dated or the undated ones."""
        self._flush_rows()
        where, args = self._where(task=_listed(tasks), dated=dated)
        for (blob,) in self._db.execute(f"SELECT blob FROM rows {where} ORDER BY sort, seq", args):
            yield pickle.loads(blob)

    def row_times(self) -> Iterator[tuple[str, str | None]]:
        """(task, UTC time as written) of every row in the exports' order, without reading the rows themselves."""
        self._flush_rows()
        yield from self._db.execute("SELECT task, utc FROM rows ORDER BY sort, seq")

    def task_rows(self, task: str) -> Iterator[TimelineEvent]:
        """One task's rows in its own timeline's order."""
        self._flush_rows()
        for (blob,) in self._db.execute("SELECT blob FROM rows WHERE task = ? ORDER BY task_sort, pos", (task,)):
            yield pickle.loads(blob)

    def row_count(self, task: str | None = None) -> int:
        self._flush_rows()
        if task is None:
            return self._db.execute("SELECT count(*) FROM rows").fetchone()[0]
        return self._db.execute("SELECT count(*) FROM rows WHERE task = ?", (task,)).fetchone()[0]

    def undated_rows(self) -> int:
        self._flush_rows()
        return self._db.execute("SELECT count(*) FROM rows WHERE dated = 0").fetchone()[0]

    # --- tasks.jsonl lines -----------------------------------------------------------------------------

    def add_task_line(self, key: str, parts: Iterable[str]) -> None:
        """A task's ``tasks.jsonl`` line, given in pieces while the task was whole in memory (kept in blocks of
        about :data:`LINE_BLOCK` characters, never as one string)."""
        block: list[str] = []
        held = number = 0
        for part in parts:
            block.append(part)
            held += len(part)
            if held >= LINE_BLOCK:
                self._db.execute("INSERT INTO tasks VALUES (?, ?, ?)", (key, number, "".join(block)))
                block, held, number = [], 0, number + 1
        if block:
            self._db.execute("INSERT INTO tasks VALUES (?, ?, ?)", (key, number, "".join(block)))

    def task_lines(self) -> Iterator[str]:
        """Every task's line in blocks, ordered by task key."""
        for (text,) in self._db.execute("SELECT text FROM tasks ORDER BY key, part"):
            yield text


def _listed(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


class _Stored(Sequence[T]):
    """A list read from the store each time it is used (never held): iteration, ``len``, indexing, ``==``."""

    def _load(self) -> Iterator[T]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[T]:
        return self._load()

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return list(self._load())[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)}>"


class StoredEvents(_Stored[TaskEvent]):
    """Events of some groups (one task's), or every event, as collected."""

    def __init__(self, store: CaseStore, groups: Sequence[int] | None = None):
        self.store, self.groups = store, groups

    def _load(self) -> Iterator[TaskEvent]:
        return self.store.events(self.groups)

    def __len__(self) -> int:
        return self.store.event_count(self.groups)


class StoredTaskTimeline(_Stored[TimelineEvent]):
    """One task's timeline rows in its own order."""

    def __init__(self, store: CaseStore, task: str):
        self.store, self.task = store, task

    def _load(self) -> Iterator[TimelineEvent]:
        return self.store.task_rows(self.task)

    def __len__(self) -> int:
        return self.store.row_count(self.task)


class StoredTimeline(_Stored[TimelineEvent]):
    """The case timeline in the exports' order."""

    def __init__(self, store: CaseStore):
        self.store = store

    def _load(self) -> Iterator[TimelineEvent]:
        return self.store.rows()

    def __len__(self) -> int:
        return self.store.row_count()
