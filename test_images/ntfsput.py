"""Copy a host directory tree into an NTFS volume file through libntfs-3g, with no FUSE.

ntfs-3g ships no ``ntfsmkdir`` and ``ntfscp`` cannot create directories, so this calls the
library's exported API through ctypes (no compiler, no -dev package). Run it under
``faketime -f`` with ``FAKETIME_NO_CACHE=1``: before creating each entry it moves the frozen clock
to that entry's ``fn_created`` time, so the $FILE_NAME times in the MFT record are what a Windows
clock would have written; afterwards the $STANDARD_INFORMATION created/modified/accessed times are
set from the plan (directories last, deepest first, because every create touches the parent).

Usage: ``faketime -f TIME python3 -m test_images.ntfsput VOLUME TREE PLAN.json``; the plan is a
list of ``{"path", "is_dir", "fn_created", "created", "modified", "accessed"}`` (times as
``YYYY-MM-DD HH:MM:SS.ffffff`` UTC strings, which libfaketime also accepts), parents before children.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import struct
import sys
from datetime import datetime, timezone
from pathlib import Path

LIBNTFS = "libntfs-3g.so.89"
AT_FILE_NAME = 0x30
AT_DATA = 0x80
FILE_ROOT = 5  # MFT record of the root directory
_EPOCH_AS_FILETIME = 116444736000000000


class NtfsError(RuntimeError):
    """A libntfs-3g call failed."""


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(LIBNTFS, use_errno=True)
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    signatures = {
        "ntfs_mount": (p, [ctypes.c_char_p, ctypes.c_ulong]),
        "ntfs_umount": (ctypes.c_int, [p, ctypes.c_int]),
        "ntfs_inode_open": (p, [p, ctypes.c_uint64]),
        "ntfs_mbstoucs": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(p)]),
        "ntfs_create": (p, [p, ctypes.c_uint32, p, ctypes.c_uint8, ctypes.c_uint32]),
        "ntfs_attr_open": (p, [p, ctypes.c_uint32, p, ctypes.c_uint32]),
        "ntfs_attr_pwrite": (i64, [p, i64, i64, ctypes.c_char_p]),
        "ntfs_attr_close": (None, [p]),
        "ntfs_inode_set_times": (ctypes.c_int, [p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]),
        "ntfs_inode_close": (ctypes.c_int, [p]),
        "ntfs_inode_close_in_dir": (ctypes.c_int, [p, p]),
        "ntfs_inode_mark_dirty": (None, [p]),
        "ntfs_attr_get_search_ctx": (p, [p, p]),
        "ntfs_attr_put_search_ctx": (None, [p]),
        "ntfs_attr_lookup": (
            ctypes.c_int,
            [ctypes.c_uint32, p, ctypes.c_uint32, ctypes.c_int, i64, p, ctypes.c_uint32, p],
        ),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def _filetime(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return _EPOCH_AS_FILETIME + (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _check(result, what: str):
    if not result:
        raise NtfsError(f"{what}: {os.strerror(ctypes.get_errno())}")
    return result


class Volume:
    def __init__(self, image: Path):
        self.lib = _load()
        self.unnamed = ctypes.addressof(ctypes.c_uint16.in_dll(self.lib, "AT_UNNAMED"))
        self.vol = _check(self.lib.ntfs_mount(str(image).encode(), 0), f"mount {image}")

        self.mft_numbers = {"": FILE_ROOT}  # path -> MFT record number of what was created

    def _inode(self, path: str):
        return _check(self.lib.ntfs_inode_open(self.vol, self.mft_numbers[path]), f"open /{path}")

    def create(self, path: str, is_dir: bool, data: bytes) -> None:
        parent_path, _, name = path.rpartition("/")
        parent = self._inode(parent_path)
        unicode_name = ctypes.c_void_p()
        length = self.lib.ntfs_mbstoucs(name.encode(), ctypes.byref(unicode_name))
        if length <= 0:
            raise NtfsError(f"bad name {name!r}")
        kind = stat.S_IFDIR if is_dir else stat.S_IFREG
        inode = _check(self.lib.ntfs_create(parent, 0, unicode_name, length, kind), f"create /{path}")
        self.mft_numbers[path] = ctypes.c_uint64.from_address(inode).value  # ntfs_inode starts with u64 mft_no
        if data:
            attr = _check(self.lib.ntfs_attr_open(inode, AT_DATA, self.unnamed, 0), f"open data of /{path}")
            written = self.lib.ntfs_attr_pwrite(attr, 0, len(data), data)
            self.lib.ntfs_attr_close(attr)
            if written != len(data):
                raise NtfsError(f"write /{path}: {written} of {len(data)} bytes")
        # closing the child syncs its name into the parent's index: through the parent we hold,
        # never by opening the parent a second time (a second copy would overwrite the index)
        self.lib.ntfs_inode_close_in_dir(inode, parent)
        self.lib.ntfs_inode_close(parent)

    def set_times(self, path: str, created: int, modified: int, accessed: int, fn_created: int) -> None:
        """Set $STANDARD_INFORMATION times; the MFT record's $FILE_NAME keeps ``fn_created`` in all four.

        ntfs_inode_set_times also copies the times into every $FILE_NAME attribute, which Windows
        never does (its $FILE_NAME times stay at creation), so they are written back afterwards
        in the in-memory MFT record, which ntfs_inode_close then writes out.
        """
        inode = self._inode(path)
        value = struct.pack("<3Q", created, modified, accessed)
        if self.lib.ntfs_inode_set_times(inode, value, len(value), 0):
            raise NtfsError(f"set times of /{path}: {os.strerror(ctypes.get_errno())}")
        ctx = _check(self.lib.ntfs_attr_get_search_ctx(inode, None), f"search /{path}")
        if self.lib.ntfs_attr_lookup(AT_FILE_NAME, None, 0, 0, 0, None, 0, ctx):
            raise NtfsError(f"/{path} has no $FILE_NAME")
        attr = ctypes.c_void_p.from_address(ctx + 8).value  # ntfs_attr_search_ctx.attr
        value_offset = ctypes.c_uint16.from_address(attr + 0x14).value  # resident ATTR_RECORD.value_offset
        ctypes.memmove(attr + value_offset + 8, struct.pack("<4Q", *[fn_created] * 4), 32)
        self.lib.ntfs_attr_put_search_ctx(ctx)
        self.lib.ntfs_inode_mark_dirty(inode)
        self.lib.ntfs_inode_close(inode)

    def close(self) -> None:
        if self.lib.ntfs_umount(self.vol, 0):
            raise NtfsError(f"unmount: {os.strerror(ctypes.get_errno())}")


def _set_clock(text: str) -> None:
    """Move libfaketime's frozen clock (read on every call because of FAKETIME_NO_CACHE=1)."""
    os.environ["FAKETIME"] = text


def put_tree(image: Path, tree: Path, plan: list[dict]) -> None:
    volume = Volume(image)
    for entry in plan:
        _set_clock(entry["fn_created"])
        data = b"" if entry["is_dir"] else (tree / entry["path"]).read_bytes()
        volume.create(entry["path"], entry["is_dir"], data)
    files = [e for e in plan if not e["is_dir"]]
    directories = sorted((e for e in plan if e["is_dir"]), key=lambda e: (-e["path"].count("/"), e["path"]))
    for entry in files + directories:
        _set_clock(entry["modified"])  # the $SI "MFT changed" time is the clock at this call
        volume.set_times(
            entry["path"], *(_filetime(entry[k]) for k in ("created", "modified", "accessed", "fn_created"))
        )
    volume.close()


if __name__ == "__main__":
    if os.environ.get("FAKETIME_NO_CACHE") != "1" or "FAKETIME" not in os.environ:
        sys.exit("ntfsput: run under faketime -f with FAKETIME_NO_CACHE=1 (see the module docstring)")
    put_tree(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()))
