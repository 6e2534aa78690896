"""``report.html``: one self-contained page an examiner can hand over.

No network, no external assets, no JavaScript: CSS and the SVG chart are inline and a
Content-Security-Policy forbids everything else, so even a value that escaped escaping could not
load or run anything. Every value from evidence goes through :func:`triage.export.safe.html_text`.
The page skeleton and style live in ``triage/data/report.html.tmpl`` (``string.Template``; package data).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from importlib import resources
from string import Template
from typing import Any

from triage.export.jsonl import parse_utc
from triage.export.markdown import technique_text
from triage.export.safe import html_text as h
from triage.records import Entity, Finding, TimelineEvent

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


def timeline_chart(entities: list[Entity], rows_by_task: dict[str, list[TimelineEvent]]) -> str:
    """Inline SVG: one lane per task, a mark for each creation, run and change."""
    lanes = []
    undated = 0
    for entity in entities:
        points = []
        for row in rows_by_task.get(entity.key, []):
            kind = chart_kind(row)
            if kind is None:
                continue
            when = parse_utc(row.utc)
            if when is None:
                undated += 1
                continue
            points.append((_seconds(when), kind, row))
        if points:
            lanes.append((min(p[0] for p in points), entity.key, entity, sorted(points, key=lambda p: (p[0], p[1]))))
    if not lanes:
        note = f" ({undated} without a UTC time)" if undated else ""
        return f'<p class="note">No task creation or run time in the evidence{h(note)}.</p>'
    lanes.sort(key=lambda lane: (lane[0], lane[1]))
    low = min(p[0] for lane in lanes for p in lane[3])
    high = max(p[0] for lane in lanes for p in lane[3])
    if high - low < 3600:
        low, high = low - 1800, high + 1800
    pad = (high - low) * 0.02
    low, high = low - pad, high + pad
    width, label_w, lane_h, top = 1180, 330, 18, 46
    x0, x1 = label_w + 10, width - 20
    height = top + lane_h * len(lanes) + 40

    def x(seconds: float) -> float:
        return round(x0 + (seconds - low) / (high - low) * (x1 - x0), 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="chart" aria-label="Task creation and runs over time">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    step = _tick_step(high - low)
    tick = (int(low // step) + 1) * step
    while tick < high:
        tx = x(tick)
        parts.append(f'<line x1="{tx}" y1="{top - 6}" x2="{tx}" y2="{top + lane_h * len(lanes)}" stroke="#dee2e6"/>')
        parts.append(f'<text x="{tx}" y="{top - 12}" font-size="11" text-anchor="middle" fill="#495057">'
                     f'{h(_tick_label(tick, step))}</text>')
        tick += step
    for index, (_, _key, entity, points) in enumerate(lanes):
        y = top + index * lane_h + lane_h / 2
        label = entity.task if len(entity.task) <= 46 else entity.task[:45] + "…"
        if index % 2:
            parts.append(f'<rect x="0" y="{top + index * lane_h}" width="{width}" height="{lane_h}" fill="#f8f9fa"/>')
        parts.append(f'<text x="{label_w}" y="{y + 4}" font-size="11" text-anchor="end" fill="#212529">'
                     f'<title>{h(entity.task)}</title>{h(label)}</text>')
        parts.append(f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#ced4da" stroke-width="0.5"/>')
        for seconds, kind, row in points:
            px = x(seconds)
            colour, word = _MARK[kind]
            tip = f"<title>{h(row.utc)} {h(word)}: {h(row.what)} ({h(row.source)})</title>"
            if kind == "created":
                parts.append(f'<polygon points="{px},{y - 6} {px - 5},{y + 4} {px + 5},{y + 4}" fill="{colour}">{tip}</polygon>')
            elif kind == "run":
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
    return "\n".join(parts)


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


def _counts(counts: dict[str, Any]) -> str:
    cards = [
        ("Tasks and jobs", counts["tasks"]), ("Findings", counts["findings"]),
        ("Timeline rows", counts["timeline_rows"]), ("Events", counts["events"]),
        ("Gaps (not read)", counts["gaps"]),
    ]
    risk = " · ".join(f"{name} {counts['findings_by_risk'].get(name, 0)}" for name in RISKS)
    html = "".join(f'<div class="card"><div class="num">{h(value)}</div><div>{h(name)}</div></div>' for name, value in cards)
    return f'<div class="cards">{html}</div><p>Findings by risk: {h(risk)}</p>'


def _finding(finding: Finding, task_anchor: str) -> str:
    evidence = "".join(
        f"<tr><td>{h(item.source)}</td><td class=\"path\">{h(item.location)}</td><td class=\"value\">{h(item.value)}</td>"
        f"<td>{h(item.time or '—')}</td></tr>" for item in finding.evidence)
    confidence = finding.confidence + (f" ({finding.confidence_basis})" if finding.confidence_basis else "")
    return f"""<article class="finding risk-{h(finding.risk_level.lower())}" id="{h(anchor('finding', finding.hunt_id))}">
