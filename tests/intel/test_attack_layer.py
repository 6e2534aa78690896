"""ATT&CK names on findings and the Navigator layer of the case folder.

The layer is checked against the Navigator layer format v4.5 as its specification documents it
(mitre-attack/attack-navigator ``layers/spec/v4.5/layerformat.md``: the property tables of the layer,
Version, Technique, Gradient, LegendItem, Metadata and Layout objects, required fields and value ranges).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from test_images import windows_tree as tree
from triage.attack import attack_data, navigator_layer
from triage.collect import Context
from triage.export import write_case

ROOT = Path(__file__).resolve().parents[2]


def _build_script():
    spec = importlib.util.spec_from_file_location("build_attack_subset", ROOT / "tools" / "build_attack_subset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_subset_holds_exactly_the_techniques_triage_can_emit():
    assert sorted(attack_data()["techniques"]) == _build_script().emitted_technique_ids()
    assert attack_data()["attack_version"] == "18.1"


def test_findings_carry_technique_sub_technique_and_tactic_names(plain_windows_case):
    findings = {f.task: f for f in plain_windows_case.findings}
    encoded = findings[tree.ENCODED_PS_TASK].details
    scheduled = next(a for a in encoded["attack"] if a["id"] == "T1053.005")
    assert scheduled == {
        "id": "T1053.005", "name": "Scheduled Task/Job: Scheduled Task", "technique": "T1053",
        "technique_name": "Scheduled Task/Job", "sub_technique": "T1053.005", "sub_technique_name": "Scheduled Task",
        "tactics": [{"id": "TA0002", "name": "Execution"}, {"id": "TA0003", "name": "Persistence"},
                    {"id": "TA0004", "name": "Privilege Escalation"}],
        "url": "https://attack.mitre.org/techniques/T1053/005"}
    names = {a["id"]: a["name"] for a in encoded["attack"]}
    assert names["T1027"] == "Obfuscated Files or Information"
    assert names["T1564"] == "Hide Artifacts"
    assert names["T1059.001"] == "Command and Scripting Interpreter: PowerShell"
    # the decoded -EncodedCommand is a download cradle: Command and Control too
    assert [t["name"] for t in encoded["tactics"]] == ["Execution", "Persistence", "Privilege Escalation", "Defense Evasion",
                                                      "Command and Control"]
    hidden = findings[r"\Microsoft\Windows\WinUpdate\WinUpdate"].details
    assert {a["id"]: a["name"] for a in hidden["attack"]}["T1070.009"] == "Indicator Removal: Clear Persistence"
    assert all(f.details["attack"] and f.details["tactics"] for f in plain_windows_case.findings)


def _check_layer_format_4_5(layer: dict) -> None:
    """Every rule of the v4.5 property tables that the layer uses."""
    assert isinstance(layer["name"], str) and layer["name"]
    assert layer["domain"] in ("enterprise-attack", "mobile-attack", "ics-attack")
    versions = layer["versions"]
    assert versions["layer"] == "4.5"
    assert tuple(map(int, versions["navigator"].split("."))) >= (4, 9, 0)
    assert isinstance(versions["attack"], str)
    assert isinstance(layer.get("description", ""), str)
    assert layer.get("sorting", 0) in (0, 1, 2, 3)
    assert isinstance(layer.get("hideDisabled", False), bool)
    layout = layer.get("layout", {})
    assert layout.get("layout", "side") in ("side", "flat", "mini")
    assert layout.get("aggregateFunction", "average") in ("average", "min", "max", "sum")
    assert layout.get("expandedSubtechniques", "none") in ("none", "all", "annotated")
    assert all(isinstance(layout.get(k, False), bool) for k in ("showID", "showName", "showAggregateScores", "countUnscored"))
    for technique in layer["techniques"]:
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", technique["techniqueID"])
        assert isinstance(technique.get("score", 0), (int, float))
        assert isinstance(technique.get("comment", ""), str)
        assert isinstance(technique.get("enabled", True), bool)
        assert isinstance(technique.get("showSubtechniques", False), bool)
        for item in technique.get("metadata", []):
            assert item == {"divider": True} or (isinstance(item["name"], str) and isinstance(item["value"], str))
    gradient = layer["gradient"]
    assert len(gradient["colors"]) >= 2 and all(re.fullmatch(r"#[0-9a-fA-F]{6}", c) for c in gradient["colors"])
    assert gradient["minValue"] < gradient["maxValue"]
    for item in layer.get("legendItems", []):
        assert isinstance(item["label"], str) and re.fullmatch(r"#[0-9a-fA-F]{6}", item["color"])
    for item in layer.get("metadata", []):
        assert isinstance(item["name"], str) and isinstance(item["value"], str)


def test_case_folder_layer_follows_the_navigator_layer_format(plain_windows_case, tmp_path):
    out = tmp_path / "case"
    write_case(plain_windows_case, out, Context(quiet=True), argv=["triage"])
    layer = json.loads((out / "attack-layer.json").read_text(encoding="utf-8"))
    _check_layer_format_4_5(layer)
    assert layer == navigator_layer(plain_windows_case.findings)
    assert layer["versions"] == {"attack": "18", "navigator": "5.2.0", "layer": "4.5"}
    by_id = {t["techniqueID"]: t for t in layer["techniques"]}
    assert set(by_id) <= set(attack_data()["techniques"])
    # scored by the worst finding carrying it: Critical 4 ... Low 1, comments naming every Hunt ID
    assert by_id["T1490"]["score"] == 4 and by_id["T1490"]["comment"] == "1 finding(s): TH-HUNTIN-20240314-003"
    assert "T1486" not in by_id  # no rule claims encryption from a word in a path (issue 19)
    assert by_id["T1027"]["score"] == 3 and by_id["T1027"]["comment"] == "1 finding(s): TH-HUNTIN-20240314-024"
    assert by_id["T1053.005"]["comment"].startswith(f"{len(plain_windows_case.findings)} finding(s): TH-HUNTIN-20240314-001, ")
    assert by_id["T1036"]["showSubtechniques"] is True
