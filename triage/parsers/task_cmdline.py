"""Command lines that create scheduled tasks, read the way Windows reads them.

Public API (pure: text in, values out; other modules, e.g. the memory collector, call these):

- :func:`split_command_line` ``(cmdline) -> list[str]``: argv exactly as ``CommandLineToArgvW``
  builds it (a quoted run may end mid-word, ``\\"`` is a literal quote, ``2n`` backslashes before a
  quote become ``n``, ``""`` inside quotes is a literal quote), so ``/TN " Atomic "task`` is the one
  name `` Atomic task`` and ``cmd /C "schtasks /create /tn NAME"`` yields ``NAME``, not ``NAME"``.
- :func:`parse_task_command` ``(cmdline) -> TaskCommand | None``: the task a ``schtasks`` or ``at``
  command line (also wrapped in ``cmd /c``, ``powershell -c`` or ``start``) creates, changes, runs
  or deletes: every ``schtasks /create`` switch (/tn /tr /sc /mo /st /sd /ed /et /ri /du /d /m /ru
  /rp /s /u /p /xml /f /rl /it /np /z /delay /v1 /k /hresult), ``at [\\\\host] time [/every|/next]
  command``; None when the command line runs neither.
- :func:`parse_powershell_task` ``(script) -> TaskCommand | None``: a ``Register-ScheduledTask``
  script block (PowerShell 4104, or a ``-Command``/decoded ``-EncodedCommand`` text) with its
  ``New-ScheduledTaskAction/Trigger/Principal`` parts, whether inline or assigned to variables.
- :func:`decode_powershell` ``(cmdline) -> str | None``: the text of a PowerShell
  ``-EncodedCommand`` (any accepted abbreviation: -e, -ec, -en, -enc, ...; UTF-16LE base64), the
  texts joined by a newline when there are several; None when there is none or it does not decode.
- :func:`split_action` ``(text) -> (command, arguments)``: a ``/tr`` value as the Task Scheduler
  stores it (program, then the rest).

Nothing here raises on any input: unparseable text gives None or an empty result.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from triage.records import Action, Provenance, TaskDefinition, Trigger

# -- CommandLineToArgvW -----------------------------------------------------------------------------


def split_command_line(cmdline: str) -> list[str]:
    """argv as ``CommandLineToArgvW`` builds it (post-2008 msvcrt rules, which it shares).

    The first argument (the program) is special: it ends at the first space outside quotes and
    backslashes are never escapes in it.
    """
    text = cmdline or ""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return args
    # program name
    program = []
    in_quotes = False
    while i < n:
        ch = text[i]
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in " \t" and not in_quotes:
            break
        else:
            program.append(ch)
        i += 1
    args.append("".join(program))
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return args
        current: list[str] = []
        in_quotes = False
        while i < n:
            ch = text[i]
            if ch == "\\":
                start = i
                while i < n and text[i] == "\\":
                    i += 1
                count = i - start
                if i < n and text[i] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i += 1
                    continue
                current.append("\\" * count)
                continue
            if ch == '"':
                if in_quotes and i + 1 < n and text[i + 1] == '"':
                    current.append('"')  # "" inside quotes: a literal quote, still quoted
                    i += 2
                    continue
                in_quotes = not in_quotes
                i += 1
                continue
            if ch in " \t" and not in_quotes:
                break
            current.append(ch)
            i += 1
        args.append("".join(current))


def _program(arg: str) -> str:
    """Base name of a program argument, lower case, without .exe (``C:\\x\\SchTasks.EXE`` → ``schtasks``)."""
    name = re.split(r"[\\/]", arg.strip().strip('"'))[-1].lower()
    return name[:-4] if name.endswith((".exe", ".com")) else name


def _rest_after(cmdline: str, count: int) -> str:
    """The raw text after the first ``count`` arguments (cmd /c keeps its remainder as text)."""
    text = cmdline or ""
    i, n = 0, len(text)
    for index in range(count):
        while i < n and text[i] in " \t":
            i += 1
        in_quotes = False
        while i < n:
            ch = text[i]
            if ch == "\\" and index > 0:
                j = i
                while j < n and text[j] == "\\":
                    j += 1
                if j < n and text[j] == '"' and (j - i) % 2:
                    i = j + 1
                    continue
                i = j
                continue
            if ch == '"':
                in_quotes = not in_quotes
            elif ch in " \t" and not in_quotes:
                break
            i += 1
    return text[i:].strip()


def _cmd_payload(rest: str) -> str:
    """What ``cmd /c REST`` runs: cmd strips one pair of outer quotes when the text starts with one."""
    text = rest.strip()
    if text.startswith('"'):
        end = text.rfind('"')
        if end > 0:
            text = text[1:end] + text[end + 1:]
    return text


# -- the task a command line creates ----------------------------------------------------------------


@dataclass
class TaskCommand:
    """A task operation read from a command line or script block."""

    tool: str  # schtasks, at, powershell
    operation: str  # create, change, delete, run, end, query, unknown
    task: str | None = None  # as written (/tn value, -TaskName, or at's job)
    command: str | None = None  # the action's program (/tr split, -Execute, at's command)
    arguments: str | None = None
    action_text: str | None = None  # /tr exactly as given
    schedule: str | None = None  # /sc value (MINUTE, HOURLY, DAILY, ONCE, ONSTART, ONLOGON, ONIDLE, ONEVENT...)
    modifier: str | None = None  # /mo
    start_time: str | None = None  # /st
    start_date: str | None = None  # /sd
    repetition_seconds: int | None = None  # /sc minute|hourly /mo N, /ri N, -RepetitionInterval
    run_as: str | None = None  # /ru, -User, -UserId
    run_as_password_given: bool = False  # /rp (the password itself is never kept)
    run_level: str | None = None  # /rl HIGHEST -> HighestAvailable
    remote_host: str | None = None  # /s, at \\host, -CimSession
    remote_user: str | None = None  # /u
    xml_file: str | None = None  # /xml
    force: bool = False  # /f
    interactive: bool = False  # /it, at /interactive
    switches: dict[str, str | None] = field(default_factory=dict)  # every switch as given (lower-case key)
    inner_command_line: str | None = None  # the schtasks/at command line itself, when it was wrapped

    @property
    def creates(self) -> bool:
        return self.operation == "create"


_SCHTASKS_OPERATIONS = {"create", "change", "delete", "run", "end", "query", "showsid"}
# Switches that take no value (the rest take the next argument).
_FLAG_SWITCHES = {"f", "it", "np", "z", "v1", "k", "hresult", "i", "enable", "disable", "v", "nh"}
_VALUE_SWITCHES = {"tn", "tr", "sc", "mo", "st", "sd", "ed", "et", "ri", "du", "d", "m", "ru", "rp", "s", "u", "p",
                   "xml", "rl", "delay", "fo", "ec"}
_KNOWN_SWITCHES = _FLAG_SWITCHES | _VALUE_SWITCHES | _SCHTASKS_OPERATIONS
_UNIT_SECONDS = {"minute": 60, "hourly": 3600}
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "."}


def parse_task_command(cmdline: str | None) -> TaskCommand | None:
    """The ``schtasks``/``at``/PowerShell task operation a command line performs, or None."""
    return _parse(cmdline or "", depth=0)


def _parse(cmdline: str, depth: int) -> TaskCommand | None:
    if depth > 4 or not cmdline.strip():
        return None
    argv = split_command_line(cmdline)
    if not argv:
        return None
    program = _program(argv[0])
    if program == "schtasks":
        return _schtasks(argv[1:], cmdline)
    if program == "at" and len(argv) > 1:
        return _at(argv[1:], cmdline)
    if program in ("powershell", "pwsh"):
        decoded = decode_powershell(cmdline)
        script = decoded if decoded else _powershell_command_text(cmdline)
        if script:
            return parse_powershell_task(script) or _parse_script_commands(script, depth)
        return None
    if program == "cmd":
        for index, arg in enumerate(argv[1:], start=1):
            if arg.lower() in ("/c", "/k", "/r"):
                payload = _cmd_payload(_rest_after(cmdline, index + 1))
                found = _parse_chain(payload, depth + 1)
                if found:
                    return found
                break
        return None
    if program in ("start", "call") and len(argv) > 1:
        return _parse(_rest_after(cmdline, 1), depth + 1)
    return None


def _parse_chain(text: str, depth: int) -> TaskCommand | None:
    """cmd runs ``a & b && c | d``: the first part that is a task command counts."""
    text = re.sub(r"\d?>>?\s*&\d", " ", text)  # 2>&1 is a redirection, not a command separator
    for part in re.split(r"\s*(?:&&|\|\||&|\|)\s*", text):
        part = re.sub(r"\s\d?>>?\s*\S+", " ", part)  # redirections are not arguments
        found = _parse(part.strip(), depth)
        if found:
            return found
    return None


def _parse_script_commands(script: str, depth: int) -> TaskCommand | None:
    for line in re.split(r"[;\n]", script):
        line = line.strip().lstrip("&").strip()
        if re.match(r"(?i)(?:[\w:\\/.%]*\\)?(?:schtasks|at)(?:\.exe)?\s", line):
            found = _parse(line, depth + 1)
            if found:
                return found
    return None


def _powershell_command_text(cmdline: str) -> str | None:
    """The script of ``powershell [...] -Command TEXT...`` (everything after the switch, as PowerShell joins it)."""
    argv = split_command_line(cmdline)
    for index, arg in enumerate(argv[1:], start=1):
        name = arg.lower().lstrip("-/")
        if arg[:1] in "-/" and name and "command".startswith(name):
            return " ".join(argv[index + 1:]) or None
    return None


def _switches(args: list[str]) -> tuple[str | None, dict[str, str | None]]:
    """The operation (/create ...) and every switch with its value; a value never starts another switch."""
    operation = None
    switches: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg[:1] in "/-" and len(arg) > 1:
            name = arg[1:].lower()
            if operation is None and name in _SCHTASKS_OPERATIONS:
                operation = name
                i += 1
                continue
            following = args[i + 1] if i + 1 < len(args) else None
            takes_value = name not in _FLAG_SWITCHES and following is not None and not (
                following[:1] in "/-" and following[1:].lower() in _KNOWN_SWITCHES)
            switches.setdefault(name, following if takes_value else None)
            i += 2 if takes_value else 1
            continue
        i += 1
    return operation, switches


def _schtasks(args: list[str], cmdline: str) -> TaskCommand:
    operation, switches = _switches(args)
    found = TaskCommand(tool="schtasks", operation=operation or "unknown", switches=switches, inner_command_line=cmdline)
    found.task = (switches.get("tn") or "").strip() or None
    if switches.get("tr"):
        found.action_text = switches["tr"]
        found.command, found.arguments = split_action(switches["tr"])
    found.schedule = (switches.get("sc") or "").upper() or None
    found.modifier = switches.get("mo")
    found.start_time = switches.get("st")
    found.start_date = switches.get("sd")
    found.run_as = switches.get("ru")
    found.run_as_password_given = "rp" in switches
    if (switches.get("rl") or "").lower() == "highest":
        found.run_level = "HighestAvailable"
    elif switches.get("rl"):
        found.run_level = "LeastPrivilege"
    host = (switches.get("s") or "").strip().lstrip("\\") or None
    found.remote_host = host
    found.remote_user = switches.get("u")
    found.xml_file = switches.get("xml")
    found.force = "f" in switches
    found.interactive = "it" in switches
    found.repetition_seconds = _schtasks_repetition(found.schedule, found.modifier, switches.get("ri"))
    return found


def _schtasks_repetition(schedule: str | None, modifier: str | None, interval: str | None) -> int | None:
    """/sc MINUTE|HOURLY /mo N repeats every N units; /ri N (minutes) repeats the other schedules."""
    unit = _UNIT_SECONDS.get((schedule or "").lower())
    if unit:
        try:
            return max(1, int(modifier or "1")) * unit
        except ValueError:
            return unit
    if interval:
        try:
            return int(interval) * 60
        except ValueError:
            return None
    return None


_AT_TIME = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]m?)?$", re.IGNORECASE)


def _at(args: list[str], cmdline: str) -> TaskCommand | None:
    """``at [\\\\computer] [[id] [/delete] | time [/interactive] [/every:d|/next:d] command]``."""
    found = TaskCommand(tool="at", operation="unknown", inner_command_line=cmdline)
    rest = list(args)
    if rest and rest[0].startswith("\\\\"):
        found.remote_host = rest.pop(0).lstrip("\\")
    if any(a.lower().startswith("/del") for a in rest):
        found.operation = "delete"
        return found
    if not rest or not _AT_TIME.match(rest[0]):
        return found if found.remote_host or not rest else None
    found.operation = "create"
    found.start_time = rest.pop(0)
    while rest and rest[0].startswith("/"):
        switch = rest.pop(0)
        lower = switch.lower()
        if lower.startswith("/interactive"):
            found.interactive = True
        elif lower.startswith(("/every:", "/next:")):
            found.schedule = switch[1:]
    if rest:
        text = " ".join(_quote_arg(a) for a in rest)
        found.action_text = text
        found.command, found.arguments = split_action(text)
    found.run_as = "SYSTEM"  # at.exe jobs run as SYSTEM unless the service account was changed
    return found


def _quote_arg(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or "\t" in arg) and not arg.startswith('"') else arg


def split_action(text: str | None) -> tuple[str | None, str | None]:
    """``"C:\\Program Files\\x.exe" -a b`` → (``C:\\Program Files\\x.exe``, ``-a b``); unquoted: the first word."""
    value = (text or "").strip()
    if not value:
        return None, None
    if value.startswith('"'):
        end = value.find('"', 1)
        if end > 0:
            return value[1:end], value[end + 1:].strip() or None
        return value.strip('"'), None
    # An unquoted path with spaces (C:\Program Files\x\y.exe args): take up to the first .exe/.bat/... word end.
    match = re.match(r"^(.+?\.(?:exe|com|bat|cmd|ps1|vbs|js|hta|wsf|msc|cpl|scr))(?=\s|$)(.*)$", value, re.IGNORECASE)
    if match and " " in match.group(1) and re.match(r"^[A-Za-z]:\\|^%", match.group(1)):
        return match.group(1), match.group(2).strip() or None
    head, _, tail = value.partition(" ")
    return head, tail.strip() or None


# -- PowerShell ScheduledTasks cmdlets ---------------------------------------------------------------

_PS_VALUE = r"""(?:"((?:[^"`]|`.)*)"|'((?:[^']|'')*)'|(\$[\w:]+)|([^\s;|)`]+))"""


