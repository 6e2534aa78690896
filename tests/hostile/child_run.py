"""Run the real command (``python -m triage``) in a child process and measure its peak memory.

GNU time (Debian package ``time``) starts the child from its own small process, so the peak resident
size it reports is triage's own (a child forked straight from pytest would count pytest's pages).
The timeout is only a guard against a hang (a FIFO read blocks forever): no test asserts on time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
HANG_GUARD_SECONDS = 900  # the 20,000-task run took over 300 s at load 5 beside a busy loop
ONE_GB_MB = 1024


@dataclass
class ChildRun:
    code: int
    peak_mb: float
    stderr: str
    case: Path

    @property
    def manifest(self) -> dict:
        return json.loads((self.case / "manifest.json").read_text(encoding="utf-8"))

    def gaps(self) -> list[tuple[str, str]]:
        return [(g["location"], g["problem"]) for g in self.manifest["gaps"]]


def run_triage(evidence: list[Path], tmp: Path, name: str = "case", *, address_space_mb: int | None = None) -> ChildRun:
    """``address_space_mb``: an RLIMIT_AS for the child, so a large read fails with a real MemoryError."""
    case, report = tmp / name, tmp / f"{name}.maxrss"

    def limit() -> None:
        if address_space_mb:
            resource.setrlimit(resource.RLIMIT_AS, (address_space_mb << 20, address_space_mb << 20))

    child = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), sys.executable, "-m", "triage", "-q",
                            *map(str, evidence), "-o", str(case)], cwd=PROJECT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, errors="backslashreplace", timeout=HANG_GUARD_SECONDS,
                           preexec_fn=limit, check=False)
    peak_mb = int(report.read_text().split()[-1]) / 1024
    print(f"triage {' '.join(p.name for p in map(Path, evidence))}: exit {child.returncode}, peak {peak_mb:.0f} MB")
    return ChildRun(code=child.returncode, peak_mb=peak_mb, stderr=child.stderr, case=case)
