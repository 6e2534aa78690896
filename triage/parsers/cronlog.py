"""Cron, crontab, anacron, atd and systemd lines from syslog/cron/messages files and journal text.

Recognised messages (program name case-insensitive, any user name including ``www-data``):
- ``CRON[pid]: (user) CMD (command)`` / RHEL ``CROND[pid]: ...`` / busybox ``crond[pid]: USER u pid N cmd command`` → ``cron_run``
- ``CRON[pid]: (CRON) INFO (Running @reboot jobs)`` → ``cron_reboot_jobs``
- ``cron[pid]: (user) RELOAD (crontabs/user)`` → ``crontab_reload``
- ``crontab[pid]: (invoker) REPLACE|BEGIN EDIT|END EDIT|DELETE|LIST (owner)`` → ``crontab_replace`` ...
- ``anacron[pid]: Job `id' started|terminated`` → ``anacron_run`` / ``anacron_finished``
- ``run-parts(/etc/cron.daily)[pid]: starting|finished name`` → ``cron_script_run`` / ``cron_script_finished``
- ``atd[pid]: Starting job N (file) for user 'u' (uid)`` → ``at_run``
- ``systemd[pid]: Starting|Started|Finished <unit> - <description>`` (or the older form with the
  description only) → ``timer_service_starting`` / ``timer_service_start`` / ``timer_service_finished``;
  whether the unit belongs to a timer is for the caller to decide.

Classic syslog lines carry no year. :func:`parse_rotation_chain` infers it per rotation chain
(:func:`assign_years` walks each file backwards from an anchor: a month that goes up when walking
backwards crosses a New Year) and marks every such stamp ``local, year inferred``, never silently.
The times are the machine's local time and are converted with its zone.

Nothing is raised: lines that are not one of the above are counted, not returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from triage.records import Provenance, Stamp, TaskEvent
from triage.timeutil import iso, local_stamp
from triage.vocab import Basis, Precision

YEAR_INFERRED = Basis.LOCAL_YEAR_INFERRED  # a classic syslog time: local wall clock, year not written
_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
_CLASSIC = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (\S+) (.*)$")
_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)? (\S+) (.*)$")
# The program name stops at "(": with "(" allowed in it, "a(a(a(..." backtracked quadratically.
_TAG = re.compile(r"^([^\s\[:(]+(?:\([^)]*\))?)(?:\[(\d+)\])?: ?(.*)$")

_CRON_CMD = re.compile(r"^\((\S+)\) CMD \((.*)\)$", re.S)
# busybox syslogd (Alpine) writes facility.priority between host and tag: "host cron.info crond[1]: ..."
_FACILITY = re.compile(r"^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])\."
                       r"(?:emerg|alert|crit|err|warn|warning|notice|info|debug) ")
_BUSYBOX_CMD = re.compile(r"^USER (\S+) pid +(\d+) cmd (.*)$", re.S)  # busybox crond (Alpine)
_CRON_INFO = re.compile(r"^\((\S+)\) (\S+) \((.*)\)$", re.S)
_CRONTAB = re.compile(r"^\((\S+)\) (REPLACE|BEGIN EDIT|END EDIT|DELETE|LIST|AUTH|PAM ERROR) \((.*)\)$")
_ANACRON = re.compile(r"^Job [`'](.+?)' (started|terminated)")
_RUN_PARTS = re.compile(r"^run-parts\((.+)\)$")
_RUN_PARTS_MSG = re.compile(r"^(starting|finished) (\S+)")
_ATD = re.compile(r"^Starting job (\d+) \((\S+)\) for user '([^']*)' \((\d+)\)")
_SYSTEMD = re.compile(r"^(Starting|Started|Finished) (.+?)(?:\.\.\.|\.)?$")
_UNIT_NAME = re.compile(r"^(\S+\.(?:service|timer|target|scope))(?: - (.*))?$")

_CRONTAB_ACTIONS = {
    "REPLACE": "crontab_replace", "BEGIN EDIT": "crontab_edit_begin", "END EDIT": "crontab_edit_end",
    "DELETE": "crontab_delete", "LIST": "crontab_list", "AUTH": "crontab_auth_failed", "PAM ERROR": "crontab_pam_error",
}
_SYSTEMD_ACTIONS = {"Starting": "timer_service_starting", "Started": "timer_service_start", "Finished": "timer_service_finished"}


@dataclass
class Message:
    """What a cron-related message says, independent of where it was logged."""

    action: str
    user: str | None = None
    command: str | None = None
    fields: dict = field(default_factory=dict)


def classify(program: str, message: str) -> Message | None:
    """The meaning of one message from ``program`` (syslog tag without pid), or None."""
    name = program.lower()
    if name in ("cron", "crond", "/usr/sbin/cron", "/usr/sbin/crond"):
        if m := _CRON_CMD.match(message):
            return Message("cron_run", user=m.group(1), command=m.group(2))
        if m := _BUSYBOX_CMD.match(message):
            return Message("cron_run", user=m.group(1), command=m.group(3), fields={"child_pid": int(m.group(2))})
        if m := _CRON_INFO.match(message):
            user, what, arg = m.groups()
            if what == "RELOAD":
                return Message("crontab_reload", user=user, fields={"crontab": arg})
            if what == "INFO" and "@reboot" in arg:
                return Message("cron_reboot_jobs", fields={"info": arg})
        return None
    if name == "crontab":
        if m := _CRONTAB.match(message):
            invoker, what, owner = m.groups()
            return Message(_CRONTAB_ACTIONS[what], user=invoker, fields={"crontab_owner": owner})
        return None
    if name == "anacron":
        if m := _ANACRON.match(message):
            action = "anacron_run" if m.group(2) == "started" else "anacron_finished"
            return Message(action, user="root", fields={"job_identifier": m.group(1)})
        return None
    if m := _RUN_PARTS.match(program):
        if mm := _RUN_PARTS_MSG.match(message):
            action = "cron_script_run" if mm.group(1) == "starting" else "cron_script_finished"
            script = f"{m.group(1).rstrip('/')}/{mm.group(2)}"
            return Message(action, user="root", command=script, fields={"directory": m.group(1)})
        return None
    if name == "atd":
        if m := _ATD.match(message):
            return Message("at_run", user=m.group(3), fields={"job_number": int(m.group(1)), "job_file": m.group(2), "uid": int(m.group(4))})
        return None
    if name == "systemd":
        if m := _SYSTEMD.match(message):
            verb, rest = m.groups()
            unit = _UNIT_NAME.match(rest)
            fields = {"unit": unit.group(1), "description": unit.group(2)} if unit else {"description": rest}
            return Message(_SYSTEMD_ACTIONS[verb], fields={k: v for k, v in fields.items() if v})
        return None
    return None


@dataclass
class _Line:
    number: int
    offset: int
    raw: str
    month: int
    naive: datetime | None  # without year for classic lines
    iso: tuple | None  # (written, naive, offset, precision) for lines that carry their year (ISO)
    host: str
    program: str
    pid: int | None
    message: Message


@dataclass
class LogResult:
    events: list[TaskEvent] = field(default_factory=list)
    lines: int = 0
    unrecognised_timestamps: int = 0


@dataclass
class LogFile:
    """One file of a rotation chain: its text, where it is, its modification time (aware or None) and,
    for dateext names such as ``messages-20240114``, the rotation day the name carries."""

    text: str
    location: str
    mtime: datetime | None = None
    rotated_on: datetime | None = None


# A rotated file's last line is written shortly before the file is rotated and last modified; a
# modification time further than this after the last line is not the original one (a copy, a touch).
PLAUSIBLE_MTIME_LAG = timedelta(days=8)


def parse_log(text: str, location: str, *, channel: str, mtime: datetime | None, tz: tzinfo | None) -> LogResult:
    """Cron-related events of one text log. ``mtime``: the file's modification time (aware), which
    gives classic lines their year; ``tz``: the machine's zone."""
    return next(parse_rotation_chain([LogFile(text, location, mtime)], channel=channel, tz=tz))


