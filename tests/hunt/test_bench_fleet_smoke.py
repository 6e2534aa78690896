"""The fleet benchmark's smoke mode runs end to end and both engines give the same stacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench_smoke  # the fast suite: pytest -m "not bench_smoke"

ROOT = Path(__file__).resolve().parents[2]


def test_bench_fleet_smoke_runs_both_engines_with_identical_stacks(tmp_path):
    out = tmp_path / "fleet.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_fleet.py"), "--smoke", "--workers", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["hosts"] == 41 and result["same_stacks"] is True
    assert [row["items"] for row in result["rows"]] == [41, 41]
    assert result["hunt_exit_code"] == 1  # every host lacks a TaskCache: one gap each
    assert result["speedup"] > 0
