"""The EVTX benchmark's smoke mode runs end to end and every reader sees the same events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench_smoke  # the fast suite: pytest -m "not bench_smoke"

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_and_all_readers_count_the_same_28_events(tmp_path):
    out = tmp_path / "evtx.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_evtx.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "events/s" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert [r["events"] for r in results] == [28, 28, 28]
    assert all(r["events_per_second"] > 0 for r in results)
