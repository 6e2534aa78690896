"""Sigma rules evaluated on the events read from the logs, with pySigma and its SQLite backend.

How: every rule is parsed by pySigma and converted by ``pySigma-backend-sqlite`` into a SQL
condition; events are inserted, in batches of :data:`BATCH_SIZE`, into an in-memory SQLite table
whose columns carry the Windows field names SigmaHQ rules use (``EventID``, ``Channel``,
``Provider_Name``, ``TaskName``, ``TaskContent``, ``Image``, ``CommandLine``, ``TargetObject``,
``Details``, ``ScriptBlockText``, ...; every column ``COLLATE NOCASE`` because Sigma matching is
case-insensitive). Each batch is queried by every rule, then emptied: memory stays bounded however
large the logs, and single-event rules give exactly the answer a whole-log table would.

SQLite is the reference, not the hot path: each converted condition is also compiled once into a Python
expression with SQLite's semantics (:mod:`triage.detect.sql_condition`), and a batch's distinct rows meet
only the compiled rules of their logsource, in process (a row seen before reuses its verdicts). Only a rule
whose SQL the compiler does not reproduce (``REGEXP``, ``GLOB``, comparisons, field references) is queried
in SQLite; ``tests/detect/test_sql_condition.py`` compares both on every corpus event log.

The rule's ``logsource`` becomes a filter on the event's channel and id: ``service`` through
pySigma's own Windows channel table, ``category`` through the Sysmon / Security / PowerShell ids
that provide it (process_creation = Sysmon 1 or Security 4688, registry_delete = Sysmon 12 with a
Delete event type, ps_script = PowerShell 4104, ...). Security 4688 rows also carry ``Image``,
``ParentImage`` and ``User`` so process_creation rules work on them.

A rule that pySigma cannot parse, whose logsource no event log provides (Linux, zeek, rpc_firewall,
file_access, ...), that the backend cannot convert, or that is a correlation rule, is reported as
unsupported with the reason; it never stops the run.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import tzinfo
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.pipelines.common import windows_logsource_mapping
from sigma.rule import SigmaRule

from triage.detect.sql_condition import RowTest, compile_condition, fold_row
from triage.parsers.evtx_task import EvtxTaskError, generic_event
from triage.records import EvidenceItem, TaskEvent
from triage.timeorder import utc_key

BATCH_SIZE = 2000
VERDICTS_KEPT = 20000  # distinct rows whose compiled-rule verdicts are remembered (a few MB), then forgotten at once
SHIPPED_RULES = Path(__file__).resolve().parents[1] / "rules"
FILTERS = SHIPPED_RULES / "sigmahq_filters.yml"
# The shipped rules converted at build time (package data, rebuilt by tools/build_shipped_sigma.py; a test checks it
# is fresh): each run would otherwise parse and convert the same hundred files again.
CONVERTED = SHIPPED_RULES.parent / "data" / "shipped_sigma.json"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SYSMON = "microsoft-windows-sysmon/operational"
SECURITY = "security"
POWERSHELL = ("microsoft-windows-powershell/operational", "powershellcore/operational")
CLASSIC_POWERSHELL = "windows powershell"

# Channel (lower case) → the Sigma services it provides, from pySigma's own table.
_SERVICES_BY_CHANNEL: dict[str, set[str]] = {}
for _service, _channels in windows_logsource_mapping.items():
    for _channel in [_channels] if isinstance(_channels, str) else _channels:
        _SERVICES_BY_CHANNEL.setdefault(_channel.lower(), set()).add(_service)
KNOWN_SERVICES = set(windows_logsource_mapping)

_SYSMON_CATEGORIES = {
    1: ["process_creation"], 2: ["file_change"], 3: ["network_connection"], 5: ["process_termination"],
    6: ["driver_load"], 7: ["image_load"], 8: ["create_remote_thread"], 9: ["raw_access_thread"],
    10: ["process_access"], 11: ["file_event"], 13: ["registry_set", "registry_event"],
    14: ["registry_rename", "registry_event"], 15: ["create_stream_hash"], 17: ["pipe_created"],
    18: ["pipe_created"], 19: ["wmi_event"], 20: ["wmi_event"], 21: ["wmi_event"], 22: ["dns_query"],
    23: ["file_delete"], 24: ["clipboard_change"], 25: ["process_tampering"], 26: ["file_delete"],
    27: ["file_block_executable"], 28: ["file_block_shredding"], 29: ["file_executable_detected"],
}
_POWERSHELL_CATEGORIES = {4103: ["ps_module"], 4104: ["ps_script"]}
_CLASSIC_POWERSHELL_CATEGORIES = {400: ["ps_classic_start"], 600: ["ps_classic_provider_start"], 800: ["ps_classic_script"]}
KNOWN_CATEGORIES = {
    c for cats in (*_SYSMON_CATEGORIES.values(), *_POWERSHELL_CATEGORIES.values(), *_CLASSIC_POWERSHELL_CATEGORIES.values())
    for c in cats
} | {"registry_add", "registry_delete"}

FULLTEXT = "sigma_fulltext"
SOURCE_KIND = "sigma_source_kind"  # a number per distinct set of logsource tokens, indexed: rules read only their rows
_RISK_BY_LEVEL = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "informational": "Low"}
_LEVEL_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}


class _ConditionBackend(sqliteBackend):
    """The SQLite backend, returning the WHERE condition only: triage adds the logsource filter."""

    def finalize_query_default(self, rule, query, index, state):
        return query


@dataclass
class LoadedRule:
    """A rule triage can evaluate: its identity and the SQL condition it became."""

    path: str
    rule_id: str
    title: str
    level: str
    status: str
    description: str
    tags: list[str]
    logsource: dict[str, str]
    condition: str  # SQL, logsource filter included
    fields: list[str]


@dataclass
class UnsupportedRule:
    """A rule that will not be evaluated, and why."""

    path: str
    rule_id: str | None
    title: str | None
    kind: str  # unreadable, parse_error, correlation, filter, logsource, conversion_error, sql_error
    reason: str


@dataclass
class RuleSet:
    loaded: list[LoadedRule] = field(default_factory=list)
    unsupported: list[UnsupportedRule] = field(default_factory=list)

    def unsupported_counts(self) -> dict[str, int]:
        """Kind of reason → how many rules."""
        counts: dict[str, int] = {}
        for rule in self.unsupported:
            counts[rule.kind] = counts.get(rule.kind, 0) + 1
        return dict(sorted(counts.items()))


@dataclass
class SigmaMatch:
    """A rule that fired, with every event it matched: ready to become a finding."""

    rule_id: str
    title: str
    level: str
    description: str
    tags: list[str]
    path: str
    events: list[TaskEvent]

    @property
    def risk(self) -> str:
        return _RISK_BY_LEVEL.get(self.level, "Low")

    @property
    def techniques(self) -> list[str]:
        """ATT&CK ids from the rule tags (``attack.t1053.005`` → ``T1053.005``)."""
        out = {t.split(".", 1)[1].upper() for t in self.tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t.lower())}
        return sorted(out)

    @property
    def tasks(self) -> list[str]:
        return sorted({e.task for e in self.events if e.task}, key=str.lower)

    def evidence_items(self) -> list[EvidenceItem]:
        return [
            EvidenceItem(
                source=f"{e.channel} {e.event_id}",
                location=f"{e.provenance.location} record {e.provenance.offset}",
                value=e.provenance.raw or "",
                time=e.time.utc,
                evidence_sha256=e.provenance.evidence_sha256,
            )
            for e in self.events
        ]


def load_rules(paths: Iterable[Path | str]) -> RuleSet:
    """Load Sigma rules from files and folders (``*.yml``/``*.yaml``, recursively), in path order."""
    rules = RuleSet()
    backend = _ConditionBackend(fulltext_field=FULLTEXT)
    probe = _connection()
    for file in _rule_files(paths):
        _load_file(file, backend, probe, rules)
    probe.close()
    return rules


def _rule_files(paths: Iterable[Path | str]) -> list[Path]:
    """The rule files :func:`load_rules` reads for ``paths``, in the order it reads them."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".yml", ".yaml"))
        else:
            files.append(path)
    return sorted(set(files), key=lambda p: str(p))


