"""Build every form of the Windows 10 test machine, deterministically, from one planted tree.

``python3 -m test_images.build --out DIR [--refresh-committed]`` or ``build_windows(out_dir)``.
Forms (keys of the returned dict): ``tree`` (plain directory), ``ntfs`` (bare volume), ``gpt``
and ``mbr`` (raw disks), ``e01``, ``qcow2``, ``vmdk`` (streamOptimized), ``vhd`` (dynamic),
``vhdx``, ``kape_dir``, ``kape_zip``, ``kape_vhdx``, ``velociraptor_zip``.

Every output except the VHDX files is byte-identical across builds (and across output
directories): every tool runs under a frozen ``faketime`` clock with ``TZ=UTC``, random
identifiers are pinned (NTFS serial, partition GUIDs, VMDK CID, VHD footer), and zips are
written entry by entry in sorted order. See docs/test-images.md for why each pin is needed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from dissect.ntfs import NTFS

from test_images.regf import minimal_hive, set_key_times
from test_images.windows_tree import (
    ACQUIRED, CORPUS, EVTX_DIR, GPT_DISK_GUID, GPT_PARTITION_GUID, HOSTNAME, STOCK_TASK_DIR, FileTimes, PlantedFile,
    PlantedHive, PlantedTask, all_tasks, at_jobs, other_files, planted_hives,
)
from test_images.taskcache_scenarios import dirty_software_hive, log_only_keys, software_hive, stealth_task_files

PROJECT = Path(__file__).resolve().parents[1]
COMMITTED_E01 = Path(__file__).resolve().parent / "windows10.E01"
FROZEN_CLOCK = ACQUIRED.strftime("%Y-%m-%d %H:%M:%S")
SYSTEM_PYTHON = "/usr/bin/python3"
SECTOR = 512
MIB = 1024 * 1024
VOLUME_SIZE = 8 * MIB
PARTITION_START = 2048  # sectors
NTFS_SERIAL = "1A2B3C4D5E6F7081"
KAPE_NTFS_SERIAL = "2B3C4D5E6F708192"
MBR_SIGNATURE = "0x1a2b3c4d"
VMDK_CID = "5eed0042"
VHD_UUID = bytes.fromhex("6c1f2a3b4c5d4e6f8a9b0c1d2e3f4a5b")
VHD_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# tool -> Debian package that provides it
REQUIRED_TOOLS = {
    "mkntfs": "ntfs-3g", "ntfslabel": "ntfs-3g", "faketime": "faketime",
    "ewfacquire": "ewf-tools", "qemu-img": "qemu-utils", "sfdisk": "fdisk",
}


class BuildError(RuntimeError):
    """A tool is missing or a build step failed; the message names the step and the fix."""


def check_tools() -> None:
    """Fail early, naming the Debian packages to install, rather than half-way through a build."""
    missing = {package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None}
    try:
        ctypes.CDLL("libntfs-3g.so.89")
    except OSError:
        missing.add("libntfs-3g89")
    has_hivex = Path(SYSTEM_PYTHON).exists() and not subprocess.run(
        [SYSTEM_PYTHON, "-c", "import hivex"], capture_output=True).returncode
    if not has_hivex:
        missing.add("python3-hivex")
    if missing:
        raise BuildError(f"test image builder needs Debian packages: apt-get install -y {' '.join(sorted(missing))}")
    if not STOCK_TASK_DIR.is_dir() or not EVTX_DIR.is_dir():
        raise BuildError(f"test image builder copies real task files and event logs from {CORPUS.resolve()}: not found")


def run(command: list[str], cwd: Path | None = None, frozen: bool = False, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> bytes:
    """Run a tool with a pinned environment; under ``faketime -f`` when ``frozen``."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TZ": "UTC", "LC_ALL": "C",
                **(env or {})}
    if frozen:
        command = ["faketime", "-f", FROZEN_CLOCK, *command]
    result = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, env=full_env)
    if result.returncode:
        detail = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise BuildError(f"{' '.join(command)}: exit {result.returncode}: {detail}")
    return result.stdout


