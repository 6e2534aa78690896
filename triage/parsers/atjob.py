"""at(1) spool job files (GNU at on Linux, BSD at): name, header, saved environment, command.

File name: queue letter, 5 hex digits job number, 8 hex digits run time in minutes since the epoch
(``a0000101b2c3d4``); a ``=`` in place of the queue letter marks a job atd is running now.
The script starts ``#!/bin/sh``, ``# atrun uid=N gid=N``, ``# mail <submitter> <0|1>``, then the
submitter's environment (``NAME=value; export NAME``), ``cd <dir> || { ... }``, and the command —
inside a ``${SHELL:-/bin/sh} << 'marcinDELIMITERxxxx'`` here-document on at >= 3.1.14, appended
directly on older and BSD versions. atd only runs files whose owner-execute bit is set, so the
caller passes that bit in.

Only :class:`AtJobError` is raised: for a name that is not an at job file name.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from triage.parsers import ParseError
from triage.records import Provenance, Stamp, UnixJob
from triage.timeutil import iso
from triage.vocab import Basis, Precision


class AtJobError(ParseError):
    """A spool file name that is not ``<queue><5 hex job><8 hex minutes>``."""


_NAME = re.compile(r"^([a-zA-Z=])([0-9a-f]{5})([0-9a-f]{8})$")
_ATRUN = re.compile(r"^#\s*atrun\s+uid=([0-9]+)\s+gid=([0-9]+)")
_MAIL = re.compile(r"^#\s*mail\s+(\S+)\s+([0-9]+)")
_HEREDOC = re.compile(r"^\$\{SHELL:-/bin/sh\}\s*<<\s*'?([A-Za-z0-9_]+)'?\s*$")
_EXPORT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*?); export \1$")


def parse_job_name(name: str) -> tuple[str, int, datetime]:
    """(queue, job number, scheduled run time in UTC) from a spool file name."""
    m = _NAME.match(name)
    if not m:
        raise AtJobError(f"{name!r} is not an at job file name")
    queue, job, minutes = m.groups()
    return queue, int(job, 16), datetime.fromtimestamp(int(minutes, 16) * 60, tz=timezone.utc)


def parse_at_job(name: str, data: bytes, location: str, *, executable: bool) -> UnixJob:
    """One at job as a UnixJob. Raises AtJobError only for a bad file name."""
    queue, number, run_at = parse_job_name(name)
    text = data.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    details: dict = {"queue": queue, "job_number": number, "executable": executable}
    errors: list[str] = []
    if queue == "=":
        details["running_now"] = True
    env: dict[str, str] = {}
    command_lines: list[str] = []
    workdir = None
    delimiter = None
    state = "header"
    for line in lines:
        if state == "header":
            if m := _ATRUN.match(line):
                details["uid"], details["gid"] = int(m.group(1)), int(m.group(2))
                continue
            if m := _MAIL.match(line):
                details["submitter"], details["mail_always"] = m.group(1), m.group(2) == "1"
                continue
            if line.startswith("#!") or line.startswith("#") or not line.strip():
                continue
            state = "environment"
        if state == "environment":
            if m := _EXPORT.match(line):
                env[m.group(1)] = m.group(2)
                continue
            if line.startswith("umask "):
                details["umask"] = line[len("umask "):].strip()
                continue
            if line.startswith("cd ") and line.rstrip().endswith("{"):
                workdir = line[3:].split(" || ", 1)[0].strip()
                state = "cd_block"
                continue
            state = "command"  # no cd block: the command starts here
        if state == "cd_block":
            if line.strip() == "}":
                state = "after_cd"
            continue
        if state == "after_cd":
            if m := _HEREDOC.match(line):
                delimiter = m.group(1)
                state = "command"
                continue
            state = "command"
        if state == "command":
            if delimiter is not None and line == delimiter:
                state = "done"
                continue
            command_lines.append(line)
    if delimiter is not None and state != "done":
        errors.append(f"here-document delimiter {delimiter} never closes")
    while command_lines and not command_lines[-1].strip():
        command_lines.pop()
    if workdir is not None:
        details["working_directory"] = re.sub(r"\\(.)", r"\1", workdir)
    if env:
        details["environment"] = dict(sorted(env.items()))
    if "uid" not in details:
        errors.append("no '# atrun uid=' header")
    user = details.get("submitter") or env.get("LOGNAME")
    stamp = Stamp(meaning="scheduled_run", utc=iso(run_at), as_written=name[6:], basis=Basis.UTC,
                  precision=Precision.MIN)
    return UnixJob(
        kind="at",
        entry=location,
        provenance=Provenance(artifact="at_job", location=location),
        user=user,
        schedule=f"at {iso(run_at)} queue {queue}",
        command="\n".join(command_lines),
        enabled=executable,
        stamps=[stamp],
        details=details,
        errors=errors,
    )
