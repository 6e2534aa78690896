"""Indicator files for the planted scenarios of the Windows test image, written the way a CTI team
would hand them over (a STIX 2.1 bundle made with the stix2 library, a MISP-typed CSV), and triage
runs on the committed image and on corpus event logs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import stix2

from test_images import windows_tree as tree
from test_images.taskcache_scenarios import TASKS_ONLY_TASK
from triage.collect import Context
from triage.intel import load_iocs
from triage.run import run
from tests.conftest import CORPUS

ROOT = Path(__file__).resolve().parents[2]
VELOCIRAPTOR = CORPUS / "Velocidex__velociraptor/artifacts/testdata/files"
SAMPLES = CORPUS / "sbousseaden__EVTX-ATTACK-SAMPLES"
SIGMA_REGRESSION = CORPUS / "SigmaHQ__sigma/regression_data/rules/windows/registry/registry_delete"
HUNT_DATE = "20240314"
TREE_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree\Update.Service"


BEACON_TASK_FILE_SHA256 = hashlib.sha256(next(t.data for t in tree.scenario_tasks() if t.name == tree.BEACON_TASK)).hexdigest()
# the bytes the builder plants (tree.other_files) for the beacon DLL and the COM-hijack DLL, made in memory:
# other_files itself also copies corpus event logs, which must not be read at import time
BEACON_DLL_SHA256 = hashlib.sha256(tree._stub(b"MZ", "beacon")).hexdigest()
COM_DLL_MD5 = hashlib.md5(tree._stub(b"MZ", "thmsync")).hexdigest()
C2_IP = "203.0.113.47"
EXFIL_IP = tree.EXFIL_SHARE.split("\\")[2]  # 10.1.2.3

# (task, field, indicator value) every scenario indicator must give, and nothing else.
EXPECTED = {
    (tree.BEACON_TASK, "action 1 arguments", "msedge_elf.dll", "task_xml"),
    (tree.BEACON_TASK, "action 1 arguments", "msedge_elf.dll", "taskcache"),
    (tree.BEACON_TASK, "task file sha256", BEACON_TASK_FILE_SHA256, "task_xml"),
    (tree.BEACON_TASK, r"action 1 argument file C:\Users\Public\Libraries\msedge_elf.dll sha256", BEACON_DLL_SHA256, "task_xml"),
    (tree.BEACON_TASK, r"action 1 argument file C:\Users\Public\Libraries\msedge_elf.dll sha256", BEACON_DLL_SHA256, "taskcache"),
    (tree.ENCODED_PS_TASK, "action 1 arguments (decoded -EncodedCommand)", tree.C2_URL, "task_xml"),
    (tree.ENCODED_PS_TASK, "action 1 arguments (decoded -EncodedCommand)", tree.C2_URL, "taskcache"),
    (tree.ENCODED_PS_TASK, "action 1 arguments (decoded -EncodedCommand)", C2_IP, "task_xml"),
    (tree.ENCODED_PS_TASK, "action 1 arguments (decoded -EncodedCommand)", C2_IP, "taskcache"),
    (tree.INSIDER_TASK, "action 1 arguments", EXFIL_IP, "task_xml"),
    (tree.INSIDER_TASK, "action 1 arguments", EXFIL_IP, "taskcache"),
    ("\\At5", "action 1 arguments", EXFIL_IP, "job"),
    (TASKS_ONLY_TASK, "action 1 arguments", EXFIL_IP, "taskcache"),
    (tree.COM_TASK, "action 1 com_dll file " + tree.COM_HIJACK_DLL + " md5", COM_DLL_MD5, "taskcache"),
    (tree.DOTTED_TASK, "TaskCache key", TREE_KEY, "taskcache"),
}


def stix_bundle() -> stix2.Bundle:
    def indicator(number: int, name: str, pattern: str) -> stix2.Indicator:
        return stix2.Indicator(id=f"indicator--00000000-0000-4000-8000-{number:012d}", name=name, pattern=pattern,
                               pattern_type="stix", valid_from="2024-03-14T00:00:00Z",
                               created="2024-03-14T00:00:00Z", modified="2024-03-14T00:00:00Z")

    escaped_key = TREE_KEY.replace("\\", "\\\\")
    return stix2.Bundle(
        indicator(1, "beacon loader", "[file:name = 'msedge_elf.dll']"),
        indicator(2, "beacon task file", f"[file:hashes.'SHA-256' = '{BEACON_TASK_FILE_SHA256}']"),
        indicator(3, "beacon DLL or theme DLL", f"[file:hashes.'SHA-256' = '{BEACON_DLL_SHA256}'] OR [file:hashes.MD5 = '{COM_DLL_MD5}']"),
        indicator(4, "C2", f"[url:value = '{tree.C2_URL}'] OR [ipv4-addr:value = '{C2_IP}']"),
        indicator(5, "exfil share", f"[ipv4-addr:value = '{EXFIL_IP}']"),
        indicator(6, "persistence key", f"[windows-registry-key:key = '{escaped_key}']"),
        indicator(7, "unmatchable here", "[email-addr:value = 'ops@fincorp.example']"),
        stix2.Identity(id="identity--00000000-0000-4000-8000-000000000001", name="CTI team", identity_class="organization",
                       created="2024-03-14T00:00:00Z", modified="2024-03-14T00:00:00Z"),
        id="bundle--00000000-0000-4000-8000-000000000000",
    )


def indicator_csv() -> str:
    return "\n".join([
        "type,value,comment",
        "# the planted WS-FIN-042 intrusion",
        "filename,msedge_elf.dll,beacon loader",
        f"sha256,{BEACON_TASK_FILE_SHA256},beacon task file",
        f"sha256,{BEACON_DLL_SHA256},beacon DLL",
        f"md5,{COM_DLL_MD5},theme DLL",
        f"url,{tree.C2_URL},C2",
        f"ip-dst,{C2_IP},C2",
        f"ip-dst,{EXFIL_IP},\"exfil share, finance\"",
        f"regkey,{TREE_KEY},persistence key",
    ]) + "\n"


def triage_run(evidence: list[Path | str], ioc_files: list[Path] = (), sigma: list[Path] = ()):
    ctx = Context(quiet=True, options={"iocs": load_iocs(list(ioc_files)), "sigma": [str(s) for s in sigma]})
    return run([str(e) for e in evidence], ctx, hunt_date=HUNT_DATE), ctx


@pytest.fixture(scope="session")
def ioc_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("iocs")
    (folder / "scenario.stix.json").write_text(stix_bundle().serialize(pretty=True), encoding="utf-8")
    (folder / "scenario.csv").write_text(indicator_csv(), encoding="utf-8")
    return {"stix": folder / "scenario.stix.json", "csv": folder / "scenario.csv"}


@pytest.fixture(scope="session")
def plain_windows_case(committed_windows_e01):
    return triage_run([committed_windows_e01])[0]


@pytest.fixture(scope="session")
def stix_windows_case(committed_windows_e01, ioc_files):
    return triage_run([committed_windows_e01], [ioc_files["stix"]])[0]

