"""Issue 22.2 / 20.2: SIGINT and SIGTERM at several points of a run leave no case folder and no
temporary file, end with one line and exit 130 / 143; a re-run with --force keeps the old case."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.safety.helpers import HUNT_DATE, PROJECT, child_env, triage_cli

E01 = "test_images/windows10.E01"
# Progress lines the run prints (stderr, line-buffered) at successive points: during collection
# (the first gap line), while hashing the evidence for the manifest, while writing the case, just
# before the case is renamed into place.
POINTS = ["triage: warning:", "triage: hashing", "triage: writing timeline.csv", "triage: writing manifest.json"]


def _interrupt(tmp_path, args, point: str, sig: int) -> tuple[subprocess.Popen, list[str], list[str]]:
    """Start ``python -m triage ARGS``, send ``sig`` when a stderr line starts with ``point``; returns
    (process, stderr lines, what the private TMPDIR held at that moment)."""
    tmpdir = tmp_path / "tmp"
    child = subprocess.Popen([sys.executable, "-m", "triage", *map(str, args)], cwd=PROJECT, env=child_env(tmpdir),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, held = [], []
    for line in child.stderr:
        lines.append(line.rstrip("\n"))
        if line.startswith(point):
            held = os.listdir(tmpdir)
            child.send_signal(sig)
            break
    lines += child.stderr.read().splitlines()
    child.wait(timeout=900)
    return child, lines, held


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_leaves_no_case_folder_and_no_temporary_file(tmp_path, point, sig):
    out = tmp_path / "case"
    child, lines, held = _interrupt(tmp_path, [E01, "-o", out, "--hunt-date", HUNT_DATE], point, sig)
    name = signal.Signals(sig).name
    assert child.returncode == 128 + sig, lines
    assert lines[-1] == f"triage: interrupted by {name}: partial work and temporary files removed"
    assert not any("Traceback" in line for line in lines)
    assert len(held) == 1 and held[0].startswith("triage-run-")  # the run's one temporary folder existed ...
    assert os.listdir(tmp_path / "tmp") == []  # ... and is gone, with everything in it
    assert sorted(os.listdir(tmp_path)) == ["tmp"]  # no case folder, no temporary sibling of it


@pytest.mark.parametrize("point", POINTS[2:])
def test_signal_during_a_forced_rerun_keeps_the_previous_case_intact(tmp_path, point):
    out = tmp_path / "case"
    first = triage_cli(E01, "-q", "-o", out, "--hunt-date", HUNT_DATE, tmpdir=tmp_path / "tmp")
    assert first.returncode == 1
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    child, lines, _ = _interrupt(tmp_path, [E01, "-o", out, "--force", "--hunt-date", "20260202"], point,
                                 signal.SIGTERM)
    assert child.returncode == 143, lines
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the old manifest still describes the old outputs: verify passes
    assert triage_cli("verify", out, "-q", tmpdir=tmp_path / "tmp").returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["case", "tmp"] and os.listdir(tmp_path / "tmp") == []


@pytest.mark.parametrize("interrupt", [False, True])
def test_volatility_settings_are_restored_when_a_memory_session_fails_or_is_interrupted(interrupt):
    """A session that fails to open (no Windows kernel in the image) or is interrupted while volatility
    runs (SIGINT raised from its progress callback): cache path, offline flag and symbol path are back
    to what they were, and the cache folder (inside the run's temporary folder) is gone."""
    import tempfile

    import volatility3.symbols
    from volatility3.framework import constants

    from triage.collect.memory import MissingKernelSymbols, VolatilitySession
    from triage.runscope import Interrupted, run_scope

    def progress(message):
        if interrupt:
            raise Interrupted(signal.SIGINT)

    saved = (constants.CACHE_PATH, constants.OFFLINE, list(volatility3.symbols.__path__))
    with pytest.raises(Interrupted if interrupt else MissingKernelSymbols), run_scope(signals=False) as run_dir:
        session = VolatilitySession(PROJECT / E01, [], progress)  # a disk image: volatility scans it and gives up
        assert session._cache.startswith(str(run_dir))
        with session:
            pass
    assert (constants.CACHE_PATH, constants.OFFLINE, list(volatility3.symbols.__path__)) == saved
    assert not os.path.exists(session._cache) and not run_dir.exists()
    assert tempfile.tempdir != str(run_dir)


def test_signal_during_a_hunt_leaves_no_hunt_folder_and_no_temporary_file(tmp_path):
    out = tmp_path / "hunt"
    child, lines, held = _interrupt(tmp_path, ["hunt", E01, "-o", out, "--workers", "1", "--hunt-date", HUNT_DATE],
                                    "triage hunt: 0/1 finished", signal.SIGTERM)
    assert child.returncode == 143, lines
    assert lines[-1] == "triage hunt: interrupted by SIGTERM: partial work and temporary files removed"
    assert held and all(name.startswith("triage-hunt-") for name in held)
    assert sorted(os.listdir(tmp_path)) == ["tmp"] and os.listdir(tmp_path / "tmp") == []


def test_dirty_hive_replay_copies_live_in_the_run_folder(monkeypatch):
    """The E01's SOFTWARE hive is dirty: its replay copy (triage-regf-*) is made inside the run's one
    temporary folder, so the clean-up on any exit (signals included) removes it."""
    import tempfile

    from triage.collect import Context
    from triage.run import run
    from triage.runscope import run_scope

    made = []
    original = tempfile.TemporaryDirectory.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self.name)

    monkeypatch.setattr(tempfile.TemporaryDirectory, "__init__", recording)
    with run_scope(signals=False) as run_dir:
        case = run([str(PROJECT / E01)], Context(quiet=True), hunt_date=HUNT_DATE)
    assert case.opened == 1
    replays = [name for name in made if os.path.basename(name).startswith("triage-regf-")]
    assert replays and all(name.startswith(str(run_dir) + os.sep) for name in replays)
    assert not run_dir.exists()
