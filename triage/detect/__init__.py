"""Judging entities: checks produce hits, hits on one task become one hunt-report finding.

A check is a function ``(entity, context) -> list[Hit]``. Every hit on the same task is merged
into one finding (risk = the highest hit, evidence = all of them), so an examiner reads one
finding per suspicious task, with every reason listed. Confidence is computed from
corroboration (see :func:`confidence_for`), never set by a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from triage.records import Entity, EvidenceItem, Finding, Gap

RISK_ORDER = {"Critical": 4, "High": 3, "Medium": 2, "Low": 1}
CONFIDENCE_LEVELS = ["Low", "Medium", "High"]

TECHNIQUE_BY_KIND = {
    "windows_task": "T1053.005",
    "at": "T1053.002",
    "cron": "T1053.003",
    "anacron": "T1053.003",
    "cron_script": "T1053.003",
    "systemd_timer": "T1053.006",
}


@dataclass
class Hit:
    """One reason to report a task."""

    rule: str  # check or rule id
    title: str
    risk: str  # Critical / High / Medium / Low
    evidence: list[EvidenceItem] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    action: str = ""  # recommended action specific to this reason
    contradicts: bool = False  # the hit itself shows sources disagreeing (lowers nothing: it IS the finding)
    single_source_ok: bool = False  # a structural fact that needs no corroboration (e.g. registry-only task)


@dataclass
class JudgeContext:
    hunt_date: str  # YYYYMMDD
    gaps: list[Gap] = field(default_factory=list)
    baseline: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    # Evidence items whose TaskCache was read (see triage.detect.stealth.taskcache_read): a task file
    # with no registry entry is only a finding where the registry could be checked at all.
    taskcache_read: frozenset[str] = frozenset()


# Independent kinds of evidence an examiner can cite; the more agree, the higher the confidence.
def corroborating_sources(entity: Entity) -> list[str]:
    kinds = set()
    for definition in entity.definitions:
        if definition.source in ("task_xml", "job", "gpp"):
            kinds.add("definition")
        elif definition.source in ("taskcache",):
            kinds.add("registry")
            if any(s.meaning in ("last_run", "last_successful_run") and s.utc for s in definition.stamps):
                kinds.add("execution")
        elif definition.source == "memory_taskcache":
            kinds.add("memory")
    for event in entity.events:
        kinds.add("events")
        if event.action in ("started", "finished", "process_created", "action_started", "action_completed",
                            "cron_run", "at_run", "timer_service_start", "run_by_user"):
            kinds.add("execution")
    if entity.processes:
        kinds.update(("memory", "execution"))
    for job in entity.unix_jobs:
        kinds.add("definition")
        if any(s.meaning in ("last_run", "last_trigger") for s in job.stamps):
            kinds.add("execution")
    return sorted(kinds)


def confidence_for(entity: Entity, hits: list[Hit], gaps: list[Gap]) -> tuple[str, str]:
    """Corroboration → confidence, with the reasoning an examiner can repeat in court.

    1 independent source: Low; 2: Medium; 3 or more: High. A structural fact that is itself the
    proof (registry-only task, missing SD) counts as Medium on its own. One level lower when a
    source for this evidence item could not be read (a gap), because what is missing might explain it.
    """
    sources = corroborating_sources(entity)
    level = 0 if len(sources) <= 1 else (1 if len(sources) == 2 else 2)
    if level == 0 and any(h.single_source_ok for h in hits):
        level = 1
    basis = f"{len(sources)} independent source(s) agree: {', '.join(sources) or 'none'}"
    related_gaps = [g for g in gaps if _gap_concerns(g, entity)]
    if related_gaps and level > 0:
        level -= 1
        basis += f"; lowered one level: {len(related_gaps)} unreadable item(s) in the same evidence"
    return CONFIDENCE_LEVELS[level], basis


def _gap_concerns(gap: Gap, entity: Entity) -> bool:
    """A gap matters to a task when it is in the same evidence item and is either about this task's
    own records or about a whole source that could hold more of it (a hive, a log, a volume) rather
    than about another task's file."""
    records = [*entity.definitions, *entity.events, *entity.unix_jobs]
    if gap.evidence not in {r.provenance.evidence for r in records}:
        return False
    own = {r.provenance.location for r in records} | {d.file.path for d in entity.definitions if d.file}
    if gap.location in own:
        return True
    other_task_file = any(marker in gap.location.lower().replace("\\", "/")
                          for marker in ("/tasks/", "/cron", "/systemd/", "/at/", "/atjobs/"))
    return not other_task_file


