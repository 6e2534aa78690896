"""Events per second: triage's EVTX reader vs the bare Rust ``evtx`` decode, python-evtx and
dissect.target's evtx plugin; and full triage of a folder of logs against the bare decode.

Readers, on two sets (the largest real corpus logs, and copies of them as separate files, so the
numbers include per-file work): each parses every record to the form its users get: triage → flat
field dicts (plus task events), ``evtx`` (PyPI, Rust) → its JSON loaded into Python dicts,
python-evtx → rendered XML, dissect's plugin → flow.record records built by
``EvtxPlugin._build_record`` over ``dissect.eventlog.evtx.Evtx`` (what ``target-query -f evtx`` does).

Folder (``folder`` in the JSON): 100 real Sysmon/Security logs (25 copies each of the four 1.1 MB
EVTX-ATTACK-SAMPLES logs: 24,475 events, 42 MB allocated), each command its own subprocess, the
three interleaved, median of ``--repeat``: the bare decode (every record to a dict), and the whole
``triage FOLDER -o CASE`` (Sigma on every event, correlation, every export) with ``--workers 1`` and
``--workers 2``. Ratios: triage / bare decode (target <= 3.0) and one worker / two (target >= 1.6).

Usage: ``python3 bench/bench_evtx.py [--smoke] [--copies N] [--folder-copies N] [--repeat N] [--out PATH]``.
``--smoke`` runs two small logs once (a few seconds) and writes nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.evtx_reader import EvtxReader  # noqa: E402
from triage.parsers.evtx_task import task_event  # noqa: E402

CORPUS = ROOT / ".." / "shared" / "corpus"
LARGEST = [
    CORPUS / "AndrewRathbun__DFIRArtifactMuseum/Windows/EventLogs/Win10/BelkasoftCTF_InsiderThreat/"
             "BelkasoftCTF_InsiderThreat.7z.extracted/Microsoft-Windows-TaskScheduler%4Operational.evtx",
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/Persistence/persistence_sysmon_11_13_1_shime_appfix.evtx",
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx",
]
# The 100-log folder of issue 17: four real Sysmon/Security logs (979 events), 25 copies each.
FOLDER_LOGS = [
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx",
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx",
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/Persistence/persistence_sysmon_11_13_1_shime_appfix.evtx",
    CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES/Credential Access/ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx",
]
SMOKE = [
    CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/TaskScheduler.evtx",
    CORPUS / "Velocidex__velociraptor/artifacts/testdata/files/SecurityTasks.evtx",
]


def run_triage(files: list[Path]) -> int:
    count = 0
    for path in files:
        with open(path, "rb") as fh:
            for record in EvtxReader(fh, str(path)):
                task_event(record.fields, location=str(path))
                count += 1
    return count


def run_bare_evtx(files: list[Path]) -> int:
    import evtx

    count = 0
    for path in files:
        for record in evtx.PyEvtxParser(str(path)).records_json():
            json.loads(record["data"])
            count += 1
    return count


BARE_DECODE = """import json, sys, evtx
n = 0
for path in sys.argv[1:]:
    for record in evtx.PyEvtxParser(path).records_json():
        json.loads(record["data"])
        n += 1
