"""Group Policy Preferences ``ScheduledTasks.xml`` (Task, ImmediateTask, TaskV2, ImmediateTaskV2).

A GPO that carries this file pushes the tasks to every machine it applies to (T1053.005 at scale,
T1484.001). Each item becomes one TaskDefinition: the item and Properties attributes are kept as
written, V2 items' embedded <Task> goes through the task XML parser, and a ``cpassword`` is
decrypted with the AES key Microsoft published (MS-GPPREF 2.2.1.1.4), because the plaintext
password of the run-as account is what an examiner needs to know was exposed.

Raises only :class:`GppError`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime, tzinfo
from typing import Any
from xml.etree.ElementTree import Element

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from triage.parsers import ParseError
from triage.parsers.task_xml import TaskXmlError, decode_xml, parse_xml_text, task_from_element
from triage.records import Action, Provenance, Stamp, TaskDefinition, Trigger
from triage.taskpath import display_task_path
from triage.timeutil import local_stamp, utc_stamp
from triage.vocab import Basis, Precision


class GppError(ParseError):
    """The bytes are not a readable ScheduledTasks.xml (encoding, hostile DTD, malformed, wrong root)."""


# MS-GPPREF 2.2.1.1.4: the 32-byte AES key for cpassword, published by Microsoft; IV is all zero.
GPP_AES_KEY = bytes.fromhex("4e9906e8fcb66cc9faf49310620ffee8f496e806cc057990209b09a433b66c1b")
_ITEM_TAGS = ("Task", "ImmediateTask", "TaskV2", "ImmediateTaskV2")
_ACTIONS = {"C": "create", "R": "replace", "U": "update", "D": "delete"}
# Legacy (v1) trigger types as GPP writes them → Trigger.kind.
_V1_TRIGGER_KINDS = {
    "ONCE": "time", "DAILY": "daily", "WEEKLY": "weekly", "MONTHLY": "monthly_date", "MONTHLYDOW": "monthly_dow",
    "IDLE": "idle", "STARTUP": "boot", "LOGON": "logon",
}


def parse_gpp_scheduled_tasks(data: bytes, *, path: str, provenance: Provenance,
                              local_tz: tzinfo | None) -> list[TaskDefinition]:
    """All task items of one ScheduledTasks.xml, in document order."""
    try:
        text, notes = decode_xml(data)
        root = parse_xml_text(text, error=GppError)
        if root.tag != "ScheduledTasks":
            raise GppError(f"root element is <{root.tag}>, not <ScheduledTasks>: not a GPP ScheduledTasks.xml")
        definitions = []
        for index, item in enumerate(root):
            definition = _item(item, index, path, provenance, local_tz)
            definition.errors[:0] = notes
            definitions.append(definition)
        return definitions
    except GppError:
        raise
    except TaskXmlError as exc:
        raise GppError(str(exc)) from exc
    except Exception as exc:  # the contract is one error type, whatever the input
        raise GppError(f"unreadable ScheduledTasks.xml: {type(exc).__name__}: {exc}") from exc


def decrypt_cpassword(cpassword: str) -> str:
    """AES-256-CBC with the published key and a zero IV; base64 without padding; UTF-16LE; PKCS7.

    Raises ValueError when the value does not decrypt to a well-padded UTF-16LE string.
    """
    text = cpassword.strip()
    text += "=" * (-len(text) % 4)
    try:
        ciphertext = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"cpassword is not base64: {exc}") from None
    if not ciphertext or len(ciphertext) % 16:
        raise ValueError(f"cpassword is {len(ciphertext)} bytes, not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(GPP_AES_KEY), modes.CBC(b"\x00" * 16)).decryptor()
    plain = decryptor.update(ciphertext) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("cpassword does not decrypt with the published GPP key (bad padding)")
    try:
        return plain[:-pad].decode("utf-16-le")
    except UnicodeDecodeError:
        raise ValueError("cpassword decrypts to bytes that are not UTF-16LE text") from None


def _item(item: Element, index: int, path: str, provenance: Provenance, local_tz: tzinfo | None) -> TaskDefinition:
    properties = next((child for child in item if child.tag == "Properties"), None)
    props = dict(properties.attrib) if properties is not None else {}
    name = props.get("name") or item.get("name") or f"{item.tag}[{index}]"
    item_provenance = dataclasses.replace(provenance, value_name=f"{item.tag}[{index}] {name}")
    task = display_task_path(name)
    embedded = next((child for child in properties if child.tag == "Task"), None) if properties is not None else None

    if item.tag in ("TaskV2", "ImmediateTaskV2") and embedded is not None:
        definition = task_from_element(embedded, task=task, provenance=item_provenance, local_tz=local_tz, source="gpp")
    else:
        definition = TaskDefinition(task=task, source="gpp", provenance=item_provenance)
        if item.tag not in _ITEM_TAGS:
            definition.errors.append(f"unknown GPP item <{item.tag}>: kept its attributes only")
        elif item.tag in ("TaskV2", "ImmediateTaskV2"):
            definition.errors.append(f"<{item.tag}> has no embedded <Task> definition")
        _legacy_item(definition, props, properties, local_tz)

    details = definition.details
    details["gpp_file"] = path
    details["gpp_item"] = item.tag
    details["gpp_item_attributes"] = dict(sorted(item.attrib.items()))
    details["gpp_properties"] = dict(sorted(props.items()))
    details["immediate"] = item.tag.startswith("Immediate")
    changed = _changed_stamp(item.get("changed"))
    if changed:
        definition.stamps.append(changed)
    if props.get("action"):
        details["gpp_action"] = _ACTIONS.get(props["action"].upper(), props["action"])
    if item.get("disabled") == "1":
        details["gpp_item_disabled"] = True
    filters = next((child for child in item if child.tag == "Filters"), None)
    if filters is not None and len(filters):
        details["gpp_filters"] = [dict(sorted(f.attrib.items()), type=f.tag) for f in filters]
    run_as = props.get("runAs")
    if run_as:
        details["run_as"] = run_as
        definition.user_id = definition.user_id or run_as
    if props.get("logonType"):
        definition.logon_type = definition.logon_type or props["logonType"]
    cpassword = props.get("cpassword")
    if cpassword:
        details["cpassword"] = cpassword
        try:
            details["cpassword_decrypted"] = decrypt_cpassword(cpassword)
        except ValueError as exc:
            definition.errors.append(f"cpassword of {run_as or name}: {exc}")
    return definition


def _changed_stamp(text: str | None) -> Stamp | None:
    """The item's ``changed`` attribute: when the GPO editor last saved it, written in UTC (MS-GPPREF)."""
    if not text:
        return None
    try:
        moment = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return Stamp(meaning="gpp_item_changed", utc=None, as_written=text, basis=Basis.UNPARSED, precision=Precision.UNKNOWN)
    return utc_stamp(moment, "gpp_item_changed", as_written=text)


