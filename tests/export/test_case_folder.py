"""The case folder from a real run: layout, determinism, Timesketch and l2tcsv shape, provenance,
hostile content made inert, evidence untouched."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone

from tests.export.hostile import HUNT_DATE, OUTPUT_NAMES
from triage.export.timeline_csv import L2TCSV_COLUMNS

TIMESKETCH_MANDATORY = ("message", "datetime", "timestamp_desc")
# Keys Timesketch strips or treats specially on import (timesketch/lib/utils.py FIELDS_TO_REMOVE, "tag").
TIMESKETCH_SCRUBBED = {"_id", "_type", "_index", "_source", "__ts_timeline_id", "tag"}


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_case_folder_holds_exactly_the_fixed_file_names(case_run):
    assert {p.name for p in case_run.out.iterdir()} == OUTPUT_NAMES
    # The "..\..\escape" task wrote nothing next to the case folder.
    assert sorted(p.name for p in case_run.out.parent.iterdir()) == ["case1", "case2", "evidence"]


def test_same_evidence_gives_identical_bytes_except_manifest_run_times(case_runs):
    first, second = case_runs
    names = sorted(p.relative_to(first.out).as_posix() for p in first.out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second.out).as_posix() for p in second.out.rglob("*") if p.is_file())
    for name in sorted(set(names) - {"manifest.json", "manifest.sha256"}):  # the manifest and its hash hold run times
        assert (first.out / name).read_bytes() == (second.out / name).read_bytes(), name
    one, two = json.loads(first.text("manifest.json")), json.loads(second.text("manifest.json"))
    for manifest in (one, two):
        assert manifest["started"].endswith("Z") and manifest["finished"].endswith("Z")
        del manifest["started"], manifest["finished"]
    # The command lines differ only in the output folder each run was given.
    assert [a.replace("case2", "case1") for a in two.pop("command_line")] == one.pop("command_line")
    assert one == two


def test_evidence_files_are_identical_before_and_after_the_run(case_runs):
    for run in case_runs:
        assert len(run.evidence_before) == 206  # 202 corpus task files + 4 hostile ones
        assert run.evidence_after == run.evidence_before


def test_timeline_jsonl_has_timesketch_mandatory_fields_with_iso_utc_datetime(case_run):
    lines = _jsonl(case_run.text("timeline.jsonl"))
    assert len(lines) > 300
    for line in lines:
        for field in TIMESKETCH_MANDATORY:
            assert isinstance(line[field], str) and line[field], (field, line)
        when = datetime.fromisoformat(line["datetime"])
        assert when.utcoffset().total_seconds() == 0
        assert line["timestamp"] == int((when - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 1_000_000)
        assert not TIMESKETCH_SCRUBBED & set(line)
        assert all(not isinstance(v, (dict, list)) for v in line.values())


def test_every_timeline_row_carries_its_provenance(case_run):
    dated = _jsonl(case_run.text("timeline.jsonl"))
    undated = _jsonl(case_run.text("timeline_undated.jsonl"))
    for line in dated + undated:
        assert line["artifact"] and line["location"] and line["source"], line
        assert line["evidence"] == str(case_run.target)
        assert line["basis"] in ("utc", "local", "offset", "local-unconverted")
        assert line["precision"]
    sounds = [line for line in dated if line["task"] == "\\Microsoft\\Windows\\Multimedia\\SystemSoundsService"
              and line["meaning"] == "registration_date"]
    assert len(sounds) == 1
    assert sounds[0]["location"].endswith("Windows/System32/Tasks/Microsoft/Windows/Multimedia/SystemSoundsService")
    assert sounds[0]["as_written"] == "2005-06-23T13:48:00-08:00"
    assert sounds[0]["datetime"] == "2005-06-23T21:48:00+00:00" and sounds[0]["basis"] == "offset"


def test_rows_without_utc_time_go_to_the_undated_file_not_dropped(case_run):
    dated = _jsonl(case_run.text("timeline.jsonl"))
    undated = _jsonl(case_run.text("timeline_undated.jsonl"))
    assert len(dated) + len(undated) == len(case_run.case.timeline)
    # The hostile tasks' Date has no offset and the folder has no registry: local time, zone unknown.
    hostile = [line for line in undated if line["as_written"] == "2024-03-14T09:12:44"]
    assert len(hostile) == 4
    assert {line["basis"] for line in hostile} == {"local-unconverted"}
    assert all("datetime" not in line for line in undated)
    assert all(line["undated_reason"] == "local time, machine time zone unknown" for line in hostile)


def test_timeline_csv_follows_plaso_l2tcsv_columns(case_run):
    rows = list(csv.reader(io.StringIO(case_run.text("timeline.csv"))))
    assert rows[0] == L2TCSV_COLUMNS
    body = rows[1:]

    def times(row):  # a merged row stands for one time per MACB letter, as in plaso
        return max(1, 4 - row[3].count("."))

    assert sum(times(row) for row in body) == len(case_run.case.timeline)
    assert len(body) < len(case_run.case.timeline)  # task files' M/A/C/B times of one instant are merged
    assert all(len(row) == 17 for row in body)
    dated = [row for row in body if row[2] == "UTC"]
    assert sum(times(row) for row in dated) == len(_jsonl(case_run.text("timeline.jsonl")))
    for row in dated:
        datetime.strptime(f"{row[0]} {row[1]}", "%m/%d/%Y %H:%M:%S")
        assert row[11] == "2" and row[15].startswith("triage:")
    local = [row for row in body if row[2] == "local (zone unknown)" and row[0] == "03/14/2024"]
    assert len(local) == 4 and {row[1] for row in local} == {"09:12:44"}


def test_findings_json_has_the_hunt_report_keys_and_evidence(case_run):
    findings = json.loads(case_run.text("findings.json"))
    assert len(findings) == len(case_run.case.findings) >= 4
    for seq, finding in enumerate(findings, start=1):
        assert finding["hunt_id"] == f"TH-HUNTIN-{HUNT_DATE}-{seq:03d}"
        for key in ("technique", "host", "user", "task", "title", "risk_level", "confidence", "recommended_action",
                    "confidence_basis", "techniques"):
            assert key in finding
        assert finding["evidence"]
        for item in finding["evidence"]:
            assert item["source"] and item["location"] and item["value"]
    hostile = next(f for f in findings if f["task"] == "\\=cmd|' \\C calc'!A0")
    assert hostile["user"] == "S-1-5-18"
    assert hostile["technique"] == "T1053.005"


def test_findings_md_lists_exactly_the_hunt_report_fields_in_order(case_run):
    text = case_run.text("findings.md")
    fields = ["Hunt ID", "Technique", "Host", "User", "Evidence", "Risk Level", "Confidence", "Recommended Action"]
    blocks = text.split("\n## ")[1:]
    assert len(blocks) == len(case_run.case.findings)
    for block, finding in zip(blocks, case_run.case.findings):
        labels = [line.split("**")[1].rstrip(":") for line in block.splitlines() if line.startswith("- **")]
        assert labels == fields
        assert f"- **Hunt ID:** {finding.hunt_id}" in block
        assert f"- **Risk Level:** {finding.risk_level}" in block


def test_tasks_jsonl_has_one_sorted_entity_per_task(case_run):
    lines = _jsonl(case_run.text("tasks.jsonl"))
    assert len(lines) == len(case_run.case.entities)
    assert [line["key"] for line in lines] == sorted(line["key"] for line in lines)
    game_over = next(line for line in lines if line["task"] == "\\GameOver")
    assert game_over["sources"] == ["task_xml"]
    assert game_over["definitions"][0]["actions"][0]["command"] == "C:\\TMP\\mim.exe"
    assert game_over["timeline"]


def test_formula_cells_are_neutralised_in_timeline_csv(case_run):
    rows = list(csv.reader(io.StringIO(case_run.text("timeline.csv"))))
    for row in rows[1:]:
        for cell in row:
            assert cell == "-" or not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_control_characters_are_escaped_in_every_text_output(case_run):
    for name in sorted(p.relative_to(case_run.out).as_posix() for p in case_run.out.rglob("*") if p.is_file()):
        raw = (case_run.out / name).read_text(encoding="utf-8")
        for ch in ("\x1b", "\x07", "\u202e"):
            assert ch not in raw, (name, repr(ch))
    # The value itself is kept: JSON escapes it, the others show it escaped.
    entity = next(json.loads(line) for line in case_run.text("tasks.jsonl").splitlines() if "ansi" in line)
    assert entity["task"] == "\\ansi\x1b[2J\x07bell"
    assert "\\ansi\\x1b[2J\\x07bell" in case_run.text("timeline.csv")
    assert "\\ansi\\x1b[2J\\x07bell" in case_run.text("report.html")


def test_script_tags_from_evidence_are_inert_in_html_and_markdown(case_run):
    html = case_run.text("report.html")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, not dropped
    assert "&lt;/td&gt;&lt;script&gt;alert(3)" in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # No tag loads or links anything outside the page: only in-page "#..." links.
    assert re.findall(r"<[a-zA-Z][^<>]*\b(?:src|href|action)\s*=\s*\"(?!#)", html) == []
    md = case_run.text("findings.md")
    assert "<script" not in md.lower()
    assert "&lt;script&gt;alert(4)&lt;/script" in md


def test_hostile_author_reaches_jsonl_exactly(case_run):
    lines = [json.loads(line) for line in case_run.text("tasks.jsonl").splitlines()]
    entity = next(line for line in lines if line["task"] == "\\..\\..\\escape")
    definition = entity["definitions"][0]
    assert definition["author"] == '=HYPERLINK("http://evil.example/x","click")'
    assert definition["description"].endswith("\u202eexe.txt")
