"""Every benchmark in one command, one summary table: ``python3 bench/run_all.py [--smoke]``.

Runs bench_windows, bench_linux, bench_memory, bench_evtx and bench_scale, each as its own
subprocess (a failing one is reported, the rest still run), then prints the ratios against their
targets and writes bench/results/summary.json. ``--smoke`` runs each benchmark's seconds-long mode
and writes into a temporary folder (or ``--results DIR``), never over the full results.
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import RESULTS, machine  # noqa: E402

BENCHMARKS = ("windows", "linux", "memory", "evtx", "scale")


def _run(name: str, results: Path, smoke: bool) -> dict:
    out = results / f"{name}.json"
    command = [sys.executable, str(ROOT / "bench" / f"bench_{name}.py"), "--out", str(out)] + (["--smoke"] if smoke else [])
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    print(done.stdout, end="")
    if done.returncode or not out.exists():
        print(f"bench_{name}.py failed (exit {done.returncode}):\n{done.stderr[-3000:]}", file=sys.stderr)
        return {"failed": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}",
                "wall_seconds": seconds}
    return {"result": json.loads(out.read_text()), "wall_seconds": seconds}


def _row(bench: str, what: str, triage: float | None, peer: float | None, value, target: str, met, version: str) -> dict:
    return {"benchmark": bench, "comparison": what, "triage_s": triage, "peer_s": peer, "ratio": value,
            "target": target, "met": met, "peer_version": version}


def summary_rows(runs: dict) -> list[dict]:
    rows = []
    for name, run in runs.items():
        if "failed" in run:
            rows.append(_row(name, "FAILED: " + run["failed"][:80], None, None, None, "", False, ""))
    if "result" in runs.get("windows", {}):
        res = runs["windows"]["result"]
        tools = res["images"]["dissect-safe variant"]["tools"]
        t = tools["triage"]["seconds"]
        limits = {"dissect tasks": ("<= 1.0", 1.0), "plaso": ("<= 0.05 (20x faster)", 0.05),
                  "floor (dissect copy)": ("<= 2.0", 2.0)}
        for peer, tool in tools.items():
            if peer == "triage":
                continue
            value = res["ratios"][f"triage/{peer}"]
            target, limit = limits.get(peer, ("", None))
            version = ("plaso " + res["versions"].get("plaso", "?") if peer == "plaso" else
                       "triage" if peer.startswith("triage") else "dissect.target " + res["versions"]["dissect.target"])
            rows.append(_row("windows", f"triage / {peer}", t, tool["seconds"], value, target,
                             None if limit is None else value <= limit, version))
        committed = res["images"].get("committed")
        if committed:
            d = committed["tools"]["dissect tasks"]
            rows.append(_row("windows", "committed E01: dissect tasks " + ("crashed: " + d["error"][:60] if d.get("error") else "ok"),
                             committed["tools"]["triage"]["seconds"], d["seconds"], None, "", None,
                             "dissect.target " + res["versions"]["dissect.target"]))
    if "result" in runs.get("linux", {}):
        res = runs["linux"]["result"]
        for peer, value in res["ratios"].items():
            name = peer.split("/", 1)[1]
            rows.append(_row("linux", f"triage / {name}", res["tools"]["triage"]["seconds"], res["tools"][name]["seconds"],
                             value, "", None, "dissect.target " + res["versions"]["dissect.target"]))
    if "result" in runs.get("memory", {}):
        res = runs["memory"]["result"]
        value = round(res["triage_seconds"] / res["vol_total_seconds"], 3)
        rows.append(_row("memory", "triage pass / vol pslist+psscan+cmdline+scheduled_tasks", res["triage_seconds"],
                         res["vol_total_seconds"], value, "<= 1.0", value <= 1.0, "volatility3 " + res["volatility3"]))
    if "result" in runs.get("evtx", {}):
        res = runs["evtx"]["result"]["results"]
        for row in res:
            if row["reader"].startswith("triage"):
                continue
            mine = next(r for r in res if r["set"] == row["set"] and r["reader"].startswith("triage"))
            rows.append(_row("evtx", f"{row['set']}: triage / {row['reader']} (seconds)", mine["seconds"], row["seconds"],
                             round(mine["seconds"] / row["seconds"], 3), "", None, row["reader"]))
        if folder := runs["evtx"]["result"].get("folder"):
            seconds = folder["seconds"]
            for check in folder["ratios"]:
                limit = float(check["target"].split()[-1])
                met = check["value"] <= limit if check["target"].startswith("<=") else check["value"] >= limit
                triage = seconds["workers 2" if "--workers 2 /" in check["ratio"] else "workers 1"]
                peer = seconds["bare"] if "bare" in check["ratio"] else seconds["workers 2"]
                rows.append(_row("evtx", f"{folder['files']} logs: {check['ratio']}", triage, peer, check["value"],
                                 check["target"], met, "evtx (PyPI)"))
    if "result" in runs.get("scale", {}):
        for check in runs["scale"]["result"]["checks"]:
            rows.append(_row("scale", check["check"], None, None, check["value"], "", check.get("met"), ""))
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every benchmark's seconds-long mode")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--results", type=Path, help="folder for the JSON files (default bench/results; a temp folder with --smoke)")
    parser.add_argument("--summary-only", action="store_true", help="run nothing: summarise the JSON files already in the folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        results = args.results or (Path(tmp) if args.smoke else RESULTS)
        results.mkdir(parents=True, exist_ok=True)
        if args.summary_only:
            runs = {name: {"result": json.loads((results / f"{name}.json").read_text()), "wall_seconds": None}
                    for name in args.only.split(",")}
        else:
            runs = {name: _run(name, results, args.smoke) for name in args.only.split(",")}
        summary = {"machine": machine(), "mode": "smoke" if args.smoke else "full",
                   "wall_seconds": {name: run["wall_seconds"] for name, run in runs.items()}, "rows": summary_rows(runs)}
        (results / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    m = summary["machine"]
    print(f"\n{m['date']}, {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, load {m['load_average_1m']}")
    print(tabulate([list(r.values()) for r in summary["rows"]], headers=list(summary["rows"][0]) if summary["rows"] else []))
    return summary


if __name__ == "__main__":
    summary = main()
    sys.exit(1 if any(str(r["comparison"]).startswith("FAILED") for r in summary["rows"]) else 0)
