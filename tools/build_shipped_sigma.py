"""Build ``triage/data/shipped_sigma.json``: the shipped Sigma rules (``triage/rules``) converted to SQL once.

Every run evaluates the same hundred-odd shipped rules; parsing and converting them with pySigma took a
quarter to half a second of each run. The converted form is package data instead of a cache written at run
time because triage writes nothing outside the case folder, runs from read-only installs, and gives the same
bytes on every machine. The file records a key (the rule files' bytes and the converter versions,
``triage.detect.sigma.shipped_rules_key``): when the installed files or versions differ, triage converts the
rules itself, so a stale file costs time, never a different answer. ``tests/detect/test_shipped_sigma.py``
fails when the file is not what this script writes. Usage::

    python3 tools/build_shipped_sigma.py            # rewrites triage/data/shipped_sigma.json
    python3 tools/build_shipped_sigma.py --check    # exit 1 when the file is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.generated_file import write_or_check  # noqa: E402
from triage.detect.sigma import CONVERTED, converted_shipped_rules  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return write_or_check(argv, __doc__.splitlines()[0], CONVERTED, converted_shipped_rules,
                          "python3 tools/build_shipped_sigma.py")


if __name__ == "__main__":
    raise SystemExit(main())
