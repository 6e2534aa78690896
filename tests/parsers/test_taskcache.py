"""TaskCache Actions/Triggers/DynamicInfo decoding.

Real values: shared/corpus/taskcache-values; every literal asserted below is the value its
PROVENANCE.md ("Decoded contents") gives for that file, cited per test.
"""

from __future__ import annotations

import copy
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import CORPUS as SHARED_CORPUS
from tests.linear_time import assert_linear
from test_images.taskcache_blobs import (
    GHOSTTASK,
    WINDOWS,
    comhandler_action,
    default_settings,
    email_action,
    encode_actions,
    encode_actions_blob,
    encode_dynamic_info,
    encode_triggers,
    exec_action,
    filetime,
    generic_trigger,
    ghosttask_triggers,
    job_bucket,
    message_action,
    time_trigger,
    triggers_blob,
    user_info,
)
from triage.parsers.taskcache import (
    TERMINATOR,
    UNINITIALISED,
    OptionalSettings,
    TaskCacheError,
    action_records,
    decode_actions,
    decode_dynamic_info,
    decode_triggers,
    dynamic_info_stamps,
    principal_facts,
    settings_facts,
    trigger_records,
)
from triage.timeutil import filetime_to_datetime

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

CORPUS = SHARED_CORPUS / "taskcache-values"
USER_SID = "S-1-5-21-3262475209-2374237165-4262510312-1000"  # CASE-PC\case in the GDATA samples


def real(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def all_real(suffix: str) -> list[str]:
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob(f"*/*__{suffix}.bin"))


def local(ts) -> datetime:
    """Wall-clock value of a TsTime / FILETIME as written (no zone applied)."""
    return filetime_to_datetime(ts.filetime if hasattr(ts, "filetime") else ts).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------
# Real values decode to their last byte


@pytest.mark.parametrize("name", all_real("Triggers"))
def test_every_real_triggers_value_decodes_to_its_last_byte(name):
    data = real(name)
    blob = decode_triggers(data)
    assert blob.errors == []
    assert blob.consumed == len(data)


@pytest.mark.parametrize("name", all_real("Actions") + all_real("DynamicInfo"))
def test_every_real_actions_and_dynamic_info_value_decodes_cleanly(name):
    data = real(name)
    blob = decode_actions(data) if name.endswith("Actions.bin") else decode_dynamic_info(data)
    assert blob.errors == []
    if name.endswith("Actions.bin"):
        assert blob.consumed == len(data)
    else:
        assert blob.size == len(data) and blob.extra_hex is None


def test_real_corpus_holds_the_counts_provenance_lists():
    # PROVENANCE "Counts": 8 DynamicInfo, 13 Triggers, 2 Actions.
    assert (len(all_real("DynamicInfo")), len(all_real("Triggers")), len(all_real("Actions"))) == (8, 13, 2)


# --- Actions (PROVENANCE: 0xlane_reinject blog values) ----------------------------------------


def test_win10_actions_v3_has_context_and_exec_flags():
    blob = decode_actions(real("0xlane_reinject/blog-win10-cmd-notepad__Actions.bin"))
    # "version 3, context "Author"; one Exec action: id "", command "cmd.exe", arguments "/c notepad.exe",
    #  working directory "", flags 0."
    assert (blob.version, blob.context, blob.layout_variant) == (3, "Author", "v3")
    [act] = blob.actions
    assert (act.kind, act.action_id, act.command, act.arguments, act.working_directory, act.flags) == (
        "exec", "", "cmd.exe", "/c notepad.exe", "", 0)


def test_win81_actions_v1_has_no_context_and_no_exec_flags():
    blob = decode_actions(real("0xlane_reinject/blog-win81-cmd-notepad__Actions.bin"))
    # "version 1, no context string ... working directory "c:\windows\", no trailing u16 flags. Parses to the last byte."
    assert (blob.version, blob.context, blob.consumed) == (1, None, 84)
    [act] = blob.actions
    assert (act.command, act.arguments, act.working_directory, act.flags) == ("cmd.exe", "/c notepad.exe", "c:\\windows\\", None)
    [record] = action_records(blob)
    assert record.command_line == "cmd.exe /c notepad.exe"
    assert record.working_directory == "c:\\windows\\"


# --- DynamicInfo ------------------------------------------------------------------------------


def stamps(name: str) -> dict[str, str]:
    return {s.meaning: s.utc for s in dynamic_info_stamps(decode_dynamic_info(real(name)))}


def test_dynamic_info_28_byte_win7_regrippy_sample():
    info = decode_dynamic_info(real("airbus-cert_regrippy/3DC1692F-C720-4D79-BC69-9032ABF0CB22__DynamicInfo.bin"))
    # "0x04 = 2021-12-13 09:09:18.3888389 UTC (registered); 0x0C = 2022-02-16 09:08:18.0064415 UTC (last run);
    #  0x14 = 0; 0x18 = 0 (no error). 28 bytes, so no 0x1C FILETIME."
    assert (info.size, info.magic, info.status_0x14, info.status_0x18, info.last_successful_run) == (28, 3, 0, 0, None)
    assert stamps("airbus-cert_regrippy/3DC1692F-C720-4D79-BC69-9032ABF0CB22__DynamicInfo.bin") == {
        "registered": "2021-12-13T09:09:18.388838Z",
        "last_run": "2022-02-16T09:08:18.006441Z",
    }


def test_dynamic_info_hresult_at_0x18_in_win10_error_sample():
    name = "gdata_winreg-tasks/TestDynamicInfo_Read_WithErrorCode__DynamicInfo.bin"
    info = decode_dynamic_info(real(name))
    # "0x14 = 0; 0x18 = 0x80070002 (file not found); 0x1C = 2022-02-07 15:07:21.3348068 UTC"
    assert (info.status_0x14, info.status_0x18) == (0, 0x80070002)
    assert stamps(name) == {
        "registered": "2022-02-07T14:49:43.269424Z",
        "last_run": "2022-02-07T16:19:59.569579Z",
        "last_successful_run": "2022-02-07T15:07:21.334806Z",
    }


