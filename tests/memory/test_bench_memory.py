"""The memory benchmark's smoke mode runs end to end and records a ratio."""

from __future__ import annotations

import json

import pytest

from bench.bench_memory import main

pytestmark = pytest.mark.bench_smoke  # the fast suite: pytest -m "not bench_smoke"


def test_memory_benchmark_smoke_writes_ratio_and_same_work(tmp_path):
    out = tmp_path / "memory.json"
    result = main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["processes_in_image"] == 40  # 20 scenario processes + 20 extra
    assert result["vol_rows"]["windows.psscan"] == 40 and result["vol_rows"]["windows.pslist"] == 18 + 20 - 3
    # 9 task processes; 4 in-memory TaskCache tasks + 2 rebuilt from exited schtasks.exe /create and Register-ScheduledTask
    assert result["triage_result"] == {"processes": 9, "tasks": 6, "problems": []}
    assert result["ratio_vol_over_triage"] > 0
