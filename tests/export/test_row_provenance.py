"""Every timeline row names the exact place it came from, and that place holds the raw value shown.

For every row of every test image (the committed WS-FIN-042 E01, the Linux host, the corpus's loose
.evtx files as a folder, a memory image beside the E01) the named key/value, file, log record or line
is re-read here on its own, not through triage's collectors: registry values with regipy (on the
SOFTWARE hive copied out of the image, its transaction logs applied by regipy where a key only exists
after replay), event records with dissect.eventlog's own record loop, files and lines through the
dissect Target's file system. A row type this test does not know fails it, so a new kind of row must
come with its check.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dissect.eventlog import bxml
from dissect.eventlog.bxml import BxmlType
from dissect.eventlog.evtx import Evtx
from dissect.target import Target
from regipy.exceptions import RegistryKeyNotFoundException
from regipy.recovery import apply_transaction_logs
from regipy.registry import RegistryHive

from test_images.build_linux import build_linux, missing_tools
from test_images.memimage import build_memory_image
from triage.collect import Context
from triage.run import run
from triage.timeorder import parse_instant

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / ".." / "shared" / "corpus" / "sbousseaden__EVTX-ATTACK-SAMPLES"
LOOSE_LOGS = ("Execution/temp_scheduled_task_4698_4699.evtx",
              "Lateral Movement/remote task update 4624 4702 same logonid.evtx")
SOFTWARE = "sysvol/Windows/System32/config/SOFTWARE"
HKLM_SOFTWARE = "HKLM\\SOFTWARE"
FILE_ARTIFACTS = {"task_xml", "job", "gpp", "crontab", "cron_script", "systemd_timer", "at_job", "anacrontab"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _filetime_exact(stream) -> datetime:
    """FILETIME ticks (100 ns since 1601) to UTC in integers, truncated to the microsecond."""
    (ticks,) = struct.unpack("<Q", stream.read(8))
    return datetime(1601, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ticks // 10)


@contextmanager
def _exact_filetimes():
    """dissect.eventlog converts FILETIMEs through a float (1-2 us off for about half the records); the
    re-read converts the record's own ticks exactly instead, so the comparison below stays exact."""
    original = bxml.TYPE_READERS[BxmlType.FILETIME]
    bxml.TYPE_READERS[BxmlType.FILETIME] = _filetime_exact
    try:
        yield
    finally:
        bxml.TYPE_READERS[BxmlType.FILETIME] = original


class Evidence:
    """An evidence item opened independently of triage, with caches for hives and event logs."""

    def __init__(self, path: Path, work: Path):
        self.path = path
        self.work = work
        self.target = Target.open(path) if path.is_file() else None  # a folder of loose logs is read as files
        self._hives: dict[str, RegistryHive] = {}
        self._records: dict[str, dict[int, dict]] = {}

    def file(self, location: str) -> bytes:
        if self.target is None:
            return Path(location).read_bytes()
        return self.target.fs.path(location).read_bytes()

    def hive(self, replayed: bool) -> RegistryHive:
        name = "replayed" if replayed else "base"
        if name not in self._hives:
            base = self.work / "SOFTWARE"
            base.write_bytes(self.file(SOFTWARE))
            if replayed:
                for log in ("LOG1", "LOG2"):
                    (self.work / f"SOFTWARE.{log}").write_bytes(self.file(f"{SOFTWARE}.{log}"))
                restored = self.work / "SOFTWARE.replayed"
                apply_transaction_logs(str(base), str(self.work / "SOFTWARE.LOG1"), str(self.work / "SOFTWARE.LOG2"),
                                       str(restored))
                base = restored
            self._hives[name] = RegistryHive(str(base))
        return self._hives[name]

    def key(self, location: str):
        assert location.startswith(HKLM_SOFTWARE + "\\"), location
        path = location[len(HKLM_SOFTWARE):]
        try:
            return self.hive(False).get_key(path)
        except RegistryKeyNotFoundException:  # only present after the transaction logs are replayed
            return self.hive(True).get_key(path)

    def record(self, location: str, number: int) -> dict:
        if location not in self._records:
            with (self.target.fs.path(location).open("rb") if self.target else Path(location).open("rb") as fh,
                  _exact_filetimes()):
                # values rendered while the record is current (dissect's time objects are lazy)
                self._records[location] = {int(r["EventRecordID"]): {k: str(v) for k, v in r.items()} for r in Evtx(fh)}
        return self._records[location][number]


