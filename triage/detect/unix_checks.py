"""Linux/Unix checks that are facts about a job rather than its command's content.

- Stock jobs: an entry of a package's cron.d file, anacrontab or timer unit that equals one of the
  package versions in ``triage/data/baseline_linux.json`` is quiet (content rules skip it); one in
  a package's file that equals none of them is a changed stock job.
- Runs that no entry explains ("ran, no longer defined", named by the collector after what the log
  says ran): a finding only where the crontabs were read (absence needs a look), like the Windows
  "runs logged but no definition".
- Timers enabled by a ``*.wants`` link whose unit file is missing.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from triage.detect import Hit, JudgeContext
from triage.parsers.crontab import normalise_command, programs_run
from triage.records import Entity, EvidenceItem, TaskEvent, UnixJob

_RUNS = ("cron_run", "anacron_run", "cron_script_run")
# Files administrators edit by hand: a line that is not stock there is an ordinary entry, not a changed package file.
_HAND_EDITED = ("/etc/crontab", "/etc/crontabs/root")


@lru_cache(maxsize=1)
def load_linux_baseline() -> tuple[dict, ...]:
    data = resources.files("triage").joinpath("data/baseline_linux.json").read_text(encoding="utf-8")
    return tuple(json.loads(data)["entries"])


def _place(job: UnixJob) -> str | None:
    """Where a stock entry is found: the file for cron/anacron, the unit name for timers."""
    if job.kind == "cron":
        return job.entry.rsplit(":", 1)[0]
    if job.kind == "anacron":
        return job.provenance.location
    if job.kind == "systemd_timer" and not job.details.get("unit_file_missing"):
        return job.entry.rsplit("/", 1)[-1]
    return None


def stock_variants(job: UnixJob) -> list[dict]:
    """The baseline entries for the same place (file or timer unit) and, for anacron, the same job id."""
    place = _place(job)
    if place is None:
        return []
    found = [e for e in load_linux_baseline() if e["kind"] == job.kind and e["path"] == place]
    if job.kind == "anacron":
        found = [e for e in found if e.get("job_identifier") == job.details.get("job_identifier")]
    return found


def stock_entry(job: UnixJob) -> dict | None:
    """The baseline entry this job equals (user, schedule unless set per install, command), or None."""
    command = normalise_command(job.command or "")
    for entry in stock_variants(job):
        if entry["user"] and job.user and entry["user"] != job.user:
            continue
        if entry["schedule"] and normalise_command(job.schedule or "") != entry["schedule"]:
            continue
        if normalise_command(entry["command"]) == command:
            return entry
    return None


def is_unchanged_stock(entity: Entity) -> bool:
    """Every job of the entity is a known package entry (and there is at least one)."""
    return bool(entity.unix_jobs) and all(stock_entry(job) is not None for job in entity.unix_jobs)


def check_unix(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    hits = []
    for job in entity.unix_jobs:
        if job.details.get("unit_file_missing"):
            hits.append(_unit_missing(job))
        elif stock_variants(job) and stock_entry(job) is None and _place(job) not in _HAND_EDITED:
            hits.append(_stock_changed(job))
        if job.details.get("script_commands") and not is_unchanged_stock(entity):
            hits.extend(_content_hits(entity, [_row(entity, job.user, "\n".join(job.details["script_commands"]), "run-parts script")],
                                      [_script_item(job)], suffix="(in the script run-parts runs)"))
    if not entity.unix_jobs:
        hits.extend(_ran_no_longer_defined(entity))
    return hits


def _script_item(job: UnixJob) -> EvidenceItem:
    return EvidenceItem(source="run-parts script", location=job.entry, value="; ".join(job.details["script_commands"])[:400],
                        evidence_sha256=job.provenance.evidence_sha256)


def _stock_changed(job: UnixJob) -> Hit:
    variants = stock_variants(job)
    packages = sorted({v["package"] for v in variants})
    return Hit(
        rule="stock_unix_job_changed", risk="Medium", techniques=["T1036.005"],
        title=f"A packaged {job.kind.replace('_', ' ')} entry differs from every known version of package {', '.join(packages)}",
        evidence=[EvidenceItem(source=f"{job.kind} entry", location=job.provenance.location,
                               value=f"found: {job.user} {job.schedule or ''} {job.command}".strip(),
                               evidence_sha256=job.provenance.evidence_sha256)]
        + [EvidenceItem(source=f"stock ({v['package']}, {', '.join(v['releases'])})", location=v["source"],
                        value=f"{v['user']} {v['schedule'] or '(schedule set per install)'} {v['command']}") for v in variants[:4]],
        action=f"Compare {job.provenance.location} with the package's copy (dpkg --verify / rpm -V on a twin host) and collect what it runs.",
        single_source_ok=True,
    )


def _unit_missing(job: UnixJob) -> Hit:
    collected = job.details.get("target_folder_collected")
    return Hit(
        rule="timer_enabled_unit_missing", risk="Medium" if collected else "Low",
        techniques=["T1070.004"] if collected else [],
        title=("Timer is enabled (a .wants link) but its unit file is missing from the folder the link points to"
               if collected else "Timer is enabled (a .wants link) but its unit file is not in the collection"),
        evidence=[EvidenceItem(source="systemd .wants link", location=job.entry,
                               value=f"-> {job.details.get('link_target')}", evidence_sha256=job.provenance.evidence_sha256)],
        action=f"Look for the deleted unit {job.details.get('link_target')} in the journal, file system slack and backups; "
               "the link's time says when the timer was enabled.",
        single_source_ok=bool(collected),
    )


def _ran_no_longer_defined(entity: Entity) -> list[Hit]:
    """Runs no entry explains: what ran is judged by the unix content rules (whatever was read), and
    the absence itself is a Low finding only where the crontabs were read. Low, not the Windows High:
    crontab lines are edited and removed as routine (cron logs keep weeks of runs of lines since
    changed), so a logged command no crontab holds is a lead; the command's content decides the risk."""
    runs = [e for e in entity.events if e.action in _RUNS and e.fields.get("link", "").startswith("ran, no longer defined")]
    if not runs:
        return []
    runs.sort(key=lambda e: (e.time.utc or "", e.provenance.location, e.provenance.offset or 0))
    hits = _logged_command_content(entity, runs)
    not_read = sorted(str(e.fields["definitions_examined"]) for e in runs if e.fields.get("definitions_examined"))
    if not_read:
        return hits  # crontabs not read: the entity's status says so, and no absence is claimed
    same = sorted({entry for e in runs for entry in e.fields.get("same_command_entries", [])})
    evidence = [_run_item(e) for e in runs[:10]]
    if same:
        return hits + [Hit(
            rule="runs_outside_entry_schedule", risk="Medium", techniques=["T1053.003"],
            title=f"Cron ran this command at {len(runs)} time(s) its entry's schedule does not fire (entry edited, or a second definition since removed)",
            evidence=evidence + [EvidenceItem(source="entry with the same user and command", location=entry, value="schedule does not fire at these times")
                                 for entry in same],
            action=f"Compare the runs with {same[0]}'s schedule; look for an older version of the crontab (backups, crontab REPLACE events).",
        )]
    return hits + [Hit(
        rule="runs_without_definition", risk="Low", techniques=["T1070"],
        title="Scheduled runs are logged but no crontab, anacrontab or run-parts folder read holds what ran",
        evidence=evidence,
        action=f"Find who removed it (crontab REPLACE/DELETE lines, shell history); the first logged run was at {runs[0].time.utc or runs[0].time.as_written}.",
        single_source_ok=True,
    )]


