"""Round trip as a property: any Actions or Triggers value that decodes cleanly, including values
damaged byte by byte from the real Windows samples, re-encodes to exactly its own bytes."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_images.taskcache_blobs import encode_actions_blob, encode_triggers
from tests.conftest import CORPUS
from triage.parsers.taskcache import decode_actions, decode_triggers

pytestmark = pytest.mark.usefixtures("corpus")
SAMPLES = CORPUS / "taskcache-values"


@functools.cache
def _samples(value: str) -> list[bytes]:
    """The real values named ``value`` (Actions, Triggers), read when a test first needs them."""
    return sorted(p.read_bytes() for p in SAMPLES.rglob(f"*__{value}.bin"))


def _mutated(value: str):
    """A real sample with a few bytes overwritten: most mutations land in strings, padding and times."""
    return st.deferred(lambda: st.sampled_from(_samples(value))).flatmap(lambda data: st.lists(
        st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=4,
    ).map(lambda edits: _apply(data, edits)))


def _apply(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for offset, value in edits:
        out[offset] = value
    return bytes(out)


def test_the_corpus_holds_samples_to_mutate():
    assert (len(_samples("Actions")), len(_samples("Triggers"))) == (2, 13)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated("Actions"))
def test_clean_actions_decodes_re_encode_to_the_same_bytes(data):
    blob = decode_actions(data)
    if not blob.errors:
        assert encode_actions_blob(blob) == data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated("Triggers"))
def test_clean_triggers_decodes_re_encode_to_the_same_bytes(data):
    blob = decode_triggers(data)
    if not blob.errors:
        assert encode_triggers(blob) == data


def test_a_trigger_id_without_its_nul_terminator_is_flagged_not_completed():
    """Found by the property above: a WNF trigger's id length raised from 0 to 2 read the padding ("HH") as an
    id; Windows always writes the NUL, so the decoder now says so instead of decoding it as clean."""
    data = bytearray(next(p for p in SAMPLES.rglob("TestStateChangeTrigger__Triggers.bin")).read_bytes())
    assert not decode_triggers(bytes(data)).errors
    data[345] = 2
    blob = decode_triggers(bytes(data))
    assert [e for e in blob.errors if "no UTF-16 NUL terminator" in e and ".id" in e]