def test_dynamic_info_success_sample_has_no_error_and_later_success():
    name = "gdata_winreg-tasks/TestDynamicInfo_Read_WithSuccess__DynamicInfo.bin"
    info = decode_dynamic_info(real(name))
    assert (info.status_0x14, info.status_0x18) == (0, 0)
    assert stamps(name) == {
        "registered": "2022-02-07T14:49:43.269424Z",
        "last_run": "2022-02-07T16:20:39.477493Z",
        "last_successful_run": "2022-02-07T16:20:39.993394Z",
    }


def test_dynamic_info_hresult_at_0x14_in_libyal_vista_and_win8_samples():
    # "doc-win7-sample2: 0x14 = 0x8007042B (ERROR_PROCESS_ABORTED); 0x18 = 0"
    vista = decode_dynamic_info(real("libyal_winreg-kb/doc-win7-sample2__DynamicInfo.bin"))
    assert (vista.size, vista.status_0x14, vista.status_0x18) == (28, 0x8007042B, 0)
    assert stamps("libyal_winreg-kb/doc-win7-sample2__DynamicInfo.bin") == {
        "registered": "2006-11-02T13:01:49.747586Z",
        "last_run": "2008-11-22T06:25:02.721008Z",
    }
    # "doc-win8-10-sample3: 0x14 = 0x80070420; 0x18 = 0; 0x1C = 2013-09-20 16:06:05.4922658 UTC"
    win8 = decode_dynamic_info(real("libyal_winreg-kb/doc-win8-10-sample3__DynamicInfo.bin"))
    assert (win8.size, win8.status_0x14, win8.status_0x18) == (36, 0x80070420, 0)
    assert stamps("libyal_winreg-kb/doc-win8-10-sample3__DynamicInfo.bin") == {
        "registered": "2012-07-26T07:22:12.417389Z",
        "last_run": "2013-09-20T16:05:49.347490Z",
        "last_successful_run": "2013-09-20T16:06:05.492265Z",
    }


def test_dynamic_info_never_run_samples_have_only_a_creation_time():
    # "0x0C = 0 (never run)" for both Win7 libyal values; 0xlane 36-byte value has 0x0C..0x1C all 0.
    assert stamps("libyal_winreg-kb/doc-win7-sample1__DynamicInfo.bin") == {"registered": "2009-07-14T04:53:53.661238Z"}
    assert stamps("libyal_winreg-kb/test-DYNAMIC_INFO_DATA__DynamicInfo.bin") == {"registered": "2009-07-14T04:53:47.312026Z"}
    assert stamps("0xlane_reinject/blog-win81-or-win10__DynamicInfo.bin") == {"registered": "2023-11-06T19:33:32.045000Z"}


# --- Triggers ---------------------------------------------------------------------------------


def test_win10_time_trigger_blob_header_bucket_and_user():
    blob = decode_triggers(real("0xlane_reinject/blog-win10-cmd-notepad__Triggers.bin"), ZoneInfo("Europe/Berlin"))
    bucket = blob.job_bucket
    # "v0x17; start 2023-11-14 15:58:00 (is_localized=1); flags 0x42412138; crc32 0x386CF965; principal "Author";
    #  display_name ""; user S-1-5-21-2146493349-1640112132-851775531-1001 "DESKTOP-PLUIHNI\thin0"; optional settings 0x2C;
    #  one Time trigger, once, repeat every 1200 s, enabled; empty trigger id + 4x0x48."
    assert blob.version == 0x17
    assert blob.start_boundary.is_localized and local(blob.start_boundary) == datetime(2023, 11, 14, 15, 58)
    assert (bucket.flags, bucket.crc32, bucket.principal_id, bucket.display_name) == (0x42412138, 0x386CF965, "Author", "")
    assert (bucket.user.sid, bucket.user.username) == ("S-1-5-21-2146493349-1640112132-851775531-1001", "DESKTOP-PLUIHNI\\thin0")
    assert bucket.settings_length == 0x2C
    [trig] = blob.triggers
    assert (trig.kind, trig.mode, trig.repetition_interval, trig.enabled, trig.trigger_id) == ("time", 0, 1200, True, "")
    assert blob.layout[-1].label == "trigger[0].id.pad" and blob.layout[-1].data == b"HHHH"
    [record] = trigger_records(blob)
    # localized wall clock 15:58 in Berlin (CET, UTC+1) is 14:58 UTC; kept as written
    assert (record.kind, record.start.utc, record.start.basis, record.repetition_interval) == ("time", "2023-11-14T14:58:00Z", "local", "PT20M")


def test_win81_triggers_v15_have_no_principal_and_no_trigger_id():
    blob = decode_triggers(real("0xlane_reinject/blog-win81-cmd-notepad__Triggers.bin"))
    # "v0x15; start 2023-11-16 19:28:00 (is_localized=1); flags 0x43412138; crc32 0x14F793DA; no principal/display name;
    #  user S-1-5-21-241654993-3350658047-580244164-1001 "workflow\thin0"; ... repeat every 60 s indefinitely; no trigger id."
    bucket = blob.job_bucket
    assert (blob.version, bucket.flags, bucket.crc32, bucket.principal_id, bucket.display_name) == (0x15, 0x43412138, 0x14F793DA, None, None)
    assert local(blob.start_boundary) == datetime(2023, 11, 16, 19, 28)
    assert (bucket.user.sid, bucket.user.username) == ("S-1-5-21-241654993-3350658047-580244164-1001", "workflow\\thin0")
    [trig] = blob.triggers
    assert (trig.kind, trig.mode, trig.repetition_interval, trig.repetition_duration, trig.trigger_id) == ("time", 0, 60, 0, None)
    assert principal_facts(blob)["run_level"] == "HighestAvailable"