def _ps_param(text: str, names: str) -> str | None:
    match = re.search(rf"(?i)-(?:{names})\s*:?\s+{_PS_VALUE}", text)
    if not match:
        return None
    for group in match.groups():
        if group is not None:
            return group.replace("''", "'").replace('`"', '"')
    return None


def _ps_variables(script: str) -> dict[str, str]:
    """``$name = <cmdlet call ...>`` assignments (to the end of the line or statement)."""
    out: dict[str, str] = {}
    for match in re.finditer(r"(?im)^\s*\$(\w+)\s*=\s*(.+)$", script):
        out[match.group(1).lower()] = match.group(2)
    return out


def _resolve(value: str | None, variables: dict[str, str], script: str) -> str:
    if value and value.startswith("$"):
        return variables.get(value[1:].lower(), "")
    return value or ""


def parse_powershell_task(script: str | None) -> TaskCommand | None:
    """The task a ``Register-ScheduledTask`` script creates (its action, trigger and principal parts)."""
    text = script or ""
    register = re.search(r"(?i)\bRegister-ScheduledTask\b(.*)", text, re.DOTALL)
    if not register:
        return None
    call = register.group(1).split("\n", 1)[0]
    variables = _ps_variables(text)
    found = TaskCommand(tool="powershell", operation="create", inner_command_line=("Register-ScheduledTask" + call).strip())
    name = _ps_param(call, "TaskName")
    folder = _ps_param(call, "TaskPath")
    if name and not name.startswith("$"):
        found.task = (folder.rstrip("\\") + "\\" + name) if folder and not folder.startswith("$") else name
    action = _cmdlet_text(call, "Action", "New-ScheduledTaskAction", variables, text)
    execute = _ps_param(action, "Execute")
    if execute and not execute.startswith("$"):
        found.command = execute
        found.arguments = _ps_param(action, "Argument") or None
    trigger = _cmdlet_text(call, "Trigger", "New-ScheduledTaskTrigger", variables, text)
    if trigger:
        found.schedule = next((kind.upper() for kind in ("AtLogOn", "AtStartup", "Daily", "Weekly", "Once")
                               if re.search(rf"(?i)-{kind}\b", trigger)), None)
        found.repetition_seconds = _ps_repetition(trigger, variables)
    principal = _resolve(_ps_param(call, "Principal"), variables, text)
    found.run_as = _ps_param(call, "User") or _ps_param(principal, "UserId|GroupId") or None
    if re.search(r"(?i)-RunLevel\s+Highest", call + " " + principal):
        found.run_level = "HighestAvailable"
    session = _ps_param(call, "CimSession")
    if session and not session.startswith("$"):
        found.remote_host = session
    if found.task is None and found.command is None:
        return None
    return found


