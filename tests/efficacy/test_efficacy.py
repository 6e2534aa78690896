"""The known error rate holds: triage on the labelled set (tests/efficacy/labels) detects at least as many
malicious items per source as recorded in bench/results/efficacy.json, and no benign or stock item reaches
Medium. Every real task sample in ../shared/corpus carries a label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench import efficacy

RECORDED = json.loads(efficacy.RESULTS.read_text(encoding="utf-8"))
needs_corpus = pytest.mark.skipif(not efficacy.CORPUS.is_dir(), reason="../shared/corpus not present")


@pytest.fixture(scope="module")
def result():
    return efficacy.evaluate()


def _rows(data: dict) -> dict[tuple[str, str], dict]:
    return {(r["source"], r["mode"]): r for r in data["rows"]}


@needs_corpus
def test_recall_per_source_does_not_drop_below_the_recorded_value(result):
    now = _rows(result)
    dropped = [(key, row["detected"], now.get(key, {}).get("detected", 0)) for key, row in _rows(RECORDED).items()
               if row["malicious"] and now.get(key, {}).get("detected", 0) < row["detected"]]
    assert dropped == []
    assert result["totals"]["full disk"]["detected"] >= RECORDED["totals"]["full disk"]["detected"]


@needs_corpus
def test_no_benign_or_stock_item_reaches_medium(result):
    false_positives = [m for m in result["misses"] if m["label"] == "benign"]
    assert false_positives == []
    assert sum(t["benign"] for t in result["totals"].values()) >= 250  # the stock folders really were judged


@needs_corpus
def test_no_labelled_run_is_silently_skipped(result):
    # a run triage cannot open judges nothing: it may only be one already known and recorded
    assert set(result["not_opened"]) <= set(RECORDED["not_opened"])


def _labelled_paths() -> set[str]:
    paths: set[str] = set()
    for file in efficacy.LABELS.glob("*.yml"):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        paths |= {v["file"] for v in data.get("values", [])}
        for case in data.get("cases", []):
            paths |= set(case.get("evidence", [])) | set(case.get("layout", {}))
            paths |= {u["folder"] for u in case.get("items_under", [])}
    return paths


def _covered(path: str, labelled: set[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in labelled)


@needs_corpus
def test_every_real_task_sample_in_the_corpus_has_a_label():
    corpus = efficacy.CORPUS
    samples = [p for p in corpus.rglob("*.evtx")]
    samples += [p for p in corpus.glob("taskcache-values/*/*.bin")]
    samples += [p for p in (corpus / "AndrewRathbun__DFIRArtifactMuseum/Windows/ScheduledTasks").rglob("*") if p.is_file()]
    samples += [p for p in corpus.rglob("*") if p.is_file() and (p.suffix in (".job",) or p.name == "ScheduledTasks.xml"
                                                                   or "T1053.005/src" in str(p) or p.name == "MapsToastTask")]
    samples += [p for p in corpus.glob("AiratNig__python-crontab/tests/data/**/*") if p.is_file()]
    samples += [p for p in corpus.glob("cronie-crond__cronie/contrib/*")]
    samples += [p for p in corpus.glob("logrotate__logrotate/examples/*")]
    samples += [corpus / "log2timeline__plaso/test_data/syslog/syslog_cron.log",
                corpus / "AndrewRathbun__DFIRArtifactMuseum/Linux/GeminiIntrusion/var/log/syslog"]
    labelled = _labelled_paths()
    missing = sorted(str(p.relative_to(corpus)) for p in samples if not _covered(str(p.relative_to(corpus)), labelled))
    assert len(samples) >= 270
    assert missing == []


def test_labels_say_what_and_why():
    for file in efficacy.LABELS.glob("*.yml"):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        entries = [*data.get("values", [])]
        for case in data.get("cases", []):
            entries += case.get("items", []) + case.get("items_under", [])
            entries += [case["items_from_stock"]] if "items_from_stock" in case else []
        for entry in entries:
            assert entry["label"] in ("malicious", "benign"), (file.name, entry)
            assert entry["why"].strip(), (file.name, entry)
            assert entry["label"] == "benign" or entry["min_risk"] in efficacy.RISK, (file.name, entry)


def test_an_item_is_judged_by_its_own_findings_only():
    item = efficacy.Item(source="s", mode="logs only", case="c", label="malicious", why="w", task=r"\A", min_risk="High")
    stock = efficacy.Item(source="s", mode="logs only", case="c", label="benign", why="w", task=r"\Microsoft\B")
    findings = [{"task": r"\a", "risk_level": "Medium", "rule": "x", "title": "t"},
                {"task": r"\Microsoft\B", "risk_level": "Low", "rule": "y", "title": "t"},
                {"task": r"\C", "risk_level": "Critical", "rule": "z", "title": "t"}]
    missed, quiet = efficacy.judge([item, stock], findings)
    assert (missed.risk, missed.passed) == ("Medium", False)
    assert (quiet.risk, quiet.passed) == ("Low", True)
    whole = efficacy.Item(source="s", mode="logs only", case="c", label="benign", why="w")
    [loud] = efficacy.judge([whole], findings)
    assert (loud.risk, loud.passed) == ("Critical", False)
    assert Path(efficacy.RESULTS).is_file()
