"""Cron, crontab, anacron, atd and systemd lines from syslog/cron/messages files and journal text.

Recognised messages (program name case-insensitive, any user name including ``www-data``):
- ``CRON[pid]: (user) CMD (command)`` / RHEL ``CROND[pid]: ...`` → ``cron_run``
- ``CRON[pid]: (CRON) INFO (Running @reboot jobs)`` → ``cron_reboot_jobs``
- ``cron[pid]: (user) RELOAD (crontabs/user)`` → ``crontab_reload``
- ``crontab[pid]: (invoker) REPLACE|BEGIN EDIT|END EDIT|DELETE|LIST (owner)`` → ``crontab_replace`` ...
- ``anacron[pid]: Job `id' started|terminated`` → ``anacron_run`` / ``anacron_finished``
- ``run-parts(/etc/cron.daily)[pid]: starting|finished name`` → ``cron_script_run`` / ``cron_script_finished``
- ``atd[pid]: Starting job N (file) for user 'u' (uid)`` → ``at_run``
- ``systemd[pid]: Starting|Started|Finished <unit> - <description>`` (or the older form with the
  description only) → ``timer_service_starting`` / ``timer_service_start`` / ``timer_service_finished``;
  whether the unit belongs to a timer is for the caller to decide.

Classic syslog lines carry no year. :func:`assign_years` walks the file backwards from the year of
the file's last modification: a month later than the mtime's month means the previous year, and a
month that goes up when walking backwards means a year boundary (December → January).
The times are the machine's local time and are converted with its zone.

Nothing is raised: lines that are not one of the above are counted, not returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from triage.records import Provenance, Stamp, TaskEvent
from triage.timeutil import iso, local_stamp

_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
_CLASSIC = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (\S+) (.*)$")
_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)? (\S+) (.*)$")
# The program name stops at "(": with "(" allowed in it, "a(a(a(..." backtracked quadratically.
_TAG = re.compile(r"^([^\s\[:(]+(?:\([^)]*\))?)(?:\[(\d+)\])?: ?(.*)$")

_CRON_CMD = re.compile(r"^\((\S+)\) CMD \((.*)\)$", re.S)
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
    stamp: Stamp | None  # already known (ISO lines)
    host: str
    program: str
    pid: int | None
    message: Message


@dataclass
class LogResult:
    events: list[TaskEvent] = field(default_factory=list)
    lines: int = 0
    unrecognised_timestamps: int = 0


def parse_log(text: str, location: str, *, channel: str, mtime: datetime | None, tz: tzinfo | None) -> LogResult:
    """Cron-related events of one text log. ``mtime``: the file's modification time (aware), which
    gives classic lines their year; ``tz``: the machine's zone."""
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
        parsed = _split(raw, tz)
        if parsed is None:
            result.unrecognised_timestamps += 1
            continue
        month, naive, stamp, host, tag_text = parsed
        tag = _TAG.match(tag_text)
        if not tag:
            continue
        program, pid, message_text = tag.group(1), tag.group(2), tag.group(3)
        message = classify(program, message_text)
        if message is None:
            continue
        found.append(_Line(number, line_offset, raw, month, naive, stamp, host, program, int(pid) if pid else None, message))
    years = assign_years([line.month if line.naive else None for line in found], mtime.astimezone(tz) if (mtime and tz) else mtime)
    for line, year in zip(found, years):
        stamp = line.stamp
        if stamp is None:
            written = line.raw[:15]
            try:
                dated = line.naive.replace(year=year) if year is not None else None
            except ValueError:  # Feb 29 in a year that has none
                dated = None
            if dated is None:
                stamp = Stamp(meaning="logged", utc=None, as_written=written, basis="local-unconverted", precision="1s")
            else:
                stamp = local_stamp(dated, "logged", written, tz)
        msg = line.message
        fields = dict(msg.fields)
        fields["program"] = line.program
        event = TaskEvent(
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
        result.events.append(event)
    return result


def journal_event(utc: datetime, program: str, pid: int | None, message: str, *, host: str | None, location: str, index: int) -> TaskEvent | None:
    """A cron-related journal entry (already in UTC, with identifier and pid) as a TaskEvent."""
    msg = classify(program or "", message or "")
    if msg is None:
        return None
    return TaskEvent(
        time=Stamp(meaning="logged", utc=iso(utc), as_written=iso(utc), basis="utc", precision="1us"),
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


def _split(raw: str, tz: tzinfo | None) -> tuple[int, datetime | None, Stamp | None, str, str] | None:
    """(month, naive time with a placeholder year, or a ready Stamp, host, 'tag: message')."""
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
        except ValueError:
            return None
        precision = "1us" if frac else "1s"
        if offset:
            try:
                aware = datetime.fromisoformat(written)
            except ValueError:
                return None
            stamp = Stamp(meaning="logged", utc=iso(aware), as_written=written, basis="offset" if offset != "Z" else "utc", precision=precision)
        else:
            stamp = local_stamp(naive, "logged", written, tz, precision=precision)
        return int(mo), None, stamp, host, rest
    return None


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
