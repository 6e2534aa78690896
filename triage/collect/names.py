"""Names from the evidence as text that can always be written.

A file name on ext4 or in a directory collection is bytes; Python keeps the bytes that are not UTF-8
as lone surrogates (``\\udcff``), which JSON, YAML and UTF-8 files refuse or carry on silently. triage
turns them into visible escapes (``\\xff``) once, where records and gaps are made, so every output
shows the same text and nothing fails on a hostile name.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def escaped_text(text: str) -> str:
    """``text`` with every lone surrogate written as ``\\xNN`` (an undecodable byte) or ``\\uNNNN``."""
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return "".join(f"\\x{ord(ch) - 0xDC00:02x}" if "\udc80" <= ch <= "\udcff"
                   else f"\\u{ord(ch):04x}" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def escape_record(record: Any) -> Any:
    """Escape, in place, every text held by a record (its nested records, lists and dicts included)."""
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        escaped = _escaped(value)
        if escaped is not value:
            setattr(record, field.name, escaped)
    return record


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escaped_text(value)
    if isinstance(value, list):
        value[:] = [_escaped(item) for item in value]
    elif isinstance(value, dict):
        items = [(_escaped(key), _escaped(item)) for key, item in value.items()]
        value.clear()
        value.update(items)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        escape_record(value)
    return value
