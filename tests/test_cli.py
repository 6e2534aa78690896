"""End to end: the `triage` command on every form of the built Windows image, through real dissect."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_images import windows_tree
from test_images.build import image_tasks
from triage.cli import main
from triage.collect import Context
from triage.run import run
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

ROOT = Path(__file__).resolve().parents[1]
TASKSCHEDULER_EVTX = CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/TaskScheduler.evtx"
DISK_SOURCES = ("task_xml", "job", "gpp")


def _planted_task_paths() -> set[str]:
    """Every task file the builder planted: XML (broken ones too: they are kept, with errors) and .job files."""
    xml = {t.name for t in image_tasks()}
    jobs = {"\\" + j.name[:-4] for j in windows_tree.at_jobs()}
    return xml | jobs


def _disk_task_paths(case) -> set[str]:
    return {d.task for d in case.definitions if d.source in ("task_xml", "job")}


@pytest.mark.parametrize("form", ["e01", "gpt", "mbr", "ntfs", "qcow2", "vmdk", "vhd", "vhdx",
                                  "kape_dir", "kape_zip", "kape_vhdx", "velociraptor_zip", "tree"])
def test_every_container_form_yields_the_same_task_set(windows_images, form):
    ctx = Context(quiet=True)
    case = run([str(windows_images[form])], ctx, hunt_date="20260101")
    assert case.hosts[0].hostname == windows_tree.HOSTNAME
    assert _disk_task_paths(case) == _planted_task_paths()
    broken = {t.file_path.rsplit("/", 1)[-1] for t in windows_tree.all_tasks() if t.origin == "broken"}
    assert len(broken) == 2
    assert {name for name in broken if any(g.location.endswith(name) for g in ctx.gaps)} == broken


def test_broken_task_files_are_gaps_and_still_listed(committed_windows_e01):
    ctx = Context(quiet=True)
    case = run([str(committed_windows_e01)], ctx, hunt_date="20260101")
    broken = [t for t in windows_tree.all_tasks() if t.origin == "broken"]
    for task in broken:
        gaps = [g for g in ctx.gaps if g.location.endswith(task.file_path.split("/", 1)[1])]
        assert len(gaps) == 1, task.name
        assert "not parsed" in gaps[0].problem
        record = next(d for d in case.definitions if d.task == task.name)
        assert record.errors and record.file.sha256  # kept, with its file facts
    doctype = next(g for g in ctx.gaps if "DOCTYPE" in g.problem)
    assert "DiagTrackSync" in doctype.location


def test_cli_lists_tasks_as_a_table_and_writes_tasks_jsonl(committed_windows_e01, tmp_path, capsys):
    code = main([str(committed_windows_e01), "-o", str(tmp_path / "case"), "--hunt-date", "20260101", "-q"])
    out = capsys.readouterr().out
    assert code == 1  # the image holds a malformed and a hostile task XML: completed, with gaps
    header = next(line for line in out.splitlines() if line.startswith("Task "))
    assert re.match(r"Task\s+Host\s+Sources\s+Actions\s+Triggers\s+Status", header)
    assert "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag" in out
    assert "%windir%\\system32\\defrag.exe -c -h -o -$" in out
    lines = (tmp_path / "case" / "tasks.jsonl").read_text(encoding="utf-8").splitlines()
    entities = [json.loads(line) for line in lines]
    by_task = {e["task"]: e for e in entities}
    defrag = by_task["\\Microsoft\\Windows\\Defrag\\ScheduledDefrag"]
    assert defrag["host"] == "WS-FIN-042"
    xml = next(d for d in defrag["definitions"] if d["source"] == "task_xml")
    assert xml["actions"][0]["command"] == "%windir%\\system32\\defrag.exe"
    assert xml["file"]["path"].endswith("Tasks/Microsoft/Windows/Defrag/ScheduledDefrag")
    assert len(xml["file"]["sha256"]) == 64
    assert _planted_task_paths() <= set(by_task)


def test_local_xml_times_are_converted_with_the_machine_time_zone(committed_windows_e01):
    case = run([str(committed_windows_e01)], Context(quiet=True), hunt_date="20260101")
    dated = [d for d in case.definitions if d.source == "task_xml" and d.date and d.date.basis == "local"]
    assert dated, "the image writes RegistrationInfo/Date in local time"
    for definition in dated:
        assert definition.date.timezone and "W. Europe" in definition.date.timezone
        written = definition.date.as_written
        # W. Europe is UTC+1 outside DST (every planted date is outside DST): UTC is one hour earlier
        hour_written = int(written[11:13])
        hour_utc = int(definition.date.utc[11:13])
        assert (hour_written - hour_utc) % 24 in (1, 2)


def test_exit_code_2_when_no_evidence_opens(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 16)
    assert main([str(tmp_path / "missing.E01"), "-q"]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main([str(junk), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err and "Traceback" not in err
    assert main([]) == 2


def test_truncated_image_is_one_clear_line_not_a_traceback(committed_windows_e01, tmp_path, capsys):
    cut = tmp_path / "cut.E01"
    cut.write_bytes(committed_windows_e01.read_bytes()[:60_000])
    code = main([str(cut), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert any(str(cut) in line for line in err.splitlines())


def test_exit_code_0_when_everything_was_read(capsys):
    assert main([str(TASKSCHEDULER_EVTX), "-q", "--hunt-date", "20260101"]) == 0
    out = capsys.readouterr().out
    assert "\\T1053_005_OnLogon" in out


def test_several_evidence_paths_in_one_call(committed_windows_e01):
    case = run([str(committed_windows_e01), str(TASKSCHEDULER_EVTX)], Context(quiet=True), hunt_date="20260101")
    assert [e.kind for e in case.evidence] == ["e01", "evtx"]
    assert "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag" in {e.task for e in case.entities}


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    # the quick start: install, add the SIEM backends pinned in the package, run the demo image
    assert blocks[0].split(" && ") == ["python3 -m pip install .",
                                       "python3 -m pip install --no-deps -r triage/data/sigma-backends.txt",
                                       "triage test_images/windows10.E01"]
    smoke = (ROOT / ".ci" / "wheel-smoke").read_text(encoding="utf-8")  # CI runs it on the built wheel
    assert '"$venv/pip" install -q --no-deps -r "$root/triage/data/sigma-backends.txt"' in smoke
    assert '"$venv/triage" "$root/test_images/windows10.E01"' in smoke
    # the test command: each of its steps is a command .ci/run runs, in the same order
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_commands = [command.strip() for line in ci.splitlines() if not line.startswith("#")
                   for command in line.split(" && ")]
    positions = [ci_commands.index(step) for step in blocks[1].split(" && ")]
    assert positions == sorted(positions) and "python3 -m pytest" in blocks[1].split(" && ")


def test_tasks_that_crash_dissect_are_decoded(committed_windows_e01):
    """dissect's tasks() aborts on a GPO immediate task whose trigger holds the %LocalTimeXmlEx%
    placeholder the Group Policy console writes, and on <Week>Last</Week> (ValueError, whole plugin
    lost). triage keeps both, and every task after them."""
    from dissect.target import Target

    with pytest.raises(ValueError):
        list(Target.open(committed_windows_e01).tasks())
    case = run([str(committed_windows_e01)], Context(quiet=True), hunt_date="20260101")
    by_task = {(d.task, d.source): d for d in case.definitions}
    gpo = by_task[("\\Deploy Helpdesk Tool", "gpp")]
    assert gpo.triggers[0].start.as_written == "%LocalTimeXmlEx%" and gpo.triggers[0].start.utc is None
    month_end = by_task[("\\Finance Month-End Report", "task_xml")]
    trigger = month_end.triggers[0]
    assert (trigger.kind, trigger.details["weeks_of_month"], trigger.details["days_of_week"]) == ("monthly_dow", ["Last"], ["Friday"])
    assert trigger.start.utc == "2023-12-29T16:00:00Z" and trigger.start.as_written == "2023-12-29T17:00:00"


def test_ex01_gets_a_clear_conversion_message(tmp_path, capsys):
    """No Debian tool writes EWF2 (ewfacquire 20140813 falls back to EnCase 6) and dissect.evidence reads
    only EWF1, so an Ex01 is recognised by its signature and the examiner is told how to convert it."""
    ex01 = tmp_path / "disk.Ex01"
    ex01.write_bytes(b"EVF2\r\n\x81\x00" + bytes(1024))
    assert main([str(ex01), "-q"]) == 2
    err = capsys.readouterr().err
    assert "EWF2 (Ex01) image" in err and "ewfexport" in err and "Traceback" not in err


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_terminal_tables_fit_the_terminal_width(committed_windows_e01, tmp_path, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    main([str(committed_windows_e01), "-o", str(tmp_path / "case"), "--hunt-date", "20260101", "-q"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= columns
    findings = [line for line in out.split("Findings: ", 1)[1].splitlines() if line.startswith("TH-HUNTIN-")]
    assert len(findings) == 33 and all(re.match(r"TH-HUNTIN-20260101-\d{3} ", line) for line in findings)  # IDs whole
    cut = [line for line in out.splitlines() if "…" in line]
    assert cut  # long values are cut with an ellipsis ...
    case = json.loads((tmp_path / "case" / "findings.json").read_text(encoding="utf-8"))
    assert max(len(f["title"]) for f in case) > columns  # ... and stay whole in the case folder
    monkeypatch.delenv("COLUMNS")
    main([str(committed_windows_e01), "--hunt-date", "20260101", "-q"])
    piped = capsys.readouterr().out  # ... and are not cut when stdout is no terminal (piped, captured)
    assert all(f["title"] in piped for f in case)
