"""Per-entity, per-file and per-run caps: an attacker's volume of tasks, actions or crontab lines costs
bounded memory and output, with what is left out named in a gap.

Before: one task XML with 30,000 actions wrote 150,815 files (detection rules per action, each
converted for four SIEMs); a 4 MiB crontab of ``* * * * *`` lines (190,650 jobs) ran out of memory
after 108 s at 3.9 GB; 20,000 tiny task files never finished (every gap compared with every task);
5,000 suspicious tasks wrote 125,010 detection files in 380 s.
Evidence: directory collections written here; the real command runs in a child process.
"""

from __future__ import annotations

import json
from collections import Counter

from tests.hostile.child_run import ONE_GB_MB, run_triage
from triage.collect import Context
from triage.collect.unix_jobs import MAX_CRONTAB_LINES
from triage.collect.windows_tasks import MAX_ACTIONS
from triage.detect.gap_index import GapIndex, is_task_file
from triage.export.detections import BACKEND_EXTENSIONS, MAX_FINDINGS_WITH_RULES
from triage.run import run

TASK = """<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo><URI>\\{name}</URI></RegistrationInfo>
  <Triggers><BootTrigger/></Triggers>
  <Settings><Enabled>{enabled}</Enabled></Settings>
  <Actions Context="Author">{actions}</Actions>
</Task>
"""
TASK_LEVEL_RULES = 4  # task-created-security, task-created-taskscheduler, task-create-command, taskcache-registry
# the case folder's own files, whatever the evidence (the rules and their conversions come on top)
CASE_FILES = {"manifest.json", "manifest.sha256", "findings.json", "findings.md", "tasks.jsonl", "timeline.jsonl",
              "timeline_undated.jsonl", "timeline.csv", "report.html", "attack-layer.json", "detections/index.json"}


def _tasks_folder(root):
    folder = root / "Windows" / "System32" / "Tasks"
    folder.mkdir(parents=True)
    return folder


def test_task_with_30000_actions_keeps_every_action_and_writes_rules_for_the_first_32(tmp_path):
    actions = "".join(f"<Exec><Command>C:\\Users\\Public\\evil{n}.exe</Command></Exec>" for n in range(30_000))
    (_tasks_folder(tmp_path / "evidence") / "Many").write_bytes(
        TASK.format(name="Many", enabled="true", actions=actions).encode("utf-16"))
    result = run_triage([tmp_path / "evidence"], tmp_path)

    assert result.code == 1 and result.peak_mb < ONE_GB_MB
    assert ("sysvol/Windows/System32/Tasks/Many", (f"task holds 30000 actions (Task Scheduler allows {MAX_ACTIONS}): all "
            f"are listed, detection rules are written for the first {MAX_ACTIONS}")) in result.gaps()
    (entity,) = [json.loads(line) for line in (result.case / "tasks.jsonl").read_text().splitlines()]
    commands = [a["command"] for a in entity["definitions"][0]["actions"]]
    assert len(commands) == 30_000 and commands[-1] == "C:\\Users\\Public\\evil29999.exe"
    rules = sorted(p.name for p in (result.case / "detections").glob("*.yml"))
    assert len(rules) == TASK_LEVEL_RULES + MAX_ACTIONS
    assert rules[0].endswith("_action-1-process.yml") and not any("action-33-" in name for name in rules)
    written = {p.relative_to(result.case).as_posix() for p in result.case.rglob("*") if p.is_file()}
    rule_files = {name for name in written if name.startswith("detections/") and name != "detections/index.json"}
    assert written - rule_files == CASE_FILES
    assert len(rule_files) == len(rules) * (1 + len(BACKEND_EXTENSIONS))  # each rule and its four SIEM conversions
    index = json.loads((result.case / "detections" / "index.json").read_text())
    (finding,) = json.loads((result.case / "findings.json").read_text())
    assert index["actions_without_rules"] == [{"hunt_id": finding["hunt_id"], "task": "\\Many",
                                               "actions": 30_000, "rules_for_first": MAX_ACTIONS}]


def test_four_mib_crontab_of_every_minute_lines_is_cut_at_10000_lines_with_a_gap(tmp_path):
    root = tmp_path / "evidence"
    (root / "etc").mkdir(parents=True)
    (root / "var/spool/cron/crontabs").mkdir(parents=True)
    line = b"* * * * * root /tmp/x\n"
    lines = (4 * 1024 * 1024 - 1) // len(line)
    (root / "etc/crontab").write_bytes(line * lines)
    result = run_triage([root], tmp_path)

    assert result.code == 1 and result.peak_mb < ONE_GB_MB
    assert result.gaps() == [("/etc/crontab", (f"{lines} lines: only the first {MAX_CRONTAB_LINES} are parsed (no real "
                                               "crontab comes near); the file's SHA-256 covers all of it"))]
    assert result.manifest["counts"]["unix_jobs"] == MAX_CRONTAB_LINES
    entities = [json.loads(line) for line in (result.case / "tasks.jsonl").read_text().splitlines()]
    assert {job["entry"] for e in entities for job in e["unix_jobs"]} == {
        f"/etc/crontab:{n}" for n in range(1, MAX_CRONTAB_LINES + 1)}


def test_20000_tiny_partly_decoded_task_files_are_all_reported_with_their_gaps_and_findings(tmp_path):
    folder = _tasks_folder(tmp_path / "evidence")
    count = 20_000
    for n in range(count):  # each is a finding (program in Users\Public) and a gap (Enabled is not a boolean)
        (folder / f"T{n:05d}").write_text(TASK.format(name=f"T{n:05d}", enabled="maybe",
                                                     actions=f"<Exec><Command>C:\\Users\\Public\\x{n}.exe</Command></Exec>"))
    result = run_triage([tmp_path / "evidence"], tmp_path)

    assert result.code == 1 and result.peak_mb < ONE_GB_MB
    counts = result.manifest["counts"]
    assert counts["tasks"] == counts["definitions"] == counts["findings"] == count
    partly = [problem for location, problem in result.gaps() if is_task_file(location)]
    assert len(partly) == count and set(partly) == {"partly decoded: Settings/Enabled: 'maybe' is not a boolean"}
    findings = json.loads((result.case / "findings.json").read_text())
    assert Counter(f["task"] for f in findings) == {f"\\T{n:05d}": 1 for n in range(count)}
    index = json.loads((result.case / "detections" / "index.json").read_text())
    assert len({rule["hunt_id"] for rule in index["rules"]}) == MAX_FINDINGS_WITH_RULES
    assert len(index["findings_without_rules"]) == count - MAX_FINDINGS_WITH_RULES


def test_gap_index_counts_exactly_the_gaps_the_pairwise_rule_counts(windows_images, tmp_path):
    """The index must agree with the rule it replaces on a real run with gaps of every kind."""
    ctx = Context(quiet=True)
    case = run([str(windows_images["tree"]), str(tmp_path / "missing.E01")], ctx)
    ctx.gap(str(windows_images["tree"]), "sysvol/Windows/System32/winevt/Logs/Security.evtx", "a whole log")
    index = GapIndex(ctx.gaps)
    checked = 0
    for entity in case.entities:
        records = [*entity.definitions, *entity.events, *entity.unix_jobs]
        evidence = {r.provenance.evidence for r in records}
        own = {r.provenance.location for r in records} | {d.file.path for d in entity.definitions if d.file}
        pairwise = sum(1 for g in ctx.gaps if g.evidence in evidence and (g.location in own or not is_task_file(g.location)))
        assert index.count(entity) == pairwise
        checked += pairwise > 0
    assert checked >= 3 and len(case.entities) == 60
