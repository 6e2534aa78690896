"""Kept for imports of ``triage.collect.names`` (run.py, eventlogs.py): the helpers live in :mod:`triage.names`."""

from triage.names import escape_record, escaped_text

__all__ = ["escape_record", "escaped_text"]
