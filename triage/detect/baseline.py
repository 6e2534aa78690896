"""Stock tasks: what Windows ships (per release) and what widespread vendors install, so they stay quiet.

Two data files, built from real public data by ``tools/build_windows_baseline.py`` (every entry names
its source; see the files' ``sources``):

- ``triage/data/baseline_windows.json``: stock Microsoft task paths with, per source and release, the
  actions (or only the action program, or only the name), the principal and the trigger kinds;
- ``triage/data/baseline_vendors.json``: third-party tasks (Google, Edge, OneDrive, Defender platform
  updates...) known by name pattern AND install path AND action, never by name alone.

The release comes from the host's registry (``ProductName``/``CurrentBuild`` as dissect reports them in
``HostInfo.os``); an unknown release, or one no source covers, uses the union of all releases.

Used for definitions and for tasks seen only in logs (:func:`is_stock_name`): a stock name with no
definition read is not suspicious; a stock name whose action program, principal or folder differs is.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from triage import sources
from triage.detect import Hit, JudgeContext
from triage.records import Entity, EvidenceItem, HostInfo, TaskDefinition
from triage.taskpath import normalise_task_path

_DEFINITION_SOURCES = sources.DEFINING_SOURCES  # the sources table (triage/sources.py) says which

_ENV = [
    (re.compile(r"%(?:windir|systemroot)%", re.IGNORECASE), r"c:\\windows"),
    (re.compile(r"%programfiles\(x86\)%", re.IGNORECASE), r"c:\\program files (x86)"),
    (re.compile(r"%programfiles%", re.IGNORECASE), r"c:\\program files"),
    (re.compile(r"%programdata%", re.IGNORECASE), r"c:\\programdata"),
    (re.compile(r"%systemdrive%", re.IGNORECASE), "c:"),
]
_DEFENDER_PLATFORM = re.compile(r"(\\windows defender\\platform\\)[^\\]+(\\)", re.IGNORECASE)

# Well-known principals by every name Windows writes them with (XML names, TaskCache SIDs, schtasks output).
_PRINCIPALS = {
    "s-1-5-18": {"system", "nt authority\\system", "localsystem", "local system", "s-1-5-18"},
    "s-1-5-19": {"local service", "nt authority\\local service", "localservice", "s-1-5-19"},
    "s-1-5-20": {"network service", "nt authority\\network service", "networkservice", "s-1-5-20"},
    "s-1-5-32-544": {"administrators", "builtin\\administrators", "s-1-5-32-544"},
    "s-1-5-32-545": {"users", "builtin\\users", "s-1-5-32-545"},
    "s-1-5-4": {"interactive", "nt authority\\interactive", "s-1-5-4"},
    "s-1-1-0": {"everyone", "s-1-1-0"},
    "s-1-5-11": {"authenticated users", "nt authority\\authenticated users", "s-1-5-11"},
}
_PRINCIPAL_BY_NAME = {name: sid for sid, names in _PRINCIPALS.items() for name in names}

# Programs whose arguments say what they run: a changed argument there is a changed action.
_ARGUMENT_HOSTS = {"rundll32.exe", "regsvr32.exe", "cmd.exe", "powershell.exe", "pwsh.exe", "cscript.exe",
                   "wscript.exe", "mshta.exe", "sc.exe"}


def normalise_action(command: str | None, arguments: str | None) -> str:
    """One comparable form: lower case, quotes dropped, environment variables expanded, Defender's
    platform version folder replaced by ``*`` (it changes with every platform update)."""
    text = " ".join(p for p in (command, arguments) if p)
    text = " ".join(text.replace('"', "").lower().split())
    for pattern, value in _ENV:
        text = pattern.sub(value, text)
    return _DEFENDER_PLATFORM.sub(r"\1*\2", text)


def canonical_principal(name: str | None) -> str | None:
    """A well-known account's SID (``NT AUTHORITY\\SYSTEM`` → ``s-1-5-18``), else the name lower-cased."""
    text = (name or "").strip().lower()
    if not text or text in ("(none)", "(default user)"):
        return None
    return _PRINCIPAL_BY_NAME.get(text, text)


