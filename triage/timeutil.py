"""Time conversions shared by every parser: FILETIME, SYSTEMTIME, XML dateTime, epoch; always to UTC ISO 8601."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

from triage.records import Stamp
from triage.vocab import Basis, Precision

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
        return Stamp(meaning=meaning, utc=iso(dt), as_written=written, basis=Basis.UTC, precision=Precision.HUNDRED_NS)
    naive = dt.replace(tzinfo=None)
    return local_stamp(naive, meaning, written, local_tz, precision=Precision.HUNDRED_NS)


def local_stamp(naive: datetime, meaning: str, as_written: str, local_tz: tzinfo | None, precision: Precision = Precision.S) -> Stamp:
    """A Stamp for a wall-clock value in the machine's time zone (converted when the zone is known)."""
    if local_tz is None:
        return Stamp(meaning=meaning, utc=None, as_written=as_written, basis=Basis.LOCAL_UNCONVERTED, precision=precision)
    try:
        aware = naive.replace(tzinfo=local_tz)
        utc = iso(aware)
    except (OverflowError, ValueError):
        return Stamp(meaning=meaning, utc=None, as_written=as_written, basis=Basis.LOCAL_UNCONVERTED, precision=precision)
    return Stamp(meaning=meaning, utc=utc, as_written=as_written, basis=Basis.LOCAL, timezone=tz_name(local_tz), precision=precision)


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
        return Stamp(meaning=meaning, utc=None, as_written=text, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    except ValueError:
        return Stamp(meaning=meaning, utc=None, as_written=text, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
    precision = Precision.HUNDRED_NS if frac and len(frac) >= 7 else (Precision.MS if frac else Precision.S)
    if offset == "Z":
        return Stamp(meaning=meaning, utc=iso(naive.replace(tzinfo=timezone.utc)), as_written=text, basis=Basis.UTC, precision=precision)
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
        try:
            aware = naive.replace(tzinfo=timezone(delta))
        except ValueError:
            return Stamp(meaning=meaning, utc=None, as_written=text, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
        return Stamp(meaning=meaning, utc=iso(aware), as_written=text, basis=Basis.OFFSET, precision=precision)
    return local_stamp(naive, meaning, text, local_tz, precision=precision)


def utc_stamp(dt: datetime | None, meaning: str, precision: Precision = Precision.S, as_written: str | None = None) -> Stamp | None:
    """A Stamp for a value already known in UTC (aware datetime or naive UTC)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return Stamp(meaning=meaning, utc=iso(dt), as_written=as_written or iso(dt), basis=Basis.UTC, precision=precision)


# --- a Unix machine's own zone ---------------------------------------------------------------

_ZONEINFO_PREFIX = re.compile(r"(?:^|/)zoneinfo/(?:posix/|right/)?(.+)$")
_CLOCK_LINE = re.compile(r"^\s*(?:export\s+)?(ZONE|TIMEZONE|TZ)\s*=\s*(.*?)\s*$")


def zone_name_from_link(target: str) -> str | None:
    """``/etc/localtime -> ../usr/share/zoneinfo/Europe/Berlin`` names its zone in the link."""
    m = _ZONEINFO_PREFIX.search(target.replace("\\", "/"))
    return m.group(1) if m else None


def zone_from_clock_text(text: str) -> str | None:
    """``ZONE="Asia/Shanghai"`` (/etc/sysconfig/clock, RHEL/SUSE), ``TIMEZONE=`` (Gentoo's
    /etc/conf.d/clock), or a bare zone name on the first line (/etc/timezone, Debian)."""
    for line in text.splitlines():
        if m := _CLOCK_LINE.match(line):
            value = m.group(2).strip().strip("\"'")
            return value or None
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    if first and "=" not in first and not first.startswith("#") and " " not in first:
        return first
    return None


def system_zone(name: str) -> tzinfo | None:
    """A zone of the analysing machine's database by name; None when unknown there."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def tzif_zone(data: bytes, label: str) -> tuple[tzinfo, str | None]:
    """A TZif file (``/etc/localtime``) as a zone, with the zone's name when the analysing machine's
    zoneinfo database holds a file of the same bytes, or one with the same UTC offsets at every
    sample instant from 1970 to 2037 (tzdata versions differ in bytes, not in recent rules).
    Without a name the TZif's own transitions are used, keyed by ``label``. Raises ValueError for
    bytes that are not TZif."""
    import io
    from zoneinfo import ZoneInfo

    if not data.startswith(b"TZif"):
        raise ValueError("not a TZif file (no 'TZif' magic)")
    zone = ZoneInfo.from_file(io.BytesIO(data), key=label)
    names = _zone_names_by_bytes().get(data)
    if names:
        return zone, names[0]
    signature = _offset_signature(zone)
    if signature is None:
        return zone, None
    matches = [name for name in _canonical_zone_names() if _offset_signature(system_zone(name)) == signature]
    if len(matches) == 1:
        return zone, matches[0]
    return zone, None


_SAMPLES: list | None = None


def _offset_signature(zone: tzinfo | None) -> tuple | None:
    global _SAMPLES
    if zone is None:
        return None
    if _SAMPLES is None:
        _SAMPLES = [datetime(year, month, day, hour, tzinfo=timezone.utc)
                    for year in range(1970, 2038) for month in range(1, 13) for day in (1, 15) for hour in (12,)]
    try:
        return tuple(int(s.astimezone(zone).utcoffset().total_seconds()) for s in _SAMPLES)
    except (OverflowError, ValueError, AttributeError):
        return None


def _zoneinfo_roots() -> list:
    from pathlib import Path
    from zoneinfo import TZPATH

    return [Path(p) for p in TZPATH if Path(p).is_dir()]


_BY_BYTES: dict[bytes, list[str]] | None = None


def _zone_names_by_bytes() -> dict[bytes, list[str]]:
    """Every zone file of the analysing machine's database by its bytes; names canonical first."""
    global _BY_BYTES
    if _BY_BYTES is None:
        from zoneinfo import available_timezones

        canonical = set(_canonical_zone_names())
        found: dict[bytes, list[str]] = {}
        for name in sorted(available_timezones()):
            for root in _zoneinfo_roots():
                path = root / name
                if path.is_file():
                    found.setdefault(path.read_bytes(), []).append(name)
                    break
        _BY_BYTES = {data: sorted(names, key=lambda n: (n not in canonical, "/" not in n, n)) for data, names in found.items()}
    return _BY_BYTES


def _canonical_zone_names() -> list[str]:
    """Zone names that are zones, not links (``Z`` lines of tzdata.zi; else names with a region)."""
    from zoneinfo import available_timezones

    for root in _zoneinfo_roots():
        zi = root / "tzdata.zi"
        if zi.is_file():
            names = sorted(line.split()[1] for line in zi.read_text(errors="replace").splitlines() if line.startswith("Z "))
            if names:
                return names
    return sorted(n for n in available_timezones() if "/" in n and not n.startswith(("Etc/", "SystemV/", "US/")))
