"""The event-log collector on loose logs, a folder of logs and a collection opened by dissect."""

from __future__ import annotations

import shutil
import pytest

from triage.collect import Context
from triage.collect.eventlogs import collect
from triage.detect.sigma import SigmaEvaluator, shipped_rules
from triage.evidence import open_evidence

from evtx_corpus import ATTACK, VELO


@pytest.mark.usefixtures("corpus")
def test_loose_evtx_evidence_gives_task_events_with_its_hash(capsys):
    ctx = Context(quiet=True)
    source = open_evidence(str(VELO / "SecurityTasks.evtx"), ctx)
    events = list(collect(source, ctx))
    assert [e.event_id for e in events] == [4698, 4698, 4698, 4702, 4699, 4699, 4701, 4699]
    assert events[0].provenance.evidence_sha256 == "7796dc86eb244ed704aeee7078df25e9c6e482cc2bb77d22ad77c72dd351d617"
    assert events[0].provenance.location == str(VELO / "SecurityTasks.evtx")
    assert ctx.gaps == [] and capsys.readouterr().err == ""


def test_folder_of_logs_with_a_fake_one_keeps_the_good_ones_and_reports_one_line(tmp_path, capsys):
    shutil.copy(VELO / "TaskScheduler.evtx", tmp_path / "TaskScheduler.evtx")
    (tmp_path / "Security.evtx").write_bytes(b"this is a text file, not an event log\n" * 200)
    ctx = Context(quiet=True)
    events = list(collect(open_evidence(str(tmp_path), ctx), ctx))
    assert len(events) == 20
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"triage: warning: {tmp_path}: {tmp_path / 'Security.evtx'} (file header): "
                   "not an EVTX file: no ElfFile signature and no event chunk at offset 0x1000"]
    assert "Traceback" not in "".join(err)


def test_collection_logs_are_found_in_winevt_and_anywhere_else_once(tmp_path):
    logs = tmp_path / "C" / "Windows" / "System32" / "winevt" / "Logs"
    logs.mkdir(parents=True)
    shutil.copy(VELO / "TaskScheduler.evtx", logs / "Microsoft-Windows-TaskScheduler%4Operational.evtx")
    elsewhere = tmp_path / "C" / "Users" / "analyst"
    elsewhere.mkdir(parents=True)
    shutil.copy(VELO / "SecurityTasks.evtx", elsewhere / "Security.evtx")
    ctx = Context(quiet=True)
    source = open_evidence(str(tmp_path), ctx)
    assert source.target is not None
    events = list(collect(source, ctx))
    assert len(events) == 28  # 20 + 8, each log read once although dissect shows it under c: and sysvol
    assert sorted({e.provenance.location for e in events}) == [
        "/c:/Users/analyst/Security.evtx", "/c:/Windows/System32/winevt/Logs/Microsoft-Windows-TaskScheduler%4Operational.evtx"]


def test_collector_feeds_every_event_to_sigma_in_the_same_pass(tmp_path):
    shutil.copy(ATTACK / "Lateral Movement/LM_ScheduledTask_ATSVC_target_host.evtx", tmp_path / "a.evtx")
    ctx = Context(quiet=True)
    evaluator = SigmaEvaluator(shipped_rules())
    ctx.options["sigma_evaluator"] = evaluator
    events = list(collect(open_evidence(str(tmp_path / "a.evtx"), ctx), ctx))
    assert len(events) == 3 and evaluator.events_seen == 34
    assert [m.title for m in evaluator.matches()] == [
        "Scheduled Task Created or Updated to Run a LOLBin From a User-Writable Path",
        "Scheduled Task Runs cmd /C With Output Redirected to Windows\\Temp (atexec Pattern)",
        "Remote Access to the atsvc Named Pipe",
        "Scheduled Task Created With the Hidden Setting",
        "Scheduled Task Deletion",  # SigmaHQ win_security_scheduled_task_deletion, shipped since issue 19
        "Scheduled Task Deleted",
    ]
