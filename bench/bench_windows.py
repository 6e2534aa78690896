"""Windows disk: full ``triage`` against dissect ``target-query``, plaso and the copy floor, same image, same run.

Each tool runs as its own subprocess (each pays its own start-up), N times; the median counts.

* ``triage IMAGE -o CASE`` - everything: task XML, .job, GPP, TaskCache (with log replay), every EVTX,
  correlation, Sigma, findings and every export;
* ``target-query -f tasks --group`` and ``-f tasks,evtx --group`` (dissect.target). Without ``--group``
  the tasks plugin dies on any ``.job`` with a trigger (``padding``), so ``--group`` is used;
* ``log2timeline --parsers winjob,winreg/windows_task_cache,winevtx`` + ``psort -o json_line`` (plaso, in
  its own virtual environment ``bench/.venv-plaso``; the parser is ``winreg/windows_task_cache``:
  a bare ``windows_task_cache`` is refused as an unknown parser);
* the floor: dissect opens the image and copies out exactly the files triage reads (task folders,
  SOFTWARE with .LOG1/.LOG2, SYSTEM, the EVTX folder, SchedLgU.txt, GPP task files).

dissect's tasks plugin stops with a traceback on three files of the test machine (see DISSECT_CRASHES),
so it does almost no work on the committed image. The ratios are therefore taken on a variant built
from the same planted files minus those three: there every tool completes and reads the same task files.
The committed image is measured too, to show what an examiner running dissect on it gets.

``python3 bench/bench_windows.py [--smoke] [--repeat N] [--out PATH]``; results in bench/results/windows.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import scale  # noqa: E402
from bench.timing import RESULTS, machine, median, ratio, run_command, save  # noqa: E402
from test_images.build import COMMITTED_E01  # noqa: E402
from test_images.windows_tree import EMAIL_TASK, GPP_PATH, MESSAGE_TASK, TASKS_DIR  # noqa: E402

PLASO_VENV = ROOT / "bench" / ".venv-plaso"
PLASO_PARSERS = "winjob,winreg/windows_task_cache,winevtx"
# file on the test machine -> what dissect.target 3.25's tasks plugin dies of
DISSECT_CRASHES = {
    GPP_PATH: "ValueError: Invalid isoformat string: '%LocalTimeXmlEx%' (GPP ImmediateTaskV2 trigger)",
    f"{TASKS_DIR}/{MESSAGE_TASK.lstrip(chr(92))}": "TypeError: ...show_message.__init__() got an unexpected keyword argument 'action_type'",
    f"{TASKS_DIR}/{EMAIL_TASK.lstrip(chr(92))}": "ValueError: invalid literal for int() with base 10: 'Last' (monthly-day-of-week trigger)",
}
TASK_FOLDERS = ("windows/system32/tasks/", "windows/tasks/")

# Copies out, with dissect, exactly the files triage reads; prints {"files": n, "bytes": n}.
FLOOR_SCRIPT = r"""
import json, sys
from pathlib import Path
from dissect.target import Target

target = Target.open(sys.argv[1])
out = Path(sys.argv[2])

def find(base, *names):
    for name in names:
        children = {c.name.lower(): c for c in base.iterdir()} if base.is_dir() else {}
        base = children.get(name.lower())
        if base is None:
            return None
    return base

def walk(folder):
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if child.is_dir():
            yield from walk(child)
        else:
            yield child

windows = find(target.fs.path("sysvol"), "Windows")
picked = []
for parts in (("System32", "Tasks"), ("Tasks",), ("System32", "winevt", "Logs")):
    folder = find(windows, *parts)
    if folder is not None:
        picked += [p for p in walk(folder) if parts[-1] != "Logs" or p.name.lower().endswith(".evtx")]
for name in ("SOFTWARE", "SOFTWARE.LOG1", "SOFTWARE.LOG2", "SYSTEM"):
    hive = find(windows, "System32", "config", name)
    if hive is not None:
        picked.append(hive)
policies = find(windows, "System32", "GroupPolicy", "DataStore")
if policies is not None:
    picked += [p for p in walk(policies) if p.parent.name.lower() == "scheduledtasks"]
copied = 0
for number, path in enumerate(picked):
    data = path.read_bytes()
    (out / f"{number:05d}-{path.name}").write_bytes(data)
    copied += len(data)
