"""Facts about one file inside an opened evidence item: size, SHA-256, owner, and every timestamp the
filesystem keeps, each with its meaning.

NTFS: $STANDARD_INFORMATION *and* $FILE_NAME times read from the MFT record (dissect's ``stat``
shows only $SI, which user-mode tools can rewrite; $FN is what exposes timestomping) and the owner
SID from $Secure. ext4 and other unix filesystems: mode, uid:gid, inode, mtime/atime/ctime/crtime.
A directory collection (KAPE output copied to a host folder) only has the host's copy times:
those are reported as plain modified/changed (never as $SI/$FN; no access time, which reading changes).
"""

from __future__ import annotations

import hashlib
import stat as stat_module
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from triage.collect.names import escaped_text
from triage.records import FileFacts, Stamp
from triage.timeutil import filetime_stamp, iso
from triage.vocab import Basis, Precision

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SI_TIMES = (("CreationTime", "si_created"), ("LastModificationTime", "si_modified"),
             ("LastChangeTime", "si_mft_modified"), ("LastAccessTime", "si_accessed"))
_FN_TIMES = (("CreationTime", "fn_created"), ("LastModificationTime", "fn_modified"),
             ("LastChangeTime", "fn_mft_modified"), ("LastAccessTime", "fn_accessed"))
_STAT_TIMES = (("st_mtime_ns", "modified"), ("st_atime_ns", "accessed"), ("st_ctime_ns", "changed"),
               ("st_birthtime_ns", "born"))
_FILE_NAME_DOS_ONLY = 0x02


# Reading stops at these, whatever the file's recorded size says (st_size, a zip's file_size and an
# NTFS data run are all the attacker's to write).
MAX_HASHED_BYTES = 4 * 1024 ** 3  # past this an oversized file is not hashed to its end
MAX_INFLATION = 100  # bytes out per compressed byte in; deflate can reach about 1032:1, real files stay far below
INFLATION_FLOOR = 16 * 1024 * 1024  # the ratio is only judged once this much came out
_CHUNK = 1 << 20


class UnreadableFile(Exception):
    """A file triage does not read, with the reason in an examiner's words: not a regular file (a FIFO
    would block forever, a device never ends, a symbolic link may point out of the evidence) or a
    compressed member that inflates like a decompression bomb."""


@dataclass
class CappedRead:
    """What one bounded read of an evidence file gave."""

    facts: FileFacts
    data: bytes  # at most ``limit`` bytes: the whole file, or its first ``limit`` bytes
    complete: bool  # data is the whole file
    stopped: str | None = None  # why reading stopped before the end (a bomb), None when it ran to the end


def read_capped(path: Any, limit: int, *, hash_all: bool = True) -> CappedRead:
    """Read a regular file of the evidence, keeping at most ``limit`` bytes and hashing while reading.

    Raises :class:`UnreadableFile` for anything but a regular file (checked with ``lstat``, so a link is
    never followed) and OSError or a dissect error when the content cannot be read. The hash covers the
    whole file up to :data:`MAX_HASHED_BYTES`; a compressed member (zip) that inflates more than
    :data:`MAX_INFLATION` times its stored size stops the read (``stopped`` says so, no hash).
    ``hash_all=False`` stops right past ``limit`` (no hash then for a larger file).
    """
    facts = file_facts(path)  # before reading: a read must not change the times reported
    check_regular(path)
    stored = compressed_size(path)
    digest, kept, size, stopped = hashlib.sha256(), [], 0, None
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if size < limit:
                kept.append(chunk[:limit - size])
            size += len(chunk)
            digest.update(chunk)
            if stored is not None and size > INFLATION_FLOOR and size > MAX_INFLATION * max(stored, 1):
                stopped = (f"inflates to more than {MAX_INFLATION} times its compressed size of {stored} bytes "
                           f"(stopped after {size} bytes): a decompression bomb")
                break
            if size > limit and (not hash_all or size >= MAX_HASHED_BYTES):
                stopped = f"larger than {limit if not hash_all else MAX_HASHED_BYTES} bytes: not read or hashed past that"
                break
    facts.size = size if stopped is None else max(size, facts.size or 0)
    facts.sha256 = digest.hexdigest() if stopped is None else None
    return CappedRead(facts=facts, data=b"".join(kept), complete=stopped is None and size <= limit, stopped=stopped)