def release_of(os_text: str | None) -> str | None:
    """``Windows Server 2016 Standard (NT 10.0) 14393.xxx`` → ``2016``; client builds ≥ 22000 → ``11``."""
    text = os_text or ""
    build_match = re.search(r"\b(\d{4,5})(?:\.\d+)?\s*$", text) or re.search(r"\b(7600|7601|9200|9600|1\d{4}|2\d{4})\b", text)
    build = int(build_match.group(1)) if build_match else None
    server = "server" in text.lower()
    named = re.search(r"Server (2008 R2|2012 R2|2012|2016|2019|2022|2025)", text, re.IGNORECASE)
    if server:
        if named:
            return named.group(1).upper().replace(" ", "")
        return {7600: "2008R2", 7601: "2008R2", 9200: "2012", 9600: "2012R2", 14393: "2016", 17763: "2019",
                20348: "2022", 26100: "2025"}.get(build or 0)
    client = re.search(r"Windows (7|8\.1|8|10|11)\b", text)
    if build and build >= 22000:
        return "11"
    if client:
        return client.group(1)
    return {7600: "7", 7601: "7", 9200: "8", 9600: "8.1"}.get(build or 0, "10" if build and build >= 10240 else None)


@lru_cache(maxsize=1)
def _data() -> tuple[dict, list]:
    folder = resources.files("triage").joinpath("data")
    windows = json.loads(folder.joinpath("baseline_windows.json").read_text(encoding="utf-8"))
    vendors = json.loads(folder.joinpath("baseline_vendors.json").read_text(encoding="utf-8"))
    for vendor in vendors["tasks"]:
        vendor["_task"] = re.compile(vendor["task_pattern"], re.IGNORECASE)
        vendor["_command"] = re.compile(vendor["command_pattern"], re.IGNORECASE)
    return windows, vendors["tasks"]


def load_baseline(hosts: list[HostInfo] | tuple = ()) -> dict:
    """The baseline for a run: stock tasks, vendor tasks and each host's release (None: unknown → union)."""
    windows, vendors = _data()
    covered = {source["release"] for source in windows["sources"].values()}
    releases = {}
    for host in hosts:
        release = release_of(host.os)
        releases[(host.hostname or "").lower()] = release if release in covered else None
    return {"tasks": windows["tasks"], "vendors": vendors, "host_releases": releases, "covered": sorted(covered)}


def _release(host: str | None, baseline: dict) -> str | None:
    """The host's release; event logs name the host by FQDN where the registry has the short name."""
    releases = baseline.get("host_releases", {})
    name = (host or "").lower()
    return releases.get(name, releases.get(name.split(".")[0]))


def _variants(entry: dict, host: str | None, baseline: dict) -> list[dict]:
    release = _release(host, baseline)
    chosen = [v for v in entry["variants"] if release is None or release in v["releases"]]
    return chosen or entry["variants"]


def stock_entry(entity: Entity, baseline: dict) -> dict | None:
    if entity.kind != "windows_task":
        return None
    return baseline.get("tasks", {}).get(entity.key)


def is_stock_name(task: str, host: str | None, baseline: dict) -> bool:
    """Whether a task path is a stock Microsoft task of the host's release (or of any release when unknown)."""
    entry = baseline.get("tasks", {}).get(normalise_task_path(task))
    if entry is None:
        return False
    release = _release(host, baseline)
    return release is None or any(release in v["releases"] for v in entry["variants"])


def vendor_entry(definition: TaskDefinition, baseline: dict) -> dict | None:
    """The vendor task this definition is: its name pattern AND every Exec action's install path match."""
    for vendor in baseline.get("vendors", []):
        if not vendor["_task"].search(definition.task or ""):
            continue
        execs = [a for a in definition.actions if a.kind == "exec"]
        if execs and all(vendor["_command"].search(normalise_action(a.command, None)) for a in execs) \
                and len(execs) == len(definition.actions):
            return vendor
    return None


