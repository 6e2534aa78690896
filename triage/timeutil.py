"""Time conversions shared by every parser: FILETIME, SYSTEMTIME, XML dateTime, epoch; always to UTC ISO 8601."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

from triage.records import Stamp

EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)

# xs:dateTime as Task Scheduler writes it: fraction up to 7 digits, optional Z or +hh:mm offset.
_XML_DT = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?\s*$"
)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with a trailing Z; microseconds only when present (stable output)."""
    dt = dt.astimezone(timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def filetime_to_datetime(value: int) -> datetime | None:
    """FILETIME (100 ns since 1601) to an aware UTC datetime; None for 0 or out-of-range values."""
    if not value or value < 0:
        return None
    try:
        return EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def filetime_stamp(value: int, meaning: str, *, local_tz: tzinfo | None = None, local: bool = False) -> Stamp | None:
    """A Stamp from a FILETIME. ``local=True`` when the FILETIME holds local wall-clock time."""
    dt = filetime_to_datetime(value)
    if dt is None:
        return None
    written = f"0x{value:016x}"
    if not local:
        return Stamp(meaning=meaning, utc=iso(dt), as_written=written, basis="utc", precision="100ns")
    naive = dt.replace(tzinfo=None)
    return local_stamp(naive, meaning, written, local_tz, precision="100ns")


def local_stamp(naive: datetime, meaning: str, as_written: str, local_tz: tzinfo | None, precision: str = "1s") -> Stamp:
    """A Stamp for a wall-clock value in the machine's time zone (converted when the zone is known)."""
    if local_tz is None:
        return Stamp(meaning=meaning, utc=None, as_written=as_written, basis="local-unconverted", precision=precision)
    try:
        aware = naive.replace(tzinfo=local_tz)
        utc = iso(aware)
    except (OverflowError, ValueError):
        return Stamp(meaning=meaning, utc=None, as_written=as_written, basis="local-unconverted", precision=precision)
    return Stamp(meaning=meaning, utc=utc, as_written=as_written, basis="local", timezone=tz_name(local_tz), precision=precision)


def tz_name(tz: tzinfo | None) -> str | None:
    if tz is None:
        return None
    name = getattr(tz, "key", None) or getattr(tz, "name", None)
    if isinstance(name, str):
        return name
    return str(tz)


def xml_datetime_stamp(text: str | None, meaning: str, local_tz: tzinfo | None) -> Stamp | None:
    """Parse an xs:dateTime as Task Scheduler writes it.

    Without an offset the value is the machine's local time (dissect stores it as UTC, which is
    wrong by the UTC offset): keep it as written and convert with the machine's zone.
    """
    if text is None:
        return None
    m = _XML_DT.match(text)
    if not m:
        return Stamp(meaning=meaning, utc=None, as_written=text, basis="unparsed", precision="unknown")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    except ValueError:
        return Stamp(meaning=meaning, utc=None, as_written=text, basis="unparsed", precision="unknown")
    precision = "100ns" if frac and len(frac) >= 7 else ("1ms" if frac else "1s")
    if offset == "Z":
        return Stamp(meaning=meaning, utc=iso(naive.replace(tzinfo=timezone.utc)), as_written=text, basis="utc", precision=precision)
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
        try:
            aware = naive.replace(tzinfo=timezone(delta))
        except ValueError:
            return Stamp(meaning=meaning, utc=None, as_written=text, basis="unparsed", precision="unknown")
        return Stamp(meaning=meaning, utc=iso(aware), as_written=text, basis="offset", precision=precision)
    return local_stamp(naive, meaning, text, local_tz, precision=precision)


def utc_stamp(dt: datetime | None, meaning: str, precision: str = "1s", as_written: str | None = None) -> Stamp | None:
    """A Stamp for a value already known in UTC (aware datetime or naive UTC)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return Stamp(meaning=meaning, utc=iso(dt), as_written=as_written or iso(dt), basis="utc", precision=precision)
