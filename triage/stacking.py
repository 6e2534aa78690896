"""Stacking (least frequency of occurrence) across the hosts of a fleet hunt.

Pure: plain dicts and records in, stacks and findings out (no dissect, no Dask), so the same
per-host summaries always give the same bytes whichever engine produced them.

Each task or job of each host is described by *stack keys*, one per dimension an examiner stacks on:

* ``task_path`` - the normalised Windows task path;
* ``unix_entry`` - a cron/anacron/at line or systemd timer as ``kind user | schedule | command``
  (not its file and line number, which differ between hosts for the same entry);
* ``action`` - the action's command line, normalised (Windows: quotes dropped, well-known
  environment variables expanded, case folded, spaces collapsed; Unix: spaces collapsed);
* ``action_sha256`` - SHA-256 of the file the action runs, where the worker could read it;
* ``principal`` - the account (SYSTEM/LOCAL SERVICE/NETWORK SERVICE aliases folded to their SID,
  ``<own hostname>\\user`` folded to ``.\\user`` so a local account stacks across hosts) and run level;
* ``trigger`` - the trigger *shape*: kinds, repetition and delay, never start times (a start time
  is nearly unique per host and would make every task rare).

A stack is one (dimension, value) with the hosts that have it. It is *rare* when at most
``max(threshold_hosts, floor(threshold_percent% of the fleet))`` hosts have it: with the defaults
(5 %, 3 hosts) a 50-host fleet flags entries on 1-3 hosts, a 1000-host fleet entries on up to 50.
"At most" because "on 3 hosts" should read as rare when the threshold says 3. Stacks are counted
within one OS family (Windows hosts against Windows hosts), and a family of fewer than
:data:`MIN_FLEET_HOSTS` hosts gets its stacks but no stacking finding: on three hosts everything is rare.

Findings: one per rare task identity (``task_path``/``unix_entry``), listing the task's other rare
dimensions as evidence; plus one per rare action/hash/principal/trigger of tasks that are themselves
common (a common task whose command differs on two hosts is a hijack). Confidence rises with rarity
and with the per-host findings on the same tasks: one point when the entry is very rare (on at most
half the threshold), one when some of its hosts have a per-host finding on that task, two when all
do; 0 points Low, 1 Medium, 2+ High. Risk is the highest per-host finding's risk, else Low.
"""

from __future__ import annotations

import math
import re

from triage.detect import RISK_ORDER, TECHNIQUE_BY_KIND
from triage.records import Entity, EvidenceItem, Finding
from triage.timeorder import earliest, latest

IDENTITY_KINDS = ("task_path", "unix_entry")
STACK_KINDS = ("task_path", "unix_entry", "action", "action_sha256", "principal", "trigger")

_WINDOWS_VARIABLES = {
    "%windir%": r"c:\windows", "%systemroot%": r"c:\windows", "%systemdrive%": "c:",
    "%programfiles%": r"c:\program files", "%programfiles(x86)%": r"c:\program files (x86)",
    "%programdata%": r"c:\programdata", "%allusersprofile%": r"c:\programdata",
    "%commonprogramfiles%": r"c:\program files\common files",
}
_WELL_KNOWN_ACCOUNTS = {
    "system": "S-1-5-18", "nt authority\\system": "S-1-5-18", "localsystem": "S-1-5-18", "s-1-5-18": "S-1-5-18",
    "local service": "S-1-5-19", "nt authority\\local service": "S-1-5-19", "nt authority\\localservice": "S-1-5-19",
    "s-1-5-19": "S-1-5-19",
    "network service": "S-1-5-20", "nt authority\\network service": "S-1-5-20",
    "nt authority\\networkservice": "S-1-5-20", "s-1-5-20": "S-1-5-20",
}
_VARIABLE = re.compile(r"%[^%\s]+%")
_RUNNERS = ("rundll32.exe", "rundll32", "regsvr32.exe", "regsvr32")


