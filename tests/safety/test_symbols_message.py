"""Issue 22.6: a symbol file at the expected path that volatility cannot use is named as such, not
"put it at the path where it already is", and is kept (volatility's offline "download" step used to
truncate and delete it); a failed memory run leaves no volatility cache and writes nothing in --symbols."""

from __future__ import annotations

import os
import shutil

import pytest

from test_images.memimage import build_memory_image
from tests.safety.helpers import tree_state, triage_cli


@pytest.fixture(scope="module")
def win10(tmp_path_factory):
    return build_memory_image(tmp_path_factory.mktemp("mem") / "win10", "win10")


def _isf(symbols):
    return next((symbols / "windows").rglob("*.json.xz"))


def test_missing_symbols_say_where_to_put_them(win10, tmp_path):
    empty = tmp_path / "symbols"
    empty.mkdir()
    result = triage_cli("--memory", win10["image"], "--symbols", empty, "-q", tmpdir=tmp_path / "tmp")
    assert result.returncode == 1
    expected = empty / _isf(win10["symbols"]).relative_to(win10["symbols"])
    line = next(line for line in result.stderr.decode().splitlines() if "symbols for the kernel" in line)
    assert "no symbols for the kernel ntkrnlmp.pdb GUID" in line and f"put its ISF at {expected}" in line
    assert os.listdir(tmp_path / "tmp") == []  # no triage-vol-cache-* left behind
    assert os.listdir(empty) == []  # nothing created in the examiner's symbols folder


def test_garbage_symbols_at_the_expected_path_are_named_as_unusable(win10, tmp_path):
    symbols = tmp_path / "symbols"
    shutil.copytree(win10["symbols"], symbols)
    isf = _isf(symbols)
    isf.write_bytes(b"this is not an ISF")
    before = tree_state(symbols)
    result = triage_cli("--memory", win10["image"], "--symbols", symbols, "-q", tmpdir=tmp_path / "tmp")
    assert result.returncode == 1
    line = next(line for line in result.stderr.decode().splitlines() if "symbols for the kernel" in line)
    assert f"are at {isf} but it is not a valid xz-compressed ISF JSON file (LZMAError" in line
    assert "put its ISF at" not in line and "replace that file" in line
    assert os.listdir(tmp_path / "tmp") == []
    assert tree_state(symbols) == before  # the examiner's file is still there, byte for byte
