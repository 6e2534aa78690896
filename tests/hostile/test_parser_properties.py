"""Every evidence parser, fed mutated real inputs, raises nothing but its own documented error.

Inputs start from real corpus files and builder outputs (tests/hostile/parser_targets.py) and are
damaged the way an attacker or a bad disk would: bit flips, truncation, inserted bytes, large
integers written over length/count fields, splices of two real samples. Two hypothesis profiles:
the suite's (small, every run) and ``TRIAGE_HYPOTHESIS=nightly`` (10,000 inputs per parser). With
``TRIAGE_HYPOTHESIS_COUNTS=FILE`` the number of inputs each parser took is written to FILE (JSON).
Inputs that once broke a parser are kept in tests/hostile/regressions/<parser>/ and replayed.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile.parser_targets import TARGETS, run_one

settings.register_profile("triage-suite", max_examples=40, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("triage-nightly", max_examples=10_000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("triage-nightly" if os.environ.get("TRIAGE_HYPOTHESIS") == "nightly" else "triage-suite")
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
COUNTS: Counter = Counter()

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@st.composite
def mutated(draw, seeds: tuple[bytes, ...]) -> bytes:
    """A real sample with 1-4 damages applied."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "integer", "splice", "repeat", "delete"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "integer":
            width = draw(st.sampled_from([1, 2, 4]))
            value = draw(st.sampled_from(INTERESTING)) & ((1 << 8 * width) - 1)
            data[at:at + width] = value.to_bytes(width, "little")
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            cut = draw(st.integers(0, len(other)))
            data = data[:at] + bytearray(other[cut:])
        elif kind == "repeat" and data:
            end = min(len(data), at + draw(st.integers(1, 64)))
            data[at:at] = data[at:end] * draw(st.integers(2, 20))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    yield
    if out := os.environ.get("TRIAGE_HYPOTHESIS_COUNTS"):
        path = Path(out)
        previous = json.loads(path.read_text()) if path.exists() else {}
        previous.update({name: dict(sorted(c.items())) for name, c in _by_parser().items()})
        path.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")


def _by_parser() -> dict[str, Counter]:
    grouped: dict[str, Counter] = {}
    for (name, outcome), count in COUNTS.items():
        grouped.setdefault(name, Counter())[outcome] += count
    return grouped


def _property(name: str):
    target = TARGETS[name]

    @PROFILE
    @given(mutated(tuple(target.seeds())))
    def check(data: bytes) -> None:
        COUNTS[name, run_one(target, data)] += 1

    return check


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_raises_only_its_documented_error_on_mutated_real_inputs(name):
    _property(name)()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_accepts_every_unmutated_seed(name):
    """The seeds are real evidence: each is decoded (a few are documented rejects, e.g. SDDL text)."""
    target = TARGETS[name]
    outcomes = Counter(run_one(target, seed) for seed in target.seeds())
    assert outcomes["decoded"] >= 1
    assert sum(outcomes.values()) == len(target.seeds())


def _regression_inputs() -> list[tuple[str, Path]]:
    return sorted((p.parent.name, p) for p in REGRESSIONS.glob("*/*") if p.is_file() and p.parent.name in TARGETS)


@pytest.mark.parametrize(("name", "path"), _regression_inputs(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_input_that_once_broke_a_parser_gives_only_the_documented_error(name, path):
    started = time.perf_counter()
    run_one(TARGETS[name], path.read_bytes())
    assert time.perf_counter() - started < 1.0
