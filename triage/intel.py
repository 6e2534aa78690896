"""Threat intelligence in: indicator files (``--ioc``) loaded and matched against everything a run extracted.

Formats: a STIX 2.1 bundle (indicators with STIX patterns, read with the ``stix2`` and
``stix2-patterns`` libraries), a MISP event JSON export, or a CSV of ``type,value[,comment]`` with
MISP attribute type names (filename, md5, sha1, sha256, domain, hostname, ip-dst, ip-src, url,
regkey, text). A file that cannot be read as its format raises :class:`IocError` naming the file
and the line or object; indicators of a kind triage cannot match (an e-mail address, a mutex) are
listed in :attr:`IocSet.skipped`, never silently dropped.

Each comparison of a STIX pattern is one indicator: ``[file:name = 'a.dll' AND file:hashes.MD5 = '…']``
matches where either matches, because a task's evidence rarely holds every observable of a pattern.

Matching (:func:`match_records`) is a pure function over records: task names and paths, task file
hashes, action commands, arguments and resolved ComHandler DLLs, hashes of the action binaries
(see :mod:`triage.collect.binaries`), command lines of events and memory processes, cron and at
job commands, and the URLs, IPs and domains inside decoded PowerShell ``-EncodedCommand`` text.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from triage.correlate import process_entity
from triage.detect import RISK_ORDER, Hit
from triage.records import Entity, EvidenceItem, TaskDefinition, TaskEvent, TaskProcess, UnixJob

CSV_TYPES = ("filename", "md5", "sha1", "sha256", "domain", "hostname", "ip-dst", "ip-src", "url", "regkey", "text")
KIND_BY_MISP_TYPE = {"filename": "filename", "md5": "md5", "sha1": "sha1", "sha256": "sha256", "domain": "domain",
                     "hostname": "hostname", "ip-dst": "ip", "ip-src": "ip", "url": "url", "uri": "url",
                     "regkey": "regkey", "text": "text", "link": "url"}
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
STIX_PATHS = {
    ("file", "hashes.sha-256"): "sha256", ("file", "hashes.sha256"): "sha256", ("file", "hashes.md5"): "md5",
    ("file", "hashes.sha-1"): "sha1", ("file", "hashes.sha1"): "sha1", ("file", "name"): "filename",
    ("process", "command_line"): "command_line", ("process", "name"): "filename",
    ("domain-name", "value"): "domain", ("ipv4-addr", "value"): "ip", ("ipv6-addr", "value"): "ip",
    ("url", "value"): "url", ("windows-registry-key", "key"): "regkey",
}
STIX_OPERATORS = {"=": "=", "LIKE": "like", "MATCHES": "matches"}


class IocError(ValueError):
    """An indicator file that cannot be read: the message names the file and the line or object."""


@dataclass(frozen=True)
class Indicator:
    """One thing to look for. ``kind``: filename, md5, sha1, sha256, domain, hostname, ip, url, regkey,
    text, command_line. ``operator``: ``=`` (the kind's own comparison), ``like`` (STIX LIKE), ``matches`` (regex)."""

    kind: str
    value: str
    origin: str  # "iocs.csv line 3", "bundle.json indicator--…", "event.json Attribute 4 (uuid)"
    label: str = ""
    operator: str = "="

    def describe(self) -> str:
        op = "" if self.operator == "=" else f" {self.operator.upper()}"
        return f"{self.kind}{op} {self.value!r} ({self.origin}{f': {self.label}' if self.label else ''})"


@dataclass
class IocSet:
    indicators: list[Indicator] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what was read but cannot be matched, and why
    files: list[str] = field(default_factory=list)


# --- loading ---------------------------------------------------------------------------------------

def load_iocs(paths: list[str | Path]) -> IocSet:
    """Read every indicator file; raise :class:`IocError` on the first malformed one."""
    out = IocSet()
    for path in map(Path, paths):
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise IocError(f"{path}: cannot read indicator file: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise IocError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        out.files.append(str(path))
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")) or path.suffix.lower() == ".json":
            _load_json(path, text, out)
        else:
            _load_csv(path, text, out)
    return out


def _load_json(path: Path, text: str, out: IocSet) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IocError(f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict) and data.get("type") == "bundle":
        _load_stix(path, data, out)
        return
    events = _misp_events(data)
    if events is None:
        raise IocError(f"{path}: neither a STIX 2.1 bundle (type 'bundle') nor a MISP event export ('Event')")
    for number, event in enumerate(events, start=1):
        _load_misp_event(path, event, number, out)


def _load_stix(path: Path, bundle: dict, out: IocSet) -> None:
    import stix2
    from stix2patterns.v21.pattern import Pattern

    objects = bundle.get("objects")
    if not isinstance(objects, list):
        raise IocError(f"{path}: STIX bundle {bundle.get('id', '')}: 'objects' is not a list")
    for index, obj in enumerate(objects):
        name = f"object {index}" + (f" ({obj['id']})" if isinstance(obj, dict) and isinstance(obj.get("id"), str) else "")
        if not isinstance(obj, dict):
            raise IocError(f"{path}: STIX {name}: not a JSON object")
        try:
            parsed = stix2.parse(obj, allow_custom=True, version="2.1")
        except Exception as exc:  # stix2 raises many error types for invalid objects
            raise IocError(f"{path}: STIX {name}: invalid STIX 2.1 object: {' '.join(str(exc).split())}") from None
        if obj.get("type") != "indicator":
            continue
        if parsed.get("pattern_type") != "stix":
            out.skipped.append(f"{path}: STIX {name}: pattern type {parsed.get('pattern_type')!r} is not matched")
            continue
        try:
            comparisons = Pattern(parsed["pattern"]).inspect().comparisons
        except Exception as exc:  # ParseException and friends from the pattern grammar
            raise IocError(f"{path}: STIX {name}: invalid pattern {parsed['pattern']!r}: {exc}") from None
        label = str(parsed.get("name") or "")
        for object_type, items in sorted(comparisons.items()):
            for object_path, operator, quoted in items:
                prop = ".".join(str(p) for p in object_path).lower()
                kind = STIX_PATHS.get((object_type, prop))
                op = STIX_OPERATORS.get(operator)
                if kind is None or op is None or not (isinstance(quoted, str) and quoted.startswith("'")):
                    out.skipped.append(f"{path}: STIX {name}: {object_type}:{prop} {operator} is not matched")
                    continue
                value = quoted[1:-1].replace("\\'", "'").replace("\\\\", "\\")
                out.indicators.append(Indicator(kind=kind, value=value, origin=f"{path.name} {obj['id']}",
                                                label=label, operator=op))


def _misp_events(data) -> list[dict] | None:
    if isinstance(data, dict) and isinstance(data.get("Event"), dict):
        return [data["Event"]]
    if isinstance(data, dict) and isinstance(data.get("response"), list):
        data = data["response"]
    if isinstance(data, list) and data and all(isinstance(e, dict) and isinstance(e.get("Event"), dict) for e in data):
        return [e["Event"] for e in data]
    return None


def _load_misp_event(path: Path, event: dict, number: int, out: IocSet) -> None:
    where = f"MISP event {event.get('uuid') or event.get('id') or number}"
    attributes = event.get("Attribute") or []
    objects = event.get("Object") or []
    if not isinstance(attributes, list) or not isinstance(objects, list):
        raise IocError(f"{path}: {where}: 'Attribute' and 'Object' must be lists")
    located = [(f"Attribute {i}", a) for i, a in enumerate(attributes)]
    for o_index, obj in enumerate(objects):
        if not isinstance(obj, dict) or not isinstance(obj.get("Attribute") or [], list):
            raise IocError(f"{path}: {where} Object {o_index}: not a MISP object with an 'Attribute' list")
        located += [(f"Object {o_index} Attribute {i}", a) for i, a in enumerate(obj.get("Attribute") or [])]
    for name, attribute in located:
        label = f"{where} {name}"
        if not isinstance(attribute, dict) or not isinstance(attribute.get("type"), str) \
                or not isinstance(attribute.get("value"), str) or not attribute["value"].strip():
            raise IocError(f"{path}: {label}: an attribute needs a string 'type' and a non-empty string 'value'")
        if attribute.get("uuid"):
            label += f" ({attribute['uuid']})"
        types, values = attribute["type"].split("|"), attribute["value"].split("|")
        if len(types) != len(values):
            raise IocError(f"{path}: {label}: composite type {attribute['type']!r} needs {len(types)} '|'-separated values")
        for misp_type, value in zip(types, values):
            kind = KIND_BY_MISP_TYPE.get(misp_type)
            if kind is None:
                out.skipped.append(f"{path}: {label}: MISP type {misp_type!r} is not matched")
                continue
            problem = _value_problem(kind, value.strip())
            if problem:
                raise IocError(f"{path}: {label}: {misp_type} {value!r}: {problem}")
            out.indicators.append(Indicator(kind=kind, value=value.strip(), origin=f"{path.name} {name}",
                                            label=str(attribute.get("comment") or "")))


def _load_csv(path: Path, text: str, out: IocSet) -> None:
    rows = csv.reader(io.StringIO(text))
    first = True
    for row in rows:
        line = rows.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if first and row[0].strip().lower() == "type":
            first = False
            continue
        first = False
        if len(row) < 2:
            raise IocError(f"{path}: line {line}: expected 'type,value[,comment]', got {','.join(row)!r}")
        misp_type, value, comment = row[0].strip().lower(), row[1].strip(), ",".join(row[2:]).strip()
        if misp_type not in CSV_TYPES:
            raise IocError(f"{path}: line {line}: unknown indicator type {row[0].strip()!r} "
                           f"(one of: {', '.join(CSV_TYPES)})")
        kind = KIND_BY_MISP_TYPE[misp_type]
        problem = _value_problem(kind, value)
        if problem:
            raise IocError(f"{path}: line {line}: {misp_type} {value!r}: {problem}")
        out.indicators.append(Indicator(kind=kind, value=value, origin=f"{path.name} line {line}", label=comment))


_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?")


def _value_problem(kind: str, value: str) -> str | None:
    if not value:
        return "empty value"
    if kind in HASH_LENGTHS:
        if not re.fullmatch(rf"[0-9A-Fa-f]{{{HASH_LENGTHS[kind]}}}", value):
            return f"not a {kind} hash ({HASH_LENGTHS[kind]} hex digits)"
    elif kind == "ip":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return "not an IP address or network"
    elif kind == "domain" and not (_HOST.fullmatch(value) and "." in value):
        return "not a domain name"
    elif kind == "hostname" and not _HOST.fullmatch(value):
        return "not a host name"
    elif kind == "url" and "://" not in value:
        return "not a URL (no scheme://)"
    return None


# --- what the evidence says ------------------------------------------------------------------------

@dataclass(frozen=True)
class Observed:
    """One value from one record that indicators are compared with."""

    field: str  # e.g. "action 1 arguments", "task file sha256", "event command line (decoded -EncodedCommand)"
    value: str
    kinds: frozenset[str]
    location: str
    evidence_sha256: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class IocMatch:
    indicator: Indicator
    observed: Observed
    task: str | None  # entity key, None outside any task


NAME_KINDS = frozenset({"text", "filename"})
COMMAND_KINDS = frozenset({"text", "filename", "command_line", "url", "domain", "hostname", "ip"})
DECODED_KINDS = frozenset({"text", "command_line", "url", "domain", "hostname", "ip"})
_ENCODED = re.compile(r"(?i)(?:^|\s)[-/](e[a-z]*)\s+['\"]?([A-Za-z0-9+/]{8,}={0,2})")
TASKCACHE_TREE = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree"


def decoded_powershell(command_line: str) -> list[str]:
    """The text of every ``-EncodedCommand`` (and its accepted abbreviations) in a command line."""
    out = []
    for switch, payload in _ENCODED.findall(command_line):
        switch = switch.lower()
        if not ("encodedcommand".startswith(switch) or switch == "ec"):
            continue
        try:
            text = base64.b64decode(payload, validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if text.isprintable() or all(ch.isprintable() or ch in "\r\n\t" for ch in text):
            out.append(text)
    return out


def _command(field_name: str, text: str | None, location: str, sha: str | None, time: str | None = None) -> list[Observed]:
    if not text:
        return []
    out = [Observed(field_name, text, COMMAND_KINDS, location, sha, time)]
    out += [Observed(f"{field_name} (decoded -EncodedCommand)", decoded, DECODED_KINDS, location, sha, time)
            for decoded in decoded_powershell(text)]
    return out


def _definition_observed(definition: TaskDefinition) -> list[Observed]:
    where, sha = definition.provenance.location, definition.provenance.evidence_sha256
    out = [Observed("task path", definition.task, NAME_KINDS, where, sha)]
    if definition.file and definition.file.sha256:
        out.append(Observed("task file sha256", definition.file.sha256, frozenset({"sha256"}), where, sha))
    if definition.source == "taskcache":
        out.append(Observed("TaskCache key", where, frozenset({"regkey", "text"}), where, sha))
        out.append(Observed("TaskCache key", TASKCACHE_TREE + definition.task, frozenset({"regkey", "text"}), where, sha))
    for number, action in enumerate(definition.actions, start=1):
        prefix = f"action {number}"
        out += _command(f"{prefix} command", action.command, where, sha)
        out += _command(f"{prefix} arguments", action.arguments, where, sha)
        if action.kind == "exec" and action.command and action.arguments:
            out.append(Observed(f"{prefix} command line", action.command_line, frozenset({"command_line"}), where, sha))
        if action.class_id:
            out.append(Observed(f"{prefix} ComHandler CLSID", action.class_id, frozenset({"text", "regkey"}), where, sha))
        if action.resolved_dll:
            out.append(Observed(f"{prefix} ComHandler DLL", action.resolved_dll, NAME_KINDS, where, sha))
        out += _command(f"{prefix} data", action.data, where, sha)
        for facts in action.details.get("files") or []:
            for algorithm in ("md5", "sha1", "sha256"):
                if facts.get(algorithm):
                    out.append(Observed(f"{prefix} {facts['role']} file {facts['path']} {algorithm}", facts[algorithm],
                                        frozenset({algorithm}), where, sha))
    return out


def _event_observed(event: TaskEvent) -> list[Observed]:
    where = f"{event.provenance.location} record {event.provenance.offset}"
    sha, time = event.provenance.evidence_sha256, event.time.utc
    out = _command("event command line", event.command_line, where, sha, time)
    if event.image:
        out.append(Observed("event image", event.image, NAME_KINDS, where, sha, time))
    target = event.fields.get("TargetObject")
    if isinstance(target, str) and target:
        out.append(Observed("event registry key", target, frozenset({"regkey", "text"}), where, sha, time))
    if event.task:
        out.append(Observed("event task name", event.task, NAME_KINDS, where, sha, time))
    return out


def _process_observed(process: TaskProcess) -> list[Observed]:
    where, sha = f"{process.provenance.location} pid {process.pid}", process.provenance.evidence_sha256
    out = _command("process command line", process.command_line, where, sha, process.created.utc if process.created else None)
    if process.image_path:
        out.append(Observed("process image", process.image_path, NAME_KINDS, where, sha))
    return out


def _job_observed(job: UnixJob) -> list[Observed]:
    where, sha = job.provenance.location, job.provenance.evidence_sha256
    out = _command(f"{job.kind} command", job.command, where, sha)
    if job.file and job.file.sha256:
        out.append(Observed(f"{job.kind} file sha256", job.file.sha256, frozenset({"sha256"}), where, sha))
    return out


def entity_observed(entity: Entity) -> list[Observed]:
    out = [Observed("task name", entity.task, NAME_KINDS, entity.task)]
    for definition in entity.definitions:
        out += _definition_observed(definition)
    for event in entity.events:
        out += _event_observed(event)
    for process in entity.processes:
        out += _process_observed(process)
    for job in entity.unix_jobs:
        out += _job_observed(job)
    return _unique(out)


def _unique(items: list[Observed]) -> list[Observed]:
    seen, out = set(), []
    for item in items:
        key = (item.field, item.value, item.location)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# --- comparing --------------------------------------------------------------------------------------

_TOKEN_SPLIT = re.compile(r"[\s,\"'|;<>]+")


def _names(value: str) -> set[str]:
    return {PureWindowsPath(token.replace("/", "\\")).name.lower() for token in _TOKEN_SPLIT.split(value) if token}


def _normal_key(key: str) -> str:
    key = key.strip().strip("\\").lower()
    for prefix in ("registry\\machine\\", "hkey_local_machine\\", "hklm\\", "hkey_users\\", "hku\\"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _like(pattern: str) -> re.Pattern:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _host_in(host: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9.-]){re.escape(host.rstrip('.'))}(?![A-Za-z0-9-])|"
                     rf"(?<=[.]){re.escape(host.rstrip('.'))}(?![A-Za-z0-9-])", text, re.IGNORECASE) is not None


_IP_TOKEN = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)|"  # IPv4, also before ":port"
                       r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")


def _ip_in(indicator: str, text: str) -> bool:
    network = ipaddress.ip_network(indicator, strict=False)
    for token in _IP_TOKEN.findall(text):
        try:
            if ipaddress.ip_address(token) in network:
                return True
        except ValueError:
            continue
    return False


def matches(indicator: Indicator, observed: Observed) -> bool:
    if indicator.kind not in observed.kinds:
        return False
    value, wanted = observed.value, indicator.value
    if indicator.operator == "like":
        return _like(wanted).fullmatch(value) is not None
    if indicator.operator == "matches":
        try:
            return re.search(wanted, value) is not None
        except re.error:
            return False
    kind = indicator.kind
    if kind in HASH_LENGTHS:
        return value.lower() == wanted.lower()
    if kind == "filename":
        return wanted.lower() in _names(value)
    if kind == "regkey":
        return _normal_key(value) == _normal_key(wanted)
    if kind == "command_line":
        return " ".join(value.split()).lower() == " ".join(wanted.split()).lower()
    if kind in ("domain", "hostname"):
        return _host_in(wanted, value)
    if kind == "ip":
        return _ip_in(wanted, value)
    return wanted.lower() in value.lower()  # text, url


def match_records(entities: list[Entity], events: Iterable[TaskEvent], processes: list[TaskProcess],
                  indicators: list[Indicator]) -> list[IocMatch]:
    """Every (indicator, observed value) pair that matches: on tasks, then on records outside any task (an
    event that names no task, a process that belongs to none: the records correlation leaves unattached)."""
    out: list[IocMatch] = []
    for entity in entities:
        for observed in entity_observed(entity):
            out += [IocMatch(i, observed, entity.key) for i in indicators if matches(i, observed)]
    loose = [o for e in events if not e.task for o in _event_observed(e)]
    loose += [o for p in processes if process_entity(p) is None for o in _process_observed(p)]
    for observed in _unique(loose):
        out += [IocMatch(i, observed, None) for i in indicators if matches(i, observed)]
    return out


# --- into the findings ------------------------------------------------------------------------------

def _evidence(match: IocMatch) -> EvidenceItem:
    return EvidenceItem(source=f"IOC {match.indicator.describe()}", location=f"{match.observed.location} [{match.observed.field}]",
                        value=match.observed.value, time=match.observed.time,
                        evidence_sha256=match.observed.evidence_sha256)


def _hit(found: list[IocMatch], risk: str, task: str) -> Hit:
    values = sorted({m.indicator.value for m in found})
    shown = ", ".join(values[:3]) + (f" (+{len(values) - 3} more)" if len(values) > 3 else "")
    return Hit(rule="ioc", title=f"Matches {len(values)} threat-intelligence indicator(s): {shown}", risk=risk,
               evidence=[_evidence(m) for m in found], single_source_ok=True,
               action=f"Treat {task} as known-bad: isolate the host, collect the matched files, and hunt the same "
                      f"indicators across the estate.")


def add_ioc_hits(judged: list[tuple[Entity, list[Hit]]], events: Iterable[TaskEvent], processes: list[TaskProcess],
                 iocs: IocSet | None) -> list[tuple[Entity, list[Hit]]]:
    """An IOC match on a task joins its finding (risk at least High, one level up when already High);
    a match outside any task is a finding of its own, one per indicator."""
    if not iocs or not iocs.indicators:
        return judged
    found = match_records([e for e, _ in judged], events, processes, iocs.indicators)
    by_task: dict[str, list[IocMatch]] = {}
    loose: dict[Indicator, list[IocMatch]] = {}
    for match in found:
        if match.task is None:
            loose.setdefault(match.indicator, []).append(match)
        else:
            by_task.setdefault(match.task, []).append(match)
    for entity, hits in judged:
        if entity.key in by_task:
            worst = max((RISK_ORDER[h.risk] for h in hits), default=0)
            hits.append(_hit(by_task[entity.key], "Critical" if worst >= RISK_ORDER["High"] else "High", entity.task))
    for indicator, matched in sorted(loose.items(), key=lambda kv: (kv[0].kind, kv[0].value, kv[0].origin)):
        task = f"(no task) IOC {indicator.kind} {indicator.value}"
        locations = {m.observed.location for m in matched}
        entity = Entity(key=f"ioc:{indicator.kind}:{indicator.value}", task=task, kind="ioc", host=None,
                        sources=["ioc"],
                        events=[e for e in events if f"{e.provenance.location} record {e.provenance.offset}" in locations],
                        processes=[p for p in processes if f"{p.provenance.location} pid {p.pid}" in locations])
        entity.host = next((r.host for r in entity.events if r.host), None)
        judged.append((entity, [_hit(matched, "High", task)]))
    return judged
