"""Transaction-log decoding (triage.parsers.hive_log) on logs written by the test-image builder's own
encoder (test_images.taskcache_scenarios: an independent Marvin32 and HvLE writer)."""

from __future__ import annotations

import random
import struct

import pytest

from test_images import taskcache_scenarios as builder
from triage.parsers import ParseError
from triage.parsers.hive_log import (
    HiveLogError,
    applicable_entries,
    hive_is_dirty,
    log_entries,
    marvin32,
    replay_plan,
)

PAGE = bytes(range(256)) * 16


def base_block(seq1: int, seq2: int, file_type: int = 0, size: int = 4096) -> bytes:
    """A regf base block with a correct checksum."""
    block = bytearray(size)
    block[:4] = b"regf"
    struct.pack_into("<III", block, 4, seq1, seq2, file_type)
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(block[:508])):
        checksum ^= word
    struct.pack_into("<I", block, 508, {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(checksum, checksum))
    return bytes(block)


def log(*sequences: int) -> bytes:
    head = base_block(max(sequences, default=1), max(sequences, default=1), file_type=6, size=512)
    return head + b"".join(builder.log_entry(n, 8192, [(0, PAGE)]) for n in sequences)


def test_marvin32_agrees_with_the_builders_independent_implementation():
    rng = random.Random(1053)
    for size in [*range(12), 40, 511, 4096]:
        data = rng.randbytes(size)
        assert marvin32(data) == builder.marvin32(data), size


def test_entries_are_read_in_file_order_with_offsets():
    entries, problems = log_entries("SOFTWARE.LOG1", log(2, 3))
    assert problems == []
    assert [(e.sequence, e.offset) for e in entries] == [(2, 0x200), (3, 0x200 + len(entries[0].data))]


def test_entries_apply_from_the_secondary_sequence_number_and_stop_at_the_first_missing_one():
    logs = {"SOFTWARE.LOG1": log(2, 3, 5), "SOFTWARE.LOG2": log(1)}
    chosen, problems = applicable_entries(2, logs)
    assert ([e.sequence for e in chosen], problems) == ([2, 3], [])  # 1 is stale, 5 follows a hole
    assert [e.sequence for e in applicable_entries(1, logs)[0]] == [1, 2, 3]
    assert applicable_entries(4, logs)[0] == []


def test_a_damaged_entry_ends_its_log_with_a_problem():
    data = bytearray(log(2, 3))
    data[0x200 + 40 + 100] ^= 0xFF
    assert log_entries("SOFTWARE.LOG1", bytes(data)) == (
        [], ["SOFTWARE.LOG1: log entry 2 at 0x200 fails its Marvin32 hash; later entries ignored"])
    data = bytearray(log(2))
    struct.pack_into("<I", data, 0x200 + 4, 100)
    assert log_entries("SOFTWARE.LOG1", bytes(data))[1] == [
        "SOFTWARE.LOG1: log entry at 0x200 has a bad size 100; later entries ignored"]


def test_bytes_that_are_no_log_raise_the_parser_error_and_are_a_problem_among_several_logs():
    with pytest.raises(HiveLogError, match="not a transaction log") as raised:
        log_entries("SOFTWARE.LOG2", b"")
    assert isinstance(raised.value, ParseError)
    chosen, problems = applicable_entries(2, {"SOFTWARE.LOG1": log(2), "SOFTWARE.LOG2": b"\0" * 1024})
    assert [e.sequence for e in chosen] == [2]
    assert problems == ["SOFTWARE.LOG2: not a transaction log (no regf base block or no entries)"]


def test_a_hive_is_dirty_when_its_sequence_numbers_differ_or_its_checksum_is_wrong():
    assert not hive_is_dirty(base_block(7, 7))
    assert hive_is_dirty(base_block(8, 7))
    wrong_sum = bytearray(base_block(7, 7))
    wrong_sum[100] ^= 1
    assert hive_is_dirty(bytes(wrong_sum))
    assert not hive_is_dirty(b"regf")  # too short to say: read as it is


def test_the_replay_plan_is_one_log_of_only_the_applicable_entries():
    logs = {"SOFTWARE.LOG1": log(2, 3), "SOFTWARE.LOG2": log(1)}
    plan = replay_plan(base_block(3, 2), logs)
    assert (plan.logs, [e.sequence for e in plan.entries], plan.problems) == (["SOFTWARE.LOG1"], [2, 3], [])
    assert plan.log_bytes == logs["SOFTWARE.LOG1"][:512] + b"".join(e.data for e in plan.entries)
    assert replay_plan(base_block(5, 4), logs).log_bytes is None
    vista = base_block(1, 1, size=512) + b"DIRT" + bytes(508)
    plan = replay_plan(base_block(2, 1), {"SOFTWARE.LOG": vista})
    assert (plan.log_bytes, plan.logs) == (vista, ["SOFTWARE.LOG"])
    with pytest.raises(HiveLogError):
        replay_plan(b"not a hive", logs)
