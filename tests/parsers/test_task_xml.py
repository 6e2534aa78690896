"""Task XML parser against real task files (corpus) and crafted edge cases."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.parsers.task_xml import TaskXmlError, duration_seconds, parse_task_xml
from triage.records import Provenance
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

APT_VM = CORPUS / "AndrewRathbun__DFIRArtifactMuseum" / "Windows" / "ScheduledTasks" / "Win10" / "APTSimulatorVM"
ATOMIC = CORPUS / "redcanaryco__atomic-red-team" / "atomics" / "T1053.005" / "src"
BERLIN = ZoneInfo("Europe/Berlin")
NS = 'xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task"'


def parse(data: bytes, task: str = "\\t", tz=BERLIN):
    return parse_task_xml(data, task=task, provenance=Provenance(artifact="task_xml", location=task), local_tz=tz)


def utf16(text: str) -> bytes:
    return b"\xff\xfe" + text.encode("utf-16-le")


def task_doc(body: str) -> bytes:
    return utf16(f'<?xml version="1.0" encoding="UTF-16"?>\r\n<Task version="1.6" {NS}>{body}</Task>')


def apt_files() -> list[Path]:
    return sorted(p for p in APT_VM.rglob("*") if p.is_file())


def test_windows10_task_folder_parses_every_file_without_errors():
    files = apt_files()
    # PROVENANCE.md §3: 7 individually described APTSimulatorVM task files + 195 rows in the
    # "Windows/ScheduledTasks/Win10/APTSimulatorVM/Microsoft/**" table = 202 files.
    assert len(files) == 202
    definitions = [parse(p.read_bytes(), "\\" + "\\".join(p.relative_to(APT_VM).parts)) for p in files]
    assert [d.task for d in definitions if d.errors] == []
    assert not [d.task for d in definitions if any(t.kind == "unknown" for t in d.triggers)]
    assert all(d.actions for d in definitions)


def test_scheduled_defrag_exec_action():
    d = parse((APT_VM / "Microsoft" / "Windows" / "Defrag" / "ScheduledDefrag").read_bytes())
    assert d.uri == "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag"
    assert [(a.kind, a.command, a.arguments) for a in d.actions] == [
        ("exec", "%windir%\\system32\\defrag.exe", "-c -h -o -$")]
    assert (d.principal_id, d.user_id, d.run_level) == ("LocalSystem", "S-1-5-18", "HighestAvailable")
    assert d.security_descriptor == "D:AI(A;;FA;;;BA)(A;;FA;;;SY)(A;;FRFX;;;LS)(A;;FR;;;AU)"
    assert d.hidden is False and d.triggers == []


def test_gameover_mimikatz_task_with_local_time_converted():
    d = parse((APT_VM / "GameOver").read_bytes(), "\\GameOver")
    assert [(a.command, a.arguments) for a in d.actions] == [("C:\\TMP\\mim.exe", "sekurlsa::LogonPasswords > C:\\TMP\\o.txt")]
    assert d.author == "DESKTOP-TMKU40H\\TestUser" and d.run_level == "LeastPrivilege"
    # RegistrationInfo/Date 2022-03-10T15:59:03 has no offset: local time, CET = UTC+1 in March.
    assert (d.date.as_written, d.date.utc, d.date.basis, d.date.timezone) == (
        "2022-03-10T15:59:03", "2022-03-10T14:59:03Z", "local", "Europe/Berlin")
    assert [t.kind for t in d.triggers] == ["time"]
    assert (d.triggers[0].repetition_interval, d.triggers[0].repetition_seconds) == ("PT5M", 300)


def test_wnf_event_and_calendar_triggers_from_real_files():
    d = parse((APT_VM / "Microsoft" / "Windows" / "Subscription" / "LicenseAcquisition").read_bytes())
    assert [t.kind for t in d.triggers] == ["daily", "registration", "wnf"]
    daily = d.triggers[0]
    assert (daily.details["days_interval"], daily.details["random_delay"]) == (1, "PT8H")
    # Written with an explicit offset: converted with it, not with the machine zone.
    assert (daily.start.as_written, daily.start.utc, daily.start.basis) == ("2015-12-31T16:00:00-08:00", "2016-01-01T00:00:00Z", "offset")
    assert d.triggers[2].details["state_name"] == "7518BCA33E06830D"
    d = parse((APT_VM / "Microsoft" / "Windows" / "Windows Filtering Platform" / "BfeOnServiceStartTypeChange").read_bytes())
    assert d.triggers[0].kind == "event" and "<QueryList>" in d.triggers[0].details["subscription"]


def test_maps_toast_task_comhandler_hidden():
    d = parse((CORPUS / "fox-it__dissect.target" / "tests" / "_data" / "plugins" / "os" / "windows" / "tasks" / "MapsToastTask").read_bytes())
    # PROVENANCE.md: URI \Microsoft\Windows\Maps\MapsToastTask, Date 2014-11-05T00:00:00, Hidden true, ComHandler {9885AEF2-…}
    assert d.uri == "\\Microsoft\\Windows\\Maps\\MapsToastTask"
    assert d.author == "$(@%SystemRoot%\\system32\\mapstoasttask.dll,-600)"
    assert d.date.as_written == "2014-11-05T00:00:00"
    assert d.hidden is True
    assert [(a.kind, a.class_id) for a in d.actions] == [("comhandler", "{9885AEF2-BD9F-41E0-B15E-B3141395E803}")]


def test_atomic_wmi_task_logon_trigger():
    d = parse((ATOMIC / "T1053_005_WMI.xml").read_bytes())
    assert (d.uri, d.author, d.date.as_written) == ("\\T1053_005_WMI", "AtomicRedTeam", "2021-04-22T12:29:17")
    assert [t.kind for t in d.triggers] == ["logon"]
    assert [a.command for a in d.actions] == ["notepad.exe"]
    assert d.group_id == "S-1-5-32-545" and d.run_level == "LeastPrivilege"


def test_utf8_file_that_declares_utf16_still_parses():
    data = (ATOMIC / "T1053_05_SCTASK_HIDDEN_ATTRIB.xml").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b'encoding="UTF-16"' in data
    d = parse(data)
    assert d.errors == []
    assert (d.uri, d.hidden) == ("\\atomic red team", True)
    assert [a.command for a in d.actions] == ['C:\\Windows\\system32\\calc.exe"']
    without_bom = parse(data[3:])
    assert without_bom.uri == "\\atomic red team"


def test_every_action_kept_in_order_with_its_own_fields():
    d = parse(task_doc(
        '<Actions Context="Author">'
        "<Exec><Command>C:\\Windows\\System32\\notepad.exe</Command></Exec>"
        "<Exec><Command>C:\\Users\\Public\\evil.exe</Command><Arguments>-k</Arguments><WorkingDirectory>C:\\Users\\Public</WorkingDirectory></Exec>"
        "<ComHandler><ClassId>{11111111-2222-3333-4444-555555555555}</ClassId><Data><![CDATA[payload]]></Data></ComHandler>"
        "<SendEmail><Server>smtp.example.org</Server><Subject>s</Subject><To>a@example.org</To><Cc>c@example.org</Cc>"
        "<Bcc>b@example.org</Bcc><ReplyTo>r@example.org</ReplyTo><From>f@example.org</From><Body>hello</Body>"
        "<HeaderFields><HeaderField><Name>X-A</Name><Value>1</Value></HeaderField></HeaderFields>"
        "<Attachments><File>C:\\a.txt</File><File>C:\\b.txt</File></Attachments></SendEmail>"
        "<ShowMessage><Title>Hi</Title><Body>Message body</Body></ShowMessage>"
        "</Actions>"))
    assert [a.kind for a in d.actions] == ["exec", "exec", "comhandler", "sendemail", "showmessage"]
    assert [a.command for a in d.actions[:2]] == ["C:\\Windows\\System32\\notepad.exe", "C:\\Users\\Public\\evil.exe"]
    assert (d.actions[1].arguments, d.actions[1].working_directory) == ("-k", "C:\\Users\\Public")
    assert (d.actions[2].class_id, d.actions[2].data) == ("{11111111-2222-3333-4444-555555555555}", "payload")
    email = d.actions[3].details
    assert (email["server"], email["to"], email["cc"], email["bcc"], email["reply_to"], email["from"], email["body"]) == (
        "smtp.example.org", "a@example.org", "c@example.org", "b@example.org", "r@example.org", "f@example.org", "hello")
    assert email["attachments"] == ["C:\\a.txt", "C:\\b.txt"]
    assert email["header_fields"] == [{"name": "X-A", "value": "1"}]
    assert d.actions[4].details == {"title": "Hi", "body": "Message body"}
    assert d.details["actions_context"] == "Author"


def test_every_trigger_kind_and_calendar_variant():
    d = parse(task_doc(
        "<Triggers>"
        '<TimeTrigger id="t1"><StartBoundary>2024-07-01T03:00:00</StartBoundary><EndBoundary>2024-08-01T00:00:00Z</EndBoundary>'
        "<Repetition><Interval>PT1H30M</Interval><Duration>P1D</Duration><StopAtDurationEnd>true</StopAtDurationEnd></Repetition>"
        "<ExecutionTimeLimit>PT2H</ExecutionTimeLimit><RandomDelay>PT10M</RandomDelay></TimeTrigger>"
        "<CalendarTrigger><StartBoundary>2024-01-01T10:00:00+05:30</StartBoundary><ScheduleByDay><DaysInterval>2</DaysInterval></ScheduleByDay></CalendarTrigger>"
        "<CalendarTrigger><ScheduleByWeek><WeeksInterval>1</WeeksInterval><DaysOfWeek><Monday/><Friday/></DaysOfWeek></ScheduleByWeek></CalendarTrigger>"
        "<CalendarTrigger><ScheduleByMonth><DaysOfMonth><Day>1</Day><Day>Last</Day></DaysOfMonth><Months><January/><July/></Months></ScheduleByMonth></CalendarTrigger>"
        "<CalendarTrigger><ScheduleByMonthDayOfWeek><Weeks><Week>2</Week><Week>Last</Week></Weeks><DaysOfWeek><Sunday/></DaysOfWeek><Months><March/></Months></ScheduleByMonthDayOfWeek></CalendarTrigger>"
        "<BootTrigger><Enabled>false</Enabled><Delay>PT30S</Delay></BootTrigger>"
        "<LogonTrigger><UserId>CORP\\alice</UserId></LogonTrigger>"
        "<IdleTrigger/>"
        '<EventTrigger><Subscription>&lt;QueryList/&gt;</Subscription><Delay>PT1M</Delay><ValueQueries><Value name="pid">Event/System/Execution/@ProcessID</Value></ValueQueries></EventTrigger>'
        "<RegistrationTrigger><Delay>PT5M</Delay></RegistrationTrigger>"
        "<SessionStateChangeTrigger><StateChange>SessionUnlock</StateChange><UserId>S-1-5-21-1</UserId></SessionStateChangeTrigger>"
        "<WnfStateChangeTrigger><StateName>7508BCA3380C960C</StateName><Data>01</Data><DataOffset>0</DataOffset></WnfStateChangeTrigger>"
        "</Triggers>"))
    assert [t.kind for t in d.triggers] == ["time", "daily", "weekly", "monthly_date", "monthly_dow", "boot", "logon",
                                            "idle", "event", "registration", "session_state_change", "wnf"]
    time = d.triggers[0]
    assert time.trigger_id == "t1"
    assert (time.start.as_written, time.start.utc, time.start.basis) == ("2024-07-01T03:00:00", "2024-07-01T01:00:00Z", "local")
    assert (time.end.utc, time.end.basis) == ("2024-08-01T00:00:00Z", "utc")
    assert (time.repetition_interval, time.repetition_seconds, time.repetition_duration) == ("PT1H30M", 5400, "P1D")
    assert time.details["stop_at_duration_end"] is True
    assert (time.details["execution_time_limit"], time.details["random_delay"]) == ("PT2H", "PT10M")
    assert (d.triggers[1].details["days_interval"], d.triggers[1].start.utc) == (2, "2024-01-01T04:30:00Z")
    assert d.triggers[2].details["days_of_week"] == ["Monday", "Friday"]
    assert (d.triggers[3].details["days_of_month"], d.triggers[3].details["months"]) == ([1, "Last"], ["January", "July"])
    assert d.triggers[4].details["weeks_of_month"] == [2, "Last"] and d.triggers[4].details["days_of_week"] == ["Sunday"]
    assert (d.triggers[5].enabled, d.triggers[5].delay) == (False, "PT30S")
    assert d.triggers[6].user_id == "CORP\\alice"
    assert d.triggers[8].details["subscription"] == "<QueryList/>"
    assert d.triggers[8].details["value_queries"] == {"pid": "Event/System/Execution/@ProcessID"}
    assert d.triggers[10].details["state_change"] == "SessionUnlock" and d.triggers[10].user_id == "S-1-5-21-1"
    assert (d.triggers[11].details["state_name"], d.triggers[11].details["data"], d.triggers[11].details["data_offset"]) == (
        "7508BCA3380C960C", "01", "0")


def test_unknown_trigger_and_element_kept_raw_and_rest_parsed():
    d = parse(task_doc(
        "<Triggers><FutureTrigger><Magic>1</Magic></FutureTrigger><CalendarTrigger><ScheduleByYear/></CalendarTrigger>"
        "<BootTrigger/></Triggers><Surprise a=\"1\">x</Surprise>"
        "<Actions><Exec><Command>a.exe</Command></Exec><Teleport><To>mars</To></Teleport></Actions>"))
    assert [t.kind for t in d.triggers] == ["unknown", "unknown", "boot"]
    assert d.triggers[0].details["raw_xml"] == "<FutureTrigger><Magic>1</Magic></FutureTrigger>"
    assert [a.kind for a in d.actions] == ["exec", "unknown"]
    assert d.actions[1].details["raw_xml"] == "<Teleport><To>mars</To></Teleport>"
    assert d.details["unknown_elements"] == ['<Surprise a="1">x</Surprise>']


def test_all_settings_kept_with_booleans_decoded():
    d = parse(task_doc(
        "<Settings><Enabled>0</Enabled><Hidden>1</Hidden><AllowStartOnDemand>true</AllowStartOnDemand>"
        "<IdleSettings><Duration>PT10M</Duration><WaitTimeout>PT1H</WaitTimeout><StopOnIdleEnd>true</StopOnIdleEnd></IdleSettings>"
        "<NetworkSettings><Name>corp</Name><Id>{0}</Id></NetworkSettings><RestartOnFailure><Interval>PT1M</Interval><Count>3</Count></RestartOnFailure>"
        "<MultipleInstancesPolicy>Parallel</MultipleInstancesPolicy><ExecutionTimeLimit>PT0S</ExecutionTimeLimit><Priority>4</Priority>"
        "<DeleteExpiredTaskAfter>P30D</DeleteExpiredTaskAfter><MaintenanceSettings><Period>P1D</Period><Deadline>P2D</Deadline><Exclusive>true</Exclusive></MaintenanceSettings>"
        "<UseUnifiedSchedulingEngine>true</UseUnifiedSchedulingEngine><DisallowStartOnRemoteAppSession>false</DisallowStartOnRemoteAppSession>"
        "<WakeToRun>true</WakeToRun><RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable></Settings>"))
    assert (d.enabled, d.hidden) == (False, True)
    s = d.settings
    assert s["IdleSettings"] == {"Duration": "PT10M", "WaitTimeout": "PT1H", "StopOnIdleEnd": True}
    assert s["NetworkSettings"] == {"Name": "corp", "Id": "{0}"}
    assert s["RestartOnFailure"] == {"Interval": "PT1M", "Count": "3"}
    assert s["MaintenanceSettings"] == {"Period": "P1D", "Deadline": "P2D", "Exclusive": True}
    assert (s["Priority"], s["DeleteExpiredTaskAfter"], s["UseUnifiedSchedulingEngine"], s["WakeToRun"]) == ("4", "P30D", True, True)


def test_principal_fields_and_required_privileges():
    d = parse(task_doc(
        '<Principals><Principal id="LocalService"><UserId>S-1-5-19</UserId><LogonType>ServiceAccount</LogonType>'
        "<ProcessTokenSidType>Unrestricted</ProcessTokenSidType><RequiredPrivileges><Privilege>SeDebugPrivilege</Privilege>"
        "<Privilege>SeImpersonatePrivilege</Privilege></RequiredPrivileges></Principal></Principals>"
        '<Actions Context="LocalService"><Exec><Command>x</Command></Exec></Actions>'))
    assert (d.principal_id, d.user_id, d.logon_type) == ("LocalService", "S-1-5-19", "ServiceAccount")
    assert d.details["process_token_sid_type"] == "Unrestricted"
    assert d.details["required_privileges"] == ["SeDebugPrivilege", "SeImpersonatePrivilege"]


def test_time_without_zone_is_kept_unconverted():
    d = parse(task_doc("<RegistrationInfo><Date>2021-03-03T10:00:00.1234567</Date></RegistrationInfo>"), tz=None)
    assert (d.date.utc, d.date.as_written, d.date.basis, d.date.precision) == (
        None, "2021-03-03T10:00:00.1234567", "local-unconverted", "100ns")


@pytest.mark.parametrize("text,seconds", [
    ("PT30M", 1800), ("P1D", 86400), ("PT1H30M", 5400), ("P1DT12H", 129600), ("PT0.5S", 0), ("PT1.5S", 2),
    ("P1W", 604800), ("PT0S", 0), ("-PT5M", -300), ("P", None), ("PT", None), ("30M", None), ("", None), (None, None),
])
def test_iso8601_durations(text, seconds):
    assert duration_seconds(text) == seconds


def test_external_entity_is_refused_without_reading_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    doc = f'<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY x SYSTEM "file://{secret}">]><Task {NS}><RegistrationInfo><Author>&x;</Author></RegistrationInfo></Task>'
    with pytest.raises(TaskXmlError, match="DOCTYPE/entity declarations are not allowed") as info:
        parse(utf16(doc))
    assert "TOPSECRET" not in str(info.value)


def test_billion_laughs_is_refused():
    lol = "".join(f'<!ENTITY lol{i} "{"&lol%d;" % (i - 1) * 10}">' for i in range(1, 10))
    doc = f'<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY lol0 "lol">{lol}]><Task><Data>&lol9;</Data></Task>'
    with pytest.raises(TaskXmlError, match="DOCTYPE/entity declarations are not allowed"):
        parse(doc.encode())


@pytest.mark.parametrize("data,message", [
    (b"", "malformed XML"),
    (utf16("<Task><Actions></Task>"), "malformed XML"),
    (b"<NotATask/>", "root element is <NotATask>"),
    (b"\x00\x01\x02garbage", "malformed XML"),
])
def test_malformed_documents_raise_task_xml_error(data, message):
    with pytest.raises(TaskXmlError, match=message):
        parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_raise_only_task_xml_error(data):
    try:
        parse(data)
    except TaskXmlError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/= \"'abcTaskExecCommand&;!-[]?xml")), max_size=200))
def test_xml_like_text_raises_only_task_xml_error(text):
    for data in (text.encode("utf-8"), utf16(text)):
        try:
            parse(data)
        except TaskXmlError:
            pass