def normalise_windows_command(command: str | None, arguments: str | None = None) -> str:
    """One spelling for one command line: ``"%windir%\\System32\\X.exe"  /a`` → ``c:\\windows\\system32\\x.exe /a``."""
    text = " ".join(p for p in ((command or "").strip().strip('"'), (arguments or "").strip()) if p)
    text = _VARIABLE.sub(lambda m: _WINDOWS_VARIABLES.get(m.group(0).lower(), m.group(0)), text)
    return " ".join(text.replace('"', "").lower().split())


def action_binary(command: str | None, arguments: str | None) -> str | None:
    """The Windows file an exec action really runs (the DLL for rundll32/regsvr32), as an absolute
    ``c:\\...`` path, or None when it cannot be told from the text alone."""
    program = normalise_windows_command(command)
    if not program:
        return None
    if program.rsplit("\\", 1)[-1] in _RUNNERS:
        words = [w for w in normalise_windows_command(None, arguments).split() if not w.startswith("/")]
        program = words[0].split(",", 1)[0] if words else ""
    elif "\\" not in program:
        program = "c:\\windows\\system32\\" + program
    return program if re.match(r"^[a-z]:\\", program) else None


def _principal(user: str | None, host: str | None) -> str:
    name = (user or "").strip()
    folded = _WELL_KNOWN_ACCOUNTS.get(name.lower())
    if folded:
        return folded
    domain, sep, account = name.rpartition("\\")
    if sep and host and domain.lower() == host.lower():
        return ".\\" + account.lower()
    return name.lower()


def _trigger_shape(trigger) -> str:
    shape = trigger.kind
    if trigger.repetition_interval:
        shape += f" every {trigger.repetition_interval}"
    if trigger.delay:
        shape += f" delay {trigger.delay}"
    return shape


