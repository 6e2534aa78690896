"""Names an attacker chooses to break the examiner's screen or hide a task: newlines, right-to-left
overrides, path separators and ``..`` segments in task file names, NULs in XML values, in a 4698
TaskName and in a TaskCache ``Path`` value.

One directory collection holds them all (on Linux ``\\`` and a newline are legal in a file name; NUL
is not, so NUL is tested where the formats carry it): task files, a real Security.evtx from the corpus
whose 4698 TaskName was patched (CRCs recomputed), and a SOFTWARE hive built with hivex. The run is
``triage DIR -o CASE``: every gap is one stderr line, the terminal table shows no control character,
tasks.jsonl and the manifest keep the exact values, CSV/HTML/Markdown show them escaped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import struct
import unicodedata
import zlib
from pathlib import Path

import pytest

from test_images.build import build_hive
from test_images.taskcache_scenarios import TASKCACHE
from test_images.windows_tree import LAST_SHUTDOWN, FileTimes, PlantedHive, RegKey, sz
from triage.cli import EXIT_GAPS, main

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
SECURITY_TASKS_EVTX = CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/SecurityTasks.evtx"
TASK = """<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo><URI>{uri}</URI></RegistrationInfo>
  <Actions Context="Author"><Exec><Command>{command}</Command></Exec></Actions>
</Task>
"""
NEWLINE_NAME = "Line1\nLine2"
RLO_NAME = "Invoice\u202etxt.exe"  # shows as "Invoiceexe.txt" where bidi is honoured
BACKSLASH_NAME = "back\\slash"
DOTDOT_NAME = "..\\..\\Windows\\evil"
EVENT_TASK = "\\T1053\u202e005\x00powershell"  # record 3 of SecurityTasks.evtx was "\T1053_005_powershell"
TASKCACHE_PATH = "\\Hidden\x00Task\nTwo"
TASKCACHE_GUID = "{0F2C7E49-1D34-4C6B-9E51-7A3B8C2D4E5F}"
EVTX_CHUNK = 0x1000


def _task(uri: str, command: str) -> bytes:
    return TASK.format(uri=uri, command=command).encode("utf-16")


def _security_log_with_hostile_task_name() -> bytes:
    """SecurityTasks.evtx with record 3's TaskName rewritten in place (same length), chunk CRCs fixed."""
    data = bytearray(SECURITY_TASKS_EVTX.read_bytes())
    old, new = "\\T1053_005_powershell".encode("utf-16-le"), EVENT_TASK.encode("utf-16-le")
    at = data.find(old, 13952)  # record 3 starts at 13952, record 4 at 17592
    assert 13952 < at < 17592
    data[at:at + len(old)] = new
    free, = struct.unpack_from("<I", data, EVTX_CHUNK + 48)
    struct.pack_into("<I", data, EVTX_CHUNK + 52, zlib.crc32(bytes(data[EVTX_CHUNK + 512:EVTX_CHUNK + free])))
    header = bytes(data[EVTX_CHUNK:EVTX_CHUNK + 120] + data[EVTX_CHUNK + 128:EVTX_CHUNK + 512])
    struct.pack_into("<I", data, EVTX_CHUNK + 124, zlib.crc32(header))
    return bytes(data)


