"""How triage's cost grows: image size, task count, event volume, memory-image process count.

Images are built into a temp directory from the test-image builder's pieces (bench/scale.py,
test_images.memimage); nothing is committed. triage runs as a subprocess; peak RSS is the child's.

* size   - the test machine's files on sparse NTFS volumes of 1, 10, 100 GB, the raw volume given to
           triage: the time must stay flat. triage hashes every evidence file for its manifest, so the
           SHA-256 of the volume is timed on its own too (``hash_seconds``, on a fresh copy: cold cache);
* tasks  - 100, 1,000, 10,000 generated tasks (XML + TaskCache) on a 512 MB volume (larger when the
           hivex-built SOFTWARE hive needs it, see bench/scale.py), with dissect's ``target-query -f tasks
           --group`` on the same volume as the peer; time and peak RSS should grow linearly, 10,000
           tasks under 30 s;
* events - folders of 10 MB, 100 MB, 1 GB of real EVTX (the largest corpus logs, repeated as separate
           files; no EVTX writer exists on Debian): events per second, peak RSS < 500 MB;
* memory - triage's memory pass on synthetic images with 100, 1,000, 5,000 extra processes.

``python3 bench/bench_scale.py [--smoke] [--series size,tasks,events,memory] [--sizes-gb 1,10,100]
[--tasks 100,1000,10000] [--evtx-mb 10,100,1000] [--processes 100,1000,5000] [--before CHECKOUT]``;
bench/results/scale.json. ``--before /work/main`` runs that checkout too on each events folder (same command,
one after the other), so a change's before/after peak memory is measured side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import scale  # noqa: E402
from bench.bench_evtx import LARGEST, SMOKE, run_triage as count_evtx_records  # noqa: E402
from bench.bench_memory import TRIAGE_PASS  # noqa: E402
from bench.bench_windows import DISSECT_CRASHES, dissect_work, triage_work  # noqa: E402
from bench.timing import RESULTS, machine, ratio, run_command, save  # noqa: E402

MIB = 1024 ** 2
TASK_VOLUME = 512 * MIB
FULL = {"size": [1, 10, 100], "tasks": [100, 1000, 10000], "events": [10, 100, 1000], "memory": [100, 1000, 5000]}
SMOKE_SIZES = {"size": [0.0625], "tasks": [20], "events": [0], "memory": [10]}
TASK_LIMIT_SECONDS = 30.0
EVENTS_RSS_LIMIT_MB = 500.0


def _triage(evidence: Path, case: Path, checkout: Path = ROOT) -> tuple[float, float, dict]:
    """triage of ``checkout`` (this one by default) on ``evidence``: seconds, peak RSS MB, manifest counts."""
    shutil.rmtree(case, ignore_errors=True)
    done = run_command([sys.executable, "-m", "triage", str(evidence), "-o", str(case), "-q"], cwd=checkout,
                       env={**os.environ, "PYTHONPATH": str(checkout)})
    if done.returncode not in (0, 1):
        raise SystemExit(f"triage failed on {evidence}:\n{done.stderr[-2000:]}")
    counts = json.loads((case / "manifest.json").read_text())["counts"]
    return round(done.seconds, 3), done.peak_rss_mb, counts


def _hash_seconds(path: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return round(time.perf_counter() - started, 3)


def size_series(work: Path, sizes_gb: list[float]) -> list[dict]:
    rows = []
    files = scale.machine_files(work / "hives")
    for size in sizes_gb:
        # Hashing reads every hole of the sparse file and leaves it in the page cache: hash one copy,
        # delete it, and give triage a fresh one, so both start cold.
        volume = scale.build_volume(work / f"size-{size:g}g.ntfs", files, int(size * 1024 ** 3), work)
        hashing = _hash_seconds(volume)
        volume.unlink()
        volume = scale.build_volume(work / f"size-{size:g}g.ntfs", files, int(size * 1024 ** 3), work)
        seconds, rss, counts = _triage(volume, work / "case")
        rows.append({"volume_gb": size, "allocated_mb": round(scale.allocated_bytes(volume) / MIB, 1),
                     "triage_seconds": seconds, "peak_rss_mb": rss, "hash_seconds": hashing,
                     "triage_minus_hash_seconds": round(seconds - hashing, 3), "tasks": counts["tasks"],
                     "definitions": counts["definitions"], "events": counts["events"]})
        volume.unlink()
    return rows


def tasks_series(work: Path, counts: list[int]) -> list[dict]:
    rows = []
    for count in counts:
        built = time.perf_counter()
        files = [f for f in scale.machine_files(work / "hives", scale.generated_tasks(count)) if f.path not in DISSECT_CRASHES]
        hive = next(f for f in files if f.path.endswith("config/SOFTWARE"))
        volume = scale.build_volume(work / f"tasks-{count}.ntfs", files, max(TASK_VOLUME, 2 * len(hive.data)), work)
        build_seconds = round(time.perf_counter() - built, 1)
        seconds, rss, found = _triage(volume, work / "case")
        triage_files = triage_work(work / "case")["task_files"]
        out = work / "dissect.jsonl"
        dissect = run_command(["target-query", "-f", "tasks", "--group", "-j", str(volume)], stdout=out)
        peer = dissect_work(out)
        rows.append({"generated_tasks": count, "software_hive_mb": round(len(hive.data) / MIB, 1),
                     "build_seconds": build_seconds, "triage_seconds": seconds,
                     "peak_rss_mb": rss, "triage_task_files": len(triage_files), "triage_tasks": found["tasks"],
                     "dissect_seconds": round(dissect.seconds, 3), "dissect_peak_rss_mb": dissect.peak_rss_mb,
                     "dissect_task_files": len(peer["task_files"]), "dissect_returncode": dissect.returncode,
                     "triage_over_dissect": ratio(seconds, dissect.seconds)})
        volume.unlink()
    return rows


def events_series(work: Path, sizes_mb: list[int], before: Path | None = None) -> list[dict]:
    """size 0 = the two small smoke logs once. ``before``: another checkout (e.g. main) run by the same
    command on the same folder, right before this one, for a before/after pair measured in one run."""
    rows = []
    for size in sizes_mb:
        base = SMOKE if size == 0 else LARGEST
        per_copy = sum(p.stat().st_size for p in base)
        copies = 1 if size == 0 else max(1, math.ceil(size * MIB / per_copy))
        folder = work / f"evtx-{size}"
        folder.mkdir()
        for n in range(copies):
            for path in base:
                shutil.copyfile(path, folder / f"{n:04d}-{path.name}")
        records = count_evtx_records(base) * copies
        earlier = _triage(folder, work / "case", before) if before else None
        seconds, rss, counts = _triage(folder, work / "case")
        rows.append({"target_mb": size, "files": copies * len(base), "mb": round(copies * per_copy / MIB, 1),
                     "records": records, "task_events": counts["events"], "triage_seconds": seconds,
                     "events_per_second": round(records / seconds), "peak_rss_mb": rss,
                     **({"before_seconds": earlier[0], "before_peak_rss_mb": earlier[1]} if earlier else {})})
        shutil.rmtree(folder)
    return rows


def memory_series(work: Path, processes: list[int]) -> list[dict]:
    from test_images.memimage import build_memory_image

    rows = []
    for count in processes:
        size_mb = 16 + count // 8  # room for the extra processes' pages
        built = build_memory_image(work / f"mem-{count}", "win10", n_extra_processes=count, size_mb=size_mb)
        done = run_command([sys.executable, "-c", TRIAGE_PASS, str(built["image"]), str(built["symbols"])], cwd=ROOT)
        if done.returncode:
            raise SystemExit(f"memory pass failed:\n{done.stderr[-2000:]}")
        found = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"extra_processes": count, "image_mb": size_mb,
                     "processes_in_image": len(json.loads(built["layout"].read_text())["processes"]),
                     "triage_seconds": round(done.seconds, 3), "peak_rss_mb": done.peak_rss_mb, **found})
        shutil.rmtree(work / f"mem-{count}")
    return rows


def growth(rows: list[dict], x: str, y: str) -> list[float | None]:
    """Cost per unit between consecutive points (flat numbers = linear growth)."""
    return [ratio(b[y] - a[y], b[x] - a[x]) for a, b in zip(rows, rows[1:])]


def checks(result: dict) -> list[dict]:
    out = []
    if rows := result.get("size"):
        out.append({"check": "size: slowest / fastest triage run (flat = 1)",
                    "value": ratio(max(r["triage_seconds"] for r in rows), min(r["triage_seconds"] for r in rows))})
        out.append({"check": "size: slowest / fastest triage run without the evidence hash",
                    "value": ratio(max(r["triage_minus_hash_seconds"] for r in rows),
                                   min(r["triage_minus_hash_seconds"] for r in rows))})
    if rows := result.get("tasks"):
        last = rows[-1]
        out.append({"check": f"tasks: {last['generated_tasks']} tasks in seconds (target < {TASK_LIMIT_SECONDS:g} at 10,000)",
                    "value": last["triage_seconds"],
                    "met": last["triage_seconds"] < TASK_LIMIT_SECONDS if last["generated_tasks"] >= 10000 else None})
        out.append({"check": "tasks: seconds per extra task between points", "value": growth(rows, "generated_tasks", "triage_seconds")})
        out.append({"check": "tasks: peak MB per extra task between points", "value": growth(rows, "generated_tasks", "peak_rss_mb")})
    if rows := result.get("events"):
        peak = max(r["peak_rss_mb"] for r in rows)
        out.append({"check": f"events: peak RSS MB (target < {EVENTS_RSS_LIMIT_MB:g})", "value": peak,
                    "met": peak < EVENTS_RSS_LIMIT_MB})
        out.append({"check": "events: events/s per point", "value": [r["events_per_second"] for r in rows]})
    if rows := result.get("memory"):
        out.append({"check": "memory: seconds per extra process between points",
                    "value": growth(rows, "extra_processes", "triage_seconds")})
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes of every series (seconds)")
    parser.add_argument("--series", default="size,tasks,events,memory")
    parser.add_argument("--sizes-gb", help="volume sizes, e.g. 1,10,100")
    parser.add_argument("--tasks", help="generated task counts (XML + TaskCache), e.g. 100,1000,10000")
    parser.add_argument("--evtx-mb", help="EVTX folder sizes in MB, e.g. 10,100,1000")
    parser.add_argument("--processes", help="extra processes in the memory images, e.g. 100,1000,5000")
    parser.add_argument("--before", type=Path, help="events series: also run this checkout (e.g. main) on each folder")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args(argv)
    points = dict(SMOKE_SIZES if args.smoke else FULL)
    for name, given, kind in (("size", args.sizes_gb, float), ("tasks", args.tasks, int), ("events", args.evtx_mb, int),
                              ("memory", args.processes, int)):
        if given:
            points[name] = [kind(v) for v in given.split(",")]
    series = {"size": size_series, "tasks": tasks_series,
              "events": lambda work, sizes: events_series(work, sizes, args.before), "memory": memory_series}
    result = {"machine": machine(), "mode": "smoke" if args.smoke else "full", "points": {}}
    with tempfile.TemporaryDirectory(prefix="triage-bench-scale-") as tmp:
        for name in args.series.split(","):
            work = Path(tmp) / name
            work.mkdir()
            result["points"][name] = points[name]
            result[name] = series[name](work, points[name])
    result["checks"] = checks(result)
    save(result, args.out)
    for name in series:
        if result.get(name):
            print(f"{name}:")
            print(tabulate([list(r.values()) for r in result[name]], headers=list(result[name][0])))
            print()
    print(tabulate([[c["check"], c["value"], c.get("met", "")] for c in result["checks"]], headers=["check", "value", "met"]))
    return result


if __name__ == "__main__":
    main()
