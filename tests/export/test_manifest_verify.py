"""manifest.json contents and ``triage verify``: a case folder verifies; any changed byte is reported."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from triage.cli import main as triage_main
from triage.collect import Context
from triage.export import write_case
from triage.export.casefolder import CaseFolderError
from triage.export.manifest import DEPENDENCIES, verify_main


def test_manifest_records_tool_command_examiner_and_dependencies(case_run):
    manifest = json.loads(case_run.text("manifest.json"))
    assert manifest["tool"] == {"name": "triage", "version": "0.1.0"}
    assert manifest["command_line"][:2] == ["triage", str(case_run.target)]
    assert manifest["examiner"] == "J. Doe" and manifest["case_id"] == "CASE-42"
    assert list(manifest["dependencies"]) == list(DEPENDENCIES)
    assert manifest["dependencies"]["dissect.target"].startswith("3.25.")
    assert manifest["dependencies"]["volatility3"] == "2.28.2"
    assert manifest["counts"]["timeline_rows"] == len(case_run.case.timeline)


def test_manifest_hashes_every_output_file(case_run):
    manifest = json.loads(case_run.text("manifest.json"))
    listed = {entry["file"]: entry for entry in manifest["outputs"]}
    assert set(listed) == {p.relative_to(case_run.out).as_posix() for p in case_run.out.rglob("*") if p.is_file()} - {"manifest.json", "manifest.sha256"}
    for name, entry in listed.items():
        data = (case_run.out / name).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_manifest_hashes_each_file_of_a_directory_evidence_item(case_run):
    manifest = json.loads(case_run.text("manifest.json"))
    [item] = manifest["evidence"]
    files = {entry["path"]: entry["sha256"] for entry in item["files"]}
    assert files == case_run.evidence_before
    assert "Windows/System32/Tasks/..\\..\\escape" in files


def test_manifest_lists_every_gap(case_run):
    manifest = json.loads(case_run.text("manifest.json"))
    assert len(manifest["gaps"]) == len(case_run.ctx.gaps) >= 1
    assert any("time zone not found" in gap["problem"] for gap in manifest["gaps"])


def test_verify_passes_on_an_untouched_case_folder(case_copy, capsys):
    assert verify_main([str(case_copy)]) == 0
    out = capsys.readouterr().out
    outputs = json.loads((case_copy / "manifest.json").read_text(encoding="utf-8"))["outputs"]
    assert f"{len(outputs)} output file(s), 206 evidence file(s) checked: all match" in out


def test_verify_through_the_cli_reports_one_changed_byte(case_copy, capsys):
    path = case_copy / "timeline.csv"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert triage_main(["verify", str(case_copy)]) == 1
    lines = capsys.readouterr().out.splitlines()
    changed = [line for line in lines if line.startswith(("CHANGED", "MISSING"))]
    assert len(changed) == 1 and changed[0].startswith("CHANGED output timeline.csv: SHA-256 was ")
    assert lines[-2].endswith("1 changed, missing or added")


def test_verify_reports_a_deleted_output(case_copy, capsys):
    (case_copy / "report.html").unlink()
    assert verify_main([str(case_copy)]) == 1
    assert "MISSING output report.html" in capsys.readouterr().out.splitlines()


def test_verify_reports_changed_and_removed_evidence(case_copy, case_run, tmp_path, capsys):
    evidence = tmp_path / "evidence"
    shutil.copytree(case_run.target, evidence)
    manifest_path = case_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["evidence"][0]["absolute_path"] = str(evidence)  # as if the examiner ran triage on this copy
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    (case_copy / "manifest.sha256").write_text(f"{hashlib.sha256(manifest_path.read_bytes()).hexdigest()}  manifest.json\n")
    assert verify_main([str(case_copy)]) == 0
    capsys.readouterr()
    game_over = evidence / "Windows" / "System32" / "Tasks" / "GameOver"
    before = hashlib.sha256(game_over.read_bytes()).hexdigest()
    game_over.write_bytes(game_over.read_bytes() + b" ")
    (evidence / "Windows" / "System32" / "Tasks" / "MicrosoftEdgeUpdateTaskMachineUA").unlink()
    assert verify_main([str(case_copy)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"CHANGED evidence {game_over}: SHA-256 was {before}, now {hashlib.sha256(game_over.read_bytes()).hexdigest()}" in out
    assert (f"MISSING evidence {evidence}/Windows/System32/Tasks/MicrosoftEdgeUpdateTaskMachineUA: "
            "no longer at its recorded path, not checked") in out


def test_verify_refuses_output_names_that_leave_the_case_folder(case_copy, capsys):
    manifest_path = case_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["outputs"].append({"file": "../outside", "sha256": "0" * 64})
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert verify_main([str(case_copy)]) == 1
    assert "REFUSED output '../outside': not a plain file name inside the case folder" in capsys.readouterr().out


def test_verify_without_a_manifest_is_bad_usage(tmp_path, capsys):
    assert verify_main([str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert verify_main([]) == 2


def test_hostile_task_names_are_in_the_manifest_only_as_escaped_json(case_run):
    raw = case_run.text("manifest.json")
    assert "\x1b" not in raw and "Windows/System32/Tasks/ansi\\u001b[2J\\u0007bell" in raw


def test_case_folder_inside_a_directory_evidence_item_is_refused(case_run):
    before = sorted(p.name for p in case_run.target.iterdir())
    with pytest.raises(CaseFolderError) as refused:
        write_case(case_run.case, case_run.target / "case", Context(quiet=True), argv=["triage"])
    assert str(refused.value) == (f"the output folder {case_run.target}/case is inside the evidence folder {case_run.target}: "
                                  "evidence is never written; choose another -o")
    assert sorted(p.name for p in case_run.target.iterdir()) == before
