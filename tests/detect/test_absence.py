"""Absence needs a look: a claim that something is missing (no definition, no task file) stands only on a
store that was read for that host with no gap over it. Real public logs through the real collectors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dissect.target import Target

from test_images import taskcache_scenarios as scenarios
from test_images.windows_tree import all_tasks
from triage.collect import Context, Source, eventlogs, taskcache, windows_tasks
from triage.correlate import correlate
from triage.detect import (
    Hit,
    JudgeContext,
    build_findings,
    corroborating_sources,
    rule_technique,
)
from triage.detect.baseline import load_baseline
from triage.detect.timeline_checks import check_timeline
from triage.records import EvidenceRef, HostInfo, TaskDefinition, TaskEvent
from triage.run import run
from triage.stores import StoreIndex, summary_lines

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
BELKASOFT = (CORPUS / "AndrewRathbun__DFIRArtifactMuseum/Windows/EventLogs/Win10/BelkasoftCTF_InsiderThreat/"
             "BelkasoftCTF_InsiderThreat.7z.extracted/Microsoft-Windows-TaskScheduler%4Operational.evtx")
RE_DEV_TASKS = CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/TaskScheduler.evtx"
RE_DEV_SECURITY = CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/SecurityTasks.evtx"
STOCK = r"\Microsoft\Windows\Wininet\CacheTask"

needs_corpus = pytest.mark.skipif(not BELKASOFT.exists(), reason="../shared/corpus not present")


@needs_corpus
def test_real_taskscheduler_log_alone_claims_no_missing_definition():
    case = run([str(BELKASOFT)], Context(quiet=True), hunt_date="20260101")
    assert [f for f in case.findings if "runs_without_definition" in (f.rule or "")] == []
    [cache_task] = [e for e in case.entities if e.task == STOCK]
    assert cache_task.status == ("known from events only; definition not examined: task folders (System32\\Tasks, "
                                 "Windows\\Tasks) not examined (only event logs given)")
    [host] = [h for h in case.stores if h["read"]]
    assert host["host"] == "DESKTOP-23PS6ES.praivacymatrix.com"
    assert [(r["store"], r["channel"], r["records"]) for r in host["read"]] == [
        ("eventlog", "Microsoft-Windows-TaskScheduler/Operational", 3851)]  # triage's reader; python-evtx saw 3751
    assert [m["store"] for m in host["not_examined"]] == ["task_files", "taskcache"]
    assert summary_lines([host]) == [(
        "DESKTOP-23PS6ES.praivacymatrix.com: read event logs (Microsoft-Windows-TaskScheduler/Operational); "
        "not examined: task folders (System32\\Tasks, Windows\\Tasks), TaskCache (SOFTWARE hive)")]


@pytest.fixture(scope="module")
def re_dev_disk(tmp_path_factory):
    """A machine called RE-Dev whose task folder and SOFTWARE hive hold the test tasks, not the atomic ones."""
    work = tmp_path_factory.mktemp("absence")
    tasks = sorted(all_tasks(), key=lambda t: t.name.lower())
    hive = scenarios.software_hive(tasks, work / "build")
    root = work / "evidence"
    (root / "Windows" / "System32" / "config").mkdir(parents=True)
    (root / "Windows" / "System32" / "config" / "SOFTWARE").write_bytes(hive)
    for task in tasks:
        path = root / task.file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(task.data)
        os.utime(path, (task.times.accessed.timestamp(), task.times.modified.timestamp()))
    return root


def _judge(sources: list[Source]):
    ctx = Context(quiet=True)
    records = []
    for source in sources:
        for module in (windows_tasks, taskcache, eventlogs):
            records += list(module.collect(source, ctx))
    definitions = [r for r in records if isinstance(r, TaskDefinition)]
    events = [r for r in records if isinstance(r, TaskEvent)]
    stores = StoreIndex(ctx.stores, ctx.gaps)
    entities, _ = correlate(definitions, events, [], [], stores)
    judge = JudgeContext(hunt_date="20260101", gaps=ctx.gaps, baseline=load_baseline(), stores=stores)
    return {e.task: e for e in entities}, judge


def _disk(root: Path) -> Source:
    return Source(ref=EvidenceRef(path=str(root), kind="dir"), target=Target.open(root), os_family="windows",
                  host=HostInfo(hostname="RE-Dev"))


def _logs(*paths: Path) -> Source:
    return Source(ref=EvidenceRef(path=str(paths[0]), kind="evtx"), evtx_files=list(paths))


@needs_corpus
def test_deleted_task_is_high_when_the_same_hosts_task_folder_and_taskcache_were_read(re_dev_disk):
    entities, judge = _judge([_disk(re_dev_disk), _logs(RE_DEV_TASKS)])
    [hit] = check_timeline(entities[r"\T1053_005_OnLogon"], judge)
    assert (hit.rule, hit.risk) == ("runs_without_definition", "High")
    assert hit.title.startswith("Task ran and was then deleted")
    named = [(e.source, e.location) for e in hit.evidence if e.source.startswith("store examined")]
    assert named == [
        ("store examined: task folders (System32\\Tasks, Windows\\Tasks)", "sysvol/Windows/System32/Tasks"),
        ("store examined: TaskCache (SOFTWARE hive)", "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache"),
    ]


@needs_corpus
def test_same_log_without_the_disk_gives_no_absence_finding():
    entities, judge = _judge([_logs(RE_DEV_TASKS)])
    assert check_timeline(entities[r"\T1053_005_OnLogon"], judge) == []
    assert "definition not examined" in entities[r"\T1053_005_OnLogon"].status


@needs_corpus
def test_a_gap_over_the_task_folder_withdraws_the_claim(re_dev_disk):
    entities, judge = _judge([_disk(re_dev_disk), _logs(RE_DEV_TASKS)])
    from triage.records import Gap

    judge.stores.gaps.append(Gap(evidence=str(re_dev_disk), location="sysvol/Windows/System32/Tasks",
                                 problem="folder not listable: OSError"))
    assert check_timeline(entities[r"\T1053_005_OnLogon"], judge) == []


@needs_corpus
def test_confidence_counts_logs_not_event_ids():
    entities, _ = _judge([_logs(RE_DEV_TASKS, RE_DEV_SECURITY)])
    logon = entities[r"\T1053_005_OnLogon"]
    # 106, 140, 129, 100, 200, 110, 201, 102, 141 of one log and 4698/4702/4699 of another: two artifacts
    assert corroborating_sources(logon) == ["Security log", "TaskScheduler/Operational log"]
    alone, _ = _judge([_logs(RE_DEV_TASKS)])
    assert corroborating_sources(alone[r"\T1053_005_OnLogon"]) == ["TaskScheduler/Operational log"]


def test_sigma_finding_takes_its_rules_technique():
    at_rule = Hit(rule="sigma:at", title="Sigma: at.exe", risk="Medium", techniques=["T1053.002"])
    bits = Hit(rule="sigma:bits", title="Sigma: BITS job", risk="Medium", techniques=["T1197"])
    run_key = Hit(rule="sigma:run", title="Sigma: Run key", risk="Medium", techniques=["T1112", "T1547.001"])
    hidden = Hit(rule="task_hidden_flag", title="hidden", risk="Medium", techniques=["T1564"])
    assert [rule_technique(h) for h in (at_rule, bits, run_key, hidden)] == ["T1053.002", "T1197", "T1547.001", None]
    from triage.records import Entity

    orphan = Entity(key="sigma:bits", task="(no task) Sigma: BITS job", kind="windows_task", host="H")
    task = Entity(key=r"\t", task=r"\T", kind="windows_task", host="H")
    ctx = JudgeContext(hunt_date="20260101")
    [f_orphan, f_task] = build_findings([(orphan, [bits]), (task, [hidden])], ctx)
    assert (f_orphan.technique, f_orphan.techniques) == ("T1197", ["T1197"])
    assert (f_task.technique, f_task.techniques) == ("T1053.005", ["T1053.005", "T1564"])


@needs_corpus
def test_another_computers_log_inside_an_image_is_flagged_and_kept_apart(committed_windows_e01):
    case = run([str(committed_windows_e01)], Context(quiet=True), hunt_date="20260101")
    foreign = [e for e in case.entities if e.key.endswith("@re-dev")]
    assert sorted(e.task for e in foreign) == [r"\T1053_005_OnLogon", r"\T1053_005_OnStartup", r"\T1053_005_powershell"]
    assert all(e.host == "RE-Dev" and e.status.endswith("logged by RE-Dev, found in the evidence of WS-FIN-042")
               for e in foreign)
    flagged = [f for f in case.findings if f.task.startswith(r"\T1053_005")]
    assert len(flagged) == 3
    assert all(f.host == "RE-Dev" and f.details["logged_by_other_computer"] == {"host": "RE-Dev", "found_in": ["WS-FIN-042"]}
               and f.title.endswith("[logged by RE-Dev, found in the evidence of WS-FIN-042]") for f in flagged)


def test_a_store_not_collected_is_no_gap_and_lowers_no_confidence(re_dev_disk, tmp_path):
    ctx = Context(quiet=True)
    case = run([str(re_dev_disk)], ctx, hunt_date="20260101")
    # no SYSTEM hive was collected: the time zone is unknown (said once), which changes no task's story
    assert [g.location for g in ctx.gaps if "/Tasks/" not in g.location] == [
        "HKLM\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation"]  # the rest: the two broken task files
    [beacon] = [f for f in case.findings if f.task == r"\Microsoft\Windows\UpdateOrchestrator\USO_Health"]
    assert (beacon.confidence, beacon.confidence_basis) == ("Medium", "2 independent artifact(s) agree: TaskCache, task file")
    # the same task folder without any SOFTWARE hive: TaskCache is "not examined", not a gap
    folder_only = tmp_path / "folder-only"
    shutil.copytree(re_dev_disk / "Windows" / "System32" / "Tasks", folder_only / "Windows" / "System32" / "Tasks")
    ctx = Context(quiet=True)
    case = run([str(folder_only)], ctx, hunt_date="20260101")
    assert not [g for g in ctx.gaps if "TaskCache" in g.location]
    [host] = case.stores
    assert [m["store"] for m in host["not_examined"]] == ["taskcache", "eventlog"]
    assert not [f for f in case.findings if "task_file_without_registry" in (f.rule or "")]


def test_a_gap_over_the_hive_lowers_confidence(re_dev_disk):
    entities, judge = _judge([_disk(re_dev_disk)])
    from triage.detect import confidence_for
    from triage.records import Gap

    task = entities[r"\Microsoft\Windows\UpdateOrchestrator\USO_Health"]
    assert confidence_for(task, [], judge.gaps, judge.stores)[0] == "Medium"
    hive = judge.stores.for_host("RE-Dev", "taskcache")[0].files[0]
    damaged = [*judge.gaps, Gap(evidence=str(re_dev_disk), location=hive, problem="hive bin at 0x2000 unreadable")]
    level, basis = confidence_for(task, [], damaged, StoreIndex(judge.stores.stores, damaged))
    assert (level, basis.split("; ")[1]) == ("Low", "lowered one level: 1 unreadable item(s) in the same evidence")


@needs_corpus
def test_terminal_manifest_and_report_say_what_was_read_per_host(tmp_path):
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "triage", str(RE_DEV_TASKS), "-o", str(tmp_path / "case"),
                          "--hunt-date", "20260101"], cwd=root, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    line = ("RE-Dev: read event logs (Microsoft-Windows-TaskScheduler/Operational); not examined: "
            "task folders (System32\\Tasks, Windows\\Tasks), TaskCache (SOFTWARE hive)")
    assert f"  - {line}" in out.stdout.splitlines()
    manifest = json.loads((tmp_path / "case" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stores_examined"] == [{
        "host": "RE-Dev",
        "read": [{"store": "eventlog", "location": str(RE_DEV_TASKS), "evidence": str(RE_DEV_TASKS),
                  "channel": "Microsoft-Windows-TaskScheduler/Operational", "records": 20}],
        "not_examined": [{"store": "task_files", "label": "task folders (System32\\Tasks, Windows\\Tasks)"},
                         {"store": "taskcache", "label": "TaskCache (SOFTWARE hive)"}]}]
    report = (tmp_path / "case" / "report.html").read_text(encoding="utf-8")
    assert "<h3>Stores examined</h3><ul><li>RE-Dev: read event logs" in report


@needs_corpus
def test_a_loose_log_of_another_computer_given_with_a_disk_is_kept_apart(committed_windows_e01):
    # the disk is WS-FIN-042; the Belkasoft log was written by DESKTOP-23PS6ES: its tasks are that machine's
    case = run([str(committed_windows_e01), str(BELKASOFT)], Context(quiet=True), hunt_date="20260101")
    [cache_task] = [e for e in case.entities if e.task == STOCK]
    assert (cache_task.key, cache_task.host) == (r"\microsoft\windows\wininet\cachetask@desktop-23ps6es",
                                                 "DESKTOP-23PS6ES.praivacymatrix.com")
    assert cache_task.status.endswith("logged by DESKTOP-23PS6ES.praivacymatrix.com, found in the evidence of WS-FIN-042")
    # WS-FIN-042's task folder and TaskCache say nothing about another machine's tasks: no absence finding
    assert [f for f in case.findings if "runs_without_definition" in (f.rule or "")] == []
    assert {h["host"] for h in case.stores} == {"WS-FIN-042", "RE-Dev", "DESKTOP-23PS6ES.praivacymatrix.com"}


@needs_corpus
def test_a_scheduler_process_with_no_registered_task_needs_a_registry_that_was_read(re_dev_disk):
    from triage.detect.memory_checks import check_memory
    from triage.records import Entity, Provenance, TaskProcess

    process = TaskProcess(pid=7016, ppid=1204, name="svc.exe", flags=["task_not_in_registry"],
                          command_line=r"C:\Users\Public\svc.exe", provenance=Provenance(artifact="memory", location="mem.raw"))
    orphan = Entity(key="memory:svc.exe:7016", task="(unregistered task) svc.exe pid 7016", kind="windows_task",
                    host=None, processes=[process])
    absence = "memory_process_task_not_in_registry"
    _, logs_only = _judge([_logs(RE_DEV_TASKS)])
    without_registry = check_memory(orphan, logs_only)
    # the content rules still judge what the process runs; only the absence claim waits for a registry read
    assert [h.rule for h in without_registry] == ["binary_in_user_path (memory process)"]
    _, with_disk = _judge([_disk(re_dev_disk), _logs(RE_DEV_TASKS)])
    with_registry = check_memory(orphan, with_disk)
    assert [h.rule for h in with_registry if h.rule != absence] == [h.rule for h in without_registry]
    [hit] = [h for h in with_registry if h.rule == absence]
    assert (hit.rule, hit.risk) == ("memory_process_task_not_in_registry", "High")
    assert [(e.source, e.value) for e in hit.evidence if e.source.startswith("store examined")] == [
        ("store examined: TaskCache (SOFTWARE hive)", "read for host RE-Dev; no task matches this process")]