def _user(entity: Entity) -> str | None:
    for definition in entity.definitions:
        if definition.user_id:
            return definition.user_id
    for job in entity.unix_jobs:
        if job.user:
            return job.user
    for event in entity.events:
        if event.user:
            return event.user
    return None


_AT_JOB = re.compile(r"\\at\d+$")


def technique_for(entity: Entity) -> str:
    """T1053 sub-technique: at.exe's legacy jobs (``\\At<n>``, a .job file) are T1053.002, not .005."""
    if entity.kind == "windows_task" and _AT_JOB.search(entity.key) and any(d.source == "job" for d in entity.definitions):
        return "T1053.002"
    return TECHNIQUE_BY_KIND.get(entity.kind, "T1053")


def merge_evidence(items) -> list[EvidenceItem]:
    """Each supporting record once: items naming the same place, value, time and evidence hash are one
    item whose source lists every reason that cited it (``task_xml (rule A; rule B)``), in first-seen order."""
    merged: dict[tuple, list[EvidenceItem]] = {}
    for item in items:
        merged.setdefault((item.location, item.value, item.time, item.evidence_sha256), []).append(item)
    out = []
    for group in merged.values():
        sources: list[str] = []
        for item in group:
            if item.source not in sources:
                sources.append(item.source)
        prefixes = {s.split(" (", 1)[0] for s in sources}
        if len(sources) > 1 and len(prefixes) == 1 and all(s.endswith(")") and " (" in s for s in sources):
            source = f"{prefixes.pop()} ({'; '.join(s.split(' (', 1)[1][:-1] for s in sources)})"
        else:
            source = "; ".join(sources)
        first = group[0]
        out.append(EvidenceItem(source=source, location=first.location, value=first.value, time=first.time,
                                evidence_sha256=first.evidence_sha256))
    return out


def build_findings(judged: list[tuple[Entity, list[Hit]]], ctx: JudgeContext) -> list[Finding]:
    """Merge hits per task into findings, order them (risk, then task) and number them stably."""
    drafts = []
    for entity, hits in judged:
        if not hits:
            continue
        # stable: on equal risk the checks' own order wins (structural before content rules)
        hits = sorted(hits, key=lambda h: -RISK_ORDER[h.risk])
        top = hits[0]
        confidence, basis = confidence_for(entity, hits, ctx.gaps)
        technique = technique_for(entity)
        techniques = sorted({technique, *[t for h in hits for t in h.techniques]})
        title = top.title if len(hits) == 1 else f"{top.title} (+{len(hits) - 1} more: {', '.join(h.rule for h in hits[1:])})"
        actions = []
        for h in hits:
            if h.action and h.action not in actions:
                actions.append(h.action)
        evidence = merge_evidence(item for h in hits for item in h.evidence)
        drafts.append(Finding(
            hunt_id="", title=title, technique=technique, host=entity.host, user=_user(entity), task=entity.task,
            risk_level=top.risk, confidence=confidence, recommended_action=" ".join(actions), evidence=evidence,
            rule=",".join(h.rule for h in hits), techniques=techniques, confidence_basis=basis,
            details={"reasons": [{"rule": h.rule, "title": h.title, "risk": h.risk} for h in hits],
                     "sources": entity.sources},
        ))
    drafts.sort(key=lambda f: (-RISK_ORDER[f.risk_level], f.host or "", f.task.lower(), f.rule or ""))
    for seq, finding in enumerate(drafts, start=1):
        finding.hunt_id = f"TH-HUNTIN-{ctx.hunt_date}-{seq:03d}"
    return drafts
