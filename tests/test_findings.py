"""The correlator and the findings on the built Windows image: one finding per hunted scenario and
stealth case, nothing on stock tasks, stable Hunt IDs, one task's whole story."""

from __future__ import annotations

import json

import pytest

from test_images import windows_tree
from test_images.build import image_tasks
from triage.cli import main
from triage.collect import Context
from triage.detect import RISK_ORDER
from triage.run import run

HUNT_DATE = "20260101"


@pytest.fixture(scope="module")
def case(committed_windows_e01):
    return run([str(committed_windows_e01)], Context(quiet=True), hunt_date=HUNT_DATE)


def _finding(case, task):
    found = [f for f in case.findings if f.task == task]
    assert len(found) == 1, f"{task}: {len(found)} findings"
    return found[0]


def _rules(finding) -> set[str]:
    return {r["rule"] for r in finding.details["reasons"]}


# (task, rule that must be among the reasons, minimum risk) for the four hunted scenarios
SCENARIOS = [
    ("\\MicrosoftEdgeUpdateTaskMachineQA", "lolbin_from_user_path", "High"),  # beacon via rundll32
    ("\\SysHealthMonitor", "ransomware_actions", "Critical"),  # ransomware at boot
    ("\\Microsoft\\Windows\\UpdateOrchestrator\\USO_Health", "encoded_powershell", "High"),  # -enc every PT30M
    ("\\FinanceBackup", "insider_copy_to_share", "High"),  # insider copy to a share
]


@pytest.mark.parametrize("task,rule,risk", SCENARIOS)
def test_each_hunted_scenario_is_one_finding(case, task, rule, risk):
    finding = _finding(case, task)
    assert rule in _rules(finding)
    assert RISK_ORDER[finding.risk_level] >= RISK_ORDER[risk]
    assert finding.technique == "T1053.005"
    assert finding.host == windows_tree.HOSTNAME
    assert finding.hunt_id.startswith(f"TH-HUNTIN-{HUNT_DATE}-")
    # XML file and TaskCache entry agree: two independent sources
    assert finding.confidence in ("Medium", "High")
    assert any(e.location.endswith(task.replace("\\", "/")) for e in finding.evidence)


def test_encoded_powershell_task_repeats_every_30_minutes(case):
    finding = _finding(case, "\\Microsoft\\Windows\\UpdateOrchestrator\\USO_Health")
    assert {"short_repetition", "encoded_powershell"} <= _rules(finding)


def test_timestomped_beacon_and_late_xml_date_are_timeline_findings(case):
    beacon = _finding(case, "\\MicrosoftEdgeUpdateTaskMachineQA")
    assert "timestomped_task_file" in _rules(beacon)
    stomp = [e for e in beacon.evidence if "$SI created" in e.source or "$FN created" in e.source]
    assert {e.time[:10] for e in stomp} == {"2023-11-02", "2024-03-12"}
    insider = _finding(case, "\\FinanceBackup")
    assert "xml_date_after_file_creation" in _rules(insider)


# (task, stealth check) for the TaskCache stealth set planted by test_images/taskcache_scenarios.py
STEALTH = [
    ("\\Microsoft\\Windows\\WinUpdate\\WinUpdate", "taskcache_tree_without_sd"),
    ("\\Microsoft\\Windows\\Maintenance\\SvcHealthCheck", "taskcache_index_tampered"),  # Index 0
    ("\\Microsoft\\Windows\\Chkdsk\\SyncHealth", "taskcache_index_tampered"),  # Index deleted
    ("\\Microsoft\\Windows\\Servicing\\ComponentHealth", "taskcache_only_in_transaction_log"),
    ("\\Microsoft\\Office\\Office Feature Updates", "taskcache_differs_from_xml"),
    ("\\Microsoft\\Windows\\Maintenance\\TempCleanup", "task_file_without_registry"),
]


@pytest.mark.parametrize("task,check", STEALTH)
def test_each_stealth_case_is_one_finding(case, task, check):
    finding = _finding(case, task)
    assert check in _rules(finding), _rules(finding)
    assert RISK_ORDER[finding.risk_level] >= RISK_ORDER["High"]
    if check != "task_file_without_registry":
        assert any("TaskCache" in e.location for e in finding.evidence)


def test_ghost_task_is_critical_with_its_fingerprints(case):
    ghosts = [f for f in case.findings if any(r["rule"] == "taskcache_registry_only" for r in f.details["reasons"])]
    assert [f.task for f in ghosts] == ["\\OneDrive Standalone Sync Service"]
    assert ghosts[0].risk_level == "Critical"


def test_stock_tasks_raise_no_medium_or_higher_finding(case):
    stock = {t.name for t in windows_tree.stock_tasks()}
    loud = [(f.task, f.risk_level, f.title) for f in case.findings
            if f.task in stock and RISK_ORDER[f.risk_level] >= RISK_ORDER["Medium"]]
    assert loud == []


