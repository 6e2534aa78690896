"""``triage hunt`` over a generated 50-host fleet, on a real Dask cluster started here on loopback.

The fleet (test_images.fleet) plants a rare beacon on 3 hosts, a rare encoded-PowerShell task on 2
and a benign task on 1; everything else is on all 50. The external cluster is a ``dask scheduler``
and two ``dask worker`` processes; the second run uses triage's own local cluster. A junk file, a FIFO
named like an E01 (refused before it is opened: reading it would block forever) and a sparse 4 TiB raw
disk image (a regular file whose SHA-256 alone takes far longer than the per-item timeout: the worker is
restarted) ride along in both runs.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_images.fleet import BEACON_HOSTS, BEACON_TASK, CRADLE_HOSTS, CRADLE_TASK, UNIQUE_HOST, UNIQUE_TASK, \
    build_fleet, host_name
from triage.cli import main as triage_main
from triage.hunt import case_folder_name, expand_evidence, hunt_main

HUNT_DATE = "20240314"
HOSTS = 50
OUTPUTS = ("stacks.csv", "stacks.jsonl", "fleet_findings.json", "fleet_report.html")
# Hashing it reads 4 TiB (SHA-256 of a whole image comes before anything else): over 15 min even at 4 GB/s,
# hundreds of times one small host's triage, of which --timeout is 20x.
SLOW_IMAGE_BYTES = 4 << 40


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fleet")
    hosts = build_fleet(root / "hosts", HOSTS)
    junk = root / "junk.E01"
    junk.write_bytes(b"this is not a disk image\n" * 2000)
    stuck = root / "stuck.E01"
    os.mkfifo(stuck)  # no writer ever opens it: reading would block forever
    slow = root / "slow.raw"
    with slow.open("wb") as image:  # sparse: no disk space, but every byte is read to hash it
        image.truncate(SLOW_IMAGE_BYTES)
    listing = root / "fleet.txt"
    items = "".join(f"hosts/{h.hostname}\n" for h in hosts) + "junk.E01\nstuck.E01\nslow.raw\n"
    listing.write_text("# the fleet\n" + items)
    return {"root": root, "hosts": hosts, "junk": str(junk), "stuck": str(stuck), "slow": str(slow), "listing": listing,
            "timeout": _item_timeout(root / "hosts" / hosts[0].hostname)}


def _item_timeout(host: Path) -> str:
    """--timeout as 20x one host's own triage time measured here, and at least 60 s: the load can grow after
    this measurement (a host that took 0.4 s here took over 10 s in a worker at load 6 on 2 cores, and a
    10 s floor failed), while hashing the 4 TiB image still runs out (over 15 min at 4 GB/s)."""
    from triage.collect import Context
    from triage.run import run

    run([str(host)], Context(quiet=True))  # imports and rule loading, which the hunt does not charge to an item
    started = time.monotonic()
    run([str(host)], Context(quiet=True))
    return str(max(60, math.ceil(20 * (time.monotonic() - started))))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler():
    """A scheduler and two single-threaded worker processes, started like an admin would."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", address.rsplit(":", 1)[1], "--dashboard-address", ":0"], **quiet)]
    try:
        for _ in range(2):
            processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                               "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], **quiet))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=30)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _hunt(fleet: dict, out: Path, *extra: str) -> int:
    return hunt_main([f"@{fleet['listing']}", "-o", str(out), "--timeout", fleet["timeout"], "--hunt-date", HUNT_DATE, *extra])


