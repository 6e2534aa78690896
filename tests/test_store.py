"""The run's on-disk store (issue 17): its order is Python's order, records come back whole, and a task's
tasks.jsonl line written in pieces is the JSON of the whole entity."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from triage import correlate
from triage.collect import Context
from triage.correlate import row_order, timeline_sort_key
from triage.export import write_case
from triage.export.jsonl import task_line_parts
from triage.export.safe import json_text
from triage.records import Provenance, Stamp, TaskEvent, TimelineEvent, to_dict
from triage.run import run
from triage.store import CaseStore, StoredEvents, StoredTaskTimeline, sortable

# Text with the characters the encoding escapes (NUL, 0x01), their neighbours, non-ASCII and surrogates.
TEXT = st.text(alphabet=st.sampled_from(["\x00", "\x01", "\x02", "a", "b", "é", "\u20ac", "\ud800", "\U0001f600"]),
               max_size=4)
KEY = st.tuples(st.one_of(st.none(), TEXT), st.integers(min_value=-(2 ** 70), max_value=2 ** 70), st.lists(TEXT, max_size=3))


def _python_order(key: tuple) -> tuple:
    """The tuple as the exports' key gives it to Python: None and "" are the same empty text."""
    return (key[0] or "", key[1], key[2])


@settings(max_examples=400, deadline=None)
@given(KEY, KEY)
def test_sortable_bytes_compare_as_the_python_tuples_do(a, b):
    assert (sortable(a) < sortable(b)) == (_python_order(a) < _python_order(b))
    assert (sortable(a) == sortable(b)) == (_python_order(a) == _python_order(b))


def _event(number: int, task: str | None) -> TaskEvent:
    return TaskEvent(time=Stamp(utc=f"2024-01-01T00:00:{number:02d}Z", meaning="event_logged"), channel="Security",
                     event_id=4698, action="created", task=task,
                     provenance=Provenance(artifact="evtx", location="Security.evtx", offset=number),
                     fields={"n": number, "nested": {"x": [number]}})


def test_events_come_back_whole_in_collection_order_per_task_with_prepare_applied():
    store = CaseStore()
    events = [_event(n, task) for n, task in enumerate([r"\A", r"\B", r"\A", None, r"\B", r"\A"])]
    for event in events:
        store.add_event(event)

    def prepare(event: TaskEvent) -> None:
        event.host = "WS-1"

    store.prepare = prepare
    groups = store.event_groups()
    of_a = [number for number, first in groups.items() if first.task == r"\A"]
    assert [e.provenance.offset for e in StoredEvents(store, of_a)] == [0, 2, 5]
    expected = [dataclasses.replace(e, host="WS-1") for e in events]
    assert StoredEvents(store) == expected and len(StoredEvents(store)) == 6
    folder = store.folder
    store.close()
    assert not folder.exists()


def test_a_task_line_written_in_pieces_is_the_json_of_the_whole_entity(committed_windows_e01):
    case = run([str(committed_windows_e01)], Context(quiet=True), hunt_date="20260101")
    assert case.entities and any(len(e.events) > 1 for e in case.entities)
    for entity in case.entities:
        whole = dataclasses.replace(entity, events=list(entity.events), timeline=list(entity.timeline))
        assert "".join(task_line_parts(entity)) == json_text(to_dict(whole)) + "\n"
    assert "".join(case.store.task_lines()) == "".join(
        part for entity in sorted(case.entities, key=lambda e: e.key) for part in task_line_parts(entity))


def _case_files(image, out) -> dict[str, bytes]:
    ctx = Context(quiet=True)
    case = run([str(image)], ctx, hunt_date="20260101")
    write_case(case, out, ctx, argv=["triage", str(image), "-o", "CASE", "--hunt-date", "20260101"])
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "manifest.sha256")}


def test_tasks_judged_over_their_stored_events_and_rows_give_the_same_case_folder(committed_windows_e01, tmp_path,
                                                                                  monkeypatch):
    """A task of more than HELD_EVENTS events is built and judged over store-backed views (issue 17): with the
    threshold at 0 every task takes that path, and the case folder is byte for byte the one of held tasks."""
    held = _case_files(committed_windows_e01, tmp_path / "held")
    monkeypatch.setattr(correlate, "HELD_EVENTS", 0)
    streamed = _case_files(committed_windows_e01, tmp_path / "streamed")
    assert held.keys() == streamed.keys() and "timeline.csv" in held
    assert [name for name in held if held[name] != streamed[name]] == []


def test_a_task_timeline_given_unsorted_is_read_back_in_its_own_order():
    store = CaseStore()
    try:
        rows = [TimelineEvent(utc=f"2024-01-01T00:00:{n % 7:02d}Z", what="last run", meaning="last_run", task=r"\A",
                              host=None, source="evtx", provenance=Provenance(artifact="evtx", location="x", offset=n))
                for n in range(30)]
        store.add_rows(r"\A", rows, row_order, lambda row: True, task_order=timeline_sort_key)
        assert list(StoredTaskTimeline(store, r"\A")) == sorted(rows, key=timeline_sort_key)
    finally:
        store.close()
