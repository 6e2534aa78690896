"""The stock-task baseline: what Windows 10 ships, so stock tasks raise nothing unless changed.

The data file (``triage/data/baseline_win10.json``) is built once from a real Windows 10 task
folder with ``python -m triage.detect.baseline build TASKS_DIR OUT.json``; tasks that are not stock
(e.g. the APT simulator's GameOver and falshupdate22) are excluded by name when building. At run
time only the data file is read.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

from triage.detect import Hit, JudgeContext
from triage.records import Entity, EvidenceItem, TaskDefinition
from triage.taskpath import display_task_path, normalise_task_path

NOT_STOCK = {"\\gameover", "\\falshupdate22"}
_DEFINITION_SOURCES = ("task_xml", "taskcache", "evtx_4698", "evtx_4702", "memory_taskcache")


def _norm(text: str | None) -> str:
    return " ".join((text or "").replace('"', "").lower().split())


def fingerprint(definition: TaskDefinition) -> dict:
    """What makes a stock task what it is: its actions, its principal and its trigger kinds."""
    actions = sorted(
        _norm(a.class_id) if a.kind == "comhandler" else _norm(f"{a.command or ''} {a.arguments or ''}")
        for a in definition.actions
    )
    return {
        "actions": actions,
        "user": _norm(definition.user_id or definition.group_id),
        "triggers": sorted({t.kind for t in definition.triggers}),
    }


def _same_principal(stock: str, found: str) -> bool:
    """The XML may name an account (NT AUTHORITY\\SYSTEM) where the registry keeps its SID (S-1-5-18)."""
    from triage.detect.stealth import principal_matches

    return principal_matches(stock, found, found) or principal_matches(found, stock, stock)


def load_baseline() -> dict:
    data = resources.files("triage").joinpath("data/baseline_win10.json").read_text(encoding="utf-8")
    return json.loads(data)["tasks"]


def stock_entry(entity: Entity, baseline: dict) -> dict | None:
    return baseline.get(entity.key) if entity.kind == "windows_task" else None


def is_unchanged_stock(entity: Entity, baseline: dict) -> bool:
    entry = stock_entry(entity, baseline)
    if entry is None:
        return False
    return not _differences(entity, entry)


def _differences(entity: Entity, entry: dict) -> list[tuple[TaskDefinition, str, object, object]]:
    diffs = []
    for definition in entity.definitions:
        if definition.source not in _DEFINITION_SOURCES or not definition.actions:
            continue
        seen = fingerprint(definition)
        if seen["actions"] != entry["actions"]:
            diffs.append((definition, "actions", entry["actions"], seen["actions"]))
        if entry["user"] and seen["user"] and not _same_principal(entry["user"], seen["user"]):
            diffs.append((definition, "principal", entry["user"], seen["user"]))
    return diffs


def check_baseline(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    entry = stock_entry(entity, ctx.baseline)
    if entry is None:
        return []
    diffs = _differences(entity, entry)
    if not diffs:
        return []
    evidence = [
        EvidenceItem(source=f"{d.source} {field}", location=d.provenance.location,
                     value=f"stock: {stock}; found: {found}", evidence_sha256=d.provenance.evidence_sha256)
        for d, field, stock, found in diffs
    ]
    return [Hit(
        rule="stock_task_changed", risk="High", techniques=["T1036.004"],
        title="A stock Windows task was changed (its action or principal differs from the Windows 10 baseline)",
        evidence=evidence,
        action=f"Disable {entity.task} until it is restored from a clean copy; collect its task file, TaskCache keys and the binaries its actions run.",
        single_source_ok=True,
    )]


def build(tasks_dir: Path, out: Path) -> int:
    """Build the baseline data file from a real Windows task folder."""
    from triage.parsers.task_xml import TaskXmlError, parse_task_xml
    from triage.records import Provenance

    tasks = {}
    for path in sorted(p for p in tasks_dir.rglob("*") if p.is_file()):
        task = display_task_path(str(path.relative_to(tasks_dir)))
        if normalise_task_path(task) in NOT_STOCK:
            continue
        try:
            definition = parse_task_xml(path.read_bytes(), task=task, local_tz=None,
                                        provenance=Provenance(artifact="task_xml", location=str(path)))
        except TaskXmlError as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        tasks[normalise_task_path(task)] = {"task": task, **fingerprint(definition)}
    out.write_text(json.dumps({"source": "Windows 10 task folder (DFIRArtifactMuseum APTSimulatorVM)", "tasks": tasks},
                              indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return len(tasks)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "build":
        sys.exit("usage: python -m triage.detect.baseline build TASKS_DIR OUT.json")
    print(f"{build(Path(sys.argv[2]), Path(sys.argv[3]))} stock tasks written")
