"""``findings.md``: each finding as hunt-report text, with exactly the hunt-report fields.

Hunt ID, Technique, Host, User, Evidence, Risk Level, Confidence, Recommended Action, in that order,
under a heading naming the task. Every value from evidence goes through
:func:`triage.export.safe.md_text`, so a task named ``<script>`` or ``[x](http://...)`` renders as text.
"""

from __future__ import annotations

from triage.export.safe import md_text
from triage.records import Finding

TECHNIQUE_NAMES = {
    "T1053": "Scheduled Task/Job",
    "T1053.002": "Scheduled Task/Job: At",
    "T1053.003": "Scheduled Task/Job: Cron",
    "T1053.005": "Scheduled Task/Job: Scheduled Task",
    "T1053.006": "Scheduled Task/Job: Systemd Timers",
}


def technique_text(finding: Finding) -> str:
    name = TECHNIQUE_NAMES.get(finding.technique)
    text = f"{finding.technique} ({name})" if name else finding.technique
    related = [t for t in finding.techniques if t != finding.technique]
    if related:
        text += f"; related: {', '.join(related)}"
    return text


def evidence_line(item) -> str:
    parts = [f"{md_text(item.source)}: {md_text(item.location)}: {md_text(item.value)}"]
    if item.time:
        parts.append(f"time {md_text(item.time)}")
    if item.evidence_sha256:
        parts.append(f"evidence SHA-256 {md_text(item.evidence_sha256)}")
    return " — ".join(parts)


def finding_text(finding: Finding) -> str:
    lines = [
        f"## {md_text(finding.hunt_id)}: {md_text(finding.task)}",
        "",
        md_text(finding.title),
        "",
        f"- **Hunt ID:** {md_text(finding.hunt_id)}",
        f"- **Technique:** {md_text(technique_text(finding))}",
        f"- **Host:** {md_text(finding.host or 'unknown')}",
        f"- **User:** {md_text(finding.user or 'unknown')}",
        "- **Evidence:**",
    ]
    if finding.evidence:
        lines += [f"  {n}. {evidence_line(item)}" for n, item in enumerate(finding.evidence, start=1)]
    else:
        lines.append("  1. none recorded")
    confidence = finding.confidence + (f" ({finding.confidence_basis})" if finding.confidence_basis else "")
    lines += [
        f"- **Risk Level:** {md_text(finding.risk_level)}",
        f"- **Confidence:** {md_text(confidence)}",
        f"- **Recommended Action:** {md_text(finding.recommended_action)}",
        "",
    ]
    return "\n".join(lines)


def findings_md(findings: list[Finding]) -> str:
    head = ["# Findings", "", f"{len(findings)} finding(s), highest risk first.", ""]
    if not findings:
        head.append("No finding was raised.")
        head.append("")
    return "\n".join(head) + "\n" + "".join(finding_text(f) + "\n" for f in findings)
