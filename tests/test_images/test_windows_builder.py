"""The Windows test-image builder: reproducible to the byte, every form opens in dissect as the
same Windows 10 machine, and what is planted (tasks, times, registry, GPP) is what the image holds."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timedelta, timezone

import defusedxml.ElementTree as ElementTree
import pytest
from dissect.ntfs import NTFS
from dissect.target import Target
from dissect.target.plugins.os.windows.tasks._plugin import TasksPlugin
from dissect.target.plugins.os.windows.tasks.xml import ScheduledTasks
from Registry import Registry
from regipy.registry import RegistryHive

from test_images import build
from test_images.gpp import decrypt_cpassword, encrypt_cpassword
from test_images.build import image_tasks
from test_images.windows_tree import (
    ACQUIRED, DATE_AFTER_CREATION_TASK, DOMAIN, DOTTED_TASK, EMAIL_TASK, GPP_ACCOUNTS, GPP_PATH, HOSTNAME, LOCAL,
    MESSAGE_TASK, OS_VERSION_TEXT, TASKS_DIR, TIMESTOMPED_TASK, all_tasks, at_jobs,
)

HASHED_FORMS = ("e01", "gpt", "mbr", "ntfs", "qcow2", "vmdk", "vhd", "kape_zip", "velociraptor_zip")
FORM_LOADERS = {
    "tree": ("DirLoader", None),
    "ntfs": ("RawLoader", "RawContainer"),
    "gpt": ("RawLoader", "RawContainer"),
    "mbr": ("RawLoader", "RawContainer"),
    "e01": ("RawLoader", "EwfContainer"),
    "qcow2": ("RawLoader", "QCow2Container"),
    "vmdk": ("RawLoader", "VmdkContainer"),
    "vhd": ("RawLoader", "VhdContainer"),
    "vhdx": ("RawLoader", "VhdxContainer"),
    "kape_dir": ("KapeLoader", None),
    "kape_zip": ("ZipLoader", None),
    "kape_vhdx": ("KapeLoader", None),
    "velociraptor_zip": ("VelociraptorLoader", None),
}


def planted_task_files() -> set[str]:
    """The builder's task files (it reads real stock tasks from the corpus: never at import time)."""
    return {task.file_path.removeprefix(TASKS_DIR + "/") for task in image_tasks()}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def targets(windows_images) -> dict[str, Target]:
    return {name: Target.open(windows_images[name]) for name in FORM_LOADERS}


@pytest.fixture(scope="module")
def volume(windows_images):
    with windows_images["ntfs"].open("rb") as handle:
        yield NTFS(handle)


def test_rebuilt_e01_is_byte_identical_to_the_committed_one(windows_images, committed_windows_e01):
    assert sha256(windows_images["e01"]) == sha256(committed_windows_e01)
    assert 150_000 < committed_windows_e01.stat().st_size < 300_000


def test_second_build_in_another_directory_is_identical(windows_images, tmp_path):
    again = build.build_windows(tmp_path / "elsewhere" / "second")
    assert {name: sha256(again[name]) for name in HASHED_FORMS} == {
        name: sha256(windows_images[name]) for name in HASHED_FORMS}
    for name in ("tree", "kape_dir"):
        assert tree_digest(again[name]) == tree_digest(windows_images[name])
    for name in ("vhdx", "kape_vhdx"):  # random GUIDs in the headers: compare the disk content
        assert sha256(again[name]) != sha256(windows_images[name])
        subprocess.run(["qemu-img", "compare", "-q", str(again[name]), str(windows_images[name])], check=True)


