"""Issue 20.3: options are validated before any work (exit 2, one line) and mean what they say."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from importlib import metadata

import pytest

from tests.safety.helpers import EVTX, HUNT_DATE, triage_cli
from triage.cli import main

E01 = "test_images/windows10.E01"


@pytest.mark.parametrize("args, message", [
    (["--since", "garbage"], "--since 'garbage' is not an ISO 8601 time (e.g. 2024-03-14T08:58:02Z or 2024-03-14T09:58:02+01:00)"),
    (["--until", "2024-13-01"], "--until '2024-13-01' is not an ISO 8601 time (e.g. 2024-03-14T08:58:02Z or 2024-03-14T09:58:02+01:00)"),
    (["--since", "2024-03-14T10:00:00+01:00", "--until", "2024-03-14T08:59:59Z"],
     "--since 2024-03-14T10:00:00+01:00 is after --until 2024-03-14T08:59:59Z"),
    (["--hunt-date", "20261345"], "--hunt-date '20261345' is not a calendar date written YYYYMMDD"),
    (["--hunt-date", "20230229"], "--hunt-date '20230229' is not a calendar date written YYYYMMDD"),
    (["--sigma", "/nonexistent/rules"], "--sigma /nonexistent/rules: no such file or folder"),
    (["--ioc", "/nonexistent/iocs.csv"], "--ioc /nonexistent/iocs.csv: no such file or folder"),
])
def test_bad_option_is_one_line_and_exit_2_before_any_work(args, message, capsys, tmp_path):
    assert main([E01, "-o", str(tmp_path / "case"), *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"triage: error: {message}\n" and captured.out == ""
    assert not (tmp_path / "case").exists()


def test_leap_day_is_a_calendar_date(capsys):
    from triage.options import parse_hunt_date

    assert parse_hunt_date("20240229") == "20240229"


def test_help_lists_exit_codes_and_version_names_the_engines(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for line in ("  0    done, all evidence read", "  2    bad usage", "  130  interrupted (SIGINT", "  143  terminated (SIGTERM)"):
        assert line in text
    assert main(["--version"]) == 0
    versions = {name: metadata.version(name) for name in ("dissect.target", "volatility3", "pySigma")}
    assert capsys.readouterr().out == (f"triage 0.1.0 (dissect.target {versions['dissect.target']}, "
                                       f"volatility3 {versions['volatility3']}, pySigma {versions['pySigma']})\n")


@pytest.fixture(scope="module")
def full_timeline(tmp_path_factory):
    base = tmp_path_factory.mktemp("options")
    assert triage_cli(E01, "-q", "-o", base / "case", "--hunt-date", HUNT_DATE, tmpdir=base / "tmp").returncode == 1
    rows = [json.loads(line) for line in (base / "case/timeline.jsonl").read_text(encoding="utf-8").splitlines()]
    return rows


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("form", ["offset", "space", "date"])
def test_since_until_are_compared_as_times_with_offsets(full_timeline, tmp_path, form):
    """The window is given with a +01:00 offset, with a space and no zone (UTC), or as dates; the
    rows kept are exactly those whose UTC time lies in it, counted from the unfiltered timeline."""
    times = sorted({_utc(r["utc"]) for r in full_timeline})
    start, end = times[len(times) // 3], times[2 * len(times) // 3]
    if form == "offset":
        since = start.astimezone(timezone(timedelta(hours=1))).isoformat()
        until = end.astimezone(timezone(timedelta(hours=1))).isoformat()
        low, high = start, end
    elif form == "space":
        since, until = start.strftime("%Y-%m-%d %H:%M:%S.%f"), end.strftime("%Y-%m-%d %H:%M:%S.%f")
        low, high = start, end
    else:  # a date alone: from the start of the first day to the end of the last
        since, until = start.date().isoformat(), end.date().isoformat()
        low = datetime.combine(start.date(), datetime.min.time(), UTC)
        high = datetime.combine(end.date(), datetime.max.time(), UTC)
    expected = sorted(json.dumps(r, sort_keys=True) for r in full_timeline if low <= _utc(r["utc"]) <= high)
    assert 0 < len(expected) < len(full_timeline)
    out = tmp_path / "case"
    result = triage_cli(E01, "-o", out, "--hunt-date", HUNT_DATE, "--since", since, "--until", until,
                        tmpdir=tmp_path / "tmp")
    assert result.returncode == 1
    assert f"triage: timeline limited to {low.isoformat()} .. {high.isoformat()} (UTC)" in result.stderr.decode()
    rows = [json.loads(line) for line in (out / "timeline.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(json.dumps(r, sort_keys=True) for r in rows) == expected


def test_task_by_unique_leaf_name_with_its_window(full_timeline, tmp_path):
    mine = [r for r in full_timeline if r["task"] == "\\SysHealthMonitor"]
    assert len(mine) > 2
    result = triage_cli(E01, "-q", "--task", "syshealthmonitor", tmpdir=tmp_path / "tmp")
    assert result.returncode == 1 and result.stdout.decode().splitlines()[0] == "Task: \\SysHealthMonitor"
    story = result.stdout.decode().split("\n\n", 1)[1].splitlines()[2:]  # after the header and its rule
    assert len(story) == len(mine)
    first = min(_utc(r["utc"]) for r in mine)
    windowed = triage_cli(E01, "-q", "--task", "SysHealthMonitor", "--since", (first + timedelta(seconds=1)).isoformat(),
                          tmpdir=tmp_path / "tmp")
    kept = windowed.stdout.decode().split("\n\n", 1)[1].splitlines()[2:]
    assert len(kept) == sum(1 for r in mine if _utc(r["utc"]) > first)  # --task honours --since


def test_task_unknown_or_ambiguous_suggests_names(windows_images, tmp_path):
    typo = triage_cli(E01, "-q", "--task", "SysHelthMonitor", tmpdir=tmp_path / "tmp")
    assert typo.returncode == 2
    assert typo.stderr.decode().splitlines()[-1] == ("triage: error: no task 'SysHelthMonitor' in the evidence; "
                                                     "did you mean: \\SysHealthMonitor")
    tree = tmp_path / "tree"  # the machine's file tree with a second task of the same name in a subfolder
    shutil.copytree(windows_images["tree"], tree)
    tasks = tree / "Windows/System32/Tasks"
    (tasks / "Ops").mkdir()
    shutil.copy(tasks / "SysHealthMonitor", tasks / "Ops/SysHealthMonitor")
    ambiguous = triage_cli(tree, "-q", "--task", "SysHealthMonitor", tmpdir=tmp_path / "tmp")
    assert ambiguous.returncode == 2
    assert ambiguous.stderr.decode().splitlines()[-1] == ("triage: error: no task 'SysHealthMonitor' in the evidence; "
                                                          "did you mean: \\Ops\\SysHealthMonitor, \\SysHealthMonitor")
    full = triage_cli(tree, "-q", "--task", "\\Ops\\SysHealthMonitor", tmpdir=tmp_path / "tmp")
    assert full.stdout.decode().splitlines()[0] == "Task: \\Ops\\SysHealthMonitor"


def test_hunt_takes_triage_options_and_writes_a_manifest_of_its_outputs(tmp_path):
    ioc = tmp_path / "iocs.csv"
    ioc.write_text("filename,msedge_elf.dll\n", encoding="utf-8")
    out = tmp_path / "hunt"
    result = triage_cli("hunt", E01, EVTX / "SecurityTasks.evtx", "-o", out, "--workers", "1", "--hunt-date", HUNT_DATE,
                        "--examiner", "J. Doe", "--case", "CASE-7", "--ioc", ioc, "--sigma", EVTX.parent,
                        "-q", tmpdir=tmp_path / "tmp")
    assert result.returncode == 1, result.stderr  # the E01 has gaps
    hunt = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert hunt["kind"] == "hunt" and hunt["examiner"] == "J. Doe" and hunt["case_id"] == "CASE-7"
    assert len(hunt["cases"]) == 2
    for entry in hunt["cases"]:
        case = out / entry["case_dir"]
        assert entry["manifest_sha256"] == (case / "manifest.sha256").read_text().split()[0]
        manifest = json.loads((case / "manifest.json").read_text(encoding="utf-8"))
        assert (manifest["examiner"], manifest["case_id"]) == ("J. Doe", "CASE-7")
    listed = {o["file"] for o in hunt["outputs"]}
    assert {"stacks.csv", "fleet_report.html", "fleet_findings.json"} <= listed
    assert listed == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json", "manifest.sha256"}
    verify = triage_cli("verify", out, "-q", tmpdir=tmp_path / "tmp")
    assert verify.returncode == 0
    (out / "stacks.csv").write_text("edited\n")
    assert triage_cli("verify", out, "-q", tmpdir=tmp_path / "tmp").returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hunt", "iocs.csv", "tmp"] and not any((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("scheduler, message", [
    ("localhost:8786", "--scheduler 'localhost:8786' is not an address like tcp://HOST:PORT"),
    ("tcp://127.0.0.1:1", "--scheduler tcp://127.0.0.1:1: no Dask scheduler answers there (Connection refused)"),
])
def test_hunt_bad_scheduler_is_one_line_exit_2(tmp_path, scheduler, message):
    result = triage_cli("hunt", E01, "-o", tmp_path / "hunt", "--scheduler", scheduler, tmpdir=tmp_path / "tmp")
    assert result.returncode == 2 and result.stderr.decode() == f"triage hunt: error: {message}\n"
    assert not (tmp_path / "hunt").exists()


def test_findings_md_shows_ampersand_as_markdown_not_as_an_entity(tmp_path):
    out = tmp_path / "case"
    assert triage_cli(E01, "-q", "-o", out, "--hunt-date", HUNT_DATE, tmpdir=tmp_path / "tmp").returncode == 1
    md = (out / "findings.md").read_text(encoding="utf-8")
    assert "&amp;" not in md
    assert "vssadmin.exe delete shadows /all /quiet \\& bcdedit" in md  # CommonMark renders "\&" as "&"
