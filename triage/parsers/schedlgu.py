"""``SchedLgU.txt``: the Task Scheduler 1.0 service log (job starts, finishes, exit codes, service starts).

Own parser rather than dissect's ``schedlgu`` plugin: dissect converts the exit code with ``int()``
(hex codes such as ``(c000013a)`` raise and end its iteration), knows two date formats only, and
drops the time as written. Here every group becomes a TaskEvent; times are local wall-clock times
kept as written and converted with the machine's zone; a time in an unknown format is kept
unconverted rather than failing.

Raises only :class:`SchedLgUError`.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from datetime import datetime, tzinfo

from triage.parsers import ParseError
from triage.records import Provenance, Stamp, TaskEvent
from triage.taskpath import display_task_path
from triage.timeutil import local_stamp
from triage.vocab import Basis, Precision


class SchedLgUError(ParseError):
    """The bytes are not text."""


_HEADER = re.compile(r'^"(?P<name>[^"]*)"\s*(?:\((?P<command>[^)]*)\))?\s*(?P<rest>.*)$')
# Words then a time. Written so that no two parts can match the same run of spaces: the lazy
# "[A-Za-z ]*?\s+" and ".*?\s*$" forms took quadratic time on a long line of spaces.
_STATUS = re.compile(r"^(?P<status>[A-Za-z]+(?: +[A-Za-z]+)*?)\s+(?:at\s+)?(?P<time>\d(?:.*\S)?)\s*$")
_RESULT = re.compile(r"\((?P<code>[0-9A-Fa-fx]+)\)\.?\s*$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+")
# en-US first (the default log language), then the day-first and ISO forms seen on other locales.
_TIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S",
                 "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S")


def parse_schedlgu(data: bytes, *, provenance: Provenance, local_tz: tzinfo | None) -> list[TaskEvent]:
    """One TaskEvent per entry, in file order; ``provenance.offset`` is the entry's first line number."""
    try:
        return _parse(_decode(bytes(data)), provenance, local_tz)
    except SchedLgUError:
        raise
    except Exception as exc:  # the contract is one error type, whatever the input
        raise SchedLgUError(f"unreadable SchedLgU.txt: {type(exc).__name__}: {exc}") from exc


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF16_LE) or (len(data) > 1 and data[1] == 0):
        return data.decode("utf-16-le", errors="replace").lstrip("\ufeff")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data[2:].decode("utf-16-be", errors="replace")
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def _parse(text: str, provenance: Provenance, local_tz: tzinfo | None) -> list[TaskEvent]:
    events: list[TaskEvent] = []
    group: list[tuple[int, str]] = []
    for number, line in enumerate(text.replace("\x00", "").splitlines(), start=1):
        if line.startswith('"'):
            if group:
                events.append(_event(group, provenance, local_tz))
            group = [(number, line)]
        elif line.strip() and group and line[:1] in (" ", "\t"):
            group.append((number, line))
        elif line.strip() and not line.startswith("[ *****"):
            if group and not group[0][1].startswith('"'):
                group.append((number, line))  # a run of unrecognised lines is one entry, not one per line
                continue
            if group:
                events.append(_event(group, provenance, local_tz))
            group = [(number, line)]
    if group:
        events.append(_event(group, provenance, local_tz))
    return events


def _event(group: list[tuple[int, str]], provenance: Provenance, local_tz: tzinfo | None) -> TaskEvent:
    first_line, header = group[0]
    fields: dict[str, str] = {"lines": "\n".join(line.rstrip() for _, line in group)}
    match = _HEADER.match(header)
    name = match.group("name") if match else header.strip()
    command = match.group("command") if match else None
    is_service = not name.lower().endswith(".job")
    status = ""
    written_time = None
    result = None
    messages = []
    rest = match.group("rest").strip() if match else ""
    if "ERROR" in rest.upper():
        status = "error"
        written_time = rest.split("**")[0].strip() or None
    for _, line in group[1:]:
        body = line.strip()
        status_match = _STATUS.match(body)
        result_match = _RESULT.search(body) if body.lower().startswith("result") else None
        if result_match:
            result = result_match.group("code")
        elif status_match and written_time is None:
            status, written_time = status_match.group("status"), status_match.group("time")
        elif _VERSION.match(body):
            fields["version"] = body
            status = status or "version"
        else:
            messages.append(body)
    if messages:
        fields["message"] = " ".join(messages)
    action = (status or "logged").strip().lower().replace(" ", "_")
    if is_service:
        action = f"service_{action}"
    return TaskEvent(
        time=_time_stamp(written_time, local_tz),
        channel="SchedLgU",
        event_id=None,
        action=action,
        provenance=dataclasses.replace(provenance, offset=first_line),
        task=None if is_service else display_task_path(name[:-4]),
        command_line=command,
        result_code=result,
        fields=fields,
    )


def _time_stamp(written: str | None, local_tz: tzinfo | None) -> Stamp:
    if not written:
        return Stamp(meaning="event_logged", utc=None, as_written=None, basis=Basis.UNPARSED,
                     precision=Precision.UNKNOWN)
    for fmt in _TIME_FORMATS:
        try:
            naive = datetime.strptime(written, fmt)
        except ValueError:
            continue
        return local_stamp(naive, "event_logged", written, local_tz)
    return Stamp(meaning="event_logged", utc=None, as_written=written, basis=Basis.UNPARSED,
                 precision=Precision.UNKNOWN)
