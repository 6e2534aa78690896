"""GPO Preferences ScheduledTasks.xml parser: the real dissect test file and crafted V2/immediate items."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_images.gpp import encrypt_cpassword
from triage.parsers.gpp import GppError, decrypt_cpassword, parse_gpp_scheduled_tasks
from triage.records import Provenance
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

DISSECT_GPP = (CORPUS / "fox-it__dissect.target" / "tests" / "_data" / "plugins" / "os" / "windows" / "adpolicy"
               / "{CC63F200-7309-4ba0-B154-A71CD118DBCC}" / "USER" / "Preferences" / "ScheduledTasks" / "ScheduledTasks.xml")
UTC = ZoneInfo("UTC")


def parse(data: bytes, tz=UTC):
    return parse_gpp_scheduled_tasks(data, path="ScheduledTasks.xml",
                                     provenance=Provenance(artifact="gpp", location="ScheduledTasks.xml"), local_tz=tz)


def test_dissect_legacy_task_item():
    [d] = parse(DISSECT_GPP.read_bytes())
    # PROVENANCE.md: task Test2, action U (update), appName C:\\Windows\\winhlp32.exe, triggers IDLE and LOGON.
    assert (d.task, d.source, d.details["gpp_item"], d.details["gpp_action"]) == ("\\Test2", "gpp", "Task", "update")
    assert [a.command for a in d.actions] == ["C:\\\\Windows\\\\winhlp32.exe"]
    assert [t.kind for t in d.triggers] == ["idle", "logon"]
    assert [t.details["gpp_trigger"]["type"] for t in d.triggers] == ["IDLE", "LOGON"]
    assert d.triggers[0].start.as_written == "2023-05-01 16:00"
    assert d.enabled is True
    assert [(s.meaning, s.utc) for s in d.stamps] == [("gpp_item_changed", "2023-05-02T01:14:42Z")]
    assert d.details["gpp_item_attributes"]["uid"] == "{300BF27B-1140-4A5E-8D98-AE907CEF30FE}"


def test_known_published_cpassword_decrypts():
    # The example from Microsoft's MS14-025 era write-ups (Get-GPPPassword documentation).
    assert decrypt_cpassword("j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76ZwgdHdhw") == "Local*P4ssword!"


def test_v2_and_immediate_items_with_cpassword():
    secret = encrypt_cpassword("Winter2024!")
    doc = f"""<?xml version="1.0" encoding="utf-8"?>
<ScheduledTasks clsid="{{CC63F200-7309-4ba0-B154-A71CD118DBCC}}">
  <TaskV2 clsid="{{D8896631-B747-47a7-84A6-C155337F3BC8}}" name="Updater" changed="2024-02-03 04:05:06" uid="{{A}}">
    <Properties action="C" name="Updater" runAs="CORP\\svc_deploy" logonType="Password" cpassword="{secret}">
      <Task version="1.2">
        <RegistrationInfo><Author>CORP\\admin</Author></RegistrationInfo>
        <Principals><Principal id="Author"><UserId>CORP\\svc_deploy</UserId><LogonType>Password</LogonType></Principal></Principals>
        <Settings><Enabled>true</Enabled><Hidden>true</Hidden></Settings>
        <Triggers><CalendarTrigger><StartBoundary>2024-02-04T09:00:00</StartBoundary><ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay></CalendarTrigger></Triggers>
        <Actions Context="Author"><Exec><Command>powershell.exe</Command><Arguments>-enc AAAA</Arguments></Exec></Actions>
      </Task>
    </Properties>
  </TaskV2>
  <ImmediateTaskV2 clsid="{{9756B581-76EC-4169-9AFC-0CA8D43ADB5F}}" name="Now" uid="{{B}}" disabled="1">
    <Properties action="R" name="Now" runAs="NT AUTHORITY\\System" logonType="S4U">
      <Task version="1.3"><Actions><Exec><Command>cmd.exe</Command><Arguments>/c whoami</Arguments></Exec></Actions></Task>
    </Properties>
  </ImmediateTaskV2>
  <ImmediateTask clsid="{{9F6A9BB5-3D56-4F53-8F5D-E5B2B0B6B1A0}}" name="Legacy" uid="{{C}}">
    <Properties action="U" name="Legacy" appName="C:\\tools\\a.exe" args="-x" startIn="C:\\tools" comment="c" runAs="CORP\\bob" cpassword="not base64!"/>
  </ImmediateTask>
</ScheduledTasks>"""
    updater, now, legacy = parse(doc.encode("utf-8"), tz=ZoneInfo("Europe/Paris"))
    assert (updater.task, updater.details["gpp_item"], updater.details["gpp_action"]) == ("\\Updater", "TaskV2", "create")
    assert updater.details["cpassword_decrypted"] == "Winter2024!"
    assert updater.details["run_as"] == "CORP\\svc_deploy" and updater.user_id == "CORP\\svc_deploy"
    assert (updater.author, updater.hidden, updater.logon_type) == ("CORP\\admin", True, "Password")
    assert [(a.command, a.arguments) for a in updater.actions] == [("powershell.exe", "-enc AAAA")]
    assert (updater.triggers[0].kind, updater.triggers[0].start.utc) == ("daily", "2024-02-04T08:00:00Z")
    assert (now.details["immediate"], now.details["gpp_item_disabled"], now.details["gpp_action"]) == (True, True, "replace")
    assert [a.command for a in now.actions] == ["cmd.exe"] and now.user_id == "NT AUTHORITY\\System"
    assert [(a.command, a.arguments, a.working_directory) for a in legacy.actions] == [("C:\\tools\\a.exe", "-x", "C:\\tools")]
    assert legacy.details["immediate"] is True
    assert legacy.errors == ["cpassword of CORP\\bob: cpassword is not base64: Only base64 data is allowed"]
    assert "cpassword_decrypted" not in legacy.details


def test_wrong_root_and_hostile_dtd_raise_gpp_error():
    with pytest.raises(GppError, match="root element is <Task>"):
        parse(b"<Task/>")
    with pytest.raises(GppError, match="DOCTYPE/entity declarations are not allowed"):
        parse(b'<?xml version="1.0"?><!DOCTYPE S [<!ENTITY e SYSTEM "http://example.org/x">]><ScheduledTasks>&e;</ScheduledTasks>')


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_raise_only_gpp_error(data):
    try:
        parse(data)
    except GppError:
        pass
