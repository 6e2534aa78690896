"""Compressed evidence is inflated streaming, with a size and a ratio cap: a bomb costs one gap and at
most its cap in memory, never the host's other records.

Before: a 2.2 MB KAPE zip whose ``SOFTWARE.LOG1`` inflates to 2 GiB took 4.3 GB; a gzip-bombed
``syslog.2.gz`` took 8.5 GB and then a MemoryError dropped the whole Linux collector (0 tasks, 0
findings). Evidence: the builder's KAPE zip and Linux tree with the bomb added; the real command runs
in a child process (tests/hostile/child_run.py) next to a run of the untouched evidence.
"""

from __future__ import annotations

import json
import shutil
import zipfile
import zlib

import pytest

from test_images.build_linux import build_linux, missing_tools
from tests.hostile.child_run import ONE_GB_MB, run_triage
from triage.collect.filefacts import MAX_INFLATION
from triage.collect.unix_jobs import MAX_LOG_BYTES

MIB = 1 << 20


def _zeros_deflated(mib: int, wbits: int) -> bytes:
    """``mib`` MiB of zero bytes, deflated (1 GiB gives about 1 MB: the ratio deflate allows)."""
    stream, block = zlib.compressobj(9, zlib.DEFLATED, wbits), bytes(MIB)
    return b"".join(stream.compress(block) for _ in range(mib)) + stream.flush()


def test_kape_zip_whose_software_log1_inflates_to_2_gib_is_one_gap_and_every_task_file_is_read(windows_images, tmp_path):
    bomb = tmp_path / "kape-bomb.zip"
    with zipfile.ZipFile(windows_images["kape_zip"]) as source, zipfile.ZipFile(bomb, "w") as out:
        for info in source.infolist():
            if info.filename.endswith("config/SOFTWARE.LOG1"):
                member = zipfile.ZipInfo(info.filename, info.date_time)
                member.compress_type = zipfile.ZIP_DEFLATED
                with out.open(member, "w", force_zip64=True) as handle:
                    for _ in range(2048):
                        handle.write(bytes(MIB))
            else:
                out.writestr(info, source.read(info))
    assert bomb.stat().st_size < 3 * MIB
    clean = run_triage([windows_images["kape_zip"]], tmp_path, "clean")
    hostile = run_triage([bomb], tmp_path, "hostile")

    assert hostile.code == 1 and hostile.peak_mb < ONE_GB_MB
    (problem,) = [p for loc, p in hostile.gaps() if loc.lower().endswith("config/software.log1")]
    assert problem.startswith(f"transaction log not readable: inflates to more than {MAX_INFLATION} times its "
                              "compressed size of ")
    assert problem.endswith("a decompression bomb")
    counts, reference = hostile.manifest["counts"], clean.manifest["counts"]
    # the task files and event logs are all read; only what the replay of the bombed log would add is missing
    assert counts["events"] == reference["events"] == 41
    assert _task_files(hostile) == _task_files(clean) and len(_task_files(clean)) == 45


def _task_files(run) -> list[tuple[str, str]]:
    """(task, SHA-256) of every task XML file definition in the case's tasks.jsonl."""
    entities = [json.loads(line) for line in (run.case / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    return sorted((e["task"], d["file"]["sha256"]) for e in entities for d in e["definitions"] if d["source"] == "task_xml")


@pytest.fixture(scope="module")
def linux_tree(tmp_path_factory):
    if missing := missing_tools():
        pytest.skip(f"image tools missing: {', '.join(missing)}")
    return build_linux(tmp_path_factory.mktemp("linux"))["dir"]


def test_gzip_bombed_rotated_syslog_is_one_gap_and_the_linux_host_keeps_its_jobs_and_findings(linux_tree, tmp_path):
    root = tmp_path / "linux"
    shutil.copytree(linux_tree, root, symlinks=True)
    (root / "var/log/syslog.2.gz").write_bytes(_zeros_deflated(1024, zlib.MAX_WBITS | 16))
    clean = run_triage([linux_tree], tmp_path, "clean")
    hostile = run_triage([root], tmp_path, "hostile")

    assert hostile.peak_mb < ONE_GB_MB
    assert hostile.code == 1
    # 1 GiB of zeros from 1 MB: the size cap stops it first (the ratio cap judges only past that much)
    (problem,) = [p for loc, p in hostile.gaps() if loc == "/var/log/syslog.2.gz"]
    assert problem == f"inflates to more than {MAX_LOG_BYTES} bytes: the first {MAX_LOG_BYTES} are read, the rest not"
    counts, reference = hostile.manifest["counts"], clean.manifest["counts"]
    assert counts["unix_jobs"] == reference["unix_jobs"] > 0
    assert counts["findings"] == reference["findings"] > 0
    assert counts["events"] == reference["events"] > 0
    assert counts["gaps"] == reference["gaps"] + 1


def test_gunzip_stops_at_the_ratio_cap_and_reads_every_member_of_an_ordinary_file():
    from triage.collect.filefacts import INFLATION_FLOOR, inflate_capped

    bomb = _zeros_deflated(256, zlib.MAX_WBITS | 16)  # 256 MiB from about 256 KB
    data, problem = inflate_capped(bomb, 1 << 30)
    assert problem.startswith(f"inflates to more than {MAX_INFLATION} times its compressed size of {len(bomb)} bytes")
    assert INFLATION_FLOOR < len(data) <= max(INFLATION_FLOOR, MAX_INFLATION * len(bomb)) + MIB
    assert data.count(0) == len(data)
    lines = [f"Dec  5 08:{n % 60:02d}:01 host CRON[{n}]: (root) CMD (/usr/local/bin/job{n})\n".encode() for n in range(2000)]
    members = b"".join(_gzip(b"".join(lines[i:i + 500])) for i in range(0, 2000, 500))  # logrotate can append members
    assert inflate_capped(members, MAX_LOG_BYTES) == (b"".join(lines), None)
    data, problem = inflate_capped(members[:len(members) // 2], MAX_LOG_BYTES)
    assert problem == "compressed data ends before its end marker (truncated): what inflated is read"
    assert b"".join(lines).startswith(data) and len(data) > 0


def _gzip(data: bytes) -> bytes:
    stream = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return stream.compress(data) + stream.flush()