def _cmdlet_text(call: str, parameter: str, cmdlet: str, variables: dict[str, str], script: str) -> str:
    """The ``New-ScheduledTask*`` call a Register-ScheduledTask parameter refers to: inline, a variable, or the script's only one."""
    value = _ps_param(call, parameter)
    if value and value.startswith("$"):
        return variables.get(value[1:].lower(), "")
    inline = re.search(rf"(?i)-{parameter}\s*:?\s*\(\s*({cmdlet}\b.*)", call)
    if inline:
        return inline.group(1)
    anywhere = re.search(rf"(?i){cmdlet}\b[^\n]*", script)
    return anywhere.group(0) if anywhere else ""


def _ps_repetition(trigger: str, variables: dict[str, str]) -> int | None:
    """``-RepetitionInterval (New-TimeSpan -Minutes N)``, a variable holding one, or an ISO ``PTnM`` text."""
    match = re.search(r"(?i)-RepetitionInterval\s*:?\s*(.*)", trigger)
    if not match:
        return None
    text = match.group(1)
    if text.startswith("$"):
        text = variables.get(re.match(r"\$(\w+)", text).group(1).lower(), "") if re.match(r"\$(\w+)", text) else ""
    for pattern, unit in ((r"(?i)-Minutes?\s+(\d+)", 60), (r"(?i)-Hours?\s+(\d+)", 3600), (r"(?i)-Seconds?\s+(\d+)", 1),
                          (r"(?i)PT(\d+)M", 60), (r"(?i)PT(\d+)H", 3600), (r"(?i)PT(\d+)S", 1)):
        found = re.search(pattern, text)
        if found:
            return int(found.group(1)) * unit
    return None