# ---------------------------------------------------------------------------------------------
# The planted tree


def build_hive(hive: PlantedHive, work: Path) -> bytes:
    """Minimal base hive, keys and values added by hivex (system Python), key times pinned."""
    path = work / (hive.path.replace("/", "_") + ".hive")
    path.write_bytes(minimal_hive(hive.base_name, hive.root_name, hive.base_time))
    job = {"hive": str(path), "keys": [
        {"path": key.path, "values": [[v.name, v.type, v.data.hex()] for v in key.values]} for key in hive.keys
    ]}
    run([SYSTEM_PYTHON, str(Path(__file__).with_name("hive_fill.py"))], stdin=json.dumps(job).encode())
    return set_key_times(path.read_bytes(), {key.path: key.written for key in hive.keys if key.written})


def image_tasks() -> list[PlantedTask]:
    """Every task file on the image: stock, scenario and broken tasks plus the TaskCache stealth set's XML."""
    return sorted(all_tasks() + stealth_task_files(), key=lambda t: t.name.lower())


def planted_files(work: Path, extra_tasks: list[PlantedTask] = ()) -> list[PlantedFile]:
    """Every file of the machine, sorted by path, with ``extra_tasks`` (benchmarks' scale series) added
    to the task folder and TaskCache. SOFTWARE carries TaskCache and is left dirty: its last task exists
    only in SOFTWARE.LOG1/.LOG2."""
    tasks = sorted(image_tasks() + list(extra_tasks), key=lambda t: t.name.lower())
    files = [PlantedFile(task.file_path, task.data, task.times) for task in tasks]
    hives = planted_hives(tasks)
    software = next(h for h in hives if h.path.endswith("/SOFTWARE"))
    dirty = dirty_software_hive(software_hive(tasks, work), log_only_keys(tasks), work)
    files += [PlantedFile(software.path, dirty.primary, software.times),
              PlantedFile(software.path + ".LOG1", dirty.log1, software.times),
              PlantedFile(software.path + ".LOG2", dirty.log2, software.times)]
    files += [PlantedFile(hive.path, build_hive(hive, work), hive.times) for hive in hives if hive is not software]
    files += other_files(at_jobs())
    return sorted(files, key=lambda f: f.path.lower())


def directory_times(files: list[PlantedFile]) -> dict[str, FileTimes]:
    """A directory is created with its first descendant and modified when its last direct child
    (file or directory) was created."""
    created: dict[str, datetime] = {}
    for file in files:
        parts = file.path.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            created[directory] = min(created.get(directory, file.times.fn_created), file.times.fn_created)
    children: dict[str, list[datetime]] = {}
    for path, stamp in [(f.path, f.times.fn_created) for f in files] + list(created.items()):
        parent = path.rpartition("/")[0]
        if parent:
            children.setdefault(parent, []).append(stamp)
    return {d: FileTimes(created[d], max(children[d]), max(children[d]), created[d]) for d in sorted(created)}


def write_tree(root: Path, files: list[PlantedFile]) -> None:
    """The plain directory form; host mtime/atime carry $SI modified/accessed."""
    for file in files:
        target = root / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
        os.utime(target, (file.times.accessed.timestamp(), file.times.modified.timestamp()))
    for directory, times in sorted(directory_times(files).items(), key=lambda item: -item[0].count("/")):
        os.utime(root / directory, (times.accessed.timestamp(), times.modified.timestamp()))


# ---------------------------------------------------------------------------------------------
# NTFS, disks and containers


