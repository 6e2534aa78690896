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
import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile.parser_targets import TARGETS, run_one
from tests.linear_time import assert_linear

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

settings.register_profile("triage-suite", max_examples=60, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("triage-nightly", max_examples=10_000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("triage-nightly" if os.environ.get("TRIAGE_HYPOTHESIS") == "nightly" else "triage-suite")
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
COUNTS: Counter = Counter()

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
# Values that reach the code behind a successful parse (durations, dates, cron fields, unit syntax).
TOKENS = [b"P99999999999Y", b"-PT1S", b"PT", b"P1.5M", b"9999-12-31T23:59:59", b"0000-00-00T00:00:00Z",
          b"2024-02-30T25:61:61+99:99", b"99999999999999999999", b"-1", b"true", b"&amp;", b"&#0;", b"]]>",
          b"<Exec><Command>", b"</Exec>", b"<TimeTrigger>", b"<Repetition><Interval>", b"\x00", b"\xff\xfe",
          b"*/0", b"0-99", b"@reboot", b"7-0", b"\\\n", b"%", b"=", b"\n[Timer]\nOnCalendar=", b"*-*-31 25:00",
          b"Mon..Sun", b"; export ", b"${SHELL:-/bin/sh} << 'marcinDELIMITER0'\n", b"CMD (", b") ", b"\"", b"(c000013a)"]


@st.composite
def mutated(draw, seeds: tuple[bytes, ...]) -> bytes:
    """A real sample with 1-4 damages applied."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "integer", "splice", "repeat", "delete", "token"]))
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
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
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
    # the slow ones (quadratic regexes) are also 1 MB cases below, checked for linear cost
    run_one(TARGETS[name], path.read_bytes())


# --- linear time: 1 MB of the worst a parser can be handed --------------------------------------

MB = 1 << 20


def _repeat(token: bytes, size: int = MB) -> bytes:
    return (token * (size // len(token) + 1))[:size]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _log_of_one_entry(size: int) -> bytes:
    """A transaction log whose one HvLE entry spans the whole file: its Marvin32 hash reads every byte."""
    entry = (size - 512) // 512 * 512
    return b"regf" + bytes(508) + b"HvLE" + struct.pack("<IIIII", entry, 0, 2, 0, 0) + bytes(entry - 24)


def _hostile_blobs(size: int = MB) -> list[tuple[str, str, bytes]]:
    """The worst inputs of about ``size`` bytes (1 MB by default; smaller ones are the linear-time reference)."""
    from test_images.jobfile import encode_job
    from test_images.windows_tree import at_jobs

    nested = b"<Task>" + b"<a>" * (size // 10) + b"</a>" * (size // 10) + b"</Task>"
    cases = [
        ("task_xml", "nested-100k", nested),
        ("task_xml", "30k-exec-actions", b"<Task><Actions>" + _repeat(b"<Exec><Command>a</Command></Exec>", size) + b"</Actions></Task>"),
        ("task_xml", "1MB-duration", b"<Task><Settings><ExecutionTimeLimit>P" + b"1" * size + b"</ExecutionTimeLimit></Settings></Task>"),
        ("gpp", "nested-100k", nested.replace(b"Task>", b"ScheduledTasks>")),
        ("job", "65535-triggers", encode_job(at_jobs()[0].job)[:0x46] + b"\0\0" * 7 + b"\xff\xff" + b"\x30\0" * (size // 2)),
        ("job", "text-as-job", b"Mar  1 01:02:03 h " + b"a" * size),
        ("schedlgu", "status-of-spaces", b'"x.job"\n a' + b" " * size + b"x"),
        ("schedlgu", "1MB-of-junk-lines", _repeat(b"x \\\n", size)),
        ("taskcache_actions", "exec-actions", b"\x03\x00" + b"\0" * 4 + _repeat(b"\x66\x66" + b"\0" * 12, size)),
        ("taskcache_triggers", "0xdddd-triggers", b"\x17" + b"\0" * 7 + _repeat(b"\xdd\xdd\0\0", size)),
        ("taskcache_triggers", "ones", b"\xff" * size),
        ("taskcache_dynamic_info", "zeros", b"\0" * size),
        ("security_descriptor", "acl-of-max-aces", b"\x01\x00\x04\x80" + b"\0" * 12 + b"\x14\0\0\0" + b"\x02\x00\xff\xff\xff\xff" + b"\0" * (size - 26)),
        ("evtx_task_content", "nested-100k", nested),
        ("evtx_task_content", "tn-quotes", _repeat(b"schtasks /create /tn '", size)),
        ("hive_log", "one-entry-of-all-of-it", _log_of_one_entry(size)),
        ("crontab", "1MB-star-field", b"*" * size + b" * * * * root x"),
        ("crontab", "comma-list", _repeat(b"1,", size) + b" * * * * x"),
        ("crontab", "fields-of-stars", _repeat(b"* ", size)),
        ("anacrontab", "numbers", _repeat(b"1 ", size)),
        ("anacrontab", "env-of-spaces", b"A" + b" " * size + b"="),
        ("atjob", "export-without-end", b"A=" + b"x" * size + b"; export B"),
        ("atjob", "newlines", b"\n" * size),
        ("systemd_unit", "continuations", b"[Timer]\nOnCalendar=" + _repeat(b"x \\\n", size)),
        ("systemd_unit", "newlines", b"\n" * size),
        ("cronlog", "tag-of-open-parens", b"Mar  1 01:02:03 h " + _repeat(b"a(", size)),
        ("cronlog", "cron-info-parens", b"Mar  1 01:02:03 h CRON[1]: (u) " + _repeat(b"x (", size)),
        ("cronlog", "systemd-dots", b"Mar  1 01:02:03 h systemd[1]: Starting " + b"." * size),
    ]
    return cases


def _single_parse(name: str):
    """One parser call (the property calls also run derived functions and both file roles)."""
    from triage.parsers import anacrontab, crontab, cronlog, systemd_unit
    from tests.hostile import parser_targets as t

    singles = {
        "crontab": lambda d: crontab.parse_crontab(_text(d), "/etc/crontab", user_column=True),
        "anacrontab": lambda d: anacrontab.parse_anacrontab(_text(d), "/etc/anacrontab"),
        "systemd_unit": lambda d: systemd_unit.parse_unit(_text(d), "x.timer", "/etc/systemd/system/x.timer"),
        "cronlog": lambda d: cronlog.parse_log(_text(d), "/var/log/syslog", channel="syslog", mtime=t.NOW, tz=t.BERLIN),
    }
    return singles.get(name, TARGETS[name].call)


@pytest.mark.parametrize(("name", "case", "blob", "reference"),
                         [(*big, small[2]) for big, small in zip(_hostile_blobs(), _hostile_blobs(MB // 8), strict=True)],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_one_megabyte_hostile_input_costs_linear_time(name, case, blob, reference):
    """1 MB of the worst input costs at most linear time against the same input at 128 KB (CPU time)."""
    assert_linear(_single_parse(name), reference, blob, 8, expected=TARGETS[name].error, what=f"{name} on {case}")