def test_username_with_three_nuls_is_stripped_and_re_encoded_exactly():
    data = real("0xlane_reinject/blog2021-dumped-normal-task__Triggers.bin")
    blob = decode_triggers(data)
    # "user S-1-5-21-700021777-1075774025-667928839-1000 "TECHLIU1057\techliu" (the bstr length 0x2C includes two extra NULs)"
    assert (blob.job_bucket.user.sid, blob.job_bucket.user.username) == ("S-1-5-21-700021777-1075774025-667928839-1000", "TECHLIU1057\\techliu")
    [nul] = [item for item in blob.layout if item.label == "user.username.nul"]
    assert nul.data == b"\0" * 6
    assert (blob.job_bucket.crc32, local(blob.start_boundary)) == (0xF3CBC3DF, datetime(2021, 1, 8, 19, 24))
    assert encode_triggers(blob) == data


def test_win7_regrippy_triggers_with_privileges_settings():
    blob = decode_triggers(real("airbus-cert_regrippy/3DC1692F-C720-4D79-BC69-9032ABF0CB22__Triggers.bin"))
    bucket = blob.job_bucket
    # "version 0x15; start boundary 2021-12-13 09:08:18 (is_localized=0), end = never; JobBucket flags 0x00412148 (StopOnIdleEnd,
    #  StartWhenAvailable, AllowStartOnDemand, IgnoreNew, InteractiveToken, Enabled); crc32 0x5DDDE380; user SID
    #  S-1-5-21-1984967591-1763810894-2029770238-1001 (type 1), username "John-PC\John"; optional settings length 0x38: idle 600 s,
    #  idle wait 3600 s, execution limit 2100 s (PT35M), priority 7, privileges bitmask 0; one Time trigger mode 1 daily every 1 day"
    assert (blob.version, blob.start_boundary.is_localized, local(blob.start_boundary)) == (0x15, False, datetime(2021, 12, 13, 9, 8, 18))
    assert blob.end_boundary.filetime == 0xFFFFFFFFFFFFFFFF
    assert bucket.flag_names == ["StopOnIdleEnd", "StartWhenAvailable", "AllowStartOnDemand", "ExecuteIgnoreNew", "LogonTypeInteractiveToken", "Enabled"]
    assert (bucket.crc32, bucket.user.sid_type, bucket.user.sid, bucket.user.username) == (
        0x5DDDE380, 1, "S-1-5-21-1984967591-1763810894-2029770238-1001", "John-PC\\John")
    s = bucket.settings
    assert (s.length, s.idle_duration, s.idle_wait_timeout, s.execution_time_limit, s.priority, s.privileges) == (0x38, 600, 3600, 2100, 7, 0)
    assert settings_facts(blob)["execution_time_limit"] == "PT35M"
    [record] = trigger_records(blob)
    assert (record.kind, record.details["days_interval"], record.start.utc, record.enabled) == ("daily", 1, "2021-12-13T09:08:18Z", True)


def test_boot_trigger_sample():
    blob = decode_triggers(real("gdata_winreg-tasks/TestBootTrigger__Triggers.bin"))
    # "v0x17; principal "Author"; user CASE-PC\case; one Boot trigger (0xFFFF), enabled, no delay."
    assert (blob.job_bucket.principal_id, blob.job_bucket.user.username) == ("Author", "CASE-PC\\case")
    [trig] = blob.triggers
    assert (trig.magic, trig.kind, trig.enabled, trig.delay) == (0xFFFF, "boot", True, 0)


def test_two_event_triggers_with_xpath_subscriptions():
    blob = decode_triggers(real("gdata_winreg-tasks/TestEventTrigger__Triggers.bin"))
    # "optional settings restart every 600 s x 15. Two Event triggers (0xCCCC). (1) delay 60 s, timeout 86400 s, repeat 120 s
    #  for 180 s, stop at duration end; ... EventID=1234. (2) ... WDAG-PolicyEvaluator-GP/Operational ... Both are followed by
    #  u32 0, u32 0, an empty string and 0 value queries."
    assert (blob.job_bucket.settings.restart_delay, blob.job_bucket.settings.restart_retries) == (600, 15)
    first, second = blob.triggers
    assert (first.kind, first.delay, first.timeout, first.repetition_interval, first.repetition_duration, first.stop_at_duration_end) == (
        "event", 60, 86400, 120, 180, True)
    assert 'Path="Microsoft-User Experience Virtualization-Agent Driver/Operational"' in first.subscription
    assert first.subscription.endswith("EventID=1234]]</Select></Query></QueryList>")
    assert "Microsoft-Windows-WDAG-PolicyEvaluator-GP/Operational" in second.subscription and "Computer='case-pc'" in second.subscription
    for trig in (first, second):
        assert (trig.event_unknown1, trig.event_unknown2, trig.event_unknown_text, trig.value_queries) == (0, 0, "", [])


def test_disabled_logon_trigger_for_one_user():
    blob = decode_triggers(real("gdata_winreg-tasks/TestLogonTrigger-a__Triggers.bin"), ZoneInfo("UTC"))
    # "start boundary 2022-04-07 01:02:03 (is_localized=1), end 2023-04-04 03:06:07 (is_localized=0); One Logon trigger for
    #  CASE-PC\case: delay 30 s, timeout 0xE10 (3600 s), repeat every 300 s for 900 s, enabled=0 (disabled trigger)."
    assert local(blob.start_boundary) == datetime(2022, 4, 7, 1, 2, 3)
    [trig] = blob.triggers
    assert (trig.kind, trig.delay, trig.timeout, trig.repetition_interval, trig.repetition_duration, trig.enabled) == ("logon", 30, 3600, 300, 900, False)
    assert (trig.user.username, trig.user.sid) == ("CASE-PC\\case", USER_SID)
    assert trig.end.is_localized is False and local(trig.end) == datetime(2023, 4, 4, 3, 6, 7)
    [record] = trigger_records(blob)
    assert (record.enabled, record.delay, record.user_id, record.end.utc, record.end.basis) == (False, "PT30S", USER_SID, "2023-04-04T03:06:07Z", "utc")


