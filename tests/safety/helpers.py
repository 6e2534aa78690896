"""Running the real CLI in a child process with a private TMPDIR, and hashing trees before/after."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
EVTX = Path(__file__).resolve().parents[3] / "shared/corpus/Velocidex__velociraptor/artifacts/testdata/files"
HUNT_DATE = "20260101"


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): file hash, link target, or "dir"."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = "link -> " + os.readlink(path)
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def child_env(tmpdir: Path) -> dict[str, str]:
    tmpdir.mkdir(exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(PROJECT))


def triage_cli(*args: str, tmpdir: Path, cwd: Path = PROJECT, **kwargs) -> subprocess.CompletedProcess:
    """``python -m triage ARGS`` from the project root (this worktree's copy), private TMPDIR."""
    return subprocess.run([sys.executable, "-m", "triage", *map(str, args)], cwd=cwd, env=child_env(tmpdir), check=False,
                          capture_output=True, **kwargs)


def control_characters(data: bytes) -> set[str]:
    """Characters a terminal would act on or that reorder text: C0 (but newline), DEL, C1, bidi and
    invisible format characters."""
    text = data.decode("utf-8", "replace")
    import unicodedata

    return {f"U+{ord(ch):04X}" for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")}
