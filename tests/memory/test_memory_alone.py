"""A memory image given alone is a case of its own (issue 18): task-hosted processes become tasks with
findings, payloads decoded, task-creating command lines rebuilt, the host named from memory; with the
matching disk image the same processes join the disk's task. Every run is the real CLI on images the
builder makes (and the committed disk image)."""

from __future__ import annotations

import html
import json
import subprocess
import sys

import pytest

from test_images.memimage import DISK_TASK_GUID, WIN7_CRADLE, WIN7_HOSTNAME
from test_images.windows_tree import C2_URL, DOWNLOAD_CRADLE, ENCODED_PS_TASK, HOSTNAME
from tests.memory.conftest import ROOT

C2_IP = "203.0.113.47"


def _triage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "triage", *args, "--hunt-date", "20260101", "-q"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=900)


def _read_case(folder) -> dict:
    return {
        "findings": json.loads((folder / "findings.json").read_text()),
        "tasks": {t["task"]: t for t in map(json.loads, (folder / "tasks.jsonl").read_text().splitlines())},
        "timeline": [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()],
        "report": (folder / "report.html").read_text(),
        "manifest": (folder / "manifest.json").read_text(),
    }


@pytest.fixture(scope="module")
def alone(images, tmp_path_factory):
    """{"win10"|"win7": (completed process, case)} for `triage --memory IMAGE -o CASE`."""
    base = tmp_path_factory.mktemp("memory-alone")
    out = {}
    for name in ("win10", "win7"):
        built, case = images[name], base / name
        done = _triage("--memory", str(built["image"]), "--symbols", str(built["symbols"]), "-o", str(case))
        assert done.returncode == 0, done.stderr[-2000:]
        out[name] = (done, _read_case(case))
    return out


def _finding(case: dict, task: str) -> dict:
    return next(f for f in case["findings"] if f["task"] == task)


def _values(finding: dict, source_suffix: str) -> list[str]:
    return [e["value"] for e in finding["evidence"] if e["source"].endswith(source_suffix)]


def test_win10_taskhostw_cradle_is_a_high_finding_with_decoded_payload_and_ancestry(alone):
    done, case = alone["win10"]
    task = f"(running task) {DISK_TASK_GUID}"
    finding = _finding(case, task)
    assert finding["risk_level"] == "High" and finding["host"] == HOSTNAME
    assert finding["title"].startswith("A task process runs encoded PowerShell")
    assert _values(finding, "pid 7412: decoded -EncodedCommand") == [DOWNLOAD_CRADLE]
    assert _values(finding, "pid 7412: urls in the decoded command") == [C2_URL]
    assert _values(finding, "pid 7412: ancestry") == [
        "wininit.exe (524) > services.exe (668) > svchost.exe (1236) > taskhostw.exe (7400) > powershell.exe (7412)"]
    # the entity is a task in tasks.jsonl, the terminal table and the report, with its status
    entity = case["tasks"][task]
    assert entity["status"] == "running task not linked to a definition"
    assert entity["key"] == f"memory:{DISK_TASK_GUID.lower()}"
    assert sorted(p["pid"] for p in entity["processes"]) == [7400, 7412]
    assert task in done.stdout and "running task not linked to a definition" in done.stdout
    assert html.escape(DOWNLOAD_CRADLE) in case["report"]


def test_ioc_inside_the_decoded_payload_of_a_running_task_matches(images, tmp_path):
    iocs = tmp_path / "iocs.csv"
    iocs.write_text(f"type,value,comment\nip-dst,{C2_IP},C2 of the cradle\n")
    built = images["win10"]
    done = _triage("--memory", str(built["image"]), "--symbols", str(built["symbols"]), "--ioc", str(iocs),
                   "-o", str(tmp_path / "case"))
    assert done.returncode == 0, done.stderr[-2000:]
    finding = _finding(_read_case(tmp_path / "case"), f"(running task) {DISK_TASK_GUID}")
    matched = [e for e in finding["evidence"] if e["source"].startswith(f"IOC ip '{C2_IP}'")]
    assert [(e["location"], e["value"]) for e in matched] == [
        ("_EPROCESS at 0xc30a1f012080 (virtual) pid 7412 [process command line (decoded -EncodedCommand)]", DOWNLOAD_CRADLE)]


def test_win10_timeline_row_of_the_task_process_carries_the_decoded_command(alone):
    _done, case = alone["win10"]
    rows = [r for r in case["timeline"] if r.get("process_id") == 7412]
    assert [r["what"] for r in rows] == ["process started: powershell.exe (pid 7412)"]
    assert rows[0]["decoded_command"] == DOWNLOAD_CRADLE and rows[0]["utc"] == "2024-05-14T09:40:01Z"
    assert rows[0]["task"] == f"(running task) {DISK_TASK_GUID}"


def test_win7_taskeng_cradle_is_a_high_finding_and_the_schedule_host_comes_from_service_records(alone):
    done, case = alone["win7"]
    finding = _finding(case, "(running task) powershell.exe pid 2536")
    assert finding["risk_level"] == "High" and finding["host"] == WIN7_HOSTNAME
    assert _values(finding, "pid 2536: decoded -EncodedCommand") == [WIN7_CRADLE]
    assert _values(finding, "pid 2536: domains in the decoded command") == ["flash-update.example.net"]
    assert _values(finding, "pid 2536: ancestry") == [
        "wininit.exe (392) > services.exe (488) > svchost.exe (900) > taskeng.exe (2412) > powershell.exe (2536)"]
    host = next(p for p in case["tasks"]["\\AdobeFlashSync"]["processes"] if p["pid"] == 2520)
    assert host["ancestry"][-2:] == ["svchost.exe (900)", "taskeng.exe (2412)"]


