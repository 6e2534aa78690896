"""Linux disk: full ``triage`` against dissect ``target-query -f cronjobs,services``, same E01, same run.

The E01 is the Linux test host (test_images.build_linux, web-prod-07), built into a temp directory.
Both tools run as subprocesses, N times each; the median counts. triage does everything (cron,
cron scripts, anacron, at, systemd timers with their services, journal/syslog task events, findings,
exports); dissect's two plugins are what an examiner would run instead.

``python3 bench/bench_linux.py [--smoke] [--repeat N] [--out PATH]``; results in bench/results/linux.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import RESULTS, machine, median, ratio, run_command, save  # noqa: E402
from test_images.build_linux import build_linux  # noqa: E402

DISSECT_FUNCTIONS = "cronjobs,services"


def triage_work(case: Path) -> dict:
    kinds = Counter(json.loads(line)["kind"] for line in (case / "tasks.jsonl").read_text(encoding="utf-8").splitlines())
    counts = json.loads((case / "manifest.json").read_text())["counts"]
    return {"jobs_by_kind": dict(sorted(kinds.items())), "cron_entries": kinds.get("cron", 0),
            "unix_jobs": counts["unix_jobs"], "task_events": counts["events"], "findings": counts["findings"]}


def dissect_work(output: Path, stderr: str) -> dict:
    kinds: Counter = Counter()
    for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
        record = json.loads(line)
        if record.get("_type") == "record":
            kinds[record["_recorddescriptor"][0]] += 1
    errors = sorted({line.split("Exception occurred while processing output of ", 1)[1][:160]
                     for line in stderr.splitlines() if "Exception occurred while processing output of" in line})
    return {"records_by_type": dict(sorted(kinds.items())), "cron_entries": kinds.get("unix/cronjob", 0),
            "plugin_errors": errors}


def _measure(repeat: int, once) -> dict:
    runs = [once() for _ in range(repeat)]
    return {"seconds": median([r[0].seconds for r in runs]), "runs": [round(r[0].seconds, 3) for r in runs],
            "peak_rss_mb": max(r[0].peak_rss_mb for r in runs), "returncode": runs[-1][0].returncode, "work": runs[-1][1]}


def run(scratch: Path, repeat: int) -> dict:
    image = build_linux(scratch / "image")["e01"]
    case, out = scratch / "case", scratch / "dissect.jsonl"

    def triage_once():
        shutil.rmtree(case, ignore_errors=True)
        done = run_command([sys.executable, "-m", "triage", str(image), "-o", str(case), "-q"], cwd=ROOT)
        if done.returncode not in (0, 1):
            raise SystemExit(f"triage failed on {image}:\n{done.stderr[-2000:]}")
        return done, triage_work(case)

    def dissect_once():
        done = run_command(["target-query", "-f", DISSECT_FUNCTIONS, "-j", str(image)], stdout=out)
        return done, dissect_work(out, done.stderr)

    tools = {"triage": _measure(repeat, triage_once), f"dissect {DISSECT_FUNCTIONS}": _measure(repeat, dissect_once)}
    t = tools["triage"]["seconds"]
    ratios = {f"triage/{name}": ratio(t, tool["seconds"]) for name, tool in tools.items() if name != "triage"}
    return {"machine": machine(), "repeat": repeat, "image": image.name, "bytes": image.stat().st_size,
            "versions": {"triage": metadata.version("triage"), "dissect.target": metadata.version("dissect.target")},
            "tools": tools, "ratios": ratios}


def table(result: dict) -> str:
    rows = []
    for name, tool in result["tools"].items():
        work = tool["work"]
        what = ", ".join(f"{k} {v}" for k, v in (work.get("jobs_by_kind") or work.get("records_by_type")).items())
        rows.append([name, tool["seconds"], tool["peak_rss_mb"], what, "; ".join(work.get("plugin_errors", []))[:90]])
    return "\n".join([tabulate(rows, headers=["tool", "median s", "peak MB", "work", "plugin errors"]),
                      "versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
                      "ratios: " + ", ".join(f"{k} = {v}" for k, v in result["ratios"].items())])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one repetition (seconds)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the median counts")
    parser.add_argument("--out", type=Path, default=RESULTS / "linux.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="triage-bench-linux-") as tmp:
        result = run(Path(tmp), 1 if args.smoke else args.repeat)
    result["mode"] = "smoke" if args.smoke else "full"
    save(result, args.out)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