@pytest.mark.parametrize("form", sorted(FORM_LOADERS))
def test_every_form_opens_as_the_windows_10_machine(targets, form):
    target = targets[form]
    loader, container = FORM_LOADERS[form]
    assert type(target._loader).__name__ == loader
    assert [type(disk).__name__ for disk in target.disks] == ([container] if container else [])
    assert (target.hostname, target.os, target.version) == (HOSTNAME, "windows", OS_VERSION_TEXT)
    assert (target.domain, target.timezone) == (DOMAIN, "Europe/Berlin")
    tz = target.datetime.tzinfo
    assert repr(tz) == "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"
    assert datetime(2024, 3, 14, 10, 0, tzinfo=tz).utcoffset().total_seconds() == 3600
    assert datetime(2024, 7, 1, 10, 0, tzinfo=tz).utcoffset().total_seconds() == 7200


@pytest.mark.parametrize("form", sorted(FORM_LOADERS))
def test_every_form_shows_the_same_task_files(targets, form):
    root = targets[form].fs.path("sysvol/windows/system32/tasks")
    seen = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert seen == planted_task_files()
    assert len(seen) == 45  # 37 stock/scenario/broken files + 8 of the TaskCache stealth set


def ns(moment: datetime) -> int:
    """Nanoseconds since 1970, exactly (dissect's datetime properties round FILETIMEs through a float)."""
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) * 1000


def test_task_files_keep_their_planted_times_and_the_timestomp(volume):
    for task in all_tasks():
        record = volume.mft.get(task.file_path)
        info, name = record.attributes[0x10][0], record.attributes[0x30][0]
        times = task.times
        assert (info.creation_time_ns, info.last_modification_time_ns, info.last_access_time_ns) == (
            ns(times.created), ns(times.modified), ns(times.accessed)), task.name
        assert name.creation_time_ns == ns(times.fn_created), task.name
    stomped = volume.mft.get(f"{TASKS_DIR}/{TIMESTOMPED_TASK.lstrip(chr(92))}")
    assert stomped.attributes[0x10][0].creation_time_ns == ns(datetime(2023, 11, 2, 8, 44, 2, tzinfo=timezone.utc))
    assert stomped.attributes[0x30][0].creation_time_ns == ns(
        datetime(2024, 3, 12, 14, 3, 27, 318442, tzinfo=timezone.utc))


def test_insider_task_registration_date_is_later_than_its_file(volume, windows_images):
    path = f"{TASKS_DIR}/{DATE_AFTER_CREATION_TASK.lstrip(chr(92))}"
    xml = ElementTree.fromstring((windows_images["tree"] / path).read_bytes())
    written = xml.find("{*}RegistrationInfo/{*}Date").text
    assert written == "2024-03-13T09:00:00"
    registered = datetime.fromisoformat(written).replace(tzinfo=LOCAL)
    created = volume.mft.get(path).attributes[0x10][0].creation_time
    assert created == datetime(2024, 3, 11, 16, 47, 5, tzinfo=timezone.utc)  # whole seconds: no float rounding
    assert registered > created


def test_scenario_task_files_are_written_like_windows(windows_images):
    for task in all_tasks():
        data = (windows_images["tree"] / task.file_path).read_bytes()
        assert data == task.data
        if task.origin == "broken":
            continue
        text = data[2:].decode("utf-16-le")
        assert data[:2] == b"\xff\xfe" and text.startswith('<?xml version="1.0" encoding="UTF-16"?>\r\n'), task.name
        assert "\n" not in text.replace("\r\n", "") and text.endswith("</Task>"), task.name
        uri = ElementTree.fromstring(data).find("{*}RegistrationInfo/{*}URI").text
        assert uri.lstrip("\\") == task.name.lstrip("\\")


def test_hives_identify_as_windows_hives_to_regipy_and_python_registry(windows_images):
    config = windows_images["tree"] / "Windows/System32/config"
    hives = {"SOFTWARE": "software", "SYSTEM": "system"}
    for name, kind in hives.items():
        assert RegistryHive(str(config / name)).hive_type == kind
    assert RegistryHive(str(windows_images["tree"] / "Users/jsmith/NTUSER.DAT")).hive_type == "ntuser"
    system = Registry.Registry(str(config / "SYSTEM"))
    assert system.root().name() == "CMI-CreateHive{2A7FB991-7BBE-4F9D-B91E-7CB51D4737F5}"
    computer = system.open(r"ControlSet001\Control\ComputerName\ComputerName").value("ComputerName")
    assert computer.raw_data() == "WS-FIN-042\0".encode("utf-16-le")


