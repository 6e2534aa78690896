"""volatility3 plugin: the Task Scheduler's TaskCache as the SOFTWARE hive holds it in memory.

Reads ``Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache`` (Tree and Tasks) through
volatility3's registry layer and decodes Actions/Triggers/DynamicInfo with triage's own decoder
(:mod:`triage.parsers.taskcache`), not volatility's scheduled_tasks decoder, which swaps creation and
last-run times, drops e-mail actions, mislabels idle/registration triggers and keeps only the leaf
task name (shared/docs/peers.md). Stealth checks: Tree key without SD (Tarrask), Index 0 or missing,
empty DACL, Tree Id without a Tasks key and the reverse.

    vol -p $(python -m triage.volplugins --path) -s SYMBOLS -f mem.raw taskcache_mem.TaskCacheMem
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

from volatility3.framework import exceptions, interfaces, renderers
from volatility3.framework.configuration import requirements
from volatility3.framework.layers import registry
from volatility3.framework.symbols.windows.extensions.registry import RegValueTypes
from volatility3.plugins.windows.registry import hivelist

from triage.parsers import taskcache
from triage.parsers.security_descriptor import SecurityDescriptorError, parse_security_descriptor
from triage.records import Provenance, TaskDefinition
from triage.timeutil import filetime_stamp, xml_datetime_stamp

vollog = logging.getLogger(__name__)

CACHE_KEY = "Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache"
HIVE_ROOT = "\\REGISTRY\\MACHINE\\SOFTWARE\\"
_STRING_VALUES = {"URI": "uri", "Author": "author", "Description": "description", "Source": "source_attr",
                  "Documentation": "documentation", "Version": "version", "SecurityDescriptor": "security_descriptor"}


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
    def read_cache(cls, hive) -> tuple[dict[str, dict], dict[str, dict]]:
        """Raw Tree entries {task path: facts} and Tasks entries {GUID: facts} (values undecoded)."""
        tree: dict[str, dict] = {}
        tasks: dict[str, dict] = {}
        cache = hive.get_key(CACHE_KEY)
        for sub in cache.get_subkeys():
            kind = str(sub.get_name())
            if kind.lower() == "tree":
                stack = [("", sub)]
                while stack:
                    prefix, node = stack.pop()
                    for child in node.get_subkeys():
                        path = f"{prefix}\\{child.get_name()}"
                        facts = _key_facts(child)
                        if {"Id", "Index", "SD"} & set(facts["values"]):
                            tree[path] = facts
                        stack.append((path, child))
            elif kind.lower() == "tasks":
                for child in sub.get_subkeys():
                    tasks[str(child.get_name()).upper()] = _key_facts(child)
        return tree, tasks

    @classmethod
    def definition(cls, path: str | None, guid: str | None, tree: dict | None, task: dict | None,
                   hive_name: str, evidence: str | None) -> TaskDefinition:
        """One TaskDefinition (source memory_taskcache) from a Tree entry and/or a Tasks entry."""
        tv = (tree or {}).get("values", {})
        kv = (task or {}).get("values", {})
        name = path or kv.get("Path") or f"\\{guid}"
        location = f"{HIVE_ROOT}{CACHE_KEY}\\" + (f"Tasks\\{guid}" if task is not None else f"Tree{name}")
        record = TaskDefinition(task=name, source="memory_taskcache",
                                provenance=Provenance(artifact="memory_taskcache", location=location,
                                                      evidence=evidence))
        errors: list[str] = list(tv.get("__errors__", [])) + list(kv.get("__errors__", []))
        stealth: list[str] = []
        details: dict[str, Any] = {"guid": guid, "hive": hive_name}
        if tree is None:
            stealth.append("tree_key_missing")
        else:
            details["tree_key"] = f"{HIVE_ROOT}{CACHE_KEY}\\Tree{name}"
            if (written := filetime_stamp(tree["written"], "tree_key_last_written")) is not None:
                record.stamps.append(written)  # None: a last-write time of 0 or out of range
            index = tv.get("Index")
            if index is None:
                stealth.append("index_missing")
            else:
                details["index"] = index
                if index == 0:
                    stealth.append("index_zero")
            sd = tv.get("SD")
            if sd is None:
                stealth.append("sd_missing")
            else:
                try:
                    parsed = parse_security_descriptor(sd)
                    details["tree_sd"] = parsed.sddl
                    if parsed.dacl_empty:
                        stealth.append("sd_empty_dacl")
                except SecurityDescriptorError as exc:
                    errors.append(f"Tree SD: {exc}")
                    details["tree_sd_hex"] = bytes(sd).hex() if isinstance(sd, bytes) else str(sd)
        if task is None:
            stealth.append("tasks_key_missing")
        else:
            if (written := filetime_stamp(task["written"], "tasks_key_last_written")) is not None:
                record.stamps.append(written)
            for value_name, attr in _STRING_VALUES.items():
                if isinstance(kv.get(value_name), str):
                    setattr(record, attr, kv[value_name])
            if isinstance(kv.get("Path"), str):
                details["path_value"] = kv["Path"]
            record.date = xml_datetime_stamp(kv.get("Date"), "registered", None)
            for value_name in ("Hash", "Schema"):
                if value_name in kv:
                    value = kv[value_name]
                    details[value_name.lower()] = value.hex() if isinstance(value, bytes) else value
            if isinstance(kv.get("Actions"), bytes):
                actions = taskcache.decode_actions(kv["Actions"])
                record.actions = taskcache.action_records(actions)
                errors += [f"Actions: {e}" for e in actions.errors]
            if isinstance(kv.get("Triggers"), bytes):
                triggers = taskcache.decode_triggers(kv["Triggers"])
                record.triggers = taskcache.trigger_records(triggers)
                for attr, value in taskcache.principal_facts(triggers).items():
                    setattr(record, attr, value)
                record.settings = taskcache.settings_facts(triggers)
                errors += [f"Triggers: {e}" for e in triggers.errors]
            if isinstance(kv.get("DynamicInfo"), bytes):
                info = taskcache.decode_dynamic_info(kv["DynamicInfo"])
                record.stamps += taskcache.dynamic_info_stamps(info)
                details["status_0x14"] = f"0x{info.status_0x14:08x}" if info.status_0x14 is not None else None
                details["status_0x18"] = f"0x{info.status_0x18:08x}" if info.status_0x18 is not None else None
                errors += [f"DynamicInfo: {e}" for e in info.errors]
            if path and kv.get("Path") and kv["Path"].lower() != path.lower():
                details["tasks_path"] = kv["Path"]
        details["stealth"] = stealth
        record.details = {k: v for k, v in details.items() if v is not None}
        record.errors = errors
        return record

    @classmethod
    def task_definitions(cls, context, config_path: str, kernel_module_name: str,
                         evidence: str | None = None) -> tuple[list[TaskDefinition], str | None]:
        """Every task in the in-memory TaskCache, sorted by path; plus a problem line when unreadable."""
        try:
            hive = cls.software_hive(context, config_path, kernel_module_name)
        except (exceptions.InvalidAddressException, exceptions.SymbolError, registry.RegistryException,
                ValueError) as exc:
            return [], f"hive list unreadable: {exc}"
        if hive is None:
            return [], "no SOFTWARE hive in the hive list"
        try:
            tree, tasks = cls.read_cache(hive)
        except KeyError:
            return [], f"{CACHE_KEY} is not in the in-memory SOFTWARE hive (paged out or absent)"
        except (exceptions.InvalidAddressException, registry.RegistryException) as exc:
            return [], f"TaskCache unreadable: {exc}"
        hive_name = str(hive.get_name())
        records = []
        claimed = set()
        for path, facts in tree.items():
            guid = str(facts["values"].get("Id") or "").upper() or None
            claimed.add(guid)
            records.append(cls.definition(path, guid, facts, tasks.get(guid) if guid else None, hive_name, evidence))
        for guid, facts in tasks.items():
            if guid not in claimed:
                records.append(cls.definition(None, guid, None, facts, hive_name, evidence))
        return sorted(records, key=lambda r: (r.task.lower(), r.details.get("guid") or "")), None

    def _generator(self) -> Iterator:
        definitions, problem = self.task_definitions(self.context, self.config_path, self.config["kernel"])
        if problem:
            vollog.warning(problem)
        for d in definitions:
            yield 0, (
                d.task, d.details.get("guid") or "-", str(d.details.get("index", "-")), d.details.get("tree_sd", "-"),
                ",".join(d.details["stealth"]) or "-", str(d.enabled) if d.enabled is not None else "-",
                str(d.hidden) if d.hidden is not None else "-", d.principal_id or "-", d.user_id or "-",
                " | ".join(f"{a.kind}: {a.command_line}" for a in d.actions) or "-",
                ", ".join(t.kind for t in d.triggers) or "-",
                _utc(d, "created"), _utc(d, "last_run"), _utc(d, "last_successful_run"),
                "; ".join(d.errors) or "-",
            )

    def run(self):
        return renderers.TreeGrid(
            [("Task", str), ("GUID", str), ("Index", str), ("SD", str), ("Stealth", str), ("Enabled", str),
             ("Hidden", str), ("Principal", str), ("User", str), ("Actions", str), ("Triggers", str),
             ("Created", str), ("LastRun", str), ("LastSuccessfulRun", str), ("Errors", str)],
            self._generator(),
        )
