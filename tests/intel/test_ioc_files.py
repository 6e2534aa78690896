"""Indicator files: MISP exports read like the CSV, and every malformed file gives one clear error."""

from __future__ import annotations

import json

import pytest

from tests.intel.conftest import BEACON_TASK_FILE_SHA256, COM_DLL_MD5, EXPECTED, triage_run
from test_images import windows_tree as tree
from triage.cli import main as triage_main
from triage.intel import Indicator, IocError, load_iocs

MISP_EVENT = {"Event": {
    "uuid": "5e6f7a8b-0000-4000-8000-000000000042", "info": "WS-FIN-042 intrusion",
    "Attribute": [
        {"type": "filename|sha256", "value": f"MicrosoftEdgeUpdateTaskMachineQA|{BEACON_TASK_FILE_SHA256}",
         "uuid": "5e6f7a8b-0000-4000-8000-000000000001", "comment": "beacon task"},
        {"type": "ip-dst|port", "value": "10.1.2.3|445", "uuid": "5e6f7a8b-0000-4000-8000-000000000002"},
        {"type": "email-src", "value": "ops@fincorp.example"},
    ],
    "Object": [{"name": "file", "Attribute": [{"type": "md5", "value": COM_DLL_MD5, "comment": "theme DLL"}]}],
}}


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_misp_event_export_reads_composite_attributes_and_objects(tmp_path):
    iocs = load_iocs([write(tmp_path, "event.json", json.dumps(MISP_EVENT))])
    assert iocs.indicators == [
        Indicator("filename", "MicrosoftEdgeUpdateTaskMachineQA", "event.json Attribute 0", "beacon task"),
        Indicator("sha256", BEACON_TASK_FILE_SHA256, "event.json Attribute 0", "beacon task"),
        Indicator("ip", "10.1.2.3", "event.json Attribute 1"),
        Indicator("md5", COM_DLL_MD5, "event.json Object 0 Attribute 0", "theme DLL"),
    ]
    assert [line.split(": ", 1)[1] for line in iocs.skipped] == [
        "MISP event 5e6f7a8b-0000-4000-8000-000000000042 Attribute 1 (5e6f7a8b-0000-4000-8000-000000000002): MISP type 'port' is not matched",
        "MISP event 5e6f7a8b-0000-4000-8000-000000000042 Attribute 2: MISP type 'email-src' is not matched",
    ]


def test_misp_indicators_find_the_planted_tasks(committed_windows_e01, tmp_path):
    path = write(tmp_path, "event.json", json.dumps(MISP_EVENT))
    case, _ = triage_run([committed_windows_e01], [path])
    ioc_tasks = sorted(f.task for f in case.findings if "ioc" in (f.rule or "").split(","))
    planted = {task for task, _, value, _ in EXPECTED if value in ("10.1.2.3", BEACON_TASK_FILE_SHA256, COM_DLL_MD5)}
    assert ioc_tasks == sorted(planted) == sorted(["\\At5", tree.BEACON_TASK, tree.COM_TASK, tree.INSIDER_TASK,
                                                   r"\Microsoft\Windows\Maintenance\ReportUpload"])


MALFORMED = [
    ("bad-type.csv", "type,value\nfilename,a.dll\nmd6,abc\n",
     "bad-type.csv: line 3: unknown indicator type 'md6' (one of: filename, md5, sha1, sha256, domain, hostname, "
     "ip-dst, ip-src, url, regkey, text)"),
    ("bad-hash.csv", "sha256,1234\n", "bad-hash.csv: line 1: sha256 '1234': not a sha256 hash (64 hex digits)"),
    ("one-column.csv", "# comment\n\nfilename\n", "one-column.csv: line 3: expected 'type,value[,comment]', got 'filename'"),
    ("bad-ip.csv", "ip-src,10.1.2.300\n", "bad-ip.csv: line 1: ip-src '10.1.2.300': not an IP address or network"),
    ("broken.json", '{"type": "bundle",\n "objects": [\n}', "broken.json: line 3 column 1: not valid JSON: Expecting value"),
    ("other.json", '{"hello": 1}', "other.json: neither a STIX 2.1 bundle (type 'bundle') nor a MISP event export ('Event')"),
    ("bad-pattern.json", json.dumps({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000001",
         "created": "2024-03-14T00:00:00Z", "modified": "2024-03-14T00:00:00Z", "pattern": "[file:name = 'x.dll'",
         "pattern_type": "stix", "valid_from": "2024-03-14T00:00:00Z"}]}),
     "bad-pattern.json: STIX object 0 (indicator--00000000-0000-4000-8000-000000000001): invalid STIX 2.1 object: "
     "Invalid value for Indicator 'pattern': FAIL: Error found at line 1:20. missing ']' at '<EOF>'"),
    ("missing-property.json", json.dumps({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000002",
         "created": "2024-03-14T00:00:00Z", "modified": "2024-03-14T00:00:00Z", "pattern_type": "stix",
         "valid_from": "2024-03-14T00:00:00Z"}]}),
     "missing-property.json: STIX object 0 (indicator--00000000-0000-4000-8000-000000000002): invalid STIX 2.1 object: "
     "No values for required properties for Indicator: (pattern)."),
    ("misp-no-value.json", json.dumps({"Event": {"Attribute": [{"type": "md5", "value": COM_DLL_MD5}, {"type": "md5"}]}}),
     "misp-no-value.json: MISP event 1 Attribute 1: an attribute needs a string 'type' and a non-empty string 'value'"),
]


@pytest.mark.parametrize(("name", "text", "message"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_indicator_file_names_the_file_and_the_line_or_object(tmp_path, name, text, message):
    with pytest.raises(IocError) as error:
        load_iocs([write(tmp_path, name, text)])
    assert str(error.value).startswith(f"{tmp_path / name}: ")
    assert str(error.value)[len(str(tmp_path)) + 1:].startswith(message)


def test_cli_gives_exit_2_and_the_message_for_a_malformed_file(committed_windows_e01, tmp_path, capsys):
    path = write(tmp_path, "iocs.csv", "url,http://203.0.113.47/\nurl,203.0.113.47/news.php\n")
    assert triage_main([str(committed_windows_e01), "--ioc", str(path), "-q"]) == 2
    assert capsys.readouterr().err == f"triage: error: {path}: line 2: url '203.0.113.47/news.php': not a URL (no scheme://)\n"
