"""Times are compared and sorted as instants, not as ISO text of varying width.

As text ``"...:00.500000Z" < "...:00Z"`` (``.`` sorts before ``Z``), so half a second after a full
second would be put before it; these tests feed real records through the real correlator, filter,
timeline check and stacking code with exactly those spellings."""

from __future__ import annotations

from triage.correlate import correlate, filter_timeline
from triage.detect import JudgeContext
from triage.detect.timeline_checks import _registry_after_events
from triage.records import Provenance, Stamp, StoreRead, TaskDefinition, TaskEvent
from triage.stacking import build_stacks
from triage.stores import StoreIndex
from triage.timeorder import earliest, latest, utc_key

WHOLE = "2024-03-14T10:00:00Z"
HALF = "2024-03-14T10:00:00.500000Z"
TENTH = "2024-03-14T10:00:00.1Z"


def _event(utc: str, record: int, action: str = "started") -> TaskEvent:
    return TaskEvent(time=Stamp(meaning="event_logged", utc=utc, as_written=utc), channel="Security", event_id=4698,
                     action=action, task="\\Backdoor", provenance=Provenance(artifact="evtx", location="Security.evtx",
                                                                            offset=record))


def test_fixed_width_key_orders_sub_second_times():
    assert HALF < WHOLE  # the trap: as text, later sorts first
    assert utc_key(WHOLE) < utc_key(TENTH) < utc_key(HALF)
    assert sorted([HALF, WHOLE, TENTH], key=utc_key) == [WHOLE, TENTH, HALF]
    assert utc_key("2024-03-14T11:00:00+01:00") == utc_key(WHOLE)
    assert earliest([HALF, WHOLE]) == WHOLE and latest([WHOLE, HALF, None]) == HALF


def test_timeline_puts_a_sub_second_event_after_the_whole_second():
    # Record 2 is logged at .5 s, record 1 at the whole second: the timeline must read 1 then 2.
    entities, timeline = correlate([], [_event(HALF, 2), _event(WHOLE, 1), _event(TENTH, 3)], [], [])
    assert [row.provenance.offset for row in timeline] == [1, 3, 2]
    assert [row.provenance.offset for row in entities[0].timeline] == [1, 3, 2]


def test_since_and_until_compare_instants():
    _, timeline = correlate([], [_event(HALF, 2), _event(WHOLE, 1)], [], [])
    assert [r.provenance.offset for r in filter_timeline(timeline, since="2024-03-14T10:00:00.2Z")] == [2]
    assert [r.provenance.offset for r in filter_timeline(timeline, until="2024-03-14T10:00:00.2Z")] == [1]


def test_registry_write_half_a_second_after_the_last_logged_update_is_seen():
    key_time = Stamp(meaning="key_last_written", utc=HALF, as_written="0x0 (Tasks key)")
    definition = TaskDefinition(task="\\Backdoor", source="taskcache", stamps=[key_time],
                                provenance=Provenance(artifact="taskcache", location="HKLM\\...\\Tasks\\{X}"))
    entities, _ = correlate([definition], [_event(WHOLE, 1, action="updated")], [], [])
    # The Security log was read whole (no gap over it), so "no later logged update" may be claimed.
    logs_read = StoreIndex([StoreRead(evidence="Security.evtx", store="eventlog", location="Security.evtx",
                                      channel="Security", records=1)])
    hits = _registry_after_events(entities[0], JudgeContext(hunt_date="20240314", stores=logs_read))
    assert [h.rule for h in hits] == ["registry_written_after_last_logged_update"]


def test_fleet_first_and_last_seen_are_instants():
    hosts = [{"host": "A", "entities": [{"task": "\\T", "kind": "windows_task", "stacks": [["task_path", "\\t"]],
                                         "first_seen": HALF, "last_seen": HALF}], "findings": []},
             {"host": "B", "entities": [{"task": "\\T", "kind": "windows_task", "stacks": [["task_path", "\\t"]],
                                         "first_seen": WHOLE, "last_seen": WHOLE}], "findings": []}]
    stack = build_stacks(hosts)[0]
    assert (stack["first_seen"], stack["last_seen"]) == (WHOLE, HALF)
