"""Broken variants of the good test images, made by damaging known offsets in a copy.

Each helper copies one builder output (see test_images.build) to ``out`` and damages it in one
place, returning what it damaged so a test can name it: the broken container, file system record,
hive bin, event-log chunk or memory image. Offsets come from the structures themselves (NTFS boot
sector and MFT record numbers, E01 section table, regf header, EVTX chunk header), never guesses.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from dissect.ntfs import NTFS

from test_images.build import PARTITION_START, SECTOR

MFT_RECORD_SIZE = 1024
EVTX_HEADER_SIZE = 0x1000
EVTX_CHUNK_SIZE = 0x10000
HBIN_START = 0x1000


@dataclass(frozen=True)
class Damage:
    path: Path  # the damaged copy
    what: str  # what was damaged, as a test names it
    offset: int  # where in the file


def _copy(good: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    if good.is_dir():
        shutil.copytree(good, out, symlinks=True)
    else:
        shutil.copyfile(good, out)
    return out


def _patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def truncated_e01(good_e01: Path, out: Path, keep: float = 0.5) -> Damage:
    """An E01 cut inside its chunk data: the chunks past the cut (and the closing sections) are missing."""
    _copy(good_e01, out)
    size = int(good_e01.stat().st_size * keep)
    with out.open("r+b") as handle:
        handle.truncate(size)
    return Damage(out, "E01 segment truncated", size)


def mft_record_offset(volume: Path, path_in_volume: str) -> tuple[int, int]:
    """(MFT record number, byte offset of that record in the volume) of a file, from the boot sector."""
    with volume.open("rb") as handle:
        fs = NTFS(handle)
        record = fs.mft.get(path_in_volume).segment
        handle.seek(0x30)
        mft_lcn = struct.unpack("<Q", handle.read(8))[0]
        offset = mft_lcn * fs.cluster_size + record * MFT_RECORD_SIZE
        handle.seek(offset)
        header = handle.read(48)
    if header[:4] != b"FILE" or struct.unpack_from("<I", header, 0x2C)[0] != record:
        raise ValueError(f"MFT record {record} of {path_in_volume} is not at 0x{offset:x} (fragmented MFT?)")
    return record, offset


def corrupt_mft_record(good_disk: Path, volume: Path, path_in_volume: str, out: Path) -> Damage:
    """A raw GPT/MBR disk whose MFT record for one file has its ``FILE`` signature and fixups wrecked."""
    record, offset = mft_record_offset(volume, path_in_volume)
    _copy(good_disk, out)
    at = PARTITION_START * SECTOR + offset
    _patch(out, at, b"BAAD" + b"\xff" * 44)
    return Damage(out, f"MFT record {record} ({path_in_volume})", at)


def corrupt_evtx_chunk(good_tree: Path, log_in_tree: str, out: Path, chunk: int = 0) -> Damage:
    """A copy of a directory image whose event log has one chunk header overwritten."""
    _copy(good_tree, out)
    at = EVTX_HEADER_SIZE + chunk * EVTX_CHUNK_SIZE
    _patch(out / log_in_tree, at, b"\xde\xad" * 64)
    return Damage(out, f"{log_in_tree} chunk {chunk}", at)


def corrupt_hive_bin(good_tree: Path, hive_in_tree: str, out: Path, bin_index: int = 0) -> Damage:
    """A copy of a directory image whose hive has one ``hbin`` header (and its first cells) overwritten."""
    _copy(good_tree, out)
    hive = out / hive_in_tree
    data = hive.read_bytes()
    at, index = HBIN_START, 0
    while index < bin_index:
        at += struct.unpack_from("<I", data, at + 8)[0]
        index += 1
    if data[at:at + 4] != b"hbin":
        raise ValueError(f"no hbin {bin_index} in {hive_in_tree}")
    _patch(hive, at, b"\xcc" * 64)
    return Damage(out, f"{hive_in_tree} hbin {bin_index}", at)


def cut_in_half(good: Path, out: Path) -> Damage:
    """The first half of a file (a memory image whose acquisition stopped half-way)."""
    _copy(good, out)
    size = good.stat().st_size // 2
    with out.open("r+b") as handle:
        handle.truncate(size)
    return Damage(out, "cut in half", size)