def read_file(path: Any, limit: int = 64 * 1024 * 1024) -> tuple[FileFacts, bytes]:
    """A regular file's facts (hash included) and all its bytes; :class:`UnreadableFile` when it holds
    more than ``limit`` bytes or is not a regular file."""
    read = read_capped(path, limit)
    if read.stopped:
        raise UnreadableFile(read.stopped)
    if not read.complete:
        raise UnreadableFile(f"larger than {limit} bytes ({read.facts.size} bytes); not read")
    return read.facts, read.data


def read_small_file(path: Any, limit: int) -> tuple[FileFacts, bytes | None]:
    """Like :func:`read_file`, but a file larger than ``limit`` bytes is only hashed, streaming, and no
    bytes are returned: an attacker's 2 GB "task" must not be read into memory."""
    read = read_capped(path, limit)
    if read.stopped:
        raise UnreadableFile(read.stopped)
    return read.facts, read.data if read.complete else None


def inflate_capped(data: bytes, limit: int) -> tuple[bytes, str | None]:
    """Gunzip ``data`` (every member) streaming, keeping at most ``limit`` bytes; also stops once the
    output passes :data:`MAX_INFLATION` times the input. Returns what inflated and, when it stopped
    early or the stream ends short, why. Raises zlib.error on corrupt data."""
    out, total, stream, pending = [], 0, zlib.decompressobj(zlib.MAX_WBITS | 16), data
    while True:
        chunk = stream.decompress(pending, _CHUNK)
        pending = stream.unconsumed_tail
        if total < limit:
            out.append(chunk[:limit - total])
        total += len(chunk)
        if total > limit:
            return b"".join(out), f"inflates to more than {limit} bytes: the first {limit} are read, the rest not"
        if total > INFLATION_FLOOR and total > MAX_INFLATION * max(len(data), 1):
            return b"".join(out), (f"inflates to more than {MAX_INFLATION} times its compressed size of {len(data)} "
                                   f"bytes (stopped after {total} bytes): a decompression bomb; what came out before is read")
        if stream.eof:
            pending = stream.unused_data
            if not pending.strip(b"\0"):  # gzip allows zero padding after the last member
                return b"".join(out), None
            stream = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif not chunk and not pending:
            return b"".join(out), "compressed data ends before its end marker (truncated): what inflated is read"


def check_regular(path: Any) -> None:
    """Raise :class:`UnreadableFile` unless ``path`` is a regular file itself (links are not followed)."""
    mode = path.lstat().st_mode
    if stat_module.S_ISREG(mode):
        return
    if stat_module.S_ISLNK(mode):
        raise UnreadableFile(f"symbolic link to {_link_target(path)!r}, not followed")
    raise UnreadableFile(f"not a regular file ({_KIND_OF_MODE.get(stat_module.S_IFMT(mode), 'unknown type')}); not read")


_KIND_OF_MODE = {stat_module.S_IFIFO: "FIFO", stat_module.S_IFCHR: "character device", stat_module.S_IFBLK: "block device",
                 stat_module.S_IFSOCK: "socket", stat_module.S_IFDIR: "directory"}


def _link_target(path: Any) -> str:
    try:
        return str(path.readlink())
    except Exception:
        return "?"


def compressed_size(path: Any) -> int | None:
    """The stored (compressed) size of a zip member, None for anything not compressed member by member."""
    try:
        entry = path.get()
    except Exception:
        return None
    for candidate in _underlying(entry):
        info = getattr(candidate, "entry", None)
        if isinstance(info, zipfile.ZipInfo) and info.compress_type != zipfile.ZIP_STORED:
            return info.compress_size
    return None


