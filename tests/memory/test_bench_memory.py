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
    assert result["processes_in_image"] == 37  # 17 scenario processes + 20 extra
    assert result["vol_rows"]["windows.psscan"] == 37 and result["vol_rows"]["windows.pslist"] == 16 + 20 - 3
    assert result["triage_result"] == {"processes": 7, "tasks": 4, "problem": None}
    assert result["ratio_vol_over_triage"] > 0