def test_com_handler_classes_resolve_in_software(targets):
    registry = targets["e01"].registry
    clsid = registry.key(r"HKLM\SOFTWARE\Classes\CLSID\{C53B4E3A-7E1D-4F62-9A0B-3C2D1E0F5A6B}\InprocServer32")
    assert clsid.value("(Default)").value == r"C:\Users\jsmith\AppData\Roaming\Microsoft\Themes\thmsync.dll"
    assert clsid.timestamp == datetime(2024, 3, 12, 14, 36, 41, tzinfo=timezone.utc)
    regidle = registry.key(r"HKLM\SOFTWARE\Classes\CLSID\{CA767AA8-9157-4604-B64B-40747123D5F2}\InprocServer32")
    assert regidle.value("(Default)").value == r"%SystemRoot%\System32\regidle.dll"


def test_gpp_cpassword_decrypts_to_the_planted_passwords(windows_images):
    assert encrypt_cpassword("Local*P4ssword!") == "j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76ZwgdHdhw"  # MS14-025 example
    root = ElementTree.fromstring((windows_images["tree"] / GPP_PATH).read_bytes())
    found = {props.get("name"): (props.get("runAs"), decrypt_cpassword(props.get("cpassword")))
             for props in root.iter("Properties")}
    assert found == GPP_ACCOUNTS
    assert [child.tag for child in root] == ["TaskV2", "ImmediateTaskV2"]


def test_at_jobs_and_their_log_read_back_in_dissect(targets):
    target = targets["e01"]
    jobs = sorted(p.name for p in target.fs.path("sysvol/windows/tasks").iterdir() if p.suffix == ".job")
    assert jobs == [job.name for job in at_jobs()] == [f"At{n}.job" for n in range(1, 9)]
    log = [(r.job, r.status, r.exit_code, r.ts) for r in target.schedlgu() if r.job.endswith(".job")]
    assert len(log) == 10
    assert ("At6.job", "Finished", 2, datetime(2024, 3, 13, 21, 14, 12, tzinfo=timezone.utc)) in log


def test_dissect_tasks_plugin_trips_over_valid_content_of_this_image(targets):
    """What dissect 3.25.1 does with this machine's (valid) task files: it skips a task whose name
    has a dot, and raises on a ShowMessage action, on <Week>Last</Week> and on GPMC's
    %LocalTimeXmlEx% placeholder, so ``target.tasks()`` stops at the first of them."""
    target = targets["e01"]
    root = target.fs.path("sysvol/windows/system32/tasks")
    listed = {str(p).partition("/system32/tasks/")[2] for p in TasksPlugin(target).task_files}
    assert planted_task_files() - listed == {DOTTED_TASK.lstrip("\\")}
    with pytest.raises(TypeError, match="unexpected keyword argument 'action_type'"):
        list(ScheduledTasks(root.joinpath(MESSAGE_TASK.lstrip("\\"))).tasks[0].get_actions())
    with pytest.raises(ValueError, match="'Last'"):
        list(ScheduledTasks(root.joinpath(EMAIL_TASK.lstrip("\\"))).tasks[0].get_triggers())
    with pytest.raises(ValueError, match="%LocalTimeXmlEx%"):
        list(target.tasks())


def test_missing_tools_are_named_by_their_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(build.BuildError, match="apt-get install -y ewf-tools faketime fdisk ntfs-3g qemu-utils$"):
        build.check_tools()


def test_planted_times_never_pass_the_acquisition(windows_images):
    for task in all_tasks():
        assert max(task.times.created, task.times.modified, task.times.fn_created) < ACQUIRED, task.name
