"""Known error rate: triage on a labelled validation set, recall on malicious items and false positives
(Medium or above) on benign and stock items, per source and per kind of run.

The labels are data (``tests/efficacy/labels/*.yml``): every real public task definition, .job,
TaskCache value, cron sample and task-related event log in ``../shared/corpus``, plus the project's
own images, each with malicious/benign, the minimum risk expected and where the label comes from.
Kinds of run: ``full disk`` (the project's images: task files, TaskCache, logs), ``definitions only``
(real task folders and system trees with no hive or logs) and ``logs only`` (one log or one log folder).

``python3 bench/efficacy.py [--record] [--json PATH]`` prints the table and the misses; ``--record``
writes ``bench/results/efficacy.json``, the thresholds ``tests/efficacy`` holds the suite to. Set
``TRIAGE_PROJECT=/path/to/other/worktree`` to measure another checkout's triage with these labels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = Path(os.environ.get("TRIAGE_PROJECT") or ROOT).resolve()
for entry in (str(ROOT), str(PROJECT)):  # the project measured first on the path, this bench's own labels
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)

from tabulate import tabulate  # noqa: E402

from triage.collect import Context  # noqa: E402
from triage.run import run  # noqa: E402

LABELS = ROOT / "tests" / "efficacy" / "labels"
RESULTS = ROOT / "bench" / "results" / "efficacy.json"
CORPUS = ROOT.parent / "shared" / "corpus"
RISK = {"Low": 1, "Medium": 2, "High": 3, "Critical": 4}
HUNT_DATE = "20260101"
MODES = ("full disk", "definitions only", "logs only")


@dataclass
class Item:
    """One labelled thing: a task (``task``), the entries of one file (``task_prefix``), or a whole run."""

    source: str
    mode: str
    case: str
    label: str  # malicious / benign
    why: str
    task: str | None = None
    task_prefix: str | None = None
    min_risk: str | None = None

    @property
    def name(self) -> str:
        return self.task or (f"{self.task_prefix}*" if self.task_prefix else f"(whole run) {self.case}")


@dataclass
class Outcome:
    item: Item
    risk: str | None  # highest finding risk on the item, None when no finding
    findings: list[dict] = field(default_factory=list)
    opened: bool = True  # False: triage could not open the evidence, the item was not judged

    @property
    def passed(self) -> bool:
        got = RISK.get(self.risk or "", 0)
        if self.item.label == "malicious":
            return got >= RISK[self.item.min_risk or "Low"]
        return got < RISK["Medium"]


@dataclass
class Case:
    """One triage run and the labelled items it judges."""

    name: str
    source: str
    mode: str
    items: list[Item]
    evidence: list[str] = field(default_factory=list)  # corpus-relative files given as they are
    layout: dict[str, str] = field(default_factory=dict)  # corpus path -> path in a built evidence folder
    image: str | None = None


def _items(raw: list[dict], source: str, mode: str, case: str, names: dict[str, str]) -> list[Item]:
    return [Item(source=names.get(i["source"], i["source"]) if "source" in i else source, mode=mode, case=case,
                 label=i["label"], why=i["why"], task=i.get("task"), task_prefix=i.get("task_prefix"),
                 min_risk=i.get("min_risk")) for i in raw]


def load_cases(corpus: Path = CORPUS) -> tuple[list[Case], list[dict]]:
    """Every labelled run, and the labelled TaskCache values no run can judge alone."""
    cases: list[Case] = []
    unrunnable: list[dict] = []
    for path in sorted(LABELS.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = data.get("source_names", {})
        for value in data.get("values", []):
            unrunnable.append({**value, "source": names.get(value["file"].split("/")[0], value["file"].split("/")[0])})
        for raw in data.get("cases", []):
            if "image" in raw:
                key = raw["image"].split("-")[0] if raw["image"].startswith("linux") else raw["image"]
                source = names.get(key, raw["image"])
                mode = "logs only" if raw["image"].endswith("-logs") else "full disk"
                name = raw["image"]
            else:
                first = (raw.get("evidence") or list(raw.get("layout", {})))[0]
                source = names.get(raw.get("source") or first.split("/")[0], first.split("/")[0])
                mode = "logs only" if raw.get("evidence") or raw.get("logs_only") else "definitions only"
                name = Path(first).name
            items = _items(raw.get("items", []), source, mode, name, names)
            for under in raw.get("items_under", []):
                folder = corpus / under["folder"]
                labelled = {i.task.lower() for i in items if i.task}
                for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                    task = under["task_prefix"] + "\\" + "\\".join(file.relative_to(folder).parts)
                    if task.lower() not in labelled:
                        items.append(Item(source=source, mode=mode, case=name, label=under["label"], why=under["why"], task=task))
            if "items_from_stock" in raw:
                from test_images.windows_tree import STOCK_TASKS

                stock = raw["items_from_stock"]
                items += [Item(source=source, mode=mode, case=name, label=stock["label"], why=stock["why"], task=t)
                          for t in STOCK_TASKS]
            cases.append(Case(name=name, source=source, mode=mode, items=items, evidence=raw.get("evidence", []),
                              layout=raw.get("layout", {}), image=raw.get("image")))
    return cases, unrunnable


def _evidence(case: Case, work: Path, corpus: Path) -> list[str]:
    """The paths triage is given: corpus files as they are, a folder built from ``layout``, or an image."""
    if case.image == "windows10.E01":
        return [str(PROJECT / "test_images" / "windows10.E01")]
    if case.image in ("linux", "linux-logs"):
        from test_images import linux_scenario
        from test_images.build_linux import _write_tree

        root = work / case.image
        nodes = linux_scenario.nodes()
        if case.image == "linux-logs":
            nodes = [n for n in nodes if n.path == "/var" or n.path.startswith("/var/log")]
        _write_tree(root, nodes)
        return [str(root)]
    if case.evidence:
        return [str(corpus / e) for e in case.evidence]
    root = work / f"tree-{len(list(work.iterdir()))}"
    for src, dest in case.layout.items():
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if (corpus / src).is_dir():
            shutil.copytree(corpus / src, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(corpus / src, target)
    return [str(root)]


def judge(items: list[Item], findings: list[dict]) -> list[Outcome]:
    """Each item's highest finding: by task, by entry prefix, or over the whole run."""
    outcomes = []
    for item in items:
        if item.task:
            mine = [f for f in findings if f["task"].lower() == item.task.lower()]
        elif item.task_prefix:
            mine = [f for f in findings if f["task"].lower().startswith(item.task_prefix.lower())]
        else:
            mine = findings
        top = max(mine, key=lambda f: RISK[f["risk_level"]], default=None)
        outcomes.append(Outcome(item=item, risk=top["risk_level"] if top else None, findings=mine))
    return outcomes


