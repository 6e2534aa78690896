"""The Windows, Linux and scale benchmarks run end to end in their smoke modes, write their JSON with
ratios, and every tool in a comparison read the same evidence (so the benchmarks cannot rot)."""

from __future__ import annotations

import json

import pytest

from bench import bench_linux, bench_scale, bench_windows

pytestmark = pytest.mark.bench_smoke  # the fast suite: pytest -m "not bench_smoke"

# The three task files triage reads and dissect's tasks plugin does not: a dotted name (dissect only
# takes files without a suffix), a truncated XML and one with a DTD (dissect skips both as invalid).
DISSECT_MISSES = {"windows/system32/tasks/update.service", "windows/system32/tasks/microsoft/windows/maintenance/winupdatecheck",
                  "windows/system32/tasks/microsoft/windows/maintenance/diagtracksync"}


def test_windows_smoke_compares_triage_dissect_and_floor_on_the_same_task_files(tmp_path):
    out = tmp_path / "windows.json"
    result = bench_windows.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    tools = result["images"]["dissect-safe variant"]["tools"]
    triage_files = set(tools["triage"]["work"]["task_files"])
    dissect_files = set(tools["dissect tasks"]["work"]["task_files"])
    assert len(triage_files) == 51 and len(dissect_files) == 48
    assert triage_files - dissect_files == DISSECT_MISSES and dissect_files <= triage_files
    assert tools["dissect tasks"]["returncode"] == 0  # the variant leaves out every file dissect dies on
    assert tools["triage"]["work"]["taskcache_entries"] == 44 and tools["triage"]["work"]["task_events"] == 41
    assert tools["floor (dissect copy)"]["work"]["files"] == 58
    assert set(result["ratios"]) == {"triage/dissect tasks", "triage/floor (dissect copy)"}
    assert all(value > 0 for value in result["ratios"].values())
    assert [t["ratio"] for t in result["targets"]] == ["triage/dissect tasks", "triage/plaso", "triage/floor (dissect copy)"]


def test_linux_smoke_compares_triage_and_dissect_on_the_planted_cron_lines(tmp_path):
    out = tmp_path / "linux.json"
    result = bench_linux.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text())["ratios"] == result["ratios"]
    triage, dissect = result["tools"]["triage"]["work"], result["tools"]["dissect cronjobs,services"]["work"]
    # the scenario plants 28 cron lines (web-application, trailing-blank and flock lines added with issue 21);
    # dissect's cronjobs plugin returns 26 of them
    assert (triage["cron_entries"], dissect["cron_entries"]) == (28, 26)
    assert triage["jobs_by_kind"] == {"anacron": 4, "at": 3, "cron": 28, "cron_script": 10, "systemd_timer": 6}
    assert "unix/service" not in dissect["records_by_type"]  # dissect's services plugin dies on the hostile unit
    assert result["ratios"]["triage/dissect cronjobs,services"] > 0


def test_scale_smoke_runs_every_series_and_counts_the_generated_tasks(tmp_path):
    out = tmp_path / "scale.json"
    result = bench_scale.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text())["checks"] == json.loads(json.dumps(result["checks"]))
    size = result["size"][0]
    assert size["tasks"] == 60 and size["definitions"] == 99 and size["events"] == 41
    tasks = result["tasks"][0]
    # 20 generated tasks on top of the dissect-safe machine: both tools see them; dissect misses the same 3 files
    assert tasks["generated_tasks"] == 20 and tasks["dissect_returncode"] == 0
    assert tasks["dissect_task_files"] == 48 + 20 and tasks["triage_task_files"] == 51 + 20
    assert tasks["triage_over_dissect"] > 0
    events = result["events"][0]
    assert events["records"] == 28 and events["task_events"] == 28 and events["events_per_second"] > 0
    memory = result["memory"][0]
    # the win10 scenario's 9 task processes; 4 in-memory TaskCache tasks + 2 rebuilt from task-creating command lines
    assert memory["processes"] == 9 and memory["tasks"] == 6 and memory["problems"] == []