def test_hidden_localsystem_logon_trigger_with_extra_flag_0x20000():
    blob = decode_triggers(real("gdata_winreg-tasks/TestLogonTrigger-b__Triggers.bin"))
    bucket = blob.job_bucket
    # "flags 0x03C2084A (RunOnlyIfIdle, StopOnIdleEnd, StartWhenAvailable, StopExisting, 0x20000, Enabled, Hidden,
    #  RunLevelHighest, Task); crc32 0x9B0A4CA3; principal "LocalSystem"; user SID S-1-5-18 (type 5), username "";
    #  optional settings 0x2C, priority 9; one Logon trigger for any user (skip_user=1), enabled."
    assert bucket.flags == 0x03C2084A and bucket.unknown_flag_bits == 0
    assert bucket.flag_names == ["RunOnlyIfIdle", "StopOnIdleEnd", "StartWhenAvailable", "ExecuteStopExisting",
                                 "LogonTypeServiceAccount", "Enabled", "Hidden", "RunLevelHighest", "Task"]
    assert (bucket.crc32, bucket.principal_id, bucket.user.sid_type, bucket.user.sid, bucket.user.username) == (0x9B0A4CA3, "LocalSystem", 5, "S-1-5-18", "")
    assert (bucket.settings.length, bucket.settings.priority) == (0x2C, 9)
    [trig] = blob.triggers
    assert (trig.kind, trig.enabled, trig.user.skip_user) == ("logon", True, True)
    facts = principal_facts(blob)
    assert (facts["hidden"], facts["enabled"], facts["run_level"], facts["logon_type"], facts["user_id"]) == (True, True, "HighestAvailable", "ServiceAccount", "S-1-5-18")


def test_session_state_change_trigger():
    blob = decode_triggers(real("gdata_winreg-tasks/TestSessionBasedTrigger__Triggers.bin"))
    # "one SessionStateChange trigger (0x7777), state 2 (console disconnect), for user CASE-PC\case."
    [trig] = blob.triggers
    assert (trig.kind, trig.session_state, trig.user.username) == ("session_state_change", 2, "CASE-PC\\case")
    assert trigger_records(blob)[0].details["state_change"] == "ConsoleDisconnect"


def test_wnf_data_is_unpadded_and_optional_settings_length_zero():
    data = real("gdata_winreg-tasks/TestStateChangeTrigger__Triggers.bin")
    blob = decode_triggers(data)
    # "flags 0x42421138 (Queue, 0x20000, Enabled, Task ...); principal "LocalSystem", SID S-1-5-18; optional settings length 0;
    #  two WNF triggers (0x6666): state names 7518bca32b188341 (data 01) and 7528bca32b188341 (data 03). The value is 370 bytes
    #  ... the second trigger starts at unaligned offset 0x109."
    assert len(data) == 370 and blob.consumed == 370
    assert (blob.job_bucket.flags, blob.job_bucket.principal_id, blob.job_bucket.user.sid) == (0x42421138, "LocalSystem", "S-1-5-18")
    assert (blob.job_bucket.settings_length, blob.job_bucket.settings) == (0, None)
    assert [(t.kind, t.wnf_state_name, t.wnf_data) for t in blob.triggers] == [
        ("wnf", "7518bca32b188341", "01"), ("wnf", "7528bca32b188341", "03")]
    assert blob.triggers[1].offset == 0x109


def test_five_time_triggers_cover_every_schedule_mode():
    blob = decode_triggers(real("gdata_winreg-tasks/TestTimeTrigger__Triggers.bin"), ZoneInfo("UTC"))
    # "start boundary 2022-04-08 18:25:31 (is_localized=1); flags 0x43412138; crc32 0xC66E747F. Five Time triggers: (1) once;
    #  (2) daily every 3 days, repeat every 3600 s for 43200 s, stop at duration end; (3) weekly every 4 weeks on DOW 0x62
    #  (Mon, Fri, Sat), end 2023-04-08 18:25:43, repeat 900 s for 1 day; (4) monthly, day bitmap 0x080621C1, month bitmap 0x194;
    #  (5) monthly DOW: DOW 0x38, weeks 0xC, months 0x522. All enabled, no trigger ids."
    assert (blob.job_bucket.flags, blob.job_bucket.crc32) == (0x43412138, 0xC66E747F)
    assert local(blob.start_boundary) == datetime(2022, 4, 8, 18, 25, 31)
    once, daily, weekly, monthly, monthly_dow = blob.triggers
    assert (daily.data1, daily.repetition_interval, daily.repetition_duration, daily.stop_at_duration_end) == (3, 3600, 43200, True)
    assert (weekly.data1, weekly.data2, weekly.repetition_interval, weekly.repetition_duration) == (4, 0x62, 900, 86400)
    assert local(weekly.end) == datetime(2023, 4, 8, 18, 25, 43)
    assert ((monthly.data2 << 16) | monthly.data1, monthly.data3) == (0x080621C1, 0x194)
    assert (monthly_dow.data1, monthly_dow.data2, monthly_dow.data3) == (0x38, 0xC, 0x522)
    assert all(t.enabled and t.trigger_id == "" for t in blob.triggers)
    records = trigger_records(blob)
    assert [r.kind for r in records] == ["time", "daily", "weekly", "monthly_date", "monthly_dow"]
    assert records[0].start.utc == "2022-04-08T18:25:31Z"
    assert records[1].repetition_interval == "PT1H" and records[1].repetition_duration == "PT12H"
    assert records[2].details["days_of_week"] == ["Monday", "Friday", "Saturday"] and records[2].details["weeks_interval"] == 4
    assert records[3].details["days_of_month"] == [1, 7, 8, 9, 14, 18, 19, 28]
    assert records[3].details["months"] == ["March", "May", "August", "September"]
    assert records[4].details == {**records[4].details, "days_of_week": ["Wednesday", "Thursday", "Friday"],
                                  "weeks_of_month": ["Third", "Fourth"], "months": ["February", "June", "September", "November"]}


