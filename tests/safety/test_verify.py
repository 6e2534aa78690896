"""Issue 22.6 / 20.2: ``triage verify`` fails on added files, on evidence that is gone and on an
edited manifest given the noted hash; the manifest's hash is always printed and written beside it."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from tests.safety.helpers import EVTX, HUNT_DATE, triage_cli


@pytest.fixture(scope="module")
def evtx_case(tmp_path_factory):
    """A case from a copy of a corpus EVTX folder (so the test may delete evidence), written with -q."""
    base = tmp_path_factory.mktemp("verify")
    evidence = base / "evidence"
    evidence.mkdir()
    for name in ("SecurityTasks.evtx", "TaskScheduler.evtx"):
        shutil.copy(EVTX / name, evidence / name)
    result = triage_cli(evidence, "-q", "-o", base / "case", "--hunt-date", HUNT_DATE, "--examiner", "J. Doe",
                        tmpdir=base / "tmp")
    assert result.returncode == 0, result.stderr
    return base, result


@pytest.fixture
def case(evtx_case, tmp_path):
    base, _ = evtx_case
    copy = tmp_path / "case"
    shutil.copytree(base / "case", copy)
    return copy


def _verify(*args, tmp_path):
    result = triage_cli("verify", *args, tmpdir=tmp_path / "tmp")
    return result.returncode, result.stdout.decode().splitlines()


def test_manifest_hash_is_printed_with_q_and_written_beside_it(evtx_case):
    base, result = evtx_case
    digest = hashlib.sha256((base / "case/manifest.json").read_bytes()).hexdigest()
    assert (base / "case/manifest.sha256").read_text() == f"{digest}  manifest.json\n"  # sha256sum -c format
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and f"manifest.json SHA-256 {digest}" in lines[0] and "--manifest-sha256" in lines[0]


def test_verify_q_prints_the_manifest_hash_and_exits_0(case, tmp_path):
    code, lines = _verify(case, "-q", tmp_path=tmp_path)
    digest = hashlib.sha256((case / "manifest.json").read_bytes()).hexdigest()
    assert code == 0 and lines == [f"triage verify: manifest.json SHA-256 {digest}"]


@pytest.mark.parametrize("added", ["notes.txt", "detections/extra.yml", "empty-folder/"])
def test_verify_fails_on_anything_added(case, tmp_path, added):
    if added.endswith("/"):
        (case / added).mkdir()
    else:
        (case / added).write_text("added after the run\n")
    code, lines = _verify(case, tmp_path=tmp_path)
    assert code == 1
    assert f"ADDED {added}: not part of the case folder as written" in lines
    assert lines[-2].endswith(": 1 changed, missing or added")


def test_verify_fails_on_evidence_that_is_gone(evtx_case, tmp_path):
    base, _ = evtx_case
    evidence_copy = tmp_path / "evidence"
    shutil.copytree(base / "evidence", evidence_copy)
    case = tmp_path / "case"
    run = triage_cli(evidence_copy, "-q", "-o", case, "--hunt-date", HUNT_DATE, tmpdir=tmp_path / "tmp")
    assert run.returncode == 0
    (evidence_copy / "TaskScheduler.evtx").unlink()
    code, lines = _verify(case, tmp_path=tmp_path)
    assert code == 1
    assert f"MISSING evidence {evidence_copy}/TaskScheduler.evtx: no longer at its recorded path, not checked" in lines
    shutil.rmtree(evidence_copy)
    code, lines = _verify(case, tmp_path=tmp_path)
    assert code == 1 and lines[-2].endswith(": 2 changed, missing or added")


def test_edited_manifest_is_caught_with_the_noted_hash(case, tmp_path):
    """One byte of the examiner's name changed, and manifest.sha256 rewritten to match (a careful
    forger): only the hash noted at the time catches it."""
    noted = (case / "manifest.sha256").read_text().split()[0]
    raw = (case / "manifest.json").read_bytes()
    assert raw.count(b'"examiner": "J. Doe"') == 1
    edited = raw.replace(b'"examiner": "J. Doe"', b'"examiner": "J. Dop"')
    (case / "manifest.json").write_bytes(edited)
    now = hashlib.sha256(edited).hexdigest()
    code, lines = _verify(case, tmp_path=tmp_path)
    assert code == 1 and f"CHANGED manifest.json: SHA-256 is {now}, manifest.sha256 says {noted}" in lines
    (case / "manifest.sha256").write_text(f"{now}  manifest.json\n")
    code, lines = _verify(case, tmp_path=tmp_path)
    assert code == 0  # nothing inside the folder can tell ...
    code, lines = _verify(case, "--manifest-sha256", noted, tmp_path=tmp_path)
    assert code == 1 and f"CHANGED manifest.json: SHA-256 is {now}, the noted hash is {noted}" in lines  # ... the noted hash can
    assert lines[-1] == f"triage verify: manifest.json SHA-256 {now}"
    assert json.loads(edited)["examiner"] == "J. Dop"


def test_noted_hash_that_matches_is_confirmed_and_a_bad_one_is_usage(case, tmp_path):
    noted = (case / "manifest.sha256").read_text().split()[0]
    code, lines = _verify(case, "--manifest-sha256", noted.upper(), tmp_path=tmp_path)
    assert code == 0 and lines[-1] == f"triage verify: manifest.json SHA-256 {noted} (matches the noted hash)"
    result = triage_cli("verify", case, "--manifest-sha256", "xyz", tmpdir=tmp_path / "tmp")
    assert result.returncode == 2 and result.stderr.decode() == "triage verify: error: --manifest-sha256 must be 64 hex digits\n"
