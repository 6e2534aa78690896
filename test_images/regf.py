"""A minimal, empty Windows registry hive written from nothing, plus key timestamp pinning.

No Debian package ships an empty hive and hivex can only edit one, so the base hive (a 4096-byte
``regf`` base block and one 4096-byte ``hbin`` with the root ``nk`` and one ``sk`` cell) is written
here; :mod:`test_images.hive_fill` then adds keys and values with hivex. hivex gives every new key
its parent's timestamp, so :func:`set_key_times` afterwards writes per-key last-written times.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone

BLOCK = 4096
ROOT_CELL = 0x20
NK_FIXED = 0x4C  # nk fields after the cell size, before the name
KEY_HIVE_ENTRY, KEY_NO_DELETE, KEY_COMP_NAME = 0x4, 0x8, 0x20
NO_CELL = 0xFFFFFFFF

_EPOCH_AS_FILETIME = 116444736000000000


def filetime(moment: datetime) -> int:
    """FILETIME (100 ns ticks since 1601) of an aware datetime."""
    delta = moment.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return _EPOCH_AS_FILETIME + (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _sid(text: str) -> bytes:
    parts = text.split("-")
    authority, subs = int(parts[2]), [int(p) for p in parts[3:]]
    return struct.pack("<BB", 1, len(subs)) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def _ace(mask: int, sid: str) -> bytes:
    body = struct.pack("<I", mask) + _sid(sid)
    return struct.pack("<BBH", 0x00, 0x02, 4 + len(body)) + body  # ACCESS_ALLOWED, CONTAINER_INHERIT


def key_security_descriptor() -> bytes:
    """Self-relative SD as on HKLM hive roots: O:BAG:SYD:(A;CI;KA;;;BA)(A;CI;KA;;;SY)(A;CI;KR;;;WD)."""
    aces = _ace(0xF003F, "S-1-5-32-544") + _ace(0xF003F, "S-1-5-18") + _ace(0x20019, "S-1-1-0")
    dacl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), 3, 0) + aces
    owner, group = _sid("S-1-5-32-544"), _sid("S-1-5-18")
    offset_owner = 20
    offset_group = offset_owner + len(owner)
    offset_dacl = offset_group + len(group)
    header = struct.pack("<BBHIIII", 1, 0, 0x8004, offset_owner, offset_group, 0, offset_dacl)
    return header + owner + group + dacl


def _cell(payload: bytes) -> bytes:
    size = (4 + len(payload) + 7) // 8 * 8
    return struct.pack("<i", -size) + payload.ljust(size - 4, b"\0")


def minimal_hive(file_name: str, root_name: str, written: datetime) -> bytes:
    """An empty hive: base block naming ``file_name`` (the last 31 characters are kept, as Windows
    does) and a root key ``root_name`` (Windows: ``CMI-CreateHive{GUID}``) last written at ``written``."""
    stamp = filetime(written)
    name = root_name.encode("ascii")
    sk_offset = ROOT_CELL + (4 + NK_FIXED + len(name) + 7) // 8 * 8
    nk = struct.pack(
        "<2sHQIIIIIIIIIIIIIIIHH",
        b"nk", KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME, stamp, 0, 0,
        0, 0, NO_CELL, NO_CELL, 0, NO_CELL, sk_offset, NO_CELL, 0, 0, 0, 0, 0, len(name), 0,
    ) + name
    sd = key_security_descriptor()
    sk = struct.pack("<2sHIIII", b"sk", 0, sk_offset, sk_offset, 1, len(sd)) + sd
    cells = _cell(nk) + _cell(sk)
    free = BLOCK - 0x20 - len(cells)
    hbin = struct.pack("<4sII8sQI", b"hbin", 0, BLOCK, b"\0" * 8, stamp, 0) + cells + struct.pack("<i", free)
    hbin = hbin.ljust(BLOCK, b"\0")

    base = bytearray(BLOCK)
    struct.pack_into("<4sIIQIIIIIII", base, 0, b"regf", 1, 1, stamp, 1, 5, 0, 1, ROOT_CELL, BLOCK, 1)
    encoded_name = file_name[-31:].encode("utf-16-le")
    base[0x30:0x30 + len(encoded_name)] = encoded_name
    checksum = 0
    for (dword,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        checksum ^= dword
    checksum = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(checksum, checksum)
    struct.pack_into("<I", base, 0x1FC, checksum)
    return bytes(base) + hbin


def _subkeys(hive: bytes, list_offset: int) -> list[int]:
    """nk offsets listed by an lf/lh/li/ri subkey list cell."""
    cell = BLOCK + list_offset + 4
    signature, count = struct.unpack_from("<2sH", hive, cell)
    if signature in (b"lf", b"lh"):
        return [struct.unpack_from("<I", hive, cell + 4 + 8 * i)[0] for i in range(count)]
    offsets = [struct.unpack_from("<I", hive, cell + 4 + 4 * i)[0] for i in range(count)]
    if signature == b"li":
        return offsets
    return [nk for sub in offsets for nk in _subkeys(hive, sub)]  # ri: list of lists


def _nk_name(hive: bytes, nk_offset: int) -> str:
    cell = BLOCK + nk_offset + 4
    flags = struct.unpack_from("<H", hive, cell + 2)[0]
    length = struct.unpack_from("<H", hive, cell + 0x48)[0]
    raw = hive[cell + NK_FIXED:cell + NK_FIXED + length]
    return raw.decode("latin-1") if flags & KEY_COMP_NAME else raw.decode("utf-16-le")


def _find_key(hive: bytes, path: str) -> int:
    offset = ROOT_CELL
    for part in filter(None, path.split("\\")):
        cell = BLOCK + offset + 4
        count, list_offset = struct.unpack_from("<I", hive, cell + 0x14)[0], struct.unpack_from("<I", hive, cell + 0x1C)[0]
        children = _subkeys(hive, list_offset) if count else []
        matches = [child for child in children if _nk_name(hive, child).lower() == part.lower()]
        if not matches:
            raise KeyError(f"{path}: no subkey {part!r}")
        offset = matches[0]
    return offset


def set_key_times(hive: bytes, times: dict[str, datetime]) -> bytes:
    """Return ``hive`` with the last-written FILETIME of each key path (relative to the root) set."""
    patched = bytearray(hive)
    for path, moment in sorted(times.items()):
        struct.pack_into("<Q", patched, BLOCK + _find_key(hive, path) + 4 + 4, filetime(moment))
    return bytes(patched)
