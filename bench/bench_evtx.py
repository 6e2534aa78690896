"""Events per second: triage's EVTX reader vs python-evtx vs dissect.target's evtx plugin.

Two sets: the largest real corpus logs, and a larger generated set made by copying real logs as
separate files (so the numbers include per-file work). Each reader parses every record to the form
its users get: triage → flat field dicts (plus task events), python-evtx → rendered XML,
dissect's plugin → flow.record records built by ``EvtxPlugin._build_record`` over
``dissect.eventlog.evtx.Evtx`` (what ``target-query -f evtx`` does per record).

Usage: ``python3 bench/bench_evtx.py [--smoke] [--copies N] [--out PATH]``. ``--smoke`` runs two
small logs once (a few seconds) and writes nothing unless ``--out`` is given.
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
        ("triage (dissect.eventlog + own chunk loop)", lambda: run_triage(files)),
        ("python-evtx 0.8 (records → XML)", lambda: run_python_evtx(files)),
        ("dissect.target evtx plugin", lambda: run_dissect_plugin(files, scratch)),
    ):
        row = measure(name, fn)
        row.update({"set": label, "files": len(files), "bytes": size})
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two small logs, a few seconds")
    parser.add_argument("--copies", type=int, default=8, help="copies of the largest logs in the generated set")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/evtx.json, none in --smoke)")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.smoke:
            rows += bench_set("smoke", SMOKE, tmp_path / "t0")
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
    print(tabulate([[r["set"], r["reader"], r["files"], r["bytes"], r["events"], r["seconds"], r["events_per_second"]] for r in rows],
                   headers=["set", "reader", "files", "bytes", "events", "seconds", "events/s"]))
    out = args.out if args.out or args.smoke else ROOT / "bench" / "results" / "evtx.json"
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(), "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
