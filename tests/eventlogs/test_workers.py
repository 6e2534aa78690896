"""``--workers``: event logs read by a process pool give the same case folder as one process.

Real evidence only: the committed test image (its logs are copied out of the E01 for the workers) and a
folder of every corpus log plus a truncated one and a file that is no log (gaps raised inside workers).
The case folders of ``--workers 1`` and ``--workers 2`` must be byte-identical, apart from the manifest's
run times and its command line (which names the option and the output folder), and so must the warnings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.eventlogs.evtx_corpus import BELKASOFT
from tests.safety.helpers import HUNT_DATE, PROJECT, child_env, triage_cli

RUN_FIELDS = ("started", "finished", "command_line")


def _case(tmp_path: Path, evidence: Path, workers: int) -> tuple[dict[str, bytes], dict, list[str], int]:
    out = tmp_path / f"case-{workers}"
    done = triage_cli(evidence, "-q", "-o", out, "--hunt-date", HUNT_DATE, "--workers", str(workers),
                      tmpdir=tmp_path / f"tmp-{workers}")
    assert "Traceback" not in done.stderr.decode()
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sha256")  # the hash of the manifest, which holds the run times
    assert manifest["command_line"][-2:] == ["--workers", str(workers)]
    for name in RUN_FIELDS:
        manifest.pop(name)
    warnings = [line for line in done.stderr.decode().splitlines() if line.startswith("triage: warning:")]
    assert os.listdir(tmp_path / f"tmp-{workers}") == []  # the workers' copies and the run folder are gone
    return files, manifest, warnings, done.returncode


def _same_for_one_and_two_workers(tmp_path: Path, evidence: Path) -> tuple[dict[str, bytes], dict, list[str], int]:
    one = _case(tmp_path, evidence, 1)
    two = _case(tmp_path, evidence, 2)
    assert sorted(two[0]) == sorted(one[0])
    for name in one[0]:
        assert two[0][name] == one[0][name], name
    assert two[1] == one[1]  # manifest: counts, gaps, notes, stores, evidence hashes
    assert two[2] == one[2]  # the same warnings, in the same order
    assert two[3] == one[3]
    return one


def test_two_workers_give_the_same_case_folder_as_one_on_the_test_image(tmp_path, committed_windows_e01):
    files, manifest, _, code = _same_for_one_and_two_workers(tmp_path, committed_windows_e01)
    logs = {s["location"] for s in manifest["stores"] if s["store"] == "eventlog"} if "stores" in manifest else set()
    timeline = files["timeline.jsonl"].decode().splitlines()
    assert code in (0, 1)
    assert any('"artifact": "evtx"' in row or '"evtx"' in row for row in timeline)  # rows from the image's logs
    assert manifest["counts"]["events"] > 0
    assert logs or manifest["counts"]["events"]


def test_two_workers_give_the_same_case_folder_as_one_on_corpus_logs_with_damaged_ones(tmp_path, corpus):
    logs = tmp_path / "logs"
    logs.mkdir()
    for number, path in enumerate(sorted(corpus.rglob("*.evtx"))):
        shutil.copyfile(path, logs / f"{number:02d}-{path.name}")
    data = BELKASOFT.read_bytes()
    (logs / "50-truncated.evtx").write_bytes(data[:len(data) // 2 + 12345])  # cut inside a chunk
    (logs / "51-not-a-log.evtx").write_bytes(b"this is not an event log\n" * 100)
    files, manifest, warnings, code = _same_for_one_and_two_workers(tmp_path, logs)
    assert code == 1  # gaps
    gaps = [g["location"] for g in manifest["gaps"]]
    assert any("50-truncated.evtx" in g for g in gaps) and any("51-not-a-log.evtx" in g for g in gaps)
    assert len(warnings) == len(manifest["gaps"])
    # the truncated copy still gave the records before the cut: more task events than without it
    assert manifest["counts"]["events"] > 3000
    assert b"50-truncated.evtx" in files["timeline.jsonl"]
    # every log is hashed once, while it is read (in a worker), and the manifest takes that digest
    listed = {entry["path"]: entry["sha256"] for entry in manifest["evidence"][0]["files"]}
    assert listed == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in logs.iterdir()}


def _pool_processes(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (forked workers share the parent's command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_workers_read_logs_leaves_no_worker_no_case_and_no_temporary_file(tmp_path, corpus, sig):
    logs = tmp_path / "logs"
    logs.mkdir()
    for number in range(40):  # long enough to be interrupted while the pool reads
        shutil.copyfile(BELKASOFT, logs / f"{number:02d}.evtx")
    out = tmp_path / "case-interrupted"
    tmpdir = tmp_path / "tmp"
    child = subprocess.Popen([sys.executable, "-m", "triage", str(logs), "-o", str(out), "--workers", "2",
                              "--hunt-date", HUNT_DATE], cwd=PROJECT, env=child_env(tmpdir),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in child.stderr:
        lines.append(line.rstrip("\n"))
        if line.startswith("triage: reading 40 event log(s)"):
            break
    for _ in range(6000):  # until the workers exist (forked when the first log is handed out); a hang guard
        if len(_pool_processes(str(out))) >= 3:
            break
        time.sleep(0.05)
    assert len(_pool_processes(str(out))) >= 3, "parent and two workers"
    child.send_signal(sig)
    lines += child.stderr.read().splitlines()
    child.wait(timeout=900)
    assert child.returncode == 128 + sig, lines
    assert lines[-1] == f"triage: interrupted by {signal.Signals(sig).name}: partial work and temporary files removed"
    assert not any("Traceback" in line for line in lines)
    assert _pool_processes(str(out)) == []  # no worker outlived the run
    assert os.listdir(tmpdir) == []
    assert not out.exists()


def test_a_worker_killed_mid_run_costs_nothing_its_logs_are_read_again(tmp_path, corpus):
    logs = tmp_path / "logs"
    logs.mkdir()
    for number in range(30):
        shutil.copyfile(BELKASOFT, logs / f"{number:02d}.evtx")
    expected, expected_manifest, _, _ = _case(tmp_path, logs, 1)
    out = tmp_path / "case-killed"
    child = subprocess.Popen([sys.executable, "-m", "triage", str(logs), "-o", str(out), "-q", "--workers", "2",
                              "--hunt-date", HUNT_DATE], cwd=PROJECT, env=child_env(tmp_path / "tmp-killed"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(6000):  # a hang guard: on a loaded machine the pool may take many seconds to fork
        workers = [pid for pid in _pool_processes(str(out)) if pid != child.pid]
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    os.kill(max(workers), signal.SIGKILL)  # out of memory, a crash in a decoder: the worker is gone
    stderr = child.stderr.read()
    child.wait(timeout=900)
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr and "warning" not in stderr
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sha256")
    for name in RUN_FIELDS:
        manifest.pop(name)
    assert files == expected and manifest == expected_manifest  # every log's events, as with one process
    assert manifest["counts"]["events"] % 30 == 0 and manifest["counts"]["events"] > 0
