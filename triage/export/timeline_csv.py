"""``timeline.csv`` in plaso's l2tcsv layout, so examiners' existing spreadsheets and filters work.

Column mapping (plaso's own values in brackets where they differ):

- ``date`` ``time`` ``timezone``: the UTC time as MM/DD/YYYY, HH:MM:SS and ``UTC``. A row without a
  UTC time keeps its local time as written: date and time from it when it reads as a date, and
  ``timezone`` ``local (zone unknown)``.
- ``MACB``: ``M...`` modified, ``.A..`` accessed, ``..C.`` entry changed, ``...B`` created/born, ``....``
  for other meanings (a run, a log entry, a registration date). As plaso does, the times of one file
  that fall on the same instant are one row with their letters combined (``MACB``, ``M.C.``); the
  ``$STANDARD_INFORMATION`` and ``$FILE_NAME`` sets stay separate rows, and ``timeline.jsonl`` keeps
  one line per time for Timesketch.
- ``source``: short kind (``FILE`` file-system times, ``TASK`` task definitions, ``REG`` TaskCache,
  ``EVT`` event logs, ``LOG`` text logs, ``MEM`` memory, ``CRON`` Unix jobs); ``sourcetype`` the artifact.
- ``type``: what the timestamp means (Timesketch's ``timestamp_desc``).
- ``user``, ``host``: from the record, ``-`` when unknown.
- ``short``: task and what happened; ``desc``: the same plus command line, user and process id.
- ``version``: ``2``. ``filename``: the artifact path, registry key or log name. ``inode``: the byte
  offset or record number inside it, ``-`` when none.
- ``notes``: time basis, precision and the value as written. ``format``: ``triage:<artifact>``.
- ``extra``: ``key: value`` pairs separated by ``; ``: evidence item, its SHA-256, value name, raw value
  and the record's detail fields.

Unlike plaso (which replaces commas with spaces) cells are quoted as RFC 4180 says, so nothing is
lost. Every cell goes through :func:`triage.export.safe.csv_cell` (formula neutralising, controls).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from triage import sources
from triage.export.jsonl import parse_utc
from triage.export.safe import csv_cell
from triage.records import TimelineEvent
from triage.timeorder import utc_key

L2TCSV_COLUMNS = ["date", "time", "timezone", "MACB", "source", "sourcetype", "type", "user", "host", "short",
                  "desc", "version", "filename", "inode", "notes", "format", "extra"]

_MACB = {
    "modified": "M...", "si_modified": "M...", "fn_modified": "M...",
    "accessed": ".A..", "si_accessed": ".A..", "fn_accessed": ".A..",
    "changed": "..C.", "si_mft_modified": "..C.", "fn_mft_modified": "..C.", "mft_modified": "..C.",
    "created": "...B", "born": "...B", "si_created": "...B", "fn_created": "...B",
}

_FILE_TIME_MEANINGS = frozenset(_MACB)


def _source_short(row: TimelineEvent) -> str:
    if row.meaning in _FILE_TIME_MEANINGS and row.provenance.artifact in sources.task_file_sources():
        return "FILE"
    return sources.csv_code(row.provenance.artifact) or sources.csv_code(row.source) or "TASK"


def _date_time(row: TimelineEvent) -> tuple[str, str, str]:
    when = parse_utc(row.utc)
    if when is not None:
        return when.strftime("%m/%d/%Y"), when.strftime("%H:%M:%S"), "UTC"
    written = row.as_written or ""
    # Local wall-clock values as written (xs:dateTime, "YYYY-MM-DD HH:MM:SS"): split, never shifted.
    if len(written) >= 19 and written[4] == "-" and written[7] == "-" and written[10] in "T ":
        date, clock = written[:10], written[11:19]
        if (date[:4] + date[5:7] + date[8:10]).isdigit():
            return f"{date[5:7]}/{date[8:10]}/{date[:4]}", clock, "local (zone unknown)"
    return "-", "-", "local (zone unknown)" if row.basis == "local-unconverted" else "unknown"


def _extra(row: TimelineEvent) -> str:
    prov = row.provenance
    pairs = [("evidence", prov.evidence), ("evidence_sha256", prov.evidence_sha256), ("value_name", prov.value_name),
             ("raw", prov.raw), ("utc", row.utc)]
    pairs += [(key, row.details[key]) for key in sorted(row.details)]
    return "; ".join(f"{k}: {v}" for k, v in pairs if v not in (None, ""))


def l2tcsv_row(row: TimelineEvent, task_display: str) -> list[str]:
    date, clock, zone = _date_time(row)
    details = row.details
    short = f"{task_display}: {row.what}" if task_display else row.what
    desc_parts = [short]
    if details.get("command_line"):
        desc_parts.append(f"command line: {details['command_line']}")
    if details.get("user"):
        desc_parts.append(f"user: {details['user']}")
    if details.get("process_id") is not None:
        desc_parts.append(f"pid: {details['process_id']}")
    notes = f"basis: {row.basis}; precision: {row.precision}"
    if row.as_written:
        notes += f"; as written: {row.as_written}"
    return [
        date, clock, zone,
        _MACB.get(row.meaning, "...."),
        _source_short(row),
        sources.display_name(row.provenance.artifact),
        row.what,
        str(details.get("user") or "-"),
        row.host or "-",
        short,
        "; ".join(desc_parts),
        "2",
        row.provenance.location or "-",
        "-" if row.provenance.offset is None else str(row.provenance.offset),
        notes,
        f"triage:{row.provenance.artifact}",
        _extra(row),
    ]


def _attribute(meaning: str) -> str:
    """Which time set a file time belongs to: ``$STANDARD_INFORMATION``, ``$FILE_NAME`` or the inode's."""
    return meaning[:3] if meaning.startswith(("si_", "fn_")) else ""


