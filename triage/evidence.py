"""Opening evidence: dissect Targets for disk images and collections, loose EVTX, memory images.

Evidence is only ever opened for reading: dissect's loaders and containers open files read-only,
and the files we hash ourselves are opened with mode ``rb``. Anything that will not open becomes a
gap, never a traceback. An EWF image is checked against the hashes stored inside it here, before any
collector runs (:attr:`EvidenceRef.ewf`; a mismatch is a gap of the run, with or without ``-o``).
"""

from __future__ import annotations

import hashlib
import logging
import stat
from datetime import timezone
from pathlib import Path

from triage import ewf
from triage.context import Context, Source
from triage.containers import ContainerRefused, check_container
from triage.records import EvidenceRef, EwfFacts, FileFacts, HostInfo

_KIND_BY_SUFFIX = {
    ".e01": "e01", ".ex01": "ex01", ".s01": "e01", ".vmdk": "vmdk", ".vhd": "vhd", ".vhdx": "vhdx",
    ".qcow2": "qcow2", ".raw": "raw", ".dd": "raw", ".img": "raw", ".bin": "raw", ".zip": "zip",
    ".tar": "tar", ".gz": "tar", ".tgz": "tar", ".evtx": "evtx",
}
_HASH_CHUNK = 1 << 20
_MEDIA_CHUNK = 4 << 20

# dissect logs loader and plugin noise through the logging module and structlog; the examiner
# gets our own one-line messages instead.
logging.getLogger("dissect").setLevel(logging.CRITICAL)


# (device, inode, size, modification time in ns) -> SHA-256: a loose log is hashed for its rows and again for
# the manifest; the second time the digest is taken from here (also from the workers that read the logs).
HASHED: dict[tuple[int, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    facts = path.stat()
    identity = (facts.st_dev, facts.st_ino, facts.st_size, facts.st_mtime_ns)
    if (known := HASHED.get(identity)) is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    HASHED[identity] = digest.hexdigest()
    return HASHED[identity]


def evidence_kind(path: Path) -> str:
    if path.is_dir():
        return "dir"
    return _KIND_BY_SUFFIX.get(path.suffix.lower(), "raw")


def _ref(path: Path, kind: str, ctx: Context) -> EvidenceRef:
    ref = EvidenceRef(path=str(path), kind=kind)
    if path.is_file():
        ctx.progress(f"hashing {path} (SHA-256)")
        ref.size = path.stat().st_size
        ref.sha256 = sha256_file(path)
    return ref


_OS_TREE_MARKERS = {"windows", "c", "c:", "uploads", "etc", "var"}


def _loose_evtx_files(path: Path) -> list[Path]:
    """The .evtx files of a folder of event logs handed over on their own (no OS tree inside); [] otherwise.
    The cheap top-level check comes first, so a disk tree or collection is never walked here."""
    if not path.is_dir() or any(child.name.lower() in _OS_TREE_MARKERS for child in path.iterdir()):
        return []
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".evtx")


def open_evidence(path_text: str, ctx: Context, *, memory: bool = False) -> Source | None:
    """Open one evidence item; returns None (and records a gap) when it cannot be opened at all.

    Anything that goes wrong while opening one item (MemoryError from a forged header included) costs
    only that item: the other items of the same call are still opened and read."""
    try:
        return _open_evidence(path_text, ctx, memory=memory)
    except Exception as exc:
        ctx.gap(path_text, path_text, f"cannot open: {_describe(exc)}")
        return None


def _open_evidence(path_text: str, ctx: Context, *, memory: bool) -> Source | None:
    path = Path(path_text)
    if not path.exists():
        ctx.gap(path_text, path_text, "no such file or directory")
        return None
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode)):  # a FIFO would block, a device never end
        ctx.gap(path_text, path_text, "not a regular file, directory or block device: not read")
        return None
    ctx.progress(f"opening {path}")
    try:
        if memory:
            return Source(ref=_ref(path, "memory", ctx), memory=path, host=HostInfo(evidence=str(path)))
        if path.is_file() and path.suffix.lower() == ".evtx":
            return Source(ref=_ref(path, "evtx", ctx), evtx_files=[path], host=HostInfo(evidence=str(path)))
        if files := _loose_evtx_files(path):
            ref = _ref(path, "evtx-dir", ctx)
            ref.details["files"] = len(files)
            return Source(ref=ref, evtx_files=files, host=HostInfo(evidence=str(path)))
        ref = _ref(path, evidence_kind(path), ctx)
    except OSError as exc:
        ctx.gap(path_text, path_text, f"cannot read evidence: {exc.strerror or exc}")
        return None
    try:
        problems = check_container(path, ref.kind) if path.is_file() else []
    except ContainerRefused as refused:
        ctx.gap(str(path), f"{path} ({refused.location})", f"not opened: {refused.problem}")
        return None
    source = _open_target(path, ref, ctx, problems)
    if source is not None:
        for location, problem in problems:
            ctx.gap(str(path), f"{path} ({location})", problem)
        if path.is_file() and ewf.is_ewf(path, ref.kind):
            ref.ewf = ewf_facts(path, ref, ctx)
    return source


