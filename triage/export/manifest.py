"""``manifest.json``: what was examined, with what, by whom, and the hash of everything; ``triage verify``.

The manifest records the tool and dependency versions, the exact command line, examiner and case
id, the run's start and finish (UTC; the only wall-clock values in the case folder), every evidence
file with size and SHA-256 (E01 segments and the files of a directory item one by one), for EWF
images the MD5/SHA-1 the acquisition tool stored inside the image and whether the media data still
hashes to them, every output file with SHA-256, and every gap (what could not be read).

``triage verify DIR`` re-hashes every output file listed and every evidence file, prints one line
per changed, missing or added file (evidence no longer at its path counts), checks the manifest
against ``manifest.sha256`` and ``--manifest-sha256`` (the hash noted when the case was written),
always prints the manifest's own SHA-256, and exits 0 only when everything matches.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import re
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from triage.evidence import sha256_file
from triage.collect import Context
from triage.export.casefolder import MANIFEST_HASH_NAME, MANIFEST_NAME
from triage.export.safe import escape_controls, json_text
from triage.records import EvidenceRef, EwfFacts, to_dict

EXIT_MATCH, EXIT_CHANGED, EXIT_USAGE = 0, 1, 2

DEPENDENCIES = (
    "dissect.target", "dissect.cstruct", "dissect.evidence", "dissect.ntfs", "dissect.regf", "dissect.extfs",
    "dissect.xfs", "dissect.util", "volatility3", "regipy", "python-registry", "python-evtx", "evtx", "pySigma",
    "pySigma-backend-sqlite", "defusedxml", "tabulate",
)

def tool_version() -> str:
    import triage

    version = getattr(triage, "__version__", None)
    if version:
        return version
    try:
        return metadata.version("triage")
    except metadata.PackageNotFoundError:
        return "unknown"


def dependency_versions() -> dict[str, str]:
    versions = {}
    for name in DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


sha256_of = sha256_file  # one streamed hasher for evidence and outputs


def _file_entry(path: Path, shown: str) -> dict[str, Any]:
    size = path.stat().st_size
    return {"path": shown, "size": size, "sha256": sha256_of(path)}


def describe_evidence(refs: list[EvidenceRef], ctx: Context) -> list[dict[str, Any]]:
    """Every evidence item with its files hashed, and what opening found of EWF images' stored hashes."""
    items = []
    for ref in refs:
        path = Path(ref.path)
        item: dict[str, Any] = {"path": ref.path, "absolute_path": str(path.resolve()), "kind": ref.kind,
                                "size": ref.size, "sha256": ref.sha256, "details": to_dict(ref.details)}
        if path.is_dir():
            item["files"] = _directory_files(path, ctx)
        elif ref.ewf is not None:
            item["ewf"] = _ewf_entry(ref.ewf)
        items.append({k: v for k, v in item.items() if v not in (None, {}, [])})
    return items


def _ewf_entry(facts: EwfFacts) -> dict[str, Any]:
    """The checks evidence opening made (:func:`triage.evidence.ewf_facts`); an empty dict is kept (read, none)."""
    return {f.name: to_dict(value) for f in dataclasses.fields(facts) if (value := getattr(facts, f.name)) is not None}


def _directory_files(root: Path, ctx: Context) -> list[dict[str, Any]]:
    """Each regular file of a directory evidence item (collections, loose logs); symlinks not followed."""
    ctx.progress(f"hashing the files of {root}")
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            try:
                files.append(_file_entry(path, rel))
            except OSError as exc:
                ctx.gap(str(root), rel, f"cannot hash evidence file: {exc.strerror or exc}")
    return files


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(case, ctx: Context, *, argv: list[str], examiner: str | None, case_id: str | None,
                   evidence: list[dict[str, Any]], outputs: list[dict[str, Any]], counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool": {"name": "triage", "version": tool_version()},
        "python": platform.python_version(),
        "dependencies": dependency_versions(),
        "command_line": list(argv),
        "examiner": examiner,
        "case_id": case_id,
        "started": case.started,
        "finished": _now(),
        "evidence": evidence,
        "hosts": [to_dict(h) for h in case.hosts],
        "counts": counts,
        "sigma": case.sigma_report,  # rules loaded, unsupported (with the reason), matches per rule
        "outputs": outputs,
        "gaps": [to_dict(g) for g in ctx.gaps],
        "notes": [to_dict(n) for n in ctx.notes],
        "stores_examined": getattr(case, "stores", []),  # per host, the stores read and those not examined
    }


def manifest_text(manifest: dict[str, Any]) -> str:
    return json_text(manifest, indent=2) + "\n"


def manifest_hash_line(digest: str) -> str:
    """``manifest.sha256``: the manifest's own hash in ``sha256sum`` format (``sha256sum -c`` checks it)."""
    return f"{digest}  {MANIFEST_NAME}\n"


# --- triage verify -------------------------------------------------------------------------------

