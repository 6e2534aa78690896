"""Terminal tables that fit the terminal: the long columns cut with an ellipsis until the table fits.

The case folder keeps every value whole; the terminal shows what fits (``COLUMNS`` when set, else
``shutil.get_terminal_size`` when stdout is a terminal; output piped elsewhere is not cut)."""

from __future__ import annotations

import os
import shutil
import sys

from tabulate import tabulate

from triage.export.safe import escape_controls

MIN_COLUMN = 6
_GAP = 2  # tabulate's "simple" format puts two spaces between columns


def _printable(value) -> str:
    """A cell as the terminal may show it: control and bidi characters escaped (``\\u202e``), not
    replaced, so the examiner can still tell two names apart; escaped before widths are measured."""
    return escape_controls(value)


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def terminal_width() -> int | None:
    """Columns to fit: ``COLUMNS`` when set, the terminal's width when stdout is one, else None (output
    piped to a file or another program is not cut)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return None


def fit_table(rows: list[list], headers: list[str], width: int | None = None, whole: tuple[int, ...] = ()) -> str:
    """``tabulate`` "simple" table no wider than ``width`` (default: :func:`terminal_width`; None: no
    limit); the columns numbered in ``whole`` are cut only when nothing else fits."""
    width = width or terminal_width()
    if width is None:
        return tabulate([[_printable(c) for c in row] for row in rows], headers=headers, tablefmt="simple",
                        disable_numparse=True)
    cells = [[_printable(c) for c in row] for row in rows]
    count = len(headers)
    # tabulate pads a header by two: a column is at least its header plus two wide
    widths = [max([len(headers[i]) + 2] + [len(r[i]) for r in cells if i < len(r)]) for i in range(count)]
    budget = width - _GAP * (count - 1)
    # One cap for the cuttable columns: short ones and those named in ``whole`` (IDs, risk) stay whole,
    # the long ones share what is left; if even that cannot fit, every column is cut.
    for keep in (set(whole), set(whole[:1]), set()):
        fixed = sum(widths[i] for i in keep)
        free = [i for i in range(count) if i not in keep]
        cap = max((widths[i] for i in free), default=0)
        while cap > MIN_COLUMN and fixed + sum(min(widths[i], cap) for i in free) > budget:
            cap -= 1
        if fixed + sum(min(widths[i], cap) for i in free) <= budget or not keep:
            widths = [widths[i] if i in keep else min(widths[i], cap) for i in range(count)]
            break
    fitted = [[clip(row[i], widths[i]) if i < len(row) else "" for i in range(count)] for row in cells]
    heads = [clip(h, widths[i] - 2) for i, h in enumerate(headers)]
    return tabulate(fitted, headers=heads, tablefmt="simple", disable_numparse=True)