def _logged_command_content(entity: Entity, runs: list[TaskEvent]) -> list[Hit]:
    """The unix content rules on the commands the log says ran (user, command and the programs it starts)."""
    rows, items = [], []
    for event in runs:
        if event.command_line:
            row = _row(entity, event.user, normalise_command(event.command_line), "cron (logged run)")
            if row not in rows:
                rows.append(row)
                items.append(_run_item(event))
    return _content_hits(entity, rows, items, suffix="(as logged running)")


def _row(entity: Entity, user: str | None, command: str, kind: str) -> dict:
    programs = [p for line in command.split("\n") for p in programs_run(line)]
    return {"JobKind": kind, "User": user, "Schedule": None, "Command": command, "CommandLine": command,
            "TaskPath": entity.key, "Programs": "\n".join(dict.fromkeys(programs))}


def _content_hits(entity: Entity, rows: list[dict], items: list[EvidenceItem], *, suffix: str) -> list[Hit]:
    """Each unix content rule matching any row, with the evidence item of each matching row."""
    from triage.detect.content_rules import (  # late: content_rules imports this module
        LEVEL_TO_RISK,
        load_rules,
        rule_matches,
    )

    hits = []
    for rule in load_rules():
        if rule.logsource.category != "unix_job":
            continue
        evidence = [item for row, item in zip(rows, items) if rule_matches(rule, row)]
        if not evidence:
            continue
        hits.append(Hit(
            rule=rule.name or str(rule.id), title=f"{rule.title} {suffix}", risk=LEVEL_TO_RISK[rule.level.name.lower() if rule.level else "low"],
            evidence=evidence[:10],
            techniques=sorted(str(t.name).upper() for t in rule.tags if t.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", str(t.name))),
            action=str(rule.custom_attributes.get("recommended_action", "")).replace("{task}", entity.task),
        ))
    return hits


def _run_item(event: TaskEvent) -> EvidenceItem:
    return EvidenceItem(source=f"{event.channel} {event.action.replace('_', ' ')}",
                        location=f"{event.provenance.location} {event.provenance.value_name or ''}".strip(),
                        value=event.provenance.raw or event.command_line or event.action, time=event.time.utc,
                        evidence_sha256=event.provenance.evidence_sha256)


def unix_status(entity: Entity) -> str | None:
    """The short state an examiner reads first, for Linux entities whose state is not plain."""
    for job in entity.unix_jobs:
        if job.details.get("unit_file_missing"):
            return "enabled, unit file missing"
    if entity.unix_jobs:
        return None
    runs = [e for e in entity.events if e.fields.get("link", "").startswith("ran, no longer defined")]
    if not runs:
        return None
    not_read = sorted(str(e.fields["definitions_examined"]) for e in runs if e.fields.get("definitions_examined"))
    return f"ran; definition not examined ({not_read[0]})" if not_read else "ran, no longer defined"