def ewf_facts(path: Path, ref: EvidenceRef, ctx: Context) -> EwfFacts:
    """Segments with hashes, the acquisition hashes stored in the image, and whether the media matches."""
    from dissect.evidence.ewf import EWF, find_files

    try:
        segment_paths = find_files(path)
    except Exception as exc:  # dissect raises EWFError / IndexError for unusual names
        ctx.gap(ref.path, ref.path, f"EWF segments not found: {type(exc).__name__}: {exc}")
        return EwfFacts(status=ewf.UNREADABLE)
    segments = []
    for segment in segment_paths:
        known = ref.sha256 if segment == path.resolve() else None
        if known is None:
            ctx.progress(f"hashing EWF segment {segment.name}")
        segments.append(FileFacts(path=str(segment), size=segment.stat().st_size, sha256=known or sha256_file(segment)))
    handles = [segment.open("rb") for segment in segment_paths]
    try:
        try:
            image = EWF(handles)
            stored = ewf.stored_hashes(_hash_sections(image))
            acquisition = ewf.header_fields(image.header.data) if image.header is not None else {}
        except Exception as exc:
            ctx.gap(ref.path, "EWF sections", f"cannot read the image's stored hashes: {type(exc).__name__}: {exc}")
            return EwfFacts(segments=segments, status=ewf.UNREADABLE)
        facts = EwfFacts(segments=segments, acquisition=acquisition, stored_hashes=stored, status=ewf.NO_HASH)
        if not stored:
            return facts
        ctx.progress(f"verifying the hashes stored in {path.name} ({image.size} bytes of media)")
        try:
            computed = _media_hashes(image, stored)
        except Exception as exc:
            ctx.gap(ref.path, "EWF media data", f"media data unreadable, stored hashes not verified: {type(exc).__name__}: {exc}")
            facts.status = ewf.UNREADABLE
            return facts
    finally:
        for handle in handles:
            handle.close()
    facts.media_size = image.size
    facts.computed_hashes = computed
    facts.match, facts.status = ewf.compare(stored, computed)
    if facts.status == ewf.MISMATCH:
        ctx.gap(ref.path, "EWF media data", ewf.mismatch_problem(facts.match))
    return facts


def _hash_sections(image):
    """(type, data) of every section that may hold acquisition hashes, segment by segment."""
    for index in range(len(image.fh)):
        segment = image.segment(index)
        for section in segment.sections:
            if section.type in ewf.HASH_SECTIONS:
                segment.fh.seek(section.data_offset)
                yield section.type, segment.fh.read(ewf.HASH_SECTIONS[section.type])


def _media_hashes(image, names) -> dict[str, str]:
    """The hashes ``names`` (md5, sha1: those the image stores) of the media data, in one pass."""
    hashers = {name: hashlib.new(name, usedforsecurity=False) for name in names}
    stream = image.open()
    remaining = image.size
    stream.seek(0)
    while remaining > 0:
        chunk = stream.read(min(_MEDIA_CHUNK, remaining))
        if not chunk:
            raise EOFError(f"media data ends {remaining} bytes early")
        for hasher in hashers.values():
            hasher.update(chunk)
        remaining -= len(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


EWF2_SIGNATURE = b"EVF2\r\n\x81\x00"  # Ex01 (EnCase 7 v2); dissect.evidence reads only EWF1 (E01)


def _open_target(path: Path, ref: EvidenceRef, ctx: Context, problems: list[tuple[str, str]]) -> Source | None:
    from dissect.target import Target  # imported late: it is the slow part of start-up

    if path.is_file():
        with path.open("rb") as fh:
            if fh.read(len(EWF2_SIGNATURE)) == EWF2_SIGNATURE:
                ctx.gap(str(path), str(path), "EWF2 (Ex01) image: dissect.evidence reads only EWF1 (E01); convert it "
                        "first, e.g. `ewfexport -f encase6` or `ewfexport -f raw`, and hash-verify the copy")
                return None

    try:
        target = Target.open(path)
        os_family = target.os
    except Exception as exc:  # dissect raises many types for unknown/damaged containers
        # The container check says what is damaged; dissect's exception alone rarely does.
        why = "; ".join(problem for _, problem in problems[:1]) or _describe(exc)
        ctx.gap(str(path), str(path), f"cannot open as a disk image or collection: {why}")
        return None
    if os_family in (None, "default") and not list(target.filesystems):
        ctx.gap(str(path), str(path), "no filesystem found in the evidence (unknown or damaged format)")
        return None
    ref.details["loader"] = type(getattr(target, "_loader", None)).__name__
    host = HostInfo(evidence=str(path))
    source = Source(ref=ref, target=target, host=host, os_family=os_family)
    host.hostname = _safe(lambda: target.hostname)
    host.os = _safe(lambda: target.version)
    if os_family == "windows":
        source.tz, host.timezone = _windows_timezone(target, ctx, str(path))
    return source


def _windows_timezone(target, ctx: Context, evidence: str):
    """The machine's zone from SYSTEM\\...\\TimeZoneInformation (dissect silently falls back to UTC)."""
    key_path = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation"
    try:
        name = target.registry.key(key_path).value("TimeZoneKeyName").value
    except Exception:
        ctx.gap(evidence, key_path, "time zone not found in the registry: local task times are kept as written, not converted to UTC")
        return None, None
    name = str(name).rstrip("\x00")
    try:
        tz = target.datetime.tz(name)
    except Exception as exc:
        ctx.gap(evidence, f"...\\Time Zones\\{name}", f"time zone definition unreadable ({_describe(exc)}): local task times are not converted")
        return None, name
    if name.upper() == "UTC":
        tz = timezone.utc
    return tz, name


def _safe(fn):
    try:
        value = fn()
    except Exception:
        return None
    return str(value) if value not in (None, "") else None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