# -- -EncodedCommand ----------------------------------------------------------------------------------

_ENCODED = re.compile(r"(?i)(?:^|\s)[-/–—](e[a-z]*)\s+['\"]?([A-Za-z0-9+/]{8,}={0,2})")


def decode_powershell(cmdline: str | None) -> str | None:
    """The decoded text of every ``-EncodedCommand`` in a PowerShell command line, or None."""
    text = cmdline or ""
    if not re.search(r"(?i)powershell|pwsh", text):
        return None
    decoded = []
    for switch, payload in _ENCODED.findall(text):
        switch = switch.lower()
        if not ("encodedcommand".startswith(switch) or switch == "ec"):
            continue
        if len(payload) % 4:
            payload += "=" * (-len(payload) % 4)
        try:
            value = base64.b64decode(payload, validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if value and all(ch.isprintable() or ch in "\r\n\t" for ch in value):
            decoded.append(value)
    return "\n".join(decoded) if decoded else None


def is_remote(host: str | None, local_host: str | None) -> bool:
    """Whether a /s target names another computer than the one the command ran on."""
    if not host:
        return False
    name = host.strip().lstrip("\\").lower()
    if name in _LOCAL_NAMES:
        return False
    local = (local_host or "").lower()
    return not (local and (name == local or local.split(".")[0] == name.split(".")[0]))


# -- the rebuilt definition ---------------------------------------------------------------------------

_TRIGGER_KIND = {
    "MINUTE": "time", "HOURLY": "time", "ONCE": "time", "DAILY": "daily", "WEEKLY": "weekly", "MONTHLY": "monthly_date",
    "ONSTART": "boot", "ONLOGON": "logon", "ONIDLE": "idle", "ONEVENT": "event",
    "ATLOGON": "logon", "ATSTARTUP": "boot",
}


def to_definition(found: TaskCommand, *, provenance: Provenance, host: str | None, creating_user: str | None) -> TaskDefinition | None:
    """The task a creating (or /change-ing) command line defines, as a definition every rule judges.

    Source ``command_line``; ``details`` keep the creating command, host and user and the remote
    target (``/s``), so the examiner sees who created it where. None when the command defines no task
    (a /run, /delete or /query, or a name-less command).
    """
    if found.operation not in ("create", "change") or not found.task:
        return None
    from triage.taskpath import display_task_path

    actions = []
    if found.command:
        actions.append(Action(kind="exec", command=found.command, arguments=found.arguments))
    triggers = []
    kind = _TRIGGER_KIND.get((found.schedule or "").upper().split(":")[0])
    if kind or found.repetition_seconds:
        seconds = found.repetition_seconds
        triggers.append(Trigger(kind=kind or "time", repetition_seconds=seconds,
                                repetition_interval=f"PT{seconds // 60}M" if seconds and seconds % 60 == 0 else
                                (f"PT{seconds}S" if seconds else None)))
    run_as = found.run_as
    details = {
        "created_by_command": found.inner_command_line,
        "tool": found.tool,
        "operation": found.operation,
        "creating_host": host,
        "creating_user": creating_user,
    }
    if found.remote_host:
        details["remote_target"] = found.remote_host
        details["remote_target_is_other_host"] = is_remote(found.remote_host, host)
    if found.remote_user:
        details["remote_user"] = found.remote_user
    if found.xml_file:
        details["xml_file"] = found.xml_file
    if found.schedule:
        details["schedule"] = found.schedule
    if found.modifier:
        details["modifier"] = found.modifier
    if found.start_time:
        details["start_time"] = found.start_time
    if found.start_date:
        details["start_date"] = found.start_date
    if found.run_as_password_given:
        details["run_as_password_given"] = True
    if found.interactive:
        details["interactive"] = True
    return TaskDefinition(
        task=display_task_path(found.task), source="command_line", provenance=provenance, host=host,
        user_id=run_as, run_level=found.run_level, actions=actions, triggers=triggers, details=details,
    )
