"""One function from evidence to case: open → collect → correlate → judge. ``hunt`` calls it per item."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from triage import attack, intel, sources
from triage.collect import Context, Source
from triage.collect import binaries, eventlogs, memory, taskcache, unix_jobs, windows_tasks
from triage.collect.names import escape_record
from triage.correlate import correlate_stored, event_entity_key, link_task_processes, mark_other_computers
from triage.detect import Hit, JudgeContext, build_findings
from triage.detect import (
    baseline,
    content_rules,
    memory_checks,
    sigma,
    stealth,
    timeline_checks,
    tradecraft,
    unix_checks,
)
from triage.evidence import open_evidence
from triage.export.jsonl import parse_utc, task_line_parts
from triage.parsers.evtx_task import task_folders, unlink_folder_events
from triage.records import (
    Entity,
    EvidenceRef,
    Finding,
    HostInfo,
    TaskDefinition,
    TaskEvent,
    TaskProcess,
    TimelineEvent,
    UnixJob,
    to_dict,
)
from triage.store import CaseStore, StoredEvents, StoredTimeline, StoreError
from triage.stores import StoreIndex

COLLECTORS = (
    ("windows_tasks", windows_tasks.collect),
    ("taskcache", taskcache.collect),
    ("eventlogs", eventlogs.collect),
    ("unix_jobs", unix_jobs.collect),
    ("memory", memory.collect),
)

# On equal risk, a finding's title comes from the first check here: structural facts before content rules.
CHECKS = (
    stealth.check_stealth,
    memory_checks.check_memory,
    timeline_checks.check_timeline,
    baseline.check_baseline,
    unix_checks.check_unix,
    tradecraft.check_tradecraft,
    content_rules.check_content,
)


@dataclass
class Case:
    """Everything one run found, ready for the exports."""

    evidence: list[EvidenceRef] = field(default_factory=list)
    hosts: list[HostInfo] = field(default_factory=list)
    definitions: list[TaskDefinition] = field(default_factory=list)
    events: Sequence[TaskEvent] = field(default_factory=list)  # a run's: read from its store
    processes: list[TaskProcess] = field(default_factory=list)
    unix_jobs: list[UnixJob] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    timeline: Sequence[TimelineEvent] = field(default_factory=list)  # a run's: read from its store, in export order
    findings: list[Finding] = field(default_factory=list)
    sigma_report: dict = field(default_factory=dict)
    stores: list[dict] = field(default_factory=list)  # per host: stores read and not examined (triage.stores)
    started: str = ""
    finished: str = ""
    opened: int = 0
    store: CaseStore | None = None  # the run's events and timeline rows on disk (triage.store)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(evidence_paths: list[str], ctx: Context, *, memory_paths: list[str] = (), hunt_date: str | None = None) -> Case:
    store = CaseStore(ctx.options.get("work_dir"))
    case = Case(started=_now(), store=store)
    sources: list[Source] = []
    for path in evidence_paths:
        if (source := open_evidence(path, ctx)) is not None:
            sources.append(source)
    for path in memory_paths:
        if (source := open_evidence(path, ctx, memory=True)) is not None:
            sources.append(source)
    case.opened = len(sources)
    evaluator = sigma.SigmaEvaluator(_sigma_rules(ctx))
    ctx.options["sigma_evaluator"] = evaluator  # the event-log collector feeds it every event in its one pass
    for source in sources:
        case.evidence.append(source.ref)
        case.hosts.append(source.host)
        _collect(source, ctx, case, store)
        _stores_of(source, ctx, case)
        binaries.hash_action_binaries(source, ctx, case.definitions)
    evidence_hosts = _evidence_hosts(case)
    # A host named in one evidence item (the disk) names the records of the others (loose logs, memory).
    known_host = next((h.hostname for h in case.hosts if h.hostname), None)
    for record in (*case.definitions, *case.unix_jobs, *ctx.stores):
        if record.host is None:
            record.host = known_host
    folders = task_folders([*(d.task for d in case.definitions), *store.event_tasks()])

    def prepare(event: TaskEvent) -> None:
        """What the whole run must be seen for, applied to each event read back from the store."""
        mark_other_computers([event], evidence_hosts.get(event.provenance.evidence or ""))  # another computer's log
        if event.host is None:
            event.host = known_host
        unlink_folder_events([event], folders)  # Sysmon 11 on a task folder names no task

    store.prepare = prepare
    stores = StoreIndex(ctx.stores, ctx.gaps)
    if case.processes:  # disk events and definitions of the same host link memory processes to tasks
        link_task_processes(case.processes, store.events(event_id=129), case.definitions)
    judge = JudgeContext(hunt_date=hunt_date or datetime.now(timezone.utc).strftime("%Y%m%d"), gaps=ctx.gaps,
                         baseline=baseline.load_baseline(case.hosts), options=ctx.options, stores=stores)

    def judge_whole(entity: Entity) -> list[Hit]:
        """The checks, and the task's tasks.jsonl line, while its events and timeline are in memory."""
        hits = [hit for check in CHECKS for hit in check(entity, judge)]
        store.add_task_line(entity.key, task_line_parts(entity))
        return hits

    judged = correlate_stored(case.definitions, store, case.processes, case.unix_jobs, stores, judge_whole,
                              lambda row: parse_utc(row.utc) is not None)
    case.entities = [entity for entity, _ in judged]
    case.events, case.timeline = StoredEvents(store), StoredTimeline(store)
    judged = _add_sigma_hits(judged, evaluator, case)
    judged = intel.add_ioc_hits(judged, case.events, case.processes, ctx.options.get("iocs"))
    case.findings = build_findings(judged, judge)
    case.stores = stores.summary((h.hostname, _family(src)) for h, src in zip(case.hosts, sources))
    attack.annotate(case.findings)
    case.finished = _now()
    return case


