"""JSON outputs: ``tasks.jsonl`` (entities), ``timeline.jsonl`` (Timesketch), ``findings.json``.

``timeline.jsonl`` imports into Timesketch as it is: every line has Timesketch's mandatory fields
``message``, ``datetime`` (ISO 8601, ``+00:00``) and ``timestamp_desc``, plus ``timestamp``
(microseconds) and flat provenance attributes. Rows whose UTC time is not known (local time of a
machine whose zone could not be read) cannot go there without inventing a time, so they go to
``timeline_undated.jsonl`` with the same attributes and the time as written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from triage.export.safe import json_text
from triage.records import Entity, Finding, TimelineEvent, to_dict

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Names Timesketch reserves or strips on import; a detail with one of these names gets a prefix.
_RESERVED = frozenset({"message", "datetime", "timestamp", "timestamp_desc", "tag", "_id", "_type", "_index",
                       "_source", "__ts_timeline_id"})


def parse_utc(text: str | None) -> datetime | None:
    """The row's UTC instant, or None when it has none (or it is not ISO 8601)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(timezone.utc)


def row_attributes(row: TimelineEvent, task_display: str) -> dict[str, Any]:
    """Provenance and time semantics of one timeline row as flat, ordered attributes."""
    prov = row.provenance
    attributes: dict[str, Any] = {
        "task": task_display,
        "host": row.host,
        "what": row.what,
        "meaning": row.meaning,
        "utc": row.utc,
        "as_written": row.as_written,
        "basis": row.basis,
        "precision": row.precision,
        "source": row.source,
        "artifact": prov.artifact,
        "location": prov.location,
        "value_name": prov.value_name,
        "offset": prov.offset,
        "raw": prov.raw,
        "evidence": prov.evidence,
        "evidence_sha256": prov.evidence_sha256,
    }
    for key in sorted(row.details):
        value = row.details[key]
        if value is None:
            continue
        name = f"detail_{key}" if key in attributes or key in _RESERVED else key
        attributes[name] = value if isinstance(value, (str, int, float, bool)) else json_text(to_dict(value))
    return {k: v for k, v in attributes.items() if v is not None}


def message_for(row: TimelineEvent, task_display: str) -> str:
    """Timesketch's one-line summary: which task, what happened, and the command when known."""
    text = f"{task_display}: {row.what}" if task_display else row.what
    command = row.details.get("command_line")
    if command:
        text += f" ({command})"
    return text


def timesketch_line(row: TimelineEvent, task_display: str) -> dict[str, Any] | None:
    """One Timesketch event, or None when the row has no UTC time."""
    when = parse_utc(row.utc)
    if when is None:
        return None
    delta = when - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}" if when.microsecond else "") + "+00:00"
    return {
        "message": message_for(row, task_display),
        "datetime": stamp,
        "timestamp": micros,
        "timestamp_desc": row.what,
        **row_attributes(row, task_display),
    }


def undated_line(row: TimelineEvent, task_display: str) -> dict[str, Any]:
    reason = ("local time, machine time zone unknown" if row.basis == "local-unconverted"
              else f"no UTC time (basis: {row.basis})")
    return {"message": message_for(row, task_display), "timestamp_desc": row.what, "undated_reason": reason,
            **row_attributes(row, task_display)}


def timeline_lines(rows: Iterable[TimelineEvent], names: dict[str, str]) -> Iterator[str]:
    """``timeline.jsonl``, line by line: the rows with a UTC time."""
    for row in rows:
        line = timesketch_line(row, names.get(row.task, row.task))
        if line is not None:
            yield json_text(line) + "\n"


def undated_lines(rows: Iterable[TimelineEvent], names: dict[str, str]) -> Iterator[str]:
    """``timeline_undated.jsonl``, line by line: every row :func:`timeline_lines` leaves out."""
    for row in rows:
        if parse_utc(row.utc) is None:
            yield json_text(undated_line(row, names.get(row.task, row.task))) + "\n"


def task_line_parts(entity: Entity) -> Iterator[str]:
    """One ``tasks.jsonl`` line (the entity with every source record and its own timeline) in pieces: the same
    text as the JSON of the whole entity, but each event and timeline row is encoded alone, so a task with a
    hundred thousand events never exists as one structure of dicts."""
    listed = ("events", "timeline")
    rest = to_dict(dataclasses.replace(entity, events=[], timeline=[]))
    separator = ""
    yield "{"
    for name in (f.name for f in dataclasses.fields(entity)):
        if name in listed:
            items = iter(getattr(entity, name))
            first = next(items, None)
            if first is None:
                continue
            yield f"{separator}{json_text(name)}: [{json_text(to_dict(first))}"
            for item in items:
                yield f", {json_text(to_dict(item))}"
            yield "]"
        elif name in rest:
            yield f"{separator}{json_text(name)}: {json_text(rest[name])}"
        else:
            continue
        separator = ", "
    yield "}\n"


def finding_dict(finding: Finding) -> dict[str, Any]:
    """The findings.json object: the hunt-report keys always present (null when unknown)."""
    return {
        "hunt_id": finding.hunt_id,
        "technique": finding.technique,
        "techniques": finding.techniques,
        "host": finding.host,
        "user": finding.user,
        "task": finding.task,
        "title": finding.title,
        "risk_level": finding.risk_level,
        "confidence": finding.confidence,
        "confidence_basis": finding.confidence_basis,
        "recommended_action": finding.recommended_action,
        "evidence": [
            {"source": item.source, "location": item.location, "value": item.value, "time": item.time,
             "evidence_sha256": item.evidence_sha256}
            for item in finding.evidence
        ],
        "rule": finding.rule,
        "details": to_dict(finding.details),
    }


def findings_json(findings: list[Finding]) -> str:
    return json_text([finding_dict(f) for f in findings], indent=2) + "\n"
