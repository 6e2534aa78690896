"""``report.html``: one self-contained page an examiner can hand over.

No network, no external assets, no JavaScript: CSS and the SVG chart are inline and a
Content-Security-Policy forbids everything else, so even a value that escaped escaping could not
load or run anything. Every value from evidence goes through :func:`triage.export.safe.html_text`.
The page skeleton and style live in ``triage/data/report.html.tmpl`` (``string.Template``; package data).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from string import Template
from typing import Any

from triage.export.jsonl import parse_utc
from triage.export.markdown import technique_text
from triage.export.safe import html_text as h
from triage.records import Entity, Finding, TimelineEvent
from triage.timeorder import utc_key

RISKS = ("Critical", "High", "Medium", "Low")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# What a timeline row means for the chart: a task coming into being, a task running, or a task changing.
_CREATED_MEANINGS = frozenset({"registration_date", "si_created", "fn_created", "created", "born", "registered"})
_RUN_MEANINGS = frozenset({"last_run", "last_successful_run", "process_created", "cron_run", "last_trigger"})
_CREATED_ACTIONS = frozenset({"created", "registered"})
_RUN_ACTIONS = frozenset({"started", "finished", "process_created", "action_started", "action_completed", "cron_run",
                          "at_run", "timer_service_start", "run_by_user", "launched"})
_CHANGED_ACTIONS = frozenset({"updated", "deleted", "enabled", "disabled"})
_MARK = {"created": ("#2b8a3e", "created"), "run": ("#1c5fb8", "ran"), "changed": ("#c92a2a", "changed or deleted")}


def anchor(prefix: str, text: str) -> str:
    """An id never derived from evidence text itself: a hash, so hostile names cannot break out."""
    return f"{prefix}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def chart_kind(row: TimelineEvent) -> str | None:
    if row.meaning in _CREATED_MEANINGS:
        return "created"
    if row.meaning in _RUN_MEANINGS:
        return "run"
    action = row.what.rsplit(": ", 1)[-1].replace(" ", "_") if ": " in row.what else ""
    if action in _CREATED_ACTIONS:
        return "created"
    if action in _RUN_ACTIONS:
        return "run"
    if action in _CHANGED_ACTIONS:
        return "changed"
    return None


def _seconds(when: datetime) -> float:
    return (when - _EPOCH).total_seconds()


def _tick_step(span: float) -> float:
    day = 86400.0
    for step in (60, 300, 900, 3600, 6 * 3600, day, 7 * day, 30 * day, 91 * day, 365 * day, 5 * 365 * day,
                 10 * 365 * day, 50 * 365 * day, 100 * 365 * day):
        if span / step <= 8:
            return step
    return 500 * 365 * day


def _tick_label(seconds: float, step: float) -> str:
    when = _EPOCH + timedelta(seconds=seconds)
    if step < 86400:
        return when.strftime("%Y-%m-%d %H:%M")
    if step < 365 * 86400:
        return when.strftime("%Y-%m-%d")
    return when.strftime("%Y")


# Marks further apart than this start a new cluster; the chart spans the cluster with the most marks.
_CLUSTER_GAP = 30 * 86400.0


def incident_window(ordered_times: Iterable[float]) -> tuple[float, float] | None:
    """(first, last) of the largest run of marks with no gap over 30 days: the incident, not the
    stock tasks' 2008 registration dates that would squeeze it against the edge. ``ordered_times`` come
    ascending (rows in the exports' order, time first), so one streamed pass holds nothing; None: no time."""
    times = iter(ordered_times)
    first = next(times, None)
    if first is None:
        return None
    best = (first, first, 1)
    start, count, previous = first, 1, first
    for current in times:
        if current < previous:
            raise ValueError("incident_window needs ascending times")
        if current - previous > _CLUSTER_GAP:
            start, count = current, 1
        else:
            count += 1
        if count > best[2]:
            best = (start, current, count)
        previous = current
    return best[0], best[1]


@dataclass
class _Mark:
    """The marks of one kind that land on one pixel of a lane, drawn as one: how many, the first and the last
    (each as (seconds, order of arrival, row)); nothing else of the rows is kept."""

    kind: str
    first: tuple[float, int, TimelineEvent]
    last: tuple[float, int, TimelineEvent]
    count: int = 1

    def title(self, word: str) -> str:
        row = self.first[2]
        if self.count == 1:
            return f"<title>{h(row.utc)} {h(word)}: {h(row.what)} ({h(row.source)})</title>"
        last = self.last[2]
        when = f"at {h(row.utc)}" if row.utc == last.utc else f"{h(row.utc)} to {h(last.utc)}"
        return (f"<title>{self.count} marks ({h(word)}) {when}; first: {h(row.what)} ({h(row.source)}); "
                f"last: {h(last.what)} ({h(last.source)})</title>")


def _chart_points(rows: Iterable[TimelineEvent], keys: set[str]) -> Iterator[tuple[float | None, str, TimelineEvent]]:
    """(seconds or None when undated, kind, row) of each row of those tasks that the chart marks, in row order."""
    for row in rows:
        if row.task not in keys:
            continue
        kind = chart_kind(row)
        if kind is None:
            continue
        when = parse_utc(row.utc)
        yield (None if when is None else _seconds(when)), kind, row


def timeline_chart(entities: list[Entity], rows: Callable[[], Iterable[TimelineEvent]]) -> str:
    """Inline SVG: one lane per task, a mark for each creation, run and change, over the incident window.

    ``rows()`` gives the tasks' timeline rows in the exports' order (time first), afresh on each call: one
    pass finds the incident window, a second draws; marks of one kind on the same pixel of a lane are drawn as
    one whose tooltip says how many, so the chart (and what is held for it) is bounded by lanes x pixels,
    not by rows (issue 17: 618,560 rows at 1 GB of logs)."""
    by_key = {entity.key: entity for entity in entities}
    undated = 0

    def dated_times() -> Iterator[float]:
        nonlocal undated
        for seconds, _, _ in _chart_points(rows(), set(by_key)):
            if seconds is None:
                undated += 1
            else:
                yield seconds

    window = incident_window(dated_times())
    if window is None:
        note = f" ({undated} without a UTC time)" if undated else ""
        return f'<p class="note">No task creation or run time in the evidence{h(note)}.</p>'
    low, high = window
    drawn_low, drawn_high = (low - 1800, high + 1800) if high - low < 3600 else (low, high)
    pad = (drawn_high - drawn_low) * 0.02
    drawn_low, drawn_high = drawn_low - pad, drawn_high + pad
    width, label_w, lane_h, top = 1180, 330, 15, 46
    x0, x1 = label_w + 10, width - 20

    def x(seconds: float) -> float:
        return round(x0 + (seconds - drawn_low) / (drawn_high - drawn_low) * (x1 - x0), 1)

    marks: dict[str, dict[tuple[str, int], _Mark]] = {}  # per lane (task key): per (kind, whole pixel)
    lane_start: dict[str, float] = {}
    outside = _Outside()
    for arrival, (seconds, kind, row) in enumerate(_chart_points(rows(), set(by_key))):
        if seconds is None:
            continue
        lane = marks.setdefault(row.task, {})
        if not low <= seconds <= high:
            outside.add(seconds, by_key[row.task])
            continue
        lane_start.setdefault(row.task, seconds)  # ascending: the first is the lane's earliest in the window
        pixel = (kind, math.floor(x(seconds)))  # the whole pixel of where it is drawn: one place, one mark
        point = (seconds, arrival, row)
        if pixel in lane:
            mark = lane[pixel]
            mark.count += 1
            mark.last = point
        else:
            lane[pixel] = _Mark(kind, point, point)
    lanes = sorted(marks, key=lambda key: (lane_start.get(key, high + 1), key))
    height = top + lane_h * len(lanes) + 40

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="chart" aria-label="Task creation and runs over time">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    step = _tick_step(drawn_high - drawn_low)
    tick = (int(drawn_low // step) + 1) * step
    while tick < drawn_high:
        tx = x(tick)
        parts.append(f'<line x1="{tx}" y1="{top - 6}" x2="{tx}" y2="{top + lane_h * len(lanes)}" stroke="#dee2e6"/>')
        parts.append(f'<text x="{tx}" y="{top - 12}" font-size="11" text-anchor="middle" fill="#495057">'
                     f'{h(_tick_label(tick, step))}</text>')
        tick += step
    for index, key in enumerate(lanes):
        entity = by_key[key]
        y = top + index * lane_h + lane_h / 2
        label = entity.task if len(entity.task) <= 46 else entity.task[:45] + "…"
        if index % 2:
            parts.append(f'<rect x="0" y="{top + index * lane_h}" width="{width}" height="{lane_h}" fill="#f8f9fa"/>')
        parts.append(f'<text x="{label_w}" y="{y + 4}" font-size="11" text-anchor="end" fill="#212529">'
                     f'<title>{h(entity.task)}</title>{h(label)}</text>')
        parts.append(f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#ced4da" stroke-width="0.5"/>')
        for mark in sorted(marks[key].values(), key=lambda m: (m.first[0], m.kind, m.first[1])):
            px = x(mark.first[0])
            colour, word = _MARK[mark.kind]
            tip = mark.title(word)
            if mark.kind == "created":
                parts.append(f'<polygon points="{px},{y - 6} {px - 5},{y + 4} {px + 5},{y + 4}" fill="{colour}">{tip}</polygon>')
            elif mark.kind == "run":
                parts.append(f'<circle cx="{px}" cy="{y}" r="4" fill="{colour}" fill-opacity="0.8">{tip}</circle>')
            else:
                parts.append(f'<rect x="{px - 4}" y="{y - 4}" width="8" height="8" fill="{colour}" '
                             f'transform="rotate(45 {px} {y})">{tip}</rect>')
    legend_y = top + lane_h * len(lanes) + 24
    legend_x = x0
    for kind in ("created", "run", "changed"):
        colour, word = _MARK[kind]
        parts.append(f'<circle cx="{legend_x}" cy="{legend_y - 4}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 10}" y="{legend_y}" font-size="12" fill="#212529">{h(word)}</text>')
        legend_x += 170
    if undated:
        parts.append(f'<text x="{legend_x}" y="{legend_y}" font-size="12" fill="#6c757d">'
                     f'{undated} mark(s) without a UTC time not drawn</text>')
    parts.append("</svg>")
    return "\n".join(parts) + outside.note()


@dataclass
class _Outside:
    """The marks outside the drawn window, summed up: how many, of which tasks, the first and the last."""

    count: int = 0
    tasks: set[str] = field(default_factory=set)
    first: tuple[float, str, str] | None = None  # (seconds, task key, task)
    last: tuple[float, str, str] | None = None

    def add(self, seconds: float, entity: Entity) -> None:
        point = (seconds, entity.key, entity.task)
        self.count += 1
        self.tasks.add(entity.key)
        if self.first is None or point[:2] < self.first[:2]:
            self.first = point
        if self.last is None or point[:2] >= self.last[:2]:
            self.last = point

    def note(self) -> str:
        """Say which marks fall outside the drawn window, so nothing is hidden by the scaling."""
        if self.first is None or self.last is None:
            return ""

        def when(seconds: float) -> str:
            return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%d")

        first, last = self.first, self.last
        span = f"{when(first[0])} ({first[2]})" + (f" to {when(last[0])} ({last[2]})" if self.count > 1 else "")
        return (f'<p class="note">Scaled to the incident window; {self.count} mark(s) of {len(self.tasks)} task(s) lie '
                f'outside it and are not drawn: {h(span)}. Every time is in the task stories below and in timeline.csv.</p>')


def _size(value: Any) -> str:
    return f"{value:,} bytes" if isinstance(value, int) else "—"


def _evidence_table(evidence: list[dict[str, Any]]) -> str:
    rows = []
    for item in evidence:
        ewf = item.get("ewf") or {}
        stored = ""
        if ewf:
            hashes = ", ".join(f"{name.upper()} {value}" for name, value in (ewf.get("stored_hashes") or {}).items())
            stored = f'<div class="ewf ewf-{h(ewf.get("status", "").split(" ")[0])}">stored in image: {h(hashes or "none")}' \
                     f' — <strong>{h(ewf.get("status", ""))}</strong></div>'
            segments = ewf.get("segments") or []
            if len(segments) > 1:
                stored += f"<div>{len(segments)} segments, each hashed in manifest.json</div>"
        files = item.get("files")
        if files:
            stored += f"<div>{len(files)} files, each hashed in manifest.json</div>"
        rows.append(f"<tr><td class=\"path\">{h(item.get('path'))}</td><td>{h(item.get('kind'))}</td>"
                    f"<td>{h(_size(item.get('size')))}</td><td class=\"hash\">{h(item.get('sha256') or '—')}{stored}</td></tr>")
    return ("<table><thead><tr><th>Evidence</th><th>Kind</th><th>Size</th><th>SHA-256 and verification</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _hosts_table(case) -> str:
    rows = [f"<tr><td>{h(host.hostname or '—')}</td><td>{h(host.os or '—')}</td><td>{h(host.timezone or '—')}</td>"
            f"<td class=\"path\">{h(host.evidence or '—')}</td></tr>" for host in case.hosts]
    return ("<table><thead><tr><th>Host</th><th>Operating system</th><th>Time zone</th><th>From evidence</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _stores_examined(case) -> str:
    """Absence helper's block: per host, the stores read and those not examined."""
    from triage.stores import summary_lines

    lines = summary_lines(getattr(case, "stores", []))
    if not lines:
        return ""
    return "<h3>Stores examined</h3><ul>" + "".join(f"<li>{h(line)}</li>" for line in lines) + "</ul>"


def _plain_summary(case, counts: dict[str, Any], evidence: list[dict[str, Any]]) -> str:
    """The first paragraph: what was examined and what was found, in words a manager reads."""
    hosts = sorted({host.hostname for host in case.hosts if host.hostname})
    systems = sorted({host.os for host in case.hosts if host.os})
    items = ", ".join(f"{item.get('path')} ({item.get('kind')})" for item in evidence)
    by_risk = counts["findings_by_risk"]
    risk_text = ", ".join(f"{by_risk[r]} {r}" for r in RISKS if by_risk.get(r)) or "none"
    tasks_with = len({f.task for f in case.findings})
    text = (f"triage examined {len(evidence)} evidence item(s): {items}"
            f"{' from host ' + ', '.join(hosts) if hosts else ''}{' (' + ', '.join(systems) + ')' if systems else ''}. "
            f"It found {counts['tasks']} scheduled task(s) and job(s) and raised {counts['findings']} finding(s) "
            f"on {tasks_with} of them ({risk_text}). ")
    if counts["gaps"]:
        text += (f"{counts['gaps']} part(s) of the evidence could not be read; they are listed under Gaps at the end "
                 "and may hide more. ")
    else:
        text += "Everything triage looks at in the evidence was read. "
    text += ("Findings are listed below by risk, the best-corroborated first; each has its evidence and a "
             "recommended action further on. All times are UTC.")
    return f'<p class="lead">{h(text)}</p>'


def _headline(finding: Finding) -> str:
    """The finding's main reason without the list of rule ids the full title carries."""
    reasons = finding.details.get("reasons") or []
    if not reasons:
        return finding.title
    more = f" (and {len(reasons) - 1} more reason{'s' if len(reasons) > 2 else ''})" if len(reasons) > 1 else ""
    return f"{reasons[0]['title']}{more}"


def _short_headline(finding: Finding) -> str:
    """The main reason up to its first explanation, for the one-line table on the first page."""
    reasons = finding.details.get("reasons") or []
    title = reasons[0]["title"] if reasons else finding.title
    cut = min((i for i in (title.find(" ("), title.find(": ")) if i > 20), default=len(title))
    more = f" (+{len(reasons) - 1})" if len(reasons) > 1 else ""
    return title[:cut] + more


def _unique_sentences(text: str) -> str:
    """Each sentence once: a finding's reasons often recommend the same step (collect and hash the program)."""
    seen: list[str] = []
    for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z])", text):
        if sentence and sentence not in seen:
            seen.append(sentence)
    return " ".join(seen)


_CONFIDENCE_ORDER = {"High": 0, "Medium": 1, "Low": 2}


def _glance(findings: list[Finding], task_anchors: dict[str, str]) -> str:
    """Every finding on one line, by risk and then by corroboration (confidence), so the best-supported
    findings of the highest risk come first."""
    if not findings:
        return '<p class="note">No finding was raised.</p>'
    order = sorted(findings, key=lambda f: (-_risk_rank(f.risk_level), _CONFIDENCE_ORDER.get(f.confidence, 3), f.hunt_id))
    rows = "".join(
        f'<tr><td><span class="badge risk-{h(f.risk_level.lower())}">{h(f.risk_level)}</span></td>'
        f"<td>{h(f.confidence)}</td>"
        f'<td class="nowrap"><a href="#{h(anchor("finding", f.hunt_id))}">{h(f.hunt_id)}</a></td>'
        f'<td class="path"><a href="#{h(task_anchors.get(f.task, anchor("task", f.task)))}">{h(f.task)}</a></td>'
        f"<td>{h(_short_headline(f))}</td></tr>" for f in order)
    return ('<table class="glance"><colgroup><col class="g-risk"><col class="g-conf"><col class="g-id"><col class="g-task">'
            '<col class="g-what"></colgroup><thead><tr><th>Risk</th><th>Confidence</th><th>Hunt ID</th><th>Task</th>'
            f"<th>What was found</th></tr></thead><tbody>{rows}</tbody></table>")


def _risk_rank(risk: str) -> int:
    return len(RISKS) - RISKS.index(risk) if risk in RISKS else 0


def _counts(counts: dict[str, Any]) -> str:
    cards = [
        ("Tasks and jobs", counts["tasks"]), ("Findings", counts["findings"]),
        ("Timeline rows", counts["timeline_rows"]), ("Events", counts["events"]),
        ("Gaps (not read)", counts["gaps"]),
    ]
    risk = " · ".join(f"{name} {counts['findings_by_risk'].get(name, 0)}" for name in RISKS)
    html = "".join(f'<div class="card"><div class="num">{h(value)}</div><div>{h(name)}</div></div>' for name, value in cards)
    return f'<div class="cards">{html}</div><p>Findings by risk: {h(risk)}</p>'


def _evidence_label(source: str, reasons: list[str]) -> str:
    """``task_xml (reason A; reason B)`` without the reasons the finding lists once above its evidence."""
    artifact, _, cited = source.partition(" (")
    if cited.endswith(")") and all(part in reasons for part in cited[:-1].split("; ")):
        return artifact
    return source


# On paper a raw value is cut after this many characters (a TaskCache Actions blob runs to over 1,000) and a
# task's timeline shows its first and last rows when it has more than PRINT_TIMELINE_ROWS; the screen keeps all,
# and the printed page says where the whole value or row is (findings.json, timeline.csv).
PRINT_VALUE_CHARS = 120
PRINT_TIMELINE_ROWS = 4
_PRINT_TIMELINE_HEAD, _PRINT_TIMELINE_TAIL = 2, 2


def _long_value(value: str, whole_in: str = "findings.json") -> str:
    """A raw value whole on screen; on paper its first PRINT_VALUE_CHARS characters and where the whole is.
    The whole value stays one unbroken text (searchable, copyable); the cut copy is a second, print-only span."""
    if len(value) <= PRINT_VALUE_CHARS:
        return f'<span class="value">{h(value)}</span>'
    return (f'<span class="value screen-only">{h(value)}</span><span class="value print-only">'
            f'{h(value[:PRINT_VALUE_CHARS])} … [{len(value) - PRINT_VALUE_CHARS:,} more characters; the whole value is '
            f'in {h(whole_in)}]</span>')


def _reasons_line(reasons: list[str], title: str) -> str:
    """Every reason on screen; on paper the first one is the heading just above, so it is named, not repeated."""
    if len(reasons) < 2:
        return f'<p class="reasons screen-only"><strong>Reasons:</strong> {h(reasons[0] if reasons else title)}</p>'
    return (f'<p class="reasons"><strong>Reasons:</strong> <span class="screen-only">{h(reasons[0])}; </span>'
            f'<span class="print-only">the heading above; </span>{h("; ".join(reasons[1:]))}</p>')


def _finding(finding: Finding, task_anchor: str) -> str:
    reasons = [r["title"] for r in finding.details.get("reasons") or []]
    evidence = "".join(
        f'<li><span class="src">{h(_evidence_label(item.source, reasons))}</span>'
        + (f' <span class="time">{h(item.time)}</span>' if item.time else "")
        + f' <span class="path">{h(item.location)}</span>: {_long_value(item.value)}</li>'
        for item in finding.evidence)
    confidence = finding.confidence + (f" ({finding.confidence_basis})" if finding.confidence_basis else "")
    return f"""<article class="finding risk-{h(finding.risk_level.lower())}" id="{h(anchor('finding', finding.hunt_id))}">
<h4>{h(_headline(finding))}</h4>
<p class="meta"><strong>Hunt ID:</strong> <span class="hunt-id">{h(finding.hunt_id)}</span> · <strong>Risk Level:</strong> <span class="badge risk-{h(finding.risk_level.lower())}">{h(finding.risk_level)}</span>
· <strong>Task:</strong> <a href="#{h(task_anchor)}">{h(finding.task)}</a>
· <strong>Confidence:</strong> {h(confidence)} · <strong>Technique:</strong> {h(technique_text(finding))}
· <strong>Host:</strong> {h(finding.host or 'unknown')} · <strong>User:</strong> {h(finding.user or 'unknown')}</p>
{_reasons_line(reasons, finding.title)}
<p class="evidence-head"><strong>Evidence</strong> <span class="screen-only">(source, time UTC; location: raw value)</span></p>
<ol class="evidence">{evidence or '<li>none recorded</li>'}</ol>
<p class="action"><strong>Recommended Action:</strong> {h(_unique_sentences(finding.recommended_action))}</p>
</article>"""


def _findings(findings: list[Finding], task_anchors: dict[str, str]) -> str:
    if not findings:
        return '<p class="note">No finding was raised.</p>'
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.risk_level].append(finding)
    out = []
    for risk in (*RISKS, *sorted(set(grouped) - set(RISKS))):
        if grouped.get(risk):
            out.append(f'<h3 class="risk-head risk-{h(risk.lower())}">{h(risk)} ({len(grouped[risk])})</h3>')
            out.extend(_finding(f, task_anchors.get(f.task, anchor("task", f.task))) for f in grouped[risk])
    return "\n".join(out)


def _facts(pairs: list[tuple[str, str | None]]) -> str:
    return " · ".join(f"<strong>{h(name)}:</strong> {value}" for name, value in pairs if value)


def _definition_rows(entity: Entity) -> str:
    """Each source's definition of the task as a short labelled block (one per task file, registry entry,
    rebuilt event, job, process), so a story reads top to bottom on paper."""
    blocks = []
    shown: dict[str, set[str]] = defaultdict(set)  # field -> values an earlier block already shows
    for d in entity.definitions:
        actions = "<br>".join(_long_value(f"{a.kind}: {a.command_line}", "tasks.jsonl") for a in d.actions) or None
        triggers = ", ".join(
            h(t.kind + (f" every {t.repetition_interval}" if t.repetition_interval else "")
              + (f" from {t.start.utc or t.start.as_written}" if t.start else "")) for t in d.triggers) or None
        principal = " / ".join(p for p in (d.user_id, d.group_id, d.logon_type, d.run_level) if p) or None
        flags = ", ".join(f for f, on in (("hidden", d.hidden), ("disabled", d.enabled is False)) if on) or None
        facts = {"principal": h(principal) if principal else None, "triggers": triggers,
                 "flags": h(flags) if flags else None, "author": h(d.author) if d.author else None,
                 "actions": actions, "description": h(d.description) if d.description else None}
        repeated = [name for name, value in facts.items() if value and value in shown[name]]
        for name, value in facts.items():
            if value:
                shown[name].add(value)
        new = {name: None if name in repeated else value for name, value in facts.items()}
        blocks.append(_def_block(d.source, d.provenance.location, [
            ("Tree key", h(d.details["tree_key"]) if d.source == "taskcache" and d.details.get("tree_key") else None),
            ("File SHA-256", h(d.file.sha256) if d.file and d.file.sha256 else None),
            ("Principal", new["principal"]), ("Triggers", new["triggers"]), ("Flags", new["flags"]),
            ("Author", new["author"]), ("Same as above", ", ".join(repeated) if repeated else None)],
            new["actions"], new["description"]))
    for job in entity.unix_jobs:
        blocks.append(_def_block(job.kind, job.provenance.location, [
            ("File SHA-256", h(job.file.sha256) if job.file and job.file.sha256 else None),
            ("User", h(job.user) if job.user else None), ("Schedule", h(job.schedule) if job.schedule else None),
            ("Flags", "disabled" if job.enabled is False else None)],
            _long_value(job.command, "tasks.jsonl") if job.command else None, None))
    for p in entity.processes:
        blocks.append(_def_block("memory", p.provenance.location, [
            ("User SID", h(p.user_sid) if p.user_sid else None), ("Flags", h(", ".join(p.flags)) if p.flags else None)],
            _long_value(f"pid {p.pid}: {p.command_line or p.name}", "tasks.jsonl"), None))
    return "".join(blocks)


def _def_block(source: str, where: str, pairs: list[tuple[str, str | None]], actions: str | None,
               description: str | None) -> str:
    lines = [f'<div class="def"><strong>{h(source)}</strong> <span class="path">{h(where)}</span>']
    facts = _facts(pairs)
    if facts:
        lines.append(f"<br>{facts}")
    if actions:
        lines.append(f"<br><strong>Actions:</strong> {actions}")
    if description:
        lines.append(f"<br><strong>Description:</strong> {description}")
    return "".join(lines) + "</div>"


def compact_what(whats: list[str]) -> str:
    """``task file modified ($SI)``, ``task file created ($SI)`` → ``task file modified, created ($SI)``."""
    if len(whats) == 1:
        return whats[0]
    prefix = os.path.commonprefix(whats)
    prefix = prefix[: prefix.rfind(" ") + 1]
    suffix = os.path.commonprefix([w[::-1] for w in whats])[::-1]
    suffix = suffix[suffix.find(" ("):] if " (" in suffix else ""
    middles = [w[len(prefix): len(w) - len(suffix)] for w in whats]
    return f"{prefix}{', '.join(middles)}{suffix}"


def _merged_rows(rows: list[TimelineEvent]) -> list[tuple[TimelineEvent, str]]:
    """(row, what) with a file's times at one instant on one line: its MACB times as in timeline.csv, and
    on paper also its ``$STANDARD_INFORMATION`` and ``$FILE_NAME`` sets when they name the same times."""
    from triage.export.timeline_csv import _macb_group

    groups: dict[tuple, list[TimelineEvent]] = {}
    ordered: list[list[TimelineEvent]] = []
    for row in rows:
        key = _macb_group(row)
        if key is None:
            ordered.append([row])
            continue
        key = key[:8] + key[9:]  # without the attribute set: $SI and $FN of one instant together
        if key in groups:
            groups[key].append(row)
        else:
            groups[key] = [row]
            ordered.append(groups[key])
    return [(members[0], _file_times_what(members)) for members in ordered]


_ATTRIBUTE_NAMES = {"si_": "$STANDARD_INFORMATION", "fn_": "$FILE_NAME"}


def _file_times_what(members: list[TimelineEvent]) -> str:
    if len(members) == 1:
        return members[0].what
    sets: dict[str, list[str]] = {}
    for row in members:
        sets.setdefault(row.meaning[:3] if row.meaning[:3] in _ATTRIBUTE_NAMES else "", []).append(row)
    whats = {prefix: compact_what([r.what for r in group]) for prefix, group in sets.items()}
    meanings = {prefix: sorted(r.meaning[3:] if prefix else r.meaning for r in group) for prefix, group in sets.items()}
    if len(sets) == 2 and set(sets) == set(_ATTRIBUTE_NAMES) and meanings["si_"] == meanings["fn_"]:
        return whats["si_"].replace("($STANDARD_INFORMATION)", "($STANDARD_INFORMATION and $FILE_NAME)")
    return "; ".join(whats[p] for p in sorted(whats))


def _timeline_table(rows: list[TimelineEvent], places: dict[str, str] | None = None) -> str:
    """The task's timeline, one line per instant: what happened at one time is listed together; a place the
    definitions above already name (its file, its registry keys) is shown by its short label, and raw values
    are left to timeline.csv, which holds every row's location, value name and raw value whole."""
    if not rows:
        return '<p class="note">No timeline row in the selected range.</p>'
    places = places or {}
    instants: list[tuple[str, list[str], list[TimelineEvent]]] = []
    for row, what in _merged_rows(rows):
        when = row.utc or f"{row.as_written or '?'} (local, zone unknown)"
        prov = row.provenance
        label = places.get(prov.location)
        where = f'<span class="src">{h(label)}</span>' if label else f'<span class="path">{h(prov.location)}</span>'
        if prov.offset is not None:
            where += f' <span class="src">@ {h(prov.offset)}</span>'
        if prov.value_name:
            where += f' <span class="src">[{h(prov.value_name)}]</span>'
        if instants and instants[-1][0] == when:
            instants[-1][1].append(f"{h(what)} — {where}")
            instants[-1][2].append(row)
        else:
            instants.append((when, [f"{h(what)} — {where}"], [row]))
    cut = range(_PRINT_TIMELINE_HEAD, len(instants) - _PRINT_TIMELINE_TAIL) \
        if len(instants) > PRINT_TIMELINE_ROWS else range(0)
    body = []
    for index, (when, entries, _) in enumerate(instants):
        if cut and index == cut.start:
            body.append(_timeline_cut_line([row for i in cut for row in instants[i][2]], len(cut)))
        hidden = ' class="screen-only"' if index in cut else ""
        body.append(f'<li{hidden}><span class="time">{h(when)}</span> {"; ".join(entries)}</li>')
    return ('<p class="tl-head"><strong>Timeline</strong> <span class="screen-only">(UTC; what — where [value]; raw values '
            f'in timeline.csv)</span></p><ol class="tl">{"".join(body)}</ol>')


def _timeline_cut_line(rows: list[TimelineEvent], instants: int) -> str:
    """The print-only line standing for the lines a long timeline leaves off paper: how many, first and last."""
    times = [f'<span class="time">{h(utc)}</span>' for utc in sorted(row.utc for row in rows if row.utc)]
    span = f", {times[0]} to {times[-1]}" if len(set(times)) > 1 else (f", at {times[0]}" if times else "")
    return (f'<li class="print-only tl-cut">… {len(rows)} more row(s) at {instants} time(s){span}: every row is in '
            "timeline.csv and on screen</li>")


def _places(entity: Entity) -> dict[str, str]:
    """Short labels for the places the task's definition blocks already name in full."""
    places: dict[str, str] = {}
    for d in entity.definitions:
        label = {"task_xml": "task file", "job": ".job file", "gpp": "GPO file", "taskcache": "Tasks key"}.get(d.source)
        if label and d.source != "taskcache":
            places.setdefault(d.provenance.location, label)
        if d.file is not None:
            places.setdefault(d.file.path, label or "file")
        for name, key_label in (("tasks_key", "Tasks key"), ("tree_key", "Tree key")):
            if d.details.get(name):
                places.setdefault(d.details[name], key_label)
        if d.source == "taskcache":
            places.setdefault(d.provenance.location, "Tasks key")
    for job in entity.unix_jobs:
        places.setdefault(job.provenance.location, f"{job.kind} file")
        if job.file is not None:
            places.setdefault(job.file.path, f"{job.kind} file")
    return places


def _action_keys(definition) -> list[tuple]:
    """What an action is, without what triage resolved about it (a COM handler's DLL comes from the registry)."""
    return [(a.kind, a.command, a.arguments, a.working_directory, a.class_id, a.data) for a in definition.actions]


def _action_texts(definition) -> list[str]:
    return [f"{a.kind}: {a.command_line}" for a in definition.actions]


def actions_windows_runs(entity: Entity) -> tuple[list[str], list[str] | None]:
    """(the actions Windows runs, the task file's actions when they differ, else None).

    Windows 10+ runs the TaskCache copy of a task, not its XML file, so when both exist and differ the
    registry's actions are the ones that matter and the file's are shown as what it claims."""
    registry = next((d for d in entity.definitions if d.source == "taskcache" and d.actions), None)
    if registry is not None:
        runs = _action_texts(registry)
        claimed = next((_action_texts(d) for d in entity.definitions if d.source in ("task_xml", "job", "gpp")
                        and d.actions and _action_keys(d) != _action_keys(registry)), None)
        return runs, claimed
    for definition in entity.definitions:
        if definition.actions:
            return _action_texts(definition), None
    commands = [job.command for job in entity.unix_jobs if job.command]
    return commands, None


def _runs_line(entity: Entity) -> str:
    """What Windows runs, stated once above the sources (each source's own actions follow); on paper only
    when the registry and the task file differ."""
    runs, claimed = actions_windows_runs(entity)
    if not runs or (claimed is None and len(entity.definitions) + len(entity.unix_jobs) < 2):
        return ""  # one source: its block below already says it
    # When the sources agree the first source's block below shows the same actions, so paper leaves this out.
    shown = "" if claimed is not None else ' class="screen-only"'
    text = f'<p{shown}><strong>Action Windows runs:</strong> {"<br>".join(_long_value(a, "tasks.jsonl") for a in runs)}'
    if claimed is not None:
        text += (' <span class="warn">(the registry and the task file differ; the task file says: '
                 f'<span class="value">{"<br>".join(h(a) for a in claimed)}</span>)</span>')
    return text + "</p>"


def _task(entity: Entity, rows: list[TimelineEvent], findings: list[Finding], anchor_id: str) -> str:
    links = " ".join(f'<a class="badge risk-{h(f.risk_level.lower())}" href="#{h(anchor("finding", f.hunt_id))}">'
                     f'{h(f.hunt_id)}</a>' for f in findings)
    return f"""<article class="task" id="{h(anchor_id)}">
<h3>{h(entity.task)} <span class="task-meta">{links} <strong>Host:</strong> {h(entity.host or 'unknown')} ·
<strong>Kind:</strong> {h(entity.kind)} · <strong>Sources:</strong> {h(', '.join(entity.sources) or '—')} ·
<strong>Status:</strong> {h(entity.status or '—')}</span></h3>
{_runs_line(entity)}
{_definition_rows(entity)}
{_timeline_table(rows, _places(entity))}
</article>"""


def _quiet_tasks(entities: list[Entity], anchors: dict[str, str], summaries: dict[str, RowSummary]) -> str:
    """Tasks without a finding (stock or quiet): one table line each instead of a story, their timeline
    summed up (rows, first and last time); timeline.csv and timeline.jsonl hold every row."""
    if not entities:
        return '<p class="note">Every task has a finding.</p>'
    rows = []
    for entity in entities:
        runs, claimed = actions_windows_runs(entity)
        action = "; ".join(runs) or "—"
        if claimed is not None:
            action += " (task file differs)"
        authors = sorted({d.author for d in entity.definitions if d.author})
        rows.append(f'<tr id="{h(anchors[entity.task])}"><td class="path">{h(entity.task)}</td>'
                    f"<td>{h(', '.join(entity.sources) or '—')}</td><td>{h(entity.status or '—')}</td>"
                    f'<td class="value">{h(action)}</td><td class="value">{h(", ".join(authors) or "—")}</td>'
                    f'<td class="value">{_summary_cell(summaries.get(entity.key))}</td></tr>')
    return ('<table class="quiet"><colgroup><col class="q-task"><col class="q-sources"><col class="q-status">'
            '<col class="q-action"><col class="q-author"><col class="q-rows"></colgroup><thead><tr><th>Task</th>'
            "<th>Sources</th><th>Status</th><th>Action Windows runs</th>"
            f"<th>Author</th><th>Timeline</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _summary_cell(summary: RowSummary | None) -> str:
    """A timeline summed up: its row count, and its first and last UTC time (plain text: a table cell may
    break it anywhere, so the table never grows wider than the paper)."""
    if summary is None or not summary.rows:
        return "—"
    text = f"{summary.rows} row(s)"
    if summary.first and summary.first != summary.last:
        text += f", {summary.first} to {summary.last}"
    elif summary.first:
        text += f", at {summary.first}"
    return h(text)


def _unattached(summary: RowSummary | None) -> str:
    """Task tooling seen without a task name (schtasks.exe runs, atsvc access): summed up, not listed."""
    if summary is None or not summary.rows:
        return ""
    return (f"<h3>Task tooling not tied to one task</h3><p>{_summary_cell(summary)}: every row is in timeline.csv "
            "and timeline.jsonl (task empty).</p>")


def _gaps(gaps) -> str:
    if not gaps:
        return '<p class="note">Everything in the evidence that triage looks at was read.</p>'
    return "<ul>" + "".join(f"<li>{h(g.line())}</li>" for g in gaps) + "</ul>"


@dataclass
class RowSummary:
    """One task's timeline summed up for the report: rows, and the first and last UTC time as written."""

    rows: int = 0
    first: str | None = None
    last: str | None = None

    def add(self, utc: str | None) -> None:
        self.rows += 1
        if utc:
            if self.first is None or utc_key(utc) < utc_key(self.first):
                self.first = utc
            if self.last is None or utc_key(utc) >= utc_key(self.last):
                self.last = utc


def report_html(case, *, gaps, evidence: list[dict[str, Any]], counts: dict[str, Any],
                rows_of: Callable[[set[str] | None], Iterable[TimelineEvent]],
                summaries: dict[str, RowSummary], examiner: str | None, case_id: str | None,
                version: str) -> Iterator[str]:
    """The page, in pieces. ``rows_of(keys)`` gives the ordered timeline rows of those tasks (None: every task);
    only tasks with a finding get theirs listed, ``summaries`` (per task key, "" for rows of no task) sum up the
    rest. The task stories are given one task at a time: only one task's rows are ever held (the screen lists
    every row of a task with a finding, so the page itself grows with them; it is written as it is given)."""
    entities = sorted(case.entities, key=lambda e: (e.key, e.host or ""))
    task_anchors = {e.task: anchor("task", e.key) for e in entities}
    findings_by_task: dict[str, list[Finding]] = defaultdict(list)
    for finding in case.findings:
        findings_by_task[finding.task].append(finding)
    flagged = [e for e in entities if findings_by_task.get(e.task)]
    quiet = [e for e in entities if not findings_by_task.get(e.task)]
    flagged_keys = {e.key for e in flagged}
    # The chart shows the tasks with findings; when none of them has a dated mark, every task.
    chart, scope = timeline_chart(flagged, lambda: rows_of(flagged_keys)), "tasks with a finding"
    if "<svg" not in chart:
        chart, scope = timeline_chart(entities, lambda: rows_of(None)), "every task"
    text = resources.files("triage").joinpath("data", "report.html.tmpl").read_text(encoding="utf-8")
    before, after = text.split("$tasks", 1)
    values = {
        "title": h(f"triage report{' — ' + case_id if case_id else ''}"),
        "case_id": h(case_id or "—"),
        "examiner": h(examiner or "—"),
        "version": h(version),
        "summary": _plain_summary(case, counts, evidence),
        "glance": _glance(case.findings, task_anchors),
        "counts": _counts(counts),
        "evidence": _evidence_table(evidence),
        "hosts": _hosts_table(case) + _stores_examined(case),
        "chart": chart,
        "chart_scope": scope,
        "findings": _findings(case.findings, task_anchors),
        "quiet_count": str(len(quiet)),
        "quiet": _quiet_tasks(quiet, task_anchors, summaries),
        "gaps": _gaps(gaps),
        "value_chars": str(PRINT_VALUE_CHARS),
        "timeline_rows": str(PRINT_TIMELINE_ROWS),
    }
    yield Template(before).substitute(values)
    for index, entity in enumerate(flagged):
        yield ("\n" if index else "") + _task(entity, list(rows_of({entity.key})), findings_by_task[entity.task],
                                              task_anchors[entity.task])
    if not flagged:
        yield '<p class="note">No task has a finding.</p>'
    yield _unattached(summaries.get(""))
    yield Template(after).substitute(values)