def _sigma_rules(ctx: Context) -> sigma.RuleSet:
    """triage's own rules plus every folder given with ``--sigma``; unsupported rules are listed, not fatal."""
    rules = sigma.shipped_rules()
    extra = ctx.options.get("sigma") or []
    if extra:
        more = sigma.load_rules(extra)
        rules.loaded += more.loaded
        rules.unsupported += more.unsupported
        counts = ", ".join(f"{kind} {n}" for kind, n in more.unsupported_counts().items())
        ctx.progress(f"sigma: {len(more.loaded)} rule(s) loaded from {', '.join(map(str, extra))}, "
                     f"{len(more.unsupported)} unsupported{f' ({counts})' if counts else ''}")
    return rules


def _add_sigma_hits(judged: list, evaluator: sigma.SigmaEvaluator, case: Case) -> list:
    """A Sigma match on a task's events joins that task's finding; a match on no task is a finding of its own."""
    by_key = {entity.key: hits for entity, hits in judged}
    report = {"rules_loaded": len(evaluator.rules.loaded), "rules_unsupported": len(evaluator.rules.unsupported),
              "unsupported": [to_dict(u) for u in evaluator.rules.unsupported], "errors": evaluator.errors,
              "events_evaluated": evaluator.events_seen, "matches": []}
    evidence_hosts = _evidence_hosts(case)
    matches = evaluator.matches()
    for match in matches:  # another computer's events in this evidence join that computer's entities
        for event in match.events:
            mark_other_computers([event], evidence_hosts.get(event.provenance.evidence or ""))
    for match in matches:
        report["matches"].append({"rule_id": match.rule_id, "title": match.title, "level": match.level,
                                  "events": len(match.events)})
        for task in match.tasks or [None]:
            events = [e for e in match.events if (e.task == task if task else not e.task)]
            hit = Hit(rule=f"sigma:{match.rule_id}", title=f"Sigma: {match.title}", risk=match.risk,
                      techniques=match.techniques, evidence=match_evidence(match, events),
                      action=f"Review the {len(events)} matching event(s) of rule {match.title!r} ({match.rule_id}).")
            key = event_entity_key(events[0]) if task else f"sigma:{match.rule_id}"
            if key not in by_key:
                entity = Entity(key=key, task=task or f"(no task) {match.title}", kind="windows_task",
                                host=next((e.host for e in events if e.host), None), events=events)
                judged.append((entity, by_key.setdefault(key, [])))
            by_key[key].append(hit)
    case.sigma_report = report
    return judged


def match_evidence(match: sigma.SigmaMatch, events: list[TaskEvent]) -> list:
    keep = {id(e) for e in events}
    return [item for event, item in zip(match.events, match.evidence_items()) if id(event) in keep]


def _collect(source: Source, ctx: Context, case: Case, store: CaseStore) -> None:
    """Every record of one evidence item: events go to the store as they come, the few others to the case."""
    buckets: dict[type, Callable[[Any], None]] = {TaskDefinition: case.definitions.append, TaskEvent: store.add_event, TaskProcess: case.processes.append,
               UnixJob: case.unix_jobs.append}
    for name, collect in (*COLLECTORS, *sources.registered_collectors()):  # built-ins, then registered sources
        try:
            for record in collect(source, ctx):
                escape_record(record)  # non-UTF-8 names become \xNN text in every output
                if isinstance(record, TaskDefinition | TaskEvent | UnixJob) and record.host is None:
                    record.host = source.host.hostname
                buckets[type(record)](record)
        except StoreError:  # the run's own disk failed, not the collector: nothing more can be kept
            raise
        except Exception as exc:  # a collector bug must not lose the rest of the evidence
            ctx.gap(source.name, name, f"collector failed: {type(exc).__name__}: {exc}")


def _evidence_hosts(case: Case) -> dict[str, str | None]:
    """The host each evidence item is of: its own name, or, for loose logs and memory, the one machine the
    run's disks name (with disks of two machines, a loose log's host is not guessed)."""
    named = {h.hostname for h in case.hosts if h.hostname}
    only = next(iter(named)) if len(named) == 1 else None
    return {ref.path: host.hostname or only for ref, host in zip(case.evidence, case.hosts)}


def _stores_of(source: Source, ctx: Context, case: Case) -> None:
    """Stores the collectors cannot see from inside: the memory image, and the in-memory TaskCache."""
    if source.memory is None:
        return
    ctx.examined(source.name, "memory", str(source.memory), host=source.host.hostname)
    if any(d.source == "memory_taskcache" and d.provenance.evidence == source.name for d in case.definitions):
        ctx.examined(source.name, "memory_taskcache", str(source.memory), host=source.host.hostname)


def _family(source: Source) -> str | None:
    if source.memory is not None or source.evtx_files or (source.os_family or "").lower() == "windows":
        return "windows"
    return "unix" if source.os_family else None
