"""Structure checks of the container itself (E01 section chain, VMDK grain tables, GPT partition
table), so a damaged image is reported as what is wrong and where, not as an opaque library error.

dissect opens damaged containers silently or fails with a bare exception: a grain table entry that
points past the end of a VMDK only fails (EOFError) when a file in that grain is read, a GPT with
overlapping partitions is mounted as is, a truncated E01 fails with "cannot open". These checks read
only the container's own metadata (never the data it holds) and return one problem line per fault.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SECTOR = 512
EWF_SIGNATURE = b"EVF\x09\x0d\x0a\xff\x00"
EWF_FILE_HEADER = 13
EWF_SECTION = 76  # type[16], next offset u64, size u64, padding[40], adler32
VMDK_MAGIC = b"KDMV"
GPT_SIGNATURE = b"EFI PART"
_MAX_PROBLEMS = 20  # a wrecked table would otherwise print one line per entry
VMDK_MAX_GRAIN_SECTORS = 1 << 16  # VMware writes 128 (64 KB); the format wants a power of two above 8
VMDK_MAX_TABLE_ENTRIES = 1 << 16  # VMware writes 512


class ContainerRefused(Exception):
    """The container's own header contradicts the file (a table larger than the file, an impossible
    geometry): opening it would make the library allocate what the header claims, so it is not opened."""

    def __init__(self, location: str, problem: str):
        super().__init__(problem)
        self.location, self.problem = location, problem


def check_container(path: Path, kind: str) -> list[tuple[str, str]]:
    """(location, problem) for every structural fault found; [] when the container looks sound.
    Raises :class:`ContainerRefused` when the header does not fit the file at all."""
    try:
        with path.open("rb") as handle:
            if kind in ("e01", "ex01"):
                return ewf_problems(handle, path.stat().st_size)
            if kind == "vmdk":
                return vmdk_problems(handle, path.stat().st_size)
            if kind == "raw":
                return gpt_problems(handle)
    except OSError as exc:
        return [(str(path), f"container not readable: {exc.strerror or exc}")]
    return []


def ewf_problems(handle, size: int) -> list[tuple[str, str]]:
    """Walk the EWF section chain of one segment file; check that every table entry lies inside the file."""
    handle.seek(0)
    if handle.read(8) != EWF_SIGNATURE:
        return [("offset 0x0", "no EWF (E01) signature: not an E01 segment or its header is damaged")]
    problems: list[tuple[str, str]] = []
    offset, seen = EWF_FILE_HEADER, set()
    while True:
        if offset + EWF_SECTION > size:
            problems.append((f"offset 0x{offset:x}", f"section descriptor at offset 0x{offset:x} is past the end of "
                             f"the file ({size} bytes): truncated segment"))
            break
        handle.seek(offset)
        descriptor = handle.read(EWF_SECTION)
        kind = descriptor[:16].rstrip(b"\0").decode("ascii", "replace")
        following, length = struct.unpack_from("<QQ", descriptor, 16)
        if zlib.adler32(descriptor[:72]) != struct.unpack_from("<I", descriptor, 72)[0]:
            problems.append((f"offset 0x{offset:x}", f"section descriptor at offset 0x{offset:x} has a bad checksum "
                             f"(damaged section header)"))
            break
        if kind in ("done", "next"):
            break
        if offset + length > size or following > size:
            problems.append((f"section {kind} at offset 0x{offset:x}", f"section {kind} at offset 0x{offset:x} points "
                             f"past the end of the file (to 0x{max(offset + length, following):x}; the file is {size} "
                             f"bytes): truncated segment"))
            break
        if kind == "table":
            problems += _ewf_table_problems(handle, offset, size)
        if following <= offset or following in seen:
            problems.append((f"section {kind} at offset 0x{offset:x}", f"section {kind} at offset 0x{offset:x} points "
                             f"back to 0x{following:x} (section chain loops)"))
            break
        seen.add(offset)
        offset = following
    return problems[:_MAX_PROBLEMS]


def _ewf_table_problems(handle, offset: int, size: int) -> list[tuple[str, str]]:
    handle.seek(offset + EWF_SECTION)
    header = handle.read(24)
    if len(header) < 24:
        return []
    count, base = struct.unpack_from("<I4xQ", header)
    entries = handle.read(4 * count)
    problems = []
    for index in range(len(entries) // 4):
        chunk_at = base + (struct.unpack_from("<I", entries, index * 4)[0] & 0x7FFFFFFF)
        if chunk_at >= size:
            problems.append((f"table at offset 0x{offset:x}", f"chunk {index} points to offset 0x{chunk_at:x}, past the "
                             f"end of the file ({size} bytes): missing chunk"))
    return problems


def vmdk_problems(handle, size: int) -> list[tuple[str, str]]:
    """Every grain table entry of a sparse (monolithic or streamOptimized) VMDK must point inside the file."""
    handle.seek(0)
    header = handle.read(SECTOR)
    if header[:4] != VMDK_MAGIC:
        return []  # a descriptor-only VMDK names its extents; dissect reports missing extent files itself
    capacity, grain_size = struct.unpack_from("<QQ", header, 12)
    entries_per_table = struct.unpack_from("<I", header, 44)[0]
    directory_at = struct.unpack_from("<q", header, 56)[0]
    if directory_at == -1:  # streamOptimized with the directory in the footer
        handle.seek(size - 1024)
        header = handle.read(SECTOR)
        directory_at = struct.unpack_from("<q", header, 56)[0]
    if not grain_size or not entries_per_table or directory_at <= 0:
        return [("header", "VMDK sparse header has no grain directory (damaged header)")]
    if grain_size & (grain_size - 1) or not 8 <= grain_size <= VMDK_MAX_GRAIN_SECTORS or entries_per_table > VMDK_MAX_TABLE_ENTRIES:
        raise ContainerRefused("header", f"VMDK sparse header declares grains of {grain_size} sectors and {entries_per_table} "
                                         "entries per grain table: not a geometry VMware writes (damaged or forged header)")
    sectors = size // SECTOR
    tables = (capacity + entries_per_table * grain_size - 1) // (entries_per_table * grain_size)
    if directory_at * SECTOR + 4 * tables > size:
        raise ContainerRefused("header", f"VMDK sparse header claims {capacity} sectors, which needs a grain directory of "
                                         f"{tables} entries at sector {directory_at}, past the end of the file ({size} bytes): "
                                         "damaged or forged header")
    handle.seek(directory_at * SECTOR)
    directory = struct.unpack(f"<{tables}I", handle.read(4 * tables))
    problems = []
    for table_index, table_at in enumerate(directory):
        if not table_at:
            continue
        if table_at >= sectors:
            problems.append((f"grain directory entry {table_index}", f"grain table {table_index} points to sector "
                             f"{table_at}, past the end of the file ({sectors} sectors)"))
            continue
        handle.seek(table_at * SECTOR)
        table = struct.unpack(f"<{entries_per_table}I", handle.read(4 * entries_per_table).ljust(4 * entries_per_table, b"\0"))
        for entry, grain_at in enumerate(table):
            if grain_at > 1 and grain_at >= sectors:
                first = (table_index * entries_per_table + entry) * grain_size
                problems.append((f"grain table {table_index} entry {entry}",
                                 f"grain table {table_index} entry {entry} (disk sectors {first}-{first + grain_size - 1}) "
                                 f"points to sector {grain_at}, past the end of the file ({sectors} sectors): "
                                 f"files in those sectors cannot be read"))
    return problems[:_MAX_PROBLEMS]


def gpt_problems(handle) -> list[tuple[str, str]]:
    """Partitions of a GPT disk that overlap each other (dissect mounts them as they are)."""
    handle.seek(SECTOR)
    header = handle.read(92)
    if header[:8] != GPT_SIGNATURE:
        return []
    entries_at, count, entry_size = struct.unpack_from("<QII", header, 72)
    if not 128 <= entry_size <= 4096 or count > 1024:
        return [("GPT header", f"GPT header declares {count} entries of {entry_size} bytes (damaged header)")]
    handle.seek(entries_at * SECTOR)
    table = handle.read(count * entry_size)
    partitions = []
    for index in range(len(table) // entry_size):
        entry = table[index * entry_size:(index + 1) * entry_size]
        if entry[:16] == b"\0" * 16:
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        partitions.append((index + 1, first, last))
    problems = []
    for position, (number, first, last) in enumerate(partitions):
        for other, other_first, other_last in partitions[position + 1:]:
            if first <= other_last and other_first <= last:
                problems.append((f"GPT partitions {number} and {other}",
                                 f"GPT partitions {number} (sectors {first}-{last}) and {other} (sectors "
                                 f"{other_first}-{other_last}) overlap: data in the overlap belongs to both"))
    return problems[:_MAX_PROBLEMS]
