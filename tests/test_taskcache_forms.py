"""The TaskCache stealth set on the E01, VMDK and KAPE forms of the image, and every TaskCache blob
the builder wrote decoding to its last byte and re-encoding to the same bytes."""

from __future__ import annotations

import pytest
from Registry import Registry

from test_images.taskcache_blobs import encode_actions_blob, encode_triggers
from triage.collect import Context
from triage.parsers.taskcache import decode_actions, decode_dynamic_info, decode_triggers
from triage.run import run

STEALTH = {
    "\\Microsoft\\Windows\\WinUpdate\\WinUpdate": "taskcache_tree_without_sd",
    "\\Microsoft\\Windows\\Maintenance\\SvcHealthCheck": "taskcache_index_tampered",
    "\\Microsoft\\Windows\\Chkdsk\\SyncHealth": "taskcache_index_tampered",
    "\\OneDrive Standalone Sync Service": "taskcache_registry_only",
    "\\Microsoft\\Windows\\Maintenance\\TempCleanup": "task_file_without_registry",
    "\\Microsoft\\Office\\Office Feature Updates": "taskcache_differs_from_xml",
    "\\Adobe Acrobat Update Task": "taskcache_hash_mismatch",
    "\\Microsoft\\Windows\\Servicing\\ComponentHealth": "taskcache_only_in_transaction_log",
}


@pytest.mark.parametrize("form", ["e01", "vmdk", "kape_dir", "kape_zip"])
def test_stealth_cases_are_found_on_every_form(windows_images, form):
    case = run([str(windows_images[form])], Context(quiet=True), hunt_date="20260101")
    reasons = {f.task: {r["rule"] for r in f.details["reasons"]} for f in case.findings}
    missing = {task: rule for task, rule in STEALTH.items() if rule not in reasons.get(task, set())}
    assert missing == {}
    com = reasons["\\Microsoft\\Windows\\Shell\\ThemesSyncTask"]
    assert "comhandler_user_dll" in com  # the CLSID resolves to a DLL in the user's profile


def _taskcache_values(hive_path):
    registry = Registry.Registry(str(hive_path))
    tasks = registry.open("Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tasks")
    for key in tasks.subkeys():
        values = {v.name(): v.value() for v in key.values()}
        yield key.name(), values


def test_every_blob_the_builder_wrote_round_trips(windows_images):
    hive = windows_images["tree"] / "Windows/System32/config/SOFTWARE"
    seen = 0
    for guid, values in _taskcache_values(hive):
        if "Actions" in values:
            blob = decode_actions(values["Actions"])
            assert blob.errors == [] and encode_actions_blob(blob) == values["Actions"], guid
        if "Triggers" in values:
            blob = decode_triggers(values["Triggers"])
            assert blob.errors == [] and encode_triggers(blob) == values["Triggers"], guid
        if "DynamicInfo" in values:
            assert decode_dynamic_info(values["DynamicInfo"]).errors == [], guid
        seen += 1
    assert seen >= 40  # every XML task of the image plus the registry-only stealth tasks
