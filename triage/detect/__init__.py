"""Judging entities: checks produce hits, hits on one task become one hunt-report finding.

A check is a function ``(entity, context) -> list[Hit]``. Every hit on the same task is merged
into one finding (risk = the highest hit, evidence = all of them), so an examiner reads one
finding per suspicious task, with every reason listed. Confidence is computed from
corroboration (see :func:`confidence_for`), never set by a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from triage import sources
from triage.detect.gap_index import gap_index
from triage.context import RunOptions
from triage.records import Entity, EvidenceItem, Finding, Gap
from triage.stores import StoreIndex

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
    options: RunOptions = field(default_factory=lambda: RunOptions())
    # What was examined per host (triage.stores): a check that reasons from something missing asks it
    # first, so nothing is "missing" from a store that was never read or that a gap covers.
    stores: StoreIndex = field(default_factory=StoreIndex)


# Event channels by the short name an examiner cites; each log is one artifact however many ids it holds.
_LOG_NAMES = {
    "microsoft-windows-taskscheduler/operational": "TaskScheduler/Operational log",
    "microsoft-windows-sysmon/operational": "Sysmon log",
    "microsoft-windows-powershell/operational": "PowerShell/Operational log",
    "security": "Security log",
    "schedlgu": "SchedLgU.txt",
}


def _log_kind(channel: str) -> str:
    return _LOG_NAMES.get(channel.lower(), f"{channel} log")


# Independent artifacts an examiner can cite; the more agree, the higher the confidence. Two values of
# one registry key (DynamicInfo beside Actions), two event ids of one log (129 and 100), or a task
# rebuilt from a 4698 and the 4698 itself are one artifact each: they were written together.
def corroborating_sources(entity: Entity) -> list[str]:
    kinds = set()
    for definition in entity.definitions:
        if (kind := sources.evidence_kind(definition.source)) is not None:  # the sources table says which
            kinds.add(kind)
    for event in entity.events:
        kinds.add(_log_kind(event.channel))
    if entity.processes:
        kinds.add("memory")
    for job in entity.unix_jobs:
        kinds.add("job file")
        if any(s.meaning in ("last_run", "last_trigger") for s in job.stamps):
            kinds.add("run stamp file")
    return sorted(kinds)


def confidence_for(entity: Entity, hits: list[Hit], gaps: list[Gap], stores: StoreIndex | None = None) -> tuple[str, str]:
    """Corroboration → confidence, with the reasoning an examiner can repeat in court.

    1 independent source: Low; 2: Medium; 3 or more: High. A structural fact that is itself the
    proof (registry-only task, missing SD) counts as Medium on its own. One level lower when a
    source for this evidence item could not be read (a gap), because what is missing might explain it;
    a store that was simply not collected is no gap and lowers nothing. With ``stores`` known, a gap
    counts only when it is over this task's own records or over a store of task evidence read for its
    host (a missing time zone, say, changes no task's story).
    """
    sources = corroborating_sources(entity)
    level = 0 if len(sources) <= 1 else (1 if len(sources) == 2 else 2)
    if level == 0 and any(h.single_source_ok for h in hits):
        level = 1
    basis = f"{len(sources)} independent artifact(s) agree: {', '.join(sources) or 'none'}"
    related_gaps = gap_index(gaps).concerning(entity)  # indexed: gaps x tasks pairwise was quadratic
    if stores is not None and stores.stores:
        own = {r.provenance.location for r in (*entity.definitions, *entity.events, *entity.unix_jobs)}
        own |= {d.file.path for d in entity.definitions if d.file}
        over_stores = {id(g) for kind in {s.store for s in stores.stores}
                       for read in stores.for_host(entity.host, kind) for g in stores.covering_gaps(read)}
        related_gaps = [g for g in related_gaps if g.location in own or id(g) in over_stores]
    if related_gaps and level > 0:
        level -= 1
        basis += f"; lowered one level: {len(related_gaps)} unreadable item(s) in the same evidence"
    return CONFIDENCE_LEVELS[level], basis


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


def rule_technique(hit: Hit) -> str | None:
    """The technique a Sigma rule is about, from its own tags (an at.exe rule is at's sub-technique, a BITS
    or Run-key rule its own technique); ``None`` for checks, whose techniques are related ones (hiding...)."""
    if not hit.rule.startswith("sigma:") or not hit.techniques:
        return None
    ranked = sorted(hit.techniques, key=lambda t: (not t.startswith("T1053"), "." not in t, t))
    return ranked[0]


def _is_task(entity: Entity) -> bool:
    """A real task or job, not the holder of a Sigma match that names no task."""
    return bool(entity.definitions or entity.unix_jobs or entity.processes or not entity.key.startswith("sigma:"))


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
        confidence, basis = confidence_for(entity, hits, ctx.gaps, ctx.stores)
        kind_technique = technique_for(entity) if _is_task(entity) else None
        technique = rule_technique(top) or kind_technique or "T1053"
        techniques = sorted({technique, *([kind_technique] if kind_technique else []), *[t for h in hits for t in h.techniques]})
        title = top.title if len(hits) == 1 else f"{top.title} (+{len(hits) - 1} more: {', '.join(h.rule for h in hits[1:])})"
        found_in = sorted({e.evidence_host for e in entity.events if e.evidence_host})
        if found_in:  # another computer's log inside this evidence: said in the title, never merged silently
            title += f" [logged by {entity.host}, found in the evidence of {', '.join(found_in)}]"
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
                     "sources": entity.sources, **({"logged_by_other_computer": {"host": entity.host, "found_in": found_in}}
                                                   if found_in else {})},
        ))
    drafts.sort(key=lambda f: (-RISK_ORDER[f.risk_level], f.host or "", f.task.lower(), f.rule or ""))
    for seq, finding in enumerate(drafts, start=1):
        finding.hunt_id = f"TH-HUNTIN-{ctx.hunt_date}-{seq:03d}"
    return drafts