def _clock(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def make_ntfs(volume: Path, tree: Path, files: list[PlantedFile], label: str, serial: str) -> None:
    volume.unlink(missing_ok=True)
    with volume.open("wb") as handle:
        handle.truncate(VOLUME_SIZE)
    run(["mkntfs", "-F", "-q", "-Q", "-T", "-s", str(SECTOR), "-c", "4096", "-p", str(PARTITION_START),
         "-H", "255", "-S", "63", "-L", label, str(volume)], frozen=True)
    run(["ntfslabel", f"--new-serial={serial}", str(volume)], frozen=True)
    entries = [(path, True, times) for path, times in directory_times(files).items()]
    entries += [(file.path, False, file.times) for file in files]
    plan = [
        {"path": path, "is_dir": is_dir, "fn_created": _clock(times.fn_created), "created": _clock(times.created),
         "modified": _clock(times.modified), "accessed": _clock(times.accessed)}
        for path, is_dir, times in sorted(entries, key=lambda e: e[0].lower().split("/"))
    ]
    plan_path = volume.with_suffix(".plan.json")
    plan_path.write_text(json.dumps(plan, indent=0))
    run([sys.executable, "-m", "test_images.ntfsput", str(volume), str(tree), str(plan_path)], cwd=PROJECT,
        frozen=True, env={"FAKETIME_NO_CACHE": "1"})
    plan_path.unlink()


def make_disk(volume: Path, disk: Path, scheme: str) -> None:
    """A raw disk with the volume as its one partition at 1 MiB (GPT or MBR, identifiers pinned)."""
    sectors = VOLUME_SIZE // SECTOR
    if scheme == "gpt":
        size = VOLUME_SIZE + 2 * MIB
        script = (f"label: gpt\nlabel-id: {str(GPT_DISK_GUID).upper()}\n"
                  f"start={PARTITION_START}, size={sectors}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, "
                  f'uuid={str(GPT_PARTITION_GUID).upper()}, name="Basic data partition"\n')
    else:
        size = VOLUME_SIZE + MIB
        script = f"label: dos\nlabel-id: {MBR_SIGNATURE}\nstart={PARTITION_START}, size={sectors}, type=7, bootable\n"
    disk.unlink(missing_ok=True)
    with disk.open("wb") as handle:
        handle.truncate(size)
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(disk)], stdin=script.encode(), frozen=True)
    with disk.open("r+b") as handle:
        handle.seek(PARTITION_START * SECTOR)
        handle.write(volume.read_bytes())


def make_e01(disk: Path, directory: Path, name: str) -> Path:
    run(["ewfacquire", "-u", "-q", "-f", "encase6", "-c", "deflate:best", "-b", "64", "-C", "TRIAGE-T1053",
         "-D", f"{HOSTNAME} system disk", "-e", "triage test builder", "-E", "EV-001",
         "-N", "synthetic, deterministic test image", "-m", "fixed", "-M", "physical", "-t", name, disk.name],
        cwd=directory, frozen=True)
    return directory / f"{name}.E01"


def make_vmdk(disk: Path, directory: Path, name: str) -> Path:
    """streamOptimized VMDK; qemu-img writes a random CID into the descriptor, which is pinned here."""
    out = directory / f"{name}.vmdk"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", disk.name, out.name],
        cwd=directory, frozen=True)
    data = bytearray(out.read_bytes())
    offset, size = (value * SECTOR for value in struct.unpack_from("<QQ", data, 28))
    text = bytes(data[offset:offset + size]).rstrip(b"\0").decode("ascii")
    lines = [f"CID={VMDK_CID}" if line.startswith("CID=") else line for line in text.split("\n")]
    fixed = "\n".join(lines).encode("ascii")
    data[offset:offset + size] = fixed.ljust(size, b"\0")
    out.write_bytes(bytes(data))
    return out


def _vhd_footer_pinned(footer: bytes) -> bytes:
    pinned = bytearray(footer)
    struct.pack_into(">I", pinned, 24, int((ACQUIRED - VHD_EPOCH).total_seconds()))
    pinned[68:84] = VHD_UUID
    pinned[64:68] = b"\0\0\0\0"
    struct.pack_into(">I", pinned, 64, ~sum(pinned) & 0xFFFFFFFF)
    return bytes(pinned)


