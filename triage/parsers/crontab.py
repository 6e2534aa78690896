"""Crontab parser (Vixie cron / cronie / Debian cron rules) and a next-run calculator.

Why our own parser: dissect's ``cronjobs`` splits ``@reboot`` lines by position and keeps the
user column inside the command unless a tab follows it (peers.md). Here the file's role decides
the layout: /etc/crontab and /etc/cron.d files have a user column, per-user spool crontabs do not.

Faithful to cron, not to convenience:
- a trailing backslash does NOT continue a line (Vixie cron and cronie read one line per entry);
  such lines are kept as written and flagged in ``errors``;
- ``# ...`` after a command is part of the command (the shell sees it), not a crontab comment;
- an unescaped ``%`` ends the command; the rest is fed to the command's stdin, and only the part
  before it appears in cron's ``CMD (...)`` log line (see :func:`logged_command`);
- commented-out entries are comments (stock templates are full of valid-looking examples).

Only :class:`CrontabError` is raised, and only by :func:`next_run` / :func:`parse_schedule`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from triage.parsers import ParseError
from triage.records import Provenance, UnixJob


class CrontabError(ParseError):
    """A schedule that cron would not accept, or one with no computable next run."""


SPECIALS = {
    "@reboot": None,
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
ENV_NAMES_OF_NOTE = ("SHELL", "PATH", "MAILTO", "CRON_TZ", "HOME", "LOGNAME", "MAILFROM", "CONTENT_TYPE")

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# field name, lowest, highest, names allowed
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day_of_month", 1, 31, {}), ("month", 1, 12, _MONTHS), ("day_of_week", 0, 7, _DAYS))
_ENV = re.compile(r"^\s*([^\s=]+)\s*=\s*(.*?)\s*$")
_JOB_USER_COLUMN = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S.*)$")
_JOB_NO_USER = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S.*)$")
_SPECIAL_USER_COLUMN = re.compile(r"^\s*(@\w+)\s+(\S+)\s+(\S.*)$")
_SPECIAL_NO_USER = re.compile(r"^\s*(@\w+)\s+(\S.*)$")


@dataclass
class CrontabResult:
    """Everything one crontab file says: jobs (with line numbers), environment lines, problems."""

    jobs: list[UnixJob] = field(default_factory=list)
    environment: list[tuple[int, str, str]] = field(default_factory=list)  # (line, name, value)
    errors: list[str] = field(default_factory=list)


def parse_crontab(text: str, location: str, *, user_column: bool, owner: str | None = None) -> CrontabResult:
    """Parse one crontab. ``user_column``: True for /etc/crontab and /etc/cron.d/*; ``owner``: the
    crontab's user for spool crontabs (its file name)."""
    result = CrontabResult()
    env: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        env_match = _ENV.match(raw)
        if env_match and not _looks_like_job(stripped):
            name, value = env_match.group(1), _unquote(env_match.group(2))
            env[name] = value
            result.environment.append((number, name, value))
            continue
        job = _job_from_line(number, raw, location, user_column, owner, env)
        if job is None:
            result.errors.append(f"{location}:{number}: not a cron entry or variable: {stripped[:120]!r}")
            continue
        if stripped.endswith("\\"):
            problem = "line ends with a backslash; cron does not join lines, the next line is a separate entry"
            job.errors.append(problem)
            result.errors.append(f"{location}:{number}: {problem}")
        result.jobs.append(job)
    return result


def _looks_like_job(stripped: str) -> bool:
    """Vixie cron reads a line as a variable only if it is not a schedule: '*/5 ... a=b' is a job."""
    first = stripped.split(None, 1)[0]
    return first.startswith("@") or _field_ok(first.split("=", 1)[0], 0)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _job_from_line(number: int, raw: str, location: str, user_column: bool, owner: str | None, env: dict[str, str]) -> UnixJob | None:
    """One entry, or None when the line is not a valid cron entry."""
    stripped = raw.strip()
    if stripped.startswith("@"):
        m = (_SPECIAL_USER_COLUMN if user_column else _SPECIAL_NO_USER).match(stripped)
        if not m or m.group(1).lower() not in SPECIALS:
            return None
        schedule = m.group(1).lower()
        user = m.group(2) if user_column else owner
        command = m.group(3) if user_column else m.group(2)
        fields = {"special": schedule}
    else:
        m = (_JOB_USER_COLUMN if user_column else _JOB_NO_USER).match(stripped)
        if not m:
            return None
        values = m.groups()[:5]
        if not all(_field_ok(value, i) for i, value in enumerate(values)):
            return None
        schedule = " ".join(values)
        user = m.group(6) if user_column else owner
        command = m.group(7) if user_column else m.group(6)
        fields = {name: value for (name, *_), value in zip(_FIELDS, values)}
    runs, stdin = split_percent(command)
    details: dict = {"line": number, "fields": fields, "user_column": user_column}
    if env:
        details["environment"] = dict(sorted(env.items()))
    if stdin is not None:
        details["stdin"] = stdin
        details["runs"] = runs
    return UnixJob(
        kind="cron",
        entry=f"{location}:{number}",
        provenance=Provenance(artifact="crontab", location=location, value_name=f"line {number}", raw=raw),
        user=user,
        schedule=schedule,
        command=command,
        enabled=True,
        details=details,
    )


