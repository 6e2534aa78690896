"""Task Scheduler 2.0 task XML (schema 1.2–1.6, as in ``System32\\Tasks`` and 4698 TaskContent).

Every element is kept: the known ones as fields, the rest as raw XML in ``details``. Unknown
triggers/actions become kind ``unknown`` and never stop the parse (dissect aborts on them).
Lookups are always made relative to the current action/trigger element, so a task with two Exec
actions shows both (dissect repeats the first). Times without an offset are the machine's local
time: kept as written and converted with ``local_tz``.

Raises only :class:`TaskXmlError`.
"""

from __future__ import annotations

import codecs
import re
from datetime import tzinfo
from typing import Any
from xml.etree.ElementTree import Element, ParseError, tostring

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from triage.parsers import ParseError as TriageParseError
from triage.records import Action, Provenance, TaskDefinition, Trigger
from triage.timeutil import xml_datetime_stamp


class TaskXmlError(TriageParseError):
    """The bytes are not a readable task XML document (encoding, hostile DTD, malformed, wrong root)."""


_XML_DECL = re.compile(r"^\s*<\?xml\b[^>]*?\?>", re.DOTALL)
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml\b[^>]*?\bencoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.DOTALL)
_DURATION = re.compile(
    r"^\s*(-)?P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?\s*$"
)
# Calendar approximations for Y and M, as the Task Scheduler itself has none: good enough for rules.
_DURATION_UNITS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)

_TRIGGER_KINDS = {
    "TimeTrigger": "time",
    "BootTrigger": "boot",
    "LogonTrigger": "logon",
    "IdleTrigger": "idle",
    "EventTrigger": "event",
    "RegistrationTrigger": "registration",
    "SessionStateChangeTrigger": "session_state_change",
    "WnfStateChangeTrigger": "wnf",
}
# Children every trigger may have; they map to Trigger fields, the rest goes to details.
_COMMON_TRIGGER_CHILDREN = {"Enabled", "StartBoundary", "EndBoundary", "Repetition", "Delay", "UserId"}
_BOOLEAN_SETTINGS = {
    "AllowStartOnDemand", "RestartOnIdle", "StopOnIdleEnd", "DisallowStartIfOnBatteries", "StopIfGoingOnBatteries",
    "AllowHardTerminate", "StartWhenAvailable", "RunOnlyIfNetworkAvailable", "Enabled", "Hidden", "RunOnlyIfIdle",
    "WakeToRun", "UseUnifiedSchedulingEngine", "DisallowStartOnRemoteAppSession", "Volatile", "Exclusive",
}
_KNOWN_TOP = {"RegistrationInfo", "Principals", "Settings", "Triggers", "Actions", "Data"}


def parse_task_xml(data: bytes, *, task: str, provenance: Provenance, local_tz: tzinfo | None) -> TaskDefinition:
    """Parse one task XML document (file bytes or 4698 TaskContent encoded as UTF-8/UTF-16)."""
    try:
        text, notes = decode_xml(data)
        root = parse_xml_text(text, error=TaskXmlError)
        if root.tag != "Task":
            raise TaskXmlError(f"root element is <{root.tag}>, not <Task>: not a task XML document")
        definition = task_from_element(root, task=task, provenance=provenance, local_tz=local_tz, source="task_xml")
        definition.errors[:0] = notes
        return definition
    except TaskXmlError:
        raise
    except Exception as exc:  # the contract is one error type, whatever the input
        raise TaskXmlError(f"unreadable task XML: {type(exc).__name__}: {exc}") from exc


