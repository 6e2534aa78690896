"""IOC files in, matches out: the planted WS-FIN-042 intrusion, real corpus logs and a memory image."""

from __future__ import annotations

import base64

import pytest

from tests.intel.conftest import (
    BEACON_DLL_SHA256, EXPECTED, SAMPLES, VELOCIRAPTOR, triage_run,
)
from test_images import windows_tree as tree
from triage.intel import decoded_powershell, load_iocs, match_records
from triage.taskpath import normalise_task_path


def _by_source(case) -> dict[str, str]:
    """Record location → definition source, to tell task file from TaskCache matches apart."""
    return {d.provenance.location: d.source for d in case.definitions}


def _matches(case, iocs) -> set[tuple[str, str, str, str]]:
    sources = _by_source(case)
    names = {e.key: e.task for e in case.entities}
    return {(names[m.task], m.observed.field, m.indicator.value, sources[m.observed.location])
            for m in match_records(case.entities, case.events, case.processes, iocs.indicators)}


def test_stix_bundle_matches_exactly_the_planted_tasks_and_fields(plain_windows_case, ioc_files):
    iocs = load_iocs([ioc_files["stix"]])
    assert _matches(plain_windows_case, iocs) == EXPECTED
    assert iocs.skipped == [f"{ioc_files['stix']}: STIX object 6 (indicator--00000000-0000-4000-8000-000000000007): "
                            "email-addr:value = is not matched"]


def test_csv_matches_exactly_the_same_tasks_and_fields(plain_windows_case, ioc_files):
    iocs = load_iocs([ioc_files["csv"]])
    assert len(iocs.indicators) == 8
    assert _matches(plain_windows_case, iocs) == EXPECTED
    exfil = next(i for i in iocs.indicators if i.value == "10.1.2.3")
    assert (exfil.kind, exfil.origin, exfil.label) == ("ip", "scenario.csv line 9", "exfil share, finance")


def test_ioc_hit_raises_risk_and_names_indicator_field_and_value(plain_windows_case, stix_windows_case):
    before = {f.task: f for f in plain_windows_case.findings}
    after = {f.task: f for f in stix_windows_case.findings}
    assert before[tree.BEACON_TASK].risk_level == "High" and after[tree.BEACON_TASK].risk_level == "Critical"
    assert before[tree.DOTTED_TASK].risk_level == "Medium" and after[tree.DOTTED_TASK].risk_level == "High"
    assert before[tree.SCRIPT_TASK].risk_level == after[tree.SCRIPT_TASK].risk_level == "High"  # no indicator
    beacon = after[tree.BEACON_TASK]
    assert beacon.title.startswith("Matches 3 threat-intelligence indicator(s): ")
    dll_hash = [e for e in beacon.evidence if e.value == BEACON_DLL_SHA256]
    assert [e.location for e in dll_hash] == [
        r"sysvol/Windows/System32/Tasks/MicrosoftEdgeUpdateTaskMachineQA [action 1 argument file C:\Users\Public\Libraries\msedge_elf.dll sha256]",
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tasks\{D8EFCA8A-055C-5B07-BB05-4FCE5CDAEC91} "
        r"[action 1 argument file C:\Users\Public\Libraries\msedge_elf.dll sha256]"]
    assert dll_hash[0].source == (f"IOC sha256 '{BEACON_DLL_SHA256}' (scenario.stix.json "
                                  "indicator--00000000-0000-4000-8000-000000000003: beacon DLL or theme DLL)")
    # no finding is added: every match is on a task that already had one
    assert len(after) == len(before)


def test_action_binaries_are_hashed_from_the_image(plain_windows_case):
    beacon = next(d for d in plain_windows_case.definitions if d.task == tree.BEACON_TASK and d.source == "task_xml")
    assert beacon.actions[0].details["files"] == [{
        "path": r"C:\Users\Public\Libraries\msedge_elf.dll", "size": 71, "md5": "9e5e06a74a2ce7f49a9053cd0bc3c07a",
        "sha1": "7e94e66d9dbed49be145f0c7b794351481a2eb50", "sha256": BEACON_DLL_SHA256, "role": "argument"}]
    # a system binary the image does not hold stays unhashed, without a gap
    defrag = next(d for d in plain_windows_case.definitions if d.task == r"\Microsoft\Windows\Defrag\ScheduledDefrag")
    assert "files" not in defrag.actions[0].details


