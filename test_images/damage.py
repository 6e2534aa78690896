"""Broken variants of the good test images, made by damaging known offsets in a copy.

Each helper copies one builder output (see test_images.build) to ``out`` and damages it in one
place, returning what it damaged so a test can name it: the broken container, file system record,
hive bin, event-log chunk or memory image. Offsets come from the structures themselves (NTFS boot
sector and MFT record numbers, E01 section table, regf header, EVTX chunk header), never guesses.
"""

from __future__ import annotations

import shutil
import struct
import zlib
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


def file_data_sector(volume: Path, path_in_volume: str) -> int:
    """Disk sector (partition at PARTITION_START) of the first data cluster of a non-resident file."""
    with volume.open("rb") as handle:
        fs = NTFS(handle)
        record = fs.mft.get(path_in_volume)
        if record.resident:
            raise ValueError(f"{path_in_volume} is resident in its MFT record: it has no data cluster")
        lcn = next(run for run, _ in record.dataruns() if run is not None)
        return PARTITION_START + lcn * fs.cluster_size // SECTOR


def vmdk_grain_past_end(good_vmdk: Path, disk_sector: int, out: Path) -> Damage:
    """A sparse VMDK whose grain table entry for ``disk_sector`` points 1000 sectors past the end of the file."""
    _copy(good_vmdk, out)
    data = out.read_bytes()
    if data[:4] != b"KDMV":
        raise ValueError(f"{good_vmdk} is not a sparse VMDK")
    grain_size, = struct.unpack_from("<Q", data, 20)
    per_table, = struct.unpack_from("<I", data, 44)
    directory_at, = struct.unpack_from("<q", data, 56)
    grain = disk_sector // grain_size
    table_index, entry = divmod(grain, per_table)
    table_at, = struct.unpack_from("<I", data, directory_at * SECTOR + 4 * table_index)
    at = table_at * SECTOR + 4 * entry
    if not struct.unpack_from("<I", data, at)[0]:
        raise ValueError(f"grain {grain} of {good_vmdk} is not allocated")
    _patch(out, at, struct.pack("<I", len(data) // SECTOR + 1000))
    return Damage(out, f"grain table {table_index} entry {entry}", at)


def gpt_overlapping_partitions(good_disk: Path, out: Path, start: int, end: int) -> Damage:
    """A GPT disk with a second partition entry over sectors ``start``-``end`` (checksums kept valid)."""
    _copy(good_disk, out)
    data = bytearray(out.read_bytes())
    header_at = SECTOR
    entries_lba, count, entry_size = struct.unpack_from("<QII", data, header_at + 72)
    table_at = entries_lba * SECTOR
    first = bytes(data[table_at:table_at + entry_size])
    second = bytearray(first)
    second[16:32] = bytes(range(16))  # its own unique partition GUID
    struct.pack_into("<QQ", second, 32, start, end)
    at = table_at + entry_size
    data[at:at + entry_size] = second
    table = bytes(data[table_at:table_at + count * entry_size])
    struct.pack_into("<I", data, header_at + 88, zlib.crc32(table))
    header_size, = struct.unpack_from("<I", data, header_at + 12)
    struct.pack_into("<I", data, header_at + 16, 0)
    struct.pack_into("<I", data, header_at + 16, zlib.crc32(bytes(data[header_at:header_at + header_size])))
    out.write_bytes(bytes(data))
    return Damage(out, "GPT partition entry 2", at)


def e01_damaged_chunk(good_e01: Path, disk_sector: int, out: Path) -> Damage:
    """An E01 whose compressed chunk holding ``disk_sector`` has its deflate data overwritten (from its 3rd byte)."""
    _copy(good_e01, out)
    data = out.read_bytes()
    offset = 13
    while True:
        kind = data[offset:offset + 16].rstrip(b"\0")
        following, = struct.unpack_from("<Q", data, offset + 16)
        if kind == b"volume":
            sectors_per_chunk, = struct.unpack_from("<I", data, offset + 76 + 8)
        if kind == b"table":
            break
        offset = following
    count, base = struct.unpack_from("<I4xQ", data, offset + 76)
    chunk = disk_sector // sectors_per_chunk
    entries = [struct.unpack_from("<I", data, offset + 100 + 4 * i)[0] for i in range(count)]
    if not entries[chunk] & 0x80000000:
        raise ValueError(f"chunk {chunk} of {good_e01} is stored uncompressed")
    at = base + (entries[chunk] & 0x7FFFFFFF)
    end = base + (entries[chunk + 1] & 0x7FFFFFFF)
    _patch(out, at + 2, b"\xff" * (end - at - 2))
    return Damage(out, f"chunk {chunk}", at)
