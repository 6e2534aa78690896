"""Options and checks ``triage`` and ``triage hunt`` share: the common arguments, ISO 8601 times,
Hunt ID dates, input paths that must exist, and the time window of timeline rows.

Its own module so that neither front end imports the other for them (``triage`` only starts
``triage hunt``; the hunt used to import the checks from ``triage.cli``, an import cycle).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path


class UsageError(Exception):
    """A bad option value: one line, exit 2, before any evidence is read."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options ``triage`` and ``triage hunt`` share (each item of a hunt is triaged with them)."""
    parser.add_argument("--memory", action="append", default=[], metavar="IMAGE", help="a memory image of the same host (repeatable)")
    parser.add_argument("--symbols", metavar="DIR", help="volatility3 symbol tables for memory images")
    parser.add_argument("--sigma", action="append", default=[], metavar="DIR", help="extra Sigma rules to run on the events")
    parser.add_argument("--ioc", action="append", default=[], metavar="FILE",
                        help="indicators to match: STIX 2.1 bundle, MISP event JSON, or CSV type,value[,comment] (repeatable)")
    parser.add_argument("--hunt-date", metavar="YYYYMMDD", help="date used in Hunt IDs (default: today, UTC)")
    parser.add_argument("--examiner", help="examiner name for the manifest")
    parser.add_argument("--case", dest="case_id", help="case id for the manifest")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output folder, only if it holds nothing but a previous triage case's files")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def parse_time(text: str, option: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; without an offset it is UTC; a date alone is its day's start (or end)."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an ISO 8601 time (e.g. 2024-03-14T08:58:02Z or "
                         f"2024-03-14T09:58:02+01:00)") from None
    if len(value) <= 10 and "T" not in value.upper():  # a date alone
        parsed = datetime.combine(parsed.date(), time.max if end_of_day else time.min)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_dates(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """--hunt-date, --since and --until checked (args.hunt_date normalised in place); (since, until)."""
    args.hunt_date = parse_hunt_date(args.hunt_date)
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until", end_of_day=True) if args.until else None
    if since and until and since > until:
        raise UsageError(f"--since {args.since} is after --until {args.until}")
    return since, until


def parse_hunt_date(text: str | None, prog: str = "triage") -> str | None:
    if text is None:
        return None
    try:
        datetime.strptime(text, "%Y%m%d")
        if len(text) != 8 or not text.isdigit():
            raise ValueError
    except ValueError:
        raise UsageError(f"--hunt-date {text!r} is not a calendar date written YYYYMMDD") from None
    return text


def check_input_paths(args) -> None:
    """Sigma folders, IOC files, memory images and symbols given must exist: a typo is not silently ignored."""
    for option, paths in (("--sigma", args.sigma), ("--ioc", args.ioc), ("--memory", args.memory),
                          ("--symbols", [args.symbols] if args.symbols else [])):
        for path in paths:
            if not Path(path).exists():
                raise UsageError(f"{option} {path}: no such file or folder")


def _utc_of(row) -> datetime | None:
    try:
        return datetime.fromisoformat(row.utc) if row.utc else None
    except ValueError:
        return None


def filter_rows(rows: Sequence, since: datetime | None, until: datetime | None) -> Sequence:
    """Rows whose UTC time lies in [since, until], compared as times; rows without a UTC time are left out."""
    if since is None and until is None:
        return rows
    kept = []
    for row in rows:
        when = _utc_of(row)
        if when is None or (since and when < since) or (until and when > until):
            continue
        kept.append(row)
    return kept