print(json.dumps({"files": len(picked), "bytes": copied}))
"""


def versions() -> dict[str, str]:
    found = {"triage": metadata.version("triage"), "dissect.target": metadata.version("dissect.target")}
    l2t = PLASO_VENV / "bin" / "log2timeline"
    if l2t.exists():
        done = subprocess.run([str(l2t), "--version"], capture_output=True, text=True)
        found["plaso"] = (done.stdout + done.stderr).strip().rsplit(" ", 1)[-1]
    return found


def _task_file_key(path: str) -> str | None:
    """``tasks/...`` for a task file path as either tool writes it (C:\\WINDOWS\\system32\\tasks\\X, sysvol/Windows/...)."""
    text = path.replace("\\", "/").lower()
    for folder in TASK_FOLDERS:
        if folder in text:
            return folder + text.split(folder, 1)[1]
    return None


def triage_work(case: Path) -> dict:
    files, taskcache = set(), 0
    for line in (case / "tasks.jsonl").read_text(encoding="utf-8").splitlines():
        for definition in json.loads(line)["definitions"]:
            if definition["source"] in ("task_xml", "job") and (key := _task_file_key(definition["provenance"]["location"])):
                files.add(key)
            taskcache += definition["source"] == "taskcache"
    counts = json.loads((case / "manifest.json").read_text())["counts"]
    return {"task_files": sorted(files), "taskcache_entries": taskcache, "task_events": counts["events"],
            "findings": counts["findings"], "gaps": counts["gaps"]}


def dissect_work(output: Path) -> dict:
    files, functions = set(), {}
    for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
        record = json.loads(line)
        if record.get("_type") != "record":
            continue
        kind = record.get("_recorddescriptor", ["?"])[0] if isinstance(record.get("_recorddescriptor"), list) else "?"
        functions[kind] = functions.get(kind, 0) + 1
        if record.get("task_path") and (key := _task_file_key(record["task_path"])):
            files.add(key)
    return {"task_files": sorted(files), "records": sum(functions.values())}


def plaso_work(output: Path) -> dict:
    by_parser: dict[str, int] = {}
    for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
        parser = json.loads(line).get("parser", "?")
        by_parser[parser] = by_parser.get(parser, 0) + 1
    return {"events_by_parser": dict(sorted(by_parser.items())), "events": sum(by_parser.values())}


class Bench:
    """Runs the tools on one image, ``repeat`` times each, into a scratch directory."""

    def __init__(self, image: Path, scratch: Path, repeat: int):
        self.image, self.scratch, self.repeat = image, scratch, repeat

    def _fresh(self, name: str) -> Path:
        path = self.scratch / name
        shutil.rmtree(path, ignore_errors=True)
        path.unlink(missing_ok=True)
        return path

    def _repeat(self, once) -> dict:
        runs = [once() for _ in range(self.repeat)]
        last = runs[-1]
        return {"seconds": median([r["seconds"] for r in runs]), "runs": [r["seconds"] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "returncode": last["returncode"],
                "work": last["work"], **({"error": last["error"]} if last.get("error") else {})}

    def triage(self) -> dict:
        def once():
            case = self._fresh("case")
            done = run_command([sys.executable, "-m", "triage", str(self.image), "-o", str(case), "-q"], cwd=ROOT)
            if done.returncode not in (0, 1):  # 1 = completed with gaps (the broken task files)
                raise SystemExit(f"triage failed on {self.image}:\n{done.stderr[-2000:]}")
            return {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb, "returncode": done.returncode,
                    "work": triage_work(case)}
        return self._repeat(once)

    def triage_in_process(self) -> dict:
        """triage.cli.main in this process: no interpreter start-up; the first run pays the imports."""
        from triage.cli import main

        seconds = []
        for _ in range(self.repeat):
            case = self._fresh("case-inproc")
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                main([str(self.image), "-o", str(case), "-q"])
            seconds.append(time.perf_counter() - started)
        return {"seconds": median(seconds), "runs": [round(s, 3) for s in seconds]}

    def dissect(self, functions: str) -> dict:
        def once():
            out = self._fresh("dissect.jsonl")
            done = run_command(["target-query", "-f", functions, "--group", "-j", str(self.image)], stdout=out)
            error = None
            if done.returncode:
                lines = [line for line in done.stderr.splitlines() if line and not line.startswith(" ")]
                error = lines[-1] if lines else f"exit {done.returncode}"
            return {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb, "returncode": done.returncode,
                    "work": dissect_work(out), "error": error}
        return self._repeat(once)

    def plaso(self) -> dict:
        l2t, psort = PLASO_VENV / "bin" / "log2timeline", PLASO_VENV / "bin" / "psort"

        def once():
            storage, out = self._fresh("x.plaso"), self._fresh("plaso.jsonl")
            first = run_command([str(l2t), "--unattended", "--status_view", "none", "--parsers", PLASO_PARSERS,
                                 "--storage-file", str(storage), str(self.image)], cwd=self.scratch)
            second = run_command([str(psort), "--unattended", "--status_view", "none", "-o", "json_line", "-w", str(out),
                                  str(storage)], cwd=self.scratch)
            if first.returncode or second.returncode:
                raise SystemExit(f"plaso failed:\n{first.stdout[-1500:]}{first.stderr[-1500:]}{second.stderr[-1500:]}")
            return {"seconds": first.seconds + second.seconds, "peak_rss_mb": max(first.peak_rss_mb, second.peak_rss_mb),
                    "returncode": 0, "work": {**plaso_work(out), "log2timeline_seconds": round(first.seconds, 3),
                                              "psort_seconds": round(second.seconds, 3)}}
        return self._repeat(once)

    def floor(self) -> dict:
        def once():
            out = self._fresh("floor")
            out.mkdir()
            done = run_command([sys.executable, "-c", FLOOR_SCRIPT, str(self.image), str(out)])
            if done.returncode:
                raise SystemExit(f"floor copy failed:\n{done.stderr[-2000:]}")
            return {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb, "returncode": 0,
                    "work": json.loads(done.stdout.strip().splitlines()[-1])}
        return self._repeat(once)


def build_variant(directory: Path) -> Path:
    """The test machine's planted files minus the three dissect dies on, acquired like the committed E01."""
    work = directory / "work"
    work.mkdir(parents=True, exist_ok=True)
    files = [f for f in scale.machine_files(work) if f.path not in DISSECT_CRASHES]
    image = scale.build_e01(directory, "windows10-dissect-safe", files, work)
    shutil.rmtree(work)
    return image


