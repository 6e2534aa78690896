"""Pure decoding of the EWF sections that hold acquisition hashes and metadata (triage.ewf)."""

from __future__ import annotations

import struct

import pytest

from triage import ewf

MD5 = bytes(range(16))
SHA1 = bytes(range(100, 120))


def _hash_section(md5: bytes) -> bytes:
    return md5 + bytes(16) + struct.pack("<I", 0)


def _digest_section(md5: bytes, sha1: bytes) -> bytes:
    return md5 + sha1 + bytes(40) + struct.pack("<I", 0)


def test_a_digest_section_wins_over_an_earlier_hash_section_and_zero_means_not_stored():
    other = bytes(reversed(MD5))
    sections = [(b"volume", b"x"), (b"hash", _hash_section(other)), (b"digest", _digest_section(MD5, SHA1))]
    assert ewf.stored_hashes(sections) == {"md5": MD5.hex(), "sha1": SHA1.hex()}
    assert ewf.stored_hashes([(b"digest", _digest_section(bytes(16), SHA1)), (b"hash", _hash_section(other))]) \
        == {"md5": other.hex(), "sha1": SHA1.hex()}
    assert ewf.stored_hashes([(b"hash", _hash_section(bytes(16)))]) == {}


def test_a_short_hash_section_is_an_error_not_a_hash():
    with pytest.raises(ewf.EwfSectionError, match="digest section holds 20 bytes"):
        ewf.stored_hashes([(b"digest", _digest_section(MD5, SHA1)[:20])])


def test_header2_fields_are_named_the_password_dropped_and_posix_dates_given_in_utc():
    text = "1\nmain\nc\tn\te\tp\tm\n42\tEV-7\tJ. Doe\tsecret\t1710407564\n\n"
    fields = ewf.header_fields(b"\xff\xfe" + text.encode("utf-16-le"))
    assert fields == {"case_number": "42", "evidence_number": "EV-7", "examiner_name": "J. Doe",
                      "acquisition_date": "1710407564", "acquisition_date_utc": "2024-03-14T09:12:44Z"}
    assert ewf.header_fields(b"too short") == {}


def test_compare_names_each_hash_that_does_not_match():
    match, status = ewf.compare({"md5": "a", "sha1": "b"}, {"md5": "a", "sha1": "c"})
    assert (match, status) == ({"md5": True, "sha1": False}, ewf.MISMATCH)
    assert ewf.mismatch_problem(match).startswith("media data does not hash to the SHA1 stored")
    assert ewf.compare({"md5": "a"}, {"md5": "a", "sha1": "c"}) == ({"md5": True}, ewf.VERIFIED)