def decode_xml(data: bytes) -> tuple[str, list[str]]:
    """Bytes → text. BOM first, then the UTF-16 '<' pattern, then the declared encoding when it fits.

    A declaration of UTF-16 on single-byte content (common in hand-made files) is overridden: the
    bytes decide. Returns the text without its XML declaration, plus notes about replaced bytes.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TaskXmlError("task XML must be bytes")
    data = bytes(data)
    notes: list[str] = []
    if data.startswith(codecs.BOM_UTF32_LE) or data.startswith(codecs.BOM_UTF32_BE):
        encoding, body = "utf-32", data
    elif data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[3:]
    elif data.startswith(codecs.BOM_UTF16_LE):
        encoding, body = "utf-16-le", data[2:]
    elif data.startswith(codecs.BOM_UTF16_BE):
        encoding, body = "utf-16-be", data[2:]
    elif data[:2] in (b"<\x00", b" \x00", b"\r\x00", b"\n\x00", b"\t\x00"):
        encoding, body = "utf-16-le", data
    elif data[:2] in (b"\x00<", b"\x00 ", b"\x00\r", b"\x00\n", b"\x00\t"):
        encoding, body = "utf-16-be", data
    else:
        encoding, body = _single_byte_encoding(data), data
    if encoding.startswith("utf-16") and len(body) % 2:
        body = body[:-1]
        notes.append("odd number of bytes in UTF-16 text: last byte dropped")
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = body.decode(encoding if encoding != "utf-32" else "utf-8", errors="replace")
        notes.append(f"bytes that are not valid {encoding} were replaced with U+FFFD")
    text = text.lstrip("\ufeff").rstrip("\x00 \r\n\t")
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append("NUL characters inside the text were removed")
    return _XML_DECL.sub("", text, count=1), notes


def _single_byte_encoding(data: bytes) -> str:
    match = _DECLARED_ENCODING.match(data[:200])
    declared = match.group(1).decode("ascii").lower() if match else ""
    try:
        declared_codec = codecs.lookup(declared).name if declared else ""
    except LookupError:
        declared_codec = ""
    # A single-byte/UTF-8 file that claims UTF-16/32 is decoded by what the bytes are, not the claim.
    if declared_codec and not declared_codec.startswith(("utf-16", "utf-32")) and declared_codec != "utf-8":
        try:
            data.decode(declared_codec)
            return declared_codec
        except UnicodeDecodeError:
            pass
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252" if _decodes(data, "cp1252") else "utf-8"


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def parse_xml_text(text: str, *, error: type[ValueError]) -> Element:
    """defusedxml parse with DTDs, entities and external references forbidden; namespaces stripped."""
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden as exc:
        raise error(f"DOCTYPE/entity declarations are not allowed (DTD '{exc.name}' refused; nothing was fetched)") from None
    except EntitiesForbidden as exc:
        raise error(f"DOCTYPE/entity declarations are not allowed (entity '{exc.name}' refused)") from None
    except ExternalReferenceForbidden as exc:
        raise error(f"external references are not allowed ('{exc.sysid}' refused; nothing was fetched)") from None
    except ParseError as exc:
        raise error(f"malformed XML: {exc}") from None
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.startswith("{"):
            element.tag = element.tag.split("}", 1)[1]
        for name in [n for n in element.attrib if n.startswith("{")]:
            element.attrib[name.split("}", 1)[1]] = element.attrib.pop(name)
    return root


def task_from_element(root: Element, *, task: str, provenance: Provenance, local_tz: tzinfo | None,
                      source: str) -> TaskDefinition:
    """Build a TaskDefinition from a namespace-stripped <Task> element (also used for GPP TaskV2)."""
    errors: list[str] = []
    definition = TaskDefinition(task=task, source=source, provenance=provenance)
    if root.get("version"):
        definition.details["schema_version"] = root.get("version")

    info = _child(root, "RegistrationInfo")
    if info is not None:
        definition.uri = _text(info, "URI")
        definition.author = _text(info, "Author")
        definition.description = _text(info, "Description")
        definition.source_attr = _text(info, "Source")
        definition.documentation = _text(info, "Documentation")
        definition.version = _text(info, "Version")
        definition.security_descriptor = _text(info, "SecurityDescriptor")
        definition.date = xml_datetime_stamp(_text(info, "Date"), "registration_date", local_tz)
        extra = _unknown_children(info, {"URI", "Author", "Description", "Source", "Documentation", "Version",
                                         "SecurityDescriptor", "Date"})
        if extra:
            definition.details["registration_info_unknown"] = extra

    actions_element = _child(root, "Actions")
    context = actions_element.get("Context") if actions_element is not None else None
    if context:
        definition.details["actions_context"] = context
    _read_principals(root, definition, context)
    _read_settings(root, definition, errors)

    triggers_element = _child(root, "Triggers")
    if triggers_element is not None:
        for element in triggers_element:
            definition.triggers.append(_trigger(element, local_tz, errors))
    if actions_element is not None:
        for element in actions_element:
            definition.actions.append(_action(element))

    data = _child(root, "Data")
    if data is not None:
        definition.details["data"] = _inner_text(data)
    unknown = _unknown_children(root, _KNOWN_TOP)
    if unknown:
        definition.details["unknown_elements"] = unknown
    definition.errors.extend(errors)
    return definition


def _read_principals(root: Element, definition: TaskDefinition, context: str | None) -> None:
    principals_element = _child(root, "Principals")
    if principals_element is None:
        return
    principals = []
    for element in _children(principals_element, "Principal"):
        principal: dict[str, Any] = {"id": element.get("id")}
        for child in element:
            if child.tag == "RequiredPrivileges":
                principal["RequiredPrivileges"] = [(p.text or "").strip() for p in child if p.tag == "Privilege"]
            else:
                principal[child.tag] = _value(child)
        principals.append(principal)
    if not principals:
        return
    # The principal that runs the actions is the one the Actions Context names (schema: at most one).
    chosen = next((p for p in principals if context and p.get("id") == context), principals[0])
    definition.principal_id = chosen.get("id")
    definition.user_id = _str(chosen.get("UserId"))
    definition.group_id = _str(chosen.get("GroupId"))
    definition.logon_type = _str(chosen.get("LogonType"))
    definition.run_level = _str(chosen.get("RunLevel"))
    for key in ("DisplayName", "ProcessTokenSidType", "RequiredPrivileges"):
        if chosen.get(key) is not None:
            definition.details[_snake(key)] = chosen[key]
    if len(principals) > 1 or any(set(p) - {"id", "UserId", "GroupId", "LogonType", "RunLevel", "DisplayName",
                                             "ProcessTokenSidType", "RequiredPrivileges"} for p in principals):
        definition.details["principals"] = principals


def _read_settings(root: Element, definition: TaskDefinition, errors: list[str]) -> None:
    settings_element = _child(root, "Settings")
    settings: dict[str, Any] = {}
    if settings_element is not None:
        settings = _settings_value(settings_element, errors, "Settings")
    definition.settings = settings if isinstance(settings, dict) else {"raw": settings}
    # Schema defaults apply when the element is absent: the scheduler runs the task as if written.
    enabled = definition.settings.get("Enabled")
    hidden = definition.settings.get("Hidden")
    definition.enabled = enabled if isinstance(enabled, bool) else True
    definition.hidden = hidden if isinstance(hidden, bool) else False


def _settings_value(element: Element, errors: list[str], where: str) -> Any:
    if len(element) == 0:
        text = (element.text or "").strip()
        if element.tag in _BOOLEAN_SETTINGS:
            parsed = _bool(text)
            if parsed is None:
                errors.append(f"{where}: '{text}' is not a boolean")
                return text
            return parsed
        return text
    out: dict[str, Any] = {}
    for child in element:
        value = _settings_value(child, errors, f"{where}/{child.tag}")
        _put(out, child.tag, value)
    return out


def _trigger(element: Element, local_tz: tzinfo | None, errors: list[str]) -> Trigger:
    tag = element.tag
    kind = _TRIGGER_KINDS.get(tag)
    details: dict[str, Any] = {"element": tag}
    if tag == "CalendarTrigger":
        kind = _calendar(element, details)
    if kind is None:
        kind = "unknown"
        details["raw_xml"] = _raw(element)
    trigger = Trigger(kind=kind, trigger_id=element.get("id"), details=details)
    enabled_text = _text(element, "Enabled")
    trigger.enabled = True if enabled_text is None else _bool(enabled_text)
    if enabled_text is not None and trigger.enabled is None:
        errors.append(f"{tag}/Enabled: '{enabled_text}' is not a boolean")
        details["enabled_as_written"] = enabled_text
    trigger.start = xml_datetime_stamp(_text(element, "StartBoundary"), "trigger_start", local_tz)
    trigger.end = xml_datetime_stamp(_text(element, "EndBoundary"), "trigger_end", local_tz)
    trigger.delay = _text(element, "Delay")
    trigger.user_id = _text(element, "UserId")
    repetition = _child(element, "Repetition")
    if repetition is not None:
        trigger.repetition_interval = _text(repetition, "Interval")
        trigger.repetition_duration = _text(repetition, "Duration")
        trigger.repetition_seconds = duration_seconds(trigger.repetition_interval)
        if trigger.repetition_interval and trigger.repetition_seconds is None:
            errors.append(f"{tag}/Repetition/Interval: '{trigger.repetition_interval}' is not an ISO 8601 duration")
        stop = _text(repetition, "StopAtDurationEnd")
        if stop is not None:
            details["stop_at_duration_end"] = _bool(stop) if _bool(stop) is not None else stop
    if kind == "unknown":
        return trigger
    for child in element:
        if child.tag in _COMMON_TRIGGER_CHILDREN or child.tag.startswith("ScheduleBy"):
            continue
        if child.tag == "ValueQueries":
            details["value_queries"] = {v.get("name", ""): (v.text or "").strip() for v in child if v.tag == "Value"}
        elif child.tag == "Subscription":
            details["subscription"] = child.text or ""
        else:
            _put(details, _snake(child.tag), _value(child))
    return trigger


def _calendar(element: Element, details: dict[str, Any]) -> str | None:
    """CalendarTrigger: daily / weekly / monthly_date / monthly_dow; any other variant → None (unknown)."""
    by_day = _child(element, "ScheduleByDay")
    by_week = _child(element, "ScheduleByWeek")
    by_month = _child(element, "ScheduleByMonth")
    by_month_dow = _child(element, "ScheduleByMonthDayOfWeek")
    if by_day is not None:
        details["days_interval"] = _int_or_text(_text(by_day, "DaysInterval") or "1")
        return "daily"
    if by_week is not None:
        details["weeks_interval"] = _int_or_text(_text(by_week, "WeeksInterval") or "1")
        details["days_of_week"] = _tags(_child(by_week, "DaysOfWeek"))
        return "weekly"
    if by_month is not None:
        days = _child(by_month, "DaysOfMonth")
        details["days_of_month"] = [_int_or_text((d.text or "").strip()) for d in days if d.tag == "Day"] if days is not None else []
        details["months"] = _tags(_child(by_month, "Months"))
        return "monthly_date"
    if by_month_dow is not None:
        weeks = _child(by_month_dow, "Weeks")
        details["weeks_of_month"] = [_int_or_text((w.text or "").strip()) for w in weeks if w.tag == "Week"] if weeks is not None else []
        details["days_of_week"] = _tags(_child(by_month_dow, "DaysOfWeek"))
        details["months"] = _tags(_child(by_month_dow, "Months"))
        return "monthly_dow"
    return None


def _action(element: Element) -> Action:
    tag = element.tag
    action = Action(kind="unknown", action_id=element.get("id"))
    if tag == "Exec":
        action.kind = "exec"
        action.command = _text(element, "Command", strip=False)
        action.arguments = _text(element, "Arguments", strip=False)
        action.working_directory = _text(element, "WorkingDirectory", strip=False)
        known = {"Command", "Arguments", "WorkingDirectory"}
    elif tag == "ComHandler":
        action.kind = "comhandler"
        action.class_id = _text(element, "ClassId")
        data = _child(element, "Data")
        action.data = _inner_text(data) if data is not None else None
        known = {"ClassId", "Data"}
    elif tag == "SendEmail":
        action.kind = "sendemail"
        known = {"Server", "Subject", "To", "Cc", "Bcc", "ReplyTo", "From", "Body", "Attachments", "HeaderFields"}
        for name in ("Server", "Subject", "To", "Cc", "Bcc", "ReplyTo", "From", "Body"):
            value = _text(element, name, strip=False)
            if value is not None:
                action.details[_snake(name)] = value
        attachments = _child(element, "Attachments")
        if attachments is not None:
            action.details["attachments"] = [(f.text or "") for f in attachments if f.tag == "File"]
        headers = _child(element, "HeaderFields")
        if headers is not None:
            action.details["header_fields"] = [
                {"name": _text(h, "Name") or "", "value": _text(h, "Value", strip=False) or ""}
                for h in headers if h.tag == "HeaderField"
            ]
    elif tag == "ShowMessage":
        action.kind = "showmessage"
        known = {"Title", "Body"}
        for name in ("Title", "Body"):
            value = _text(element, name, strip=False)
            if value is not None:
                action.details[_snake(name)] = value
    else:
        action.details["element"] = tag
        action.details["raw_xml"] = _raw(element)
        return action
    unknown = _unknown_children(element, known)
    if unknown:
        action.details["unknown_elements"] = unknown
    return action


def duration_seconds(text: str | None) -> int | None:
    """ISO 8601 duration (PT30M, P1D, PT1H30M, P1DT12H, PT0.5S…) → whole seconds; None if not a duration."""
    if not text:
        return None
    match = _DURATION.match(text)
    if not match or not any(match.groups()[1:]):
        return None
    sign = -1 if match.group(1) else 1
    total = sum(float(v) * unit for v, unit in zip(match.groups()[1:], _DURATION_UNITS) if v)
    return sign * int(round(total))


def _bool(text: str | None) -> bool | None:
    """xs:boolean: true/false/1/0 (dissect rejects 1/0)."""
    value = (text or "").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    return None


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if child.tag == name:
            return child
    return None


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if child.tag == name]


def _text(element: Element, name: str, *, strip: bool = True) -> str | None:
    child = _child(element, name)
    if child is None:
        return None
    text = child.text or ""
    return text.strip() if strip else text


def _inner_text(element: Element) -> str:
    """Text of an element, or its inner XML when it has child elements (ComHandler/Data may hold XML)."""
    if len(element) == 0:
        return element.text or ""
    return (element.text or "") + "".join(_raw(child) for child in element)


def _value(element: Element) -> Any:
    """Generic element → text, or a dict of children (repeated children become lists); attributes as '@name'."""
    if len(element) == 0 and not element.attrib:
        return (element.text or "").strip()
    out: dict[str, Any] = {f"@{k}": v for k, v in sorted(element.attrib.items())}
    if len(element) == 0:
        out["text"] = (element.text or "").strip()
    for child in element:
        _put(out, child.tag, _value(child))
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Add a child value; a repeated child turns into a list in document order."""
    if key not in out:
        out[key] = value
        return
    existing = out[key]
    out[key] = (existing if isinstance(existing, list) else [existing]) + [value]


def _tags(element: Element | None) -> list[str]:
    return [child.tag for child in element] if element is not None else []


def _unknown_children(element: Element, known: set[str]) -> list[str]:
    return [_raw(child) for child in element if child.tag not in known]


def _raw(element: Element) -> str:
    return tostring(element, encoding="unicode").strip()


def _int_or_text(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text.strip()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
