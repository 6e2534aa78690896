"""Benchmark: triage's one memory pass against running volatility3's plugins one by one.

An analyst without triage runs ``vol windows.pslist``, ``windows.psscan``, ``windows.cmdline`` and
``windows.registry.scheduled_tasks`` separately; each run repeats the layer stacking, the kernel/PDB
search and symbol loading, and psscan rescans the kernel address space. triage does the automagic once
and runs both of its plugins on that context. Both sides run as fresh subprocesses on the same
synthetic image (test_images/memimage.py), offline, with private volatility caches.

    python bench/bench_memory.py            # hundreds of processes, a 256 MiB image
    python bench/bench_memory.py --smoke    # seconds; what the test suite runs

Writes bench/results/memory.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from test_images.memimage import VOLATILITY_VERSION, build_memory_image  # noqa: E402

VOL_PLUGINS = ["windows.pslist", "windows.psscan", "windows.cmdline", "windows.registry.scheduled_tasks"]
TRIAGE_PASS = (
    "import sys, json; from pathlib import Path; from triage.collect.memory import analyse; "
    "r = analyse(Path(sys.argv[1]), [sys.argv[2]]); "
    "print(json.dumps({'processes': len(r.processes), 'tasks': len(r.definitions), 'problems': r.problems}))"
)


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), timeout=3600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def run(work: Path, processes: int, size_mb: int, repeat: int) -> dict:
    built_at = time.perf_counter()
    built = build_memory_image(work / "image", "win10", n_extra_processes=processes, size_mb=size_mb)
    build_seconds = time.perf_counter() - built_at
    image, symbols = str(built["image"]), str(built["symbols"])
    vol_rows = {}
    vol_best: dict[str, float] = {}
    triage_best = None
    triage_result = None
    for attempt in range(repeat):
        cache = work / f"volcache{attempt}"
        cache.mkdir()
        for plugin in VOL_PLUGINS:
            seconds, out = _timed(["vol", "-q", "--offline", "--cache-path", str(cache), "-r", "json", "-f", image,
                                   "-s", symbols, plugin])
            vol_best[plugin] = min(vol_best.get(plugin, seconds), seconds)
            vol_rows[plugin] = len(json.loads(out))
        seconds, out = _timed([sys.executable, "-c", TRIAGE_PASS, image, symbols])
        triage_best = seconds if triage_best is None else min(triage_best, seconds)
        triage_result = json.loads(out.strip().splitlines()[-1])
    vol_total = sum(vol_best.values())
    return {
        "volatility3": VOLATILITY_VERSION,
        "image_bytes": built["image"].stat().st_size,
        "processes_in_image": len(json.loads(built["layout"].read_text())["processes"]),
        "build_seconds": round(build_seconds, 3),
        "repeat": repeat,
        "vol_seconds": {k: round(v, 3) for k, v in vol_best.items()},
        "vol_rows": vol_rows,
        "vol_total_seconds": round(vol_total, 3),
        "triage_seconds": round(triage_best, 3),
        "triage_result": triage_result,
        "ratio_vol_over_triage": round(vol_total / triage_best, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny image, one repetition (seconds)")
    parser.add_argument("--processes", type=int, default=400, help="extra processes in the image")
    parser.add_argument("--size-mb", type=int, default=256, help="image size in MiB")
    parser.add_argument("--repeat", type=int, default=2, help="repetitions; the best time of each side counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.processes, args.size_mb, args.repeat = 20, 8, 1
    with tempfile.TemporaryDirectory(prefix="triage-bench-memory-") as tmp:
        result = run(Path(tmp), args.processes, args.size_mb, args.repeat)
    result["mode"] = "smoke" if args.smoke else "full"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    table = [[f"vol {p}", result["vol_seconds"][p], result["vol_rows"][p]] for p in VOL_PLUGINS]
    table.append(["vol total (4 runs)", result["vol_total_seconds"], ""])
    table.append(["triage memory pass", result["triage_seconds"],
                  f"{result['triage_result']['processes']} task processes, {result['triage_result']['tasks']} tasks"])
    print(f"image: {result['image_bytes'] // 2**20} MiB, {result['processes_in_image']} processes, volatility3 {VOLATILITY_VERSION}")
    print(tabulate(table, headers=["run", "seconds", "rows"]))
    print(f"ratio (vol total / triage): {result['ratio_vol_over_triage']}x")
    return result


if __name__ == "__main__":
    main()
