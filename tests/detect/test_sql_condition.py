"""Sigma conditions compiled to Python give SQLite's answers: on generated values and conditions in the SQLite
backend's dialect, on the odd cases SQLite settles its own way, and on every corpus event log with the shipped and
the SigmaHQ task rules (the compiled evaluator against the all-SQLite reference)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import CORPUS
from triage.detect.sigma import EventRef, RuleSet, SigmaEvaluator, load_rules, shipped_rules
from triage.detect.sql_condition import compile_condition, fold_row
from triage.evtx_reader import EvtxReader

CORPUS_LOGS = sorted(CORPUS.rglob("*.evtx")) if CORPUS.is_dir() else []
TASK_RULES = CORPUS / "SigmaHQ__sigma" / "rules-task-related"
COLUMNS = {"c0": 0, "c1": 1}


def _never(column: str, pattern: str) -> bool:
    return False


def _sqlite_selects(condition: str, values: tuple[str | None, str | None]) -> bool:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE events (c0 TEXT COLLATE NOCASE, c1 TEXT COLLATE NOCASE)")
    conn.execute("INSERT INTO events VALUES (?, ?)", values)
    (count,) = conn.execute(f"SELECT count(*) FROM events WHERE {condition}").fetchone()
    conn.close()
    return count == 1


def _compiled_selects(condition: str, values: tuple[str | None, str | None]) -> bool:
    test = compile_condition(condition, COLUMNS, _never)
    assert test is not None, condition
    return test(*fold_row(values))


# Letters whose case SQLite folds (ASCII) and does not (É/é, the Kelvin sign that Unicode folds to k, the long s),
# LIKE's wildcards and escape, a NUL (LIKE reads up to it, = does not), a quote.
ALPHABET = "aAkK\u212a\u017fsS\u00e9\u00c9_%\\ '\x00"
values = st.one_of(st.none(), st.text(ALPHABET, max_size=6))
literals = st.text(ALPHABET.replace("\x00", ""), max_size=5)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _atoms():
    column = st.sampled_from(["c0", "c1"])
    like = st.builds(lambda c, p: f"{c} LIKE {_quoted(p)} ESCAPE '\\'", column,
                     literals.filter(lambda p: (len(p) - len(p.rstrip("\\"))) % 2 == 0))
    plain_like = st.builds(lambda c, p: f"{c} LIKE {_quoted(p)}", column, literals.map(lambda p: p.replace("\\", "")))
    equal = st.builds(lambda c, p: f"{c}={_quoted(p)}", column, literals)
    number = st.builds(lambda c, n: f"{c}={n}", column, st.integers(-20, 20))
    null = st.builds(lambda c, n: f"{c} IS {'NOT ' if n else ''}NULL", column, st.booleans())
    return st.one_of(like, plain_like, equal, number, null)


conditions = st.recursive(_atoms(), lambda inner: st.one_of(
    st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
    st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
    st.builds(lambda a: f"(NOT COALESCE({a}, 0))", inner)), max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(conditions, values, values)
def test_compiled_condition_selects_what_sqlite_selects(condition, first, second):
    row = (first, second)
    assert _compiled_selects(condition, row) == _sqlite_selects(condition, row)


@pytest.mark.parametrize(("condition", "row", "selected"), [
    ("c0 LIKE '%\u00e9%' ESCAPE '\\'", ("\u00c9", None), False),  # SQLite folds ASCII letters only
    ("c0 LIKE 'k'", ("\u212a", None), False),  # nor does it fold the Kelvin sign, which Unicode folds to k
    ("c0='K'", ("k", None), True),
    ("c0 LIKE 'ab%' ESCAPE '\\'", ("ab\x00cd", None), True),
    ("c0 LIKE '%cd' ESCAPE '\\'", ("ab\x00cd", None), False),  # LIKE stops at the NUL
    ("c0='ab'", ("ab\x00cd", None), False),  # = compares the whole value
    ("c0 LIKE 'a_c'", ("a\u00e9c", None), True),  # _ is one character, not one byte
    ("c0 LIKE '50\\%' ESCAPE '\\'", ("50%", None), True),
    ("c0 LIKE '50\\%' ESCAPE '\\'", ("500", None), False),
    ("c0=5", ("5", None), True),
    ("c0=5", ("05", None), False),  # the number is compared as its text
    ("NOT COALESCE((c0 LIKE '%x%' ESCAPE '\\'), 0)", (None, None), True),  # an absent field is not a match
    ("c0 LIKE '%'", ("", None), True),
    ("c0 LIKE '%'", (None, None), False),
])
def test_the_cases_sqlite_settles_its_own_way(condition, row, selected):
    assert _sqlite_selects(condition, row) is selected
    assert _compiled_selects(condition, row) is selected


@pytest.mark.parametrize("condition", [
    "c0 REGEXP 'a.c'",
    "c0 GLOB 'a*'",
    "NOT (c0 LIKE 'a')",  # NOT over a value that may be NULL: three-valued logic, left to SQLite
    "c0 LIKE 'a\\' ESCAPE '\\'",  # a pattern ending in its escape
    "c0 > 5",
    "c9 LIKE 'a'",  # a column the row does not have
    "c0=c1",
])
def test_what_is_not_compiled_is_left_to_sqlite(condition):
    assert compile_condition(condition, COLUMNS, _never) is None


def test_a_rule_left_to_sqlite_still_matches_beside_compiled_ones(tmp_path):
    (tmp_path / "regex.yml").write_text(
        "title: Schtasks by regex\nid: 6d1f7b3c-1111-4a4a-9b9b-000000000001\nstatus: test\nlevel: low\n"
        "logsource: {product: windows, category: process_creation}\n"
        "detection: {selection: {Image|re: '(?i)\\\\schtasks\\.exe$'}, condition: selection}\n")
    extra = load_rules([tmp_path / "regex.yml"])
    rules = RuleSet(loaded=[*shipped_rules().loaded, *extra.loaded])
    compiled = SigmaEvaluator(rules)
    assert compiled.rules_in_sqlite == ["6d1f7b3c-1111-4a4a-9b9b-000000000001"]
    log = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx"
    found = _found(compiled, [log])
    assert found == _found(SigmaEvaluator(rules, compiled=False), [log])
    assert "6d1f7b3c-1111-4a4a-9b9b-000000000001" in dict(found)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    task_rules = load_rules([TASK_RULES])
    return RuleSet(loaded=[*shipped_rules().loaded, *task_rules.loaded])


def _found(evaluator: SigmaEvaluator, logs: list[Path]) -> list[tuple[str, list]]:
    for path in logs:
        with open(path, "rb") as fh:
            for record in EvtxReader(fh, str(path)):
                evaluator.add(record.fields, EventRef(location=f"{path} {record.offset}"))
    return [(m.rule_id, [e.provenance.location for e in m.events]) for m in evaluator.matches()]


@pytest.mark.usefixtures("corpus")
def test_every_shipped_and_sigmahq_task_rule_runs_compiled(rules):
    assert len(rules.loaded) >= 200
    assert SigmaEvaluator(rules).rules_in_sqlite == []


@pytest.mark.parametrize("path", CORPUS_LOGS, ids=lambda p: p.name)
def test_compiled_rules_match_what_sqlite_matches_on_every_corpus_log(path, rules):
    compiled = _found(SigmaEvaluator(rules, batch_size=300), [path])
    assert compiled == _found(SigmaEvaluator(rules, batch_size=300, compiled=False), [path])


@pytest.mark.usefixtures("corpus")
def test_the_corpus_logs_give_the_rules_something_to_match(rules):
    assert len(CORPUS_LOGS) >= 20
    matched = _found(SigmaEvaluator(rules), CORPUS_LOGS)
    assert len(matched) >= 30 and sum(len(events) for _, events in matched) >= 70  # 33 rules, 79 events
