"""Where a case folder may be written, and writing it atomically.

triage deletes nothing it did not create in this run. A case is built in a fresh temporary sibling
of ``-o`` (``.<name>.triage-tmp-<pid>-<n>``) and renamed into place only when every file is written, so an interrupted or failed run leaves no folder that looks finished and never touches
an existing tree. ``-o`` is checked before any analysis: an existing file, a symbolic link, a system
pseudo-filesystem, an unwritable parent, a folder holding (or held by) evidence, or a non-empty
folder are refused. ``--force`` replaces a previous triage case whole, and only one that holds
nothing but the files its own manifest lists (unchanged): anything else may be the examiner's work.
Symbolic links inside ``-o`` are never followed: files are created with ``O_EXCL | O_NOFOLLOW`` in
folders this run made.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import signal
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST_NAME = "manifest.json"
MANIFEST_HASH_NAME = "manifest.sha256"
_SYSTEM_TREES = ("/proc", "/sys", "/dev")
_serial = itertools.count(1)
# Temporary folders of this process that a signal handler must remove (see triage.runtemp).
LIVE_TEMP: set[Path] = set()


class CaseFolderError(Exception):
    """The case folder cannot be written (bad ``-o``, refused replacement, disk full): exit 2, one line."""


def _absolute(path: Path) -> Path:
    """The absolute path with ``..`` folded and symbolic links in the parents resolved, the last part kept."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or child.is_relative_to(parent)


def check_output(out_dir: str | os.PathLike, inputs: list[str], *, force: bool = False) -> Path:
    """Refuse a ``-o`` that cannot or must not be written, before any analysis; returns its absolute path.

    ``inputs`` are every path the run reads (evidence, memory, Sigma folders, IOC files, symbols)."""
    given = Path(out_dir)
    if str(out_dir) == "" or given.name in ("", ".", ".."):
        given = Path(os.path.abspath(out_dir))
    out = _absolute(given)
    if any(_inside(out, Path(tree)) for tree in _SYSTEM_TREES):
        raise CaseFolderError(f"{out} is inside {next(t for t in _SYSTEM_TREES if _inside(out, Path(t)))}, "
                              "a system pseudo-filesystem: give a folder on a real disk")
    if os.path.islink(out):
        raise CaseFolderError(f"{out} is a symbolic link: give the real folder (links are never followed)")
    if out.exists() and not out.is_dir():
        raise CaseFolderError(f"{out} exists and is not a folder")
    for item in inputs:
        source = Path(os.path.abspath(item))
        resolved = source.resolve() if source.exists() else source
        for candidate in {source, resolved}:
            if _inside(candidate, out):
                raise CaseFolderError(f"input {item} is inside the output folder {out}: evidence and rules are never "
                                      "written over; choose another -o")
            if source.is_dir() and _inside(out, candidate):
                raise CaseFolderError(f"the output folder {out} is inside the evidence folder {item}: "
                                      "evidence is never written; choose another -o")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CaseFolderError(f"cannot create {out}: {parent} is not writable")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CaseFolderError(f"{out} is not empty: give a new folder, or --force to replace a previous triage case")
        previous_case_files(out)  # raises when the folder holds anything but a previous case
        if not os.access(out, os.W_OK | os.X_OK):
            raise CaseFolderError(f"cannot replace {out}: the folder is not writable")
    return out