def test_trigger_parser_sample_logon_boot_logon():
    blob = decode_triggers(real("gdata_winreg-tasks/TestTriggerParser__Triggers.bin"))
    bucket = blob.job_bucket
    # "no start boundary, end never; flags 0x42412138; crc32 0xE9391DFB; principal "Author"; display_name ""; user
    #  S-1-5-21-3262475209-2374237165-4262510312-1000 "CASE-PC\case"; optional settings 0x2C (idle wait 0xFFFFFFFF, execution
    #  limit 259200 s, priority 7). Triggers: (1) Logon for user CASE-PC\case, (2) Boot, (3) Logon with any user (skip_user=1),
    #  delay 900 s, repeat every 3600 s for 86400 s, execution limit 259200 s. All enabled."
    assert (blob.start_boundary.filetime, blob.end_boundary.filetime) == (0, 0xFFFFFFFFFFFFFFFF)
    assert (bucket.flags, bucket.crc32, bucket.principal_id, bucket.display_name, bucket.user.sid, bucket.user.username) == (
        0x42412138, 0xE9391DFB, "Author", "", USER_SID, "CASE-PC\\case")
    assert (bucket.settings.idle_wait_timeout, bucket.settings.execution_time_limit, bucket.settings.priority) == (0xFFFFFFFF, 259200, 7)
    first, boot, any_user = blob.triggers
    assert (first.kind, first.user.username, boot.kind, any_user.kind, any_user.user.skip_user) == ("logon", "CASE-PC\\case", "boot", "logon", True)
    assert (any_user.delay, any_user.repetition_interval, any_user.repetition_duration, any_user.timeout) == (900, 3600, 86400, 259200)
    assert all(t.enabled for t in blob.triggers)


def test_group_principal_with_extra_flag_0x8000_and_empty_wnf_data():
    blob = decode_triggers(real("gdata_winreg-tasks/TestUnknownTrigger__Triggers.bin"))
    bucket = blob.job_bucket
    # "flags 0x02C085C8 (StopOnIdleEnd, StartWhenAvailable, RunOnlyIfNetwork, AllowStartOnDemand, Parallel, 0x8000, Enabled,
    #  Hidden, Task); principal "User"; user SID S-1-5-4 (INTERACTIVE, type 5), username ""; optional settings: execution limit 0,
    #  priority 10, restart 43200 s x 10. Triggers: (1) Logon of any user, delay 900 s; (2) WNF 7540bca33e0b8441, no data;
    #  (3) WNF 75f8bca33e06830d, no data."
    assert bucket.flags == 0x02C085C8
    assert "LogonTypeGroup" in bucket.flag_names and "Hidden" in bucket.flag_names
    assert (bucket.principal_id, bucket.user.sid, bucket.user.sid_type, bucket.user.username) == ("User", "S-1-5-4", 5, "")
    s = bucket.settings
    assert (s.execution_time_limit, s.priority, s.restart_delay, s.restart_retries) == (0, 10, 43200, 10)
    logon, wnf1, wnf2 = blob.triggers
    assert (logon.kind, logon.user.skip_user, logon.delay) == ("logon", True, 900)
    assert [(t.wnf_state_name, t.wnf_data) for t in (wnf1, wnf2)] == [("7540bca33e0b8441", ""), ("75f8bca33e06830d", "")]
    assert principal_facts(blob)["logon_type"] == "Group"


# --- GhostTask fingerprint inputs ---------------------------------------------------------------


@pytest.mark.parametrize("name", all_real("Triggers"))
def test_real_windows_triggers_have_0x48_filler_and_non_zero_uninitialised_padding(name):
    blob = decode_triggers(real(name))
    # PROVENANCE contradiction 4: 0x48 filler everywhere, uninitialised memory in tstime/trigger pads.
    assert blob.filler_all_0x48 is True
    assert blob.uninitialised_padding_all_zero is False


def test_ghosttask_triggers_show_the_fingerprints():
    data = ghosttask_triggers(USER_SID, mode="daily", hour=22, minute=30)
    blob = decode_triggers(data)
    assert blob.errors == [] and blob.consumed == len(data)
    assert blob.job_bucket.crc32 == 0
    assert blob.job_bucket.user.username == ""
    assert blob.uninitialised_padding_all_zero is True
    assert blob.filler_all_0x48 is True
    [trig] = blob.triggers
    assert (trig.kind, trig.mode, trig.data1) == ("time", 1, 1)
    assert local(trig.start) == datetime(1992, 5, 1, 22, 30)


def test_windows_style_encoder_differs_from_real_values_only_in_uninitialised_bytes():
    for name in all_real("Triggers"):
        data = real(name)
        blob = decode_triggers(data)
        # keep only the strings' recorded NULs (one real username has three); every pad comes from the style
        rewritten = encode_triggers(blob, style=WINDOWS, layout=[i for i in blob.layout if i.kind == TERMINATOR])
        assert len(rewritten) == len(data), name
        uninit = {i for item in blob.layout if item.kind == UNINITIALISED for i in range(item.offset, item.offset + len(item.data))}
        differing = {i for i in range(len(data)) if data[i] != rewritten[i]}
        assert differing <= uninit, name
        assert decode_triggers(rewritten).uninitialised_padding_all_zero is False


