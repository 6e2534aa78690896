"""Issue 22.5: no raw control, escape or bidi character from evidence reaches the terminal.

The Linux test machine's file tree (the project's builder) with a hostile /etc/hostname: ESC[2J
(clear screen), OSC 0 (window title), OSC 8 (hyperlink), C1 CSI and U+202E. Its folder name
carries an ESC sequence too, so progress lines name hostile evidence. Summary, --task, progress,
warnings and `triage hunt` lines are checked byte by byte."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from test_images import linux_scenario
from test_images.build_linux import _write_tree
from tests.safety.helpers import HUNT_DATE, control_characters, triage_cli

HOSTILE_HOST = "\x1b[2Jweb\x1b]0;owned\x07-\x1b]8;;http://evil.example/\x1b\\prod\x1b]8;;\x1b\\\u202e70\x9b31m"
HOSTILE_DIR = "root\x1b[31mfs"


@pytest.fixture(scope="module")
def hostile_tree(tmp_path_factory):
    nodes = [dataclasses.replace(n, data=(HOSTILE_HOST + "\n").encode()) if n.path == "/etc/hostname" else n
             for n in linux_scenario.nodes()]
    root = tmp_path_factory.mktemp("terminal") / HOSTILE_DIR
    _write_tree(root, nodes)
    return root


def test_summary_and_progress_show_the_hostile_host_name_escaped(hostile_tree, tmp_path):
    result = triage_cli(hostile_tree, "-o", tmp_path / "case", "--hunt-date", HUNT_DATE, tmpdir=tmp_path / "tmp")
    assert result.returncode in (0, 1), result.stderr
    assert control_characters(result.stdout) == set() and control_characters(result.stderr) == set()
    out, err = result.stdout.decode(), result.stderr.decode()
    # the host name (dissect keeps the part before the first "."), escaped, in the table and the summary
    shown = "\\x1b[2Jweb\\x1b]0;owned\\x07-\\x1b]8;;http://evil"
    assert f"Host            {shown}" in out.splitlines()
    assert "root\\x1b[31mfs" in err  # progress lines name the evidence folder escaped
    hosts = {json.loads(line)["host"] for line in (tmp_path / "case/tasks.jsonl").read_text(encoding="utf-8").splitlines()}
    assert HOSTILE_HOST.split(".")[0] in hosts  # the case folder keeps the exact value (JSON escapes only)


def test_task_story_shows_no_control_character(hostile_tree, tmp_path):
    listing = triage_cli(hostile_tree, "-q", tmpdir=tmp_path / "tmp").stdout.decode().splitlines()
    task = next(line.split()[0] for line in listing if line.startswith("/etc/cron"))
    result = triage_cli(hostile_tree, "-q", "--task", task, tmpdir=tmp_path / "tmp")
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout.decode().splitlines()[1].startswith("Host: \\x1b[2Jweb")
    assert control_characters(result.stdout) == set() and control_characters(result.stderr) == set()


def test_hunt_lines_show_no_control_character(hostile_tree, tmp_path):
    broken = tmp_path / "broken\x1b]0;x\x07.E01"
    broken.write_bytes(b"EVF\x09\x0d\x0a\xff\x00" + b"\x00" * 64)  # an E01 signature and nothing else
    good = tmp_path / "good"
    shutil.copytree(hostile_tree, good, symlinks=True)
    result = triage_cli("hunt", broken, good, "-o", tmp_path / "hunt", "--workers", "1", "--hunt-date", HUNT_DATE,
                        tmpdir=tmp_path / "tmp")
    assert result.returncode == 1, result.stderr
    err = result.stderr.decode()
    assert control_characters(result.stdout) == set() and control_characters(result.stderr) == set()
    assert any(line.startswith("triage hunt: failed: ") and "broken\\x1b]0;x\\x07.E01" in line for line in err.splitlines())
