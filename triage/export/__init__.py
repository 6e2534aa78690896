"""The case folder (``-o DIR``): timeline, findings, entities, HTML report and a verifiable manifest.

Output file names are fixed constants, never derived from evidence, so a task named ``..\\..\\x``
cannot place a file outside the folder. Every file is written piece by piece (a timeline line, a task)
from sorted records as UTF-8 with ``\\n`` line ends and hashed while written: the same input gives the
same bytes, except the manifest's ``started``/``finished`` run times. The manifest is written last, with the SHA-256 of
every other file.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from triage.context import Context
from triage.export import detections, html, jsonl, manifest, markdown, timeline_csv
from triage.export.casefolder import (
    MANIFEST_HASH_NAME,
    CaseBuilder,
    CaseFolderError,
    check_output,
)
from triage.correlate import row_order
from triage.records import TimelineEvent
from triage.store import StoredTimeline

OUTPUT_FILES = ("tasks.jsonl", "timeline.jsonl", "timeline_undated.jsonl", "timeline.csv", "findings.json",
                "findings.md", "report.html")


def _counts(case, rows: int, undated: int, gaps: int) -> dict:
    by_risk = Counter(f.risk_level for f in case.findings)
    return {
        "tasks": len(case.entities),
        "tasks_by_kind": dict(sorted(Counter(e.kind for e in case.entities).items())),
        "definitions": len(case.definitions),
        "events": len(case.events),
        "processes": len(case.processes),
        "unix_jobs": len(case.unix_jobs),
        "timeline_rows": rows,
        "timeline_rows_undated": undated,
        "findings": len(case.findings),
        "findings_by_risk": {risk: by_risk[risk] for risk in html.RISKS if by_risk[risk]},
        "gaps": gaps,
    }


def _summaries(times: Iterable[tuple[str, str | None]]) -> dict[str, html.RowSummary]:
    """Per task key, its rows summed up for the report, from (task, UTC time) of each row in export order."""
    summaries: dict[str, html.RowSummary] = defaultdict(html.RowSummary)
    for task, utc in times:
        summaries[task].add(utc)
    return dict(summaries)


def _rows_in_memory(ordered: list[TimelineEvent]) -> Callable[[set[str] | None], Iterable[TimelineEvent]]:
    """``rows_of`` for the report over rows already held in order: one task's straight from an index (the report
    asks task by task), several tasks' or all by one pass."""
    by_task: dict[str, list[TimelineEvent]] = defaultdict(list)
    for row in ordered:
        by_task[row.task].append(row)

    def rows_of(keys: set[str] | None) -> Iterable[TimelineEvent]:
        if keys is None:
            return ordered
        if len(keys) == 1:
            return by_task.get(next(iter(keys)), [])
        return (row for row in ordered if row.task in keys)
    return rows_of


def write_case(case, out_dir, ctx: Context, *, argv: list[str], examiner: str | None = None,
               case_id: str | None = None, force: bool = False) -> Path:
    """Build the case folder in a temporary sibling and rename it into place; returns its path.

    Every file is written piece by piece and hashed while written, so none is ever held whole.
    Raises :class:`CaseFolderError` (nothing left behind) when it cannot be written: a bad or
    non-empty ``-o`` (``force`` replaces a previous triage case only), evidence inside it, disk full."""
    out = check_output(out_dir, [ref.path for ref in case.evidence], force=force)
    evidence = manifest.describe_evidence(case.evidence, ctx)
    names = {entity.key: entity.task for entity in case.entities}
    timeline = case.timeline
    if isinstance(timeline, StoredTimeline):  # a run's: every pass is one ordered query of its store
        store = timeline.store
        summaries = _summaries(store.row_times())
        total, undated = len(timeline), store.undated_rows()
        rows_of: Callable[[set[str] | None], Iterable[TimelineEvent]] = store.rows
        all_rows: Callable[[], Iterable[TimelineEvent]] = store.rows
        dated_rows: Callable[[], Iterable[TimelineEvent]] = partial(store.rows, dated=True)
        undated_rows: Callable[[], Iterable[TimelineEvent]] = partial(store.rows, dated=False)
    else:  # a timeline cut by --since/--until, held in memory
        ordered = sorted(timeline, key=row_order)
        summaries = _summaries((row.task, row.utc) for row in ordered)
        total, undated = len(ordered), sum(jsonl.parse_utc(row.utc) is None for row in ordered)
        rows_of = _rows_in_memory(ordered)
        all_rows = dated_rows = undated_rows = lambda: ordered
    # Each task's line was written by the run while the task was whole; records built by hand are rendered here.
    tasks: Callable[[], Iterable[str]] = case.store.task_lines if getattr(case, "store", None) else \
        lambda: (part for e in sorted(case.entities, key=lambda e: (e.key, e.host or "")) for part in jsonl.task_line_parts(e))
    counts = _counts(case, total, undated, len(ctx.gaps))
    version = manifest.tool_version()
    renderers: dict[str, Callable[[], Iterable[str]]] = {
        "tasks.jsonl": tasks,
        "timeline.jsonl": lambda: jsonl.timeline_lines(dated_rows(), names),
        "timeline_undated.jsonl": lambda: jsonl.undated_lines(undated_rows(), names),
        "timeline.csv": lambda: timeline_csv.timeline_csv_lines(all_rows(), names),
        "findings.json": lambda: (jsonl.findings_json(case.findings),),
        "findings.md": lambda: (markdown.findings_md(case.findings),),
        "report.html": lambda: html.report_html(case, gaps=ctx.gaps, evidence=evidence, counts=counts, rows_of=rows_of,
                                                summaries=summaries, examiner=examiner, case_id=case_id,
                                                version=version),
    }
    try:
        builder = CaseBuilder(out, force=force)
    except OSError as exc:
        raise CaseFolderError(f"cannot create the case folder beside {out}: {exc.strerror or exc}") from None
    try:
        outputs = []
        for name in OUTPUT_FILES:
            ctx.progress(f"writing {name} ...")
            size, digest = builder.write_text(name, renderers[name]())
            outputs.append({"file": name, "size": size, "sha256": digest})
        ctx.progress(f"writing {detections.LAYER_NAME} and {detections.DETECTIONS}/ ...")
        detection_files = detections.detection_files(case)
        detections.say_skipped_conversions(detection_files)
        for name, text in detection_files.items():  # attack-layer.json, detections/ (Sigma + SIEM)
            data = text.encode("utf-8")
            outputs.append({"file": name, "size": len(data), "sha256": builder.write(name, data)})
        ctx.progress(f"writing {manifest.MANIFEST_NAME} ...")
        record = manifest.build_manifest(case, ctx, argv=argv, examiner=examiner, case_id=case_id, evidence=evidence,
                                         outputs=outputs, counts=counts)
        digest = builder.write(manifest.MANIFEST_NAME, manifest.manifest_text(record).encode("utf-8"))
        builder.write(MANIFEST_HASH_NAME, manifest.manifest_hash_line(digest).encode("ascii"))
        builder.commit()
    except OSError as exc:
        builder.discard()
        where = exc.filename or out
        raise CaseFolderError(f"cannot write the case folder {out}: {exc.strerror or exc} ({where}); "
                              "nothing was left behind") from None
    except BaseException:  # interrupted (signal) or refused at commit: no partial case survives
        builder.discard()
        raise
    return out