print(n)
"""


def run_python_evtx(files: list[Path]) -> int:
    from Evtx.Evtx import Evtx

    count = 0
    for path in files:
        with Evtx(str(path)) as log:
            for record in log.records():
                record.xml()
                count += 1
    return count


def run_dissect_plugin(files: list[Path], scratch: Path) -> int:
    from dissect.eventlog import evtx
    from dissect.target import Target
    from dissect.target.plugins.os.windows.log.evtx import EvtxPlugin

    # The plugin needs a Windows target; a real one caches hostname/domain from its registry.
    # This scratch target has no registry, so they are set to None: otherwise every record would
    # retry a failing registry load and we would measure that, not the parser.
    (scratch / "Windows" / "System32").mkdir(parents=True, exist_ok=True)
    target = Target.open(scratch)
    target.hostname = None
    target.domain = None
    plugin = EvtxPlugin(target)
    count = 0
    for path in files:
        with open(path, "rb") as fh:
            for event in evtx.Evtx(fh):
                plugin._build_record(event, path)
                count += 1
    return count


def measure(name: str, fn) -> dict:
    start = time.perf_counter()
    events = fn()
    seconds = time.perf_counter() - start
    return {"reader": name, "events": events, "seconds": round(seconds, 3), "events_per_second": round(events / seconds) if seconds else None}


def bench_set(label: str, files: list[Path], scratch: Path) -> list[dict]:
    size = sum(p.stat().st_size for p in files)
    rows = []
    for name, fn in (
        ("triage (evtx per verified chunk, own record loop for the rest)", lambda: run_triage(files)),
        (f"evtx {_version('evtx')} bare decode (records → dicts)", lambda: run_bare_evtx(files)),
        ("python-evtx 0.8 (records → XML)", lambda: run_python_evtx(files)),
        ("dissect.target evtx plugin", lambda: run_dissect_plugin(files, scratch)),
    ):
        row = measure(name, fn)
        row.update({"set": label, "files": len(files), "bytes": size})
        rows.append(row)
    return rows


def bench_folder(files: list[Path], work: Path, repeat: int) -> dict:
    """Full triage of a folder of logs with one and two workers against the bare decode, side by side."""
    import statistics

    from bench.timing import ratio, run_command

    folder = work / "folder"
    folder.mkdir()
    for path in files:
        (folder / path.name).symlink_to(path)  # triage follows an examiner's link to a regular file
    bare_cmd = [sys.executable, "-c", BARE_DECODE, *map(str, sorted(folder.iterdir()))]
    runs: dict[str, list] = {"bare": [], "workers 1": [], "workers 2": []}
    for _ in range(repeat):
        runs["bare"].append(run_command(bare_cmd))
        for workers in (1, 2):
            case = work / f"case-{workers}"
            shutil.rmtree(case, ignore_errors=True)
            command = [sys.executable, "-m", "triage", str(folder), "-o", str(case), "-q", "--workers", str(workers)]
            runs[f"workers {workers}"].append(run_command(command, cwd=ROOT))
    for name, done in runs.items():
        if any(r.returncode not in (0, 1) for r in done):
            raise SystemExit(f"{name} failed:\n{done[-1].stderr[-2000:]}")
    events = int(runs["bare"][0].stdout.split()[-1])
    counts = json.loads((work / "case-1" / "manifest.json").read_text())["counts"]
    seconds = {name: round(statistics.median(r.seconds for r in done), 3) for name, done in runs.items()}
    rss = {name: max(r.peak_rss_mb for r in done) for name, done in runs.items()}
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files), "events": events,
            "task_events": counts["events"], "findings": counts["findings"], "repeat": repeat,
            "seconds": seconds, "peak_rss_mb": rss,
            "all_seconds": {name: [round(r.seconds, 3) for r in done] for name, done in runs.items()},
            "ratios": [
                {"ratio": "triage --workers 1 / bare evtx decode", "target": "<= 3.0",
                 "value": ratio(seconds["workers 1"], seconds["bare"])},
                {"ratio": "triage --workers 2 / bare evtx decode", "target": "<= 3.0",
                 "value": ratio(seconds["workers 2"], seconds["bare"])},
                {"ratio": "speed-up: --workers 1 / --workers 2", "target": ">= 1.6",
                 "value": ratio(seconds["workers 1"], seconds["workers 2"])}]}


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two small logs, a few seconds")
    parser.add_argument("--copies", type=int, default=8, help="copies of the largest logs in the generated set")
    parser.add_argument("--folder-copies", type=int, default=25, help="copies of each log in the folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command in the folder comparison (median)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/evtx.json, none in --smoke)")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.smoke:
            rows += bench_set("smoke", SMOKE, tmp_path / "t0")
            folder = bench_folder(_copies(SMOKE, tmp_path / "copies", 2), tmp_path, 1)
        else:
            rows += bench_set("largest corpus logs", LARGEST, tmp_path / "t0")
            generated = tmp_path / "generated"
            generated.mkdir()
            copies = []
            for n in range(args.copies):
                for path in LARGEST:
                    copy = generated / f"{n:02d}-{path.name}"
                    shutil.copyfile(path, copy)
                    copies.append(copy)
            rows += bench_set(f"generated: {args.copies} copies as separate files", copies, tmp_path / "t1")
            folder = bench_folder(_copies(FOLDER_LOGS, tmp_path / "copies", args.folder_copies), tmp_path, args.repeat)
    print(tabulate([[r["set"], r["reader"], r["files"], r["bytes"], r["events"], r["seconds"], r["events_per_second"]] for r in rows],
                   headers=["set", "reader", "files", "bytes", "events", "seconds", "events/s"]))
    print()
    title = f"folder: {folder['files']} logs, {folder['events']} events"
    print(tabulate([[name, folder["seconds"][name], folder["peak_rss_mb"][name]] for name in folder["seconds"]],
                   headers=[title, "seconds (median)", "peak MB"]))
    print(tabulate([[r["ratio"], r["value"], r["target"]] for r in folder["ratios"]], headers=["ratio", "value", "target"]))
    out = args.out if args.out else (None if args.smoke else ROOT / "bench" / "results" / "evtx.json")
    if out:
        from bench.timing import machine

        out.parent.mkdir(parents=True, exist_ok=True)
        result = {"python": platform.python_version(), "machine": platform.machine(), "host": machine(),
                  "results": rows, "folder": folder}
        out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _copies(paths: list[Path], folder: Path, copies: int) -> list[Path]:
    folder.mkdir()
    out = []
    for n in range(copies):
        for index, path in enumerate(paths):
            copy = folder / f"{n:03d}-{index}-{path.name}"
            shutil.copyfile(path, copy)
            out.append(copy)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
