"""The one per-file collector loop a new source builds on: find, read capped, parse, gap, examined.

A source whose artifact is one file per record set needs no more than::

    def collect(source, ctx):
        yield from collect_files(source, ctx, store="wmi", folder=("Windows", "System32", "wbem"),
                                 pattern="*.toy", parse=parse_toy)

``parse(data, provenance)`` is a pure parser returning records and raising its
:class:`~triage.parsers.ParseError` on bad bytes. Every file read is recorded as examined; a file that
cannot be read or parsed is a gap naming the file and the problem, and the other files are still read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from triage.collect import Context, Source
from triage.collect.filefacts import read_error, read_file
from triage.collect.windows_tasks import find_path
from triage.parsers import ParseError
from triage.records import Provenance

MAX_FILE_BYTES = 16 * 1024 * 1024  # a definition file is kilobytes; more is read as a gap, not into memory


def evidence_folder(source: Source, *parts: str) -> Any:
    """The folder ``parts`` below the system volume (Windows, ``sysvol``) or the root, matched
    case-insensitively; None when absent."""
    target = source.target
    if target is None:
        return None
    for root in ("sysvol", "/"):
        try:
            folder = find_path(target.fs.path(root), *parts)
            if folder is not None and folder.is_dir():
                return folder
        except Exception:
            continue
    return None


def collect_files(source: Source, ctx: Context, *, store: str, folder: Iterable[str], pattern: str,
                  parse: Callable[[bytes, Provenance], list[Any]], max_bytes: int = MAX_FILE_BYTES) -> Iterator[Any]:
    """Records of every file matching ``pattern`` in ``folder`` (sorted by name), parsed by ``parse``."""
    where = evidence_folder(source, *folder)
    if where is None:
        return
    try:
        files = sorted((p for p in where.glob(pattern)), key=lambda p: p.name)
    except Exception as exc:
        ctx.gap(source.name, str(where), f"folder not listable: {read_error(exc)}")
        return
    ctx.examined(source.name, store, str(where), host=source.host.hostname, files=[str(p) for p in files])
    for path in files:
        try:
            facts, data = read_file(path, max_bytes)
        except Exception as exc:
            ctx.gap(source.name, str(path), f"not readable: {read_error(exc)}")
            continue
        provenance = Provenance(artifact=store, location=str(path), evidence=source.name,
                                evidence_sha256=source.ref.sha256)
        try:
            records = parse(data, provenance)
        except ParseError as exc:
            ctx.gap(source.name, str(path), f"not parsed: {exc}")
            continue
        for record in records:
            if getattr(record, "file", "absent") is None:
                record.file = facts
            yield record


__all__ = ["collect_files", "evidence_folder"]