def check_registry(row, ev: Evidence) -> None:
    prov = row.provenance
    key = ev.key(prov.location)
    if prov.value_name is None:  # a key's last-write time: the raw is the FILETIME
        assert key.header.last_modified == int(prov.raw, 16), (prov.location, prov.raw)
        assert row.as_written.startswith(prov.raw)
        return
    values = {v.name: v for v in key.iter_values(as_json=False)}
    value = values[prov.value_name]
    if value.value_type in ("REG_SZ", "REG_EXPAND_SZ"):
        assert bytes.fromhex(prov.raw).decode("utf-16-le").rstrip("\0") == value.value, (prov.location, prov.value_name)
    else:
        assert value.value == prov.raw, (prov.location, prov.value_name)
    if prov.value_name == "Date":
        assert value.value == row.as_written
    if prov.value_name == "DynamicInfo":  # the row's FILETIME is one of the value's 8-byte fields
        assert int(row.as_written, 16).to_bytes(8, "little").hex() in prov.raw


def check_event(row, ev: Evidence) -> None:
    prov = row.provenance
    record = ev.record(prov.location, prov.offset)
    if prov.value_name.endswith("/RegistrationInfo/Date"):  # the Date inside a 4698/4702 TaskContent
        field = prov.value_name.split("/", 1)[0]
        date = re.search(r"<Date>([^<]+)</Date>", record[field]).group(1)
        assert date == prov.raw == row.as_written
        return
    assert parse_instant(row.utc) == parse_instant(record["TimeCreated_SystemTime"])
    channel_and_id = prov.value_name
    assert channel_and_id.endswith(f" {record['EventID']}"), (channel_and_id, record["EventID"])
    assert prov.raw.startswith(f"{channel_and_id} record {prov.offset}")
    for pair in prov.raw.split("; ")[1:]:
        name, _, value = pair.partition("=")
        assert str(record[name]) == value, (prov.location, prov.offset, name)


def check_file(row, ev: Evidence) -> None:
    prov = row.provenance
    data = ev.file(prov.location)
    if prov.raw and re.fullmatch(r"[0-9a-f]{64}", prov.raw):  # a file time: the raw is the file's SHA-256
        assert sha256(data) == prov.raw, prov.location
    elif prov.value_name and prov.value_name.startswith("line "):  # a line of the file
        number = int(prov.value_name.split()[1])
        assert data.decode("utf-8").splitlines()[number - 1] == prov.raw, (prov.location, number)
    elif prov.value_name == "RegistrationInfo/Date":
        assert re.search(rb"<Date>([^<]+)</Date>", data.decode("utf-16").encode() if data[:2] == b"\xff\xfe"
                         else data).group(1).decode() == prov.raw == row.as_written
    elif row.provenance.artifact == "gpp":  # the GPP item's "changed" attribute, named by item
        name = prov.value_name.split("] ", 1)[1]
        text = data.decode("utf-8", "replace")
        assert f'name="{name}"' in text and f'changed="{row.as_written}"' in text
    else:  # a time decoded from the file's own bytes (a .job's last run, an at job's name)
        assert data, prov.location


def check_wants_link(row, ev: Evidence) -> None:
    """An enabled timer's ``*.wants`` link: the link itself (not what it points to) is re-read, and the
    row's time is the link's own inode time, named by the stat field in ``as_written``."""
    prov = row.provenance
    link = ev.target.fs.path(prov.location)
    assert link.is_symlink(), prov.location
    assert str(link.readlink()).endswith(".timer"), (prov.location, str(link.readlink()))
    field, _, ns = row.as_written.partition("=")
    assert getattr(link.lstat(), field) == int(ns), (prov.location, row.as_written)
    assert parse_instant(row.utc) == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(ns) // 1000)


def check_log_line(row, ev: Evidence) -> None:
    prov = row.provenance
    data = ev.file(prov.location)
    if row.provenance.artifact == "schedlgu":  # SchedLgU.txt (UTF-16): the time is on the entry's lines
        lines = data.decode("utf-16").splitlines()
        assert any(row.as_written in line for line in lines[prov.offset - 1:prov.offset + 2]), (prov.offset, row.as_written)
        return
    assert data[prov.offset:].decode("utf-8").startswith(prov.raw), (prov.location, prov.offset)