@pytest.fixture(scope="module")
def external_run(fleet, scheduler, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("hunt-external")
    code = _hunt(fleet, out, "--scheduler", scheduler)
    return {"out": out, "code": code}


@pytest.fixture(scope="module")
def local_run(fleet, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("hunt-local")
    code = _hunt(fleet, out, "--workers", "2")
    return {"out": out, "code": code}


def _stacks(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "stacks.jsonl").read_text().splitlines()]


def _hosts(numbers) -> list[str]:
    return [host_name(n) for n in numbers]


def test_planted_rare_tasks_are_the_rarest_task_stacks_with_exact_hosts(external_run):
    task_stacks = [(s["value"], s["host_count"], s["hosts"]) for s in _stacks(external_run["out"])
                   if s["kind"] == "task_path"]
    assert task_stacks[:3] == [
        (UNIQUE_TASK.lower(), 1, _hosts([UNIQUE_HOST])),
        (CRADLE_TASK.lower(), 2, _hosts(CRADLE_HOSTS)),
        (BEACON_TASK.lower(), 3, _hosts(BEACON_HOSTS)),
    ]
    # 24 stock tasks and the inventory agent: on every host
    assert len(task_stacks) == 28
    assert {count for _, count, _ in task_stacks[3:]} == {HOSTS}


def test_every_rare_stack_belongs_to_a_planted_task(external_run):
    rare = [s for s in _stacks(external_run["out"]) if s["rare"]]
    assert {task for s in rare for task in s["tasks"]} == {UNIQUE_TASK, CRADLE_TASK, BEACON_TASK}
    beacon = {s["kind"]: s["value"] for s in rare if s["tasks"] == [BEACON_TASK]}
    assert beacon["action"] == r"rundll32.exe c:\users\public\libraries\msedge_elf.dll,startw"
    assert beacon["principal"] == r".\jsmith LeastPrivilege"  # WS-007\jsmith, WS-023\jsmith ... stack together
    assert beacon["trigger"] == "logon"
    assert len(beacon["action_sha256"]) == 64  # the planted DLL, hashed inside each host's evidence


def test_stacking_findings_rank_malicious_rare_tasks_above_the_benign_one(external_run):
    record = json.loads((external_run["out"] / "fleet_findings.json").read_text())
    assert record["fleet_hosts"] == HOSTS and record["rare_at_most_hosts"] == 3
    assert [(f["hunt_id"], f["risk_level"], f["confidence"], f["task"], f["host"]) for f in record["findings"]] == [
        (f"TH-HUNTIN-{HUNT_DATE}-S001", "High", "High", CRADLE_TASK, ", ".join(_hosts(CRADLE_HOSTS))),
        (f"TH-HUNTIN-{HUNT_DATE}-S002", "High", "High", BEACON_TASK, ", ".join(_hosts(BEACON_HOSTS))),
        (f"TH-HUNTIN-{HUNT_DATE}-S003", "Low", "Medium", UNIQUE_TASK, host_name(UNIQUE_HOST)),
    ]


def test_junk_fifo_and_overlong_items_fail_alone_and_the_fleet_finishes(external_run, fleet):
    record = json.loads((external_run["out"] / "fleet_findings.json").read_text())
    failed = {i["evidence"]: i["problem"] for i in record["items"] if i["status"] == "failed"}
    assert set(failed) == {fleet["junk"], fleet["stuck"], fleet["slow"]}
    assert "cannot open as a disk image or collection" in failed[fleet["junk"]]
    # the FIFO is refused by its file type, without a read that would hang: no timeout is spent on it
    assert failed[fleet["stuck"]] == f"{fleet['stuck']}: not a regular file, directory or block device: not read"
    assert failed[fleet["slow"]] == f"timed out after {fleet['timeout']} s (worker restarted)"
    assert sum(1 for i in record["items"] if i["status"] == "done") == HOSTS
    assert external_run["code"] == 1
    assert len(list((external_run["out"] / "cases").iterdir())) == HOSTS


def test_local_cluster_gives_the_same_bytes_as_the_external_scheduler(external_run, local_run):
    assert local_run["code"] == external_run["code"] == 1
    for name in OUTPUTS:
        assert (local_run["out"] / name).read_bytes() == (external_run["out"] / name).read_bytes(), name


def test_case_folder_equals_a_standalone_triage_run(external_run, fleet, tmp_path):
    host = next(h for h in fleet["hosts"] if h.number == BEACON_HOSTS[0])
    alone = tmp_path / "alone"
    assert triage_main([str(host.path), "-o", str(alone), "--hunt-date", HUNT_DATE, "-q"]) == 1  # TaskCache gap
    in_hunt = external_run["out"] / "cases" / case_folder_name(str(host.path))
    for name in ("tasks.jsonl", "findings.json", "timeline.jsonl", "report.html"):
        assert (in_hunt / name).read_bytes() == (alone / name).read_bytes(), name


def test_report_escapes_and_lists_stacks_rarest_first(external_run):
    page = (external_run["out"] / "fleet_report.html").read_text()
    stacks = page.split("Stacks, rarest first", 1)[1]
    assert stacks.index("\\contoso\\printermapping") < stacks.index("\\googleupdatetaskmachineqa") \
        < stacks.index("\\microsoft\\windows\\maintenance\\compattelrunnersync") < stacks.index("\\contoso\\inventoryagent")
    assert "<script" not in page and "http://" not in page.split("</head>", 1)[0]


def test_evidence_list_file_globs_and_paths_expand_to_sorted_unique_paths(fleet):
    root = fleet["root"]
    via_list = expand_evidence([str(fleet["listing"])])
    via_glob = expand_evidence([str(root / "hosts" / "WS-0*"), fleet["junk"], fleet["stuck"], fleet["slow"],
                                fleet["junk"]])
    assert via_list == via_glob
    assert len(via_list) == HOSTS + 3 and via_list == sorted(via_list)