def split_percent(command: str) -> tuple[str, str | None]:
    """Cron's % rule: the first unescaped % ends the command, the rest (with % as newlines) is stdin."""
    out = []
    i = 0
    while i < len(command):
        ch = command[i]
        if ch == "\\" and i + 1 < len(command) and command[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        if ch == "%":
            return "".join(out), command[i + 1 :].replace("%", "\n")
        out.append(ch)
        i += 1
    return "".join(out), None


def logged_command(command: str) -> str:
    """The command text as cron writes it in ``CMD (...)``: before the first unescaped %."""
    return split_percent(command)[0]


def _field_ok(value: str, index: int) -> bool:
    try:
        _expand(value, index)
    except CrontabError:
        return False
    return True


def _number(token: str, index: int) -> int:
    _, low, high, names = _FIELDS[index]
    lowered = token.lower()
    if lowered in names:
        return names[lowered]
    if not re.fullmatch(r"[0-9]+", token):
        raise CrontabError(f"{_FIELDS[index][0]}: {token!r} is not a number")
    value = int(token)
    if not low <= value <= high:
        raise CrontabError(f"{_FIELDS[index][0]}: {value} outside {low}-{high}")
    return value


def _expand(value: str, index: int) -> set[int]:
    """The set of values one field matches (Vixie syntax: lists, ranges, steps, names)."""
    _, low, high, _ = _FIELDS[index]
    if not value:
        raise CrontabError("empty field")
    out: set[int] = set()
    for part in value.split(","):
        base, _, step_text = part.partition("/")
        if _ and not re.fullmatch(r"[0-9]+", step_text):
            raise CrontabError(f"bad step in {part!r}")
        step = int(step_text) if step_text else 1
        if step == 0:
            raise CrontabError(f"zero step in {part!r}")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _number(a, index), _number(b, index)
            if first > last:
                raise CrontabError(f"range {base!r} runs backwards")
        else:
            first = _number(base, index)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    if index == 4 and 7 in out:  # Sunday is 0 or 7
        out.discard(7)
        out.add(0)
    return out


@dataclass(frozen=True)
class Schedule:
    """A 5-field schedule expanded to sets, with Vixie's day-of-month/day-of-week rule."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        # Vixie/cronie: if either field starts with '*', both must match; otherwise either may.
        return (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)


@lru_cache(maxsize=1024)
def parse_schedule(schedule: str) -> Schedule:
    """Expand ``"m h dom mon dow"`` or a nickname; raises CrontabError (also for @reboot)."""
    text = schedule.strip()
    if text.startswith("@"):
        if text.lower() not in SPECIALS:
            raise CrontabError(f"unknown nickname {text!r}")
        expanded = SPECIALS[text.lower()]
        if expanded is None:
            raise CrontabError("@reboot runs when cron starts, not at a clock time")
        text = expanded
    parts = text.split()
    if len(parts) != 5:
        raise CrontabError(f"expected 5 fields, got {len(parts)}")
    sets = [frozenset(_expand(p, i)) for i, p in enumerate(parts)]
    return Schedule(*sets, dom_star=parts[2].startswith("*"), dow_star=parts[4].startswith("*"))


def next_run(schedule: str, after: datetime, tz: tzinfo) -> datetime:
    """The first time strictly after ``after`` at which cron starts the job, as an aware UTC datetime.

    The schedule is matched on the wall clock of ``tz`` (the machine's zone, or the entry's CRON_TZ).
    Wall-clock times a DST change skips are not matched; Debian cron's catch-up rules are not modelled.
    """
    if after.tzinfo is None:
        raise CrontabError("'after' must be time-zone aware")
    sched = parse_schedule(schedule)
    try:
        return _next_match(sched, after, tz)
    except (OverflowError, ValueError) as exc:  # past year 9999
        raise CrontabError(f"schedule {schedule!r}: no next run ({exc})") from exc


def _next_match(sched: Schedule, after: datetime, tz: tzinfo) -> datetime:
    local_after = after.astimezone(tz)
    day = local_after.date()
    hours = sorted(sched.hours)
    minutes = sorted(sched.minutes)
    for _ in range(366 * 8 + 1):  # Feb 29 on a given weekday can take years
        if sched.day_matches(day):
            for hour in hours:
                for minute in minutes:
                    wall = datetime.combine(day, time(hour, minute))
                    aware = wall.replace(tzinfo=tz)
                    if aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != wall:
                        continue  # a wall-clock time the DST change skips
                    if aware > after:
                        return aware.astimezone(timezone.utc)
        day += timedelta(days=1)
    raise CrontabError("schedule never fires")


def normalise_command(command: str) -> str:
    """A command as compared between a crontab and cron's log: runs of blanks as one space, none at
    either end. Cron logs the command as read (a crontab line's trailing spaces stay in ``CMD (...)``)
    and syslog daemons differ in what they keep; the parser strips the line. Comparing collapsed text
    links both."""
    return " ".join(command.split())


def fires_within(schedule: str, local: datetime, *, late_minutes: int = 1, weekday_known: bool = True) -> bool:
    """Whether cron starts ``schedule`` at the wall-clock minute ``local`` or up to ``late_minutes``
    before it (a run is logged when it starts, in the minute it fires or, on a busy host or with
    cronie's RANDOM_DELAY, a little later). ``weekday_known``: False when the year (and so the
    weekday) of a syslog line is unknown; the day-of-week field is then not checked.
    Raises CrontabError for @reboot and invalid schedules."""
    sched = parse_schedule(schedule)
    minute = local.replace(second=0, microsecond=0, tzinfo=None)
    for back in range(max(0, late_minutes) + 1):
        moment = minute - timedelta(minutes=back)
        if moment.minute not in sched.minutes or moment.hour not in sched.hours or moment.month not in sched.months:
            continue
        if weekday_known:
            if sched.day_matches(moment.date()):
                return True
        elif not sched.dow_star or sched.dom_star or moment.day in sched.days:
            return True  # a restricted day of week might match: with the weekday unknown, do not exclude
    return False


# Programs that run the command given after their own options (``flock -e LOCK CMD``, ``nice -n 5 CMD``).
_WRAPPERS = {
    "nice": {"-n", "--adjustment"}, "ionice": {"-c", "-n", "-p", "-t", "--class", "--classdata"},
    "nohup": set(), "setsid": set(), "chronic": set(), "exec": set(), "command": set(), "time": set(),
    "timeout": {"-s", "-k", "--signal", "--kill-after"}, "flock": {"-w", "-E", "--timeout", "--conflict-exit-code"},
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}, "su": set(), "env": {"-u", "-C", "--unset", "--chdir"},
    "run-one": set(), "cronic": set(), "xargs": set(),
}
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"}
_INTERPRETERS = _SHELLS | {"python", "python2", "python3", "perl", "php", "ruby", "node", "nodejs", "lua"}
_NOT_PROGRAMS = {"cd", "test", "[", "[[", "true", "false", ":", "export", "set", "if", "then", "else", "fi", "do",
                 "done", "while", "for", "!", "{", "}", "(", ")", "echo", "sleep", "exit", "return", "umask", "."}
_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")", "{", "}", "then", "do", "else"}


def programs_run(command: str) -> list[str]:
    """The programs (and scripts handed to an interpreter) a cron or unit command starts, as written.

    Only these are where a path matters: ``flock -e /tmp/x.lock /opt/app/x.sh`` runs /opt/app/x.sh;
    the lock file is an argument. ``sh -c '...'`` is read into; redirections and assignments are
    skipped. A best-effort shell reading, never raising: unparseable quoting falls back to splitting
    on blanks."""
    import shlex

    out: list[str] = []
    _programs(command, out, depth=0, shlex=shlex)
    seen: list[str] = []
    for program in out:
        if program not in seen:
            seen.append(program)
    return seen


_FD_DUP = re.compile(r"\d*[<>]&(?:\d+|-)")
_REDIRECT = re.compile(r"(?:&>>?|\d*>>?&?|\d*<)\s*[^\s;&|()]+")


def _tokens(text: str, shlex) -> list[str]:
    """Shell words with redirections removed (their targets are files written, not programs run)."""
    text = _REDIRECT.sub(" ", _FD_DUP.sub(" ", text))
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:
        return text.replace(";", " ; ").replace("&&", " && ").replace("||", " || ").replace("|", " | ").split()


def _programs(text: str, out: list[str], depth: int, shlex) -> None:
    if depth > 3:
        return
    tokens = _tokens(text, shlex)
    start = True
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in _SEPARATORS or set(token) <= set(";&|()"):
            start = True
            i += 1
            continue
        if not start:
            i += 1
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token) or re.match(r"^\d*[<>]", token):
            if re.match(r"^\d*[<>]+&?$", token):
                i += 1  # the redirection's target is the next word
            i += 1
            continue
        name = token.rsplit("/", 1)[-1]
        if name in _NOT_PROGRAMS:
            start = False
            i += 1
            continue
        if name in _WRAPPERS:
            takes_value = _WRAPPERS[name]
            i += 1
            while i < len(tokens) and tokens[i].startswith("-"):
                i += 2 if tokens[i] in takes_value else 1
            if name == "flock" and i < len(tokens) and tokens[i] not in _SEPARATORS:
                i += 1  # the lock file or directory
            if name == "timeout" and i < len(tokens):
                i += 1  # the duration
            if name == "su" and i < len(tokens):
                i += 1  # the user
            continue
        out.append(token)
        start = False
        i += 1
        if name.rstrip("0123456789.") in _INTERPRETERS or name in _INTERPRETERS:
            while i < len(tokens) and tokens[i].startswith("-") and tokens[i] not in ("-c", "-e", "-r"):
                i += 1
            if i < len(tokens) and tokens[i] in ("-c", "-e", "-r"):
                if name in _SHELLS or name.rstrip("0123456789.") in _SHELLS:
                    if i + 1 < len(tokens):
                        _programs(tokens[i + 1], out, depth + 1, shlex)
                i += 2
            elif i < len(tokens) and tokens[i] not in _SEPARATORS:
                out.append(tokens[i])  # the script handed to the interpreter
                i += 1
