"""Collectors: one module per source; each knows where its artifacts live in an opened evidence
item and hands the bytes to a pure parser in :mod:`triage.parsers`.

A collector is ``collect(source: Source, ctx: Context) -> Iterator[record]``. It must never raise
on bad evidence: it calls ``ctx.gap(...)`` for what it cannot read and goes on.
"""

from __future__ import annotations

from triage.context import Context, Source

__all__ = ["Context", "Source"]
