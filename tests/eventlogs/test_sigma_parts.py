"""Sigma evaluated log by log (one evaluator per worker, drained per log, absorbed in log order) finds
exactly what one evaluator finds over every log; events that give the same row all match."""

from __future__ import annotations

from triage.detect.sigma import EventRef, SigmaEvaluator, shipped_rules

from evtx_corpus import ATTACK, VELO, read

LOGS = [
    ATTACK / "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    ATTACK / "Execution/temp_scheduled_task_4698_4699.evtx",
    VELO / "TaskScheduler.evtx",
    ATTACK / "Lateral Movement/LM_ScheduledTask_ATSVC_target_host.evtx",
]


def _summary(matches):
    return [(m.rule_id, [(e.provenance.location, e.provenance.offset, e.time.utc) for e in m.events]) for m in matches]


def test_logs_evaluated_apart_and_absorbed_in_order_match_like_one_pass():
    rules = shipped_rules()
    whole = SigmaEvaluator(rules, batch_size=500)  # batches that straddle logs
    run = SigmaEvaluator(rules)
    worker = run.fresh()
    for path in LOGS:
        for event in read(path):
            whole.add(event.fields, EventRef(location=str(path)))
            worker.add(event.fields, EventRef(location=str(path)))
        run.absorb(worker.drain())
    expected = _summary(whole.matches())
    assert expected, "these logs hold events the shipped rules match"
    assert _summary(run.matches()) == expected
    assert run.events_seen == whole.events_seen == sum(len(read(p)) for p in LOGS)


def test_every_one_of_identical_events_is_matched():
    rules = shipped_rules()
    path = ATTACK / "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx"
    once, twice = SigmaEvaluator(rules), SigmaEvaluator(rules)
    for event in read(path):
        once.add(event.fields, EventRef(location="first"))
        twice.add(event.fields, EventRef(location="first"))
        twice.add(event.fields, EventRef(location="second"))  # the same row: stored once, matched for both
    single = {m.rule_id: len(m.events) for m in once.matches()}
    double = {m.rule_id: m.events for m in twice.matches()}
    assert single and {rule: len(events) for rule, events in double.items()} == {r: 2 * n for r, n in single.items()}
    for events in double.values():
        locations = [e.provenance.location for e in events]
        assert locations.count("first") == locations.count("second") == len(events) // 2
