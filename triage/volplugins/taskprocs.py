"""volatility3 plugin: the processes the Windows Task Scheduler is running (or ran).

Finds the Schedule service host (svchost.exe with ``-s Schedule``, or the svchost that parents a task
host), taskeng.exe (Windows 7/2008) and taskhost(w).exe, then every process whose ancestry leads
there. Processes come from both the active list (pslist) and pool scanning (psscan), so exited or
unlinked task children that pslist no longer shows are included. Each process is linked to its task
in the in-memory TaskCache (see taskcache_mem.py) and flagged: encoded PowerShell (decoded),
LOLBins, user-writable paths, exited, not in the active list, task not in the registry.

    vol -p $(python -m triage.volplugins --path) -s SYMBOLS -f mem.raw taskprocs.TaskProcs
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator

from volatility3.framework import constants, exceptions, interfaces, renderers
from volatility3.framework.configuration import requirements
from volatility3.framework.layers import intel
from volatility3.plugins.windows import pslist, psscan, svcscan

from triage import correlate
from triage.parsers import task_processes as triage_memory
from triage.records import TaskDefinition, TaskProcess

from . import taskcache_mem  # relative: the same copy whether loaded as triage.volplugins or by `vol -p`

vollog = logging.getLogger(__name__)


@dataclass
class MemoryAnalysis:
    """What one pass over a memory image found."""

    processes: list[TaskProcess]  # the scheduler's process tree, linked to tasks
    definitions: list[TaskDefinition]  # in-memory TaskCache, then tasks rebuilt from creating command lines
    problems: list[str] = field(default_factory=list)  # what could not be read (hives, service records)
    host: dict[str, str] = field(default_factory=dict)  # hostname, os (from the in-memory registry)
    schedule_host_method: str = ""  # how the Schedule service's process was found


class TaskProcs(interfaces.plugins.PluginInterface):
    """Lists the Task Scheduler's hosts and every process they started, linked to their tasks."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls):
        return [
            requirements.ModuleRequirement(name="kernel", description="Windows kernel", architectures=["Intel64"]),
            requirements.VersionRequirement(name="pslist", component=pslist.PsList, version=(3, 0, 0)),
            requirements.VersionRequirement(name="psscan", component=psscan.PsScan, version=(2, 0, 0)),
            requirements.VersionRequirement(name="svcscan", component=svcscan.SvcScan, version=(4, 0, 0)),
            requirements.VersionRequirement(name="taskcache_mem", component=taskcache_mem.TaskCacheMem,
                                            version=(1, 0, 0)),
        ]

    @classmethod
    def _process_layer(cls, context, kernel, dtb: int) -> str:
        """A layer for one address space, built from the kernel layer (works for physical psscan hits too)."""
        name = f"triage_taskprocs_dtb_{dtb:x}"
        if name not in context.layers:
            parent = context.layers[kernel.layer_name]
            config = parent.build_configuration()
            config["memory_layer"] = parent.config["memory_layer"]
            config["page_map_offset"] = dtb
            path = interfaces.configuration.path_join("triage_taskprocs", name)
            context.config.splice(path, config)
            context.layers.add_layer(parent.__class__(context, path, name))
        return name

    @classmethod
    def _read_basic(cls, context, proc, seen_by: str) -> dict:
        """The EPROCESS fields every process needs (the tree is built from these)."""
        return {
            "pid": int(proc.UniqueProcessId),
            "ppid": int(proc.InheritedFromUniqueProcessId),
            "name": str(proc.ImageFileName.cast("string", max_length=proc.ImageFileName.vol.count, errors="replace")),
            "create": int(proc.CreateTime.QuadPart) or None,
            "exit": int(proc.ExitTime.QuadPart) or None,
            "threads": int(proc.ActiveThreads),
            "offset": proc.vol.offset,
            "offset_kind": "virtual" if isinstance(context.layers[proc.vol.layer_name], intel.Intel) else "physical",
            "seen_by": {seen_by},
        }

    @classmethod
    def read_details(cls, context, kernel_module_name: str, proc, out: dict) -> None:
        """Command line, image path (PEB), token user SID, session and audit path of one process."""
        kernel = context.modules[kernel_module_name]
        table = kernel.symbol_table_name + constants.BANG
        session = proc.get_session_id()
        out["session"] = int(session) if isinstance(session, int) else None
        try:
            token = context.object(table + "_TOKEN", kernel.layer_name, int(proc.Token.Value) & ~0xF)
            sid = next(iter(token.get_sids()), None)
            out["sid"] = str(sid) if sid else None
        except (exceptions.InvalidAddressException, ValueError, AttributeError):
            out["sid"] = None
        try:
            audit = int(proc.SeAuditProcessCreationInfo.ImageFileName)
            if audit:
                name = context.object(table + "_OBJECT_NAME_INFORMATION", kernel.layer_name, audit).Name
                out["audit_path"] = str(name.get_string())
        except exceptions.InvalidAddressException:
            pass
        peb_address = int(proc.Peb)
        if peb_address:
            try:
                layer = cls._process_layer(context, kernel, int(proc.Pcb.DirectoryTableBase))
                peb = context.object(table + "_PEB", layer, peb_address)
                params = peb.ProcessParameters.dereference()
                out["cmdline"] = str(params.CommandLine.get_string())
                out["image"] = str(params.ImagePathName.get_string())
            except exceptions.InvalidAddressException:
                vollog.debug(f"PEB of process {out['pid']} is not readable")

    @classmethod
    def read_processes(cls, context, kernel_module_name: str) -> list[tuple[dict, object]]:
        """(basic facts, EPROCESS) of every process from pslist and psscan, merged by (PID, create
        time); pslist's copy wins. Details are read later, only for the processes that matter."""
        merged: dict[tuple, tuple[dict, object]] = {}
        sources = (("pslist", pslist.PsList.list_processes(context, kernel_module_name)),
                   ("psscan", psscan.PsScan.scan_processes(context, kernel_module_name)))
        for seen_by, found in sources:
            for proc in found:
                try:
                    key = (int(proc.UniqueProcessId), int(proc.CreateTime.QuadPart))
                    if key in merged:
                        merged[key][0]["seen_by"].add(seen_by)
                        continue
                    merged[key] = (cls._read_basic(context, proc, seen_by), proc)
                except exceptions.InvalidAddressException:
                    vollog.debug(f"unreadable EPROCESS at 0x{proc.vol.offset:x} ({seen_by})")
        return [merged[k] for k in sorted(merged)]

    @classmethod
    def schedule_service(cls, context, config_path: str, kernel_module_name: str) -> tuple[dict[int, str], str | None]:
        """({PID: reason} of the running Schedule service, problem): from the Service Control Manager's
        records in services.exe (volatility3's svcscan), not from any command line."""
        try:
            table, binaries, only_services = svcscan.SvcScan.get_prereq_info(
                context, interfaces.configuration.path_join(config_path, "svcscan"), kernel_module_name)
            hosts = {}
            for row in svcscan.SvcScan.service_scan(context, kernel_module_name, table, binaries, only_services):
                _offset, _order, pid, _start, state, _type, name, _display, binary = row[:9]
                if str(name).lower() == "schedule" and state == "SERVICE_RUNNING" and isinstance(pid, int):
                    hosts[int(pid)] = (f"Service Control Manager record (svcscan at 0x{int(row[0]):x}): Schedule "
                                       f"is running in process {pid} ({binary})")
        except Exception as exc:  # svcscan is corroboration: whatever it raises, the process tree still finds the host
            # (volatility raises many types on real images: invalid addresses, symbols, layers, deep VAD trees)
            return {}, f"service records unreadable ({type(exc).__name__}: {exc}); Schedule host found from processes"
        if not hosts:
            return {}, ("no running Schedule service in the Service Control Manager's records; "
                        "Schedule host found from processes")
        return hosts, None

    @classmethod
    def analyse(cls, context, config_path: str, kernel_module_name: str, evidence: str | None = None,
                progress=None) -> MemoryAnalysis:
        """Task processes linked to their tasks, TaskCache and rebuilt definitions, host facts, problems."""
        if progress:
            progress("memory: listing and pool-scanning processes")
        found = cls.read_processes(context, kernel_module_name)
        eprocess = {id(facts): proc for facts, proc in found}
        read: set[int] = set()

        def details(facts: dict) -> None:
            if id(facts) not in read:
                read.add(id(facts))
                cls.read_details(context, kernel_module_name, eprocess[id(facts)], facts)

        if progress:
            progress("memory: reading the in-memory registry (host) and the service records")
        # svcscan first: it opens the SYSTEM hive through volatility's list_hives, which refuses an existing layer
        service_hosts, service_problem = cls.schedule_service(context, config_path, kernel_module_name)
        host, problems = taskcache_mem.TaskCacheMem.host_facts(context, config_path, kernel_module_name)
        if service_problem:
            problems.append(service_problem)
        procs = [facts for facts, _ in found]
        processes = triage_memory.task_processes(procs, evidence, details, service_hosts)
        for proc in processes:
            proc.host = host.get("hostname")
        if progress:
            progress("memory: reading the TaskCache from the SOFTWARE hive")
        definitions, problem = taskcache_mem.TaskCacheMem.task_definitions(context, config_path, kernel_module_name,
                                                                           evidence)
        if problem:
            problems.append(problem)
        correlate.link_task_processes(processes, definitions=definitions)
        rebuilt = triage_memory.task_creating_definitions(procs, evidence, details, host.get("hostname"))
        method = "service records (svcscan)" if service_hosts else "process tree (-s Schedule or a task host's parent)"
        return MemoryAnalysis(processes, definitions + rebuilt, problems, host, method)

    def _generator(self) -> Iterator:
        result = self.analyse(self.context, self.config_path, self.config["kernel"])
        for problem in result.problems:
            vollog.warning(problem)
        for proc in result.processes:
            yield 0, (
                proc.pid, proc.ppid if proc.ppid is not None else -1, proc.name, proc.details.get("role", ""),
                "+".join(proc.details.get("seen_by", [])),
                proc.created.utc if proc.created else "-", proc.exited.utc if proc.exited else "-",
                str(proc.session) if proc.session is not None else "-", proc.user_sid or "-",
                proc.task or proc.details.get("task_entity_name") or "-", proc.link_reason or "-",
                ",".join(proc.flags) or "-", " > ".join(proc.ancestry) or "-", proc.command_line or "-",
                proc.details.get("decoded_command", "-"),
                ", ".join(proc.details.get("decoded_urls", [])) or "-", proc.image_path or "-",
                proc.details.get("host_reason", "-"), proc.host or "-",
            )
        for definition in result.definitions:
            if definition.source != "command_line":
                continue
            actions = " | ".join(f"{a.kind}: {a.command_line}" for a in definition.actions) or "no action"
            yield 0, (
                definition.details["creating_pid"], -1, definition.details["creating_name"], "creates_task",
                "+".join(definition.details.get("seen_by", [])), "-", "-", "-",
                definition.details.get("creating_user") or "-",
                definition.task, f"task rebuilt from this command line: {actions}", "-", "-",
                definition.details.get("created_by_command") or "-", "-", "-", "-", "-", definition.host or "-",
            )

    def run(self):
        return renderers.TreeGrid(
            [("PID", int), ("PPID", int), ("Name", str), ("Role", str), ("Seen", str), ("Created", str),
             ("Exited", str), ("Session", str), ("User", str), ("Task", str), ("Link", str), ("Flags", str),
             ("Ancestry", str), ("CommandLine", str), ("Decoded", str), ("DecodedURLs", str), ("ImagePath", str),
             ("HostReason", str), ("Host", str)],
            self._generator(),
        )
