"""Content rules: Sigma rules over task definitions and Unix jobs, kept as data in ``triage/rules/definitions``.

Each definition is flattened to one row per action (so the second, malicious Exec of a task is
judged on its own) with Sigma-style field names: TaskPath, TaskName, Author, UserId, RunLevel,
LogonType, Hidden, ActionType, Command, Arguments, CommandLine, WorkingDirectory, ClassId, ComDll,
TriggerTypes, RepetitionSeconds, Source, plus what triage derives: DecodedCommand (the text of a
PowerShell ``-EncodedCommand``, also appended to CommandLine so every rule sees it), CommandPath (the
program with environment variables expanded), ScriptOutsideSystem (a .cmd/.bat/.ps1/.vbs/.js/.hta/.wsf
the action runs from outside Windows and Program Files), RemoteTarget / RemoteTargetIsOtherHost
(``schtasks /s``), CreatedOverNetworkLogon (4698/4702 in a 4624 type 3 session), CreatedByCommand, XmlFile (``schtasks /xml``),
CreatingParentImage / CreatingParentCommandLine (the process that ran the creating command, Sysmon 1 / 4688),
CpasswordDecrypted (a GPP cpassword that decrypted). Unix jobs give
JobKind, User, Schedule, Command, CommandLine.

A rule with ``raises_other_reasons: 1`` (very short repetition) raises every other content-rule reason
on the same task by one level when it matches. Rules are parsed by pySigma and evaluated here in-process (case-insensitive, as
Sigma specifies), so analysts read and extend them as ordinary Sigma files.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import CompareOperators, SigmaBool, SigmaCompareExpression, SigmaNull, SigmaNumber, SigmaRegularExpression, SigmaString

from triage.detect import Hit, JudgeContext
from triage.detect import unix_checks
from triage.detect.baseline import is_unchanged_stock, normalise_action
from triage.parsers.task_cmdline import decode_powershell, split_command_line
from triage.records import Action, Entity, EvidenceItem, TaskDefinition, UnixJob

LEVEL_TO_RISK = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "informational": "Low"}


@lru_cache(maxsize=1)
def load_rules() -> tuple[SigmaRule, ...]:
    folder = resources.files("triage").joinpath("rules/definitions")
    rules = [SigmaRule.from_yaml(entry.read_text(encoding="utf-8"))
             for entry in sorted(folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".yml")]
    return tuple(rules)


def _trigger_fields(definition: TaskDefinition) -> dict:
    seconds = [t.repetition_seconds for t in definition.triggers if t.repetition_seconds]
    return {
        "TriggerTypes": " ".join(sorted({t.kind for t in definition.triggers})),
        "RepetitionSeconds": min(seconds) if seconds else None,
    }


def definition_rows(definition: TaskDefinition) -> list[dict]:
    details = definition.details or {}
    base = {
        "TaskPath": definition.task, "TaskName": definition.task.rsplit("\\", 1)[-1], "Author": definition.author,
        "UserId": definition.user_id or definition.group_id, "RunLevel": definition.run_level,
        "LogonType": definition.logon_type, "Hidden": definition.hidden, "Source": definition.source,
        "RemoteTarget": details.get("remote_target"), "RemoteTargetIsOtherHost": details.get("remote_target_is_other_host"),
        "CreatedByCommand": details.get("created_by_command"), "XmlFile": details.get("xml_file"),
        "CreatingParentImage": details.get("creating_parent_image"),
        "CreatingParentCommandLine": details.get("creating_parent_command_line"),
        "CreatedOverNetworkLogon": True if details.get("created_over_network_logon") else None,
        "CpasswordDecrypted": bool(details.get("cpassword_decrypted")) if "cpassword" in details else None,
        **_trigger_fields(definition),
    }
    if not definition.actions:
        return [base]
    return [{**base, **_action_fields(a)} for a in definition.actions]


def _action_fields(action: Action) -> dict:
    command_line = action.command_line
    decoded = decode_powershell(command_line) if action.kind == "exec" else None
    return {
        "ActionType": action.kind, "Command": action.command, "Arguments": action.arguments,
        "CommandLine": f"{command_line}\n{decoded}" if decoded else command_line, "DecodedCommand": decoded,
        "CommandPath": normalise_action(action.command, None) if action.command else None,
        "ScriptOutsideSystem": _script_outside_system(action) if action.kind == "exec" else None,
        "WorkingDirectory": action.working_directory, "ClassId": action.class_id, "ComDll": action.resolved_dll,
    }


_SCRIPT = re.compile(r"\.(?:cmd|bat|ps1|psm1|vbs|vbe|js|jse|hta|wsf|wsh)$", re.I)
_SYSTEM_PLACES = ("c:\\windows\\", "c:\\program files\\", "c:\\program files (x86)\\")


def _script_outside_system(action: Action) -> bool:
    """Whether the action runs a script file that lives outside Windows and Program Files (any user may write there)."""
    tokens = split_command_line(action.command_line)
    for token in list(tokens):
        if " " in token and not _SCRIPT.search(token.strip()):  # cmd /c "C:\\x\\run.bat arg": one argument
            tokens += split_command_line("x " + token)[1:]
    for token in tokens:
        path = token.strip().strip("'")
        if not _SCRIPT.search(path):
            continue
        if "\\" not in path and "/" not in path and action.working_directory:
            path = action.working_directory.rstrip("\\") + "\\" + path
        where = normalise_action(path, None)
        if not where.startswith(_SYSTEM_PLACES):
            return True
    return False


def unix_rows(job: UnixJob) -> list[dict]:
    return [{"JobKind": job.kind, "User": job.user, "Schedule": job.schedule, "Command": job.command,
             "CommandLine": job.command, "TaskPath": job.entry,
             # the programs the command starts, one a line: a path matters where it is run, not as an argument
             "Programs": "\n".join(job.details.get("programs", []))}]


def _value_matcher(expected) -> Callable[[object], bool]:
    """One Sigma value as a test of a row value; built once per rule, so a row costs no type dispatch."""
    if isinstance(expected, SigmaNull):
        return lambda actual: actual is None or actual == ""
    if isinstance(expected, SigmaBool):
        wanted = str(expected.boolean).lower()
        return lambda actual: actual is not None and str(actual).lower() == wanted
    if isinstance(expected, SigmaCompareExpression):
        compare = _COMPARE.get(expected.op)
        limit = expected.number.number
        return lambda actual: compare is not None and (number := _number(actual)) is not None and compare(number, limit)
    if isinstance(expected, SigmaNumber):
        wanted = str(expected.number)
        return lambda actual: actual is not None and str(actual) == wanted
    if isinstance(expected, SigmaRegularExpression):
        search = re.compile(expected.regexp.to_plain()).search
        return lambda actual: actual is not None and search(str(actual)) is not None
    if isinstance(expected, SigmaString):  # case-insensitive, as Sigma specifies
        fullmatch = re.compile(expected.to_regex().regexp.to_plain(), re.IGNORECASE | re.DOTALL).fullmatch
        return lambda actual: actual is not None and fullmatch(str(actual)) is not None
    return lambda actual: False


_COMPARE = {CompareOperators.LT: operator.lt, CompareOperators.LTE: operator.le,
            CompareOperators.GT: operator.gt, CompareOperators.GTE: operator.ge}


def _number(actual) -> float | None:
    try:
        return float(actual)
    except (TypeError, ValueError):
        return None


def compile_condition(node) -> Callable[[dict], bool]:
    """A pySigma parsed condition tree as one function of a row (the tree is walked once, here)."""
    if isinstance(node, ConditionAND | ConditionOR):
        parts = tuple(compile_condition(arg) for arg in node.args)
        if isinstance(node, ConditionAND):
            return lambda row: all(part(row) for part in parts)
        return lambda row: any(part(row) for part in parts)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda row: not inner(row)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        test, name = _value_matcher(node.value), node.field
        return lambda row: test(row.get(name))
    if isinstance(node, ConditionValueExpression):
        test = _value_matcher(node.value)
        return lambda row: any(test(value) for value in row.values() if value is not None)
    raise ValueError(f"unsupported Sigma condition element {type(node).__name__}")


_COMPILED: dict[int, tuple[SigmaRule, tuple[Callable[[dict], bool], ...]]] = {}


def _compiled(rule: SigmaRule) -> tuple[Callable[[dict], bool], ...]:
    """pySigma parses a condition again on every ``.parsed`` access; each rule's conditions are parsed and
    compiled once here (the rule is kept with them, so its id cannot be reused)."""
    if id(rule) not in _COMPILED:
        trees = [condition.parsed for condition in rule.detection.parsed_condition]
        _COMPILED[id(rule)] = (rule, tuple(compile_condition(tree) for tree in trees))
    return _COMPILED[id(rule)][1]


def rule_matches(rule: SigmaRule, row: dict) -> bool:
    return any(condition(row) for condition in _compiled(rule))


def _techniques(rule: SigmaRule) -> list[str]:
    return sorted(str(tag.name).upper() for tag in rule.tags if tag.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", tag.name))


def check_content(entity: Entity, ctx: JudgeContext) -> list[Hit]:
    if is_unchanged_stock(entity, ctx.baseline) or unix_checks.is_unchanged_stock(entity):
        return []
    rows: list[tuple[dict, object]] = []
    for definition in entity.definitions:
        rows.extend((row, definition) for row in definition_rows(definition))
    for job in entity.unix_jobs:
        rows.extend((row, job) for row in unix_rows(job))
    hits = []
    raisers = []
    for rule in load_rules():
        category = rule.logsource.category
        matched = [(row, record) for row, record in rows
                   if (category == "unix_job") == isinstance(record, UnixJob) and rule_matches(rule, row)]
        if not matched:
            continue
        evidence, seen = [], set()
        for row, record in matched:
            item = EvidenceItem(source=f"{getattr(record, 'source', None) or record.kind} ({rule.title})",
                                location=record.provenance.location,
                                value=str(row.get("CommandLine") or row.get("TaskPath")),
                                evidence_sha256=record.provenance.evidence_sha256)
            key = (item.source, item.location, item.value, item.evidence_sha256)  # a set: a task may hold 30,000 actions
            if key not in seen:
                seen.add(key)
                evidence.append(item)
        hit = Hit(
            rule=rule.name or str(rule.id), title=rule.title, risk=LEVEL_TO_RISK[rule.level.name.lower()],
            evidence=evidence, techniques=_techniques(rule),
            action=str(rule.custom_attributes.get("recommended_action", "")).replace("{task}", entity.task),
        )
        hits.append(hit)
        if rule.custom_attributes.get("raises_other_reasons"):
            raisers.append(hit)
    return _raise_others(hits, raisers)


_RISKS = ["Low", "Medium", "High", "Critical"]


def _raise_others(hits: list[Hit], raisers: list[Hit]) -> list[Hit]:
    """Very short repetition makes every other reason on the task one level worse (a beacon, not a chore)."""
    if not raisers:
        return hits
    raised_by = ", ".join(h.rule for h in raisers)
    for hit in hits:
        if hit in raisers or "repetition" in hit.rule:
            continue
        level = _RISKS.index(hit.risk)
        if level < len(_RISKS) - 1:
            hit.risk = _RISKS[level + 1]
            hit.title = f"{hit.title} (raised: {raised_by})"
    return hits
