"""The Linux test host built once per session (raw GPT, E01, tar, directory) and triage's output for
each form, collected once through a real dissect Target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dissect.target import Target

from test_images.build_linux import build_linux, missing_tools
from triage.collect import Context, Source
from triage.collect.unix_jobs import collect
from triage.records import EvidenceRef, HostInfo, TaskEvent, UnixJob

FORMS = ("raw", "e01", "tar", "dir")


@dataclass
class Collected:
    form: str
    path: Path
    target: Target
    jobs: list[UnixJob]
    events: list[TaskEvent]
    gaps: list[str]
    records: list

    def job(self, entry: str) -> UnixJob:
        matches = [j for j in self.jobs if j.entry == entry]
        assert len(matches) == 1, f"{entry}: {len(matches)} records"
        return matches[0]


@pytest.fixture(scope="session")
def linux_images(tmp_path_factory) -> dict[str, Path]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"image tools missing: {', '.join(missing)}")
    return build_linux(tmp_path_factory.mktemp("linux"))


@pytest.fixture(scope="session")
def collected(linux_images) -> dict[str, Collected]:
    out = {}
    for form in FORMS:
        path = linux_images[form]
        target = Target.open(path)
        source = Source(ref=EvidenceRef(path=str(path), kind=form), target=target,
                        host=HostInfo(hostname=target.hostname), tz=ZoneInfo("Europe/Berlin"), os_family="linux")
        ctx = Context(quiet=True)
        records = list(collect(source, ctx))
        out[form] = Collected(
            form=form, path=path, target=target,
            jobs=[r for r in records if isinstance(r, UnixJob)],
            events=[r for r in records if isinstance(r, TaskEvent)],
            gaps=[g.line() for g in ctx.gaps], records=records,
        )
    return out
