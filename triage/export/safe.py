"""Neutralising hostile content on its way into the case folder.

Everything in the outputs that came from evidence (task names, descriptions, command lines, event
fields) is attacker-controlled. These helpers make it inert for the program that opens each file:
spreadsheets (formula cells), browsers (HTML), Markdown renderers, terminals and editors
(control characters, bidirectional overrides, invisible format characters). They change how a
value is *shown*, never what it is: the JSON outputs keep the exact value with JSON escapes.
"""

from __future__ import annotations

import html
import json
from typing import Any

from triage.names import escape_controls, is_escaped

# A spreadsheet cell starting with one of these is a formula (or a DDE command) in Excel/LibreOffice.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Inline markup in CommonMark/GFM (emphasis, code, links, tables, strikethrough, math). Values never
# start a line in our Markdown, so line-start markup (#, -, 1.) cannot trigger.
_MD_SPECIAL = frozenset("`*_[]|~$")
_MD_PUNCTUATION = frozenset(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, bytes):
        return obj.hex()
    return str(obj)


def json_text(obj: Any, *, indent: int | None = None) -> str:
    """JSON that keeps readable UTF-8 but escapes every control/invisible character as ``\\uXXXX``.

    Such characters only ever occur inside JSON strings, where a ``\\u`` escape is the same value,
    so the parsed data is exactly the input.
    """
    separators = (",", ": ") if indent is not None else (", ", ": ")
    if indent is not None and isinstance(obj, list) and obj:
        # Indented JSON is encoded in pure Python, which holds every token of the whole document at
        # once (20,000 findings: about 500 MB); item by item gives the same text at the size of one item.
        pad = " " * indent
        items = (json.dumps(item, ensure_ascii=False, indent=indent, separators=separators, default=_json_default)
                 for item in obj)
        text = "[\n" + ",\n".join(pad + item.replace("\n", "\n" + pad) for item in items) + "\n]"
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators, default=_json_default)
    if not any(is_escaped(ch) for ch in set(text) if ord(ch) > 0x7E):  # each distinct character judged once
        return text
    return "".join(_json_escape(ch) if ord(ch) > 0x7E and is_escaped(ch) else ch for ch in text)


def csv_cell(value: Any) -> str:
    """A spreadsheet-safe cell: formulas neutralised with a leading apostrophe, controls escaped.

    A lone ``-`` (the l2tcsv "no value" marker) is not a formula and stays as it is.
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and text != "-":
        text = "'" + text
    return escape_controls(text)


def html_text(value: Any) -> str:
    """HTML-escaped text (quotes included, so it is safe in attributes too), controls escaped."""
    return html.escape(escape_controls(value), quote=True)


def md_text(value: Any) -> str:
    """Markdown-inert text: markup characters backslash-escaped, controls escaped, no link from evidence.

    ``&`` is backslash-escaped (``\\&``), not written ``&amp;``, so the raw file reads as the value
    did; ``< >`` become ``&lt; &gt;`` so no raw HTML or ``<autolink>`` is in the file. Links are
    broken both ways GFM makes them: ``:`` before ``//`` (URLs), and the extended autolinks: the
    ``.`` after ``www`` and every ``@`` (e-mail addresses). A backslash is
    doubled only where the renderer would otherwise read it as an escape (before ASCII
    punctuation), so task paths like ``\\Microsoft\\Windows`` stay readable in the raw file.
    """
    text = escape_controls(value)
    out = []
    for index, ch in enumerate(text):
        if ch == "<":
            out.append("&lt;")  # an entity, not an escape: no raw "<" (HTML, <autolink>) in the file at all
        elif ch == ">":
            out.append("&gt;")
        elif ch == "\\":
            following = text[index + 1] if index + 1 < len(text) else ""
            out.append("\\\\" if following in _MD_PUNCTUATION or following == "" else "\\")
        elif (ch in _MD_SPECIAL or ch in "&@" or (ch == ":" and text.startswith("//", index + 1))
              or (ch == "." and text[max(0, index - 3):index].lower() == "www")):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