def read_error(exc: BaseException) -> str:
    """Why a read out of the evidence failed, in an examiner's words: a damaged container surfaces as a
    bare EOFError (data past the end) or zlib error (a corrupt compressed chunk) from the library."""
    text = " ".join(str(exc).split())[:200]
    if isinstance(exc, UnreadableFile):
        return text
    if isinstance(exc, EOFError):
        cause = "data missing from the container (the read ran past its end)"
    elif isinstance(exc, zlib.error):
        cause = "damaged compressed data in the container"
    else:
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"{cause}: {type(exc).__name__}{f': {text}' if text else ''}"


def file_facts(path: Any) -> FileFacts:
    """Metadata of a file (no content read); never raises — what cannot be read stays empty."""
    facts = FileFacts(path=escaped_text(str(path)))
    try:
        entry = path.get()
    except Exception:
        entry = None
    record = _mft_record(entry)
    if record is not None:
        _ntfs_facts(record, facts)
        return facts
    try:
        st = path.lstat()
    except Exception:
        return facts
    facts.size = st.st_size
    facts.mode = stat_module.filemode(st.st_mode)
    facts.inode = st.st_ino
    on_image = _is_image_filesystem(entry)
    if on_image:
        facts.owner = f"{st.st_uid}:{st.st_gid}"
    for attr, meaning in _STAT_TIMES:
        # A host copy's access time changes whenever anything (triage included) reads it: not evidence.
        if attr == "st_atime_ns" and not on_image:
            continue
        value = getattr(st, attr, None)
        stamp = _ns_stamp(value, meaning, attr)
        if stamp:
            facts.times.append(stamp)
    return facts


def _underlying(entry: Any) -> list[Any]:
    """The filesystem entries behind dissect's root/layer entry (the top one first)."""
    if entry is None:
        return []
    stack = [entry]
    out = []
    while stack:
        current = stack.pop(0)
        out.append(current)
        stack.extend(getattr(current, "entries", None) or [])
    return out


def _mft_record(entry: Any) -> Any:
    for candidate in _underlying(entry):
        record = getattr(candidate, "entry", None)
        if type(record).__module__.startswith("dissect.ntfs"):
            return record
    return None


def _is_image_filesystem(entry: Any) -> bool:
    """Owner ids are meaningful only when read from the evidence's own filesystem, not a host copy."""
    return not any(type(c).__name__ == "DirectoryFilesystemEntry" for c in _underlying(entry))


def _ntfs_facts(record: Any, facts: FileFacts) -> None:
    try:
        facts.inode = record.segment
    except Exception:
        pass
    try:
        facts.size = record.size()
    except Exception:
        pass
    try:
        attributes = record.attributes
    except Exception:
        return
    standard = list(attributes.STANDARD_INFORMATION)
    if standard:
        si = standard[0].attribute
        for field, meaning in _SI_TIMES:
            stamp = filetime_stamp(getattr(si.attr, field, 0), meaning)
            if stamp:
                facts.times.append(stamp)
        facts.owner = _owner_sid(record, si)
    names = [a.attribute for a in attributes.FILE_NAME]
    # The Win32/POSIX long name carries the times Windows maintains; a DOS 8.3 alias only as fallback.
    names.sort(key=lambda fn: fn.attr.Flags == _FILE_NAME_DOS_ONLY)
    if names:
        fn = names[0]
        for field, meaning in _FN_TIMES:
            stamp = filetime_stamp(getattr(fn.attr, field, 0), meaning)
            if stamp:
                facts.times.append(stamp)


def _owner_sid(record: Any, si: Any) -> str | None:
    try:
        security_id = si.security_id
        secure = record.ntfs.secure if record.ntfs else None
        if not security_id or secure is None:
            return None
        return str(secure.lookup(security_id).owner)
    except Exception:
        return None


def _ns_stamp(value: int | None, meaning: str, field: str) -> Stamp | None:
    if not value:
        return None
    try:
        moment = _EPOCH + timedelta(microseconds=value // 1000)
    except OverflowError:
        return None
    return Stamp(meaning=meaning, utc=iso(moment), as_written=f"{field}={value}", basis=Basis.UTC, precision=Precision.NS)
