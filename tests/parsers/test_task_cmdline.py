"""Task-creating command lines read with Windows' own quoting rules, on real logged command lines."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from test_images import windows_tree
from triage.evtx_reader import EvtxReader
from triage.parsers.evtx_task import task_event
from triage.parsers.task_cmdline import (
    decode_powershell,
    parse_powershell_task,
    parse_task_command,
    split_command_line,
)

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
ATTACK = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"


# The examples of Microsoft's "Parsing C++ command-line arguments" table, which CommandLineToArgvW follows.
@pytest.mark.parametrize("tail,expected", [
    ('"abc" d e', ["abc", "d", "e"]),
    (r'a\\b d"e f"g h', [r"a\\b", "de fg", "h"]),
    (r'a\\\"b c d', [r'a\"b', "c", "d"]),
    (r'a\\\\"b c" d e', [r"a\\b c", "d", "e"]),
    ('a"b"" c d', ['ab" c d']),
])
def test_arguments_split_as_commandlinetoargvw_does(tail, expected):
    assert split_command_line("prog.exe " + tail) == ["prog.exe", *expected]


def test_program_name_keeps_backslashes_and_ends_at_first_unquoted_space():
    assert split_command_line(r'"C:\Program Files\x\y.exe"\z a') == [r"C:\Program Files\x\y.exe\z", "a"]


def test_quoted_task_name_inside_cmd_c_is_one_task_without_the_closing_quote():
    found = parse_task_command('cmd /C "schtasks /create /xml x.xml /tn NAME"')
    assert (found.task, found.xml_file, found.operation) == ("NAME", "x.xml", "create")


def test_every_schtasks_create_switch_is_read():
    found = parse_task_command(
        r'schtasks.exe /create /s OTHERHOST /u CORP\adm /p Secret1 /ru SYSTEM /rp x /sc MINUTE /mo 3 /st 09:30 '
        r'/sd 01/02/2024 /tn "\Microsoft\Windows\Updater" /tr "\"C:\Program Files\Vendor App\app.exe\" -q -n 2" /rl HIGHEST /f')
    assert found.task == r"\Microsoft\Windows\Updater"
    assert (found.command, found.arguments) == (r"C:\Program Files\Vendor App\app.exe", "-q -n 2")
    assert (found.schedule, found.modifier, found.repetition_seconds) == ("MINUTE", "3", 180)
    assert (found.start_time, found.start_date) == ("09:30", "01/02/2024")
    assert (found.run_as, found.run_as_password_given, found.run_level) == ("SYSTEM", True, "HighestAvailable")
    assert (found.remote_host, found.remote_user, found.force) == ("OTHERHOST", r"CORP\adm", True)


def test_at_command_with_remote_host_and_interactive_switch():
    found = parse_task_command(r"at \\FS01 23:15 /interactive /every:M,T cmd.exe /c C:\x.bat")
    assert (found.tool, found.remote_host, found.start_time, found.interactive) == ("at", "FS01", "23:15", True)
    assert (found.command, found.arguments, found.schedule) == ("cmd.exe", r"/c C:\x.bat", "every:M,T")


def test_register_scheduledtask_script_block_with_variables():
    script = ("$a = New-ScheduledTaskAction -Execute 'C:\\Users\\Public\\run.bat'\n"
              "$t = New-ScheduledTaskTrigger -Once -At 1am -RepetitionInterval (New-TimeSpan -Minutes 2)\n"
              "$p = New-ScheduledTaskPrincipal -UserId 'NT AUTHORITY\\SYSTEM' -RunLevel Highest\n"
              "Register-ScheduledTask -TaskName 'Updater' -TaskPath '\\Microsoft\\Windows\\' -Action $a -Trigger $t -Principal $p")
    found = parse_powershell_task(script)
    assert found.task == r"\Microsoft\Windows\Updater"
    assert (found.command, found.repetition_seconds, found.run_as, found.run_level) == (
        r"C:\Users\Public\run.bat", 120, r"NT AUTHORITY\SYSTEM", "HighestAvailable")


def test_encoded_command_of_the_built_image_decodes_to_its_download_cradle():
    decoded = decode_powershell(f"powershell.exe -NoP -W Hidden -EncodedCommand {windows_tree.ENCODED_CRADLE}")
    assert decoded == windows_tree.DOWNLOAD_CRADLE
    short = base64.b64encode("whoami".encode("utf-16-le")).decode()
    assert decode_powershell(f"pwsh -ec {short}") == "whoami"
    assert decode_powershell("powershell -enc !!notbase64!!") is None


def test_commands_that_define_no_task_give_none_or_no_definition():
    assert parse_task_command("notepad.exe C:\\schtasks.txt") is None
    assert parse_task_command("schtasks /run /tn X").operation == "run"
    assert parse_task_command("") is None


# Every schtasks/at command line logged in the public attack samples: (log, task, action program, seconds).
REAL = [
    ("Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx", r"\MSOFFICE_", "mshta.exe", 3600),
    ("Privilege Escalation/sysmon_1_11_exec_as_system_via_schedtask.evtx", r"\elevator", None, None),
    ("AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx", r"\DataUsageHandlers", None, None),
    ("AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx", r"\mysc", r"C:\windows\system32\calc.exe", None),
    ("Execution/sysmon_exec_from_vss_persistence.evtx", r"\eyNQLDvUSuvVPg",
     r"\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopy7\\Windows\Temp\svhost64.exe", 60),
]


def _events(relative: str):
    path = ATTACK / relative
    with path.open("rb") as fh:
        for record in EvtxReader(fh, str(path), on_problem=lambda *_: None):
            event = task_event(record.fields, location=str(path))
            if event is not None:
                yield event


@pytest.mark.parametrize("log,task,program,seconds", REAL)
def test_real_logged_creations_become_command_line_definitions(log, task, program, seconds):
    rebuilt = [e.definition for e in _events(log) if e.definition is not None]
    assert rebuilt and {d.task for d in rebuilt} == {task}
    definition = rebuilt[0]
    assert definition.source == "command_line"
    assert (definition.actions[0].command if definition.actions else None) == program
    repetition = [t.repetition_seconds for t in definition.triggers if t.repetition_seconds]
    assert (repetition[0] if repetition else None) == seconds
    assert "schtasks" in definition.details["created_by_command"].lower()


def test_atomic_quoted_name_is_read_as_windows_reads_it():
    """``/TN " Atomic "task`` is the one argument `` Atomic task`` (quotes end mid-word); the name
    drops the leading blank as the task path would."""
    assert parse_task_command('SCHTASKS /Create /S localhost /TN " Atomic "task /TR cmd.exe').task == "Atomic task"
    names = {e.task for e in _events("AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx") if e.task}
    assert names == {r"\Atomic task", r"\spawn"}
    assert not any(name.endswith('"') for name in names)


@pytest.mark.parametrize("unit", ['\\\\\\"', '"', "cmd /c ", "/tn ", "-e AAAA ", "$a = New-ScheduledTaskAction -Execute x\n"])
def test_work_grows_linearly_with_hostile_input(unit):
    """Ten times the input may cost at most about ten times the work (quadratic would be a hundred)."""
    import time

    def cost(size: int) -> float:
        text = "schtasks /create /tn " + unit * (size // len(unit)) + " Register-ScheduledTask -TaskName x"
        best = float("inf")
        for _ in range(3):
            started = time.process_time()  # CPU time: other processes' load does not count
            parse_task_command(text), parse_powershell_task(text), decode_powershell("powershell " + text)
            best = min(best, time.process_time() - started)
        return best

    small, large = cost(50_000), cost(500_000)
    assert large / max(small, 1e-6) < 30