def parse_rotation_chain(files: list[LogFile], *, channel: str, tz: tzinfo | None) -> Iterator[LogResult]:
    """Cron-related events of a rotation chain, newest file first (``syslog``, ``syslog.1``,
    ``syslog.2.gz`` ...), one result per file in the same order, each yielded as soon as it is parsed (a
    failure in an older file keeps the newer files' events).

    Classic syslog lines carry no year; it is inferred, and every such stamp says so (basis
    ``local, year inferred``, the reasoning in the event's ``year_basis``). Per file, in this order:
    the file's own modification time when its last line falls within a few days before it (the time
    is original); else the year carried back from the newer file's first line (older files are
    older); else the rotation day in a dateext name; else the modification time, said to be doubtful."""
    carry: tuple[datetime, str] | None = None  # (first classic line of the newer file, with its year; that file)
    for log in files:
        result, found = _scan(log.text)
        classic = [line for line in found if line.naive is not None]
        anchor, basis = _year_anchor(log, classic, carry, tz)
        years = assign_years([line.month if line.naive else None for line in found], anchor)
        for line, year in zip(found, years):
            result.events.append(_event(line, year, basis, log.location, channel, tz))
        dated = [(line, year) for line, year in zip(found, years) if line.naive is not None and year is not None]
        if dated:
            first, first_year = dated[0]
            try:
                carry = (first.naive.replace(year=first_year), log.location) if first.naive else None
            except ValueError:  # Feb 29 in a year that has none
                carry = None
        yield result


