"""Scale images for the benchmarks, made from the test-image builder's own pieces (never committed).

* :func:`build_volume` - the Windows test machine's files (test_images.build) on a bare NTFS volume of
  any size, written as a sparse file (``truncate`` + ``mkntfs -Q``): a 100 GB volume costs tens of MB
  on disk, so triage's time on it shows whether it reads only what it needs or scans the volume.
* :func:`build_e01` - a file list as an E01 exactly as the builder acquires the test machine;
* :func:`generated_tasks` - ``count`` extra tasks (XML written by test_images.taskxml); passed to
  :func:`machine_files` they get TaskCache entries in SOFTWARE too (test_images.taskcache_scenarios,
  hive filled by hivex through test_images.hive_fill), exactly like the planted tasks.

``python3 -m bench.scale OUT --size-gb 10 --tasks 1000`` builds one volume by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from test_images import build  # noqa: E402
from test_images.taskxml import el, render  # noqa: E402
from test_images.windows_tree import (  # noqa: E402
    INSTALLED, FileTimes, PlantedFile, PlantedTask, exec_action, local_text, principal, registration_info,
    schtasks_settings, task_element,
)

GIB = 1024 ** 3
TASKS_PER_FOLDER = 100
GENERATED_ROOT = r"\Bench"


def generated_tasks(count: int) -> list[PlantedTask]:
    """``count`` ordinary daily tasks, 100 per folder (``\\Bench\\F000\\Task00000``), each its own command."""
    tasks = []
    for number in range(count):
        name = rf"{GENERATED_ROOT}\F{number // TASKS_PER_FOLDER:03d}\Task{number:05d}"
        created = INSTALLED + timedelta(days=1, seconds=7 * number)
        start = created + timedelta(hours=1)
        task = task_element(
            registration_info(name, local_text(created), "FINCORP\\it-admin", f"Generated task {number}"),
            (el("CalendarTrigger", el("StartBoundary", local_text(start)), el("Enabled", "true"),
                el("ScheduleByDay", el("DaysInterval", "1"))),),
            schtasks_settings(),
            (exec_action(rf"C:\Program Files\Vendor{number % 37}\agent.exe", f"/job {number} /quiet"),),
            principal("S-1-5-18", run_level="HighestAvailable", logon_type=None),
        )
        tasks.append(PlantedTask(name=name, data=render(task), times=FileTimes.at(created), origin="scenario",
                                 purpose="benchmark filler", task=task))
    return tasks


def machine_files(work: Path, extra_tasks: list[PlantedTask] = ()) -> list[PlantedFile]:
    """The test machine's files (as :func:`test_images.build.planted_files`) with ``extra_tasks`` added
    to the task folder and to TaskCache.

    hivex never reuses a freed cell: every key added under a parent rewrites the parent's subkey list
    at the end of the hive, so a key with n subkeys costs O(n^2) bytes: 1,000 tasks give a 9 MB SOFTWARE
    hive, 10,000 an 868 MB one (mostly free cells; a real one would be tens of MB)."""
    return build.planted_files(work, extra_tasks)


def build_volume(volume: Path, files: list[PlantedFile], size_bytes: int, work: Path) -> Path:
    """A sparse NTFS volume of ``size_bytes`` holding ``files`` (times as the builder writes them)."""
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    build.write_tree(tree, files)
    volume.unlink(missing_ok=True)
    with volume.open("wb") as handle:
        handle.truncate(size_bytes)
    build.run(["mkntfs", "-F", "-q", "-Q", "-T", "-s", str(build.SECTOR), "-c", "4096", "-p",
               str(build.PARTITION_START), "-H", "255", "-S", "63", "-L", "OSDisk", str(volume)], frozen=True)
    build.run(["ntfslabel", f"--new-serial={build.NTFS_SERIAL}", str(volume)], frozen=True)
    entries = [(path, True, times) for path, times in build.directory_times(files).items()]
    entries += [(file.path, False, file.times) for file in files]
    plan = [{"path": path, "is_dir": is_dir, "fn_created": build._clock(times.fn_created),
             "created": build._clock(times.created), "modified": build._clock(times.modified),
             "accessed": build._clock(times.accessed)}
            for path, is_dir, times in sorted(entries, key=lambda e: e[0].lower().split("/"))]
    plan_path = work / "plan.json"
    plan_path.write_text(json.dumps(plan))
    build.run([sys.executable, "-m", "test_images.ntfsput", str(volume), str(tree), str(plan_path)], cwd=build.PROJECT,
              frozen=True, env={"FAKETIME_NO_CACHE": "1"})
    plan_path.unlink()
    shutil.rmtree(tree)
    return volume


def build_e01(directory: Path, name: str, files: list[PlantedFile], work: Path) -> Path:
    """``files`` as the builder's E01: the 8 MiB volume as the one GPT partition of a raw disk, acquired by ewfacquire."""
    volume = build_volume(work / f"{name}.ntfs", files, build.VOLUME_SIZE, work)
    disk = directory / f"{name}.raw"
    build.make_disk(volume, disk, "gpt")
    e01 = build.make_e01(disk, directory, name)
    disk.unlink()
    volume.unlink()
    return e01


def allocated_bytes(path: Path) -> int:
    """Bytes the file really occupies on disk (a sparse file: far less than its size)."""
    return path.stat().st_blocks * 512


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--size-gb", type=float, default=1.0, help="volume size (sparse)")
    parser.add_argument("--tasks", type=int, default=0, help="generated tasks added to the machine's own")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = args.out / "work"
    work.mkdir(exist_ok=True)
    files = machine_files(work, generated_tasks(args.tasks))
    volume = build_volume(args.out / f"scale-{args.size_gb:g}g-{args.tasks}t.ntfs", files, int(args.size_gb * GIB), work)
    shutil.rmtree(work)
    print(f"{volume}: {volume.stat().st_size:,} bytes, {allocated_bytes(volume):,} allocated, "
          f"built in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
