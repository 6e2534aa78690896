"""Contradictions on a task's timeline that are worth a finding.

- XML RegistrationInfo/Date later than the task file's creation: the date was written after the
  file existed (edited or forged XML).
- $STANDARD_INFORMATION created earlier than $FILE_NAME created: $SI was set back (timestomping);
  $FN is only written by the kernel.
- TaskCache key written after the last logged create/update: the registry copy changed with no
  event saying so.
- Runs logged for a task that has no definition in the task folders and TaskCache read for its host.

Both claims about something missing (no later logged update, no definition) are made only where the
stores were read whole (:mod:`triage.stores`); otherwise :func:`definition_status` says what was not examined.
"""

from __future__ import annotations

import heapq

from triage.detect import Hit, JudgeContext
from triage.records import Entity, EvidenceItem, Stamp
from triage.stores import Absence
from triage.timeorder import earliest, latest, utc_key

_RUN_ACTIONS = {"started", "finished", "process_created", "action_started", "action_completed", "run_by_user"}
_DEFINING_ACTIONS = {"created", "updated", "registered"}


def _times(stamps: list[Stamp], meaning: str) -> list[Stamp]:
    return [s for s in stamps if s.meaning == meaning and s.utc]


def _file_item(definition, stamp: Stamp, label: str) -> EvidenceItem:
    return EvidenceItem(source=f"task file {label}", location=definition.file.path,
                        value=f"{stamp.utc} (as written {stamp.as_written})", time=stamp.utc,
                        evidence_sha256=definition.provenance.evidence_sha256)


def check_timeline(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    hits: list[Hit] = []
    for definition in entity.definitions:
        if definition.file is None:
            continue
        si_created = _times(definition.file.times, "si_created")
        fn_created = _times(definition.file.times, "fn_created")
        if si_created and fn_created and utc_key(si_created[0].utc) < utc_key(fn_created[0].utc):
            hits.append(Hit(
                rule="timestomped_task_file", risk="High", techniques=["T1070.006"],
                title="Task file $STANDARD_INFORMATION creation time is earlier than its $FILE_NAME time (timestomping)",
                evidence=[_file_item(definition, si_created[0], "$SI created"), _file_item(definition, fn_created[0], "$FN created")],
                action=f"Collect {definition.file.path} and the $MFT/$UsnJrnl of the volume; establish the true creation time from $FN and the USN journal.",
                single_source_ok=True,
            ))
        if definition.source == "task_xml" and definition.date and definition.date.utc and si_created and fn_created:
            created = earliest((si_created[0].utc, fn_created[0].utc))
            if utc_key(definition.date.utc) > utc_key(created):
                hits.append(Hit(
                    rule="xml_date_after_file_creation", risk="Medium",
                    title="Task XML RegistrationInfo/Date is later than the task file's creation",
                    evidence=[EvidenceItem(source="task XML RegistrationInfo/Date", location=definition.provenance.location,
                                           value=f"{definition.date.as_written} (UTC {definition.date.utc})", time=definition.date.utc,
                                           evidence_sha256=definition.provenance.evidence_sha256),
                              _file_item(definition, si_created[0], "$SI created")],
                    action=f"Compare {definition.file.path} with its TaskCache entry and the 106/140/4698/4702 events to find who rewrote it.",
                    single_source_ok=True,
                ))
    hits.extend(_registry_after_events(entity, ctx))
    hits.extend(_runs_without_definition(entity, ctx))
    return hits


def _registry_after_events(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    defining = [e for e in entity.events if e.action in _DEFINING_ACTIONS and e.time.utc]
    logged = [e.time.utc for e in defining]
    if not logged:
        return []
    if any(ctx.stores.log_gaps(e.provenance.evidence, e.provenance.location) for e in defining):
        return []  # part of a log that holds its updates was unreadable: a later update may be in it
    last_logged = latest(logged)
    for definition in entity.definitions:
        if definition.source != "taskcache":
            continue
        for stamp in _times(definition.stamps, "key_last_written"):
            if utc_key(stamp.utc) > utc_key(last_logged):
                return [Hit(
                    rule="registry_written_after_last_logged_update", risk="Medium", techniques=["T1112"],
                    title="TaskCache key was written after the last logged create/update of the task",
                    evidence=[EvidenceItem(source="TaskCache key last write", location=definition.provenance.location,
                                           value=stamp.utc, time=stamp.utc, evidence_sha256=definition.provenance.evidence_sha256),
                              EvidenceItem(source="last logged create/update event", location="event logs", value=last_logged, time=last_logged)],
                    action="Export the task's TaskCache Actions/Triggers values and compare them with the last logged TaskContent; check Sysmon 13 for the writer.",
                )]
    return []


def definition_absence(entity: Entity, ctx: JudgeContext) -> Absence:
    """May "no definition of this task" be claimed? Only where the task folders and TaskCache were read
    for the task's host and no gap covers the place its file or key would be."""
    relative = "\\" + entity.task.strip("\\")
    return ctx.stores.absence(entity.host, ("task_files", "taskcache"), {"task_files": relative, "taskcache": "Tree" + relative})


def _runs_without_definition(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    if entity.kind != "windows_task" or entity.definitions:
        return []
    # The ten first runs (sorted(...)[:10], ties in event order) as the events stream by: a task may log 35,000.
    runs = heapq.nsmallest(10, (e for e in entity.events if e.action in _RUN_ACTIONS),
                           key=lambda e: (utc_key(e.time.utc), e.provenance.offset or 0))
    if not runs or any(e.definition is not None for e in entity.events):
        return []
    looked = definition_absence(entity, ctx)
    if not looked.claimable:
        return []  # the entity's status says "definition not examined (...)"
    first = runs[0]
    deleted = any(e.action == "deleted" for e in entity.events)
    title = ("Task ran and was then deleted: runs and deletion are logged, and the task folders and TaskCache read hold no definition"
             if deleted else "Task runs are logged but the task folders and TaskCache read hold no definition of it (nor does any creation event)")
    return [Hit(
        rule="runs_without_definition", risk="High", techniques=["T1070.009"] if deleted else ["T1070"],
        title=title,
        evidence=[EvidenceItem(source=f"{e.channel} {e.event_id}", location=f"{e.provenance.location} record {e.provenance.offset}",
                               value=e.command_line or e.action, time=e.time.utc, evidence_sha256=e.provenance.evidence_sha256)
                  for e in runs]
                 + looked.evidence("no task file or TaskCache entry for this task"),
        action=f"Look for the task in memory and in Volume Shadow Copies; the first logged run was at {first.time.utc}.",
        single_source_ok=True,
    )]
