"""anacrontab parser (``period delay job-identifier command``) and anacron timestamp files.

dissect reads /etc/anacrontab with its crontab regex and mis-splits every line (peers.md, dissect
issue #1543); anacron's own format is four columns plus variable lines (RANDOM_DELAY,
START_HOURS_RANGE, SHELL, PATH, MAILTO ...). /var/spool/anacron/<job-identifier> holds the local
date of the job's last run as YYYYMMDD.

Only :class:`AnacrontabError` is raised, and only by :func:`parse_stamp`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from triage.parsers import ParseError
from triage.records import Provenance, UnixJob


class AnacrontabError(ParseError):
    """An anacron timestamp file that does not hold a YYYYMMDD date."""


PERIOD_NAMES = {"@daily": 1, "@weekly": 7, "@monthly": 30, "@yearly": 365, "@annually": 365}
_ENV = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_JOB = re.compile(r"^\s*(@\w+|[0-9]+)\s+([0-9]+)\s+(\S+)\s+(\S.*)$")


@dataclass
class AnacrontabResult:
    jobs: list[UnixJob] = field(default_factory=list)
    environment: list[tuple[int, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_anacrontab(text: str, location: str) -> AnacrontabResult:
    """Jobs of one anacrontab; every job runs as root (anacron has no user column)."""
    result = AnacrontabResult()
    env: dict[str, str] = {}
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        job = _JOB.match(raw)
        if job:
            period_text, delay, identifier, command = job.groups()
            period = PERIOD_NAMES.get(period_text.lower()) if period_text.startswith("@") else int(period_text)
            if period is None:
                result.errors.append(f"{location}:{number}: unknown period {period_text!r}")
                continue
            details = {
                "line": number,
                "job_identifier": identifier,
                "period_days": period,
                "period_as_written": period_text,
                "delay_minutes": int(delay),
            }
            if env:
                details["environment"] = dict(sorted(env.items()))
            result.jobs.append(
                UnixJob(
                    kind="anacron",
                    entry=f"{location}:{number}",
                    provenance=Provenance(artifact="anacrontab", location=location, value_name=f"line {number}", raw=raw),
                    user="root",
                    schedule=f"{period_text} delay={delay}min",
                    command=command,
                    enabled=True,
                    details=details,
                )
            )
            continue
        var = _ENV.match(raw)
        if var:
            env[var.group(1)] = var.group(2)
            result.environment.append((number, var.group(1), var.group(2)))
            continue
        result.errors.append(f"{location}:{number}: not an anacron job or variable: {stripped[:120]!r}")
    return result


def parse_stamp(data: bytes) -> date:
    """The last-run date in a /var/spool/anacron file (anacron writes YYYYMMDD and a newline)."""
    text = data.decode("ascii", "replace").strip()
    if not re.fullmatch(r"[0-9]{8}", text):
        raise AnacrontabError(f"not a YYYYMMDD date: {text[:40]!r}")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise AnacrontabError(f"not a valid date: {text!r}") from exc