def stack_keys(entity: Entity, binary_hashes: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Every (dimension, value) this task or job contributes to the fleet's stacks, sorted, unique.

    ``binary_hashes`` maps an :func:`action_binary` path to the SHA-256 the worker read in the evidence."""
    keys: set[tuple[str, str]] = set()
    binary_hashes = binary_hashes or {}
    host = entity.host
    if entity.kind == "windows_task":
        keys.add(("task_path", entity.key))
        for definition in entity.definitions:
            for action in definition.actions:
                if action.kind == "exec":
                    keys.add(("action", normalise_windows_command(action.command, action.arguments)))
                    binary = action_binary(action.command, action.arguments)
                    if binary in binary_hashes:
                        keys.add(("action_sha256", binary_hashes[binary]))
                elif action.kind == "comhandler":
                    keys.add(("action", "com " + " ".join(p.lower() for p in (action.class_id, action.data) if p)))
                else:
                    keys.add(("action", action.kind))
            account = definition.user_id or definition.group_id
            if account or definition.run_level:
                keys.add(("principal", " ".join(p for p in (_principal(account, host), definition.run_level) if p)))
            if definition.triggers:
                keys.add(("trigger", ", ".join(sorted({_trigger_shape(t) for t in definition.triggers}))))
        if not entity.definitions:  # seen only in logs or memory: the command as logged
            for event in entity.events:
                if event.command_line:
                    keys.add(("action", normalise_windows_command(event.command_line)))
    else:
        for job in entity.unix_jobs:
            command = " ".join((job.command or "").split())
            schedule = " ".join((job.schedule or "").split())
            keys.add(("unix_entry", f"{job.kind} {job.user or ''} | {schedule} | {command}"))
            keys.add(("action", command))
            if job.user:
                keys.add(("principal", job.user))
            if schedule:
                keys.add(("trigger", f"{job.kind} {schedule}"))
        if not entity.unix_jobs:
            keys.add(("unix_entry", f"{entity.kind} {entity.key}"))
    return sorted(k for k in keys if k[1])


def rare_limit(fleet_size: int, threshold_percent: float = 5.0, threshold_hosts: int = 3) -> int:
    """The most hosts a rare stack may be on."""
    return max(threshold_hosts, math.floor(fleet_size * threshold_percent / 100))


MIN_FLEET_HOSTS = 10  # below this many hosts of one OS family, "rare" means little: no stacking finding


def os_family(summary: dict) -> str:
    """``windows`` or ``unix`` for a host summary: its ``family`` when given, else from its task kinds."""
    family = summary.get("family")
    if family:
        return family
    kinds = {e["kind"] for e in summary.get("entities", [])}
    return "windows" if "windows_task" in kinds or not kinds else "unix"


def family_sizes(hosts: list[dict]) -> dict[str, int]:
    """Distinct hosts per OS family."""
    sizes: dict[str, set[str]] = {}
    for host in hosts:
        sizes.setdefault(os_family(host), set()).add(host["host"])
    return {family: len(names) for family, names in sorted(sizes.items())}


def build_stacks(hosts: list[dict], threshold_percent: float = 5.0, threshold_hosts: int = 3) -> list[dict]:
    """Stacks from per-host summaries, rarest first, each within one OS family (a Windows task is never
    rare merely because the Linux hosts lack it).

    A host summary: ``{"host": name, "family": "windows"|"unix", "case_dir": ..., "entities": [{"task", "kind",
    "stacks": [[dim, value], ...], "first_seen", "last_seen"}], "findings": [{"hunt_id", "task", "risk_level", ...}]}``.
    Hosts are counted by ``host``, so give two different images of one machine name distinct labels."""
    sizes = family_sizes(hosts)
    stacks: dict[tuple[str, str, str], dict] = {}
    for host in hosts:
        family = os_family(host)
        for entity in host["entities"]:
            for dimension, value in entity["stacks"]:
                stack = stacks.setdefault((family, dimension, value), {"hosts": set(), "tasks": set(), "pairs": set(),
                                                                       "seen": []})
                stack["hosts"].add(host["host"])
                stack["tasks"].add(entity["task"])
                stack["pairs"].add((host["host"], entity["task"], entity["kind"]))
                stack["seen"] += [t for t in (entity.get("first_seen"), entity.get("last_seen")) if t]
    rows = []
    for (family, dimension, value), stack in stacks.items():
        count, size = len(stack["hosts"]), sizes[family]
        rows.append({
            "family": family, "kind": dimension, "value": value, "host_count": count, "fleet_hosts": size,
            "percent": round(100 * count / size, 2) if size else 0.0,
            "rare": count <= rare_limit(size, threshold_percent, threshold_hosts),
            "hosts": sorted(stack["hosts"]), "tasks": sorted(stack["tasks"]),
            "first_seen": earliest(stack["seen"]), "last_seen": latest(stack["seen"]),
            "pairs": sorted(stack["pairs"]),
        })
    rows.sort(key=lambda r: (r["host_count"], r["family"], STACK_KINDS.index(r["kind"]), r["value"]))
    return rows


def _host_findings(hosts: list[dict]) -> dict[tuple[str, str], list[dict]]:
    found: dict[tuple[str, str], list[dict]] = {}
    for host in hosts:
        for finding in host["findings"]:
            found.setdefault((host["host"], finding["task"]), []).append(finding)
    return found


def stacking_findings(stacks: list[dict], hosts: list[dict], hunt_date: str, threshold_hosts: int = 3,
                      threshold_percent: float = 5.0, min_hosts: int = MIN_FLEET_HOSTS) -> list[Finding]:
    """One finding per rare task identity, and per rare dimension of otherwise common tasks (see module doc).

    Only within an OS family of at least ``min_hosts`` hosts: on a smaller fleet nearly everything is
    "rare", so the stacks are still written but raise nothing."""
    sizes = family_sizes(hosts)
    per_host = _host_findings(hosts)
    rare = [s for s in stacks if s["rare"] and sizes.get(s.get("family", "windows"), 0) >= min_hosts]
    covered = {(host, task) for s in rare if s["kind"] in IDENTITY_KINDS for host, task, _ in s["pairs"]}
    drafts = []
    for stack in rare:
        fleet_size = stack["fleet_hosts"]
        limit = rare_limit(fleet_size, threshold_percent, threshold_hosts)
        pairs = [(host, task, kind) for host, task, kind in stack["pairs"]]
        if stack["kind"] not in IDENTITY_KINDS and all((host, task) in covered for host, task, _ in pairs):
            continue  # already told by the finding on the rare task itself
        host_hits = {(host, task): per_host.get((host, task), []) for host, task, _ in pairs}
        with_hits = sum(1 for hits in host_hits.values() if hits)
        points = (1 if stack["host_count"] <= max(1, limit // 2) else 0)
        points += 2 if with_hits == len(host_hits) else (1 if with_hits else 0)
        confidence = ("Low", "Medium", "High")[min(points, 2)]
        risks = [f["risk_level"] for hits in host_hits.values() for f in hits]
        risk = max(risks, key=lambda r: RISK_ORDER[r], default="Low")
        task = ", ".join(stack["tasks"])
        identity = stack["kind"] in IDENTITY_KINDS
        what = "task" if identity else stack["kind"].replace("_", " ")
        shown = task if identity else f"{stack['value']} (task {task})"
        evidence = [EvidenceItem(source="fleet stack", location=f"{stack['kind']}",
                                 value=f"{stack['value']} on {stack['host_count']} of {fleet_size} hosts: "
                                       + ", ".join(stack["hosts"]),
                                 time=stack["first_seen"])]
        for other in rare:
            if other is not stack and other["kind"] not in IDENTITY_KINDS and identity and other["family"] == stack["family"] \
                    and {(h, t) for h, t, _ in other["pairs"]} & {(h, t) for h, t, _ in pairs}:
                evidence.append(EvidenceItem(source="fleet stack", location=other["kind"],
                                             value=f"{other['value']} on {other['host_count']} of {fleet_size} hosts"))
        for (host, task_name), hits in sorted(host_hits.items()):
            for hit in hits:
                evidence.append(EvidenceItem(source="host finding", location=f"{host} {hit['hunt_id']}",
                                             value=f"[{hit['risk_level']}/{hit['confidence']}] {hit['title']}"))
        kinds = sorted({kind for _, _, kind in pairs})
        technique = TECHNIQUE_BY_KIND.get(kinds[0], "T1053") if len(kinds) == 1 else "T1053"
        drafts.append(Finding(
            hunt_id="", title=f"Rare {what} on {stack['host_count']} of {fleet_size} hosts: {shown}",
            technique=technique, host=", ".join(stack["hosts"]), user=None, task=task, risk_level=risk,
            confidence=confidence,
            recommended_action="Compare this entry with the fleet's common ones and review it on each host listed "
                               "(case folders in cases/); rare persistence is where intrusions hide.",
            evidence=evidence, rule=f"stack_rare_{stack['kind']}", techniques=[technique],
            confidence_basis=f"on {stack['host_count']} of {fleet_size} hosts (rare at <= {limit}); per-host findings "
                             f"on {with_hits} of {len(host_hits)} host/task pairs",
            details={"stack_kind": stack["kind"], "value": stack["value"], "hosts": stack["hosts"],
                     "first_seen": stack["first_seen"], "last_seen": stack["last_seen"]},
        ))
    drafts.sort(key=lambda f: (-RISK_ORDER[f.risk_level], len(f.details["hosts"]),
                               STACK_KINDS.index(f.details["stack_kind"]), f.details["value"]))
    for seq, finding in enumerate(drafts, start=1):
        finding.hunt_id = f"TH-HUNTIN-{hunt_date}-S{seq:03d}"
    return drafts
