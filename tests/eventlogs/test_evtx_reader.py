"""The streaming EVTX reader on real corpus logs: exact counts, dirty headers, damage, memory."""

from __future__ import annotations

import gc
import io
import struct
import tracemalloc

import pytest
from dissect.eventlog.evtx import Evtx as DissectEvtx
from Evtx.Evtx import Evtx as PythonEvtx

from triage.evtx_reader import EvtxReader

from evtx_corpus import ATTACK, BELKASOFT, CORPUS, SIGMA, VELO, counts, read

# Per-file EventID counts exactly as PROVENANCE.md lists them ("records parsed ... by channel:EventID").
PROVENANCE_COUNTS = {
    VELO / "TaskScheduler.evtx": {100: 2, 102: 2, 106: 3, 110: 2, 129: 2, 140: 1, 141: 3, 142: 1, 200: 2, 201: 2},
    VELO / "SecurityTasks.evtx": {4698: 3, 4699: 3, 4701: 1, 4702: 1},
    ATTACK / "Execution/temp_scheduled_task_4698_4699.evtx": {4698: 1, 4699: 1},
    ATTACK / "Lateral Movement/LM_ScheduledTask_ATSVC_target_host.evtx":
        {1102: 1, 4624: 6, 4661: 3, 4672: 5, 4688: 4, 4698: 1, 4699: 1, 4776: 4, 5140: 4, 5145: 5},
    ATTACK / "Lateral Movement/remote task update 4624 4702 same logonid.evtx": {1102: 1, 4624: 6, 4702: 1},
    ATTACK / "Privilege Escalation/PrivEsc_SeImpersonatePriv_enabled_back_for_upnp_localsvc_4698.evtx": {4698: 1, 4699: 1},
    ATTACK / "Credential Access/ACL_ForcePwd_SPNAdd_User_Computer_Accounts.evtx":
        {1102: 1, 4662: 14, 4702: 4, 4719: 8, 4738: 5, 4742: 1, 5136: 22},
    ATTACK / "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx": {1: 4, 3: 3, 11: 1},
    ATTACK / "Privilege Escalation/sysmon_1_11_exec_as_system_via_schedtask.evtx": {1: 5, 11: 1},
    ATTACK / "AutomatedTestingTools/Malware/rundll32_cmd_schtask.evtx": {1: 8, 10: 3, 11: 5, 12: 10, 13: 24},
    ATTACK / "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx":
        {1: 511, 3: 4, 5: 1, 7: 5, 10: 1, 11: 4, 12: 3, 13: 30, 19: 2, 20: 2, 21: 2},
    ATTACK / "AutomatedTestingTools/panache_sysmon_vs_EDRTestingScript.evtx": {1: 96, 3: 8, 7: 8, 11: 5, 12: 1, 13: 4},
    ATTACK / "Execution/sysmon_exec_from_vss_persistence.evtx": {1: 16, 11: 1},
    ATTACK / "Persistence/persistence_sysmon_11_13_1_shime_appfix.evtx": {1: 175, 11: 25, 13: 37},
    ATTACK / "Privilege Escalation/Sysmon_UACME_34.evtx": {1: 3, 5: 1, 12: 1, 13: 1},
    ATTACK / "Privilege Escalation/privesc_spoolsv_spl_file_write_sysmon11.evtx": {1: 10, 4: 1, 7: 1, 10: 1, 11: 23, 13: 1},
    ATTACK / "Privilege Escalation/sysmon_uacbypass_CDSSync_schtask_hijack_byeintegrity5.evtx": {1: 3, 7: 1, 11: 1, 12: 2, 13: 1},
    ATTACK / "Persistence/persistence_SilentProcessExit_ImageHijack_sysmon_13_1.evtx": {1: 10, 13: 3},
    ATTACK / "Privilege Escalation/PrivEsc_CVE-2020-1313_Sysmon_13_UScheduler_Cmdline.evtx": {13: 4},
    ATTACK / "Lateral Movement/LM_sysmon_remote_task_src_powershell.evtx": {3: 2, 7: 1},
}
REGRESSION = SIGMA / "regression_data" / "rules" / "windows"
PROVENANCE_COUNTS.update({
    REGRESSION / "builtin/security/win_security_susp_scheduled_task_delete_or_disable/7595ba94-cf3b-4471-aa03-4f6baa9e5fad.evtx": {4701: 1},
    REGRESSION / "builtin/taskscheduler/win_taskscheduler_susp_schtasks_delete_or_disable/9e3cb244-bdb8-4632-8c90-6079c8f4f16d.evtx": {142: 1},
    REGRESSION / "process_creation/proc_creation_win_schtasks_delete/dbc1f800-0fe0-4bc0-9c66-292c2abe3f78.evtx": {1: 1},
    REGRESSION / "process_creation/proc_creation_win_schtasks_disable/9ac94dc8-9042-493c-ba45-3b5e7c86b980.evtx": {1: 1},
    REGRESSION / "registry/registry_delete/registry_delete_schtasks_hide_task_via_index_value_removal/526cc8bc-1cdc-48ad-8b26-f19bff969cec.evtx": {12: 1},
    REGRESSION / "registry/registry_delete/registry_delete_schtasks_hide_task_via_sd_value_removal/acd74772-5f88-45c7-956b-6a7b36c294d2.evtx": {12: 1},
})
# Belkasoft log: PROVENANCE counted with python-evtx, which stops at the header's 35 chunks.
BELKASOFT_FIRST_3751 = {
    100: 632, 101: 10, 102: 504, 103: 33, 106: 15, 107: 63, 108: 36, 109: 1, 110: 7, 111: 93, 114: 67, 118: 63,
    119: 148, 129: 469, 140: 304, 141: 9, 142: 5, 153: 6, 200: 632, 201: 504, 202: 34, 322: 21, 325: 36, 328: 1,
    329: 3, 400: 18, 402: 16, 411: 3, 700: 18,
}
# Chunk 35, written after the header was last flushed (header flag dirty, chunk count 35).
BELKASOFT_CHUNK_35 = {100: 17, 102: 17, 108: 1, 111: 3, 114: 1, 118: 1, 119: 10, 129: 10, 140: 6, 200: 17, 201: 17}


