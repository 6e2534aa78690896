"""Which gaps concern which task, found by lookup instead of comparing every gap with every task.

A gap concerns a task when it is in the same evidence item and is either about one of the task's own
records (its file, key or log) or about a whole source that could hold more of it (a hive, a log, a
volume) rather than about another task's file. Checking that pairwise is gaps x tasks: 20,000 tiny
broken task files are 20,000 gaps and 20,000 tasks, 400 million comparisons. The index groups the
gaps once by evidence item and by place, so each task costs only its own records.
"""

from __future__ import annotations

import itertools

from triage.records import Entity, Gap

# A gap at a path holding one of these is about one task's (or job's) own file, not a whole source.
TASK_FILE_MARKERS = ("/tasks/", "/cron", "/systemd/", "/at/", "/atjobs/")


def is_task_file(location: str) -> bool:
    return any(marker in location.lower().replace("\\", "/") for marker in TASK_FILE_MARKERS)


class GapIndex:
    """The gaps of one run grouped by (evidence, location) and, for whole-source gaps, by evidence."""

    def __init__(self, gaps: list[Gap]):
        self.gaps = gaps
        self.size = len(gaps)
        self.at_place: dict[tuple[str, str], list[Gap]] = {}
        self.whole_source: dict[str, list[Gap]] = {}
        for gap in gaps:
            self.at_place.setdefault((gap.evidence, gap.location), []).append(gap)
            if not is_task_file(gap.location):
                self.whole_source.setdefault(gap.evidence, []).append(gap)

    def concerning(self, entity: Entity) -> list[Gap]:
        """The gaps that concern this task (each gap once)."""
        evidence, own = set(), {d.file.path for d in entity.definitions if d.file}
        for record in itertools.chain(entity.definitions, entity.events, entity.unix_jobs):  # one pass, none held
            evidence.add(record.provenance.evidence)
            own.add(record.provenance.location)
        found = [gap for item in sorted(evidence, key=str) for gap in self.whole_source.get(item, ())]
        for item in sorted(evidence, key=str):
            for location in sorted(own, key=str):  # a whole-source gap at the task's own place is already listed
                found += [gap for gap in self.at_place.get((item, location), ()) if is_task_file(gap.location)]
        return found

    def count(self, entity: Entity) -> int:
        """How many gaps concern this task (each gap counted once)."""
        return len(self.concerning(entity))


_last: GapIndex | None = None


def gap_index(gaps: list[Gap]) -> GapIndex:
    """The index of this list of gaps, built once and rebuilt only when the list has grown."""
    global _last
    if _last is None or _last.gaps is not gaps or _last.size != len(gaps):
        _last = GapIndex(gaps)
    return _last
