"""systemd unit files (INI-like, with drop-ins), timer settings, and next elapse for OnCalendar.

Unit syntax as systemd.syntax(7) defines it: ``[Section]`` headers, ``Key=Value``, ``#``/``;``
comments, a trailing backslash continues a line (joined with a space), a key may repeat, and an
empty assignment (``ExecStart=``) clears the list built so far — which is how a drop-in
``foo.service.d/override.conf`` replaces a command.

Only :class:`SystemdUnitError` is raised: by :func:`parse_timespan` and :func:`next_elapse` for
values they do not support. :func:`parse_unit` never raises; bad lines land in ``Unit.errors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone, tzinfo

from triage.parsers import ParseError
from triage.records import Provenance, UnixJob


class SystemdUnitError(ParseError):
    """A time span or calendar expression this module does not support."""


TIMER_TRIGGERS = ("OnCalendar", "OnActiveSec", "OnBootSec", "OnStartupSec", "OnUnitActiveSec", "OnUnitInactiveSec")


@dataclass
class Unit:
    """One unit after its drop-ins: section → key → values in order (empty assignments applied)."""

    name: str
    sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # the file and drop-ins, in the order applied
    errors: list[str] = field(default_factory=list)

    def values(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def value(self, section: str, key: str) -> str | None:
        values = self.values(section, key)
        return values[-1] if values else None


def parse_unit(text: str, name: str, location: str, into: Unit | None = None) -> Unit:
    """Parse a unit file, or a drop-in applied onto ``into`` (its assignments extend or clear)."""
    unit = into or Unit(name=name)
    unit.sources.append(location)
    section = None
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not pending:
            start = number
            if raw.lstrip().startswith(("#", ";")):
                continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        logical.append((start, pending + raw))
        pending = ""
    if pending:
        logical.append((start, pending))
    for number, line in logical:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            unit.sections.setdefault(section, {})
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip() or section is None:
            problem = "assignment outside a section" if sep and section is None else "not a Key=Value line"
            unit.errors.append(f"{location}:{number}: {problem}: {stripped[:120]!r}")
            continue
        values = unit.sections[section].setdefault(key.strip(), [])
        value = value.strip()
        if value:
            values.append(value)
        else:
            values.clear()
    return unit


_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "M": 2629800, "month": 2629800, "months": 2629800,
    "y": 31557600, "year": 31557600, "years": 31557600,
}


def parse_timespan(text: str) -> float:
    """systemd.time(7) span to seconds: ``90``, ``5min``, ``1h 30min``, ``2d``."""
    text = text.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    total = 0.0
    pos = 0
    for m in re.finditer(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)", text):
        if m.start() != pos or m.group(2) not in _SPAN_UNITS:
            raise SystemdUnitError(f"unsupported time span {text!r}")
        total += float(m.group(1)) * _SPAN_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise SystemdUnitError(f"unsupported time span {text!r}")
    return total


def timer_job(timer: Unit, service: Unit | None, location: str, *, user: str | None, scope: str) -> UnixJob:
    """A systemd timer and the service it starts, as one UnixJob (enabled is set by the caller)."""
    triggers = {key: timer.values("Timer", key) for key in TIMER_TRIGGERS if timer.values("Timer", key)}
    schedule = "; ".join(f"{key}={value}" for key, values in triggers.items() for value in values)
    details: dict = {"scope": scope, "triggers": triggers, "timer_sources": list(timer.sources)}
    for key in ("Persistent", "RandomizedDelaySec", "AccuracySec", "WakeSystem", "Unit"):
        if (value := timer.value("Timer", key)) is not None:
            details[key.lower() if key != "RandomizedDelaySec" else "randomized_delay"] = value
    service_name = timer.value("Timer", "Unit") or timer.name.rsplit(".", 1)[0] + ".service"
    details["service"] = service_name
    errors = list(timer.errors)
    command = None
    run_as = user
    if service is None:
        errors.append(f"service unit {service_name} not found")
    else:
        exec_start = service.values("Service", "ExecStart")
        command = "\n".join(exec_start) if exec_start else None
        details["service_sources"] = list(service.sources)
        details["exec_start"] = exec_start
        if description := service.value("Unit", "Description"):
            details["service_description"] = description
        if service_user := service.value("Service", "User"):
            details["service_user"] = service_user
            if scope == "system":
                run_as = service_user
        errors.extend(service.errors)
    if not triggers:
        errors.append("timer has no On*= trigger")
    return UnixJob(
        kind="systemd_timer",
        entry=location,
        provenance=Provenance(artifact="systemd_timer", location=location),
        user=run_as,
        schedule=schedule or None,
        command=command,
        details=details,
        errors=errors,
    )


# --- OnCalendar -------------------------------------------------------------------------------

_SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
}
_WEEKDAYS = {name: i for i, name in enumerate(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])}
_WEEKDAY_LONG = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}


@dataclass(frozen=True)
class Calendar:
    weekdays: frozenset[int] | None  # Monday = 0; None = any
    years: frozenset[int] | None
    months: frozenset[int]
    days: frozenset[int]
    hours: frozenset[int]
    minutes: frozenset[int]
    seconds: frozenset[int]


def _component(text: str, low: int, high: int, what: str) -> frozenset[int] | None:
    """``*``, ``5``, ``1,15``, ``1..5``, ``0/15``, ``*/15`` → set (None for ``*`` on years)."""
    out: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        if slash and not re.fullmatch(r"[0-9]+", step_text):
            raise SystemdUnitError(f"unsupported {what} {text!r}")
        step = int(step_text) if slash else 1
        if base == "*":
            first, last = low, high
        elif ".." in base:
            a, _, b = base.partition("..")
            if not (re.fullmatch(r"[0-9]+", a) and re.fullmatch(r"[0-9]+", b)):
                raise SystemdUnitError(f"unsupported {what} {text!r}")
            first, last = int(a), int(b)
        elif re.fullmatch(r"[0-9]+", base):
            first = int(base)
            last = high if slash else first
        else:
            raise SystemdUnitError(f"unsupported {what} {text!r}")
        if step == 0 or first < low or last > high:
            raise SystemdUnitError(f"{what} {text!r} out of range")
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _weekdays(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        a, sep, b = part.partition("..")
        names = {**_WEEKDAYS, **_WEEKDAY_LONG}
        if a not in names or (sep and b not in names):
            raise SystemdUnitError(f"unsupported weekday {text!r}")
        first, last = names[a], names[b] if sep else names[a]
        out.update(range(first, last + 1) if first <= last else list(range(first, 7)) + list(range(0, last + 1)))
    return frozenset(out)


def parse_calendar(expression: str) -> Calendar:
    """The common OnCalendar forms: shorthands, ``[Weekdays] [[Y-]M-D] [H:M[:S]]`` with ``*``, lists,
    ``a..b`` ranges and ``/step``. Anything else (``~``, time zones, fractions) raises."""
    text = " ".join(expression.split())
    text = _SHORTHANDS.get(text.lower(), text)
    parts = text.split(" ")
    weekdays = None
    if parts and re.match(r"^[A-Za-z]", parts[0]):
        weekdays = _weekdays(parts.pop(0))
    date_part = "*-*-*"
    time_part = "00:00:00"
    for part in parts:
        if ":" in part:
            time_part = part
        elif "-" in part:
            date_part = part
        else:
            raise SystemdUnitError(f"unsupported OnCalendar {expression!r}")
    if len(parts) > 2 or "~" in date_part:
        raise SystemdUnitError(f"unsupported OnCalendar {expression!r}")
    date_fields = date_part.split("-")
    if len(date_fields) == 2:
        date_fields = ["*"] + date_fields
    if len(date_fields) != 3:
        raise SystemdUnitError(f"unsupported date in {expression!r}")
    time_fields = time_part.split(":")
    if len(time_fields) == 2:
        time_fields.append("00")
    if len(time_fields) != 3:
        raise SystemdUnitError(f"unsupported time in {expression!r}")
    years = None if date_fields[0] == "*" else _component(date_fields[0], 1970, 2199, "year")
    return Calendar(
        weekdays=weekdays,
        years=years,
        months=_component(date_fields[1], 1, 12, "month"),
        days=_component(date_fields[2], 1, 31, "day"),
        hours=_component(time_fields[0], 0, 23, "hour"),
        minutes=_component(time_fields[1], 0, 59, "minute"),
        seconds=_component(time_fields[2], 0, 59, "second"),
    )


def next_elapse(expression: str, after: datetime, tz: tzinfo) -> datetime:
    """First time strictly after ``after`` the calendar matches (wall clock in ``tz``), in UTC.
    RandomizedDelaySec is not added: this is the earliest elapse."""
    if after.tzinfo is None:
        raise SystemdUnitError("'after' must be time-zone aware")
    cal = parse_calendar(expression)
    try:
        return _next_match(cal, after, tz)
    except (OverflowError, ValueError) as exc:
        raise SystemdUnitError(f"OnCalendar {expression!r}: no next elapse ({exc})") from exc


def _next_match(cal: Calendar, after: datetime, tz: tzinfo) -> datetime:
    day = after.astimezone(tz).date()
    hours, minutes, seconds = sorted(cal.hours), sorted(cal.minutes), sorted(cal.seconds)
    for _ in range(366 * 8 + 1):
        if (
            (cal.years is None or day.year in cal.years)
            and day.month in cal.months
            and day.day in cal.days
            and (cal.weekdays is None or day.weekday() in cal.weekdays)
        ):
            for hour in hours:
                for minute in minutes:
                    for second in seconds:
                        wall = datetime.combine(day, time(hour, minute, second))
                        aware = wall.replace(tzinfo=tz)
                        if aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != wall:
                            continue
                        if aware > after:
                            return aware.astimezone(timezone.utc)
        day += timedelta(days=1)
    raise SystemdUnitError("calendar never elapses")
