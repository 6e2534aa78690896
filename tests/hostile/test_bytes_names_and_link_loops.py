"""Names that are not UTF-8 and links that loop.

A task file name on ext4 or in a directory collection is bytes; one that is not UTF-8 crashed the run
before the manifest (YAML refused the lone surrogate Python keeps for such a byte). It is now text with
the byte as ``\\xNN`` in every record, gap and output. A self-looping symbolic link in a collection's
Tasks folder dropped event-log discovery for every root (41 -> 13 events); it is now one gap for that
entry. Evidence: copies of the builder's WS-FIN-042 tree and KAPE zip with the hostile entry added.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile

import yaml

from tests.hostile.child_run import ONE_GB_MB, run_triage

TASKS = "Windows/System32/Tasks"
RAW_NAME = b"Sys\xffHealth"  # 0xff never occurs in UTF-8
SHOWN = "Sys\\xffHealth"


def test_task_file_name_that_is_not_utf8_is_escaped_text_in_every_output(windows_images, tmp_path):
    root = tmp_path / "evidence"
    shutil.copytree(windows_images["tree"], root, symlinks=True)
    os.rename(root / TASKS / "SysHealthMonitor", os.fsencode(root / TASKS) + b"/" + RAW_NAME)
    result = run_triage([root], tmp_path)

    assert result.code == 1 and result.peak_mb < ONE_GB_MB
    assert "Traceback" not in result.stderr
    entities = {e["task"]: e for e in map(json.loads, (result.case / "tasks.jsonl").read_text("utf-8").splitlines())}
    definition = next(d for d in entities[f"\\{SHOWN}"]["definitions"] if d["source"] == "task_xml")
    assert definition["provenance"]["location"] == f"sysvol/{TASKS}/{SHOWN}"
    assert definition["file"]["path"].endswith(f"{TASKS}/{SHOWN}")
    assert definition["actions"][0]["command"] == "cmd.exe"
    findings = json.loads((result.case / "findings.json").read_text("utf-8"))
    (finding,) = [f for f in findings if f["task"] == f"\\{SHOWN}"]
    rule = yaml.safe_load((result.case / "detections" / f"{finding['hunt_id']}_task-created-security.yml").read_text("utf-8"))
    assert rule["detection"]["selection"]["TaskName"] == f"\\{SHOWN}"
    for name in ("tasks.jsonl", "timeline.csv", "findings.md", "report.html", "manifest.json"):
        text = (result.case / name).read_bytes().decode("utf-8")  # every output is valid UTF-8
        assert "\udcff" not in text
    outputs = {o["file"] for o in result.manifest["outputs"]}
    assert {"tasks.jsonl", "findings.json", "detections/index.json"} <= outputs


def _add_loop(source: zipfile.ZipFile, out: zipfile.ZipFile, folder: str) -> None:
    for info in source.infolist():
        out.writestr(info, source.read(info))
    link = zipfile.ZipInfo(folder + "loop")
    link.create_system = 3  # Unix: the mode in external_attr is honoured
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    out.writestr(link, "loop")  # a link's data is its target: itself


def test_self_looping_link_in_a_zip_tasks_folder_is_one_gap_and_every_event_log_is_still_found(windows_images, tmp_path):
    looped = tmp_path / "kape-loop.zip"
    with zipfile.ZipFile(windows_images["kape_zip"]) as source, zipfile.ZipFile(looped, "w") as out:
        folder = next(i.filename for i in source.infolist() if "/System32/Tasks/" in i.filename).split("/Tasks/")[0] + "/Tasks/"
        _add_loop(source, out, folder)
    clean = run_triage([windows_images["kape_zip"]], tmp_path, "clean")
    result = run_triage([looped], tmp_path, "looped")

    assert result.code == 1 and result.peak_mb < ONE_GB_MB
    assert result.manifest["counts"]["events"] == clean.manifest["counts"]["events"] == 41
    assert [g for g in result.gaps() if g not in clean.gaps()] == [
        (f"sysvol/{TASKS}/loop", "symbolic link to 'loop', not followed")]


def test_self_looping_link_in_a_directory_collection_is_one_gap_and_every_event_log_is_still_found(windows_images, tmp_path):
    root = tmp_path / "kape"
    shutil.copytree(windows_images["kape_dir"], root, symlinks=True)
    (tasks,) = [p for p in root.rglob("Tasks") if p.parent.name == "System32"]
    (tasks / "loop").symlink_to("loop")
    clean = run_triage([windows_images["kape_dir"]], tmp_path, "clean")
    result = run_triage([root], tmp_path, "looped")

    assert result.code == 1
    assert result.manifest["counts"]["events"] == clean.manifest["counts"]["events"] == 41
    assert [g for g in result.gaps() if g not in clean.gaps()] == [
        (f"sysvol/{TASKS}/loop", "symbolic link to 'loop', not followed")]
