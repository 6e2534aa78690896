"""Times compared and sorted as values, never as variable-width ISO text.

Stamps keep the UTC text exactly as the source gave it (``...:00Z``, ``...:00.5Z``,
``...:00.500000Z``), and as text ``"...:00.500000Z" < "...:00Z"`` is true because ``.`` sorts
before ``Z``. :func:`utc_key` turns any of those spellings into one fixed-width form
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``) whose text order is time order, so sort keys stay plain tuples
of strings and the outputs stay byte-identical.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Sorts after every real time: rows without a UTC time go last.
NO_TIME = "9999-12-31T23:59:59.999999Z~"


def parse_instant(text: str | None) -> datetime | None:
    """The UTC instant an ISO 8601 text names (no offset means UTC), or None when it names none."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_key(text: str | None) -> str:
    """Fixed-width sort key of a UTC time; :data:`NO_TIME` for none, the text itself if it is not ISO 8601."""
    when = parse_instant(text)
    if when is None:
        return NO_TIME if not text else f"{NO_TIME}{text}"
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
            f".{when.microsecond:06d}Z")


def earliest(texts) -> str | None:
    """The earliest of some UTC texts, returned as written (None when there are none)."""
    return min((t for t in texts if t), key=utc_key, default=None)


def latest(texts) -> str | None:
    """The latest of some UTC texts, returned as written (None when there are none)."""
    return max((t for t in texts if t), key=utc_key, default=None)
