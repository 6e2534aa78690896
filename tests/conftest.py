"""Shared fixtures: the Windows 10 test machine in every form, built once per test session, and the
shared sample corpus (../shared/corpus), which tests reach only through ``CORPUS`` and the ``corpus``
fixture so that a checkout without it skips them with one clear reason instead of failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_images.build import COMMITTED_E01, build_windows

ROOT = Path(__file__).resolve().parents[1]
# Real public samples (PROVENANCE.md there). A path only: nothing may be read from it at import time.
CORPUS: Path = ROOT / ".." / "shared" / "corpus"
CORPUS_MISSING = (f"needs the shared sample corpus ../shared/corpus next to the checkout "
                  f"({CORPUS.resolve()}): not found")

# The committed image (test_images/windows10.E01); the builder reproduces it byte for byte.
COMMITTED_WINDOWS_E01: Path = COMMITTED_E01


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus folder; the test is skipped, saying where the corpus belongs, when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(CORPUS_MISSING)
    return CORPUS


@pytest.fixture(scope="session")
def windows_images(corpus, tmp_path_factory) -> dict[str, Path]:
    """Every form of WS-FIN-042 by name (see test_images.build): tree, ntfs, gpt, mbr, e01, qcow2,
    vmdk, vhd, vhdx, kape_dir, kape_zip, kape_vhdx, velociraptor_zip. The builder copies real stock
    task files and event logs from the corpus."""
    return build_windows(tmp_path_factory.mktemp("windows-images"))


@pytest.fixture(scope="session")
def committed_windows_e01() -> Path:
    return COMMITTED_WINDOWS_E01
