"""Shared atheris harness: one libFuzzer run over named parser targets (tests/hostile/parser_targets.py).

The input goes to every named target; an exception other than the target's documented error is a
finding (libFuzzer writes the input as ``crash-<sha1>`` under the artifact directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["triage.parsers"]):
    from tests.hostile.parser_targets import TARGETS  # noqa: E402


def main(names: list[str]) -> None:
    targets = [TARGETS[name] for name in names]

    def one_input(data: bytes) -> None:
        for target in targets:
            try:
                target.call(data)
            except target.error:
                pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