def test_corpus_has_every_listed_log():
    on_disk = set(CORPUS.rglob("*.evtx"))
    assert set(PROVENANCE_COUNTS) | {BELKASOFT} == on_disk


@pytest.mark.parametrize("path", sorted(PROVENANCE_COUNTS), ids=lambda p: p.name[:40])
def test_every_corpus_log_has_exactly_the_provenance_event_counts(path):
    problems = []
    events = read(path, problems)
    assert counts(events) == PROVENANCE_COUNTS[path]
    assert problems == []


def test_dirty_log_is_read_past_its_stale_header_chunk_count():
    problems = []
    events = read(BELKASOFT, problems)
    assert len(events) == 3851
    assert counts([e for e in events if e.record_id <= 3751]) == BELKASOFT_FIRST_3751
    assert counts([e for e in events if e.record_id > 3751]) == BELKASOFT_CHUNK_35
    assert [e.record_id for e in events] == list(range(1, 3852))
    assert {e.chunk for e in events if e.record_id > 3751} == {35}
    assert events[-1].fields["TimeCreated_SystemTime"] == "2021-02-14T02:38:30.413121Z"  # exact FILETIME; dissect said .413120
    assert problems == []


def test_python_evtx_stops_at_the_stale_header_and_misses_100_events():
    with PythonEvtx(str(BELKASOFT)) as log:
        assert sum(1 for _ in log.records()) == 3751


def test_guids_are_in_windows_byte_order_unlike_dissect():
    ours = read(BELKASOFT)[0].fields
    assert ours["Provider_Guid"] == "{DE7B24EA-73C8-4A09-985D-5BDADCFA9017}"  # Microsoft-Windows-TaskScheduler
    assert ours["InstanceId"] == ours["Correlation_ActivityID"] == "{D212A6B8-E1FA-45AE-9384-BF2BD398EABF}"
    with open(BELKASOFT, "rb") as fh:
        theirs = next(iter(DissectEvtx(fh)))
    assert str(theirs["Provider_Guid"]) == "{EA247BDE-C873-094A-985D-5BDADCFA9017}"
    # our temporary swap of the GUID reader is undone after each chunk
    with open(BELKASOFT, "rb") as fh:
        assert str(next(iter(DissectEvtx(fh)))["Provider_Guid"]).startswith("{EA247BDE")


def test_truncated_log_keeps_records_before_the_cut_and_reports_one_line(tmp_path):
    source = ATTACK / "AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx"
    cut = tmp_path / "cut.evtx"
    data = source.read_bytes()
    cut.write_bytes(data[: 0x1000 + 14 * 0x10000 + 0x2000])  # inside the 4th of 8 records
    problems = []
    events = read(cut, problems)
    full = read(source)
    in_last_chunk = [e for e in full if e.chunk == 14]
    recovered = [e for e in events if e.chunk == 14]
    assert len(events) == len(full) - len(in_last_chunk) + len(recovered)
    assert (len(recovered), len(in_last_chunk)) == (3, 8)
    assert [e.record_id for e in recovered] == [e.record_id for e in in_last_chunk[: len(recovered)]]
    assert problems == [("chunk 14 at offset 0xe1000",
                         f"file truncated: last chunk has 8192 of 65536 bytes; {len(recovered)} record(s) recovered before the cut")]
    with open(cut, "rb") as fh:  # dissect drops the whole partial chunk
        assert sum(1 for _ in DissectEvtx(fh)) == len(full) - len(in_last_chunk)