@pytest.fixture(scope="module")
def hostile_case(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("hostile-names")
    root = work / "evidence"
    tasks = root / "Windows/System32/Tasks"
    tasks.mkdir(parents=True)
    (tasks / NEWLINE_NAME).write_bytes(b"not xml at all")
    (tasks / RLO_NAME).write_bytes(_task(f"\\{RLO_NAME}", "calc.exe"))
    (tasks / BACKSLASH_NAME).write_bytes(_task(f"\\{BACKSLASH_NAME}", "calc.exe"))
    (tasks / DOTDOT_NAME).write_bytes(_task(f"\\{DOTDOT_NAME}", "calc.exe"))
    (tasks / "NulValue").write_bytes(_task("\\NulValue", "cmd.exe\x00 /c evil"))
    logs = root / "Windows/System32/winevt/Logs"
    logs.mkdir(parents=True)
    (logs / "Security.evtx").write_bytes(_security_log_with_hostile_task_name())
    software = PlantedHive("Windows/System32/config/SOFTWARE", r"\SystemRoot\System32\Config\SOFTWARE", "ROOT",
                           (RegKey(rf"{TASKCACHE}\Tasks\{TASKCACHE_GUID}", (sz("Path", TASKCACHE_PATH),)),),
                           FileTimes.at(LAST_SHUTDOWN))
    (root / "Windows/System32/config").mkdir(parents=True)
    (root / "Windows/System32/config/SOFTWARE").write_bytes(build_hive(software, work))
    return {"root": root, "case": work / "case"}


@pytest.fixture(scope="module")
def hostile_run(hostile_case) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-q", str(hostile_case["root"]), "-o", str(hostile_case["case"])])
    case = hostile_case["case"]
    return {"root": hostile_case["root"], "code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "case": case,
            "manifest": json.loads((case / "manifest.json").read_text(encoding="utf-8")),
            "tasks": [json.loads(line) for line in (case / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]}


def _invisible(text: str) -> set[str]:
    return {ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\n"}


def test_each_gap_is_one_stderr_line_with_the_newline_in_the_file_name_escaped(hostile_run):
    assert hostile_run["code"] == EXIT_GAPS
    lines = hostile_run["stderr"].splitlines()
    assert all(line.startswith("triage: warning: ") for line in lines)
    assert len(lines) == len(hostile_run["manifest"]["gaps"]) == 4
    prefix = f"triage: warning: {hostile_run['root']}: "
    assert [line[len(prefix):] for line in lines if "Tasks/" in line or "TaskCache" in line] == [
        "sysvol/Windows/System32/Tasks/Line1\\x0aLine2: task XML not parsed: malformed XML: syntax error: line 1, column 0",
        "sysvol/Windows/System32/Tasks/NulValue: partly decoded: NUL characters inside the text were removed",
        f"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks\\{TASKCACHE_GUID}: partly decoded: "
        "Path: text after an embedded NUL, hidden from Windows tools: \\Hidden\\x00Task Two",
    ]
    assert not _invisible(hostile_run["stderr"])


def test_manifest_gap_keeps_the_exact_file_name(hostile_run):
    locations = [g["location"] for g in hostile_run["manifest"]["gaps"]]
    assert f"sysvol/Windows/System32/Tasks/{NEWLINE_NAME}" in locations


def test_terminal_table_shows_no_control_or_bidi_character(hostile_run):
    stdout = hostile_run["stdout"]
    assert not _invisible(stdout)
    shown = {line.split()[0] for line in stdout.splitlines() if line.startswith("\\")}
    assert {"\\Line1?Line2", "\\Invoice?txt.exe", "\\T1053?005?powershell", "\\back\\slash", "\\..\\..\\Windows\\evil",
            "\\Hidden", "\\NulValue"} <= shown


def test_tasks_jsonl_keeps_every_hostile_name_exactly(hostile_run):
    by_task = {entity["task"]: entity for entity in hostile_run["tasks"]}
    assert {f"\\{NEWLINE_NAME}", f"\\{RLO_NAME}", f"\\{BACKSLASH_NAME}", f"\\{DOTDOT_NAME}", EVENT_TASK, "\\NulValue",
            "\\Hidden"} <= set(by_task)
    # a "\" inside a file name reads as a folder separator in the task path; the file's real name stays in its path
    (dotdot,) = by_task[f"\\{DOTDOT_NAME}"]["definitions"]
    assert dotdot["file"]["path"] == f"sysvol/Windows/System32/Tasks/{DOTDOT_NAME}"
    (nul_value,) = by_task["\\NulValue"]["definitions"]
    assert nul_value["actions"][0]["command"] == "cmd.exe /c evil"
    assert nul_value["errors"] == ["NUL characters inside the text were removed"]
    (created,) = [d for d in by_task[EVENT_TASK]["definitions"] if d["source"] == "evtx_4698"]
    assert created["task"] == EVENT_TASK and created["actions"][0]["command"] == "calc.exe"
    (cached,) = by_task["\\Hidden"]["definitions"]
    assert cached["errors"] == [f"Path: text after an embedded NUL, hidden from Windows tools: {TASKCACHE_PATH}"]
    assert cached["details"]["values"]["tasks"]["Path"]["hex"] == (TASKCACHE_PATH + "\0").encode("utf-16-le").hex()
    raw = (hostile_run["case"] / "tasks.jsonl").read_text(encoding="utf-8")
    assert "\\\\T1053\\u202e005\\u0000powershell" in raw and not _invisible(raw)


def test_csv_html_and_markdown_show_the_names_escaped(hostile_run):
    case = hostile_run["case"]
    with (case / "timeline.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert {len(row) for row in rows} == {len(rows[0])}  # no row broken by a newline in a name
    cells = {cell for row in rows for cell in row}
    assert "sysvol/Windows/System32/Tasks/Line1\\x0aLine2" in cells
    assert "sysvol/Windows/System32/Tasks/Invoice\\u202etxt.exe" in cells
    assert any(cell.startswith("\\T1053\\u202e005\\x00powershell: ") for cell in cells)
    for name in ("timeline.csv", "report.html", "findings.md"):
        text = (case / name).read_text(encoding="utf-8")
        assert not _invisible(text), name
        assert "Invoice\\u202etxt.exe" in text and "Line1\\x0aLine2" in text, name
    html = (case / "report.html").read_text(encoding="utf-8")
    assert "T1053\\u202e005\\x00powershell" in html and "\\Hidden\\x00Task Two" in html  # the gap line (whitespace collapsed)
