"""Names from the evidence as text that can always be written.

A file name on ext4 or in a directory collection is bytes; Python keeps the bytes that are not UTF-8
as lone surrogates (``\\udcff``), which JSON, YAML and UTF-8 files refuse or carry on silently. triage
turns them into visible escapes (``\\xff``) once, where records and gaps are made, so every output
shows the same text and nothing fails on a hostile name. And how such text is shown on a terminal
(:func:`escape_controls`): every line triage prints, gaps included, goes through it.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any


def escaped_text(text: str) -> str:
    """``text`` with every lone surrogate written as ``\\xNN`` (an undecodable byte) or ``\\uNNNN``."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    return "".join(f"\\x{ord(ch) - 0xDC00:02x}" if "\udc80" <= ch <= "\udcff"
                   else f"\\u{ord(ch):04x}" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def escape_record(record: Any) -> Any:
    """Escape, in place, every text held by a record (its nested records, lists and dicts included)."""
    kind = type(record)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(field.name for field in dataclasses.fields(record))
    for name in names:
        value = getattr(record, name)
        escaped = _escaped(value)
        if escaped is not value:
            setattr(record, name, escaped)
    return record


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _escaped(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return escaped_text(value)
    if kind is list:
        for index, item in enumerate(value):
            escaped = _escaped(item)
            if escaped is not item:
                value[index] = escaped
    elif kind is dict:
        items = [(_escaped(key), _escaped(item)) for key, item in value.items()]
        if any(new is not old for (new, _), old in zip(items, value)):  # a key changed: rebuild, same order
            value.clear()
        value.update(items)
    elif dataclasses.is_dataclass(value):
        escape_record(value)
    return value


# Cc controls, Cf format characters (bidi overrides, zero-width, tag characters), lone surrogates,
# and the Unicode line/paragraph separators: invisible or layout-changing, so always shown escaped.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def is_escaped(ch: str) -> bool:
    return unicodedata.category(ch) in _ESCAPED_CATEGORIES


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_controls(value: Any) -> str:
    """Text with every control / invisible character written as a Python-style escape (``\\x1b``)."""
    text = "" if value is None else str(value)
    # isprintable() is False for every escaped category (C level, the common case); else each distinct character once
    if text.isprintable() or not any(is_escaped(ch) for ch in set(text)):
        return text
    return "".join(_visible(ch) if is_escaped(ch) else ch for ch in text)
