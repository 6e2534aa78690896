"""Shared fixtures: the Windows 10 test machine in every form, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_images.build import COMMITTED_E01, build_windows

# The committed image (test_images/windows10.E01); the builder reproduces it byte for byte.
COMMITTED_WINDOWS_E01: Path = COMMITTED_E01


@pytest.fixture(scope="session")
def windows_images(tmp_path_factory) -> dict[str, Path]:
    """Every form of WS-FIN-042 by name (see test_images.build): tree, ntfs, gpt, mbr, e01, qcow2,
    vmdk, vhd, vhdx, kape_dir, kape_zip, kape_vhdx, velociraptor_zip."""
    return build_windows(tmp_path_factory.mktemp("windows-images"))


@pytest.fixture(scope="session")
def committed_windows_e01() -> Path:
    return COMMITTED_WINDOWS_E01