def test_encoded_powershell_is_decoded_and_other_e_switches_are_not():
    assert decoded_powershell(f"-NoP -W Hidden -EncodedCommand {tree.ENCODED_CRADLE}") == [tree.DOWNLOAD_CRADLE]
    short = base64.b64encode("Write-Host hi".encode("utf-16-le")).decode()
    assert decoded_powershell(f"powershell -ec {short}") == ["Write-Host hi"]
    assert decoded_powershell(f"powershell -ExecutionPolicy {short}") == []


@pytest.mark.usefixtures("corpus")
def test_indicator_outside_any_task_is_a_finding_of_its_own(tmp_path):
    iocs = tmp_path / "at.csv"
    iocs.write_text("filename,at.exe,legacy at usage\n", encoding="utf-8")
    case, _ = triage_run([SAMPLES / "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx"], [iocs])
    own = [f for f in case.findings if f.task == "(no task) IOC filename at.exe"]
    assert len(own) == 1
    assert (own[0].risk_level, own[0].host, own[0].rule) == ("High", "MSEDGEWIN10", "ioc")
    assert [(e.value, e.time) for e in own[0].evidence] == [(r"C:\Windows\System32\at.exe", "2019-07-19T14:57:46.094355Z")]


def test_memory_process_command_line_matches_through_decoded_powershell(tmp_path):
    from test_images.memimage import CRADLE, build_memory_image
    from triage.collect import Context
    from triage.run import run

    built = build_memory_image(tmp_path / "mem", "win10")
    iocs = tmp_path / "c2.csv"
    iocs.write_text("ip-dst,185.220.101.47,cradle host\n", encoding="utf-8")
    ctx = Context(quiet=True, options={"symbols": str(built["symbols"]), "iocs": load_iocs([iocs])})
    case = run([], ctx, memory_paths=[str(built["image"])], hunt_date="20240514")
    found = sorted((m.task, m.observed.field, m.observed.value)
                   for m in match_records(case.entities, case.events, case.processes, ctx.options["iocs"].indicators))
    key = normalise_task_path(r"\WinUpdateCheck")
    assert found == [(key, "action 1 arguments (decoded -EncodedCommand)", CRADLE),
                     (key, "process command line (decoded -EncodedCommand)", CRADLE)]


@pytest.mark.usefixtures("corpus")
def test_event_command_lines_match_on_corpus_logs(tmp_path):
    iocs = tmp_path / "names.csv"
    iocs.write_text("text,MSOFFICE_\ndomain,hotelesms.com\n", encoding="utf-8")
    case, _ = triage_run([SAMPLES / "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx",
                          VELOCIRAPTOR / "SecurityTasks.evtx"], [iocs])
    found = sorted((m.task, m.observed.field, m.indicator.value)
                   for m in match_records(case.entities, case.events, case.processes, load_iocs([iocs]).indicators))
    assert found == [("\\msoffice_", "action 1 arguments", "hotelesms.com"),  # the /tr rebuilt as a definition
                     ("\\msoffice_", "event command line", "MSOFFICE_"),
                     ("\\msoffice_", "event command line", "hotelesms.com"),
                     ("\\msoffice_", "event task name", "MSOFFICE_"),  # Sysmon 1 (schtasks) and 11 (task file)
                     ("\\msoffice_", "event task name", "MSOFFICE_"),
                     ("\\msoffice_", "task name", "MSOFFICE_"),
                     ("\\msoffice_", "task path", "MSOFFICE_")]


def test_cron_lines_at_jobs_and_timers_match_the_c2_address(tmp_path):
    from test_images import linux_scenario as linux
    from test_images.build_linux import build_linux, missing_tools

    if missing_tools():
        pytest.skip(f"Linux image tools missing: {missing_tools()}")
    built = build_linux(tmp_path / "linux")
    iocs = tmp_path / "c2.csv"
    iocs.write_text("ip-dst,203.0.113.50,web-prod-07 C2\n", encoding="utf-8")
    case, _ = triage_run([built["tar"]], [iocs])
    found = {(m.observed.field, m.observed.value)
             for m in match_records(case.entities, case.events, case.processes, load_iocs([iocs]).indicators)}
    assert found == {("cron command", linux.REVERSE_SHELL), ("cron command", linux.CURL_BASH),
                     ("cron command", linux.WWW_DATA_CMD), ("systemd_timer command", linux.TIMER_CMD),
                     ("at command", linux.AT_ROOT_CMD), ("at command", linux.AT_ALICE_CMD),
                     # the cron log lines that ran them (syslog CMD entries) carry the same commands
                     ("event command line", linux.REVERSE_SHELL), ("event command line", linux.CURL_BASH),
                     ("event command line", linux.WWW_DATA_CMD)}