def shipped_rules() -> RuleSet:
    """triage's own Sigma rules for task events (``triage/rules/sigma_*.yml``) and the SigmaHQ
    scheduled-task rules shipped with it (``triage/rules/sigmahq``, DRL 1.1, see its ATTRIBUTION.md).

    Read from their prebuilt conversion (:data:`CONVERTED`) when it is of these very rule files and
    converter versions, else converted here; once per process. Each call gets its own lists to extend."""
    shipped = _shipped_rule_set()
    return RuleSet(loaded=list(shipped.loaded), unsupported=list(shipped.unsupported))


def _shipped_paths() -> list[Path]:
    return [*sorted(SHIPPED_RULES.glob("sigma_*.yml")), SHIPPED_RULES / "sigmahq"]


@lru_cache(maxsize=1)
def _shipped_rule_set() -> RuleSet:
    try:
        converted = json.loads(CONVERTED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        converted = None
    if converted is not None and converted.get("key") == shipped_rules_key():
        return RuleSet(
            loaded=[LoadedRule(**{**rule, "path": str(SHIPPED_RULES / rule["path"])}) for rule in converted["loaded"]],
            unsupported=[UnsupportedRule(**{**rule, "path": str(SHIPPED_RULES / rule["path"])})
                         for rule in converted["unsupported"]])
    return load_rules(_shipped_paths())


def shipped_rules_key() -> str:
    """SHA-256 of what the shipped rules' conversion depends on besides triage's code: every shipped rule file
    (path and bytes) and the versions of pySigma and its SQLite backend. Not PyYAML's: ``pyyaml>=6`` lets a fresh
    install take a newer patch release than the one the file was built with, and a YAML parser's patch release does
    not change what these files say."""
    digest = hashlib.sha256()
    for name in ("pySigma", "pySigma-backend-sqlite"):
        digest.update(f"{name} {metadata.version(name)}\n".encode())
    for file in _rule_files(_shipped_paths()):
        digest.update(f"{file.relative_to(SHIPPED_RULES).as_posix()} {file.stat().st_size}\n".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def converted_shipped_rules() -> str:
    """The shipped rules converted now, as the text of :data:`CONVERTED` (``tools/build_shipped_sigma.py`` writes it)."""
    rules = load_rules(_shipped_paths())

    def entry(rule: LoadedRule | UnsupportedRule) -> dict[str, Any]:
        return {**asdict(rule), "path": Path(rule.path).relative_to(SHIPPED_RULES).as_posix()}

    return json.dumps({"key": shipped_rules_key(), "loaded": [entry(r) for r in rules.loaded],
                       "unsupported": [entry(r) for r in rules.unsupported]}, indent=1, ensure_ascii=False) + "\n"


def _load_file(file: Path, backend: _ConditionBackend, probe: sqlite3.Connection, rules: RuleSet) -> None:
    where = str(file)
    try:
        text = file.read_text(encoding="utf-8")
        # pySigma's from_yaml is from_dicts(yaml.safe_load_all(...)); libyaml's safe loader builds the same
        # values about five times faster, which matters with a hundred shipped rules per run.
        collection = SigmaCollection.from_dicts(list(yaml.load_all(text, Loader=_SAFE_LOADER)), collect_errors=True)
    except Exception as exc:  # YAML errors, unreadable files: one unsupported entry, never a crash
        rules.unsupported.append(UnsupportedRule(where, None, None, "unreadable", f"not a readable Sigma file: {_describe(exc)}"))
        return
    if collection.errors and not collection.rules:
        rules.unsupported.append(UnsupportedRule(where, None, None, "parse_error", f"pySigma cannot parse the rule: {_describe(collection.errors[0])}"))
        return
    for rule in collection.rules:
        rule_id = str(rule.id) if getattr(rule, "id", None) else None
        title = getattr(rule, "title", None)
        if isinstance(rule, SigmaCorrelationRule):
            rules.unsupported.append(UnsupportedRule(where, rule_id, title, "correlation", "correlation rule: only single-event rules are evaluated"))
            continue
        if not isinstance(rule, SigmaRule):
            rules.unsupported.append(UnsupportedRule(where, rule_id, title, "filter", "filter document: not a detection rule"))
            continue
        if rule.errors:
            rules.unsupported.append(UnsupportedRule(where, rule_id, title, "parse_error", f"pySigma cannot parse the rule: {_describe(rule.errors[0])}"))
            continue
        logsource_filter, problem = _logsource_condition(rule)
        if problem:
            rules.unsupported.append(UnsupportedRule(where, rule_id, title, "logsource", problem))
            continue
        try:
            queries = backend.convert_rule(rule)
            fields = backend.required_fields(rule)
        except Exception as exc:  # pySigma/backend raise many types for features they lack
            rules.unsupported.append(UnsupportedRule(where, rule_id, title, "conversion_error", f"SQLite backend cannot convert the rule: {_describe(exc)}"))
            continue
        condition = f"({logsource_filter}) AND (" + " OR ".join(f"({q})" for q in queries) + ")"
        try:
            _ensure_columns(probe, fields)
            probe.execute(f"SELECT rid FROM events WHERE {condition} LIMIT 0").close()
        except sqlite3.Error as exc:
            rules.unsupported.append(UnsupportedRule(where, rule_id, title, "sql_error", f"SQLite rejects the converted rule: {_describe(exc)}"))
            continue
        rules.loaded.append(LoadedRule(
            path=where, rule_id=rule_id or where, title=title or where, level=rule.level.name.lower() if rule.level else "",
            status=rule.status.name.lower() if rule.status else "", description=rule.description or "",
            tags=[str(t) for t in rule.tags], logsource={k: v for k in ("product", "category", "service")
                                                         if (v := getattr(rule.logsource, k, None))},
            condition=condition, fields=fields,
        ))


def _logsource_condition(rule: SigmaRule) -> tuple[str, str | None]:
    """SQL on the ``sigma_logsource`` column for the rule's logsource, or why none exists."""
    product, category, service = rule.logsource.product, rule.logsource.category, rule.logsource.service
    label = "/".join(x for x in (product, category, service) if x)
    if product and product.lower() != "windows":
        return "", f"logsource {label} not evaluable: triage evaluates Sigma on Windows event logs only"
    tokens = []
    if category:
        if category.lower() not in KNOWN_CATEGORIES:
            return "", f"logsource {label} not evaluable: no Windows event log provides category {category}"
        tokens.append(f"category:{category.lower()}")
    if service:
        if service.lower() not in KNOWN_SERVICES:
            return "", f"logsource {label} not evaluable: unknown Windows service {service}"
        tokens.append(f"service:{service.lower()}")
    if not tokens:
        return "", f"logsource {label or '(none)'} not evaluable: no category or service to select events by"
    return " AND ".join(f"sigma_logsource LIKE '%|{t}|%'" for t in tokens), None


def logsource_tokens(fields: Mapping[str, Any]) -> list[str]:
    """The Sigma logsource keys an event satisfies, e.g. ``category:process_creation``."""
    channel = str(fields.get("Channel") or "").lower()
    try:
        eid = int(fields.get("EventID"))
    except (TypeError, ValueError):
        eid = -1
    tokens = [f"service:{s}" for s in sorted(_SERVICES_BY_CHANNEL.get(channel, ()))]
    categories: list[str] = []
    if channel == SYSMON:
        categories = list(_SYSMON_CATEGORIES.get(eid, []))
        if eid == 12:
            kind = str(fields.get("EventType") or "").lower()
            categories = ["registry_event", "registry_delete" if kind.startswith("delete") else "registry_add"]
    elif channel == SECURITY and eid == 4688:
        categories = ["process_creation"]
    elif channel in POWERSHELL:
        categories = _POWERSHELL_CATEGORIES.get(eid, [])
    elif channel == CLASSIC_POWERSHELL:
        categories = _CLASSIC_POWERSHELL_CATEGORIES.get(eid, [])
    tokens += [f"category:{c}" for c in categories]
    return tokens


def _sigma_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The event as SigmaHQ field names see it; 4688 also under the Sysmon process names."""
    columns = dict(fields)
    if str(fields.get("Channel") or "").lower() == SECURITY and str(fields.get("EventID")) == "4688":
        columns.setdefault("Image", fields.get("NewProcessName"))
        columns.setdefault("ParentImage", fields.get("ParentProcessName"))
        columns.setdefault("User", fields.get("SubjectUserName"))
    return columns


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "\n".join("" if v is None else str(v) for v in value)
    return str(value)


_LOGSOURCE_TERM = re.compile(r"sigma_logsource LIKE '%\|([^|']+)\|%'")


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _regexp(pattern: str, value: Any) -> int:
    if value is None:
        return 0
    return 1 if _compiled(pattern).search(str(value)) else 0


@lru_cache(maxsize=4)
def _compiled_tests(conditions: tuple[tuple[str, frozenset[str]], ...], columns: tuple[str, ...]) -> tuple[RowTest | None, ...]:
    """Each (condition, logsource tokens it needs) as a test of rows laid out as ``columns`` (None: stays in SQLite).

    Cached: every log's evaluator (:meth:`SigmaEvaluator.fresh`, in forked workers too) reuses the parent's tests."""
    index = {name.lower(): number for number, name in enumerate(columns) if name != SOURCE_KIND}

    def implied_by(needs: frozenset[str]):
        # A rule meets only rows whose logsource tokens include ``needs``: its own logsource terms are true there.
        def implied(column: str, pattern: str) -> bool:
            term = _LOGSOURCE_PATTERN.fullmatch(pattern)
            return column == "sigma_logsource" and term is not None and term.group(1) in needs
        return implied

    return tuple(compile_condition(condition, index, implied_by(needs)) for condition, needs in conditions)


_LOGSOURCE_PATTERN = re.compile(r"%\|([^|']+)\|%")


def _distinct_columns(names: Iterable[str]) -> list[str]:
    """One column per name as SQLite sees it (case-insensitive): the first spelling wins."""
    seen: set[str] = set()
    return [name for name in names if not (name.lower() in seen or seen.add(name.lower()))]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connection() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.create_function("REGEXP", 2, _regexp, deterministic=True)
    conn.execute(f'CREATE TABLE events (rid INTEGER PRIMARY KEY, sigma_logsource TEXT, {FULLTEXT} TEXT COLLATE NOCASE, '
                 f'{SOURCE_KIND} INTEGER)')
    conn.execute(f"CREATE INDEX events_by_source_kind ON events ({SOURCE_KIND})")
    return conn


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1].lower() for row in conn.execute("PRAGMA table_info(events)")}


def _ensure_columns(conn: sqlite3.Connection, fields: Iterable[str]) -> None:
    existing = _columns(conn)
    for name in fields:
        if name.lower() not in existing:
            conn.execute(f"ALTER TABLE events ADD COLUMN {_quote(name)} TEXT COLLATE NOCASE")
            existing.add(name.lower())


@dataclass
class EventRef:
    """Where an event came from, for the TaskEvent built when a rule matches it."""

    location: str
    evidence: str | None = None
    evidence_sha256: str | None = None
    local_tz: tzinfo | None = None


@dataclass
class SigmaPart:
    """What one evaluator found on some events (see :meth:`SigmaEvaluator.drain`)."""

    hits: dict[str, list[tuple[Mapping[str, Any], EventRef]]]
    events_seen: int
    errors: dict[str, str]


class SigmaEvaluator:
    """Feed events one by one (:meth:`add`), collect matches at the end (:meth:`matches`)."""

    def __init__(self, rules: RuleSet, batch_size: int = BATCH_SIZE, compiled: bool = True):
        # A rule given twice (shipped SigmaHQ rules and the same checkout via --sigma) runs once: first wins.
        seen: set[str] = set()
        unique = [r for r in rules.loaded if not (r.rule_id in seen or seen.add(r.rule_id))]
        self.rules = RuleSet(loaded=unique, unsupported=rules.unsupported)
        self.batch_size = batch_size
        self.events_seen = 0
        self.errors: dict[str, str] = {}  # rule id → runtime error (e.g. a regex Python rejects)
        fields = sorted({f for rule in rules.loaded for f in rule.fields} | {"Channel", "EventID"}, key=str.lower)
        self._fields = _distinct_columns(name for name in fields
                                         if name.lower() not in ("rid", "sigma_logsource", FULLTEXT, SOURCE_KIND))
        self._fulltext = any(FULLTEXT in rule.condition for rule in rules.loaded)
        self._batch: list[tuple[Mapping[str, Any], EventRef]] = []
        self._batch_kinds: list[int] = []  # each batched event's source kind (index into _kinds)
        # The logsource tokens each rule requires (its condition's sigma_logsource terms): an event no
        # rule selects is never stored. Plans map an event's key set to the keys feeding each column.
        self._needs = [frozenset(_LOGSOURCE_TERM.findall(rule.condition)) for rule in rules.loaded]
        # Each rule's condition compiled to Python (sql_condition) once per process; a rule it cannot compile
        # runs in SQLite, as does every rule when ``compiled`` is False (the reference the tests compare with).
        self.compiled = compiled
        columns = ("sigma_logsource", FULLTEXT, SOURCE_KIND, *self._fields)  # the row's layout (see _row)
        conditions = tuple((rule.condition, needs) for rule, needs in zip(rules.loaded, self._needs))
        self._tests = list(_compiled_tests(conditions, columns)) if compiled else [None] * len(conditions)
        self._conn: sqlite3.Connection | None = None
        if any(test is None for test in self._tests):
            self._conn = _connection()
            _ensure_columns(self._conn, self._fields)
        names = ["rid", "sigma_logsource", FULLTEXT, SOURCE_KIND, *self._fields]
        self._insert = f"INSERT INTO events ({', '.join(map(_quote, names))}) VALUES ({', '.join('?' * len(names))})"
        self._wanted: dict[tuple[str, ...], bool] = {}
        self._kinds: dict[tuple[str, ...], int] = {}  # logsource tokens -> source kind number
        self._kind_text: list[str] = []  # source kind number -> the sigma_logsource column ("|token|token|")
        self._kind_tests: list[list[tuple[int, RowTest]]] = []  # source kind number -> (rule index, test) that apply
        self._tokens_of: dict[tuple, tuple[str, ...]] = {}  # (Channel, EventID, EventType) -> logsource tokens
        self._plans: dict[tuple[str, ...], list[str | None]] = {}
        # Rows seen before (the same program run again, in this log or an earlier one) -> the compiled rules they met
        self._verdicts: dict[tuple, tuple[int, ...]] = {}
        self._hits: dict[str, list[tuple[Mapping[str, Any], EventRef]]] = {}

    @property
    def rules_in_sqlite(self) -> list[str]:
        """Ids of the rules whose condition is not compiled to Python and runs in SQLite."""
        return [rule.rule_id for rule, test in zip(self.rules.loaded, self._tests) if test is None]

    def add(self, fields: Mapping[str, Any], ref: EventRef) -> None:
        self.events_seen += 1
        # The tokens depend on these three values only: worked out once per distinct triple.
        source: tuple | None = (fields.get("Channel"), fields.get("EventID"), fields.get("EventType"))
        try:
            key = self._tokens_of.get(source)
        except TypeError:  # a list value (a damaged or odd record): not cached
            source, key = None, None
        if key is None:
            key = tuple(logsource_tokens(fields))
            if source is not None:
                self._tokens_of[source] = key
        wanted = self._wanted.get(key)
        if wanted is None:
            present = set(key)
            wanted = self._wanted[key] = any(need <= present for need in self._needs)
        if not wanted:
            return  # no loaded rule's logsource selects this event: it cannot match, so it is not stored
        self._batch.append((fields, ref))
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = len(self._kinds)
            self._kind_text.append("|" + "|".join(key) + "|")
            present = set(key)
            self._kind_tests.append([(index, test) for index, (test, needs) in enumerate(zip(self._tests, self._needs))
                                     if test is not None and needs <= present])
        self._batch_kinds.append(kind)
        if len(self._batch) >= self.batch_size:
            self._flush()

    def _row(self, fields: Mapping[str, Any], kind: int) -> tuple:
        """The event's column values (all but ``rid``)."""
        columns = _sigma_columns(fields)
        # Events of one template share their keys: which key feeds each column is worked out once per key set.
        names = tuple(columns)
        plan = self._plans.get(names)
        if plan is None:
            by_lower: dict[str, str] = {}
            for key in sorted(names, reverse=True):  # on a case-only clash the smallest key wins
                by_lower[key.lower()] = key
            plan = self._plans[names] = [by_lower.get(name.lower()) for name in self._fields]
        fulltext = "\n".join(_text(v) or "" for _, v in sorted(columns.items())) if self._fulltext else None
        return (self._kind_text[kind], fulltext, kind, *[None if key is None else _text(columns[key]) for key in plan])

    def _flush(self) -> None:
        if not self._batch:
            return
        # Events that give the same row (a program run again and again) are matched once: a row's rid
        # is the first such event's number, ``members`` lists every event it stands for.
        distinct: dict[tuple, int] = {}
        members: list[list[int]] = []
        for number, ((fields, _), kind) in enumerate(zip(self._batch, self._batch_kinds)):
            rid = distinct.setdefault(self._row(fields, kind), len(members))
            if rid == len(members):
                members.append([])
            members[rid].append(number)
        matched: dict[int, list[int]] = {}  # rule index -> rids, ascending
        verdicts = self._verdicts
        for row, rid in distinct.items():
            rules = verdicts.get(row)
            if rules is None:
                tests = self._kind_tests[row[2]]
                if tests:
                    values, like_values = fold_row(row)
                    rules = tuple(index for index, test in tests if test(values, like_values))
                else:
                    rules = ()
                if len(verdicts) >= VERDICTS_KEPT:
                    verdicts.clear()
                verdicts[row] = rules
            for index in rules:
                matched.setdefault(index, []).append(rid)
        if self._conn is not None:
            self._query(distinct, matched)
        for index, rule in enumerate(self.rules.loaded):
            if index in matched:
                numbers = sorted(number for rid in matched[index] for number in members[rid])
                self._hits.setdefault(rule.rule_id, []).extend(self._batch[number] for number in numbers)
        self._batch = []
        self._batch_kinds = []

    def _query(self, distinct: dict[tuple, int], matched: dict[int, list[int]]) -> None:
        """The rules not compiled to Python, run in SQLite on the batch's distinct rows."""
        assert self._conn is not None
        self._conn.execute("DELETE FROM events")
        self._conn.executemany(self._insert, ((rid, *row) for row, rid in distinct.items()))
        in_batch = set(self._batch_kinds)
        present = [(number, frozenset(tokens)) for tokens, number in self._kinds.items() if number in in_batch]
        for index, (rule, needs, test) in enumerate(zip(self.rules.loaded, self._needs, self._tests)):
            if test is not None or rule.rule_id in self.errors:
                continue
            kinds = ",".join(str(number) for number, tokens in present if needs <= tokens)
            if not kinds:
                continue  # no event of this batch has the rule's logsource
            try:
                rows = self._conn.execute(f"SELECT rid FROM events WHERE {SOURCE_KIND} IN ({kinds}) AND {rule.condition} "
                                          "ORDER BY rid").fetchall()
            except (sqlite3.Error, re.error) as exc:
                self.errors[rule.rule_id] = f"evaluation failed: {_describe(exc)}"
                continue
            if rows:
                matched[index] = [rid for (rid,) in rows]

    def fresh(self) -> SigmaEvaluator:
        """An empty evaluator of the same rules (one per process reading logs)."""
        return SigmaEvaluator(self.rules, self.batch_size, self.compiled)

    def drain(self) -> SigmaPart:
        """This evaluator's work so far (hits, events seen, rule errors), taken out: it starts afresh.

        The event-log collector drains one evaluator per log (in a worker process or not) and the run's
        evaluator takes the parts in log order (:meth:`absorb`), so matches do not depend on how logs were shared out."""
        self._flush()
        part = SigmaPart(hits=self._hits, events_seen=self.events_seen, errors=self.errors)
        self._hits, self.events_seen, self.errors = {}, 0, {}
        return part

    def absorb(self, part: SigmaPart) -> None:
        """Add one drained part; a rule that already failed keeps its first error and gains no hits."""
        self.events_seen += part.events_seen
        for rule_id, hits in part.hits.items():
            if rule_id not in self.errors:
                self._hits.setdefault(rule_id, []).extend(hits)
        for rule_id, error in part.errors.items():
            self.errors.setdefault(rule_id, error)

    def matches(self) -> list[SigmaMatch]:
        """Every rule that fired, most severe first, each with its events in time order."""
        self._flush()
        out = []
        filters = _filters()
        for rule in self.rules.loaded:
            hits = [(fields, ref) for fields, ref in self._hits.get(rule.rule_id, [])
                    if not any(_filtered(f, fields) for f in filters.get(rule.rule_id, ()))]
            if not hits:
                continue
            events = []
            for fields, ref in hits:
                try:
                    events.append(generic_event(fields, location=ref.location, evidence=ref.evidence,
                                                evidence_sha256=ref.evidence_sha256, local_tz=ref.local_tz))
                except EvtxTaskError:
                    continue  # the collector already reported the event as undecodable
            events.sort(key=lambda e: (utc_key(e.time.utc), e.provenance.location, e.provenance.offset or 0))
            out.append(SigmaMatch(rule_id=rule.rule_id, title=rule.title, level=rule.level, description=rule.description,
                                  tags=rule.tags, path=rule.path, events=events))
        out.sort(key=lambda m: (_LEVEL_ORDER.get(m.level, 9), m.title.lower(), m.rule_id))
        return out


@lru_cache(maxsize=1)
def _filters() -> dict[str, list[dict[str, set[str]]]]:
    """``triage/rules/sigmahq_filters.yml``: benign events a shipped rule's own filter misses (see that file)."""
    out: dict[str, list[dict[str, set[str]]]] = {}
    for entry in yaml.safe_load(FILTERS.read_text(encoding="utf-8")) or []:
        out.setdefault(entry["rule_id"], []).append(
            {name: {str(v).lower() for v in values} for name, values in entry["match"].items()})
    return out


def _filtered(rule_filter: dict[str, set[str]], fields: Mapping[str, Any]) -> bool:
    return all(str(fields.get(name) or "").strip().lower() in values for name, values in rule_filter.items())


def evaluate(rules: RuleSet, events: Iterable[tuple[Mapping[str, Any], EventRef]]) -> list[SigmaMatch]:
    """One-shot evaluation of (fields, ref) pairs."""
    evaluator = SigmaEvaluator(rules)
    for fields, ref in events:
        evaluator.add(fields, ref)
    return evaluator.matches()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