def test_windows_style_tstime_padding_holds_the_systemtime_of_the_start_date():
    data = real("0xlane_reinject/blog-win10-cmd-notepad__Triggers.bin")
    rewritten = encode_triggers(decode_triggers(data), layout=[])
    # real value: 01 | 07 0b 00 00 00 0e 00 for a localized start of 2023-11-14
    assert rewritten[8:16] == data[8:16] == bytes.fromhex("01070b0000000e00")


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("name", all_real("Triggers") + all_real("Actions") + all_real("DynamicInfo"))
def test_real_values_re_encode_to_the_same_bytes(name):
    data = real(name)
    if name.endswith("Triggers.bin"):
        assert encode_triggers(decode_triggers(data)) == data
    elif name.endswith("Actions.bin"):
        assert encode_actions_blob(decode_actions(data)) == data
    else:
        info = decode_dynamic_info(data)
        assert encode_dynamic_info(info.created, info.last_run, info.status_0x14, info.status_0x18, info.last_successful_run) == data


ALL_ACTIONS = [
    exec_action("C:\\Windows\\System32\\cmd.exe", "/c whoami", "C:\\Temp", action_id="first"),
    comhandler_action("{61BCD1B9-340C-40EC-9D41-D7F1C0632F05}", "MissingCredentials"),
    email_action("a@example.org", "b@example.org", "subject", "body text", "smtp.example.org", cc="c@example.org",
                 attachments=["C:\\a.txt", "C:\\b.txt"], headers=[("X-One", "1"), ("X-Two", "2")], action_id="mail"),
    message_action("Caption", "Content of the message", action_id="msg"),
    exec_action("powershell.exe", "-enc AAAA"),
]


def test_every_action_kind_with_ids_round_trips_in_version_3():
    data = encode_actions(ALL_ACTIONS, version=3, context="Author")
    blob = decode_actions(data)
    assert (blob.errors, blob.consumed, blob.version, blob.context) == ([], len(data), 3, "Author")
    assert blob.actions == ALL_ACTIONS
    records = action_records(blob)
    assert [r.kind for r in records] == ["exec", "comhandler", "sendemail", "showmessage", "exec"]
    assert records[0].action_id == "first" and records[4].command_line == "powershell.exe -enc AAAA"
    assert records[1].class_id == "{61BCD1B9-340C-40EC-9D41-D7F1C0632F05}" and records[1].data == "MissingCredentials"
    assert records[2].details["attachments"] == ["C:\\a.txt", "C:\\b.txt"] and records[2].details["to"] == "b@example.org"
    assert records[3].details["caption"] == "Caption"


def test_version_1_actions_round_trip_without_context_or_flags():
    actions = [exec_action("cmd.exe", "/c a", "c:\\", flags=None), exec_action("b.exe", flags=None)]
    blob = decode_actions(encode_actions(actions, version=1, context=None))
    assert (blob.layout_variant, blob.context, blob.actions) == ("v1", None, actions)


def test_version_2_actions_decode_with_and_without_context_string():
    # GhostTask (Server 2016) writes version 2 with the context and without Exec flags; GDATA's ksy reads no context.
    actions = [exec_action("evil.exe", "-x", flags=None)]
    with_context = decode_actions(encode_actions(actions, version=2, context="Author"))
    without_context = decode_actions(encode_actions(actions, version=2, context=None))
    assert (with_context.layout_variant, with_context.context, with_context.actions) == ("v2-context", "Author", actions)
    assert (without_context.layout_variant, without_context.context, without_context.actions) == ("v2-no-context", None, actions)
    flagged = [exec_action("evil.exe", "-x", flags=0)]
    assert decode_actions(encode_actions(flagged, version=2, context="Author", exec_flags=True)).actions == flagged


def _bucket(**kw):
    return job_bucket(user_info(USER_SID, "CASE-PC\\case"), crc32=0x12345678, **kw)


TRIGGER_SETS = {
    "time_modes": [
        time_trigger(datetime(2024, 3, 1, 9, 0), mode="once", repetition_interval=600, repetition_duration=3600),
        time_trigger(datetime(2024, 3, 1, 9, 0), mode="daily", interval=2, random_delay=120),
        time_trigger(datetime(2024, 3, 1, 9, 0), mode="weekly", interval=1, days_of_week=0x22, end=datetime(2025, 1, 1)),
        time_trigger(datetime(2024, 3, 1, 9, 0), mode="monthly_date", days_of_month=0x40000001, months=0xFFF),
        time_trigger(datetime(2024, 3, 1, 9, 0), mode="monthly_dow", days_of_week=0x41, weeks_of_month=0x10, months=0x3, trigger_id="T5"),
    ],
    "generic_kinds": [
        generic_trigger("boot", delay=30),
        generic_trigger("logon", user=user_info(USER_SID, "CASE-PC\\case"), trigger_id="logon-1"),
        generic_trigger("logon"),
        generic_trigger("idle"),
        generic_trigger("registration", delay=60, enabled=False),
        generic_trigger("session_state_change", session_state=5, user=user_info(None, "CASE-PC\\case")),
        generic_trigger("event", subscription="<QueryList><Query Id=\"0\"><Select Path=\"System\">*</Select></Query></QueryList>",
                        value_queries=[("Name", "Event/EventData/Data[@Name='x']"), ("Other", "Event/System/EventID")]),
        generic_trigger("wnf", wnf_state_name="7518bca32b188341", wnf_data=b"\x01\x02\x03"),
        generic_trigger("wnf", wnf_state_name="7528bca32b188341", wnf_data=b""),
        generic_trigger("boot"),
    ],
}
SETTINGS_VARIANTS = {
    "none": None,
    "0x2c": default_settings(),
    "0x38": OptionalSettings(length=0x38, idle_duration=1, idle_wait_timeout=2, execution_time_limit=3, delete_expired_after=4,
                             priority=5, restart_delay=6, restart_retries=7, network_id="{11111111-2222-3333-4444-555555555555}",
                             privileges=0x20 | 0x100000),
    "0x58": OptionalSettings(length=0x58, idle_duration=0, idle_wait_timeout=0, execution_time_limit=0, delete_expired_after=0,
                             priority=7, restart_delay=0, restart_retries=0, network_id="{00000000-0000-0000-0000-000000000000}",
                             privileges=0x1000000000, periodicity=(0, 0, 0, 1, 0, 0, 0), deadline=(0, 0, 0, 2, 0, 0, 0), exclusive=1),
}


