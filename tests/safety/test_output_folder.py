"""Issue 22.1 / 20.2: triage deletes nothing it did not create; -o is checked before any analysis.

Each attack of issue 22 on the output folder, run through ``python -m triage`` on the committed
Windows E01 or a loose EVTX from the corpus: every file the examiner had under -o (evidence, Sigma
rules, a symlinked folder's target) is byte-identical afterwards, and a refusal is exit 2 with one line.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.safety.helpers import EVTX, HUNT_DATE, tree_state, triage_cli

E01 = "test_images/windows10.E01"


def _one_error_line(result) -> str:
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("triage: error: "), lines  # one line, no analysis output
    return lines[0]


def test_loose_evtx_inside_the_output_folder_is_refused_and_kept(tmp_path):
    out = tmp_path / "case"
    (out / "detections").mkdir(parents=True)
    shutil.copy(EVTX / "SecurityTasks.evtx", out / "detections" / "Security.evtx")
    before = tree_state(tmp_path)
    result = triage_cli(out / "detections" / "Security.evtx", "-o", out, "--force", tmpdir=tmp_path / "tmp")
    assert result.returncode == 2
    assert "is inside the output folder" in _one_error_line(result)
    assert tree_state(tmp_path) == before | {"tmp": "dir"}


def test_kape_folder_inside_the_output_folder_is_refused_and_kept(windows_images, tmp_path):
    out = tmp_path / "case"
    shutil.copytree(windows_images["kape_dir"], out / "detections" / "kape")
    before = tree_state(out)
    assert sum(1 for v in before.values() if v != "dir") > 50  # the whole collection is at stake
    result = triage_cli(out / "detections" / "kape", "-o", out, tmpdir=tmp_path / "tmp")
    assert result.returncode == 2
    assert "is inside the output folder" in _one_error_line(result)
    assert tree_state(out) == before


def test_output_inside_a_folder_of_evidence_is_refused(windows_images, tmp_path):
    kape = tmp_path / "kape"
    shutil.copytree(windows_images["kape_dir"], kape)
    before = tree_state(kape)
    result = triage_cli(kape, "-o", kape / "case", tmpdir=tmp_path / "tmp")
    assert result.returncode == 2 and "is inside the evidence folder" in _one_error_line(result)
    assert tree_state(kape) == before


def test_output_dot_keeps_the_examiners_sigma_rules(tmp_path):
    """``-o .`` in the examiner's working folder with ``--sigma detections/custom``: refused, nothing touched."""
    work = tmp_path / "work"
    rules = work / "detections" / "custom"
    rules.mkdir(parents=True)
    shutil.copy(EVTX / "SecurityTasks.evtx", work / "Security.evtx")
    (rules / "mine.yml").write_text("title: mine\nlogsource: {product: windows}\ndetection: {s: {EventID: 1}, condition: s}\n")
    (work / "notes.txt").write_text("examiner notes\n")
    before = tree_state(work)
    for extra in ([], ["--force"]):
        result = triage_cli(EVTX / "TaskScheduler.evtx", "-o", ".", "--sigma", "detections/custom", *extra,
                            tmpdir=tmp_path / "tmp", cwd=work)
        assert result.returncode == 2, result.stderr
        _one_error_line(result)
        assert tree_state(work) == before


def test_symlink_in_the_output_folder_is_never_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("not triage's\n")
    out = tmp_path / "case"
    out.mkdir()
    (out / "detections").symlink_to(elsewhere, target_is_directory=True)
    before = tree_state(tmp_path)
    for extra in ([], ["--force"]):
        result = triage_cli(EVTX / "SecurityTasks.evtx", "-o", out, *extra, tmpdir=tmp_path / "tmp")
        assert result.returncode == 2
        _one_error_line(result)
    assert tree_state(tmp_path) == before | {"tmp": "dir"}
    assert sorted(os.listdir(elsewhere)) == ["precious.txt"]  # no file written into the link's target


def test_output_that_is_a_symlink_or_a_file_or_a_pseudo_filesystem_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    cases = {tmp_path / "link": "is a symbolic link", tmp_path / "file": "exists and is not a folder",
             "/proc/self/case": "system pseudo-filesystem", "/dev/full": "system pseudo-filesystem"}
    for out, why in cases.items():
        result = triage_cli(E01, "-o", out, tmpdir=tmp_path / "tmp")
        assert result.returncode == 2 and why in _one_error_line(result), (out, result.stderr)
    assert os.listdir(tmp_path / "real") == [] and (tmp_path / "file").read_text() == "x"


