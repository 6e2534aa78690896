"""Shared paths and small helpers for the event-log tests (real corpus files only)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from triage.evtx_reader import EvtxReader
from triage.parsers.evtx_task import task_event
from tests.conftest import CORPUS

VELO = CORPUS / "Velocidex__velociraptor" / "artifacts" / "testdata" / "files"
ATTACK = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"
SIGMA = CORPUS / "SigmaHQ__sigma"
BELKASOFT = (CORPUS / "AndrewRathbun__DFIRArtifactMuseum" / "Windows" / "EventLogs" / "Win10" / "BelkasoftCTF_InsiderThreat"
             / "BelkasoftCTF_InsiderThreat.7z.extracted" / "Microsoft-Windows-TaskScheduler%4Operational.evtx")


def read(path: Path, problems: list | None = None):
    with open(path, "rb") as fh:
        sink = (lambda where, text: problems.append((where, text))) if problems is not None else None
        return list(EvtxReader(fh, str(path), sink))


def counts(events) -> dict[int, int]:
    return dict(sorted(Counter(int(e.fields["EventID"]) for e in events).items()))


def task_events(path: Path):
    return [t for e in read(path) if (t := task_event(e.fields, location=str(path))) is not None]
