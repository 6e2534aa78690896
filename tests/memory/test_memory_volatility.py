"""The synthetic images are real to stock volatility3, the plugins run under `vol -p plugins`, and a
missing kernel symbol table gives one clear gap instead of a traceback."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from Registry import Registry

from test_images.memimage import CRADLE, DISK_TASK_GUID, WIN7_CRADLE, WIN7_HOSTNAME, build_memory_image
from test_images.windows_tree import C2_URL, DOWNLOAD_CRADLE, HOSTNAME
from tests.memory.conftest import ROOT, run_collector


def test_stock_pslist_psscan_cmdline_agree_with_the_image(images, win10, vol):
    built = images["win10"]
    pslist = {r["PID"]: r["ImageFileName"] for r in vol(built, "windows.pslist")}
    psscan = {r["PID"]: r for r in vol(built, "windows.psscan")}
    cmdline = {r["PID"]: r["Args"] for r in vol(built, "windows.cmdline")}
    assert len(pslist) == 18 and 6044 not in pslist
    assert set(psscan) == set(pslist) | {6044, 7508}
    assert psscan[6044]["ExitTime"].startswith("2024-05-14T09:12:13")
    for pid, proc in win10.processes.items():
        if pid in cmdline:
            assert cmdline[pid] == proc.command_line


def test_stock_hivelist_dump_is_a_hive_python_registry_reads(images, vol, tmp_path):
    rows = vol(images["win10"], "windows.registry.hivelist", "--dump", out_dir=tmp_path)
    assert [r["FileFullPath"] for r in rows] == [r"\SystemRoot\System32\Config\SYSTEM", r"\SystemRoot\System32\Config\SOFTWARE"]
    software = next(tmp_path.glob("registry.SOFTWARE.*.hive"))
    hive = Registry.Registry(str(software))
    tree = hive.open(r"Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree\WinUpdateCheck")
    assert {v.name(): v.value() for v in tree.values()} == {"Id": "{9B1E4C07-2D3F-4A58-B6C9-0E1F2A3B4C5D}", "Index": 3}
    tasks = hive.open(r"Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tasks")
    assert len(tasks.subkeys()) == 4


def _package_plugin_dir() -> str:
    """What `python -m triage.volplugins --path` prints (run as a user would, from the checkout)."""
    done = subprocess.run([sys.executable, "-m", "triage.volplugins", "--path"], capture_output=True, text=True,
                          cwd=str(ROOT), check=True)
    return done.stdout.strip()


def test_volplugins_path_is_the_package_folder_holding_both_plugins():
    folder = Path(_package_plugin_dir())
    assert folder == ROOT / "triage" / "volplugins"
    assert {p.name for p in folder.glob("*.py")} >= {"taskprocs.py", "taskcache_mem.py"}


@pytest.mark.parametrize("plugin_dir", ["package", "plugins"])
def test_vol_cli_runs_triage_plugins(images, vol, plugin_dir):
    """`vol -p` on its own shows what triage's case shows: tasks (linked or not), decoded payloads, the
    Schedule host from the service records, the task rebuilt from the exited schtasks.exe, the host name."""
    folder = _package_plugin_dir() if plugin_dir == "package" else "plugins"
    rows = {(r["PID"], r["Role"]): r for r in vol(images["win10"], "taskprocs.TaskProcs", plugins=folder)}
    assert rows[(5120, "task_process")]["Task"] == r"\WinUpdateCheck"
    assert rows[(5120, "task_process")]["Decoded"] == CRADLE
    assert rows[(6044, "descendant")]["Seen"] == "psscan"
    assert rows[(7016, "task_process")]["Flags"] == "task_not_in_registry,user_writable_path"
    cradle = rows[(7412, "descendant")]
    assert cradle["Task"] == f"(running task) {DISK_TASK_GUID}" and cradle["Decoded"] == DOWNLOAD_CRADLE
    assert cradle["DecodedURLs"] == C2_URL and cradle["Host"] == HOSTNAME
    assert cradle["Ancestry"] == "wininit.exe (524) > services.exe (668) > svchost.exe (1236) > taskhostw.exe (7400)"
    assert rows[(1236, "schedule_host")]["HostReason"].startswith("Service Control Manager record (svcscan")
    rebuilt = rows[(6044, "creates_task")]
    assert rebuilt["Task"] == r"\Microsoft\Windows\Maintenance\SyncData"
    assert rebuilt["Link"] == r"task rebuilt from this command line: exec: rundll32.exe C:\Users\Public\Libraries\x.dll,StartW"
    assert rebuilt["Seen"] == "psscan"
    win7 = {(r["PID"], r["Role"]): r for r in vol(images["win7"], "taskprocs.TaskProcs", plugins=folder)}
    assert win7[(2536, "task_process")]["Decoded"] == WIN7_CRADLE and win7[(2536, "task_process")]["Host"] == WIN7_HOSTNAME
    assert win7[(2000, "creates_task")]["Task"] == r"\AdobeFlashSync"
    tasks = {r["Task"]: r for r in vol(images["win7"], "taskcache_mem.TaskCacheMem", plugins=folder)}
    assert tasks[r"\AdobeFlashSync"]["Actions"] == r'exec: cmd.exe /c "C:\Windows\Temp\bk.bat"'


def test_stock_svcscan_reads_the_service_records_the_builder_wrote(images, vol):
    for name, schedule_pid, binary in (("win10", 1236, r"%SystemRoot%\system32\svchost.exe -k netsvcs -p -s Schedule"),
                                       ("win7", 900, r"%SystemRoot%\system32\svchost.exe -k netsvcs")):
        rows = {r["Name"]: r for r in vol(images[name], "windows.svcscan")}
        assert rows["Schedule"]["PID"] == schedule_pid and rows["Schedule"]["State"] == "SERVICE_RUNNING"
        assert rows["Schedule"]["Binary"] == binary and rows["Schedule"]["Display"] == "Task Scheduler"


def test_missing_kernel_symbols_give_one_gap_naming_pdb_guid_and_age(images, tmp_path, capsys):
    empty = tmp_path / "symbols"
    empty.mkdir()
    run = run_collector(images["win10"]["image"], empty)
    assert run.records == []
    assert len(run.gaps) == 1
    problem = run.gaps[0].problem
    assert "ntkrnlmp.pdb GUID 1F4B5A427C2D4E0B9A3F5C7E2B1D0A11 age 1" in problem
    assert f"{empty}/windows/ntkrnlmp.pdb/1F4B5A427C2D4E0B9A3F5C7E2B1D0A11-1.json.xz" in problem
    assert "Traceback" not in capsys.readouterr().err


def test_generator_output_is_byte_identical_across_builds(tmp_path):
    digests = []
    for name in ("a", "b"):
        built = build_memory_image(tmp_path / name, "win7", n_extra_processes=5)
        isf = next(built["symbols"].rglob("*.json.xz"))
        digests.append((hashlib.sha256(built["image"].read_bytes()).hexdigest(), hashlib.sha256(isf.read_bytes()).hexdigest()))
    assert digests[0] == digests[1]


def test_image_without_a_windows_kernel_gives_one_gap(tmp_path):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(bytes(0x200000))
    run = run_collector(junk, None)
    assert run.records == []
    assert [g.problem for g in run.gaps] == [
        "no Windows kernel found in the image (no DTB or ntkrnlmp/ntoskrnl PDB signature): "
        "not a supported x64 Windows memory image; memory analysis skipped"]