def test_non_empty_folder_is_refused_without_force(tmp_path):
    out = tmp_path / "case"
    out.mkdir()
    (out / "report.docx").write_bytes(b"examiner's report")
    result = triage_cli(E01, "-o", out, tmpdir=tmp_path / "tmp")
    assert result.returncode == 2 and "is not empty" in _one_error_line(result)
    assert os.listdir(out) == ["report.docx"]


@pytest.fixture(scope="module")
def e01_case(tmp_path_factory):
    base = tmp_path_factory.mktemp("e01-case")
    result = triage_cli(E01, "-q", "-o", base / "case", "--hunt-date", HUNT_DATE, tmpdir=base / "tmp")
    assert result.returncode == 1, result.stderr  # the image has two deliberately broken task files (gaps)
    return base / "case"


def _copy(case, tmp_path):
    copy = tmp_path / "case"
    shutil.copytree(case, copy, symlinks=True)
    return copy


def test_force_replaces_a_previous_case_whole(e01_case, tmp_path):
    out = _copy(e01_case, tmp_path)
    old_detections = {p.name for p in (out / "detections").rglob("*") if p.is_file()}
    result = triage_cli(EVTX / "SecurityTasks.evtx", "-q", "-o", out, "--force", "--hunt-date", HUNT_DATE,
                        tmpdir=tmp_path / "tmp")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {o["file"] for o in manifest["outputs"]} | {"manifest.json", "manifest.sha256"}
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert present == listed  # nothing of the E01 case was merged in
    assert len(old_detections - {p.name for p in (out / "detections").rglob("*") if p.is_file()}) > 100
    assert sorted(os.listdir(tmp_path)) == ["case", "tmp"]  # the old case moved away was deleted, no temp sibling
    assert triage_cli("verify", out, tmpdir=tmp_path / "tmp").returncode == 0


@pytest.mark.parametrize("planted", ["notes.txt", "detections/custom/mine.yml", "link", "changed"])
def test_force_refuses_a_case_holding_anything_else(e01_case, tmp_path, planted):
    out = _copy(e01_case, tmp_path)
    if planted == "link":
        (tmp_path / "outside").mkdir()
        (out / "detections" / "link").symlink_to(tmp_path / "outside")
    elif planted == "changed":
        (out / "findings.md").write_text("examiner edited this\n")
    else:
        (out / planted).parent.mkdir(parents=True, exist_ok=True)
        (out / planted).write_text("examiner's\n")
    before = tree_state(tmp_path)
    result = triage_cli(EVTX / "SecurityTasks.evtx", "-o", out, "--force", tmpdir=tmp_path / "tmp")
    assert result.returncode == 2 and "--force refused" in _one_error_line(result)
    assert tree_state(tmp_path) == before | {"tmp": "dir"}


def test_output_write_failure_is_exit_2_with_no_partial_case(tmp_path):
    """Disk full, simulated by a file-size limit (EFBIG on write): exit 2, one line, nothing left behind."""
    import resource
    import signal

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = triage_cli(E01, "-q", "-o", tmp_path / "case", tmpdir=tmp_path / "tmp", preexec_fn=limit)
    assert result.returncode == 2
    errors = [line for line in result.stderr.decode().splitlines() if line.startswith("triage: error")]
    assert len(errors) == 1 and "File too large" in errors[0] and "nothing was left behind" in errors[0]
    assert sorted(os.listdir(tmp_path)) == ["tmp"] and os.listdir(tmp_path / "tmp") == []


def test_two_runs_into_one_folder_one_wins_whole(tmp_path):
    """Started together into the same -o: exactly one case is put in place, the other run says so
    (exit 2) and leaves nothing; the case in place verifies."""
    import subprocess
    import sys

    from tests.safety.helpers import PROJECT, child_env

    out = tmp_path / "case"
    runs = [subprocess.Popen([sys.executable, "-m", "triage", "-q", str(evidence), "-o", str(out), "--hunt-date", HUNT_DATE],
                             cwd=PROJECT, env=child_env(tmp_path / "tmp"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for evidence in (PROJECT / E01, EVTX / "SecurityTasks.evtx")]
    codes = [(run.wait(timeout=900), run.stderr.read().decode()) for run in runs]
    winners = [code for code, _ in codes if code in (0, 1)]
    losers = [err for code, err in codes if code == 2]
    assert len(winners) == 1 and len(losers) == 1, codes
    assert "is not empty" in losers[0]
    assert sorted(os.listdir(tmp_path)) == ["case", "tmp"] and os.listdir(tmp_path / "tmp") == []
    assert triage_cli("verify", out, "-q", tmpdir=tmp_path / "tmp").returncode == 0
