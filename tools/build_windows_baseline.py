"""Build ``triage/data/baseline_windows.json`` (stock Microsoft tasks per Windows release) from real public data.

Run from the project root: ``python3 tools/build_windows_baseline.py [CORPUS_DIR]`` (default ``../shared/corpus``).
Sources, each named in the data file next to every entry it contributed:

- ``win10-aptsimulatorvm``: the real Windows 10 task folder of DFIRArtifactMuseum's APTSimulatorVM (every task
  XML under ``\\Microsoft\\``: action, principal, trigger kinds);
- ``win10-belkasoft-log``: the real Windows 10 TaskScheduler/Operational log of the Belkasoft CTF "Insider
  Threat" image (task names under ``\\Microsoft\\``, the action program or COM handler name of events 200/201,
  and the account of 100/200 events when it is a service account);
- ``server2016-bastion``: ``tools/baseline_sources/server2016_bastion_winpeas.tsv`` (a Windows Server 2016
  task listing, provenance in the file's header);
- ``server2019-ec2-jaws``: ``tools/baseline_sources/server2019_ec2_jaws.tsv`` (a Windows Server 2019 task
  listing, provenance in the file's header);
- ``server2012r2-optimum-jaws``: ``tools/baseline_sources/server2012r2_optimum_jaws.tsv`` (a Windows Server
  2012 R2 task listing, provenance in the file's header);
- ``win11-25h2-wincfg``: ``tools/baseline_sources/win11_25h2_wincfg.tsv`` (a Windows 11 25H2 stock task export
  with principal SIDs and COM handler CLSIDs, provenance in the file's header).

A listing line is ``task<TAB>run as<TAB>actions``: run as is an account name or SID; an action is a command line,
``COM handler`` (CLSID not given) or ``{CLSID}``; several actions are joined with `` ; ``.

Third-party tasks found in these sources (Google, Edge, OneDrive updaters) are not stock by name: they are in
``triage/data/baseline_vendors.json``, known by install path and action. The product reads only the JSON files.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.detect.baseline import canonical_principal, normalise_action
from triage.evtx_reader import EvtxReader
from triage.parsers.task_cmdline import split_action
from triage.parsers.task_xml import TaskXmlError, parse_task_xml
from triage.records import Provenance
from triage.taskpath import display_task_path, normalise_task_path

APT_FOLDER = "AndrewRathbun__DFIRArtifactMuseum/Windows/ScheduledTasks/Win10/APTSimulatorVM"
BELKASOFT_LOG = ("AndrewRathbun__DFIRArtifactMuseum/Windows/EventLogs/Win10/BelkasoftCTF_InsiderThreat/"
                 "BelkasoftCTF_InsiderThreat.7z.extracted/Microsoft-Windows-TaskScheduler%4Operational.evtx")
LISTINGS = {  # source key -> (release, transcribed "task, run as, task to run" listing)
    "server2016-bastion": ("2016", ROOT / "tools/baseline_sources/server2016_bastion_winpeas.tsv"),
    "server2019-ec2-jaws": ("2019", ROOT / "tools/baseline_sources/server2019_ec2_jaws.tsv"),
    "server2012r2-optimum-jaws": ("2012R2", ROOT / "tools/baseline_sources/server2012r2_optimum_jaws.tsv"),
    "win11-25h2-wincfg": ("11", ROOT / "tools/baseline_sources/win11_25h2_wincfg.tsv"),
}

SOURCES = {
    "win10-aptsimulatorvm": {
        "release": "10",
        "what": "real Windows 10 task folder (task XML files): action, principal, trigger kinds",
        "origin": "github.com/AndrewRathbun/DFIRArtifactMuseum commit b81948ca53a1a217734f4080a339baa49c374bc3, "
                  f"{APT_FOLDER} (MIT); GameOver (APTSimulator) excluded as malicious",
    },
    "win10-belkasoft-log": {
        "release": "10",
        "what": "task names, action programs / COM handler names and service accounts from a real Windows 10 "
                "TaskScheduler/Operational log (events 100, 106, 129, 140, 200, 201)",
        "origin": "github.com/AndrewRathbun/DFIRArtifactMuseum commit b81948ca53a1a217734f4080a339baa49c374bc3, "
                  "Windows/EventLogs/Win10/BelkasoftCTF_InsiderThreat/BelkasoftCTF_InsiderThreat.7z member "
                  "Microsoft-Windows-TaskScheduler%4Operational.evtx (MIT)",
    },
    "server2016-bastion": {
        "release": "2016",
        "what": "task path, run-as account and action of a Windows Server 2016 (build 14393) machine as a "
                "low-privileged user listed them (winPEAS); COM handler CLSIDs not given",
        "origin": "public GitHub Markdown write-up of the HackTheBox machine Bastion (2021-05-13), via the "
                  "project's code-search library, file id 44903518051; transcribed in "
                  "tools/baseline_sources/server2016_bastion_winpeas.tsv",
    },
    "server2019-ec2-jaws": {
        "release": "2019",
        "what": "task path, run-as account and action of a Windows Server 2019 Datacenter (build 17763) AWS EC2 machine as "
                "JAWS listed them (tasks not disabled); COM handler CLSIDs not given",
        "origin": "public GitHub Markdown write-up 'Automating Windows Local Enumeration' (r3kind1e, 2023-06-08), "
                  "via the project's code-search library, file id 17232810328; transcribed in "
                  "tools/baseline_sources/server2019_ec2_jaws.tsv",
    },
    "server2012r2-optimum-jaws": {
        "release": "2012R2",
        "what": "task path, run-as account and action of a Windows Server 2012 R2 machine (HackTheBox Optimum) as "
                "JAWS listed them for a low-privileged user (tasks not disabled and readable); COM handler CLSIDs "
                "not given",
        "origin": "public GitHub Markdown file holding a JAWS run on OPTIMUM (2024-06-25), via the project's "
                  "code-search library, file id 46231686688; transcribed in "
                  "tools/baseline_sources/server2012r2_optimum_jaws.tsv",
    },
    "win11-25h2-wincfg": {
        "release": "11",
        "what": "task path, principal SID and actions (COM handler CLSIDs included) of a stock Windows 11 25H2 "
                "installation, exported with Get-ScheduledTask",
        "origin": "github.com/nohuto/win-config commit 525869e606dd6ced749d8a94c1eacc192db2d09a, "
                  "system/assets/scheduled-tasks.json (named by the repository's docs as the output of a stock 25H2 "
                  "installation), via the project's code-search library, file id 16289222489; transcribed in "
                  "tools/baseline_sources/win11_25h2_wincfg.tsv",
    },
}

SERVICE_ACCOUNTS = {"s-1-5-18", "s-1-5-19", "s-1-5-20"}


def _add(tasks: dict, task: str, variant: dict) -> None:
    key = normalise_task_path(task)
    entry = tasks.setdefault(key, {"task": display_task_path(task), "folder": display_task_path(task).rsplit("\\", 1)[0] or "\\",
                                   "variants": []})
    if variant not in entry["variants"]:
        entry["variants"].append(variant)


def from_task_folder(corpus: Path, tasks: dict) -> None:
    folder = corpus / APT_FOLDER
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        task = display_task_path(str(path.relative_to(folder)))
        if not normalise_task_path(task).startswith("\\microsoft\\"):
            continue  # third-party: baseline_vendors.json
        try:
            definition = parse_task_xml(path.read_bytes(), task=task, local_tz=None,
                                        provenance=Provenance(artifact="task_xml", location=str(path)))
        except TaskXmlError as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        actions = sorted(
            f"comhandler:{(a.class_id or '').lower()}" if a.kind == "comhandler" else normalise_action(a.command, a.arguments)
            for a in definition.actions)
        _add(tasks, task, {"source": "win10-aptsimulatorvm", "releases": ["10"], "actions": actions,
                           "user": canonical_principal(definition.user_id or definition.group_id),
                           "triggers": sorted({t.kind for t in definition.triggers})})


def from_log(corpus: Path, tasks: dict) -> None:
    path = corpus / BELKASOFT_LOG
    seen: dict[str, dict] = {}
    with path.open("rb") as fh:
        for record in EvtxReader(fh, str(path), on_problem=lambda *_: None):
            fields = record.fields
            name = str(fields.get("TaskName") or "")
            if not name.lower().startswith("\\microsoft\\") or "\\grouppolicy\\" in name.lower():
                continue  # GroupPolicy {GUID} tasks are created per policy, not shipped
            item = seen.setdefault(normalise_task_path(name), {"task": name, "images": set(), "users": set()})
            if str(fields.get("EventID")) in ("200", "201") and fields.get("ActionName"):
                image = str(fields["ActionName"])
                item["images"].add(normalise_action(image, None) if "\\" in image or image.lower().endswith(".exe")
                                   else f"comhandler-name:{image.lower()}")
            user = canonical_principal(str(fields.get("UserContext") or ""))
            if user in SERVICE_ACCOUNTS:
                item["users"].add(user)
    for item in seen.values():
        _add(tasks, item["task"], {"source": "win10-belkasoft-log", "releases": ["10"], "actions": None,
                                   "images": sorted(item["images"]) or None,
                                   "user": next(iter(sorted(item["users"])), None) if len(item["users"]) == 1 else None})


def _listed_action(action: str) -> str:
    if action == "COM handler":
        return "comhandler:?"
    if re.fullmatch(r"\{[0-9A-Fa-f-]{36}\}", action):
        return f"comhandler:{action.lower()}"
    command, arguments = split_action(action)
    return normalise_action(command, arguments)


def from_listing(tasks: dict, source: str) -> None:
    release, path = LISTINGS[source]
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        task, run_as, action_text = line.split("\t")
        actions = sorted(_listed_action(action) for action in action_text.split(" ; "))
        _add(tasks, task, {"source": source, "releases": [release], "actions": actions,
                           "user": canonical_principal(run_as), "triggers": None})


def main() -> int:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "corpus"
    tasks: dict = {}
    from_task_folder(corpus, tasks)
    from_log(corpus, tasks)
    for source in LISTINGS:
        from_listing(tasks, source)
    out = ROOT / "triage/data/baseline_windows.json"
    data = {"about": "Stock Microsoft scheduled tasks per Windows release; every variant names its source. "
                     "Built by tools/build_windows_baseline.py.",
            "sources": SOURCES, "tasks": dict(sorted(tasks.items()))}
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(tasks)} stock task paths written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
