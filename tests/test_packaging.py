"""The wheel a user installs: it must hold every file the package reads at run time, and work without
the source tree (a plain `pip install`, pipx or a wheel, not the editable install the other tests use)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "triage"


def _source_files() -> set[str]:
    """Every file of the package in the source tree, as wheel member names (compiled caches aside)."""
    return {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel offline from a copy of the project (the source tree is left as it is)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "triage", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(src)], capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    [built] = out.glob("triage-*.whl")
    return built


def test_wheel_holds_every_file_of_the_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        members = {n for n in archive.namelist() if n.startswith("triage/")}
    assert members == _source_files()
    # the files a run reads besides code, named so a glob that stops matching them is seen at once
    assert "triage/data/report.html.tmpl" in members
    assert "triage/data/attack_subset.json" in members
    # the stock-job baselines: the ones the loaders name (triage/detect/baseline.py, unix_checks.py) are
    # exactly the ones shipped
    code = "".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    loaded = {f"triage/data/{name}" for name in re.findall(r"""["'](?:data/)?(baseline_\w+\.json)["']""", code)}
    assert loaded and loaded == {m for m in members if m.startswith("triage/data/baseline_")}
    assert {m for m in members if m.startswith("triage/rules/definitions/")} >= {
        "triage/rules/definitions/encoded_powershell.yml", "triage/rules/definitions/unix_reverse_shell.yml"}
    assert len([m for m in members if m.startswith("triage/rules/") and m.endswith(".yml")]) >= 29


def test_unpacked_wheel_runs_the_demo_without_the_source_tree(wheel, tmp_path, committed_windows_e01):
    """The wheel's contents alone (cwd and import path outside the checkout) write a full case folder."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    case = tmp_path / "case"
    run = subprocess.run([sys.executable, "-m", "triage", str(committed_windows_e01), "-o", str(case), "-q"],
                         cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr  # the bundled image holds two unreadable task files: exit 1
    assert "Traceback" not in run.stderr
    assert (case / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    manifest = json.loads((case / "manifest.json").read_text(encoding="utf-8"))
    assert {entry["file"] for entry in manifest["outputs"]} >= {"report.html", "findings.json", "tasks.jsonl"}
    assert len(manifest["gaps"]) == 2
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    assert findings and all(f["hunt_id"].startswith("TH-HUNTIN-") for f in findings)
