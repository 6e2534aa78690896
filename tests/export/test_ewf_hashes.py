"""The MD5/SHA-1 an acquisition tool stores inside an E01 are read and checked against the media data
when the evidence is opened (:func:`triage.evidence.ewf_facts`), and the manifest lists what was found.

The images are made by libewf's own ewfacquire (ewf-tools), which stores both hashes in the image's
``digest``/``hash`` sections; dissect's EWF reader does not read those sections, triage does.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from dissect.evidence.ewf import EWF

from triage.cli import main
from triage.collect import Context
from triage.evidence import ewf_facts, sha256_file
from triage.export.manifest import describe_evidence, verify_main
from triage.records import EvidenceRef

MEDIA_SIZE = 1 << 20


@pytest.fixture(scope="module")
def acquired(tmp_path_factory) -> tuple[Path, bytes]:
    if shutil.which("ewfacquire") is None:
        pytest.fail("ewfacquire (Debian ewf-tools) is required to build the E01 test image")
    base = tmp_path_factory.mktemp("ewf")
    media = random.Random(1053).randbytes(MEDIA_SIZE)
    (base / "disk.raw").write_bytes(media)
    subprocess.run(["ewfacquire", "-u", "-t", str(base / "disk"), "-c", "none", "-d", "sha1", "-C", "CASE-42",
                    "-D", "suspect laptop", "-e", "J. Doe", "-E", "EV-7", "-N", "seized 2026", str(base / "disk.raw")],
                   check=True, capture_output=True)
    return base / "disk.E01", media


def _ref(path: Path, ctx: Context) -> EvidenceRef:
    """The reference evidence opening makes (the random media has no file system, so is not opened whole)."""
    ref = EvidenceRef(path=str(path), kind="e01", size=path.stat().st_size, sha256=sha256_file(path))
    ref.ewf = ewf_facts(path, ref, ctx)
    return ref


def test_stored_hashes_of_an_intact_e01_are_verified(acquired):
    image, media = acquired
    ctx = Context(quiet=True)
    [item] = describe_evidence([_ref(image, ctx)], ctx)
    ewf = item["ewf"]
    assert ewf["stored_hashes"] == {"md5": hashlib.md5(media).hexdigest(), "sha1": hashlib.sha1(media).hexdigest()}
    assert ewf["computed_hashes"] == ewf["stored_hashes"]
    assert ewf["match"] == {"md5": True, "sha1": True}
    assert ewf["status"] == "verified"
    assert ewf["media_size"] == MEDIA_SIZE
    assert ewf["segments"] == [{"path": str(image.resolve()), "size": image.stat().st_size, "sha256": sha256_file(image)}]
    assert ewf["acquisition"]["case_number"] == "CASE-42"
    assert ewf["acquisition"]["examiner_name"] == "J. Doe"
    assert ewf["acquisition"]["evidence_number"] == "EV-7"
    assert ctx.gaps == []


def test_altered_media_data_in_an_e01_is_a_mismatch_and_a_gap(acquired, tmp_path):
    image, media = acquired
    altered = tmp_path / "altered.E01"
    shutil.copyfile(image, altered)
    with altered.open("rb") as fh:
        sectors = next(s for s in EWF(fh).segment(0).sections if s.type == b"sectors")
        offset = sectors.data_offset + 4096
    data = bytearray(altered.read_bytes())
    data[offset] ^= 0xFF
    altered.write_bytes(bytes(data))
    ctx = Context(quiet=True)
    [item] = describe_evidence([_ref(altered, ctx)], ctx)
    ewf = item["ewf"]
    assert ewf["stored_hashes"]["md5"] == hashlib.md5(media).hexdigest()
    assert ewf["match"] == {"md5": False, "sha1": False}
    assert ewf["status"] == "mismatch"
    assert [gap.problem for gap in ctx.gaps] == [
        "media data does not hash to the MD5, SHA1 stored in the image: altered or damaged evidence"]


@pytest.fixture(scope="module")
def split_acquired(tmp_path_factory) -> tuple[list[Path], bytes]:
    """3 MiB of media in 1 MiB segments (ewfacquire's smallest): E01 to E04."""
    base = tmp_path_factory.mktemp("ewf-split")
    media = random.Random(1053).randbytes(3 * MEDIA_SIZE)
    (base / "disk.raw").write_bytes(media)
    subprocess.run(["ewfacquire", "-u", "-t", str(base / "split"), "-c", "none", "-d", "sha1", "-S", str(MEDIA_SIZE),
                    str(base / "disk.raw")], check=True, capture_output=True)
    return sorted(base.glob("split.E*")), media


def test_every_segment_of_a_split_e01_is_hashed_and_verified(split_acquired):
    segments, media = split_acquired
    assert [p.suffix for p in segments] == [".E01", ".E02", ".E03", ".E04"]
    ctx = Context(quiet=True)
    [item] = describe_evidence([_ref(segments[0], ctx)], ctx)
    assert [s["path"] for s in item["ewf"]["segments"]] == [str(p.resolve()) for p in segments]
    assert [s["sha256"] for s in item["ewf"]["segments"]] == [sha256_file(p) for p in segments]
    assert item["ewf"]["stored_hashes"]["sha1"] == hashlib.sha1(media).hexdigest()
    assert item["ewf"]["status"] == "verified"


def test_verify_rehashes_every_e01_segment(split_acquired, tmp_path, capsys):
    originals, _ = split_acquired
    segments = []
    for original in originals:
        segments.append(tmp_path / original.name)
        shutil.copyfile(original, segments[-1])
    case = tmp_path / "case"
    case.mkdir()
    ctx = Context(quiet=True)
    evidence = describe_evidence([_ref(segments[0], ctx)], ctx)
    (case / "manifest.json").write_text(json.dumps({"outputs": [], "evidence": evidence}), encoding="utf-8")
    assert verify_main([str(case)]) == 0
    assert "0 output file(s), 4 evidence file(s) checked: all match" in capsys.readouterr().out
    last = segments[-1]
    last.write_bytes(last.read_bytes()[:-1] + bytes([last.read_bytes()[-1] ^ 1]))
    assert verify_main([str(case)]) == 1
    assert f"CHANGED evidence {last.resolve()}: SHA-256 was " in capsys.readouterr().out


def test_a_run_without_a_case_folder_reports_a_stored_hash_mismatch(committed_windows_e01, tmp_path, capsys):
    """The committed image with another MD5 in its hash section (section checksum kept valid): the mismatch is
    a warning and a listed gap of a plain run, and the run's exit code says something is wrong."""
    image = tmp_path / "windows10.E01"
    shutil.copyfile(committed_windows_e01, image)
    with image.open("rb") as fh:
        section = next(s for s in EWF(fh).segment(0).sections if s.type == b"hash")
    data, at = bytearray(image.read_bytes()), section.data_offset
    md5 = bytes(b ^ 0xFF for b in data[at:at + 16])
    data[at:at + 16] = md5
    struct.pack_into("<I", data, at + 32, zlib.adler32(bytes(data[at:at + 32])))
    image.write_bytes(bytes(data))

    assert main([str(image), "--hunt-date", "20240314", "-q"]) == 1
    out, err = capsys.readouterr()
    problem = "media data does not hash to the MD5 stored in the image: altered or damaged evidence"
    assert f"triage: warning: {image}: EWF media data: {problem}" in err.splitlines()
    assert f"  - {image}: EWF media data: {problem}" in out.splitlines()
    assert err.index(problem) < err.index("task XML not parsed")  # known at opening, before any collector ran

    # With -o the case folder says the same, once: the export reads what opening found, it does not re-verify.
    case = tmp_path / "case"
    assert main([str(image), "-o", str(case), "--hunt-date", "20240314", "-q"]) == 1
    manifest = json.loads((case / "manifest.json").read_text(encoding="utf-8"))
    ewf = manifest["evidence"][0]["ewf"]
    assert (ewf["status"], ewf["match"], ewf["stored_hashes"]) == ("mismatch", {"md5": False}, {"md5": md5.hex()})
    assert [g["problem"] for g in manifest["gaps"]].count(problem) == 1
    assert "<strong>mismatch</strong>" in (case / "report.html").read_text(encoding="utf-8")
