"""Detections out: the Sigma rules written for each finding load in pySigma, convert with every real
backend (Splunk, Kusto/Defender XDR, Elastic Lucene and ES|QL), and fire, in triage's own Sigma
engine, on the event logs of the finding they came from."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sigma.collection import SigmaCollection
from sigma.types import SigmaString

from tests.intel.conftest import SAMPLES, SIGMA_REGRESSION, VELOCIRAPTOR, triage_run
from test_images import windows_tree as tree
from triage.collect import Context
from triage.detect.sigma import load_rules
from triage.export import write_case
from triage.export.detections import RULE_NAMESPACE, backends, sigma_escape

BACKENDS = ("splunk", "kql", "lucene", "esql")


@pytest.fixture(scope="module")
def image_case_folder(plain_windows_case, tmp_path_factory):
    out = tmp_path_factory.mktemp("detections") / "case"
    write_case(plain_windows_case, out, Context(quiet=True), argv=["triage"])
    return out


def test_every_generated_rule_loads_in_pysigma_and_converts_with_each_backend(plain_windows_case, image_case_folder):
    detections = image_case_folder / "detections"
    index = json.loads((detections / "index.json").read_text(encoding="utf-8"))
    rule_files = sorted(detections.glob("*.yml"))
    windows = [f for f in plain_windows_case.findings if f.task.startswith("\\")]
    assert len(rule_files) == len(index["rules"]) == 167
    assert {r["hunt_id"] for r in index["rules"]} == {f.hunt_id for f in windows}
    for path in rule_files:
        converters = backends()  # fresh backend objects per rule: the written files owe nothing to earlier rules
        collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"))
        assert collection.errors == [] and len(collection.rules) == 1 and collection.rules[0].errors == []
        entry = next(r for r in index["rules"] if r["rule"] == path.name)
        for backend in BACKENDS:
            written = (detections / entry["conversions"][backend]["file"]).read_text(encoding="utf-8")
            assert written == "\n\n".join(converters[backend](collection.rules[0].to_dict())) + "\n"
    assert load_rules([detections]).unsupported == []


def test_beacon_task_rules_read_as_an_analyst_expects(plain_windows_case, image_case_folder):
    beacon = next(f for f in plain_windows_case.findings if f.task == tree.BEACON_TASK)
    stem = f"{beacon.hunt_id}_task-created-security"
    rule = SigmaCollection.from_yaml((image_case_folder / f"detections/{stem}.yml").read_text(encoding="utf-8")).rules[0]
    assert str(rule.id) == str(uuid.uuid5(RULE_NAMESPACE, f"{beacon.hunt_id}|task-created-security"))
    assert beacon.hunt_id in rule.description and rule.references == [f"triage finding {beacon.hunt_id} (findings.json of the case)"]
    assert rule.level.name == "HIGH" and "attack.t1053.005" in [str(t) for t in rule.tags]
    queries = {b: (image_case_folder / f"detections/{b}/{stem}.{ext}").read_text(encoding="utf-8")
               for b, ext in (("splunk", "spl"), ("kql", "kql"), ("lucene", "lucene"), ("esql", "esql"))}
    assert queries == {
        "splunk": 'source="WinEventLog:Security" EventCode=4698 TaskName="\\\\MicrosoftEdgeUpdateTaskMachineQA"\n',
        "kql": 'DeviceEvents\n| extend TaskName = tostring(parse_json(AdditionalFields).TaskName)\n'
               '| where ActionType =~ "ScheduledTaskCreated" and TaskName =~ "\\\\MicrosoftEdgeUpdateTaskMachineQA"\n',
        "lucene": 'winlog.channel:Security AND (event.code:4698 AND winlog.event_data.TaskName:\\\\MicrosoftEdgeUpdateTaskMachineQA)\n',
        "esql": 'from * metadata _id, _index, _version | where winlog.channel=="Security" and event.code=="4698" and '
                'winlog.event_data.TaskName=="\\\\MicrosoftEdgeUpdateTaskMachineQA"\n',
    }
    action = (image_case_folder / f"detections/splunk/{beacon.hunt_id}_action-1-process.spl").read_text(encoding="utf-8")
    assert action == ('ParentImage IN ("*\\\\svchost.exe", "*\\\\taskeng.exe") Image="*\\\\rundll32.exe" '
                      'CommandLine="*C:\\\\Users\\\\Public\\\\Libraries\\\\msedge_elf.dll,StartW*"\n')


def test_same_case_writes_the_same_detection_bytes(plain_windows_case, image_case_folder, tmp_path):
    again = tmp_path / "again"
    write_case(plain_windows_case, again, Context(quiet=True), argv=["triage"])
    first = {p.relative_to(image_case_folder): p.read_bytes() for p in (image_case_folder / "detections").rglob("*") if p.is_file()}
    second = {p.relative_to(again): p.read_bytes() for p in (again / "detections").rglob("*") if p.is_file()}
    assert first == second and len(first) == 167 * 5 + 1
    assert (again / "attack-layer.json").read_bytes() == (image_case_folder / "attack-layer.json").read_bytes()


@pytest.mark.parametrize("text", [r"\\10.1.2.3\drop\jsmith", "C:\\Users\\", r"a*b?c\*", r"\T1053_005_OnLogon"])
def test_sigma_escape_keeps_every_literal_character(text):
    value = SigmaString(sigma_escape(text))
    assert not value.contains_special() and "".join(value.s) == text


# (evidence, indicator lines, {task: kinds that must fire}) — what each corpus log can show live.
FIRING = {
    "velociraptor-atomic-t1053.005": (
        [VELOCIRAPTOR / "TaskScheduler.evtx", VELOCIRAPTOR / "SecurityTasks.evtx"], "",
        {task: {"task-created-security", "task-created-taskscheduler"}
         for task in (r"\T1053_005_OnLogon", r"\T1053_005_OnStartup", r"\T1053_005_powershell")}),
    "sysmon-schtasks-create": (
        [SAMPLES / "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx",
         SAMPLES / "AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx"],
        "text,MSOFFICE_\ntext,DataUsageHandlers\n",
        {r"\MSOFFICE_": {"task-create-command"}, r"\DataUsageHandlers": {"task-create-command"}}),
    "sysmon-taskcache-tree": (
        [SIGMA_REGRESSION / "registry_delete_schtasks_hide_task_via_index_value_removal/526cc8bc-1cdc-48ad-8b26-f19bff969cec.evtx",
         SIGMA_REGRESSION / "registry_delete_schtasks_hide_task_via_sd_value_removal/acd74772-5f88-45c7-956b-6a7b36c294d2.evtx"],
        "", {r"\MaliciousTask": {"taskcache-registry"}}),
}


@pytest.mark.parametrize("scenario", sorted(FIRING))
@pytest.mark.usefixtures("corpus")
def test_generated_rules_fire_on_the_event_logs_of_their_finding(scenario, tmp_path):
    evidence, indicator_lines, expected = FIRING[scenario]
    iocs = []
    if indicator_lines:
        iocs = [tmp_path / "iocs.csv"]
        iocs[0].write_text(indicator_lines, encoding="utf-8")
    case, ctx = triage_run(evidence, iocs)
    out = tmp_path / "case"
    write_case(case, out, ctx, argv=["triage"])
    index = json.loads((out / "detections/index.json").read_text(encoding="utf-8"))
    task_by_hunt_id = {f.hunt_id: f.task for f in case.findings}
    assert set(task_by_hunt_id.values()) >= set(expected)

    # triage's own engine (pySigma + SQLite backend) on the same logs, with the generated rules added
    rerun, _ = triage_run(evidence, sigma=[out / "detections"])
    assert rerun.sigma_report["rules_unsupported"] == 0
    fired = {m["rule_id"] for m in rerun.sigma_report["matches"]}
    rules_by_task = {}
    for rule in index["rules"]:
        rules_by_task.setdefault(task_by_hunt_id[rule["hunt_id"]], {})[rule["kind"]] = rule["id"]
    for task, kinds in expected.items():
        assert {kind for kind, rule_id in rules_by_task[task].items() if rule_id in fired} == kinds  # exactly these
        finding = next(f for f in rerun.findings if f.task == task)
        assert all(f"sigma:{rules_by_task[task][kind]}" in finding.rule.split(",") for kind in kinds)


@pytest.mark.usefixtures("corpus")
def test_rewriting_a_case_folder_leaves_no_rule_of_an_earlier_case(tmp_path):
    out = tmp_path / "case"
    earlier = triage_run(FIRING["sysmon-taskcache-tree"][0])[0]  # \MaliciousTask
    write_case(earlier, out, Context(quiet=True), argv=["triage"])
    assert "MaliciousTask" in (out / "detections/TH-HUNTIN-20240314-001_taskcache-registry.yml").read_text(encoding="utf-8")
    case, ctx = triage_run([VELOCIRAPTOR / "SecurityTasks.evtx"])
    write_case(case, out, ctx, argv=["triage"], force=True)  # --force: the earlier case is replaced whole
    index = json.loads((out / "detections/index.json").read_text(encoding="utf-8"))
    written = {p.relative_to(out / "detections").as_posix() for p in (out / "detections").rglob("*") if p.is_file()}
    expected = {"index.json"} | {r["rule"] for r in index["rules"]} | {
        c["file"] for r in index["rules"] for c in r["conversions"].values()}
    assert written == expected and len(index["rules"]) == 16  # 3 tasks: 4 rules each + 4 actions
    assert "MaliciousTask" not in "".join(p.read_text(encoding="utf-8") for p in (out / "detections").rglob("*.yml"))


def test_missing_siem_backends_are_said_once_with_the_exact_fix(tmp_path, committed_windows_e01):
    """Without the --no-deps SIEM backends (a plain `pip install`), the Sigma rules are still written, and
    index.json and one terminal line name the skipped conversions and the command that installs them."""
    ROOT = Path(__file__).resolve().parents[2]
    block = "; ".join(f"sys.modules['sigma.backends.{name}'] = None" for name in ("splunk", "kusto", "elasticsearch"))
    out = tmp_path / "case"
    run = subprocess.run([sys.executable, "-c", f"import sys; {block}; from triage.cli import main; "
                          f"sys.exit(main([{str(committed_windows_e01)!r}, '-o', {str(out)!r}, '-q']))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr  # the image's two unreadable task files, as always
    pins = [line for line in (ROOT / "triage/data/sigma-backends.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    fix = "python3 -m pip install --no-deps " + " ".join(shlex.quote(pin) for pin in pins)
    warnings = [line for line in run.stderr.splitlines() if "conversions skipped" in line]
    assert warnings == [f"triage: warning: detections/: esql, kql, lucene, splunk conversions skipped "
                        f"(SIEM backend packages not installed); fix: {fix}"]
    index = json.loads((out / "detections/index.json").read_text(encoding="utf-8"))
    assert index["skipped_conversions"]["backends"] == ["esql", "kql", "lucene", "splunk"]
    assert index["skipped_conversions"]["fix"] == fix
    assert index["rules"] and all(set(r["conversions"]) == set(BACKENDS) and
                                  all("not installed" in c["error"] for c in r["conversions"].values())
                                  for r in index["rules"])
    assert len(list((out / "detections").glob("*.yml"))) == len(index["rules"])
    assert not [p for p in (out / "detections").rglob("*") if p.suffix in (".spl", ".kql", ".lucene", ".esql")]


def test_installed_siem_backends_convert_everything_and_skip_nothing(image_case_folder):
    index = json.loads((image_case_folder / "detections/index.json").read_text(encoding="utf-8"))
    assert "skipped_conversions" not in index
    assert all(set(r["conversions"]) == set(BACKENDS) and all("file" in c for c in r["conversions"].values())
               for r in index["rules"])
