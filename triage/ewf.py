"""What an EWF (E01) image says about itself: the acquisition hashes and metadata in its sections.

Pure decoding of section bytes; :func:`triage.evidence.open_evidence` reads the sections and the media
data and stores the result on :class:`triage.records.EvidenceRef` before any collector runs, so a
stored-hash mismatch is known (a gap) before findings are judged, with or without a case folder.
dissect's EWF reader does not read these sections; their layout is libewf's format documentation
(sections "hash", "digest", "header", "header2").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from dissect.cstruct import cstruct

VERIFIED, MISMATCH, NO_HASH, UNREADABLE = "verified", "mismatch", "no hash stored in the image", "unreadable"

# All-zero hash bytes mean "not stored".
_ewf = cstruct().load("""
typedef struct {
    char    md5[16];
    char    unknown[16];
    uint32  checksum;
} EWFHashSection;

typedef struct {
    char    md5[16];
    char    sha1[20];
    char    padding[40];
    uint32  checksum;
} EWFDigestSection;
""")
# Bytes to read for each section that holds hashes.
HASH_SECTIONS = {b"digest": len(_ewf.EWFDigestSection), b"hash": len(_ewf.EWFHashSection)}

# Acquisition metadata keys of the EWF header / header2 sections.
_HEADER_KEYS = {
    "a": "description", "c": "case_number", "n": "evidence_number", "e": "examiner_name", "t": "notes",
    "md": "model", "sn": "serial_number", "av": "acquisition_software_version", "ov": "acquisition_os",
    "m": "acquisition_date", "u": "system_date", "r": "compression", "dc": "unknown_dc",
}


class EwfSectionError(ValueError):
    """A hash section shorter than its layout."""


def is_ewf(path: Path, kind: str) -> bool:
    return kind in ("e01", "ex01") or path.suffix.lower() in (".e01", ".ex01", ".s01", ".l01")


def stored_hashes(sections: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """MD5/SHA-1 from (section type, data) pairs in file order: a digest section wins over a hash section."""
    stored: dict[str, str] = {}
    for kind, data in sections:
        if kind not in HASH_SECTIONS:
            continue
        if len(data) < HASH_SECTIONS[kind]:
            raise EwfSectionError(f"{kind.decode()} section holds {len(data)} bytes, its layout {HASH_SECTIONS[kind]}")
        if kind == b"digest":
            digest = _ewf.EWFDigestSection(data)
            for name, value in (("md5", digest.md5), ("sha1", digest.sha1)):
                if any(value):
                    stored[name] = value.hex()
        elif "md5" not in stored:
            hashed = _ewf.EWFHashSection(data)
            if any(hashed.md5):
                stored["md5"] = hashed.md5.hex()
    return dict(sorted(stored.items()))


def header_fields(data: bytes) -> dict[str, str]:
    """Acquisition metadata from a header2 (UTF-16) or header (ASCII) section: keys line, values line."""
    text = data.decode("utf-16-le" if data[:2] == b"\xff\xfe" else "latin-1", errors="replace").lstrip("\ufeff")
    lines = text.replace("\r", "").split("\n")
    if len(lines) < 4:
        return {}
    keys, values = lines[2].split("\t"), lines[3].split("\t")
    fields = {}
    for key, value in zip(keys, values):
        if key == "p" or not value:  # "p" is the password hash: never copied into a report
            continue
        name = _HEADER_KEYS.get(key, key)
        fields[name] = value
        if key in ("m", "u") and value.isdigit():  # header2 writes POSIX seconds: UTC by definition
            fields[f"{name}_utc"] = datetime.fromtimestamp(int(value), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return fields


def compare(stored: dict[str, str], computed: dict[str, str]) -> tuple[dict[str, bool], str]:
    """Per stored hash whether the media matches it, and the status (verified or mismatch)."""
    match = {name: computed[name] == stored[name] for name in stored}
    return match, VERIFIED if all(match.values()) else MISMATCH


def mismatch_problem(match: dict[str, bool]) -> str:
    bad = ", ".join(name.upper() for name, ok in match.items() if not ok)
    return f"media data does not hash to the {bad} stored in the image: altered or damaged evidence"


__all__ = ["HASH_SECTIONS", "EwfSectionError", "compare", "header_fields", "is_ewf", "mismatch_problem",
           "stored_hashes", "VERIFIED", "MISMATCH", "NO_HASH", "UNREADABLE"]
