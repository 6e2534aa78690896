"""Self-relative security descriptors (TaskCache Tree ``SD``): parse, render SDDL, survive garbage.

No real SD bytes exist in the corpus (PROVENANCE "Not found"), so descriptors are built from SDDL by
the image encoder and cross-checked with dissect.ntfs's independent SECURITY_DESCRIPTOR parser.
"""

from __future__ import annotations

import io
import random

import pytest
from dissect.ntfs.secure import SecurityDescriptor as DissectSecurityDescriptor

from test_images.taskcache_blobs import encode_security_descriptor
from triage.parsers.security_descriptor import (
    SecurityDescriptorError,
    parse_security_descriptor,
    rights_string,
    sid_from_bytes,
    sid_to_bytes,
)

# What Windows shows for task folders / tasks (O:BA owner, SYSTEM and admins full, users read).
TASK_SDDL = "O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FR;;;AU)(A;;0x1200a9;;;S-1-5-21-3262475209-2374237165-4262510312-1000)"


@pytest.mark.parametrize(
    "sddl",
    [
        TASK_SDDL,
        "O:BAG:SYD:",  # GhostTask: empty DACL
        "O:BAG:SY",  # no DACL at all
        "O:SYG:SYD:NO_ACCESS_CONTROL",  # NULL DACL
        "O:BAG:SYD:PAI(A;OICIID;FA;;;SY)(D;;GA;;;WD)(A;CIIO;GRGX;;;BU)",
        "O:BAG:SYD:(A;;FA;;;SY)S:(AU;SAFA;FA;;;WD)",
    ],
)
def test_sddl_round_trips_through_the_binary_descriptor(sddl):
    sd = parse_security_descriptor(encode_security_descriptor(sddl))
    assert sd.sddl == sddl


def test_task_descriptor_fields():
    data = encode_security_descriptor(TASK_SDDL)
    sd = parse_security_descriptor(data)
    assert (sd.revision, sd.owner, sd.group, sd.size) == (1, "S-1-5-32-544", "S-1-5-18", len(data))
    assert sd.control_names == ["SE_DACL_PRESENT", "SE_SELF_RELATIVE"]
    assert [(a.type_name, a.flags, hex(a.mask), a.sid) for a in sd.dacl] == [
        ("A", 0, "0x1f01ff", "S-1-5-32-544"),
        ("A", 0, "0x1f01ff", "S-1-5-18"),
        ("A", 0, "0x120089", "S-1-5-11"),
        ("A", 0, "0x1200a9", "S-1-5-21-3262475209-2374237165-4262510312-1000"),
    ]
    assert sd.sacl is None and sd.raw_hex == data.hex()


def test_empty_dacl_is_not_the_same_as_no_dacl_or_null_dacl():
    empty = parse_security_descriptor(encode_security_descriptor("O:BAG:SYD:"))
    absent = parse_security_descriptor(encode_security_descriptor("O:BAG:SY"))
    null = parse_security_descriptor(encode_security_descriptor("O:BAG:SYD:NO_ACCESS_CONTROL"))
    assert (empty.dacl, empty.dacl_empty, empty.dacl_null) == ([], True, False)
    assert (absent.dacl, absent.dacl_empty, absent.dacl_null) == (None, False, False)
    assert (null.dacl, null.dacl_empty, null.dacl_null) == (None, False, True)


def test_dissect_ntfs_parser_agrees_on_owner_group_and_aces():
    data = encode_security_descriptor("O:BAG:SYD:PAI(A;OICIID;FA;;;SY)(D;;GA;;;WD)(A;CIIO;GRGX;;;BU)S:(AU;SAFA;FA;;;WD)")
    theirs = DissectSecurityDescriptor(io.BytesIO(data))
    ours = parse_security_descriptor(data)
    assert (theirs.owner, theirs.group) == (ours.owner, ours.group)
    assert [(int(a.header.AceType), int(a.header.AceFlags), a.mask, a.sid) for a in theirs.dacl.ace] == [
        (a.type, a.flags, a.mask, a.sid) for a in ours.dacl
    ]
    assert [(a.mask, a.sid) for a in theirs.sacl.ace] == [(a.mask, a.sid) for a in ours.sacl]


def test_rights_render_as_windows_prints_them():
    assert [rights_string(m) for m in (0x1F01FF, 0x120089, 0x120116, 0x1200A0, 0xF003F, 0x20019, 0x10000000, 0xA0000000, 0x1F019F, 0)] == [
        "FA", "FR", "FW", "FX", "KA", "KR", "GA", "GRGX", "0x1f019f", "0x0"]


def test_well_known_sids_use_their_aliases_and_others_stay_numeric():
    sd = parse_security_descriptor(encode_security_descriptor("O:S-1-5-21-1-2-3-500G:S-1-5-32-545D:(A;;FA;;;IU)(A;;FA;;;S-1-5-80-0)"))
    assert sd.sddl == "O:S-1-5-21-1-2-3-500G:BUD:(A;;FA;;;IU)(A;;FA;;;S-1-5-80-0)"


def test_sid_bytes_round_trip():
    raw = sid_to_bytes("S-1-5-21-2146493349-1640112132-851775531-1001")
    assert raw.hex() == "010500000000000515000000a5e3f07f0420c2612b10c532e9030000"  # as in the real Win10 Triggers value
    assert sid_from_bytes(raw) == ("S-1-5-21-2146493349-1640112132-851775531-1001", 28)


def test_every_truncation_raises_only_security_descriptor_error():
    data = encode_security_descriptor(TASK_SDDL)
    for length in range(len(data)):  # the group SID ends the value, so every cut breaks something
        with pytest.raises(SecurityDescriptorError):
            parse_security_descriptor(data[:length])


def test_random_bytes_raise_only_security_descriptor_error():
    rng = random.Random(7)
    for _ in range(2000):
        data = bytearray(rng.randbytes(rng.randrange(0, 120)))
        if len(data) > 3 and rng.random() < 0.7:
            data[0], data[2:4] = 1, b"\x04\x80"  # plausible header so the parser goes deeper
        try:
            parse_security_descriptor(bytes(data))
        except SecurityDescriptorError:
            pass
    with pytest.raises(SecurityDescriptorError):
        parse_security_descriptor("O:BAG:SYD:")