def _program(normalised: str) -> str:
    return re.split(r"\s+(?=[-/])|\s+(?=[a-z]:\\)", normalised, maxsplit=1)[0]


def _action_verdict(definition: TaskDefinition, variants: list[dict]) -> tuple[str, str, str]:
    """('same'|'changed'|'arguments'|'unknown', stock text, found text) for one definition's actions."""
    found = sorted(f"comhandler:{(a.class_id or '').lower()}" if a.kind == "comhandler" else
                   normalise_action(a.command, a.arguments) for a in definition.actions)
    known = [v for v in variants if v.get("actions") is not None and v["actions"] != ["comhandler:?"]]
    wildcard_com = any(v.get("actions") == ["comhandler:?"] for v in variants)
    images = sorted({i for v in variants for i in (v.get("images") or [])})
    found_text = " | ".join(found)
    if any(found == v["actions"] for v in known):
        return "same", "", found_text
    if wildcard_com and found and all(f.startswith("comhandler:") for f in found) and not known:
        return "same", "", found_text
    if known:
        stock_programs = {_program(a) for v in known for a in v["actions"]}
        found_programs = {_program(a) for a in found}
        stock_text = " / ".join(" | ".join(v["actions"]) for v in known)
        if found_programs <= stock_programs:
            names = {p.rsplit("\\", 1)[-1] for p in found_programs}
            return ("arguments" if names & _ARGUMENT_HOSTS else "build"), stock_text, found_text
        return "changed", stock_text, found_text
    exec_images = [i for i in images if not i.startswith("comhandler-name:")]
    if exec_images:
        found_programs = {_program(a) for a in found if not a.startswith("comhandler:")}
        if found_programs and not found_programs <= set(exec_images):
            return "changed", " / ".join(exec_images), found_text
        if found_programs:
            return "same", "", found_text
    return "unknown", "", found_text


def _principal_changed(definition: TaskDefinition, variants: list[dict]) -> tuple[str, str] | None:
    found = canonical_principal(definition.user_id or definition.group_id)
    stock = {v["user"] for v in variants if v.get("user")}
    if not found or not stock or found in stock or found not in _PRINCIPALS or not stock <= set(_PRINCIPALS):
        return None
    return " / ".join(sorted(stock)), found


def _differences(entity: Entity, entry: dict, baseline: dict) -> list[tuple[TaskDefinition, str, str, str, str]]:
    """(definition, field, stock, found, risk) for each way a stock task differs from its baseline."""
    out = []
    for definition in entity.definitions:
        if definition.source not in _DEFINITION_SOURCES or not definition.actions:
            continue
        variants = _variants(entry, definition.host or entity.host, baseline)
        verdict, stock, found = _action_verdict(definition, variants)
        if verdict == "changed":
            out.append((definition, "action program", stock, found, "High"))
        elif verdict == "arguments":
            out.append((definition, "arguments of a script host or LOLBin", stock, found, "Medium"))
        principal = _principal_changed(definition, variants)
        if principal:
            out.append((definition, "principal", principal[0], principal[1], "High"))
    return out


def _compared(entity: Entity, entry: dict, baseline: dict) -> bool:
    """Whether at least one definition matched the stock action (or the entry knows no action at all)."""
    variants = entry["variants"]
    if all(v.get("actions") is None and not v.get("images") for v in variants):
        return True
    return any(_action_verdict(d, _variants(entry, d.host or entity.host, baseline))[0] == "same"
               for d in entity.definitions if d.source in _DEFINITION_SOURCES and d.actions)


def is_unchanged_stock(entity: Entity, baseline: dict) -> bool:
    """A stock Microsoft task whose actions match its release's baseline, or a vendor task on its install path."""
    if entity.kind != "windows_task":
        return False
    definitions = [d for d in entity.definitions if d.source in _DEFINITION_SOURCES and d.actions]
    if definitions and all(vendor_entry(d, baseline) for d in definitions):
        return True
    entry = stock_entry(entity, baseline)
    if entry is None:
        return False
    return not _differences(entity, entry, baseline) and _compared(entity, entry, baseline)