def _plain_name(name: Any) -> bool:
    """A file inside the case folder: relative, "/"-separated (detections/splunk/...), no empty, "." or ".."
    part, no backslash or NUL."""
    if not isinstance(name, str) or name == MANIFEST_NAME or "\\" in name or "\x00" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _evidence_files(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(absolute path, sha256) of every evidence file the manifest names."""
    files = []
    for item in manifest.get("evidence") or []:
        if not isinstance(item, dict):
            continue
        base = item.get("absolute_path") or item.get("path")
        if not isinstance(base, str):
            continue
        if item.get("sha256"):
            files.append((base, item["sha256"]))
        for entry in item.get("files") or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                files.append((str(Path(base) / entry["path"]), entry.get("sha256")))
        for entry in (item.get("ewf") or {}).get("segments") or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"] != base:
                files.append((entry["path"], entry.get("sha256")))
    seen, unique = set(), []
    for path, digest in files:
        if path not in seen:
            seen.add(path)
            unique.append((path, digest))
    return unique


def _case_entries(case_dir: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries: links, special files, empty folders) in the case folder; links not followed."""
    files, others = [], []
    for dirpath, dirnames, filenames in os.walk(case_dir, followlinks=False):
        dirnames.sort()
        if not dirnames and not filenames and Path(dirpath) != case_dir:
            others.append(Path(dirpath).relative_to(case_dir).as_posix() + "/")
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath) / name
            rel = path.relative_to(case_dir).as_posix()
            (files if not path.is_symlink() and path.is_file() else others).append(rel)
    return files, others


def verify_main(argv: list[str]) -> int:
    """``triage verify DIR``: 0 all hashes match, 1 something changed, missing or added, 2 bad usage."""
    parser = argparse.ArgumentParser(
        prog="triage verify", description="Re-check a case folder: output files and evidence against manifest.json.",
        epilog="exit codes:\n  0  everything matches\n  1  a file changed, is missing or was added, evidence is gone, "
               "or the manifest does not match its noted hash\n  2  bad usage or no readable manifest",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case_dir", help="the case folder written with -o")
    parser.add_argument("--manifest-sha256", metavar="HEX",
                        help="the manifest's SHA-256 noted when the case was written: catches an edited manifest")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems, the verdict and the manifest hash")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_MATCH
    noted = (args.manifest_sha256 or "").strip().lower()
    if args.manifest_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", noted):
        print("triage verify: error: --manifest-sha256 must be 64 hex digits", file=sys.stderr)
        return EXIT_USAGE
    case_dir = Path(args.case_dir)
    manifest_path = case_dir / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        print(f"triage verify: error: cannot read {escape_controls(manifest_path)}: "
              f"{escape_controls(getattr(exc, 'strerror', None) or exc)}", file=sys.stderr)
        return EXIT_USAGE
    manifest_sha256 = hashlib.sha256(raw).hexdigest()
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, list):
        print(f"triage verify: error: {escape_controls(manifest_path)} is not a triage manifest (no outputs list)",
              file=sys.stderr)
        return EXIT_USAGE

    problems = 0
    if noted and noted != manifest_sha256:
        print(f"CHANGED {MANIFEST_NAME}: SHA-256 is {manifest_sha256}, the noted hash is {noted}")
        problems += 1
    noted_beside = _hash_file_digest(case_dir / MANIFEST_HASH_NAME)
    if noted_beside is not None and noted_beside != manifest_sha256:
        print(f"CHANGED {MANIFEST_NAME}: SHA-256 is {manifest_sha256}, {MANIFEST_HASH_NAME} says {escape_controls(noted_beside)}")
        problems += 1
    listed = set()
    for entry in outputs:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not _plain_name(name):
            print(f"REFUSED output {escape_controls(repr(name))}: not a plain file name inside the case folder")
            problems += 1
            continue
        listed.add(name)
        path = case_dir / name
        if path.is_symlink() or not path.is_file():
            print(f"MISSING output {escape_controls(name)}")
            problems += 1
            continue
        now = sha256_of(path)
        if now != entry.get("sha256"):
            print(f"CHANGED output {escape_controls(name)}: SHA-256 was {escape_controls(entry.get('sha256'))}, now {now}")
            problems += 1

    checked = 0
    for path_text, digest in _evidence_files(manifest):
        path = Path(path_text)
        if path.is_symlink() or not path.is_file():
            print(f"MISSING evidence {escape_controls(path_text)}: no longer at its recorded path, not checked")
            problems += 1
            continue
        checked += 1
        now = sha256_of(path)
        if now != digest:
            print(f"CHANGED evidence {escape_controls(path_text)}: SHA-256 was {escape_controls(digest)}, now {now}")
            problems += 1

    files, others = _case_entries(case_dir)
    for extra in [f for f in files if f not in listed and f not in (MANIFEST_NAME, MANIFEST_HASH_NAME)] + others:
        print(f"ADDED {escape_controls(extra)}: not part of the case folder as written")
        problems += 1

    verdict = "all match" if problems == 0 else f"{problems} changed, missing or added"
    if problems or not args.quiet:
        print(f"triage verify: {len(listed)} output file(s), {checked} evidence file(s) checked: {verdict}")
    print(f"triage verify: {MANIFEST_NAME} SHA-256 {manifest_sha256}"
          f"{' (matches the noted hash)' if noted and noted == manifest_sha256 else ''}")
    return EXIT_MATCH if problems == 0 else EXIT_CHANGED


def _hash_file_digest(path: Path) -> str | None:
    """The hash ``manifest.sha256`` records, or None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return (text.split() or [""])[0].lower()
