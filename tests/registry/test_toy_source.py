"""Adding a source is a parser, a collector on the shared per-file helper and one registration: a toy
source (tests/registry/toy_source.py) listed in ``sources.SOURCE_MODULES`` is read from real evidence,
counted in confidence, named in the timeline CSV and fuzzed, with no other file edited."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from triage import sources
from triage.cli import main

MODULE = "tests.registry.toy_source"


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setattr(sources, "SOURCE_MODULES", [*sources.SOURCE_MODULES, MODULE])
    yield
    sources.unregister("toy")
    sys.modules.pop(MODULE, None)


@pytest.fixture
def toy_evidence(tmp_path):
    """A collection folder (C:\\ with a task folder) holding one toy file and one that is not."""
    root = tmp_path / "evidence"
    (root / "C" / "Windows" / "System32" / "Tasks").mkdir(parents=True)
    (root / "C" / "toy").mkdir()
    (root / "C" / "toy" / "a.toy").write_bytes(b"TOY1\n\\Toy\\Updater\tC:\\Users\\Public\\upd.exe -silent\n")
    (root / "C" / "toy" / "b.toy").write_bytes(b"garbage")
    return root


def test_a_toy_source_added_through_the_registry_is_collected_counted_exported_and_fuzzed(toy_registered, toy_evidence,
                                                                                           tmp_path, capsys):
    case = tmp_path / "case"
    code = main([str(toy_evidence), "-o", str(case), "--hunt-date", "20260101", "-q"])
    err = capsys.readouterr().err
    assert code == 1  # gaps: b.toy does not parse (and the folder has no registry for a time zone)
    assert "b.toy" in err and "not parsed: no TOY1 header" in err

    tasks = [json.loads(line) for line in (case / "tasks.jsonl").read_text().splitlines()]
    toy = [t for t in tasks if t["task"] == "\\Toy\\Updater"]
    assert len(toy) == 1 and toy[0]["sources"] == ["toy"]
    [definition] = toy[0]["definitions"]
    assert definition["actions"][0]["command"] == "C:\\Users\\Public\\upd.exe"
    assert definition["file"]["path"].endswith("toy/a.toy") and len(definition["file"]["sha256"]) == 64

    # confidence: the toy store is an independent artifact of its own
    findings = json.loads((case / "findings.json").read_text())
    toy_findings = [f for f in findings if f["task"] == "\\Toy\\Updater"]
    assert toy_findings and all(f["confidence_basis"].endswith("agree: toy store") for f in toy_findings)

    # the timeline CSV names it by its registered code and display name
    rows = [r for r in csv.DictReader((case / "timeline.csv").open(encoding="utf-8")) if "a.toy" in r["filename"]]
    assert rows and {(r["source"], r["sourcetype"]) for r in rows} == {("TOY", "Toy file")}

    # the fuzz targets and property tests pick the registered parser up
    from tests.hostile.parser_targets import TARGETS, run_one

    assert "toy" in TARGETS
    target = TARGETS["toy"]
    assert [run_one(target, seed) for seed in target.seeds()] == ["decoded"]
    assert run_one(target, b"TOY1\nno tab here") == "rejected"


def test_without_the_registration_the_toy_files_are_not_read(toy_evidence, tmp_path, capsys):
    case = tmp_path / "case"
    main([str(toy_evidence), "-o", str(case), "--hunt-date", "20260101", "-q"])
    assert "toy" not in sources.SOURCES and "b.toy" not in capsys.readouterr().err
    assert "Toy" not in (case / "tasks.jsonl").read_text()
