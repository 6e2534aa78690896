"""Registry hive transaction logs (``.LOG1``/``.LOG2``): which entries a dirty hive still needs.

Windows 8.1+ logs (msuhanov/regf "Format of transaction log files", libyal libregf notes): a
``regf`` base block, then ``HvLE`` entries, each with a sequence number and two Marvin32 hashes.
Only entries the specification says apply are chosen (both hashes valid, from the hive's secondary
sequence number on, in order, stopping at the first number no log holds); regipy's recovery, which
:mod:`triage.collect.taskcache` hands them to, ignores sequence numbers and would re-apply stale ones.
Pure: bytes in; raises only :class:`HiveLogError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from triage.parsers import ParseError

BASE_BLOCK = 4096
LOG_BASE_BLOCK = 512
LOG_ENTRY_HEADER = 40
MARVIN32_SEED = 0x82EF4D887A4E55C5


class HiveLogError(ParseError):
    """Bytes that are not a transaction log, or a hive base block too short to replay onto."""


def marvin32(data: bytes, seed: int = MARVIN32_SEED) -> int:
    """64-bit Marvin32, the hash of ``HvLE`` log entries (both halves, as the log stores them)."""
    mask = 0xFFFFFFFF

    def rotl(value: int, shift: int) -> int:
        return ((value << shift) | (value >> (32 - shift))) & mask

    def mix(lo: int, hi: int) -> tuple[int, int]:
        hi ^= lo
        lo = (rotl(lo, 20) + hi) & mask
        hi = rotl(hi, 9) ^ lo
        lo = (rotl(lo, 27) + hi) & mask
        return lo, rotl(hi, 19)

    lo, hi = seed & mask, seed >> 32
    whole = len(data) - len(data) % 4
    for (word,) in struct.iter_unpack("<I", data[:whole]):
        lo, hi = mix((lo + word) & mask, hi)
    final = 0x80 << (8 * (len(data) - whole))
    for i, byte in enumerate(data[whole:]):
        final |= byte << (8 * i)
    lo, hi = mix((lo + final) & mask, hi)
    lo, hi = mix(lo, hi)
    return (hi << 32) | lo


@dataclass
class LogEntry:
    log: str
    offset: int
    sequence: int
    data: bytes


def log_entries(name: str, data: bytes) -> tuple[list[LogEntry], list[str]]:
    """Valid ``HvLE`` entries of a new-format log (file type 6), in file order, and problems found
    (an entry with a bad size or hash ends the log). Raises :class:`HiveLogError` for no log at all."""
    if len(data) < LOG_BASE_BLOCK + LOG_ENTRY_HEADER or data[:4] != b"regf":
        raise HiveLogError(f"{name}: not a transaction log (no regf base block or no entries)")
    problems: list[str] = []
    entries: list[LogEntry] = []
    pos = LOG_BASE_BLOCK
    while pos + LOG_ENTRY_HEADER <= len(data) and data[pos:pos + 4] == b"HvLE":
        size, _flags, sequence, _hbins, _count = struct.unpack_from("<IIIII", data, pos + 4)
        hash1, hash2 = struct.unpack_from("<QQ", data, pos + 24)
        if size < LOG_ENTRY_HEADER or size % 512 or pos + size > len(data):
            problems.append(f"{name}: log entry at 0x{pos:x} has a bad size {size}; later entries ignored")
            break
        if marvin32(data[pos + LOG_ENTRY_HEADER:pos + size]) != hash1 or marvin32(data[pos:pos + 32]) != hash2:
            problems.append(f"{name}: log entry {sequence} at 0x{pos:x} fails its Marvin32 hash; later entries ignored")
            break
        entries.append(LogEntry(log=name, offset=pos, sequence=sequence, data=data[pos:pos + size]))
        pos += size
    return entries, problems


def applicable_entries(secondary_sequence: int, logs: dict[str, bytes]) -> tuple[list[LogEntry], list[str]]:
    """Entries to apply, in sequence order from the hive's secondary sequence number, stopping at the
    first number no log holds (the specification's recovery rule; stale entries are skipped)."""
    by_sequence: dict[int, LogEntry] = {}
    problems: list[str] = []
    for name in sorted(logs):
        try:
            entries, found = log_entries(name, logs[name])
        except HiveLogError as exc:
            problems.append(str(exc))
            continue
        problems += found
        for entry in entries:
            by_sequence.setdefault(entry.sequence, entry)
    chosen = []
    sequence = secondary_sequence
    while sequence in by_sequence:
        chosen.append(by_sequence[sequence])
        sequence += 1
    return chosen, problems


def hive_is_dirty(base_block: bytes) -> bool:
    """Sequence numbers differ, or the checksum is wrong: a log must be applied before the hive is current."""
    if len(base_block) < 512 or base_block[:4] != b"regf":
        return False
    seq1, seq2 = struct.unpack_from("<II", base_block, 4)
    checksum = 0
    for (word,) in struct.iter_unpack("<I", base_block[:508]):
        checksum ^= word
    checksum = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(checksum, checksum)
    return seq1 != seq2 or checksum != struct.unpack_from("<I", base_block, 508)[0]


@dataclass
class ReplayPlan:
    """What to replay onto a dirty hive: one log holding only the applicable entries (or, for a Vista-8
    log, that log as it is), the logs it came from, and the problems found in the logs."""

    log_bytes: bytes | None  # None: nothing applies
    logs: list[str] = field(default_factory=list)
    entries: list[LogEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def replay_plan(hive_base_block: bytes, logs: dict[str, bytes]) -> ReplayPlan:
    """The entries of ``logs`` (name -> bytes) that apply to the hive whose base block is given."""
    if len(hive_base_block) < 512 or hive_base_block[:4] != b"regf":
        raise HiveLogError("hive has no regf base block")
    secondary = struct.unpack_from("<I", hive_base_block, 8)[0]
    entries, problems = applicable_entries(secondary, logs)
    if entries:
        first = logs[entries[0].log][:LOG_BASE_BLOCK]
        return ReplayPlan(log_bytes=first + b"".join(e.data for e in entries), logs=sorted({e.log for e in entries}),
                          entries=entries, problems=problems)
    old_format = [name for name, data in logs.items() if len(data) > 516 and data[512:516] == b"DIRT"]
    if old_format:  # Windows Vista-8 log: its dirty vector is applied as it is
        return ReplayPlan(log_bytes=logs[old_format[0]], logs=old_format[:1], problems=problems)
    return ReplayPlan(log_bytes=None, problems=problems)


__all__ = ["HiveLogError", "LogEntry", "ReplayPlan", "applicable_entries", "hive_is_dirty", "log_entries",
           "marvin32", "replay_plan"]
