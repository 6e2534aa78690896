"""report.html of the bundled image as a reader gets it: printed by headless Chromium to PDF, the first
page holding the summary with the four hunted scenarios, stories only for tasks with findings, the
chart over the incident window, and the action Windows runs. The case folder is written by the CLI."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_findings import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package 'chromium' (test_images/debian-packages.txt)
PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")
# Issue 20: the bundled image's report prints in at most 15 pages, on A4 and on Letter, at full scale (no
# shrink-to-fit). Measured with 33 findings: 15 Letter and 14 A4 pages (21 Letter before the print layout).
MAX_PAGES = 15
PAPERS = {"A4": (595, 842), "Letter": (612, 792)}  # PDF points, rounded


@pytest.fixture(scope="module")
def case(committed_windows_e01, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("print") / "case"
    done = subprocess.run([sys.executable, "-m", "triage", str(committed_windows_e01), "-o", str(out), "--hunt-date",
                           "20260101", "-q"], cwd=ROOT, capture_output=True, timeout=600, check=False)
    assert done.returncode == 1, done.stderr  # 1: completed; the image's malformed and hostile task XML are gaps
    return out


def print_to_pdf(page: Path, pdf: Path, profile: Path) -> bytes:
    """page printed by headless Chromium, as a reader's 'Print to PDF' does (no header or footer line)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's 'chromium' (test_images/debian-packages.txt) to print "
                    "report.html to PDF")
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}",
                    f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.resolve().as_uri()],
                   capture_output=True, timeout=900, check=True)
    return pdf.read_bytes()


def pdf_pages(page: Path, profile: Path) -> int:
    return len(PAGE.findall(print_to_pdf(page, page.with_suffix(".pdf"), profile)))


def page_text(pdf: Path, number: int) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is absent: install Debian's 'poppler-utils' (test_images/debian-packages.txt)")
    return subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), str(pdf), "-"], capture_output=True,
                          text=True, timeout=900, check=True).stdout


@pytest.fixture(scope="module", params=sorted(PAPERS))
def printed(request, case, tmp_path_factory) -> tuple[str, Path]:
    """(paper, PDF) of the case's report.html on that paper: the report names no paper size (the reader's
    printer chooses), so this copy adds the one @page rule a print dialog's paper choice stands for."""
    paper = request.param
    base = tmp_path_factory.mktemp(f"pdf-{paper}")
    page = case / "report.html"
    copy = base / "report.html"
    copy.write_text(page.read_text(encoding="utf-8").replace(
        "</head>", f"<style>@page {{ size: {paper}; }}</style></head>", 1), encoding="utf-8")
    pdf = base / "report.pdf"
    print_to_pdf(copy, pdf, base / "profile")
    return paper, pdf


def test_bundled_report_prints_in_at_most_15_pages_on_a4_and_letter(printed):
    paper, pdf = printed
    data = pdf.read_bytes()
    pages = len(PAGE.findall(data))
    assert 1 < pages <= MAX_PAGES, (paper, pages)
    media = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    boxes = {tuple(round(float(v)) for v in box) for box in media}
    assert boxes == {PAPERS[paper]}, (paper, boxes)  # printed on the paper asked for, every page


WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)</word>')


