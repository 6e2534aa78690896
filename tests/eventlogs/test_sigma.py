"""Sigma with pySigma's SQLite backend: the 127 SigmaHQ task rules, their regression data, our own rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triage.detect.sigma import SHIPPED_RULES, EventRef, SigmaEvaluator, evaluate, load_rules, shipped_rules

from evtx_corpus import ATTACK, CORPUS, SIGMA, VELO, read

TASK_RULES = SIGMA / "rules-task-related"
REGRESSION = SIGMA / "regression_data"


@pytest.fixture(scope="module")
def sigmahq():
    return load_rules([TASK_RULES])


def _pairs(*paths: Path):
    return [(e.fields, EventRef(location=str(p))) for p in paths for e in read(p)]


def test_every_task_related_sigmahq_rule_loads_or_is_reported_with_a_reason(sigmahq):
    assert len(list(TASK_RULES.rglob("*.yml"))) == 127
    assert (len(sigmahq.loaded), len(sigmahq.unsupported)) == (104, 23)
    assert sigmahq.unsupported_counts() == {"logsource": 23}
    reasons = sorted({u.reason for u in sigmahq.unsupported})
    assert "logsource windows/file_access not evaluable: no Windows event log provides category file_access" in reasons
    non_windows = [u for u in sigmahq.unsupported if "Windows event logs only" in u.reason]
    assert len(non_windows) == 22
    assert sorted({u.reason.split(" ")[1].split("/")[0] for u in non_windows}) == ["azure", "gcp", "linux", "macos", "rpc_firewall", "zeek"]


def _regression_cases():
    for info in sorted(REGRESSION.rglob("info.yml")):
        data = yaml.safe_load(info.read_text())
        test = data["regression_tests_info"][0]
        yield data["rule_metadata"][0]["id"], CORPUS / "SigmaHQ__sigma" / test["path"], test["match_count"]


REGRESSION_CASES = list(_regression_cases())


@pytest.mark.usefixtures("corpus")
def test_regression_data_has_six_cases():
    assert len(REGRESSION_CASES) == 6


@pytest.mark.parametrize("rule_id,evtx,expected", REGRESSION_CASES, ids=[c[0][:8] for c in REGRESSION_CASES])
def test_sigmahq_regression_rule_fires_on_its_file_exactly_and_on_no_other(sigmahq, rule_id, evtx, expected):
    for _, other, _ in REGRESSION_CASES:
        fired = {m.rule_id: len(m.events) for m in evaluate(sigmahq, _pairs(other))}
        if other == evtx:
            assert fired.get(rule_id) == expected
        else:
            assert rule_id not in fired


@pytest.mark.usefixtures("corpus")
def test_match_is_findings_ready(sigmahq):
    evtx = next(path for rid, path, _ in REGRESSION_CASES if rid == "acd74772-5f88-45c7-956b-6a7b36c294d2")
    [match] = [m for m in evaluate(sigmahq, _pairs(evtx)) if m.rule_id == "acd74772-5f88-45c7-956b-6a7b36c294d2"]
    assert (match.title, match.level, match.risk) == ("Removal Of SD Value to Hide Schedule Task - Registry", "medium", "Medium")
    assert match.techniques == ["T1685"] and match.tasks  # the rule file tags attack.t1685 == ["\\MaliciousTask"]
    [item] = match.evidence_items()
    assert item.source == "Microsoft-Windows-Sysmon/Operational 12" and item.time == "2025-10-25T00:01:54.872810Z"
    assert item.location == f"{evtx} record 155709" and "TaskCache\\Tree\\MaliciousTask\\SD" in item.value


def test_shipped_sigmahq_rules_load_without_sigma_option_with_licence_and_attribution():
    """The 104 Windows SigmaHQ task rules ship inside the package (DRL 1.1): 14 + 104 load, none unsupported."""
    rules = shipped_rules()
    assert (len(rules.loaded), rules.unsupported) == (118, [])
    shipped = SHIPPED_RULES / "sigmahq"
    assert sum(1 for r in rules.loaded if r.path.startswith(str(shipped))) == 104
    assert (shipped / "LICENSE").read_bytes() == (TASK_RULES / "LICENSE").read_bytes()
    assert "8eaafff1f2845a696050e05e72ba1140ee190698" in (shipped / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for rule in rules.loaded:  # byte-identical copies of the pinned SigmaHQ files
        if rule.path.startswith(str(shipped)):
            assert Path(rule.path).read_bytes() == (TASK_RULES / Path(rule.path).relative_to(shipped)).read_bytes()


@pytest.mark.usefixtures("corpus")
def test_own_rules_all_load_and_fire_on_the_corpus_attacks():
    rules = load_rules(sorted(SHIPPED_RULES.glob("sigma_*.yml")))
    assert (len(rules.loaded), rules.unsupported) == (14, [])
    assert all(r.tags and r.level and r.rule_id.count("-") == 4 for r in rules.loaded)
    logs = sorted(CORPUS.rglob("*.evtx"))
    evaluator = SigmaEvaluator(rules, batch_size=500)  # several batches: results must not depend on batching
    for fields, ref in _pairs(*logs):
        evaluator.add(fields, ref)
    fired = {m.title: (len(m.events), m.tasks) for m in evaluator.matches()}
    assert evaluator.errors == {}
    assert fired == {
        "TaskCache Tree SD Value Deleted (Tarrask Hidden Task)": (1, ["\\MaliciousTask"]),
        "Scheduled Task Created or Updated to Run a LOLBin From a User-Writable Path": (3, ["\\CYAlyNSS", "\\LMST"]),
        "Scheduled Task Runs cmd /C With Output Redirected to Windows\\Temp (atexec Pattern)": (4, ["\\CYAlyNSS"]),
        "TaskCache Tree Index Value Deleted or Set to Zero": (1, ["\\MaliciousTask"]),
        "Legacy at.exe Schedules a Job": (1, []),
        # UACME 34 (SilentCleanup, %windir%) and byeintegrity5 (CDSSync, %SystemRoot%): both public UAC bypasses
        "User Environment Overrides windir or SystemRoot (Scheduled-Task UAC Bypass)": (2, []),
        "Non-System Process Starts a Stock Task Known as an Elevation Vector":
            (2, ["\\Microsoft\\Windows\\DiskCleanup\\SilentCleanup", "\\Microsoft\\Windows\\Windows Error Reporting\\QueueReporting"]),
        "Remote Access to the atsvc Named Pipe": (1, []),
        "Scheduled Task Created With the Hidden Setting": (3, ["\\CYAlyNSS", "\\LMST"]),
        "Scheduled Task Deleted": (6, ["\\CYAlyNSS", "\\FullPowersTask", "\\T1053_005_OnLogon", "\\T1053_005_OnStartup", "\\T1053_005_powershell"]),
    }


def test_builtin_hidden_task_updates_are_not_reported_as_hidden_tasks():
    noisy = ATTACK / "Credential Access/ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx"
    assert [m.title for m in evaluate(shipped_rules(), _pairs(noisy))] == []


def test_broken_rule_files_are_reported_not_raised(tmp_path):
    (tmp_path / "bad_yaml.yml").write_text("title: [unclosed\n")
    (tmp_path / "bad_condition.yml").write_text(
        "title: t\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: windows, service: security}\n"
        "detection: {sel: {EventID: 1}, condition: sel and and}\nlevel: low\n")
    (tmp_path / "no_logsource.yml").write_text(
        "title: n\nid: 22222222-2222-4222-8222-222222222222\nlogsource: {product: windows}\n"
        "detection: {sel: {EventID: 1}, condition: sel}\nlevel: low\n")
    rules = load_rules([tmp_path])
    assert rules.loaded == []
    assert [(Path(u.path).name, u.kind) for u in rules.unsupported] == [
        ("bad_condition.yml", "conversion_error"), ("bad_yaml.yml", "unreadable"), ("no_logsource.yml", "logsource")]


def test_keyword_rule_matches_anywhere_in_the_event(tmp_path):
    (tmp_path / "kw.yml").write_text(
        "title: keyword\nid: 33333333-3333-4333-8333-333333333333\nlogsource: {product: windows, service: taskscheduler}\n"
        "detection: {keywords: ['T1053_005_powershell'], condition: keywords}\nlevel: low\n")
    [match] = evaluate(load_rules([tmp_path]), _pairs(VELO / "TaskScheduler.evtx"))
    assert [e.event_id for e in match.events] == [106, 129, 100, 200, 110, 201, 102, 141]
