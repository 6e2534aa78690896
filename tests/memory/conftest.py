"""Fixtures for the memory tests: small synthetic images (4 MiB) built once per session, the triage
memory pass run once per scenario, and a helper that runs stock `vol` with its own cache directory so
nothing depends on (or writes to) ~/.cache/volatility3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from test_images.memimage import build_memory_image  # noqa: E402
from triage.collect import Context, Source  # noqa: E402
from triage.collect import memory  # noqa: E402
from triage.records import EvidenceRef  # noqa: E402


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """{"win10": {...}, "win7": {...}} as build_memory_image returns them."""
    base = tmp_path_factory.mktemp("memimages")
    return {name: build_memory_image(base / name, name) for name in ("win10", "win7")}


class MemoryRun:
    def __init__(self, records, gaps):
        self.records = records
        self.gaps = gaps
        self.processes = {r.pid: r for r in records if type(r).__name__ == "TaskProcess"}
        self.definitions = {r.task: r for r in records if type(r).__name__ == "TaskDefinition" and r.source == "memory_taskcache"}
        self.rebuilt = {r.task: r for r in records if type(r).__name__ == "TaskDefinition" and r.source == "command_line"}


def run_collector(image: Path, symbols: Path | None) -> MemoryRun:
    ctx = Context(quiet=True, options={"symbols": str(symbols)} if symbols else {})
    source = Source(ref=EvidenceRef(path=str(image), kind="memory"), memory=image)
    run = MemoryRun(list(memory.collect(source, ctx)), ctx.gaps)
    run.host = source.host
    return run


@pytest.fixture(scope="session")
def win10(images):
    return run_collector(images["win10"]["image"], images["win10"]["symbols"])


@pytest.fixture(scope="session")
def win7(images):
    return run_collector(images["win7"]["image"], images["win7"]["symbols"])


@pytest.fixture(scope="session")
def vol(tmp_path_factory):
    """Run the stock `vol` CLI (offline, private cache) and return its JSON rows."""
    cache = tmp_path_factory.mktemp("volcache")

    def run(built: dict, plugin: str, *args: str, plugins: str | None = None, out_dir: Path | None = None) -> list[dict]:
        """``plugins``: the folder given to ``vol -p`` (e.g. "plugins" or the package's folder)."""
        cmd = ["vol", "-q", "--offline", "--cache-path", str(cache), "-r", "json", "-f", str(built["image"]),
               "-s", str(built["symbols"])]
        if plugins:
            cmd += ["-p", plugins]
        if out_dir:
            cmd += ["-o", str(out_dir)]
        # `import triage` inside the plugins must be this checkout, not whichever copy is installed.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(cmd + [plugin, *args], capture_output=True, text=True, timeout=900, cwd=str(ROOT), env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    return run