def check_baseline(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    if entity.kind != "windows_task":
        return []
    entry = stock_entry(entity, ctx.baseline)
    hits = []
    if entry is not None:
        diffs = _differences(entity, entry, ctx.baseline)
        if diffs:
            risk = "High" if any(d[4] == "High" for d in diffs) else "Medium"
            fields = sorted({d[1] for d in diffs})
            hits.append(Hit(
                rule="stock_task_changed", risk=risk, techniques=["T1036.004"],
                title=f"A stock Windows task differs from its baseline ({', '.join(fields)})",
                evidence=[EvidenceItem(source=f"{d.source} {field}", location=d.provenance.location,
                                       value=f"stock: {stock}; found: {found}", evidence_sha256=d.provenance.evidence_sha256)
                          for d, field, stock, found, _ in diffs],
                action=f"Disable {entity.task} until it is restored from a clean copy; collect its task file, TaskCache keys and the binaries its actions run.",
                single_source_ok=True,
            ))
    else:
        hits += _vendor_name_hits(entity, ctx.baseline)
        hits += _wrong_folder_hits(entity, ctx.baseline)
    return hits


def _vendor_name_hits(entity: Entity, baseline: dict) -> list[Hit]:
    """A vendor task's name with an action outside the vendor's install path: the name is borrowed."""
    out = []
    for definition in entity.definitions:
        execs = [a for a in definition.actions if a.kind == "exec"]
        if definition.source not in _DEFINITION_SOURCES or not execs:
            continue
        named = [v for v in baseline.get("vendors", []) if v["_task"].search(definition.task or "")]
        if named and vendor_entry(definition, baseline) is None:
            out.append(EvidenceItem(source=f"{definition.source} action", location=definition.provenance.location,
                                    value=f"{named[0]['vendor']} installs {named[0]['command_pattern']}; found: "
                                          + " | ".join(a.command_line for a in execs),
                                    evidence_sha256=definition.provenance.evidence_sha256))
    if not out:
        return []
    return [Hit(rule="vendor_name_other_program", risk="High", techniques=["T1036.004"],
                title="Task carries a known vendor task's name but runs a program outside that vendor's install path",
                evidence=out, single_source_ok=True,
                action=f"Collect and hash the program {entity.task} runs; the vendor's own task runs from its install folder.")]


_DISTINCTIVE = re.compile(r"[\s\-_.\d]|[a-z][A-Z]")


def _wrong_folder_hits(entity: Entity, baseline: dict) -> list[Hit]:
    """A distinctive stock task name (CacheTask, Tpm-Maintenance...) in a folder where Windows never puts it."""
    leaf = entity.task.rsplit("\\", 1)[-1]
    if not _DISTINCTIVE.search(leaf) or len(leaf) < 6 or not entity.definitions and not entity.events:
        return []
    homes = sorted({e["folder"] for e in _stock_by_leaf(baseline).get(leaf.lower(), [])})
    if not homes:
        return []
    return [Hit(rule="stock_name_wrong_folder", risk="Medium", techniques=["T1036.004"],
                title="Task uses a stock Windows task's name in a folder where Windows does not put it",
                evidence=[EvidenceItem(source="task path", location=entity.task,
                                       value=f"stock {leaf} lives in {', '.join(homes)}")],
                action=f"Compare {entity.task} with the stock task of the same name; collect the program it runs.")]


def _stock_by_leaf(baseline: dict) -> dict[str, list[dict]]:
    cache = baseline.setdefault("_by_leaf", {})
    if not cache:
        for entry in baseline.get("tasks", {}).values():
            cache.setdefault(entry["task"].rsplit("\\", 1)[-1].lower(), []).append(entry)
    return cache
