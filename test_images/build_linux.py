"""Build the Linux test host (``linux_scenario``) as a directory, a tar collection, an ext4 volume,
a raw GPT disk and an E01 — byte for byte the same on every run.

Recipe (shared/docs/test-images.md §3): write the tree, ``mke2fs -d`` with a fixed UUID, hash seed
and ``E2FSPROGS_FAKE_TIME``, then ``debugfs`` pins every inode's owner, mtime, atime, ctime and
crtime (mke2fs 1.47.0 copies the kernel-set ctime, which cannot be faked); ``sfdisk`` writes a GPT
with fixed GUIDs; ``ewfacquire`` runs under ``faketime -f`` so the E01 header dates are fixed.
The tar is written by :mod:`tarfile` from the scenario itself (sorted, fixed owners and times).

Needs (Debian): e2fsprogs, fdisk, ewf-tools, faketime.  ``python3 -m test_images.build_linux OUT``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

from test_images import linux_scenario as scenario

FS_UUID = "5b1f3c2a-7d4e-4f60-9a8b-0c1d2e3f4a5b"
HASH_SEED = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
DISK_GUID = "6E3B1A2C-4D5F-4A6B-8C7D-9E0F1A2B3C4D"
PART_GUID = "1C2B3A4D-5E6F-4071-8293-A4B5C6D7E8F9"
LINUX_FS_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
VOLUME_MIB = 8
REQUIRED_TOOLS = ("mke2fs", "debugfs", "sfdisk", "ewfacquire", "faketime")


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def build_linux(out_dir: Path) -> dict[str, Path]:
    """Build every form into ``out_dir``: keys ``dir``, ``tar``, ``ext4``, ``raw``, ``e01``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nodes = scenario.nodes()
    root = out_dir / "rootfs"
    _write_tree(root, nodes)
    tar_path = out_dir / "web-prod-07.tar"
    _write_tar(tar_path, nodes)
    ext4 = out_dir / "rootfs.ext4"
    _make_ext4(root, ext4, nodes, out_dir)
    raw = out_dir / "web-prod-07.raw"
    _make_gpt_disk(ext4, raw)
    e01 = _make_e01(raw, out_dir / "web-prod-07")
    return {"dir": root, "tar": tar_path, "ext4": ext4, "raw": raw, "e01": e01}


def _write_tree(root: Path, nodes: list[scenario.Node]) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    for node in nodes:
        path = root / node.path.lstrip("/")
        if node.kind == "dir":
            path.mkdir(exist_ok=True)
        elif node.kind == "symlink":
            path.symlink_to(node.target)
        else:
            path.write_bytes(node.data)
    for node in reversed(nodes):  # children first, so a directory's time is set after its entries
        path = root / node.path.lstrip("/")
        if node.kind != "symlink":
            os.chmod(path, node.mode)
        os.utime(path, (node.mtime, node.mtime), follow_symlinks=False)
    os.utime(root, (scenario.INSTALLED, scenario.INSTALLED))


def _write_tar(tar_path: Path, nodes: list[scenario.Node]) -> None:
    """A tar collection as an acquisition script would make it (paths relative to /)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for node in nodes:
            info = tarfile.TarInfo(node.path.lstrip("/"))
            info.mtime = node.mtime
            info.mode = node.mode
            info.uid, info.gid = scenario.UIDS[node.owner], scenario.GIDS[node.group]
            info.uname, info.gname = node.owner, node.group
            if node.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif node.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = node.target
                tar.addfile(info)
            else:
                info.size = len(node.data)
                tar.addfile(info, io.BytesIO(node.data))
    tar_path.write_bytes(buffer.getvalue())


def _debugfs_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y%m%d%H%M%S")


def _make_ext4(root: Path, ext4: Path, nodes: list[scenario.Node], work: Path) -> None:
    ext4.unlink(missing_ok=True)
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(scenario.ACQUIRED))
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "rootfs", "-U", FS_UUID,
         "-E", f"hash_seed={HASH_SEED},root_owner=0:0", "-d", str(root), str(ext4), f"{VOLUME_MIB}M"],
        check=True, env=env, capture_output=True,
    )
    acquired = _debugfs_time(scenario.ACQUIRED)
    lines = []
    for node in [scenario.Node("/", kind="dir", mode=0o755)] + nodes:
        quoted = '"' + node.path + '"'
        written = _debugfs_time(node.mtime)
        lines += [
            f"sif {quoted} uid {scenario.UIDS[node.owner]}",
            f"sif {quoted} gid {scenario.GIDS[node.group]}",
            f"sif {quoted} mtime {written}",
            f"sif {quoted} atime {written}",
            f"sif {quoted} crtime {written}",
            f"sif {quoted} ctime {acquired}",
        ]
    script = work / "debugfs.script"
    script.write_text("\n".join(lines) + "\n")
    result = subprocess.run(["debugfs", "-w", "-f", str(script), str(ext4)], env=env, capture_output=True, text=True)
    errors = [line for line in result.stderr.splitlines() if line and not line.startswith("debugfs ")]
    if result.returncode != 0 or errors:
        raise RuntimeError(f"debugfs failed: {errors[:3]}")
    script.unlink()


def _make_gpt_disk(volume: Path, disk: Path) -> None:
    size = volume.stat().st_size
    disk_size = size + 2 * 1024 * 1024  # 1 MiB in front, room for the backup GPT behind
    with open(disk, "wb") as fh:
        fh.truncate(disk_size)
    layout = (
        f"label: gpt\nlabel-id: {DISK_GUID}\nunit: sectors\nfirst-lba: 2048\n"
        f'start=2048, size={size // 512}, type={LINUX_FS_TYPE}, uuid={PART_GUID}, name="rootfs"\n'
    )
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(disk)], input=layout, text=True, check=True, capture_output=True)
    with open(disk, "r+b") as out, open(volume, "rb") as src:
        out.seek(1024 * 1024)
        shutil.copyfileobj(src, out)


def _make_e01(raw: Path, base: Path) -> Path:
    e01 = base.with_suffix(".E01")
    e01.unlink(missing_ok=True)
    subprocess.run(
        ["faketime", "-f", "2024-03-14 09:12:44", "ewfacquire", "-u", "-q", "-f", "encase6", "-c", "deflate:best",
         "-b", "64", "-C", "CASE-2024-017", "-D", "web-prod-07 system disk", "-e", "examiner", "-E", "EV-03",
         "-N", "test image", "-m", "fixed", "-M", "physical", "-t", str(base), str(raw)],
        check=True, capture_output=True, env=dict(os.environ, TZ="UTC"),
    )
    return e01


if __name__ == "__main__":
    for name, path in build_linux(Path(sys.argv[1] if len(sys.argv) > 1 else "build/linux")).items():
        print(f"{name}\t{path}")