def make_vhd(disk: Path, directory: Path, name: str) -> Path:
    """Dynamic VHD; the footer (and its copy at offset 0) carries a random UUID and a timestamp."""
    out = directory / f"{name}.vhd"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", disk.name,
         out.name], cwd=directory, frozen=True)
    data = bytearray(out.read_bytes())
    footer = _vhd_footer_pinned(bytes(data[-512:]))
    data[-512:] = footer
    data[:512] = footer
    out.write_bytes(bytes(data))
    return out


def convert(disk: Path, directory: Path, name: str, fmt: str, suffix: str) -> Path:
    out = directory / f"{name}.{suffix}"
    run(["qemu-img", "convert", "-f", "raw", "-O", fmt, disk.name, out.name], cwd=directory, frozen=True)
    return out


# ---------------------------------------------------------------------------------------------
# Collections


def _zip_time(moment: datetime) -> tuple[int, ...]:
    return moment.astimezone(timezone.utc).timetuple()[:6]


def write_zip(out: Path, entries: list[tuple[str, bytes, tuple[int, ...]]], compress: int) -> None:
    """A zip with fixed entry order, times and attributes."""
    with zipfile.ZipFile(out, "w") as archive:
        for name, data, date_time in entries:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = compress
            info.create_system = 0
            info.external_attr = 0x20  # FILE_ATTRIBUTE_ARCHIVE
            archive.writestr(info, data)


def kape_extras(volume: Path) -> list[PlantedFile]:
    """What KAPE adds next to the files: the raw $MFT and an (empty) USN journal $J.

    The $MFT is the raw $DATA stream of record 0, update sequence arrays intact, as KAPE's raw
    copy holds it; ``ntfscat`` cannot be used: it returns the records with fixups already applied,
    which dissect.ntfs then rejects ("Fixup mismatch")."""
    stamp = FileTimes.at(ACQUIRED)
    with volume.open("rb") as handle:
        mft = NTFS(handle).mft.get(0).open().read()
    return [PlantedFile("$MFT", mft, stamp), PlantedFile("$Extend/$J", b"", stamp)]


def kape_files(files: list[PlantedFile], volume: Path) -> list[PlantedFile]:
    """The KAPE target layout: one folder per drive letter holding the collected paths."""
    collected = files + kape_extras(volume)
    return sorted((PlantedFile("C/" + f.path, f.data, f.times) for f in collected), key=lambda f: f.path.lower())


def velociraptor_name(component: str) -> str:
    """Path component as Velociraptor stores it in a collection (its URL-style escaping)."""
    quoted = quote(component, safe="$ ")
    return "%2E" + quoted[1:] if quoted.startswith(".") else quoted


def velociraptor_zip(out: Path, files: list[PlantedFile]) -> None:
    """An offline-collector zip (Windows.KapeFiles.Targets through the ``auto`` accessor)."""
    stamp = ACQUIRED.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    started = ACQUIRED.strftime("%Y-%m-%d %H:%M:%S.0000000 +0000 UTC")
    entries, uploads = [], []
    for file in files:
        components = ["C:", *file.path.split("/")]
        name = "uploads/auto/" + "/".join(velociraptor_name(c) for c in components)
        entries.append((name, file.data, _zip_time(file.times.modified)))
        uploads.append({"Timestamp": stamp, "started": started, "vfs_path": "\\".join(components),
                        "_Components": ["uploads", "auto", *components], "file_size": len(file.data),
                        "uploaded_size": len(file.data), "Type": ""})
    upload_lines = "".join(json.dumps(u, separators=(",", ":")) + "\n" for u in uploads).encode()
    context = {"session_id": "F.CNQ0TRIAGE42", "request": {"artifacts": ["Windows.KapeFiles.Targets"]},
               "create_time": int(ACQUIRED.timestamp()) * 10**9, "total_uploaded_files": len(files), "state": 2,
               "artifacts_with_results": ["Windows.KapeFiles.Targets/Uploads"]}
    results = "".join(json.dumps({"Source": u["vfs_path"], "Size": u["file_size"]}, separators=(",", ":")) + "\n"
                      for u in uploads).encode()
    log = json.dumps({"_ts": int(ACQUIRED.timestamp()), "level": "DEFAULT",
                      "message": f"Collection of {HOSTNAME} complete"}) + "\n"
    epoch = _zip_time(ACQUIRED)
    meta = [
        ("collection_context.json", json.dumps(context, indent=1).encode(), epoch),
        ("log.json", log.encode(), ZIP_EPOCH),
        ("requests.json", b"{}\n", epoch),
        ("results/Windows.KapeFiles.Targets%2FUploads.json", results, epoch),
        ("uploads.json", upload_lines, epoch),
    ]
    write_zip(out, meta + entries, zipfile.ZIP_DEFLATED)


