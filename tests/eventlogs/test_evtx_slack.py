"""Bytes after a log's last chunk (slack Windows leaves in real logs) are a note, not a gap.

dissect and plaso skip such slack; triage still carves it for records, reports what it found in the
manifest's notes, and keeps exit code 0, because nothing that belongs to the log went unread.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from tests.eventlogs.evtx_corpus import BELKASOFT, VELO
from triage.evtx_reader import CHUNK_SIZE, FILE_HEADER_SIZE, EvtxReader

PROJECT = Path(__file__).resolve().parents[2]


def _log_with_slack() -> bytes:
    """Velociraptor's one-chunk TaskScheduler log, then an old chunk with its signature gone, then a torn tail."""
    log = (VELO / "TaskScheduler.evtx").read_bytes()
    old = bytearray(BELKASOFT.read_bytes()[FILE_HEADER_SIZE + 3 * CHUNK_SIZE:FILE_HEADER_SIZE + 4 * CHUNK_SIZE])
    old[:8] = b"\x00" * 8  # Windows reuses the space: the chunk signature no longer holds
    return log + bytes(old) + b"\xab" * 3000


def test_slack_is_noted_carved_and_not_a_gap():
    problems, notes = [], []
    reader = EvtxReader(io.BytesIO(_log_with_slack()), "slack.evtx",
                        on_problem=lambda where, text: problems.append(where),
                        on_note=lambda where, text: notes.append((where, text)))
    records = list(reader)
    assert problems == []
    assert [r.record_id for r in records if r.chunk == 0] == list(range(1, 21))
    assert {where for where, _ in notes} == {"chunk 1 at offset 0x11000", "chunk 2 at offset 0x21000"}
    assert all(text.startswith("slack after the log's last chunk") for _, text in notes)
    carved = [r for r in records if r.chunk == 1]
    assert carved, "the old chunk's records are carved from the slack"
    assert all(r.fields["Channel"] == "Microsoft-Windows-TaskScheduler/Operational" for r in carved)


def test_a_damaged_declared_chunk_is_still_a_gap():
    data = bytearray((VELO / "TaskScheduler.evtx").read_bytes())
    data[FILE_HEADER_SIZE:FILE_HEADER_SIZE + 8] = b"\x00" * 8  # chunk 0 is declared by the header
    problems = []
    list(EvtxReader(io.BytesIO(bytes(data)), "x", on_problem=lambda where, text: problems.append(text)))
    assert any("bad ElfChnk signature" in text for text in problems)


def test_cli_exits_0_on_a_log_with_slack_and_keeps_the_note(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "Microsoft-Windows-TaskScheduler%4Operational.evtx").write_bytes(_log_with_slack())
    case = tmp_path / "case"
    run = subprocess.run([sys.executable, "-m", "triage", "-q", str(logs), "-o", str(case), "--hunt-date", "20261205"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr
    manifest = json.loads((case / "manifest.json").read_text())
    assert manifest["gaps"] == []
    assert len(manifest["notes"]) == 2
    assert all("slack after the log's last chunk" in note["problem"] for note in manifest["notes"])
