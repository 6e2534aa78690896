"""The fleet outputs on real evidence, triaged item by item exactly as a Dask worker does it
(:func:`triage.hunt.triage_item`): the committed WS-FIN-042 E01, the same machine as a raw GPT disk
(same host name, different image), and the Linux host web-prod-07."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from test_images.build_linux import build_linux, missing_tools
from triage.hunt import fleet_summary_text, identify_hosts, triage_item, write_fleet
from triage.stacking import MIN_FLEET_HOSTS, build_stacks

HUNT_DATE = "20240314"


@pytest.fixture(scope="module")
def fleet_run(committed_windows_e01, windows_images, tmp_path_factory) -> dict:
    if missing_tools():
        pytest.skip(f"image tools missing: {', '.join(missing_tools())}")
    base = tmp_path_factory.mktemp("fleet-report")
    linux = build_linux(base / "linux")["e01"]
    items = sorted(str(p) for p in (committed_windows_e01, windows_images["gpt"], linux))
    out = base / "hunt"
    (out / "cases").mkdir(parents=True)
    summaries = [triage_item(path, str(out / "cases" / f"item{n}"), HUNT_DATE, {"symbols": None, "sigma": []})
                 for n, path in enumerate(items)]
    args = argparse.Namespace(hunt_date=HUNT_DATE, threshold_percent=5.0, threshold_hosts=3)
    record = write_fleet(out, summaries, {}, args)
    stacks = build_stacks(identify_hosts(summaries), 5.0, 3)
    return {"out": out, "record": record, "stacks": stacks, "summaries": summaries}


def test_same_host_name_from_two_images_is_kept_twice_and_flagged(fleet_run):
    items = fleet_run["record"]["items"]
    windows = [i for i in items if i["host_name"] == "WS-FIN-042"]
    assert len(windows) == 2
    assert all(i["name_shared_with_other_evidence"] for i in windows)
    assert {i["host"] for i in windows} == {f"WS-FIN-042 [{i['evidence_sha256'][:8]}]" for i in windows}
    assert len({i["evidence_sha256"] for i in windows}) == 2
    linux = [i for i in items if i["host_name"] == "web-prod-07"]
    assert len(linux) == 1 and not linux[0]["name_shared_with_other_evidence"]
    assert fleet_run["record"]["fleet_hosts"] == 3


def test_stacks_never_mix_operating_system_families(fleet_run):
    family_of = {i["host"]: i["family"] for i in fleet_run["record"]["items"]}
    assert set(family_of.values()) == {"windows", "unix"}
    stacks = [json.loads(line) for line in (fleet_run["out"] / "stacks.jsonl").read_text().splitlines()]
    assert stacks and all({family_of[h] for h in s["hosts"]} == {s["family"]} for s in stacks)
    assert all(s["fleet_hosts"] == (2 if s["family"] == "windows" else 1) for s in stacks)
    # The Windows task paths are on both Windows hosts, never "rare" merely for missing on Linux.
    defrag = next(s for s in stacks if s["kind"] == "task_path" and s["value"].endswith("\\scheduleddefrag"))
    assert defrag["host_count"] == 2 and defrag["percent"] == 100.0


def test_below_the_minimum_fleet_size_stacks_are_shown_but_raise_no_finding(fleet_run):
    record = fleet_run["record"]
    assert record["findings"] == []
    assert record["minimum_hosts_for_stacking_findings"] == MIN_FLEET_HOSTS == 10
    assert {f: v["stacking_findings"] for f, v in record["families"].items()} == {"windows": False, "unix": False}
    assert any(s["rare"] for s in fleet_run["stacks"])  # rare by the numbers, yet no finding
    page = (fleet_run["out"] / "fleet_report.html").read_text(encoding="utf-8")
    assert "fewer than the 10 needed before rarity means anything" in page
    assert "Stacks, rarest first" in page


def test_fleet_report_is_styled_like_report_html_and_links_each_hosts_report(fleet_run):
    out = fleet_run["out"]
    page = (out / "fleet_report.html").read_text(encoding="utf-8")
    host_report = next(out.glob("cases/*/report.html")).read_text(encoding="utf-8")
    style = host_report[host_report.index("<style>"):host_report.index("</style>")]
    assert style in page
    links = re.findall(r'<a href="([^"#]+)">', page)
    assert len(links) == 3
    assert all((out / link).is_file() and link.endswith("/report.html") for link in links)
    assert "overflow-wrap: anywhere" in page and "<script" not in page


def test_terminal_summary_names_hosts_rarest_entries_and_top_findings(fleet_run):
    text = fleet_summary_text(fleet_run["record"], fleet_run["stacks"], width=100)
    assert text.startswith("Hosts: 3 (1 unix, 2 windows); evidence items: 3 done, 0 failed")
    assert "Same host name from different evidence (kept apart): WS-FIN-042" in text
    assert "Rarest entries:" in text and "Top per-host findings:" in text
    top = [line for line in text.split("Top per-host findings:", 1)[1].splitlines() if line.startswith("WS-FIN-042")]
    assert len(top) == 6 and all(f"TH-HUNTIN-{HUNT_DATE}-00" in line and "Critical" in line for line in top)
    assert max(len(line) for line in text.splitlines()) <= 100
