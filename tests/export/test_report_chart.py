"""The report's chart (issue 17): drawn from streamed passes over the ordered rows, marks of one kind on one
pixel of a lane drawn as one that says how many, so what it holds and draws is bounded by lanes x pixels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from triage.correlate import row_order
from triage.export.html import incident_window, timeline_chart
from triage.records import Entity, Provenance, TimelineEvent
from triage.store import CaseStore

START = datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
MARK = re.compile(r'<(polygon|circle|rect) [^>]*><title>([^<]*)</title>')


def _row(task: str, seconds: float, *, meaning: str = "last_run", what: str = "last run", offset: int = 0,
         cls: type[TimelineEvent] = TimelineEvent) -> TimelineEvent:
    utc = (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return cls(utc=utc, what=what, meaning=meaning, task=task, host="WS-1", source="evtx",
               provenance=Provenance(artifact="evtx", location="Operational.evtx", offset=offset))


def _entity(key: str) -> Entity:
    return Entity(key=key, task=key, kind="windows_task", host="WS-1")


def _marks(chart: str) -> list[tuple[str, str]]:
    return MARK.findall(chart[chart.index("<svg"):chart.index("</svg>")])


def _represented(marks: list[tuple[str, str]]) -> int:
    return sum(int(m.group(1)) if (m := re.match(r"(\d+) marks", title)) else 1 for _, title in marks)


def test_runs_on_one_pixel_of_a_lane_are_one_mark_saying_how_many_first_and_last():
    rows = [_row(r"\A", n, offset=n) for n in range(5)]  # five runs within 4 s: one pixel of a 20-day window
    rows.append(_row(r"\A", 0, meaning="registered", what="registered"))  # another kind on that pixel: its own mark
    rows.append(_row(r"\A", 20 * 86400, offset=99))  # a run 20 days later: alone
    ordered = sorted(rows, key=row_order)
    chart = timeline_chart([_entity(r"\A")], lambda: iter(ordered))
    marks = _marks(chart)
    assert [kind for kind, _ in marks] == ["polygon", "circle", "circle"]
    assert marks[1][1] == ("5 marks (ran) 2024-03-01T10:00:00.000000Z to 2024-03-01T10:00:04.000000Z; "
                           "first: last run (evtx); last: last run (evtx)")
    assert marks[0][1] == "2024-03-01T10:00:00.000000Z created: registered (evtx)"
    assert marks[2][1] == "2024-03-21T10:00:00.000000Z ran: last run (evtx)"
    assert _represented(marks) == 7


def test_marks_apart_by_more_than_a_pixel_stay_apart():
    rows = [_row(r"\A", n * 86400, offset=n) for n in range(10)]  # one run a day over 9 days: ~90 px apart
    chart = timeline_chart([_entity(r"\A")], lambda: iter(rows))
    assert len(_marks(chart)) == 10 and "marks (" not in chart


def test_chart_of_a_stored_timeline_is_bounded_by_lanes_and_pixels_not_rows():
    store = CaseStore()
    tasks = [r"\A", r"\B", r"\C"]
    rows_per_task = 4000
    try:
        for lane, task in enumerate(tasks):
            # a run every 7 minutes over ~19 days: many runs share each of the lane's ~830 pixels
            rows = [_row(task, n * 420 + lane, offset=n) for n in range(rows_per_task)]
            store.add_rows(task, rows, row_order, lambda row: True)
        store.finish_rows()
        chart = timeline_chart([_entity(t) for t in tasks], lambda: store.rows(set(tasks)))
    finally:
        store.close()
    marks = _marks(chart)
    assert len(marks) <= len(tasks) * (1180 - 20 - 340 + 1)  # one run mark per whole pixel of each lane at most
    assert len(marks) < len(tasks) * rows_per_task / 4
    assert _represented(marks) == len(tasks) * rows_per_task


class _Counted(TimelineEvent):
    """A row that counts how many of its kind are alive, to show what the chart keeps while rows stream by."""

    alive = 0

    def __del__(self) -> None:
        _Counted.alive -= 1


def test_chart_consumes_the_rows_as_a_stream_holding_only_the_marks_first_and_last_rows():
    total, peak, calls = 20000, 0, 0

    def rows() -> Iterator[TimelineEvent]:
        nonlocal peak, calls
        calls += 1
        for n in range(total):
            _Counted.alive += 1
            peak = max(peak, _Counted.alive)
            yield _row(r"\A", n * 60, offset=n, cls=_Counted)  # a run a minute over ~14 days

    chart = timeline_chart([_entity(r"\A")], rows)
    marks = _marks(chart)
    assert calls == 2  # one pass for the incident window, one to draw
    assert _represented(marks) == total
    assert peak <= 2 * len(marks) + 2 < total / 10  # a mark's first and last row, and the row in hand


def test_incident_window_is_the_largest_cluster_of_ascending_times():
    day = 86400.0
    assert incident_window([0.0, 100 * day, 100 * day + 1, 101 * day]) == (100 * day, 101 * day)
    assert incident_window([]) is None