def _macb_group(row: TimelineEvent) -> tuple | None:
    """Rows that are the same file's times of one attribute at one instant share this key (None: never merged)."""
    if row.meaning not in _FILE_TIME_MEANINGS or not row.utc:
        return None
    prov = row.provenance
    return (row.utc, row.task, row.host, prov.artifact, prov.location, prov.evidence, prov.evidence_sha256, prov.raw,
            _attribute(row.meaning), row.basis, row.precision)


def merge_macb(cells: list[list[str]]) -> list[str]:
    """One l2tcsv row for several times of one file at one instant, as plaso prints them: the MACB
    letters combined (``MACB``), and type, short and desc naming every time in MACB order."""
    cells = sorted(cells, key=lambda c: "MACB".index(c[3].strip(".")[0]))
    merged = list(cells[0])
    letters = "".join(next((c[3][i] for c in cells if c[3][i] != "."), ".") for i in range(4))
    merged[3] = letters
    whats = [c[6] for c in cells]
    merged[6] = "; ".join(whats)
    prefix = cells[0][9][: -len(cells[0][6])] if cells[0][9].endswith(cells[0][6]) else ""
    merged[9] = prefix + merged[6]
    merged[10] = merged[9] + cells[0][10][len(cells[0][9]):]
    written = []
    for c in cells:
        note = c[14].split("; as written: ", 1)
        if len(note) == 2 and note[1] not in written:
            written.append(note[1])
    merged[14] = cells[0][14].split("; as written: ", 1)[0] + (f"; as written: {' / '.join(written)}" if written else "")
    return merged


def timeline_csv_lines(rows: Iterable[TimelineEvent], names: dict[str, str]) -> Iterator[str]:
    """The l2tcsv text line by line; a file's M, A, C and B times at one instant are one row (see
    :func:`merge_macb`). Rows come in time order, so only the rows of one instant are held at once."""
    yield _csv_line(L2TCSV_COLUMNS)
    groups: dict[tuple, list[list[str]]] = {}
    ordered: list[list[list[str]]] = []
    instant = None
    for row in rows:
        if utc_key(row.utc) != instant:  # a merge group never spans two instants: what is held is final
            yield from _group_lines(ordered)
            groups, ordered, instant = {}, [], utc_key(row.utc)
        cells = l2tcsv_row(row, names.get(row.task, row.task))
        group = _macb_group(row)
        if group is None and not groups:  # nothing held can still grow: written at once
            yield from _group_lines(ordered)
            ordered = []
            yield from _group_lines([[cells]])
        elif group is None:
            ordered.append([cells])
        elif group in groups:
            groups[group].append(cells)
        else:
            groups[group] = [cells]
            ordered.append(groups[group])
    yield from _group_lines(ordered)


def _group_lines(ordered: list[list[list[str]]]) -> Iterator[str]:
    for members in ordered:
        cells = members[0] if len(members) == 1 else merge_macb(members)
        yield _csv_line([csv_cell(cell) for cell in cells])


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerow(cells)
    return buffer.getvalue()
