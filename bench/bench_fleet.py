"""Items per second for a fleet hunt: triage's Dask local cluster vs one process, serially.

Builds a generated fleet (test_images.fleet: small Windows 10 directory trees, planted rare tasks)
and triages every host both ways, each item doing the full work (run + case folder):

* serial - one Python process calls :func:`triage.hunt.triage_item` for each host in turn;
* local cluster - ``triage hunt`` with its default local Dask cluster (one worker process per core),
  cluster start-up and the fleet outputs included.

Both runs must produce the same stacks (checked). Usage:
``python3 bench/bench_fleet.py [--hosts 200] [--workers N] [--smoke] [--out PATH]``. ``--smoke`` uses
the smallest fleet the generator allows and writes nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from test_images.fleet import MIN_HOSTS, build_fleet  # noqa: E402
from triage.hunt import case_folder_name, hunt_main, triage_item  # noqa: E402
from triage.stacking import build_stacks  # noqa: E402

HUNT_DATE = "20240314"


def serial(paths: list[str], out: Path) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    summaries = [triage_item(p, str(out / case_folder_name(p)), HUNT_DATE, {"symbols": None, "sigma": []})
                 for p in paths]
    return time.perf_counter() - start, summaries


def cluster(paths: list[str], out: Path, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        code = hunt_main([*paths, "-o", str(out), "--workers", str(workers), "--hunt-date", HUNT_DATE, "-q"])
    return time.perf_counter() - start, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200, help="fleet size (default 200)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local cluster workers (default: cores)")
    parser.add_argument("--smoke", action="store_true", help=f"{MIN_HOSTS} hosts, seconds")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/fleet.json, none in --smoke)")
    args = parser.parse_args(argv)
    hosts = MIN_HOSTS if args.smoke else args.hosts
    load_before = os.getloadavg()[0]  # other work on the machine skews both timings: recorded with them
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        fleet = build_fleet(tmp_path / "fleet", hosts)
        build_seconds = time.perf_counter() - started
        paths = [str(h.path) for h in fleet]
        serial_seconds, summaries = serial(paths, tmp_path / "serial")
        cluster_seconds, code = cluster(paths, tmp_path / "hunt", args.workers)
        serial_stacks = build_stacks([dict(s, host=s["host"]) for s in summaries])
        cluster_stacks = [json.loads(line) for line in (tmp_path / "hunt" / "stacks.jsonl").read_text().splitlines()]
        same = [{k: s[k] for k in cluster_stacks[0]} for s in serial_stacks] == cluster_stacks
    rows = [
        {"engine": "one process, serial", "items": hosts, "seconds": round(serial_seconds, 2),
         "items_per_second": round(hosts / serial_seconds, 2)},
        {"engine": f"Dask local cluster, {args.workers} workers", "items": hosts, "seconds": round(cluster_seconds, 2),
         "items_per_second": round(hosts / cluster_seconds, 2)},
    ]
    result = {
        "benchmark": "fleet hunt: items per second", "hosts": hosts, "fleet_build_seconds": round(build_seconds, 2),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "rows": rows,
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "speedup": round(serial_seconds / cluster_seconds, 2), "same_stacks": same, "hunt_exit_code": code,
        "note": "each item is a small Windows 10 directory tree; serial time includes one-off imports, "
                "cluster time includes starting the cluster and writing the fleet outputs",
    }
    print(tabulate(rows, headers="keys", tablefmt="simple"))
    print(f"speed-up (serial / cluster): {result['speedup']}x on {os.cpu_count()} cores; same stacks: {same}; "
          f"load average before/after: {result['load_average_1min_before_after']}")
    out = args.out or (None if args.smoke else ROOT / "bench" / "results" / "fleet.json")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