def run(scratch: Path, repeat: int, smoke: bool) -> dict:
    have_plaso = (PLASO_VENV / "bin" / "log2timeline").exists()
    variant = build_variant(scratch / "variant")
    images = {"dissect-safe variant": variant} if smoke else {"dissect-safe variant": variant, "committed": COMMITTED_E01}
    result = {"machine": machine(), "mode": "smoke" if smoke else "full", "repeat": repeat, "versions": versions(),
              "dissect_crashes_on": DISSECT_CRASHES, "plaso_parsers": PLASO_PARSERS, "images": {}}
    if not have_plaso:
        result["plaso_missing"] = f"no {PLASO_VENV.relative_to(ROOT)}: python3 -m venv {PLASO_VENV.relative_to(ROOT)} && " \
                                  f"{PLASO_VENV.relative_to(ROOT)}/bin/pip install plaso"
    for label, image in images.items():
        bench = Bench(image, scratch / "run", repeat)
        (scratch / "run").mkdir(exist_ok=True)
        tools = {"triage": bench.triage(), "dissect tasks": bench.dissect("tasks"), "floor (dissect copy)": bench.floor()}
        if not smoke:
            tools["triage in-process"] = bench.triage_in_process()
            tools["dissect tasks,evtx"] = bench.dissect("tasks,evtx")
            if have_plaso:
                tools["plaso"] = bench.plaso()
        result["images"][label] = {"image": image.name, "bytes": image.stat().st_size, "tools": tools}
    tools = result["images"]["dissect-safe variant"]["tools"]
    t = tools["triage"]["seconds"]
    result["ratios"] = {f"triage/{name}": ratio(t, tool["seconds"]) for name, tool in tools.items() if name != "triage"}
    result["targets"] = targets(result["ratios"])
    return result


def targets(ratios: dict) -> list[dict]:
    """The issue's targets: no slower than dissect tasks-only, >= 20x faster than plaso, <= 2x the copy floor."""
    wanted = [("triage/dissect tasks", "<=", 1.0), ("triage/plaso", "<=", 0.05), ("triage/floor (dissect copy)", "<=", 2.0)]
    return [{"ratio": name, "value": ratios.get(name), "limit": f"{op} {limit}",
             "met": None if ratios.get(name) is None else ratios[name] <= limit} for name, op, limit in wanted]


def table(result: dict) -> str:
    rows = []
    for label, image in result["images"].items():
        for name, tool in image["tools"].items():
            work = tool.get("work", {})
            what = (f"{len(work['task_files'])} task files" if "task_files" in work else
                    f"{work['events']} events" if "events" in work else
                    f"{work['files']} files, {work['bytes']:,} B" if "files" in work else "")
            if "taskcache_entries" in work:
                what += f", {work['taskcache_entries']} TaskCache, {work['task_events']} task events"
            if "records" in work:
                what += f", {work['records']} records"
            rows.append([label, name, tool["seconds"], tool.get("peak_rss_mb", ""), what, tool.get("error", "")[:70]])
    lines = [tabulate(rows, headers=["image", "tool", "median s", "peak MB", "work", "error"])]
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()))
    lines.append(tabulate([[t["ratio"], t["value"], t["limit"], t["met"]] for t in result["targets"]],
                          headers=["ratio (variant image)", "value", "target", "met"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="variant image only, no plaso, one repetition (seconds)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the median counts")
    parser.add_argument("--out", type=Path, default=RESULTS / "windows.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="triage-bench-windows-") as tmp:
        result = run(Path(tmp), 1 if args.smoke else args.repeat, args.smoke)
    save(result, args.out)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