def run_case(case: Case, corpus: Path = CORPUS) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="efficacy-") as tmp:
        paths = _evidence(case, Path(tmp), corpus)
        result = run(paths, Context(quiet=True), hunt_date=HUNT_DATE)
        if not result.opened:  # never a silent pass: a run that opened nothing judged nothing
            return [Outcome(item=item, risk=None, opened=False) for item in case.items]
        findings = [{"task": f.task, "risk_level": f.risk_level, "rule": f.rule, "title": f.title} for f in result.findings]
    return judge(case.items, findings)


def evaluate(corpus: Path = CORPUS) -> dict:
    """Run every labelled case; the numbers per source and mode, and every miss and false positive."""
    cases, unrunnable = load_cases(corpus)
    outcomes = [o for case in cases for o in run_case(case, corpus)]
    rows: dict[tuple[str, str], dict] = {}
    for o in outcomes:
        row = rows.setdefault((o.item.source, o.item.mode), {"source": o.item.source, "mode": o.item.mode, "malicious": 0,
                                                              "detected": 0, "detected_any": 0, "benign": 0, "false_positives": 0,
                                                              "not_opened": 0})
        if not o.opened:
            row["not_opened"] += 1
        elif o.item.label == "malicious":
            row["malicious"] += 1
            row["detected"] += o.passed
            row["detected_any"] += o.risk is not None
        else:
            row["benign"] += 1
            row["false_positives"] += not o.passed
    table = sorted(rows.values(), key=lambda r: (MODES.index(r["mode"]), r["source"]))
    for row in table:
        row["recall"] = round(row["detected"] / row["malicious"], 3) if row["malicious"] else None
    misses = [{"source": o.item.source, "mode": o.item.mode, "case": o.item.case, "item": o.item.name, "label": o.item.label,
               "expected": f">= {o.item.min_risk}" if o.item.label == "malicious" else "< Medium",
               "got": o.risk or "no finding", "why": o.item.why,
               "rules": sorted({r for f in o.findings for r in (f["rule"] or "").split(",") if r})}
              for o in outcomes if o.opened and not o.passed]
    not_opened = sorted({f"[{o.item.mode}] {o.item.source}: {o.item.case}" for o in outcomes if not o.opened})
    totals = {mode: {k: sum(r[k] for r in table if r["mode"] == mode) for k in ("malicious", "detected", "benign", "false_positives")}
              for mode in MODES}
    return {"hunt_date": HUNT_DATE, "rows": table, "totals": totals, "misses": misses, "not_opened": not_opened,
            "not_runnable": [{"file": v["file"], "source": v["source"], "label": v["label"], "why": v["why"]} for v in unrunnable]}


def _shown(result: dict) -> str:
    head = ["source", "run", "malicious", "at expected risk", "any finding", "recall", "benign/stock", "FP >= Medium",
            "not opened"]
    body = [[r["source"], r["mode"], r["malicious"], r["detected"], r["detected_any"],
             "-" if r["recall"] is None else f"{r['recall']:.0%}", r["benign"], r["false_positives"], r["not_opened"]]
            for r in result["rows"]]
    for mode in MODES:
        t = result["totals"][mode]
        recall = f"{t['detected'] / t['malicious']:.0%}" if t["malicious"] else "-"
        body.append([f"all ({mode})", mode, t["malicious"], t["detected"], "", recall, t["benign"], t["false_positives"]])
    return tabulate(body, headers=head, tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help=f"write the results to {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    result = evaluate(args.corpus)
    print(f"triage from {PROJECT}")
    print(_shown(result))
    print()
    print(f"Misses and false positives ({len(result['misses'])}):")
    for miss in result["misses"]:
        print(f"  - [{miss['mode']}] {miss['source']} / {miss['case']}: {miss['item']} ({miss['label']}): expected {miss['expected']}, "
              f"got {miss['got']}{' via ' + ','.join(miss['rules']) if miss['rules'] else ''} -- {miss['why']}")
    for case in result["not_opened"]:
        print(f"  - not opened by triage, so not judged: {case}")
    print(f"Not runnable alone ({len(result['not_runnable'])} labelled TaskCache values, no hive around them)")
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.record:
        RESULTS.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
