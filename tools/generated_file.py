"""The command line every ``tools/build_*.py`` shares: write the generated package-data file, or with ``--check``
exit 1 when the committed one is not what the builder makes now (tests and CI run the check)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(argv: list[str] | None, description: str, output: Path, make_text: Callable[[], str],
                   command: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when the file differs")
    args = parser.parse_args(argv)
    text = make_text()
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date: run {command}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}: {text.count(chr(10))} lines")
    return 0