def _year_anchor(log: LogFile, classic: list, carry: tuple[datetime, str] | None, tz: tzinfo | None) -> tuple[datetime | None, str]:
    """The moment the file's last line can be no later than, and why."""
    local_mtime = (log.mtime.astimezone(tz).replace(tzinfo=None) if tz else log.mtime.replace(tzinfo=None)) if log.mtime else None
    mtime_text = iso(log.mtime) if log.mtime else "(none)"
    if not classic:
        return local_mtime, "no classic syslog lines"
    last = classic[-1]
    if local_mtime is not None:
        year = assign_years([last.month], local_mtime)[0]
        try:
            lag = local_mtime - last.naive.replace(year=year)
        except ValueError:
            lag = None
        if lag is not None and timedelta(hours=-1) <= lag <= PLAUSIBLE_MTIME_LAG:
            return local_mtime, f"year from the file's modification time {mtime_text} (its last line is {_days(lag)} before it)"
    if carry is not None:
        return carry[0], f"year carried back from the first line of the newer rotated file {carry[1]} ({carry[0]:%Y-%m-%d}); " \
                         f"this file's modification time {mtime_text} is not original"
    if log.rotated_on is not None:
        return log.rotated_on, f"year from the rotation day in the file name ({log.rotated_on:%Y-%m-%d})"
    if local_mtime is not None:
        return local_mtime, f"year from the file's modification time {mtime_text}, which is not just after its last line: " \
                            "file times may not be original and the year may be wrong"
    return None, "no year: the file has no modification time and no newer rotated file"


def _days(lag: timedelta) -> str:
    hours = lag.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def _scan(text: str) -> tuple[LogResult, list[_Line]]:
    result = LogResult()
    found: list[_Line] = []
    offset = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line_offset = offset
        offset += len(raw.encode("utf-8", "surrogateescape")) + 1
        raw = raw.rstrip("\r")
        if not raw:
            continue
        result.lines += 1
        parsed = _split(raw)
        if parsed is None:
            result.unrecognised_timestamps += 1
            continue
        month, naive, iso_parts, host, tag_text = parsed
        tag_text = _FACILITY.sub("", tag_text, count=1)
        tag = _TAG.match(tag_text)
        if not tag:
            continue
        program, pid, message_text = tag.group(1), tag.group(2), tag.group(3)
        message = classify(program, message_text)
        if message is None:
            continue
        found.append(_Line(number, line_offset, raw, month, naive, iso_parts, host, program, int(pid) if pid else None, message))
    return result, found


