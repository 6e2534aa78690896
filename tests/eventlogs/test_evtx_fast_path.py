"""The Rust-backed ``evtx`` decoder and triage's own record loop yield the same records.

The fast reader is the decoder of record; the record loop takes every chunk it cannot vouch for.
Both must agree field for field on every real log, or an examiner's output would depend on which
chunk happened to be damaged.
"""

from __future__ import annotations

import io
import struct

import pytest
from dissect.util.ts import wintimestamp

from tests.eventlogs.evtx_corpus import BELKASOFT, CORPUS
from triage.evtx_reader import CHUNK_SIZE, FILE_HEADER_SIZE, EvtxReader

CORPUS_LOGS = sorted(CORPUS.rglob("*.evtx")) if CORPUS.is_dir() else []


def _records(data: bytes, fast: bool):
    problems: list[tuple[str, str]] = []
    reader = EvtxReader(io.BytesIO(data), "log", lambda where, text: problems.append((where, text)), fast=fast)
    records = [(e.record_id, e.chunk, e.offset, list(e.fields.items())) for e in reader]
    return records, problems, reader.stats


@pytest.mark.parametrize("path", CORPUS_LOGS, ids=lambda p: p.name)
def test_both_decoders_yield_identical_records_on_every_corpus_log(path):
    data = path.read_bytes()
    fast, fast_problems, fast_stats = _records(data, fast=True)
    loop, loop_problems, loop_stats = _records(data, fast=False)
    assert fast, "every corpus log holds records"
    # record ids, chunk, file offset, and every field with its value, in order
    assert fast == loop
    assert fast_problems == loop_problems
    # every chunk of these intact logs was decoded by the Rust reader, none by the loop
    assert fast_stats.chunks_fast == fast_stats.chunks_read == loop_stats.chunks_read
    assert loop_stats.chunks_fast == 0


@pytest.mark.usefixtures("corpus")
def test_corpus_holds_the_logs_this_test_claims():
    assert len(CORPUS_LOGS) >= 20
    assert sum(len(_records(p.read_bytes(), fast=True)[0]) for p in CORPUS_LOGS) >= 5000


def test_altered_chunk_goes_to_the_record_loop_and_keeps_its_other_records():
    data = bytearray(BELKASOFT.read_bytes())
    chunk = FILE_HEADER_SIZE + 2 * CHUNK_SIZE
    free = struct.unpack_from("<I", data, chunk + 48)[0]
    data[chunk + free - 40] ^= 0xFF  # a byte inside the last record's data: the record CRC no longer holds
    records, problems, stats = _records(bytes(data), fast=True)
    intact, _, _ = _records(BELKASOFT.read_bytes(), fast=True)
    assert stats.chunks_fast == stats.chunks_read - 1
    assert any("chunk 2" in where and "checksum mismatch" in text for where, text in problems)
    # the records of every other chunk are untouched, and most of chunk 2 is still read
    assert [r for r in records if r[1] != 2] == [r for r in intact if r[1] != 2]
    assert len([r for r in records if r[1] == 2]) >= len([r for r in intact if r[1] == 2]) - 1


def test_filetime_is_converted_exactly_where_dissect_is_a_microsecond_off():
    # Record 3 of Velociraptor's TaskScheduler.evtx carries TimeCreated = 132562212363995815 ticks.
    ticks = 132562212363995815
    micro = (ticks - 116444736000000000) // 10  # 100 ns ticks since 1970, truncated to microseconds
    assert micro % 1_000_000 == 399581
    assert wintimestamp(ticks).microsecond == 399580  # dissect's float conversion: one microsecond early
    records, _, _ = _records((CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/TaskScheduler.evtx").read_bytes(), fast=True)
    third = dict(next(r for r in records if r[0] == 3)[3])
    assert third["TimeCreated_SystemTime"] == "2021-01-27T11:40:36.399581Z"