<h4><span class="hunt-id">{h(finding.hunt_id)}</span> {h(finding.title)}</h4>
<dl>
<dt>Hunt ID</dt><dd>{h(finding.hunt_id)}</dd>
<dt>Technique</dt><dd>{h(technique_text(finding))}</dd>
<dt>Host</dt><dd>{h(finding.host or 'unknown')}</dd>
<dt>User</dt><dd>{h(finding.user or 'unknown')}</dd>
<dt>Task</dt><dd><a href="#{h(task_anchor)}">{h(finding.task)}</a></dd>
<dt>Evidence</dt><dd><table><thead><tr><th>Source</th><th>Location</th><th>Value</th><th>Time (UTC)</th></tr></thead>
<tbody>{evidence or '<tr><td colspan="4">none recorded</td></tr>'}</tbody></table></dd>
<dt>Risk Level</dt><dd><span class="badge risk-{h(finding.risk_level.lower())}">{h(finding.risk_level)}</span></dd>
<dt>Confidence</dt><dd>{h(confidence)}</dd>
<dt>Recommended Action</dt><dd>{h(finding.recommended_action)}</dd>
</dl>
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


def _definition_rows(entity: Entity) -> str:
    rows = []
    for d in entity.definitions:
        actions = "<br>".join(h(f"{a.kind}: {a.command_line}") for a in d.actions) or "—"
        triggers = "<br>".join(
            h(t.kind + (f" every {t.repetition_interval}" if t.repetition_interval else "")
              + (f" from {t.start.utc or t.start.as_written}" if t.start else "")) for t in d.triggers) or "—"
        principal = " / ".join(p for p in (d.user_id, d.group_id, d.logon_type, d.run_level) if p) or "—"
        flags = ", ".join(f for f, on in (("hidden", d.hidden), ("disabled", d.enabled is False)) if on)
        rows.append(f"<tr><td>{h(d.source)}</td><td class=\"path\">{h(d.provenance.location)}</td><td>{h(principal)}</td>"
                    f"<td class=\"value\">{actions}</td><td>{triggers}</td><td>{h(flags or '—')}</td>"
                    f"<td>{h(d.author or '—')}</td><td class=\"value\">{h(d.description or '—')}</td></tr>")
    for job in entity.unix_jobs:
        rows.append(f"<tr><td>{h(job.kind)}</td><td class=\"path\">{h(job.provenance.location)}</td><td>{h(job.user or '—')}</td>"
                    f"<td class=\"value\">{h(job.command or '—')}</td><td>{h(job.schedule or '—')}</td>"
                    f"<td>{h('disabled' if job.enabled is False else '—')}</td><td>—</td><td>—</td></tr>")
    for p in entity.processes:
        rows.append(f"<tr><td>memory</td><td class=\"path\">{h(p.provenance.location)}</td><td>{h(p.user_sid or '—')}</td>"
                    f"<td class=\"value\">{h(f'pid {p.pid}: {p.command_line or p.name}')}</td><td>—</td>"
                    f"<td>{h(', '.join(p.flags) or '—')}</td><td>—</td><td>—</td></tr>")
    if not rows:
        return ""
    return ("<table class=\"defs\"><thead><tr><th>Source</th><th>Where</th><th>Principal</th><th>Actions</th><th>Triggers</th>"
            f"<th>Flags</th><th>Author</th><th>Description</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _timeline_table(rows: list[TimelineEvent]) -> str:
    if not rows:
        return '<p class="note">No timeline row in the selected range.</p>'
    body = []
    for row in rows:
        when = row.utc or f"{row.as_written or '?'} (local, zone unknown)"
        where = row.provenance.location + (f" @ {row.provenance.offset}" if row.provenance.offset is not None else "")
        body.append(f"<tr><td class=\"time\">{h(when)}</td><td>{h(row.what)}</td><td>{h(row.source)}</td>"
                    f"<td class=\"path\">{h(where)}</td><td class=\"value\">{h(row.provenance.raw or '')}</td></tr>")
    return ("<table class=\"tl\"><thead><tr><th>UTC</th><th>What</th><th>Source</th><th>Where</th><th>Raw value</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _task(entity: Entity, rows: list[TimelineEvent], findings: list[Finding], anchor_id: str) -> str:
    links = " ".join(f'<a class="badge risk-{h(f.risk_level.lower())}" href="#{h(anchor("finding", f.hunt_id))}">'
                     f'{h(f.hunt_id)}</a>' for f in findings)
    return f"""<article class="task" id="{h(anchor_id)}">
<h3>{h(entity.task)}</h3>
<p><strong>Host:</strong> {h(entity.host or 'unknown')} · <strong>Kind:</strong> {h(entity.kind)} ·
<strong>Sources:</strong> {h(', '.join(entity.sources) or '—')} · <strong>Status:</strong> {h(entity.status or '—')}
{('· <strong>Findings:</strong> ' + links) if links else ''}</p>
{_definition_rows(entity)}
{_timeline_table(rows)}
</article>"""


def _gaps(gaps) -> str:
    if not gaps:
        return '<p class="note">Everything in the evidence that triage looks at was read.</p>'
    return "<ul>" + "".join(f"<li>{h(g.line())}</li>" for g in gaps) + "</ul>"


def report_html(case, *, gaps, evidence: list[dict[str, Any]], counts: dict[str, Any], rows: list[TimelineEvent],
                examiner: str | None, case_id: str | None, version: str) -> str:
    rows_by_task: dict[str, list[TimelineEvent]] = defaultdict(list)
    for row in rows:
        rows_by_task[row.task].append(row)
    entities = sorted(case.entities, key=lambda e: (e.key, e.host or ""))
    task_anchors = {e.task: anchor("task", e.key) for e in entities}
    findings_by_task: dict[str, list[Finding]] = defaultdict(list)
    for finding in case.findings:
        findings_by_task[finding.task].append(finding)
    tasks_html = "\n".join(_task(e, rows_by_task.get(e.key, []), findings_by_task.get(e.task, []), task_anchors[e.task])
                           for e in entities) or '<p class="note">No scheduled task or job found.</p>'
    unattached = rows_by_task.get("", [])
    other = f"<h3>Task tooling not tied to one task</h3>{_timeline_table(unattached)}" if unattached else ""
    template = Template(resources.files("triage").joinpath("data", "report.html.tmpl").read_text(encoding="utf-8"))
    return template.substitute(
        title=h(f"triage report{' — ' + case_id if case_id else ''}"),
        case_id=h(case_id or "—"),
        examiner=h(examiner or "—"),
        version=h(version),
        counts=_counts(counts),
        evidence=_evidence_table(evidence),
        hosts=_hosts_table(case) + _stores_examined(case),
        chart=timeline_chart(entities, rows_by_task),
        findings=_findings(case.findings, task_anchors),
        tasks=tasks_html + other,
        gaps=_gaps(gaps),
    )