# ---------------------------------------------------------------------------------------------


def build_windows(out_dir: Path) -> dict[str, Path]:
    """Build every form into ``out_dir`` (created if needed) and return them by name."""
    check_tools()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    forms: dict[str, Path] = {}

    files = planted_files(work)
    tree = out_dir / "windows10-tree"
    shutil.rmtree(tree, ignore_errors=True)
    write_tree(tree, files)
    forms["tree"] = tree

    volume = out_dir / "windows10.ntfs"
    make_ntfs(volume, tree, files, "OSDisk", NTFS_SERIAL)
    forms["ntfs"] = volume

    gpt = out_dir / "windows10.raw"
    make_disk(volume, gpt, "gpt")
    forms["mbr"] = out_dir / "windows10-mbr.raw"
    make_disk(volume, forms["mbr"], "mbr")

    forms["e01"] = make_e01(gpt, out_dir, "windows10")
    forms["qcow2"] = convert(gpt, out_dir, "windows10", "qcow2", "qcow2")
    forms["vmdk"] = make_vmdk(gpt, out_dir, "windows10")
    forms["vhd"] = make_vhd(gpt, out_dir, "windows10")
    forms["vhdx"] = convert(gpt, out_dir, "windows10", "vhdx", "vhdx")
    forms["gpt"] = gpt

    collected = kape_files(files, volume)
    kape_dir = out_dir / "kape"
    shutil.rmtree(kape_dir, ignore_errors=True)
    write_tree(kape_dir, collected)
    forms["kape_dir"] = kape_dir
    forms["kape_zip"] = out_dir / "kape.zip"
    write_zip(forms["kape_zip"], [(f.path, f.data, _zip_time(f.times.modified)) for f in collected],
              zipfile.ZIP_DEFLATED)
    kape_volume = work / "kape.ntfs"
    make_ntfs(kape_volume, kape_dir, collected, "KAPE", KAPE_NTFS_SERIAL)
    make_disk(kape_volume, work / "kape.raw", "mbr")
    kape_vhdx = convert(work / "kape.raw", work, "kape", "vhdx", "vhdx")
    forms["kape_vhdx"] = kape_vhdx.rename(out_dir / kape_vhdx.name)

    forms["velociraptor_zip"] = out_dir / f"Collection-{HOSTNAME}-2024-03-14T09_12_44Z.zip"
    velociraptor_zip(forms["velociraptor_zip"], files)
    shutil.rmtree(work)
    return forms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m test_images.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--refresh-committed", action="store_true",
                        help=f"also copy the E01 over the committed {COMMITTED_E01.relative_to(PROJECT)}")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        forms = build_windows(args.out)
    except BuildError as error:
        print(f"test_images.build: error: {error}", file=sys.stderr)
        return 1
    for name, path in sorted(forms.items()):
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        print(f"{name:18} {size:>10,}  {path}")
    if args.refresh_committed:
        shutil.copyfile(forms["e01"], COMMITTED_E01)
        print(f"refreshed {COMMITTED_E01}")
    print(f"built in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