def glance_column(pdf: Path, number: int, header: str, next_header: str) -> str:
    """The words printed in one column of the page's findings table, top to bottom, joined without spaces: a
    task name wrapped inside its cell reads whole again (plain text interleaves the cells' wrapped lines)."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is absent: install Debian's 'poppler-utils' (test_images/debian-packages.txt)")
    xml = subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), "-bbox", str(pdf), "-"],
                         capture_output=True, text=True, timeout=900, check=True).stdout
    words = [(float(x), float(y), html.unescape(text)) for x, y, text in WORD.findall(xml)]
    row = next(y for x, y, text in words if text == "Risk")  # the table's header row (Risk is its first heading)
    left = next(x for x, y, text in words if text == header and abs(y - row) < 1)
    right = next(x for x, y, text in words if text == next_header and abs(y - row) < 1)
    cells = sorted((y, x, text) for x, y, text in words if left - 1 <= x < right - 1 and y > row + 1)
    return "".join(text for _, _, text in cells)


def test_first_printed_page_holds_the_summary_and_the_four_hunted_scenarios(printed, case):
    paper, pdf = printed
    first = " ".join(page_text(pdf, 1).split())
    tasks = glance_column(pdf, 1, "Task", "What")
    ids = " ".join(re.findall(r"TH-HUNTIN-\d{8}-\d{3}", first))
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    for task, _, _ in SCENARIOS:
        finding = next(f for f in findings if f["task"] == task)
        assert task in tasks, (paper, task)
        assert finding["hunt_id"] in ids and finding["hunt_id"] in first, (paper, task)
    # every finding has its line on page 1, the four hunted scenarios among them
    assert ids.count("TH-HUNTIN-20260101-") == len(findings) == 33
    assert re.search(r"triage examined 1 evidence item\(s\): .*windows10\.E01.* found 60 scheduled task\(s\) "
                     r"and job\(s\) and raised 33 finding\(s\)", first)


def test_what_paper_leaves_out_is_said_on_paper(printed):
    paper, pdf = printed
    text = " ".join(" ".join(page_text(pdf, n).split()) for n in range(1, len(PAGE.findall(pdf.read_bytes())) + 1))
    # the TaskCache Actions blobs (over 1,000 characters) are cut and say where the whole value is
    assert re.search(r"… \[[\d,]+ more characters; the whole value is in findings\.json\]", text), paper
    # \T1053_005_OnLogon's timeline (14 rows) is summarised with its count and first and last time
    assert re.search(r"… \d+ more row\(s\) at \d+ time\(s\), 2021-01-27T\S+Z to 2021-01-27T\S+Z: every row is in "
                     r"timeline\.csv", text), paper
    assert "On paper a raw value over 120 characters is cut" in text


def test_stories_only_for_tasks_with_findings_and_the_rest_in_one_table(case):
    text = (case / "report.html").read_text(encoding="utf-8")
    findings = re.findall(r'<article class="finding', text)
    stories = re.findall(r'<article class="task"', text)
    quiet = text[text.index('<section id="quiet">'):text.index('<section id="evidence">')]
    assert len(stories) == len(findings) == 33
    assert quiet.count("<tr id=") == 60 - 33
    assert "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag" in quiet  # a stock task: one line, no story


def test_chart_is_scaled_to_the_incident_and_names_the_outliers(case):
    text = (case / "report.html").read_text(encoding="utf-8")
    chart = text[text.index('<section id="chart">'):text.index('<section id="findings">')]
    ticks = re.findall(r'text-anchor="middle" fill="#495057">([^<]+)</text>', chart)
    assert ticks and all(t.startswith("2024-") for t in ticks)  # not years from 2008 on
    note = html.unescape(re.search(r'<p class="note">Scaled to the incident window;[^<]+</p>', chart).group(0))
    assert "2021-01-27 (\\T1053_005_OnLogon)" in note  # the 2021 events are outside, and said so


def test_overview_shows_the_action_windows_runs_when_registry_and_file_differ(case):
    text = html.unescape((case / "report.html").read_text(encoding="utf-8"))
    story = text[text.index("<h3>\\Microsoft\\Office\\Office Feature Updates"):]
    story = story[:story.index("</article>")]
    runs = re.search(r"Action Windows runs:</strong> <span class=\"value\">([^<]+)</span>", story).group(1)
    assert runs == "exec: C:\\Users\\Public\\Libraries\\odrep.exe"
    assert "the task file says: <span class=\"value\">exec: C:\\Program Files\\Common Files\\Microsoft Shared\\ClickToRun" \
           "\\OfficeC2RClient.exe /frequentupdate SCHEDULEDTASK" in story


def test_print_css_keeps_utc_times_on_one_line(case):
    text = (case / "report.html").read_text(encoding="utf-8")
    style = text[text.index("<style>"):text.index("</style>")]
    assert "@media print" in style and "@page" in style
    assert re.search(r"span\.time \{[^}]*white-space: nowrap", style) and re.search(r"td\.time \{[^}]*white-space: nowrap", style)
    times = re.findall(r'<span class="time">([^<]+)</span>', text)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z|.+\(local, zone unknown\)", t) for t in times)


def test_macb_times_of_one_file_are_one_csv_row(case):
    rows = list(csv.reader(io.StringIO((case / "timeline.csv").read_text(encoding="utf-8"))))
    defrag = [r for r in rows if r[12] == "sysvol/Windows/System32/Tasks/Microsoft/Windows/Defrag/ScheduledDefrag"
              and r[4] == "FILE"]
    # $STANDARD_INFORMATION and $FILE_NAME: two attribute sets, each one row when its four times are equal
    assert sorted(r[3] for r in defrag) == ["MACB", "MACB"]
    assert all(r[6].count(";") == 3 for r in defrag)


def test_timeless_schedlgu_header_lines_are_no_timeline_rows(case):
    rows = list(csv.reader(io.StringIO((case / "timeline.csv").read_text(encoding="utf-8"))))
    schedlgu = [r for r in rows if r[5] == "SchedLgU.txt"]
    assert schedlgu and all(r[0] != "-" for r in schedlgu)
    assert (case / "timeline_undated.jsonl").read_text(encoding="utf-8").count("SchedLgU") == 0
