"""Shared measuring for the benchmarks: a command's wall time and peak RSS, medians, the machine.

Every tool runs as its own subprocess (each pays its own start-up). Peak RSS comes from GNU time
(``/usr/bin/time -f %M``): the largest resident set of the tool or of any process it waited for. It
is not taken from this process's own ``wait4``: a forked child starts with its parent's high-water
mark, so every child of a big benchmark process would report at least the parent's size.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GNU_TIME = "/usr/bin/time"  # Debian package "time"


@dataclass
class Run:
    """One finished command."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_command(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None, stdout: Path | None = None) -> Run:
    """Run ``cmd`` to completion; stdout goes to the file ``stdout`` when given (big outputs), else is returned."""
    with tempfile.TemporaryFile() as err_file, (open(stdout, "w+b") if stdout else tempfile.TemporaryFile()) as out_file, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        started = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss_file.name, *cmd], cwd=cwd, env=env, stdout=out_file,
                              stderr=err_file)
        seconds = time.perf_counter() - started
        err_file.seek(0)
        out_file.seek(0)
        err = err_file.read().decode(errors="replace")
        out = "" if stdout else out_file.read().decode(errors="replace")
        lines = rss_file.read().split()
    peak_kb = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return Run(seconds=seconds, peak_rss_mb=round(peak_kb / 1024, 1), returncode=done.returncode, stdout=out, stderr=err)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def machine() -> dict:
    """Date, cores, RAM and CPU model: benchmark figures mean nothing without them."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    ram_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "nproc": os.cpu_count(),
            "ram_gib": round(ram_kb / 2**20, 1), "cpu": cpu, "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def save(result: dict, out: Path) -> dict:
    """Write a benchmark's figures as JSON (the file ``run_all`` summarises) and return them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result