def _record_offsets(data: bytes, chunk_start: int = 0x1000) -> list[tuple[int, int]]:
    pos, out = chunk_start + 0x200, []
    while data[pos:pos + 4] == b"\x2a\x2a\x00\x00":
        size = struct.unpack_from("<I", data, pos + 4)[0]
        out.append((pos, size))
        pos += size
    return out


def test_corrupt_record_is_skipped_and_the_rest_of_the_chunk_still_read(tmp_path):
    damaged = tmp_path / "damaged.evtx"
    data = bytearray((VELO / "TaskScheduler.evtx").read_bytes())
    position, _ = _record_offsets(bytes(data))[5]
    data[position + 24:position + 64] = b"\xff" * 40  # the binary XML of record 6
    damaged.write_bytes(bytes(data))
    problems = []
    events = read(damaged, problems)
    # record 6 is unreadable; record 12 reuses the template record 6 defined, so it goes too
    assert [e.record_id for e in events] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20]
    assert [e.fields["EventRecordID"] for e in events][:6] == [2599, 2600, 2601, 2602, 2603, 2605]
    assert problems == [
        ("chunk 0 at offset 0x1000", "record data checksum mismatch (records altered or torn); decoding each record on its own"),
        ("chunk 0 at offset 0x1000", "record 6 at chunk offset 0x1190 undecodable: BxmlException: Unknown BXML token <dissect.eventlog.bxml.Token>"),
        ("chunk 0 at offset 0x1000", "record 12 at chunk offset 0x2150 undecodable: KeyError: 4855"),
    ]
    with open(damaged, "rb") as fh:  # dissect gives up on the chunk at the first bad record
        assert sum(1 for _ in DissectEvtx(fh)) == 5


def test_torn_record_size_is_resynchronised_on_the_next_record(tmp_path):
    damaged = tmp_path / "torn.evtx"
    data = bytearray((VELO / "SecurityTasks.evtx").read_bytes())
    position, _ = _record_offsets(bytes(data))[3]
    data[position + 4:position + 8] = struct.pack("<I", 0x1000)
    damaged.write_bytes(bytes(data))
    problems = []
    events = read(damaged, problems)
    assert len(events) == 7
    assert "is torn (size fields disagree); resumed at" in problems[1][1]


def test_file_that_is_not_evtx_yields_nothing_and_one_clear_problem(tmp_path):
    fake = tmp_path / "Security.evtx"
    fake.write_bytes(b"MZ" + b"\x00" * 9000)
    problems = []
    assert read(fake, problems) == []
    assert problems == [("file header", "not an EVTX file: no ElfFile signature and no event chunk at offset 0x1000")]
    tiny = tmp_path / "tiny.evtx"
    tiny.write_bytes(b"hello")
    problems = []
    assert read(tiny, problems) == []
    assert problems == [("file header", "not an EVTX file: only 5 bytes, no ElfFile signature")]


def test_damaged_file_header_still_reads_the_chunks(tmp_path):
    damaged = tmp_path / "header.evtx"
    data = bytearray((VELO / "SecurityTasks.evtx").read_bytes())
    data[0:8] = b"XXXXXXXX"
    damaged.write_bytes(bytes(data))
    problems = []
    assert len(read(damaged, problems)) == 8
    assert problems == [("file header", "EVTX file header damaged (no ElfFile signature); reading the chunks anyway")]


class _CountingFile(io.RawIOBase):
    """A file object that records how far the reader has read."""

    def __init__(self, path):
        self._fh = open(path, "rb")
        self.consumed = 0

    def read(self, size=-1):
        data = self._fh.read(size)
        self.consumed += len(data)
        return data

    def seek(self, offset, whence=0):
        return self._fh.seek(offset, whence)

    def close(self):
        self._fh.close()


def test_reader_streams_one_chunk_at_a_time():
    fh = _CountingFile(BELKASOFT)
    furthest_ahead = 0
    for event in EvtxReader(fh, str(BELKASOFT)):
        end_of_its_chunk = 0x1000 + (event.chunk + 1) * 0x10000
        furthest_ahead = max(furthest_ahead, fh.consumed - end_of_its_chunk)
    fh.close()
    assert furthest_ahead == 0  # never a byte beyond the chunk being decoded
    assert fh.consumed == BELKASOFT.stat().st_size


def test_decoding_a_chunk_needs_little_memory():
    data = BELKASOFT.read_bytes()[: 0x1000 + 4 * 0x10000]
    gc.collect()
    tracemalloc.start()
    seen = sum(1 for _ in EvtxReader(io.BytesIO(data), "four chunks"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == 431
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
