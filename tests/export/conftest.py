"""A hostile Windows task folder (the real Windows 10 APT-simulator task folder from the corpus plus
planted hostile tasks) run through the real pipeline twice into two case folders."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.export.hostile import HUNT_DATE, build_hostile_target, tree_hashes
from triage.collect import Context
from triage.export import write_case
from triage.run import Case, run

@dataclass
class CaseRun:
    target: Path
    out: Path
    case: Case
    ctx: Context
    evidence_before: dict[str, str]
    evidence_after: dict[str, str]

    def text(self, name: str) -> str:
        return (self.out / name).read_text(encoding="utf-8")


def run_to_folder(target: Path, out: Path) -> tuple[Case, Context]:
    ctx = Context(quiet=True)
    case = run([str(target)], ctx, hunt_date=HUNT_DATE)
    write_case(case, out, ctx, argv=["triage", str(target), "-o", str(out), "--hunt-date", HUNT_DATE],
               examiner="J. Doe", case_id="CASE-42")
    return case, ctx


@pytest.fixture(scope="session")
def case_runs(tmp_path_factory) -> tuple[CaseRun, CaseRun]:
    """The same evidence written twice into two case folders."""
    base = tmp_path_factory.mktemp("export")
    target = build_hostile_target(base / "evidence")
    runs = []
    for index in (1, 2):
        before = tree_hashes(target)
        out = base / f"case{index}"
        case, ctx = run_to_folder(target, out)
        runs.append(CaseRun(target, out, case, ctx, before, tree_hashes(target)))
    return runs[0], runs[1]


@pytest.fixture(scope="session")
def case_run(case_runs) -> CaseRun:
    return case_runs[0]


@pytest.fixture
def case_copy(case_run, tmp_path) -> Path:
    """A copy of the case folder a test may tamper with."""
    copy = tmp_path / "case"
    shutil.copytree(case_run.out, copy)
    return copy