@pytest.mark.parametrize("style", [WINDOWS, GHOSTTASK])
@pytest.mark.parametrize("version", [0x15, 0x16, 0x17])
@pytest.mark.parametrize("set_name", sorted(TRIGGER_SETS))
@pytest.mark.parametrize("settings_name", sorted(SETTINGS_VARIANTS))
def test_encoded_triggers_decode_to_the_same_blob(style, version, set_name, settings_name):
    triggers = copy.deepcopy(TRIGGER_SETS[set_name])
    settings_block = copy.deepcopy(SETTINGS_VARIANTS[settings_name])
    bucket = _bucket(settings=settings_block)
    if settings_block is None:  # optional settings length 0, as in the real StateChange value
        bucket.settings_length, bucket.settings = 0, None
    blob = triggers_blob(triggers, bucket, version=version)
    data = encode_triggers(blob, style=style)
    decoded = decode_triggers(data)
    assert decoded.errors == [] and decoded.consumed == len(data)
    assert decoded == blob
    assert decoded.uninitialised_padding_all_zero is (style == GHOSTTASK)


def test_wnf_trigger_with_odd_data_is_followed_by_an_unaligned_trigger():
    blob = triggers_blob(TRIGGER_SETS["generic_kinds"][7:], _bucket())
    decoded = decode_triggers(encode_triggers(blob))
    wnf, empty, boot = decoded.triggers
    assert (wnf.wnf_data, empty.offset - wnf.offset) == ("010203", 8 + 72 + 8 + 8 + 8 + 3)
    assert boot.offset % 8 == 3


def test_trigger_records_for_encoded_kinds():
    blob = decode_triggers(encode_triggers(triggers_blob(TRIGGER_SETS["generic_kinds"], _bucket())))
    records = trigger_records(blob)
    assert [r.kind for r in records] == ["boot", "logon", "logon", "idle", "registration", "session_state_change", "event", "wnf", "wnf", "boot"]
    assert records[0].delay == "PT30S" and records[1].trigger_id == "logon-1" and records[1].user_id == USER_SID
    assert records[4].enabled is False
    assert records[5].details["state_change"] == "SessionLock" and records[5].user_id == "CASE-PC\\case"
    assert records[6].details["value_queries"] == [["Name", "Event/EventData/Data[@Name='x']"], ["Other", "Event/System/EventID"]]


def test_dynamic_info_both_forms_round_trip():
    created, last = filetime(datetime(2024, 1, 2, 3, 4, 5)), filetime(datetime(2024, 2, 3, 4, 5, 6))
    short = decode_dynamic_info(encode_dynamic_info(created, last, 0x8007042B, 0, None))
    long = decode_dynamic_info(encode_dynamic_info(created, last, 0, 0x80070002, last + 10_000_000))
    assert (short.size, short.created, short.last_run, short.status_0x14, short.last_successful_run, short.errors) == (28, created, last, 0x8007042B, None, [])
    assert (long.size, long.status_0x18, long.last_successful_run, long.errors) == (36, 0x80070002, last + 10_000_000, [])
    assert [s.utc for s in dynamic_info_stamps(long)] == ["2024-01-02T03:04:05Z", "2024-02-03T04:05:06Z", "2024-02-03T04:05:07Z"]


# ---------------------------------------------------------------------------------------------
# volatility3's decoder on the same bytes


@pytest.fixture(scope="module")
def vol3():
    import volatility3.framework

    volatility3.framework.require_interface_version(2, 0, 0)
    from volatility3.plugins.windows.registry import scheduled_tasks

    return scheduled_tasks


@pytest.mark.parametrize("name", all_real("Triggers"))
def test_volatility3_agrees_on_principal_user_and_trigger_count(vol3, name):
    data = real(name)
    ours = decode_triggers(data)
    theirs = vol3.TriggerSet.decode(data)
    assert theirs.job_bucket.crc32 == ours.job_bucket.crc32
    assert theirs.job_bucket.principal_id == (ours.job_bucket.principal_id or None)
    assert theirs.job_bucket.user_info.sid == ours.job_bucket.user.sid
    assert theirs.job_bucket.user_info.username == (ours.job_bucket.user.username or None)
    assert len(theirs.triggers) == len(ours.triggers)
    assert [t.enabled for t in theirs.triggers] == [t.enabled for t in ours.triggers]


def test_volatility3_swaps_creation_and_last_run_time(vol3):
    data = real("airbus-cert_regrippy/3DC1692F-C720-4D79-BC69-9032ABF0CB22__DynamicInfo.bin")
    theirs = vol3.DynamicInfo.decode(data)
    ours = stamps("airbus-cert_regrippy/3DC1692F-C720-4D79-BC69-9032ABF0CB22__DynamicInfo.bin")
    # PROVENANCE: registered 2021-12-13, last run 2022-02-16; vol3 reports them the other way round
    assert theirs.creation_time.date().isoformat() == "2022-02-16"
    assert theirs.last_run_time.date().isoformat() == "2021-12-13"
    assert (ours["registered"][:10], ours["last_run"][:10]) == ("2021-12-13", "2022-02-16")
    # and agrees on the last successful run (0x1C) where it exists
    win10 = "gdata_winreg-tasks/TestDynamicInfo_Read_WithErrorCode__DynamicInfo.bin"
    assert vol3.DynamicInfo.decode(real(win10)).last_successful_run_time.isoformat()[:19] == stamps(win10)["last_successful_run"][:19]


