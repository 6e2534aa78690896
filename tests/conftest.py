"""Shared fixtures: the Windows 10 test machine in every form, built once per test session, and the
shared sample corpus (../shared/corpus), which tests reach only through ``CORPUS`` and the ``corpus``
fixture so that a checkout without it skips them with one clear reason instead of failing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_images.build import COMMITTED_E01, build_windows

ROOT = Path(__file__).resolve().parents[1]
# pytest imports pdb, whose readline exports COLUMNS/LINES (80x24) behind os.environ's back: every CLI a test
# spawns would cut its tables to 80 columns. Output piped to a test is not cut; a test wanting a width sets COLUMNS.
for _name in ("COLUMNS", "LINES"):
    if _name not in os.environ:
        os.unsetenv(_name)
# Real public samples (PROVENANCE.md there). A path only: nothing may be read from it at import time.
CORPUS: Path = ROOT / ".." / "shared" / "corpus"
CORPUS_MISSING = (f"needs the shared sample corpus ../shared/corpus next to the checkout "
                  f"({CORPUS.resolve()}): not found")

# The committed image (test_images/windows10.E01); the builder reproduces it byte for byte.
COMMITTED_WINDOWS_E01: Path = COMMITTED_E01


def _caused_by_missing_corpus(error: BaseException | None) -> bool:
    """The error, or one it arose from, is a corpus file not found (the builder copies corpus files too)."""
    corpus = str(CORPUS.resolve())
    while error is not None:
        if isinstance(error, OSError) and error.filename and str(Path(error.filename).resolve()).startswith(corpus):
            return True
        if corpus in str(error) or "shared/corpus" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without the corpus, a test (or fixture) that fails only because a corpus file is missing is reported
    as skipped with the one reason, like the tests that ask for the ``corpus`` fixture; any other failure stays."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and not CORPUS.is_dir() \
            and _caused_by_missing_corpus(call.excinfo.value):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {CORPUS_MISSING}")


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
