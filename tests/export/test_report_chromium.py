"""report.html as a real browser shows it: Debian's chromium, headless, no network services."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

WIDTH, HEIGHT = 1280, 4000


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("Debian package 'chromium' is required to check report.html in a real browser")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}",
               f"--window-size={WIDTH},{HEIGHT}", *args]
    return subprocess.run(command, capture_output=True, timeout=900, check=True)


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, filtered scanline bytes) of a PNG, read with zlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def rendered(case_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("chromium")
    url = (case_run.out / "report.html").resolve().as_uri()
    dom = chromium(base / "profile-dom", "--dump-dom", url).stdout.decode("utf-8")
    shot = base / "report.png"
    chromium(base / "profile-shot", f"--screenshot={shot}", url)
    return dom, shot


def test_every_finding_hunt_id_is_in_the_rendered_page(case_run, rendered):
    dom, _ = rendered
    shown = re.findall(r'<span class="hunt-id">(TH-HUNTIN-\d{8}-\d{3})</span>', dom)
    assert shown == [f.hunt_id for f in case_run.case.findings]
    assert len(shown) >= 4


def test_browser_builds_no_script_or_image_element_from_evidence(rendered):
    dom, _ = rendered
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom


def test_report_has_an_inline_svg_timeline_chart(rendered):
    dom, _ = rendered
    chart = dom[dom.index('<section id="chart">'):dom.index('<section id="findings">')]
    assert "<svg" in chart and "Task creation and runs over time" in chart
    assert chart.count("<polygon") >= 1  # at least one task creation mark


def test_screenshot_of_the_report_is_not_blank(rendered):
    _, shot = rendered
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    # A blank page filters to (almost) all zero bytes; text, tables and the chart do not.
    nonzero = sum(1 for b in pixels[:: 97] if b) / len(pixels[:: 97])
    assert nonzero > 0.02
    assert len(set(pixels)) > 100