@pytest.mark.parametrize("name, task, creator, seen_by, exited", [
    ("win10", "\\Microsoft\\Windows\\Maintenance\\SyncData", 6044, ["psscan"], True),
    ("win7", "\\AdobeFlashSync", 2000, ["psscan"], True),
])
def test_exited_schtasks_create_becomes_a_rebuilt_definition_judged_by_the_rules(alone, name, task, creator, seen_by, exited):
    _done, case = alone[name]
    rebuilt = [d for d in case["tasks"][task]["definitions"] if d["source"] == "command_line"]
    assert len(rebuilt) == 1
    definition = rebuilt[0]
    assert definition["details"]["creating_pid"] == creator and definition["details"]["seen_by"] == seen_by
    assert definition["details"]["process_exited"] is exited and definition["details"]["operation"] == "create"
    assert definition["details"]["created_by_command"].lower().startswith(('"c:\\windows\\system32\\schtasks.exe" /create',
                                                                            "schtasks.exe /create"))
    assert definition["provenance"]["artifact"] == "memory" and definition["user_id"] == "SYSTEM"
    finding = _finding(case, task)
    assert any(e["source"].startswith("command_line (") for e in finding["evidence"])  # a content rule judged it


def test_rebuilt_win10_definition_keeps_the_switches(alone):
    _done, case = alone["win10"]
    rebuilt = next(d for d in case["tasks"]["\\Microsoft\\Windows\\Maintenance\\SyncData"]["definitions"]
                   if d["source"] == "command_line")
    assert [(a["command"], a["arguments"]) for a in rebuilt["actions"]] == [
        ("rundll32.exe", "C:\\Users\\Public\\Libraries\\x.dll,StartW")]
    assert [(t["kind"], t["repetition_seconds"]) for t in rebuilt["triggers"]] == [("time", 1800)]
    # the exited schtasks.exe's own start and exit times, as read from its EPROCESS
    assert [(s["meaning"], s["utc"]) for s in rebuilt["stamps"]] == [
        ("process_created", "2024-05-14T09:12:12Z"), ("process_exited", "2024-05-14T09:12:13Z")]


def test_exited_register_scheduledtask_is_a_task_of_its_own_judged_by_the_rules(alone):
    _done, case = alone["win10"]
    entity = case["tasks"]["\\Microsoft\\EdgeSync"]
    assert entity["status"] == "rebuilt from a task-creating command line" and entity["sources"] == ["command_line"]
    (definition,) = entity["definitions"]
    assert definition["details"]["tool"] == "powershell" and definition["details"]["creating_pid"] == 7508
    assert [(a["command"], a["arguments"]) for a in definition["actions"]] == [("C:\\Users\\Public\\edge.exe", "--sync")]
    assert [t["kind"] for t in definition["triggers"]] == ["logon"] and definition["user_id"] == "SYSTEM"
    finding = _finding(case, "\\Microsoft\\EdgeSync")
    assert finding["risk_level"] in ("High", "Critical")
    assert all(e["source"].startswith("command_line (") for e in finding["evidence"])


@pytest.mark.parametrize("name, host, os_name", [("win10", HOSTNAME, "Windows 10 Pro (build 19041)"),
                                                 ("win7", WIN7_HOSTNAME, "Windows 7 Professional (build 7601)")])
def test_host_name_and_os_come_from_the_in_memory_registry(alone, name, host, os_name):
    done, case = alone[name]
    summary = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.startswith(("Host ", "OS ")))
    assert summary == {"Host": host, "OS": os_name}
    assert json.dumps(host) in case["manifest"]
    assert {t["host"] for t in case["tasks"].values()} == {host}


def test_with_the_disk_image_the_processes_join_the_disk_task_and_its_finding(images, committed_windows_e01, tmp_path):
    built = images["win10"]
    done = _triage(str(committed_windows_e01), "--memory", str(built["image"]), "--symbols", str(built["symbols"]),
                   "-o", str(tmp_path / "case"))
    # exit 1: the committed disk image holds two task files made unreadable on purpose (its gaps); memory adds none
    warnings = [line for line in done.stderr.splitlines() if line.startswith("triage: warning:")]
    assert done.returncode == 1 and len(warnings) == 2, done.stderr[-2000:]
    assert all("windows10.E01" in w and "task XML not parsed" in w for w in warnings)
    case = _read_case(tmp_path / "case")
    assert f"(running task) {DISK_TASK_GUID}" not in case["tasks"]
    entity = case["tasks"][ENCODED_PS_TASK]
    assert "memory" in entity["sources"] and "task_xml" in entity["sources"]
    processes = {p["pid"]: p for p in entity["processes"]}
    assert sorted(processes) == [7400, 7412]
    assert processes[7400]["link_reason"] == f"taskhostw.exe argument {DISK_TASK_GUID} is the task's GUID"
    assert processes[7412]["link_reason"] == "descendant of taskhostw.exe (7400), which runs the task"
    finding = _finding(case, ENCODED_PS_TASK)
    assert finding["risk_level"] in ("High", "Critical")
    assert _values(finding, "pid 7412: decoded -EncodedCommand") == [DOWNLOAD_CRADLE]
    assert any(e["source"].startswith(("task_xml", "taskcache")) for e in finding["evidence"])  # the disk's own evidence