def previous_case_files(folder: Path) -> list[str]:
    """The files of the triage case in ``folder`` (relative, "/"-separated), manifest included.

    Raises when the folder holds anything else: a file its manifest does not list, a changed file,
    a symbolic link or special file. Only then may ``--force`` delete it."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError):
        raise CaseFolderError(f"--force refused: {folder} holds no readable triage manifest.json, so it is not a "
                              "previous triage case; move its contents away first") from None
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    if not isinstance(outputs, list) or (manifest.get("tool") or {}).get("name") != "triage":
        raise CaseFolderError(f"--force refused: {folder}/{MANIFEST_NAME} is not a triage manifest")
    listed = {e.get("file"): e.get("sha256") for e in outputs if isinstance(e, dict) and isinstance(e.get("file"), str)}
    allowed = {MANIFEST_NAME, MANIFEST_HASH_NAME, *listed}
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                if not any(f.startswith(rel + "/") for f in allowed):
                    raise CaseFolderError(f"--force refused: {folder} holds the folder {rel}, which the previous "
                                          "case did not write; move it away first")
                continue
            if not stat.S_ISREG(mode) or rel not in allowed:
                what = "symbolic link" if stat.S_ISLNK(mode) else "file"
                raise CaseFolderError(f"--force refused: {folder} holds the {what} {rel}, which the previous case "
                                      "did not write; move it away first")
            if rel in listed and _sha256(path) != listed[rel]:
                raise CaseFolderError(f"--force refused: {folder}/{rel} was changed after the previous case was "
                                      "written; keep it or move it away first")
            found.append(rel)
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", opener=_nofollow_reader) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _nofollow_reader(path, flags):
    return os.open(path, flags | os.O_NOFOLLOW)


class CaseBuilder:
    """A fresh temporary sibling of the case folder; files go in, :meth:`commit` renames it into place."""

    def __init__(self, out: Path, *, force: bool = False):
        self.out = _absolute(out)
        self.force = force
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / f".{self.out.name}.triage-tmp-{os.getpid()}-{next(_serial)}"
        os.mkdir(self.tmp, 0o755)  # fails if it exists: never reuse a folder this run did not make
        LIVE_TEMP.add(self.tmp)
        self._dirs = {self.tmp}

    def write(self, name: str, data: bytes) -> str:
        """Write one file (``name`` relative, "/"-separated, fixed by triage); returns its SHA-256."""
        return self.write_stream(name, (data,))[1]

    def write_text(self, name: str, lines: Iterable[str]) -> tuple[int, str]:
        """Write text produced piece by piece (UTF-8, unencodable characters as backslash escapes), never
        holding the whole file: a timeline of a million rows costs one buffer. Returns (size, SHA-256)."""
        return self.write_stream(name, _encoded(lines))

    def write_stream(self, name: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write ``chunks`` in order as one file, hashing while writing; returns (size, SHA-256)."""
        path = self.tmp / name
        for parent in reversed(path.relative_to(self.tmp).parents[:-1]):
            folder = self.tmp / parent
            if folder not in self._dirs:
                os.mkdir(folder, 0o755)
                self._dirs.add(folder)
        digest, size = hashlib.sha256(), 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:  # a full disk fails here (ENOSPC / EFBIG), before the case is renamed into place
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return size, digest.hexdigest()

    def commit(self) -> Path:
        """Rename the finished case into place; with ``force`` the previous case is moved away, then deleted.

        Files are not fsynced (that doubled the time of a case of 800 files): a write error such as a
        full disk is caught at write time; surviving a power cut is left to the file system."""
        with signals_held():  # Ctrl-C here waits: never the old case moved away and the new one not yet in
            return self._swap()

    def _swap(self) -> Path:
        old = None
        if self.out.is_dir() and any(self.out.iterdir()):
            if not self.force:
                raise CaseFolderError(f"{self.out} is not empty (written meanwhile by someone else): "
                                      "the new case was not put in place")
            files = previous_case_files(self.out)
            old = self.out.parent / f".{self.out.name}.triage-old-{os.getpid()}-{next(_serial)}"
            os.rename(self.out, old)
        try:
            os.rename(self.tmp, self.out)  # atomic; replaces only an empty folder
        except OSError:
            if old is not None:
                os.rename(old, self.out)
            raise
        LIVE_TEMP.discard(self.tmp)
        if old is not None:
            _delete_case(old, files)
        return self.out

    def discard(self) -> None:
        """Remove the temporary folder (everything in it was written by this run)."""
        remove_own_tree(self.tmp)
        LIVE_TEMP.discard(self.tmp)


WRITE_BUFFER = 1 << 20  # bytes gathered before one write: few system calls, bounded memory


def _encoded(lines: Iterable[str]) -> Iterator[bytes]:
    """Text pieces as UTF-8 blocks of about :data:`WRITE_BUFFER` bytes."""
    pending: list[bytes] = []
    held = 0
    for line in lines:
        data = line.encode("utf-8", "backslashreplace")
        pending.append(data)
        held += len(data)
        if held >= WRITE_BUFFER:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM stay pending (in the kernel) while the renames that put a case in place run."""
    held = (signal.SIGINT, signal.SIGTERM)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _delete_case(folder: Path, files: list[str]) -> None:
    """Delete exactly the listed files of a replaced case, then its folders if they are empty."""
    for rel in files:
        try:
            os.unlink(folder / rel)
        except FileNotFoundError:
            pass
    for dirpath, _dirnames, _files in sorted(os.walk(folder, followlinks=False), key=lambda w: -len(w[0])):
        try:
            os.rmdir(dirpath)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise


def remove_own_tree(folder: Path) -> None:
    """Remove a folder this run created (never follows a link: os.walk with followlinks=False, lstat)."""
    if not os.path.lexists(folder):
        return
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False, followlinks=False):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                os.unlink(os.path.join(dirpath, name))
            except FileNotFoundError:
                pass
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        pass
