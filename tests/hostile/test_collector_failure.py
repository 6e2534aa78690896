"""A collector that fails keeps the records it produced before failing.

The Unix collector reads cron, anacron, at and timers before the logs; when the logs stage fails (here a
real MemoryError: the child runs under a 512 MB address-space limit and one log holds 16 MiB of cron
lines) the jobs, the events of the logs read before and their findings are all still reported, with one
gap naming the stage. Before, the collector yielded nothing until its end and a failure lost the host
(0 tasks, 0 findings).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from test_images.build_linux import build_linux, missing_tools
from tests.hostile.child_run import run_triage

CRON_LINE = b"Dec  5 08:00:01 web-prod-07 CRON[1234]: (root) CMD (/tmp/x)\n"


@pytest.fixture(scope="module")
def linux_tree(tmp_path_factory):
    if missing := missing_tools():
        pytest.skip(f"image tools missing: {', '.join(missing)}")
    return build_linux(tmp_path_factory.mktemp("linux"))["dir"]


def test_memory_error_in_the_logs_stage_keeps_the_jobs_earlier_events_and_findings(linux_tree, tmp_path):
    root = tmp_path / "linux"
    shutil.copytree(linux_tree, root, symlinks=True)
    (root / "var/log/syslog.3").write_bytes(CRON_LINE * (16 * 1024 * 1024 // len(CRON_LINE)))
    clean = run_triage([linux_tree], tmp_path, "clean")
    starved = run_triage([root], tmp_path, "starved", address_space_mb=512)

    assert starved.code == 1
    assert ("(logs)", "logs not fully read: MemoryError; what was found before is kept") in starved.gaps()
    counts, reference = starved.manifest["counts"], clean.manifest["counts"]
    # the scenario's 46 jobs: 23 cron lines, 10 cron scripts, 4 anacron, 3 at, 6 timers (as tests/linux counts them)
    assert counts["unix_jobs"] == reference["unix_jobs"] == 46
    assert counts["findings"] == reference["findings"] > 0
    # syslog and syslog.1 were read before the failure (logs go prefix by prefix: syslog*, then cron)
    clean_rows = _log_rows(clean.case)
    assert _log_rows(starved.case) == {location: n for location, n in clean_rows.items() if location != "/var/log/cron"}
    assert clean_rows["/var/log/syslog"] > 0 and counts["events"] == reference["events"] - clean_rows["/var/log/cron"]


def _log_rows(case) -> Counter:
    """Timeline rows of log lines, per log file."""
    rows = Counter()
    for name in ("timeline.jsonl", "timeline_undated.jsonl"):
        for line in (case / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["source"] == "syslog":
                rows[row["location"]] += 1
    return rows
