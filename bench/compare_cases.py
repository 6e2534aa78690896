"""Nothing lost: run two checkouts of triage on the same evidence and compare their case folders file by file.

Each checkout runs as its own subprocess (``PYTHONPATH`` = the checkout) from a fresh folder with the same
relative ``-o case`` and ``--hunt-date``, so the manifests' command lines match. Files must be byte-identical
except ``manifest.json``'s ``started``/``finished`` (wall-clock), and the files named with ``--changed`` (on
purpose: their manifest hash and size may differ too). Peak RSS and wall time of each run are printed beside.

``python3 bench/compare_cases.py --before /work/main --after . --changed report.html [--evtx-folder DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import run_command  # noqa: E402

WINDOWS_E01 = ROOT / "test_images" / "windows10.E01"


def build_cases(work: Path) -> dict[str, list[str]]:
    """The evidence sets compared: the committed Windows image, a built Linux image and a built memory image."""
    from test_images.build_linux import build_linux
    from test_images.memimage import build_memory_image

    linux = build_linux(work / "linux")
    memory = build_memory_image(work / "memory", "win10")
    return {
        "windows10.E01": [str(WINDOWS_E01)],
        "linux E01": [str(linux["e01"])],
        "memory alone": ["--memory", str(memory["image"]), "--symbols", str(memory["symbols"])],
        "windows10.E01 + memory": [str(WINDOWS_E01), "--memory", str(memory["image"]),
                                   "--symbols", str(memory["symbols"])],
    }


def run_case(checkout: Path, arguments: list[str], folder: Path) -> dict:
    folder.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = run_command([sys.executable, "-m", "triage", *arguments, "-o", "case", "--hunt-date", "20260101", "-q"],
                       cwd=folder, env=env)
    if done.returncode not in (0, 1):
        raise SystemExit(f"triage ({checkout}) failed on {arguments}:\n{done.stderr[-2000:]}")
    return {"seconds": round(done.seconds, 2), "peak_rss_mb": done.peak_rss_mb, "case": folder / "case"}


def _manifest(path: Path, changed: set[str]) -> dict:
    record = json.loads(path.read_text(encoding="utf-8"))
    record.pop("started", None)
    record.pop("finished", None)
    record["outputs"] = [o for o in record.get("outputs", []) if o.get("file") not in changed]
    return record


def differences(before: Path, after: Path, changed: set[str]) -> list[str]:
    """Files that differ between two case folders, apart from the run times and the ``changed`` files."""
    names = {p.relative_to(before).as_posix() for p in before.rglob("*") if p.is_file()}
    names |= {p.relative_to(after).as_posix() for p in after.rglob("*") if p.is_file()}
    found = []
    for name in sorted(names - changed - {"manifest.sha256"}):
        a, b = before / name, after / name
        if not a.is_file() or not b.is_file():
            found.append(f"{name}: only in {'after' if b.is_file() else 'before'}")
        elif name == "manifest.json":
            if _manifest(a, changed) != _manifest(b, changed):
                found.append(name)
        elif a.read_bytes() != b.read_bytes():
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the reference (e.g. main)")
    parser.add_argument("--after", type=Path, default=ROOT, help="checkout under test (default: this one)")
    parser.add_argument("--changed", action="append", default=[], help="a case file changed on purpose (repeatable)")
    parser.add_argument("--evtx-folder", action="append", default=[], type=Path,
                        help="also compare on this folder of logs")
    args = parser.parse_args(argv)
    changed = set(args.changed)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="triage-compare-") as tmp:
        work = Path(tmp)
        cases = build_cases(work / "images")
        cases.update({f"logs {folder.name}": [str(folder.resolve())] for folder in args.evtx_folder})
        for number, (label, arguments) in enumerate(cases.items()):
            before = run_case(args.before.resolve(), arguments, work / f"{number}-before")
            after = run_case(args.after.resolve(), arguments, work / f"{number}-after")
            found = differences(before["case"], after["case"], changed)
            failed += bool(found)
            print(f"{label}: {'DIFFERENT: ' + ', '.join(found) if found else 'identical'} "
                  f"(before {before['seconds']} s {before['peak_rss_mb']} MB, after {after['seconds']} s "
                  f"{after['peak_rss_mb']} MB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