def _legacy_item(definition: TaskDefinition, props: dict[str, str], properties: Element | None,
                 local_tz: tzinfo | None) -> None:
    """Task/ImmediateTask: everything is in Properties attributes and Triggers/Trigger attributes."""
    if props.get("appName") is not None or props.get("args") is not None:
        definition.actions.append(Action(kind="exec", command=props.get("appName"), arguments=props.get("args"),
                                         working_directory=props.get("startIn")))
    definition.description = props.get("comment") or None
    if props.get("enabled") is not None:
        definition.enabled = props["enabled"].strip() not in ("0", "false")
    else:
        definition.enabled = True
    definition.settings = {key: value for key, value in sorted(props.items())
                           if key not in ("name", "appName", "args", "startIn", "comment", "enabled", "runAs",
                                          "cpassword", "action")}
    triggers = next((child for child in properties if child.tag == "Triggers"), None) if properties is not None else None
    if triggers is None:
        return
    for element in triggers:
        definition.triggers.append(_legacy_trigger(element, local_tz, definition.errors))


def _legacy_trigger(element: Element, local_tz: tzinfo | None, errors: list[str]) -> Trigger:
    attrs = dict(sorted(element.attrib.items()))
    kind = _V1_TRIGGER_KINDS.get(attrs.get("type", "").upper(), "unknown")
    trigger = Trigger(kind=kind, enabled=True, details={"gpp_trigger": attrs})
    trigger.start = _attr_time(attrs, "begin", "trigger_start", local_tz, errors, with_time=True)
    if attrs.get("hasEndDate") == "1":
        trigger.end = _attr_time(attrs, "end", "trigger_end", local_tz, errors, with_time=False)
    return trigger


def _attr_time(attrs: dict[str, Any], prefix: str, meaning: str, local_tz: tzinfo | None, errors: list[str],
               *, with_time: bool):
    try:
        year, month, day = (int(attrs[f"{prefix}{part}"]) for part in ("Year", "Month", "Day"))
    except (KeyError, ValueError):
        return None
    hour = minute = 0
    written = f"{year:04d}-{month:02d}-{day:02d}"
    if with_time:
        try:
            hour, minute = int(attrs.get("startHour", "0")), int(attrs.get("startMinutes", "0"))
        except ValueError:
            errors.append(f"trigger start time '{attrs.get('startHour')}:{attrs.get('startMinutes')}' is not a time")
        written += f" {hour:02d}:{minute:02d}"
    try:
        naive = datetime(year, month, day, hour, minute)
    except ValueError:
        errors.append(f"trigger {meaning} {written} is not a valid date")
        return None
    return local_stamp(naive, meaning, written, local_tz, precision=Precision.MIN if with_time else Precision.DAY)
