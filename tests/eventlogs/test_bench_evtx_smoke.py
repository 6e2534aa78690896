"""The EVTX benchmark's smoke mode runs end to end and every reader sees the same events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench_smoke  # the fast suite: pytest -m "not bench_smoke"

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_and_all_readers_count_the_same_28_events_and_the_folder_is_triaged(tmp_path):
    out = tmp_path / "evtx.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_evtx.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "events/s" in done.stdout
    written = json.loads(out.read_text())
    results = written["results"]
    assert [r["events"] for r in results] == [28, 28, 28, 28]
    assert all(r["events_per_second"] > 0 for r in results)
    folder = written["folder"]  # two copies of the two smoke logs, triaged whole with one and two workers
    assert (folder["files"], folder["events"]) == (4, 56)
    assert [r["ratio"] for r in folder["ratios"]] == ["triage --workers 1 / bare evtx decode",
                                                      "triage --workers 2 / bare evtx decode",
                                                      "speed-up: --workers 1 / --workers 2"]
    assert all(r["value"] > 0 for r in folder["ratios"])