def _event(line: _Line, year: int | None, basis: str, location: str, channel: str, tz: tzinfo | None) -> TaskEvent:
    msg = line.message
    fields = dict(msg.fields)
    fields["program"] = line.program
    if line.iso is not None:
        stamp = _iso_stamp(line.iso, tz)
    else:
        written = line.raw[:15]
        try:
            dated = line.naive.replace(year=year) if (year is not None and line.naive is not None) else None
        except ValueError:  # Feb 29 in a year that has none
            dated = None
        fields["year_basis"] = basis
        if dated is None:
            stamp = Stamp(meaning="event_logged", utc=None, as_written=written, basis=Basis.LOCAL_UNCONVERTED, precision=Precision.S)
        else:
            fields["year_inferred"] = dated.year
            stamp = local_stamp(dated, "event_logged", written, tz)
            if stamp.utc is not None:
                stamp.basis = YEAR_INFERRED
    return TaskEvent(
        time=stamp,
        channel=channel,
        event_id=None,
        action=msg.action,
        provenance=Provenance(artifact="syslog", location=location, value_name=f"line {line.number}", offset=line.offset, raw=line.raw),
        host=line.host,
        user=msg.user,
        process_id=line.pid,
        command_line=msg.command,
        fields=fields,
    )


def journal_event(utc: datetime, program: str, pid: int | None, message: str, *, host: str | None, location: str, index: int) -> TaskEvent | None:
    """A cron-related journal entry (already in UTC, with identifier and pid) as a TaskEvent."""
    msg = classify(program or "", message or "")
    if msg is None:
        return None
    return TaskEvent(
        time=Stamp(meaning="event_logged", utc=iso(utc), as_written=iso(utc), basis=Basis.UTC, precision=Precision.US),
        channel="journal",
        event_id=None,
        action=msg.action,
        provenance=Provenance(artifact="journal", location=location, value_name=f"entry {index}", offset=index, raw=f"{program}[{pid}]: {message}"),
        host=host,
        user=msg.user,
        process_id=pid,
        command_line=msg.command,
        fields={**msg.fields, "program": program},
    )


def _split(raw: str) -> tuple[int, datetime | None, tuple | None, str, str] | None:
    """(month, naive time with a placeholder year or None, ISO parts or None, host, 'tag: message')."""
    if m := _CLASSIC.match(raw):
        mon, day, hh, mm, ss, frac, host, rest = m.groups()
        if mon not in _MONTHS:
            return None
        micro = int((frac or "0")[:6].ljust(6, "0"))
        try:
            # year 2000 is a leap year, so "Feb 29" parses; the real year is set later
            naive = datetime(2000, _MONTHS[mon], int(day), int(hh), int(mm), int(ss), micro)
        except ValueError:
            return None
        return _MONTHS[mon], naive, None, host, rest
    if m := _ISO.match(raw):
        y, mo, d, hh, mi, ss, frac, offset, host, rest = m.groups()
        written = raw.split(" ", 1)[0]
        try:
            naive = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss), int((frac or "0")[:6].ljust(6, "0")))
            if offset:
                datetime.fromisoformat(written)
        except ValueError:
            return None
        return int(mo), None, (written, naive, offset, Precision.US if frac else Precision.S), host, rest
    return None


def _iso_stamp(parts: tuple, tz: tzinfo | None) -> Stamp:
    written, naive, offset, precision = parts
    if offset:
        aware = datetime.fromisoformat(written)
        return Stamp(meaning="event_logged", utc=iso(aware), as_written=written, basis=Basis.OFFSET if offset != "Z" else Basis.UTC, precision=precision)
    return local_stamp(naive, "event_logged", written, tz, precision=precision)


def assign_years(months: list[int | None], mtime: datetime | None) -> list[int | None]:
    """Years for classic syslog lines in file order (None entries are lines that carry a year).

    The last line was written no later than the file's mtime: if its month is after the mtime's
    month it belongs to the year before. Walking backwards, a month greater than the one after it
    crosses a New Year."""
    years: list[int | None] = [None] * len(months)
    if mtime is None:
        return years
    year = mtime.year
    later_month = mtime.month
    for i in range(len(months) - 1, -1, -1):
        month = months[i]
        if month is None:
            continue
        if month > later_month:
            year -= 1
        years[i] = year
        later_month = month
    return years
