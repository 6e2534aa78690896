"""The closed vocabularies hold on real output: every time, source and risk a test image yields is a
member of triage.vocab / the sources table, so a drifted value (``basis="unknown"``, ``"logged"``)
fails here instead of reaching a report."""

from __future__ import annotations

import dataclasses
import json

from triage import sources
from triage.collect import Context
from triage.records import Stamp, to_dict
from triage.run import run
from triage.vocab import Basis, Confidence, Kind, Meaning, Precision, Risk


def _stamps(obj, found):
    """Every Stamp reachable from a record (definitions, triggers, file facts, events, jobs)."""
    if isinstance(obj, Stamp):
        found.append(obj)
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _stamps(getattr(obj, f.name), found)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _stamps(item, found)
    return found


def test_every_value_of_the_windows_image_is_in_its_vocabulary(committed_windows_e01):
    case = run([str(committed_windows_e01)], Context(quiet=True), hunt_date="20260101")
    stamps = _stamps([case.definitions, case.events, case.unix_jobs, case.processes], [])
    assert len(stamps) > 100
    assert {s.basis for s in stamps} <= set(Basis)
    assert {s.precision for s in stamps} <= set(Precision)
    assert {s.meaning for s in stamps} <= set(Meaning)
    assert {r.basis for r in case.timeline} <= set(Basis) and {r.meaning for r in case.timeline} <= set(Meaning)
    assert {d.source for d in case.definitions} <= set(sources.SOURCES)
    assert {r.provenance.artifact for r in case.timeline} <= set(sources.SOURCES)
    assert {e.kind for e in case.entities} <= set(Kind)
    assert case.findings and {f.risk_level for f in case.findings} <= set(Risk)
    assert {f.confidence for f in case.findings} <= set(Confidence)


def test_vocabulary_members_serialise_as_their_plain_text():
    stamp = Stamp(meaning=Meaning.EVENT_LOGGED, utc=None, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
    assert json.dumps(to_dict(stamp)) == '{"meaning": "event_logged", "basis": "unparsed", "precision": "unknown"}'
    assert Basis.UTC == "utc" and f"{Precision.HUNDRED_NS}" == "100ns"
