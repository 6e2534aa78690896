"""volatility3 plugin: the Task Scheduler's TaskCache as the SOFTWARE hive holds it in memory.

Reads ``Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache`` (Tree and Tasks) through
volatility3's registry layer, snapshots every key as the disk collector does (raw value types and bytes,
last-write FILETIMEs) and maps it with the same function (:func:`triage.parsers.taskcache_definition.task_definition`),
so the same bytes give the same definition on disk and in memory. Not volatility's scheduled_tasks decoder,
which swaps creation and last-run times, drops e-mail actions, mislabels idle/registration triggers and
keeps only the leaf task name (shared/docs/peers.md). The Stealth column shows
:func:`~triage.parsers.taskcache_definition.stealth_flags`: Tree key without SD (Tarrask), Index 0 or
missing, empty DACL, Tree Id without a Tasks key and the reverse.

    vol -p $(python -m triage.volplugins --path) -s SYMBOLS -f mem.raw taskcache_mem.TaskCacheMem
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Iterator

from volatility3.framework import exceptions, interfaces, renderers
from volatility3.framework.configuration import requirements
from volatility3.framework.layers import registry
from volatility3.framework.symbols.windows.extensions.registry import RegValueTypes
from volatility3.plugins.windows.registry import hivelist

from triage.parsers.taskcache_definition import (
    TASKCACHE,
    RegKey,
    RegValue,
    key_time,
    stealth_flags,
    task_definition,
    tasks_in,
)
from triage.records import TaskDefinition

vollog = logging.getLogger(__name__)

CACHE_KEY = TASKCACHE
HIVE_ROOT = "\\REGISTRY\\MACHINE\\SOFTWARE"


def _value(value) -> tuple[str, Any]:
    """(name, data) of a registry value: str for string types, int for DWORDs, bytes otherwise."""
    name = str(value.get_name())
    data = value.decode_data()
    if value.get_type() in (RegValueTypes.REG_SZ, RegValueTypes.REG_EXPAND_SZ) and isinstance(data, bytes):
        data = data.decode("utf-16-le", errors="replace").rstrip("\0")
    return name, data


def _key_facts(node) -> dict:
    values = {}
    for value in node.get_values():
        try:
            name, data = _value(value)
            values[name] = data
        except (exceptions.InvalidAddressException, registry.RegistryException, ValueError) as exc:
            values.setdefault("__errors__", []).append(f"value unreadable: {exc}")
    return {"values": values, "written": int(node.LastWriteTime.QuadPart)}


def _snapshot(node, path: str) -> RegKey:
    """One key as the disk reader keeps it: raw type and bytes per value, last-write FILETIME; a value
    volatility cannot read is a problem on the key (it becomes a decode error of the task)."""
    written = int(node.LastWriteTime.QuadPart)
    key = RegKey(path=path, written=key_time(written), written_filetime=written)
    for value in node.get_values():
        try:
            name, kind, data = str(value.get_name()), int(value.Type), value.decode_data()
        except (exceptions.InvalidAddressException, registry.RegistryException, ValueError) as exc:
            key.problems.append(f"value unreadable: {exc}")
            continue
        if isinstance(data, int):  # decode_data unpacks the number types: keep their bytes as stored
            data = struct.pack({5: ">I", 11: "<Q"}.get(kind, "<I"), data)
        key.values[name.lower()] = RegValue(name=name, type=kind, data=bytes(data))
    return key


def _utc(definition: TaskDefinition, meaning: str) -> str:
    return next((s.utc for s in definition.stamps if s.meaning == meaning and s.utc), "-")


class TaskCacheMem(interfaces.plugins.PluginInterface):
    """Decodes the in-memory TaskCache (Tree and Tasks) with triage's decoder and flags hidden tasks."""

    _required_framework_version = (2, 0, 0)
    _version = (1, 0, 0)

    @classmethod
    def get_requirements(cls):
        return [
            requirements.ModuleRequirement(name="kernel", description="Windows kernel", architectures=["Intel64"]),
            requirements.VersionRequirement(name="hivelist", component=hivelist.HiveList, version=(2, 0, 0)),
        ]

    @classmethod
    def software_hive(cls, context, config_path: str, kernel_module_name: str):
        """The machine SOFTWARE hive."""
        return cls.machine_hive(context, config_path, kernel_module_name, "SOFTWARE")

    @classmethod
    def machine_hive(cls, context, config_path: str, kernel_module_name: str, name: str):
        """The registry layer of the machine hive whose name ends in \\<name> (SYSTEM, SOFTWARE), not merely
        the first name containing it. An existing layer of that hive (another plugin's, e.g. svcscan's) is
        reused: volatility's ``list_hives`` makes a new layer on every call and refuses a second one."""
        kernel = context.modules[kernel_module_name]
        for found in hivelist.HiveList.list_hive_objects(context, kernel.layer_name, kernel.symbol_table_name,
                                                         filter_string=name):
            if not str(found.get_name()).upper().endswith("\\" + name):
                continue
            layer_name = "hive" + hex(found.vol.offset)
            if layer_name not in context.layers:
                hive_config = hivelist.HiveList.make_subconfig(
                    context=context, base_config_path=interfaces.configuration.path_join(config_path, "hivelist"),
                    hive_offset=found.vol.offset, base_layer=kernel.layer_name, nt_symbols=kernel.symbol_table_name,
                    kernel_module_name=kernel_module_name)
                context.layers.add_layer(registry.RegistryHive(context, hive_config, name=layer_name))
            return context.layers[layer_name]
        return None

    @classmethod
    def host_facts(cls, context, config_path: str, kernel_module_name: str) -> tuple[dict[str, str], list[str]]:
        """({"hostname", "os"} as far as the in-memory SYSTEM and SOFTWARE hives hold them, problems).

        SYSTEM ``Select\\Current`` → ``ControlSet00N\\Control\\ComputerName\\ComputerName``; SOFTWARE
        ``Microsoft\\Windows NT\\CurrentVersion`` ProductName and CurrentBuild."""
        facts: dict[str, str] = {}
        problems: list[str] = []
        errors = (KeyError, exceptions.InvalidAddressException, exceptions.SymbolError, registry.RegistryException,
                  ValueError)
        try:
            system = cls.machine_hive(context, config_path, kernel_module_name, "SYSTEM")
            if system is None:
                problems.append("no SYSTEM hive in the hive list: host name unknown")
            else:
                current = _key_facts(system.get_key("Select"))["values"].get("Current")
                key = f"ControlSet{int(current or 1):03d}\\Control\\ComputerName\\ComputerName"
                name = _key_facts(system.get_key(key))["values"].get("ComputerName")
                if isinstance(name, str) and name:
                    facts["hostname"] = name
        except errors as exc:
            problems.append(f"SYSTEM ComputerName unreadable in memory: {exc}")
        try:
            software = cls.machine_hive(context, config_path, kernel_module_name, "SOFTWARE")
            if software is not None:
                values = _key_facts(software.get_key("Microsoft\\Windows NT\\CurrentVersion"))["values"]
                product, build = values.get("ProductName"), values.get("CurrentBuild")
                if isinstance(product, str) and product:
                    facts["os"] = f"{product} (build {build})" if isinstance(build, str) and build else product
        except errors as exc:
            problems.append(f"SOFTWARE CurrentVersion unreadable in memory: {exc}")
        return facts, problems

    @classmethod
    def read_cache(cls, hive) -> dict[str, RegKey]:
        """Every key below TaskCache as {lower-case path: key}, values raw (type and bytes) as on disk."""
        keys: dict[str, RegKey] = {}
        stack = [(CACHE_KEY, hive.get_key(CACHE_KEY))]
        while stack:
            path, node = stack.pop()
            keys[path.lower()] = _snapshot(node, path)
            for child in node.get_subkeys():
                stack.append((f"{path}\\{child.get_name()}", child))
        return keys

    @classmethod
    def task_definitions(cls, context, config_path: str, kernel_module_name: str,
                         evidence: str | None = None) -> tuple[list[TaskDefinition], str | None]:
        """Every task in the in-memory TaskCache, sorted by path then GUID (the disk collector's mapping,
        :func:`triage.parsers.taskcache_definition.task_definition`); plus a problem line when unreadable."""
        try:
            hive = cls.software_hive(context, config_path, kernel_module_name)
        except (exceptions.InvalidAddressException, exceptions.SymbolError, registry.RegistryException,
                ValueError) as exc:
            return [], f"hive list unreadable: {exc}"
        if hive is None:
            return [], "no SOFTWARE hive in the hive list"
        try:
            keys = cls.read_cache(hive)
        except KeyError:
            return [], f"{CACHE_KEY} is not in the in-memory SOFTWARE hive (paged out or absent)"
        except (exceptions.InvalidAddressException, registry.RegistryException) as exc:
            return [], f"TaskCache unreadable: {exc}"
        hive_name = str(hive.get_name())
        return [task_definition(task, hive_root=HIVE_ROOT, hive_file=hive_name, artifact="memory_taskcache",
                                evidence=evidence) for task in tasks_in(keys)], None

    def _generator(self) -> Iterator:
        definitions, problem = self.task_definitions(self.context, self.config_path, self.config["kernel"])
        if problem:
            vollog.warning(problem)
        for d in definitions:
            yield 0, (
                d.task, d.details.get("guid") or "-", str(d.details.get("index", "-")), d.details.get("sd_sddl") or "-",
                ",".join(stealth_flags(d.details)) or "-", str(d.enabled) if d.enabled is not None else "-",
                str(d.hidden) if d.hidden is not None else "-", d.principal_id or "-", d.user_id or "-",
                " | ".join(f"{a.kind}: {a.command_line}" for a in d.actions) or "-",
                ", ".join(t.kind for t in d.triggers) or "-",
                _utc(d, "registered"), _utc(d, "last_run"), _utc(d, "last_successful_run"),
                "; ".join(d.errors) or "-",
            )

    def run(self):
        return renderers.TreeGrid(
            [("Task", str), ("GUID", str), ("Index", str), ("SD", str), ("Stealth", str), ("Enabled", str),
             ("Hidden", str), ("Principal", str), ("User", str), ("Actions", str), ("Triggers", str),
             ("Created", str), ("LastRun", str), ("LastSuccessfulRun", str), ("Errors", str)],
            self._generator(),
        )
