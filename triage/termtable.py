"""Terminal tables that fit the terminal: widest columns cut with an ellipsis until the table fits.

The case folder keeps every value whole; the terminal shows what fits (``shutil.get_terminal_size``,
which honours ``COLUMNS`` and falls back to 80 columns when the output is not a terminal)."""

from __future__ import annotations

import shutil

from tabulate import tabulate

MIN_COLUMN = 6
_GAP = 2  # tabulate's "simple" format puts two spaces between columns


def _printable(value) -> str:
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def fit_table(rows: list[list], headers: list[str], width: int | None = None) -> str:
    """``tabulate`` "simple" table no wider than ``width`` (default: the terminal's width)."""
    width = width or terminal_width()
    cells = [[_printable(c) for c in row] for row in rows]
    count = len(headers)
    # tabulate pads a header by two: a column is at least its header plus two wide
    widths = [max([len(headers[i]) + 2] + [len(r[i]) for r in cells if i < len(r)]) for i in range(count)]
    budget = width - _GAP * (count - 1)
    while sum(widths) > budget:
        widest = max(range(count), key=lambda i: widths[i])
        floor = MIN_COLUMN
        if widths[widest] <= floor:
            break  # cannot shrink further without losing the headers: let the terminal wrap
        widths[widest] = max(floor, widths[widest] - max(1, (sum(widths) - budget) // 2 or 1))
    fitted = [[clip(row[i], widths[i]) if i < len(row) else "" for i in range(count)] for row in cells]
    heads = [clip(h, widths[i] - 2) for i, h in enumerate(headers)]
    return tabulate(fitted, headers=heads, tablefmt="simple", disable_numparse=True)
