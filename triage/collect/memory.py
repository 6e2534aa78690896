"""Memory images: what the Task Scheduler is running, and the TaskCache as the kernel holds it.

``collect(source, ctx)`` opens the image once through volatility3 (one automagic pass: DTB, kernel,
symbols), then runs triage's two volatility plugins in-process on that context:
``plugins/taskprocs.py`` (Schedule service host, taskeng/taskhost(w), every process whose ancestry
leads there, including exited/unlinked ones only pool scanning finds) and
``plugins/taskcache_mem.py`` (the SOFTWARE hive's TaskCache read through volatility's registry layer
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
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from triage.records import Provenance, Stamp, TaskDefinition, TaskEvent, TaskProcess
from triage.timeutil import filetime_stamp
from triage.timeorder import utc_key

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins"

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
    args, current, quoted, started = [], [], False, False
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
    end = re.search(r"\s", stripped)
    return lead + (end.start() if end else len(stripped))


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


def command_line_flags(name: str, command_line: str | None, image_path: str | None) -> tuple[list[str], dict[str, Any]]:
    """Flags a hunter checks first on a task process, with the facts behind them."""
    flags, facts = [], {}
    exe = basename(image_path or (split_command_line(command_line)[0] if command_line else "") or name)
    if command_line and (exe in POWERSHELL or name.lower() in POWERSHELL):
        payload, decoded = decode_encoded_powershell(command_line)
        if payload is not None:
            flags.append("encoded_powershell")
            facts["encoded_payload"] = payload
            if decoded is not None:
                facts["decoded_command"] = decoded
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


def task_processes(procs: list[dict], evidence: str | None = None, read_details=None) -> list[TaskProcess]:
    """The Schedule service host(s), task hosts and every process whose ancestry leads to them.

    ``procs`` are plain dicts as the taskprocs plugin reads them from EPROCESS (pid, ppid, name,
    create/exit FILETIMEs, threads, offset, seen_by; cmdline, image, session, sid once
    ``read_details(proc)`` has filled them in). Details are read only for svchost.exe (to find the
    Schedule host) and for the processes reported, so large images stay fast.
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
    for i, proc in enumerate(procs):
        name = proc["name"].lower()
        if _is_schedule_host(proc):
            roles[i], host_reason[i] = "schedule_host", "svchost.exe command line has -s Schedule"
        elif name in TASK_HOSTS:
            roles[i] = "task_host"
            parent = parents.get(i)
            if parent is not None and parent["name"].lower() == "svchost.exe" and index[id(parent)] not in roles:
                roles[index[id(parent)]] = "schedule_host"
                host_reason[index[id(parent)]] = f"svchost.exe is the parent of {proc['name']} ({proc['pid']})"
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
        parent = by_key.get(_parent_key(proc, processes))
        if parent is not None and parent.task and parent.details.get("role") != "schedule_host":
            proc.task = parent.task
            proc.link_reason = f"descendant of {parent.name} ({parent.pid}), which runs the task"
    return processes


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
    """The image's kernel was found but no symbol table (ISF) for its PDB is available."""

    def __init__(self, pdb_name: str | None, guid: str | None, age: int | None, symbol_dirs: list[str]):
        self.pdb_name, self.guid, self.age = pdb_name, guid, age
        if guid:
            where = " or ".join(f"{d}/windows/{pdb_name}/{guid}-{age}.json.xz" for d in symbol_dirs) or \
                f"DIR/windows/{pdb_name}/{guid}-{age}.json.xz"
            message = (f"no symbols for the kernel {pdb_name} GUID {guid} age {age}: put its ISF at {where} "
                       f"and pass --symbols DIR (build it where there is network with "
                       f"`python -m volatility3.framework.symbols.windows.pdbconv -p {pdb_name} -g {guid}{age}`); "
                       "memory analysis skipped")
        else:
            message = ("no Windows kernel found in the image (no DTB or ntkrnlmp/ntoskrnl PDB signature): "
                       "not a supported x64 Windows memory image; memory analysis skipped")
        super().__init__(message)


class VolatilitySession:
    """One volatility3 context on one image, with the kernel module resolved once by automagic."""

    def __init__(self, image: Path, symbol_dirs: list[str], progress=None):
        self.image = image
        self.symbol_dirs = symbol_dirs
        self.progress = progress
        self._cache = tempfile.mkdtemp(prefix="triage-vol-cache-")
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> "VolatilitySession":
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
        volatility3.symbols.__path__ = [str(Path(d).resolve()) for d in self.symbol_dirs] + list(constants.SYMBOL_BASEPATHS)
        if str(PLUGIN_DIR) not in volatility3.plugins.__path__:
            volatility3.plugins.__path__.append(str(PLUGIN_DIR))
        if str(PLUGIN_DIR.parent) not in sys.path:
            sys.path.append(str(PLUGIN_DIR.parent))
        from volatility3.plugins import taskprocs

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
        shutil.rmtree(self._cache, ignore_errors=True)



def analyse(image: Path, symbol_dirs: list[str], evidence: str | None = None, progress=None) -> tuple[list[TaskProcess], list[TaskDefinition], str | None]:
    """Run both plugins on one image: (task processes linked to tasks, TaskCache definitions, hive problem)."""
    with VolatilitySession(image, symbol_dirs, progress) as session:
        return session.taskprocs.TaskProcs.analyse(session.context, session.config_path, session.kernel, evidence, progress)


def collect(source, ctx) -> Iterator[TaskDefinition | TaskProcess]:
    """Memory evidence: task definitions from the in-memory TaskCache, then the task processes."""
    if source.memory is None:
        return
    image = Path(source.memory)
    symbols = ctx.options.get("symbols")
    symbol_dirs = [symbols] if isinstance(symbols, (str, Path)) else [str(s) for s in symbols or []]
    ctx.progress(f"memory: opening {image.name} with volatility3")
    try:
        processes, definitions, hive_problem = analyse(image, [str(s) for s in symbol_dirs], source.name, ctx.progress)
    except MissingKernelSymbols as exc:
        ctx.gap(source.name, "kernel symbols", str(exc))
        return
    except Exception as exc:  # volatility raises many types on damaged images; never a traceback
        ctx.gap(source.name, str(image), f"volatility3 could not analyse the image: {type(exc).__name__}: {exc}")
        return
    if hive_problem:
        ctx.gap(source.name, r"\REGISTRY\MACHINE\SOFTWARE TaskCache", hive_problem)
    for record in (*definitions, *processes):  # every row from the image carries the image's SHA-256
        record.provenance.evidence_sha256 = source.ref.sha256
    yield from definitions
    yield from processes