def test_volatility3_misses_the_hresult_at_0x14(vol3):
    data = real("libyal_winreg-kb/doc-win7-sample2__DynamicInfo.bin")
    assert vol3.DynamicInfo.decode(data).last_error_code == 0
    assert decode_dynamic_info(data).status_0x14 == 0x8007042B


def test_volatility3_loses_email_actions(vol3):
    data = encode_actions([email_action("a@example.org", "b@example.org", "s", "b", "smtp"), exec_action("cmd.exe", "/c x")])
    theirs = vol3.ActionSet.decode(data)
    assert theirs.actions[0] is None  # the e-mail action is built but never returned
    assert theirs.actions[1].action == "cmd.exe"
    ours = decode_actions(data)
    assert [a.kind for a in ours.actions] == ["sendemail", "exec"] and ours.actions[0].to == "b@example.org"


def test_volatility3_labels_idle_and_registration_triggers_logon(vol3):
    data = encode_triggers(triggers_blob([generic_trigger("idle"), generic_trigger("registration")], _bucket()))
    assert [t.trigger_type.name for t in vol3.TriggerSet.decode(data).triggers] == ["Logon", "Logon"]
    assert [t.kind for t in decode_triggers(data).triggers] == ["idle", "registration"]


def test_volatility3_cannot_tell_time_trigger_modes_apart(vol3):
    data = real("gdata_winreg-tasks/TestTimeTrigger__Triggers.bin")
    assert [t.description for t in vol3.TriggerSet.decode(data).triggers] == [None] * 5
    assert [r.kind for r in trigger_records(decode_triggers(data))] == ["time", "daily", "weekly", "monthly_date", "monthly_dow"]


def test_volatility3_agrees_on_real_actions(vol3):
    for name in all_real("Actions"):
        data = real(name)
        theirs = vol3.ActionSet.decode(data)
        ours = decode_actions(data)
        assert theirs.context == ours.context
        assert [(a.action, a.action_args) for a in theirs.actions] == [(a.command, a.arguments) for a in ours.actions]


# ---------------------------------------------------------------------------------------------
# Hostile input


@pytest.mark.parametrize("name", all_real("Triggers") + all_real("Actions") + all_real("DynamicInfo"))
def test_every_truncation_of_a_real_value_is_flagged_not_raised(name):
    data = real(name)
    decoder = decode_triggers if "Triggers" in name else decode_actions if "Actions" in name else decode_dynamic_info
    full = decoder(data)
    # a cut exactly between two triggers/actions, or a 36-byte DynamicInfo cut to 28, is itself a well-formed value
    if "DynamicInfo" in name:
        boundaries = {28} if len(data) == 36 else set()
    else:
        items = full.triggers if "Triggers" in name else full.actions
        boundaries = {item.offset for item in items[1:]} | ({items[0].offset} if "Triggers" in name else set())
    for length in range(len(data)):
        blob = decoder(data[:length])
        assert blob.raw_hex == data[:length].hex()
        assert bool(blob.errors) != (length in boundaries), (name, length, blob.errors)


def test_truncated_triggers_keep_the_triggers_decoded_so_far():
    data = real("gdata_winreg-tasks/TestTimeTrigger__Triggers.bin")
    blob = decode_triggers(data[:700])  # the fifth trigger starts at 664
    assert [t.mode for t in blob.triggers] == [0, 1, 2, 3, None]
    assert (blob.triggers[4].kind, blob.triggers[4].offset) == ("time", 664)
    assert blob.errors == ["truncated: trigger[4] needs 88 bytes at offset 0x2a0, value is 700 bytes"]


def test_unknown_trigger_magic_keeps_what_came_before():
    data = real("gdata_winreg-tasks/TestBootTrigger__Triggers.bin") + bytes.fromhex("4242000000000000") + b"\x01" * 20
    blob = decode_triggers(data)
    assert [t.kind for t in blob.triggers] == ["boot"]
    assert blob.errors == ["unknown trigger magic 0x4242 at offset 0x150; 28 bytes left undecoded"]


def test_non_bytes_input_raises_only_taskcache_error():
    for decoder in (decode_actions, decode_triggers, decode_dynamic_info):
        with pytest.raises(TaskCacheError):
            decoder("not bytes")


def test_one_megabyte_of_random_bytes_decodes_fast():
    rng = random.Random(1053)
    blobs = [bytes(rng.getrandbits(8) for _ in range(1 << 20))]
    blobs.append(b"\x17" + blobs[0][1:])  # valid Triggers version
    blobs.append(b"\x03\x00" + blobs[0][2:])  # valid Actions version
    for data in blobs:
        for decoder in (decode_actions, decode_triggers, decode_dynamic_info):
            blob = decoder(data)
            assert blob.errors
            assert_linear(decoder, data[: len(data) // 8], data, 8, what=decoder.__name__)


def test_one_megabyte_of_valid_boot_triggers_decodes_fast():
    data = real("gdata_winreg-tasks/TestBootTrigger__Triggers.bin")
    boot = data[248:]  # the one boot trigger, from its magic to the end
    big = data + boot * ((1 << 20) // len(boot))
    small = data + boot * ((1 << 17) // len(boot))
    blob = decode_triggers(big)
    assert_linear(decode_triggers, small, big, len(big) / len(small), what="boot triggers")  # not quadratic
    assert (len(blob.triggers), blob.consumed, blob.errors) == (1 + (1 << 20) // len(boot), len(big), [])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=2))
def test_mutated_real_values_never_raise(noise, which):
    base = [real("gdata_winreg-tasks/TestEventTrigger__Triggers.bin"), real("0xlane_reinject/blog-win10-cmd-notepad__Actions.bin"),
            real("gdata_winreg-tasks/TestUnknownTrigger__Triggers.bin")][which]
    data = bytearray(base)
    for i, byte in enumerate(noise):
        data[(i * 37 + byte) % len(data)] ^= byte
    decode_triggers(bytes(data))
    decode_actions(bytes(data))
    decode_dynamic_info(bytes(data))