def test_every_task_file_of_the_image_is_an_entity(case):
    assert {t.name for t in image_tasks()} <= {e.task for e in case.entities}


def test_deleted_task_is_rebuilt_from_4698_with_its_action(case):
    entity = next(e for e in case.entities if e.task == "\\T1053_005_OnLogon")
    assert entity.status.startswith("deleted, rebuilt from 4698 at 2021-01-27T11:40:14")
    rebuilt = [d for d in entity.definitions if d.source == "evtx_4698"]
    assert rebuilt and rebuilt[0].actions[0].command == "cmd.exe"
    pid_rows = [r for r in entity.timeline if "129" in r.what]
    assert pid_rows and pid_rows[0].details["process_id"] > 0


def test_same_input_gives_the_same_findings_and_ids(committed_windows_e01, case):
    again = run([str(committed_windows_e01)], Context(quiet=True), hunt_date=HUNT_DATE)
    first = [(f.hunt_id, f.task, f.risk_level, f.confidence, f.title) for f in case.findings]
    assert first == [(f.hunt_id, f.task, f.risk_level, f.confidence, f.title) for f in again.findings]
    assert [f.hunt_id for f in case.findings] == [f"TH-HUNTIN-{HUNT_DATE}-{n:03d}" for n in range(1, len(first) + 1)]


def test_findings_json_has_the_hunt_report_keys(committed_windows_e01, tmp_path):
    main([str(committed_windows_e01), "-o", str(tmp_path), "--hunt-date", HUNT_DATE, "-q"])
    findings = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    keys = {"hunt_id", "technique", "host", "user", "task", "title", "risk_level", "confidence",
            "recommended_action", "evidence"}
    assert findings and all(keys <= set(f) for f in findings)
    assert all({"source", "location", "value"} <= set(e) for f in findings for e in f["evidence"])


def test_one_tasks_story_with_task_option(committed_windows_e01, capsys):
    code = main([str(committed_windows_e01), "--task", "\\Microsoft\\Windows\\WinUpdate\\WinUpdate",
                 "--hunt-date", HUNT_DATE, "-q"])
    out = capsys.readouterr().out
    assert code == 1  # the image's broken task files are gaps
    assert out.startswith("Task: \\Microsoft\\Windows\\WinUpdate\\WinUpdate")
    assert "Sources: task_xml, taskcache" in out
    assert "registry key last written" in out or "TaskCache" in out
    assert "TH-HUNTIN-20260101-" in out


def test_since_until_filter_the_timeline(committed_windows_e01, tmp_path):
    main([str(committed_windows_e01), "-o", str(tmp_path), "--hunt-date", HUNT_DATE, "-q",
          "--since", "2024-03-01T00:00:00Z", "--until", "2024-03-14T23:59:59Z"])
    rows = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and all("2024-03-01" <= r["datetime"][:10] <= "2024-03-14" for r in rows)


def test_real_windows10_task_folder_raises_only_the_apt_simulator_task(corpus, tmp_path):
    """The 202 real task files of a Windows 10 machine (DFIRArtifactMuseum APTSimulatorVM): only the
    APT simulator's GameOver (mimikatz) is Medium or higher; the stock tasks raise nothing."""
    import shutil

    tasks = corpus / "AndrewRathbun__DFIRArtifactMuseum/Windows/ScheduledTasks/Win10/APTSimulatorVM"
    shutil.copytree(tasks, tmp_path / "Windows" / "System32" / "Tasks")
    case = run([str(tmp_path)], Context(quiet=True), hunt_date=HUNT_DATE)
    assert len([d for d in case.definitions if d.source == "task_xml"]) == 202
    loud = [(f.task, f.risk_level) for f in case.findings if RISK_ORDER[f.risk_level] >= RISK_ORDER["Medium"]]
    assert loud == [("\\GameOver", "Critical")]
    assert "credential_dumping" in {r["rule"] for r in case.findings[0].details["reasons"]}


def test_sigma_folder_rules_are_counted_in_the_manifest(corpus, committed_windows_e01, tmp_path):
    """--sigma with the 127 task-related SigmaHQ rules: 104 load, 23 are listed as unsupported with a
    reason (non-Windows log sources and file_access); the 104 are the ones triage ships, so with triage's
    own 14 rules 118 run, each once."""
    rules = corpus / "SigmaHQ__sigma/rules-task-related"
    main([str(committed_windows_e01), "-o", str(tmp_path), "--hunt-date", HUNT_DATE, "-q", "--sigma", str(rules)])
    sigma = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["sigma"]
    assert (sigma["rules_loaded"], sigma["rules_unsupported"]) == (118, 23)
    assert all(u["reason"] for u in sigma["unsupported"])
    assert {m["title"] for m in sigma["matches"]} >= {"Scheduled Task Deleted"}
