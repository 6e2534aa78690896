"""The run's on-disk store (issue 17): its order is Python's order, records come back whole, and a task's
tasks.jsonl line written in pieces is the JSON of the whole entity."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.collect import Context
from triage.export.jsonl import task_line_parts
from triage.export.safe import json_text
from triage.records import Provenance, Stamp, TaskEvent, to_dict
from triage.run import run
from triage.store import CaseStore, StoredEvents, sortable

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