def check_row(row, ev: Evidence, expected_sha256) -> str:
    """Re-read the row's source; returns which check ran."""
    prov = row.provenance
    assert prov.evidence_sha256 == expected_sha256(row), (row.what, prov.location)
    if prov.artifact == "taskcache":
        check_registry(row, ev)
        return "registry value or key"
    if prov.artifact == "evtx":
        check_event(row, ev)
        return "event record"
    if prov.artifact in ("schedlgu", "syslog"):
        check_log_line(row, ev)
        return "log line"
    if prov.artifact in FILE_ARTIFACTS:
        check_file(row, ev)
        return "file"
    if prov.artifact == "systemd_wants_link":
        check_wants_link(row, ev)
        return "symlink"
    if prov.artifact in ("memory", "memory_taskcache"):
        return "memory image hash"  # the image's SHA-256 (checked above); volatility is not re-run here
    raise AssertionError(f"no check for rows of artifact {prov.artifact!r} ({row.what})")


@pytest.fixture(scope="module")
def images(committed_windows_e01, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("provenance")
    out = {"windows": {"evidence": [committed_windows_e01]}}
    logs = base / "logs"
    logs.mkdir()
    for name in LOOSE_LOGS:
        shutil.copy(CORPUS / name, logs / Path(name).name)
    out["evtx folder"] = {"evidence": [logs]}
    if not missing_tools():
        out["linux"] = {"evidence": [build_linux(base / "linux")["e01"]]}
    memory = build_memory_image(base / "memory", "win10")
    out["windows + memory"] = {"evidence": [committed_windows_e01], "memory": memory}
    for name, item in out.items():
        ctx = Context(quiet=True, options={"symbols": str(item["memory"]["symbols"])} if "memory" in item else {})
        memory_paths = [str(item["memory"]["image"])] if "memory" in item else []
        item["case"] = run([str(p) for p in item["evidence"]], ctx, memory_paths=memory_paths, hunt_date="20240314")
        item["work"] = base / ("work-" + name.replace(" ", "_").replace("+", "and"))
        item["work"].mkdir()
    return out


@pytest.mark.parametrize("name", ["windows", "linux", "evtx folder", "windows + memory"])
def test_every_timeline_row_names_a_place_that_holds_its_raw_value(images, name):
    if name not in images:
        pytest.skip("Linux image tools missing")
    item = images[name]
    evidence = item["evidence"][0]
    ev = Evidence(evidence, item["work"])
    image_sha = sha256(evidence.read_bytes()) if evidence.is_file() else None
    memory_sha = sha256(item["memory"]["image"].read_bytes()) if "memory" in item else None

    def expected_sha256(row) -> str:
        if row.provenance.artifact in ("memory", "memory_taskcache"):
            return memory_sha
        if evidence.is_dir():  # a folder of loose logs: each row carries its own file's hash
            return sha256(Path(row.provenance.location).read_bytes())
        return image_sha

    rows = item["case"].timeline
    checks = [check_row(row, ev, expected_sha256) for row in rows]
    assert len(checks) == len(rows) > 0
    assert "memory image hash" in checks if "memory" in item else "memory image hash" not in checks


def test_taskcache_rows_cite_the_date_value_and_their_own_keys(images):
    rows = images["windows"]["case"].timeline
    dates = [r for r in rows if r.what == "TaskCache registration date"]
    assert dates and all(r.provenance.value_name == "Date" for r in dates)
    tree = [r for r in rows if r.what == "TaskCache Tree key last written"]
    tasks = [r for r in rows if r.what == "TaskCache Tasks key last written"]
    assert tree and tasks
    assert all("\\TaskCache\\Tree\\" in r.provenance.location for r in tree)
    assert all("\\TaskCache\\Tasks\\{" in r.provenance.location for r in tasks)
    assert not [r for r in rows if r.what == "TaskCache registry key last written"]


def test_loose_evtx_rows_and_findings_carry_their_own_files_hash(images):
    case = images["evtx folder"]["case"]
    hashes = {sha256(p.read_bytes()) for p in images["evtx folder"]["evidence"][0].iterdir()}
    assert {r.provenance.evidence_sha256 for r in case.timeline} == hashes
    assert case.findings and all(item.evidence_sha256 in hashes for f in case.findings for item in f.evidence
                                 if item.source.startswith(("evtx", "Security", "Sigma")))


def test_evidence_items_name_each_record_once(images):
    for name in ("windows", "evtx folder"):
        for finding in images[name]["case"].findings:
            keys = [(e.location, e.value, e.time, e.evidence_sha256) for e in finding.evidence]
            assert len(keys) == len(set(keys)), finding.hunt_id
