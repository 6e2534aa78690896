"""A container header is checked against the file before dissect opens it, and whatever goes wrong
while opening one evidence item costs only that item.

Before: a 4 KB VMDK whose sparse header claims 2^40 sectors made triage allocate its 2^28-entry grain
directory (3.2 GB) and end in an uncaught MemoryError that also lost a good E01 given in the same call.
"""

from __future__ import annotations

import struct

from tests.hostile.child_run import ONE_GB_MB, run_triage

SECTORS = 1 << 40


def _forged_vmdk(path, capacity: int = SECTORS, grain: int = 8, per_table: int = 512) -> None:
    """A hosted sparse extent header (VMware "Virtual Disk Format 1.1") with the grain directory at sector 1."""
    header = bytearray(4096)
    struct.pack_into("<4sII", header, 0, b"KDMV", 1, 3)
    struct.pack_into("<QQQQIqqQ", header, 12, capacity, grain, 0, 0, per_table, 1, 1, 8)
    header[73:77] = b"\n \r\n"
    path.write_bytes(bytes(header))


def test_vmdk_header_claiming_2_pow_40_sectors_is_refused_and_the_e01_beside_it_gets_its_full_case(
        committed_windows_e01, tmp_path):
    forged = tmp_path / "forged.vmdk"
    _forged_vmdk(forged)
    alone = run_triage([committed_windows_e01], tmp_path, "alone")
    both = run_triage([forged, committed_windows_e01], tmp_path, "both")

    assert both.code == 1 and both.peak_mb < ONE_GB_MB
    assert both.gaps()[0] == (f"{forged} (header)", (
        f"not opened: VMDK sparse header claims {SECTORS} sectors, which needs a grain directory of {SECTORS // (8 * 512)} "
        "entries at sector 1, past the end of the file (4096 bytes): damaged or forged header"))
    assert f"triage: warning: {forged}: {forged} (header): not opened: VMDK sparse header claims" in both.stderr
    assert both.manifest["counts"] == {**alone.manifest["counts"], "gaps": alone.manifest["counts"]["gaps"] + 1}
    assert both.manifest["counts"]["definitions"] == 99 and both.manifest["counts"]["events"] == 41
    assert [e["path"] for e in both.manifest["evidence"]] == [str(committed_windows_e01)]


def test_vmdk_header_with_a_geometry_vmware_never_writes_is_refused_before_opening(tmp_path):
    forged = tmp_path / "one-sector-grains.vmdk"
    _forged_vmdk(forged, capacity=64, grain=1, per_table=1)
    run = run_triage([forged], tmp_path)
    assert run.code == 2 and run.peak_mb < ONE_GB_MB
    assert (f"triage: warning: {forged}: {forged} (header): not opened: VMDK sparse header declares grains of 1 sectors "
            "and 1 entries per grain table: not a geometry VMware writes (damaged or forged header)") in run.stderr
