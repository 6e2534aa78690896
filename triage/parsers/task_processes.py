"""Task processes from a memory image's process list: which processes the Task Scheduler started, what
their command lines do (encoded PowerShell, LOLBins, user-writable paths, addresses) and the tasks a
task-creating command line (schtasks, at, Register-ScheduledTask) defines.

Pure: process facts in (dicts as triage's volatility plugin reads them), records out; no volatility
import, so the plugin, the memory collector and the correlator share it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from triage.parsers.command_line import first_token_end
from triage.parsers.task_cmdline import split_command_line
from triage.records import Provenance, Stamp, TaskDefinition, TaskProcess
from triage.timeutil import filetime_stamp

TASK_HOSTS = {"taskhostw.exe", "taskhost.exe", "taskhostex.exe", "taskeng.exe"}
POWERSHELL = {"powershell.exe", "pwsh.exe", "powershell_ise.exe"}
LOLBINS = {
    "rundll32.exe", "regsvr32.exe", "mshta.exe", "wscript.exe", "cscript.exe", "certutil.exe", "bitsadmin.exe",
    "msiexec.exe", "wmic.exe", "forfiles.exe", "scriptrunner.exe", "hh.exe", "cmd.exe", "powershell.exe",
    "pwsh.exe", "installutil.exe", "msbuild.exe", "regasm.exe", "regsvcs.exe", "schtasks.exe", "at.exe",
    "bash.exe", "curl.exe", "odbcconf.exe", "cmstp.exe", "msxsl.exe", "pcalua.exe",
}
# Folders any user (or any process of the user) can write to: where dropped payloads live.
_USER_WRITABLE = re.compile(
    r"[a-z]:\\(?:users\\[^\\]+\\(?:appdata|desktop|downloads|documents)|users\\public|programdata|perflogs|"
    r"windows\\temp|windows\\tasks|\$recycle\.bin|temp)\\[^\"]*",
    re.IGNORECASE,
)
# Every unambiguous prefix PowerShell accepts for -EncodedCommand, plus its alias -ec.
_ENCODED_SWITCH = re.compile(r"^[-/](?:ec|e|en|enc|enco|encod|encode|encoded|encodedc|encodedco|encodedcom|"
                             r"encodedcomm|encodedcomma|encodedcomman|encodedcommand)$", re.IGNORECASE)
TASK_GUID = re.compile(r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}")
_ENV = {"%windir%": r"c:\windows", "%systemroot%": r"c:\windows", "%systemdrive%": "c:",
        "%programfiles%": r"c:\program files", "%programdata%": r"c:\programdata", "\\??\\": "",
        "\\systemroot\\": "c:\\windows\\"}


# ---------------------------------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------------------------------

def expand_path(path: str) -> str:
    """Lower-case a Windows path and expand the environment variables task actions use."""
    out = path.strip().strip('"').lower()
    for var, value in _ENV.items():
        if out.startswith(var):
            out = value + out[len(var):]
    return out


def basename(path: str) -> str:
    return expand_path(path).replace("/", "\\").rsplit("\\", 1)[-1]


def decode_encoded_powershell(command_line: str) -> tuple[str | None, str | None]:
    """Return (payload, decoded text) of a -EncodedCommand argument, or (None, None) if there is none.

    The payload is base64 of UTF-16LE; when it does not decode, the text is None and the payload kept.
    """
    args = split_command_line(command_line)
    for i, arg in enumerate(args[1:], start=1):
        if _ENCODED_SWITCH.match(arg) and i + 1 < len(args):
            payload = args[i + 1]
            try:
                raw = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
                return payload, raw.decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return payload, None
    return None, None


_URL = re.compile(r"\b(?:https?|ftp)://[^\s'\"`)<>]+", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.]*\d)")
_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}\.)+[a-z]{2,63}$", re.IGNORECASE)


def network_indicators(text: str) -> dict[str, list[str]]:
    """URLs, IPv4 addresses and domains in decoded script text (what ``--ioc`` lists and examiners block)."""
    urls = sorted({m.group(0).rstrip(".,;") for m in _URL.finditer(text)})
    ips = sorted(set(_IPV4.findall(text)))
    domains = set()
    for url in urls:
        host = re.sub(r"^[a-z]+://", "", url, flags=re.IGNORECASE).split("/")[0].split(":")[0].lower()
        if _HOST.match(host) and not _IPV4.fullmatch(host):
            domains.add(host)
    return {"urls": urls, "ips": ips, "domains": sorted(domains)}


def command_line_flags(name: str, command_line: str | None, image_path: str | None) -> tuple[list[str], dict[str, Any]]:
    """Flags a hunter checks first on a task process, with the facts behind them."""
    flags: list[str] = []
    facts: dict[str, Any] = {}
    exe = basename(image_path or (split_command_line(command_line)[0] if command_line else "") or name)
    if command_line and (exe in POWERSHELL or name.lower() in POWERSHELL):
        payload, decoded = decode_encoded_powershell(command_line)
        if payload is not None:
            flags.append("encoded_powershell")
            facts["encoded_payload"] = payload
            if decoded is not None:
                facts["decoded_command"] = decoded
                facts.update({f"decoded_{kind}": found for kind, found in network_indicators(decoded).items() if found})
            else:
                facts["decode_error"] = "payload is not base64 of UTF-16LE text"
    if exe in LOLBINS or name.lower() in LOLBINS:
        flags.append("lolbin")
    paths = sorted({m.group(0).rstrip(",; ") for text in (command_line, image_path) if text
                    for m in _USER_WRITABLE.finditer(text)})
    if paths:
        flags.append("user_writable_path")
        facts["user_writable_paths"] = paths
    return flags, facts


def matches_exec(command_line: str, command: str, arguments: str | None) -> bool:
    """Does a process command line run this Exec action (same program, same arguments)?"""
    argv = split_command_line(command_line)
    if not argv:
        return False
    program, wanted = expand_path(argv[0]), expand_path(command)
    if "\\" in program and "\\" in wanted:
        same_program = program == wanted or program == wanted + ".exe"
    else:
        same_program = basename(program) in (basename(wanted), basename(wanted) + ".exe")
    if not same_program:
        return False
    rest = " ".join(command_line[first_token_end(command_line):].split()).lower()
    return rest == " ".join((arguments or "").split()).lower()


# ---------------------------------------------------------------------------------------------------
# Process records and the task-process tree
# ---------------------------------------------------------------------------------------------------

def _stamp(filetime: int | None, meaning: str) -> Stamp | None:
    return filetime_stamp(filetime, meaning) if filetime else None


def _parents(procs: list[dict]) -> dict[int, dict]:
    """Map each process (by index) to its parent, honouring PID reuse: the parent with that PID
    that was created before the child (the latest such)."""
    by_pid: dict[int, list[dict]] = {}
    for proc in procs:
        by_pid.setdefault(proc["pid"], []).append(proc)
    parents = {}
    for i, proc in enumerate(procs):
        candidates = [p for p in by_pid.get(proc["ppid"], [])
                      if p is not proc and (p["create"] or 0) <= (proc["create"] or 0)]
        if candidates:
            parents[i] = max(candidates, key=lambda p: p["create"] or 0)
    return parents


def _is_schedule_host(proc: dict) -> bool:
    args = [a.lower() for a in split_command_line(proc.get("cmdline") or "")]
    return proc["name"].lower() == "svchost.exe" and any(a == "-s" and b == "schedule" for a, b in zip(args, args[1:]))


def task_processes(procs: list[dict], evidence: str | None = None, read_details=None,
                   service_hosts: dict[int, str] | None = None) -> list[TaskProcess]:
    """The Schedule service host(s), task hosts and every process whose ancestry leads to them.

    ``procs`` are plain dicts as the taskprocs plugin reads them from EPROCESS (pid, ppid, name,
    create/exit FILETIMEs, threads, offset, seen_by; cmdline, image, session, sid once
    ``read_details(proc)`` has filled them in). Details are read only for svchost.exe (to find the
    Schedule host) and for the processes reported, so large images stay fast. ``service_hosts`` maps
    the PID the Service Control Manager's records give the running Schedule service to how that was
    learnt; it names the host first, before the ``-s Schedule`` argument or a task host's parent.
    """
    fill = read_details or (lambda proc: None)
    for proc in procs:
        if proc["name"].lower() == "svchost.exe":
            fill(proc)
    parents = _parents(procs)
    index = {id(p): i for i, p in enumerate(procs)}
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(index[id(parent)], []).append(child)
    roles: dict[int, str] = {}
    host_reason: dict[int, str] = {}
    scm = service_hosts or {}
    for i, proc in enumerate(procs):
        name = proc["name"].lower()
        if proc["pid"] in scm and not proc.get("exit"):
            roles[i], host_reason[i] = "schedule_host", scm[proc["pid"]]
        elif _is_schedule_host(proc):
            roles[i], host_reason[i] = "schedule_host", "svchost.exe command line has -s Schedule"
        elif name in TASK_HOSTS:
            roles[i] = "task_host"
            launcher = parents.get(i)
            if launcher is not None and launcher["name"].lower() == "svchost.exe" and index[id(launcher)] not in roles:
                roles[index[id(launcher)]] = "schedule_host"
                host_reason[index[id(launcher)]] = f"svchost.exe is the parent of {proc['name']} ({proc['pid']})"
    selected: dict[int, str] = dict(roles)
    queue = sorted(roles)
    while queue:
        current = queue.pop(0)
        for child in sorted(children.get(current, [])):
            if child in selected:
                continue
            parent_role = selected[current]
            direct = parent_role == "schedule_host" or procs[current]["name"].lower() == "taskeng.exe"
            selected[child] = "task_process" if direct else "descendant"
            queue.append(child)
    records = []
    for i in sorted(selected, key=lambda k: (procs[k]["create"] or 0, procs[k]["pid"])):
        proc = procs[i]
        if proc["name"].lower() != "svchost.exe":
            fill(proc)
        chain, seen, cur = [], {i}, parents.get(i)
        while cur is not None and index[id(cur)] not in seen:
            seen.add(index[id(cur)])
            chain.append(f"{cur['name']} ({cur['pid']})")
            cur = parents.get(index[id(cur)])
        flags, facts = command_line_flags(proc["name"], proc.get("cmdline"), proc.get("image"))
        if proc.get("exit"):
            flags.append("exited")
        if "pslist" not in proc["seen_by"]:
            flags.append("not_in_active_list")
        details = {"role": selected[i], "seen_by": sorted(proc["seen_by"]), "offset": f"0x{proc['offset']:x}",
                   "offset_kind": proc["offset_kind"], "threads": proc.get("threads"), **facts}
        if i in host_reason:
            details["host_reason"] = host_reason[i]
        if proc.get("audit_path"):
            details["audit_path"] = proc["audit_path"]
        records.append(TaskProcess(
            pid=proc["pid"], ppid=proc["ppid"], name=proc["name"],
            provenance=Provenance(artifact="memory",
                                  location=f"_EPROCESS at {details['offset']} ({proc['offset_kind']})",
                                  evidence=evidence, offset=proc["offset"],
                                  value_name="+".join(sorted(proc["seen_by"]))),
            command_line=proc.get("cmdline"), image_path=proc.get("image") or proc.get("audit_path"),
            created=_stamp(proc["create"], "process_created"), exited=_stamp(proc.get("exit"), "process_exited"),
            session=proc.get("session"), user_sid=proc.get("sid"), ancestry=list(reversed(chain)),
            flags=sorted(set(flags)), details={k: v for k, v in details.items() if v is not None},
        ))
    return records


# Programs whose command line can create a task (schtasks, at, Register-ScheduledTask, or cmd /c wrapping them).
TASK_CREATORS = {"schtasks.exe", "at.exe", "cmd.exe"} | POWERSHELL


def task_creating_definitions(procs: list[dict], evidence: str | None = None, read_details=None,
                              host: str | None = None) -> list[TaskDefinition]:
    """Tasks rebuilt from the command lines of processes that create them (``schtasks /create``, ``at``,
    ``Register-ScheduledTask``), whether still running or exited and found only by pool scanning.

    Parsed by the shared :mod:`triage.parsers.task_cmdline` (the event-log side uses the same parser);
    a ``cmd /c schtasks ...`` and the schtasks.exe it started give one definition (the earlier process).
    """
    from triage.parsers.task_cmdline import parse_task_command, to_definition

    fill = read_details or (lambda proc: None)
    out: list[TaskDefinition] = []
    seen: set[tuple] = set()
    for proc in sorted(procs, key=lambda p: (p["create"] or 0, p["pid"])):
        if proc["name"].lower() not in TASK_CREATORS:
            continue
        fill(proc)
        found = parse_task_command(proc.get("cmdline"))
        if found is None:
            continue
        if found.tool == "at" and found.operation == "create" and not found.task:
            # the service numbers at jobs (At1...); memory has no number
            found.task = f"At job of {proc['name']} pid {proc['pid']}"
        offset = f"0x{proc['offset']:x}"
        seen_by = "+".join(sorted(proc["seen_by"]))
        provenance = Provenance(artifact="memory", evidence=evidence, offset=proc["offset"], value_name=seen_by,
                                location=f"_EPROCESS at {offset} ({proc['offset_kind']}): {proc['name']} "
                                         f"pid {proc['pid']} command line")
        definition = to_definition(found, provenance=provenance, host=host, creating_user=proc.get("sid"))
        if definition is None:
            continue
        key = (definition.task.lower(), tuple((a.command, a.arguments) for a in definition.actions), found.schedule)
        if key in seen:
            continue
        seen.add(key)
        definition.details.update({"creating_pid": proc["pid"], "creating_name": proc["name"],
                                   "seen_by": sorted(proc["seen_by"]),
                                   "process_exited": bool(proc.get("exit"))})
        definition.stamps = [s for s in (_stamp(proc["create"], "process_created"),
                                         _stamp(proc.get("exit"), "process_exited"))
                             if s is not None]
        out.append(definition)
    return out


# ---------------------------------------------------------------------------------------------------
# Linking processes to tasks
# ---------------------------------------------------------------------------------------------------
