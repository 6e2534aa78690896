"""Memory images: what the Task Scheduler is running, and the TaskCache as the kernel holds it.

``collect(source, ctx)`` opens the image once through volatility3 (one automagic pass: DTB, kernel,
symbols), then runs triage's two volatility plugins in-process on that context:
``triage/volplugins/taskprocs.py`` (Schedule service host, taskeng/taskhost(w), every process whose ancestry
leads there, including exited/unlinked ones only pool scanning finds) and
``triage/volplugins/taskcache_mem.py`` (the SOFTWARE hive's TaskCache read through volatility's registry layer
and decoded with :mod:`triage.parsers.taskcache`). It yields :class:`TaskProcess` and
:class:`TaskDefinition` (source ``memory_taskcache``) records.

The command-line analysis (encoded PowerShell, LOLBins, user-writable paths) and the process-to-task
linking below are plain functions with no volatility import, so the plugins, this collector and the
correlator (which has the disk's TaskScheduler events) share them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from triage.records import Provenance, Stamp, TaskDefinition, TaskEvent, TaskProcess
from triage.timeutil import filetime_stamp
from triage.timeorder import utc_key

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
_GUID = re.compile(r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}")
_ENV = {"%windir%": r"c:\windows", "%systemroot%": r"c:\windows", "%systemdrive%": "c:",
        "%programfiles%": r"c:\program files", "%programdata%": r"c:\programdata", "\\??\\": "",
        "\\systemroot\\": "c:\\windows\\"}
EVENT_LINK_TOLERANCE = timedelta(seconds=5)


# ---------------------------------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------------------------------

def split_command_line(text: str) -> list[str]:
    """Split like CommandLineToArgvW: whitespace separates, double quotes group (and are dropped)."""
    args: list[str] = []
    current: list[str] = []
    quoted = started = False
    for ch in text:
        if ch == '"':
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        args.append("".join(current))
    return args


def _first_token_end(text: str) -> int:
    """Index just past the program token of a raw command line (quoted or not)."""
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    if stripped.startswith('"'):
        end = stripped.find('"', 1)
        return lead + (len(stripped) if end < 0 else end + 1)
    space = re.search(r"\s", stripped)
    return lead + (space.start() if space else len(stripped))


def split_program(command_line: str) -> tuple[str, str | None]:
    """(program, arguments) of a raw command line, the way a task action stores them."""
    end = _first_token_end(command_line)
    return command_line[:end].strip().strip('"'), command_line[end:].strip() or None


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
    paths = sorted({m.group(0).rstrip(",; ") for text in (command_line, image_path) if text for m in _USER_WRITABLE.finditer(text)})
    if paths:
        flags.append("user_writable_path")
        facts["user_writable_paths"] = paths
    return flags, facts


def _matches_exec(command_line: str, command: str, arguments: str | None) -> bool:
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
    rest = " ".join(command_line[_first_token_end(command_line):].split()).lower()
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
        candidates = [p for p in by_pid.get(proc["ppid"], []) if p is not proc and (p["create"] or 0) <= (proc["create"] or 0)]
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
            provenance=Provenance(artifact="memory", location=f"_EPROCESS at {details['offset']} ({proc['offset_kind']})",
                                  evidence=evidence, offset=proc["offset"], value_name="+".join(sorted(proc["seen_by"]))),
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
            found.task = f"At job of {proc['name']} pid {proc['pid']}"  # the service numbers at jobs (At1...); memory has no number
        offset = f"0x{proc['offset']:x}"
        seen_by = "+".join(sorted(proc["seen_by"]))
        provenance = Provenance(artifact="memory", evidence=evidence, offset=proc["offset"], value_name=seen_by,
                                location=f"_EPROCESS at {offset} ({proc['offset_kind']}): {proc['name']} pid {proc['pid']} command line")
        definition = to_definition(found, provenance=provenance, host=host, creating_user=proc.get("sid"))
        if definition is None:
            continue
        key = (definition.task.lower(), tuple((a.command, a.arguments) for a in definition.actions), found.schedule)
        if key in seen:
            continue
        seen.add(key)
        definition.details.update({"creating_pid": proc["pid"], "creating_name": proc["name"], "seen_by": sorted(proc["seen_by"]),
                                   "process_exited": bool(proc.get("exit"))})
        definition.stamps = [s for s in (_stamp(proc["create"], "process_created"), _stamp(proc.get("exit"), "process_exited"))
                             if s is not None]
        out.append(definition)
    return out


# ---------------------------------------------------------------------------------------------------
# Linking processes to tasks
# ---------------------------------------------------------------------------------------------------

def _parse_utc(stamp: Stamp | None) -> datetime | None:
    if stamp is None or not stamp.utc:
        return None
    return datetime.fromisoformat(stamp.utc.replace("Z", "+00:00"))


def link_task_processes(processes: list[TaskProcess], events: Iterable[TaskEvent] = (),
                        definitions: Iterable[TaskDefinition] = ()) -> list[TaskProcess]:
    """Set ``task`` and ``link_reason`` on task processes; returns the same list.

    In order: (1) a taskhost(w)/taskeng argument that is a task's GUID or its ComHandler CLSID;
    (2) a command line that runs a decoded Exec action; (3) TaskScheduler event 129 (the event's
    process id and a create time within 5 s); then every descendant inherits its nearest linked
    ancestor's task. When definitions are given, a process the scheduler started that matches no
    task is flagged ``task_not_in_registry`` (the task was deleted after it was loaded, or hidden).
    """
    definitions = list(definitions)
    guid_to_task: dict[str, str] = {}
    clsid_to_tasks: dict[str, set[str]] = {}
    exec_actions: list[tuple[str, str, str | None]] = []
    for definition in definitions:
        guid = str(definition.details.get("guid") or "").upper()
        if guid:
            guid_to_task[guid] = definition.task
        for action in definition.actions:
            if action.kind == "comhandler" and action.class_id:
                clsid_to_tasks.setdefault(action.class_id.upper(), set()).add(definition.task)
            elif action.kind == "exec" and action.command:
                exec_actions.append((definition.task, action.command, action.arguments))
    by_key = {(p.pid, p.created.utc if p.created else None): p for p in processes}
    for proc in processes:
        if proc.task:
            continue
        role = proc.details.get("role")
        if proc.name.lower() in TASK_HOSTS and proc.command_line:
            for guid in _GUID.findall(proc.command_line):
                guid = guid.upper()
                if guid in guid_to_task:
                    proc.task, proc.link_reason = guid_to_task[guid], f"{proc.name} argument {guid} is the task's GUID"
                    break
                if len(clsid_to_tasks.get(guid, ())) == 1:
                    proc.task = next(iter(clsid_to_tasks[guid]))
                    proc.link_reason = f"{proc.name} argument {guid} is the task's ComHandler CLSID"
                    break
        if not proc.task and proc.command_line and role in ("task_process", "task_host"):
            matches = sorted({task for task, command, arguments in exec_actions if _matches_exec(proc.command_line, command, arguments)})
            if len(matches) == 1:
                proc.task, proc.link_reason = matches[0], "command line runs the task's Exec action"
            elif matches:
                proc.details["exec_action_matches"] = matches
        if definitions and not proc.task and role == "task_process":
            proc.flags = sorted(set(proc.flags) | {"task_not_in_registry"})
    for event in sorted(events, key=lambda e: (utc_key(e.time.utc), e.provenance.offset or 0)):
        if event.event_id != 129 or event.process_id is None or not event.task:
            continue
        logged = _parse_utc(event.time)
        for proc in processes:
            created = _parse_utc(proc.created)
            if proc.pid != event.process_id or logged is None or created is None:
                continue
            if abs(logged - created) > EVENT_LINK_TOLERANCE:
                continue
            reason = (f"TaskScheduler event 129 (record {event.provenance.offset}) logged process id {proc.pid} "
                      f"for {event.task} at {event.time.utc}")
            if proc.task and proc.task.lower() != event.task.lower():
                proc.details["event_129_task"] = event.task
            elif not proc.task:
                proc.task, proc.link_reason = event.task, reason
    for proc in sorted(processes, key=lambda p: (utc_key(p.created.utc) if p.created else "", p.pid)):
        if proc.task or proc.details.get("role") == "schedule_host":
            continue
        key = _parent_key(proc, processes)
        parent = by_key.get(key) if key else None
        if parent is not None and parent.task and parent.details.get("role") != "schedule_host":
            proc.task = parent.task
            proc.link_reason = f"descendant of {parent.name} ({parent.pid}), which runs the task"
    _assign_task_entities(processes, by_key)
    return processes


def _assign_task_entities(processes: list[TaskProcess], by_key: dict) -> None:
    """Give every process the scheduler runs that no definition names a task entity of its own (details
    ``task_entity`` key and ``task_entity_name``): keyed by its task host's GUID argument (taskhost(w).exe
    runs one task per GUID), else by the process the scheduler started (the root of its subtree)."""
    for proc in processes:
        proc.details.pop("task_entity", None)
        proc.details.pop("task_entity_name", None)
        if proc.task or proc.details.get("role") == "schedule_host":
            continue
        root, seen = proc, {id(proc)}
        while root.details.get("role") not in ("task_process", "task_host"):
            key = _parent_key(root, processes)
            parent = by_key.get(key) if key else None
            if parent is None or id(parent) in seen or parent.details.get("role") == "schedule_host":
                break
            seen.add(id(parent))
            root = parent
        guids = _GUID.findall(root.command_line or "") if root.name.lower() in ("taskhostw.exe", "taskhost.exe", "taskhostex.exe") else []
        if guids:
            proc.details["task_entity"] = f"memory:{guids[0].lower()}"
            proc.details["task_entity_name"] = f"(running task) {guids[0].upper()}"
        else:
            proc.details["task_entity"] = f"memory:{root.name.lower()}:{root.pid}"
            proc.details["task_entity_name"] = f"(running task) {root.name} pid {root.pid}"


def _parent_key(proc: TaskProcess, processes: list[TaskProcess]) -> tuple[int, str | None] | None:
    """Key of the parent record: same PID as ppid, created before the child (latest such)."""
    created = utc_key(proc.created.utc) if proc.created else ""
    candidates = [p for p in processes if p.pid == proc.ppid and p is not proc and (utc_key(p.created.utc) if p.created else "") <= created]
    if not candidates:
        return None
    parent = max(candidates, key=lambda p: utc_key(p.created.utc) if p.created else "")
    return parent.pid, parent.created.utc if parent.created else None


# ---------------------------------------------------------------------------------------------------
# Running volatility3 in-process
# ---------------------------------------------------------------------------------------------------

class MissingKernelSymbols(Exception):
    """The image's kernel was found but no usable symbol table (ISF) for its PDB: missing, or present
    at the expected path but unreadable, not an ISF, or made for another kernel build."""

    def __init__(self, pdb_name: str | None, guid: str | None, age: int | None, symbol_dirs: list[str]):
        self.pdb_name, self.guid, self.age = pdb_name, guid, age
        if guid:
            paths = [Path(d) / "windows" / pdb_name / f"{guid}-{age}.json.xz" for d in symbol_dirs]
            present = [p for p in paths if p.exists()]
            kernel = f"the kernel {pdb_name} GUID {guid} age {age}"
            if present:
                message = (f"symbols for {kernel} are at {present[0]} but {_isf_problem(present[0], guid, age)}: "
                           f"replace that file with the ISF built by `python -m volatility3.framework.symbols.windows.pdbconv "
                           f"-p {pdb_name} -g {guid}{age}`; memory analysis skipped")
            else:
                where = " or ".join(map(str, paths)) or f"DIR/windows/{pdb_name}/{guid}-{age}.json.xz"
                message = (f"no symbols for {kernel}: put its ISF at {where} "
                           f"and pass --symbols DIR (build it where there is network with "
                           f"`python -m volatility3.framework.symbols.windows.pdbconv -p {pdb_name} -g {guid}{age}`); "
                           "memory analysis skipped")
        else:
            message = ("no Windows kernel found in the image (no DTB or ntkrnlmp/ntoskrnl PDB signature): "
                       "not a supported x64 Windows memory image; memory analysis skipped")
        super().__init__(message)


MAX_ISF_BYTES = 512 * 1024 * 1024


def _isf_problem(path: Path, guid: str, age: int) -> str:
    """Why volatility could not use the ISF file that is where it belongs."""
    import json
    import lzma

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ISF_BYTES + 1)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    try:
        decompressor = lzma.LZMADecompressor()
        text = decompressor.decompress(raw, max_length=MAX_ISF_BYTES)
        isf = json.loads(text)
        pdb = isf["metadata"]["windows"]["pdb"]
    except (lzma.LZMAError, ValueError, KeyError, TypeError, EOFError) as exc:
        return f"it is not a valid xz-compressed ISF JSON file ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    if str(pdb.get("GUID", "")).upper() != guid.upper() or pdb.get("age") != age:
        return f"it was made for another kernel build (GUID {pdb.get('GUID')} age {pdb.get('age')})"
    return "volatility could not use it (an ISF format version this volatility3 does not read?)"


class VolatilitySession:
    """One volatility3 context on one image, with the kernel module resolved once by automagic."""

    def __init__(self, image: Path, symbol_dirs: list[str], progress=None):
        self.image = image
        self.symbol_dirs = symbol_dirs
        self.progress = progress
        self._cache = tempfile.mkdtemp(prefix="triage-vol-cache-")
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> "VolatilitySession":
        try:
            return self._open()
        except BaseException:  # missing symbols, not a memory image, interrupted: settings back, cache gone
            self.__exit__(None, None, None)
            raise

    def _open(self) -> VolatilitySession:
        import volatility3.plugins
        import volatility3.schemas
        import volatility3.symbols
        from volatility3 import framework
        from volatility3.framework import automagic, constants, contexts, interfaces, plugins

        framework.require_interface_version(2, 0, 0)
        logging.getLogger("volatility3").addHandler(logging.NullHandler())
        self._saved = {"cache": constants.CACHE_PATH, "offline": constants.OFFLINE,
                       "symbols": list(volatility3.symbols.__path__),
                       "validation": volatility3.schemas.cached_validation_filepath}
        constants.CACHE_PATH = self._cache
        volatility3.schemas.cached_validation_filepath = str(Path(self._cache) / "valid_isf.hashcache")
        constants.OFFLINE = True
        # volatility's "download" step opens <symbols>/windows/<pdb>/<guid>-<age>.json.xz for writing in
        # the examiner's --symbols folder even offline, then deletes it: an ISF it could not use is lost
        from volatility3.framework.symbols.windows import pdbutil

        self._saved["download"] = pdbutil.PDBUtility.__dict__["download_pdb_isf"]
        pdbutil.PDBUtility.download_pdb_isf = classmethod(lambda cls, *args, **kwargs: None)
        volatility3.symbols.__path__ = [str(Path(d).resolve()) for d in self.symbol_dirs] + list(constants.SYMBOL_BASEPATHS)
        from triage import volplugins
        from triage.volplugins import taskprocs

        volplugins.register()

        self.taskprocs = taskprocs
        self.context = contexts.Context()
        self.context.config["automagic.LayerStacker.single_location"] = self.image.resolve().as_uri()
        chosen = automagic.choose_automagic(automagic.available(self.context), taskprocs.TaskProcs)
        self._progress_seen: set[str] = set()
        try:
            plugin = plugins.construct_plugin(self.context, chosen, taskprocs.TaskProcs, "plugins",
                                              self._report, interfaces.plugins.FileHandlerInterface)
        except framework.exceptions.UnsatisfiedException:
            raise self._missing_symbols() from None
        self.kernel = plugin.config["kernel"]
        self.config_path = plugin.config_path
        return self

    def _report(self, percent: float, description: str | None = None) -> None:
        """Volatility progress, one line per phase (not per percent)."""
        phase = (description or "").split(" at ")[0].strip()
        if self.progress and phase and phase not in self._progress_seen:
            self._progress_seen.add(phase)
            self.progress(f"volatility: {phase}")

    def _missing_symbols(self) -> MissingKernelSymbols:
        from volatility3.framework import layers
        from volatility3.framework.automagic import pdbscan

        intel = [name for name, layer in self.context.layers.items() if isinstance(layer, layers.intel.Intel)]
        found = pdbscan.KernelPDBScanner(self.context, "triage_pdbscan").determine_valid_kernel(self.context, intel) if intel else None
        if not found:
            return MissingKernelSymbols(None, None, None, self.symbol_dirs)
        _layer, _offset, kernel = found
        return MissingKernelSymbols(kernel["pdb_name"], kernel["GUID"], kernel["age"], self.symbol_dirs)

    def __exit__(self, *exc) -> None:
        import volatility3.schemas
        import volatility3.symbols
        from volatility3.framework import constants

        if "validation" in self._saved:
            volatility3.schemas.cached_validation_filepath = self._saved["validation"]
        constants.CACHE_PATH = self._saved.get("cache", constants.CACHE_PATH)
        constants.OFFLINE = self._saved.get("offline", constants.OFFLINE)
        if "symbols" in self._saved:
            volatility3.symbols.__path__ = self._saved["symbols"]
        if "download" in self._saved:
            from volatility3.framework.symbols.windows import pdbutil

            pdbutil.PDBUtility.download_pdb_isf = self._saved["download"]
        shutil.rmtree(self._cache, ignore_errors=True)



def analyse(image: Path, symbol_dirs: list[str], evidence: str | None = None, progress=None):
    """Run both plugins on one image (a :class:`triage.volplugins.taskprocs.MemoryAnalysis`)."""
    with VolatilitySession(image, symbol_dirs, progress) as session:
        return session.taskprocs.TaskProcs.analyse(session.context, session.config_path, session.kernel, evidence, progress)


def collect(source, ctx) -> Iterator[TaskDefinition | TaskProcess]:
    """Memory evidence: task definitions (in-memory TaskCache, rebuilt from command lines), then the task
    processes. The host name and OS the in-memory registry holds name the evidence item when nothing else did."""
    if source.memory is None:
        return
    image = Path(source.memory)
    symbols = ctx.options.get("symbols")
    symbol_dirs = [symbols] if isinstance(symbols, (str, Path)) else [str(s) for s in symbols or []]
    ctx.progress(f"memory: opening {image.name} with volatility3")
    try:
        result = analyse(image, [str(s) for s in symbol_dirs], source.name, ctx.progress)
    except MissingKernelSymbols as exc:
        ctx.gap(source.name, "kernel symbols", str(exc))
        return
    except Exception as exc:  # volatility raises many types on damaged images; never a traceback
        ctx.gap(source.name, str(image), f"volatility3 could not analyse the image: {type(exc).__name__}: {exc}")
        return
    source.host.hostname = source.host.hostname or result.host.get("hostname")
    source.host.os = source.host.os or result.host.get("os")
    for problem in result.problems:
        if problem.startswith(("no running Schedule service", "service records unreadable")):
            ctx.progress(f"memory: {problem}")  # the process tree still finds the host: a note, not a gap
        else:
            ctx.gap(source.name, r"\REGISTRY\MACHINE (in memory)", problem)
    ctx.progress(f"memory: Schedule service host found from the {result.schedule_host_method}")
    for record in (*result.definitions, *result.processes):  # every row from the image carries its SHA-256
        record.provenance.evidence_sha256 = source.ref.sha256
    yield from result.definitions
    yield from result.processes
