"""Linux/Unix scheduled jobs in an opened Target: cron, anacron, cron.{hourly,...} scripts, at jobs,
systemd timers, and the log lines that show them running — each run tied to the entry explaining it.

Where things live follows the daemons, not dissect's plugins: per-user crontabs in
/var/spool/cron/crontabs (Debian), /var/spool/cron (RHEL), /var/cron/tabs and /usr/lib/cron/tabs
(BSD, macOS); at spools /var/spool/cron/atjobs, /var/spool/at, /var/at/jobs; unit files in the
system and user search paths in systemd's precedence order (/etc before /run before /usr/lib), with
drop-ins and ``*.wants`` links. File facts come from :mod:`triage.collect.filefacts`.

Output order is fixed: jobs sorted by (kind, entry), then events sorted by (time, file, offset).
"""

from __future__ import annotations

import posixpath
import re
import stat as stat_module
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.collect import Context, Source
from triage.collect.filefacts import file_facts, inflate_capped, read_capped, read_error, read_small_file
from triage.parsers import anacrontab, atjob, crontab, cronlog, systemd_unit
from triage.records import FileFacts, Provenance, Stamp, TaskEvent, UnixJob
from triage.timeutil import iso, local_stamp, system_zone, tzif_zone, zone_from_clock_text, zone_name_from_link
from triage.timeorder import utc_key
from triage.vocab import Basis, Precision

SYSTEM_CRONTABS = ("/etc/crontab",)
CRON_D_DIRS = ("/etc/cron.d", "/usr/local/etc/cron.d")
USER_CRONTAB_DIRS = ("/var/spool/cron/crontabs", "/var/spool/cron", "/var/cron/tabs", "/usr/lib/cron/tabs", "/var/at/tabs", "/etc/crontabs")  # last: busybox (Alpine)
SCRIPT_DIRS = (("hourly", "/etc/cron.hourly"), ("daily", "/etc/cron.daily"), ("weekly", "/etc/cron.weekly"), ("monthly", "/etc/cron.monthly"))
ACCESS_FILES = ("/etc/cron.allow", "/etc/cron.deny", "/usr/lib/cron/cron.allow", "/usr/lib/cron/cron.deny", "/var/cron/allow", "/var/cron/deny")
ANACRONTABS = ("/etc/anacrontab",)
ANACRON_SPOOL = "/var/spool/anacron"
AT_SPOOLS = ("/var/spool/cron/atjobs", "/var/spool/at", "/var/at/jobs")
AT_SPOOL_EXTRAS = {".SEQ", ".lockfile"}
SYSTEM_UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
GLOBAL_USER_UNIT_DIRS = ("/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user")
SYSTEM_TIMER_STAMPS = "/var/lib/systemd/timers"
# Debian rsyslog writes cron.log when its cron line is enabled; RHEL writes cron; busybox and RHEL messages.
LOG_PREFIXES = (("/var/log", "syslog", "syslog"), ("/var/log", "cron", "cron"), ("/var/log", "cron.log", "cron"), ("/var/log", "messages", "syslog"))
JOURNAL_DIRS = ("/var/log/journal",)
RUN_PARTS_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")  # Debian run-parts' default (LANANA + Debian) rule
# Real crontabs, units, at jobs and anacrontabs are a few KB; anything above this is hashed, not parsed
# (an attacker's 2 GB "crontab" must not be read into memory).
MAX_JOB_FILE_BYTES = 4 * 1024 * 1024
# Each crontab line can be a job (and a task in every output): past this many lines the rest is a gap.
MAX_CRONTAB_LINES = 10_000
# Logs: the first MAX_LOG_BYTES of each file (after gunzip) are parsed, and at most MAX_LOG_EVENTS
# events kept per file; the rest is a gap. Each parsed cron line costs about 2 KB of memory.
MAX_LOG_BYTES = 16 * 1024 * 1024
MAX_LOG_EVENTS = 50_000


@dataclass
class _Host:
    """What the collectors share while walking one target."""

    source: Source
    ctx: Context
    tz: tzinfo | None
    users: dict[int, str] = field(default_factory=dict)
    homes: dict[str, str] = field(default_factory=dict)
    jobs: list[UnixJob] = field(default_factory=list)
    crontab_files: dict[str, str] = field(default_factory=dict)  # per-user crontab path → user

    @property
    def evidence(self) -> str:
        return self.source.name

    def gap(self, location: str, problem: str) -> None:
        self.ctx.gap(self.evidence, location, problem)

    def path(self, text: str) -> Any:
        return self.source.target.fs.path(text)

    def listdir(self, text: str) -> list[Any]:
        """Entries of a directory, sorted by name; [] when absent, a gap when unreadable."""
        path = self.path(text)
        try:
            if not path.is_dir():
                return []
            return sorted(path.iterdir(), key=lambda p: p.name)
        except Exception as exc:  # dissect raises its own error types for damaged file systems
            self.gap(text, f"cannot list directory: {exc}")
            return []

    def read(self, path: Any, limit: int = MAX_JOB_FILE_BYTES) -> tuple[FileFacts, bytes] | None:
        """A file's facts and bytes; None (and a gap) when unreadable or larger than ``limit``."""
        try:
            facts, data = read_small_file(path, limit)
        except Exception as exc:
            self.gap(str(path), f"cannot read file: {read_error(exc)}")
            return None
        if data is None:
            self.gap(str(path), f"file too large for a scheduled-job file ({facts.size} bytes, SHA-256 {facts.sha256}); "
                                "hashed but not parsed")
            return None
        return facts, data

    def mtime(self, facts: FileFacts) -> datetime | None:
        for stamp in facts.times:
            if stamp.meaning == "modified" and stamp.utc:
                return datetime.fromisoformat(stamp.utc.replace("Z", "+00:00"))
        return None

    def owner_name(self, facts: FileFacts) -> str | None:
        if not facts.owner or ":" not in facts.owner:
            return None
        uid = facts.owner.split(":", 1)[0]
        return self.users.get(int(uid)) if uid.isdigit() else None


def collect(source: Source, ctx: Context) -> Iterator[UnixJob | TaskEvent]:
    """Every cron/anacron/at/timer entry on a Unix-like target, then every log line about them."""
    target = source.target
    if target is None:
        return
    family = (source.os_family or _os_of(target) or "").lower()
    if family == "windows":
        return
    host = _Host(source=source, ctx=ctx, tz=source.tz)
    if host.tz is None:
        host.tz, name, where = machine_zone(host)
        if host.tz is not None and not source.host.timezone:
            source.host.timezone = name
            source.host.timezone_source = where
    _load_users(host)
    ctx.progress(f"{source.name}: reading cron, anacron, at and systemd timers")
    events: list[TaskEvent] = []
    # A stage that fails (MemoryError included) is one gap; the jobs and events found so far are kept.
    for stage, run in (("cron", _cron), ("cron scripts", _cron_scripts), ("anacron", _anacron), ("at", _at_jobs),
                       ("systemd timers", _timers), ("logs", lambda h: _logs(h, events)),
                       ("linking log lines to jobs", lambda h: _link(h, events))):
        try:
            run(host)
        except Exception as exc:
            host.gap(f"({stage})", f"{stage} not fully read: {read_error(exc)}; what was found before is kept")
        if stage == "systemd timers" and _exists(host, "/etc/crontab", "/etc/cron.d", "/var/spool/cron", "/etc/anacrontab",
                                                 "/etc/systemd/system"):
            ctx.examined(source.name, "crontabs", "/", host=source.host.hostname)  # cron, anacron, at, timers: the tree's
        if stage == "logs" and _exists(host, "/var/log"):
            ctx.examined(source.name, "cron_logs", "/var/log", host=source.host.hostname)
    yield from sorted(host.jobs, key=lambda j: (j.kind, j.entry))
    yield from sorted(events, key=lambda e: (utc_key(e.time.utc), e.provenance.location, e.provenance.offset or 0))


def _exists(host: _Host, *paths: str) -> bool:
    """Whether the tree holds any of these places (a tree of logs alone has read no crontab)."""
    for text in paths:
        try:
            if host.path(text).exists():
                return True
        except Exception:  # an unreadable place is not a read store
            continue
    return False


def _os_of(target: Any) -> str | None:
    try:
        return str(target.os)
    except Exception:
        return None


ZONE_FILES = ("/etc/timezone", "/etc/sysconfig/clock", "/etc/conf.d/clock", "/etc/TZ")


def machine_zone(host: _Host) -> tuple[tzinfo | None, str | None, str | None]:
    """(zone, name, where it was found) from the places Linux keeps its zone, in this order:
    ``/etc/localtime`` (what libc and systemd use; ``timedatectl set-timezone`` writes it as a link
    into zoneinfo, so systemd keeps no other file), ``/etc/timezone`` (Debian), ``/etc/sysconfig/clock``
    ``ZONE=`` (RHEL, SUSE), ``/etc/conf.d/clock`` (Gentoo), ``/etc/TZ`` (busybox).

    /etc/localtime is named by its link target, else by matching its TZif bytes against the zoneinfo
    database of the machine running triage; with no name its own transitions are used."""
    localtime = host.path("/etc/localtime")
    try:
        link = str(localtime.readlink()) if localtime.is_symlink() else None
    except Exception:
        link = None
    if link and (name := zone_name_from_link(link)) and (zone := system_zone(name)) is not None:
        return zone, name, f"/etc/localtime (link to {link})"
    try:
        data = localtime.read_bytes() if localtime.is_file() else None
    except Exception:
        data = None
    if data:
        try:
            zone, name = tzif_zone(data, "TZif of /etc/localtime")
        except ValueError as exc:
            host.gap("/etc/localtime", f"time zone file unreadable: {exc}")
        else:
            if name is not None:
                return system_zone(name) or zone, name, "/etc/localtime (TZif matched to the zoneinfo database)"
            return zone, "TZif of /etc/localtime", "/etc/localtime (TZif transitions; no zone of the same rules found by name)"
    for text in ZONE_FILES:
        path = host.path(text)
        try:
            if not path.is_file():
                continue
            name = zone_from_clock_text(path.read_text(errors="replace"))
        except Exception:
            continue
        if name and (zone := system_zone(name)) is not None:
            return zone, name, text
        if name:
            host.gap(text, f"time zone {name!r} is not a known zone name")
    return None, None, None


def _load_users(host: _Host) -> None:
    try:
        text = host.path("/etc/passwd").read_text(errors="replace")
    except Exception:
        return
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit():
            host.users.setdefault(int(parts[2]), parts[0])
            host.homes.setdefault(parts[0], parts[5])


def _finish(host: _Host, job: UnixJob, facts: FileFacts) -> UnixJob:
    job.file = facts
    job.host = host.source.host.hostname
    job.provenance.evidence = host.evidence
    job.provenance.evidence_sha256 = host.source.ref.sha256
    if (owner := host.owner_name(facts)) is not None:
        job.details["file_owner"] = owner
    if job.command:
        job.details["programs"] = crontab.programs_run(job.command)
    return job


# --- cron ------------------------------------------------------------------------------------

def _cron(host: _Host) -> None:
    files: list[tuple[Any, bool, str | None]] = []  # (path, user column, owner)
    for text in SYSTEM_CRONTABS:
        if host.path(text).is_file():
            files.append((host.path(text), True, None))
    for directory in CRON_D_DIRS:
        files += [(p, True, None) for p in host.listdir(directory) if p.is_file()]
    for directory in USER_CRONTAB_DIRS:
        if _links_to_listed(host, directory, USER_CRONTAB_DIRS):
            continue  # Alpine: /var/spool/cron/crontabs -> /etc/crontabs, read once under its real name
        files += [(p, False, p.name) for p in host.listdir(directory) if p.is_file()]
    access = _access_lists(host)
    for path, user_column, owner in files:
        read = host.read(path)
        if read is None:
            continue
        facts, data = read
        location = str(path)
        if owner is not None:
            host.crontab_files[location] = owner
        text = _first_lines(host, location, data.decode("utf-8", "replace"), MAX_CRONTAB_LINES)
        result = crontab.parse_crontab(text, location, user_column=user_column, owner=owner)
        for problem in result.errors:
            _gap_line(host, problem)
        modified = host.mtime(facts)
        for job in result.jobs:
            job.details["crontab_kind"] = "system" if user_column else "user"
            if user_column and location.startswith(CRON_D_DIRS):
                job.details["debian_cron_reads_file"] = bool(RUN_PARTS_NAME.match(path.name))
            if owner is not None and access:
                job.details["crontab_command_allowed"] = _allowed(owner, access)
            if modified is not None and job.schedule != "@reboot":
                zone = _zone(job.details.get("environment", {}).get("CRON_TZ")) or host.tz
                if zone is not None:
                    try:
                        job.details["first_run_after_modified"] = iso(crontab.next_run(job.schedule, modified, zone))
                    except crontab.CrontabError as exc:
                        job.errors.append(f"next run: {exc}")
            host.jobs.append(_finish(host, job, facts))


def _links_to_listed(host: _Host, directory: str, listed: tuple[str, ...]) -> bool:
    path = host.path(directory)
    try:
        if not path.is_symlink():
            return False
        target = str(path.readlink())
    except Exception:
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(directory), target))
    return resolved != directory and resolved in listed


def _first_lines(host: _Host, location: str, text: str, limit: int) -> str:
    """The first ``limit`` lines of a job file; a gap names what is left out (the hash covers all)."""
    lines = text.count("\n") + (not text.endswith("\n"))
    if lines <= limit:
        return text
    host.gap(location, f"{lines} lines: only the first {limit} are parsed (no real crontab comes near); "
                       "the file's SHA-256 covers all of it")
    return "\n".join(text.split("\n", limit)[:limit]) + "\n"


def _gap_line(host: _Host, problem: str) -> None:
    """A parser problem written as '<file>:<line>: <what>' becomes one gap at that place."""
    location, _, what = problem.partition(": ")
    host.gap(location, what)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _access_lists(host: _Host) -> dict[str, list[str]]:
    """cron.allow / cron.deny as found: file → listed users."""
    out = {}
    for text in ACCESS_FILES:
        path = host.path(text)
        if path.is_file():
            read = host.read(path)
            if read is not None:
                out[text] = [line.strip() for line in read[1].decode("utf-8", "replace").splitlines() if line.strip() and not line.startswith("#")]
    return out


def _allowed(user: str, access: dict[str, list[str]]) -> bool:
    """crontab(1)'s rule: listed in an existing allow file; else not listed in deny; root always."""
    if user == "root":
        return True
    allow = [users for name, users in access.items() if name.endswith(".allow") or name.endswith("/allow")]
    if allow:
        return any(user in users for users in allow)
    return not any(user in users for name, users in access.items() if name.endswith("deny"))


def _cron_scripts(host: _Host) -> None:
    for period, directory in SCRIPT_DIRS:
        for path in host.listdir(directory):
            if not path.is_file():
                continue
            read = host.read(path)
            if read is None:
                continue
            facts, data = read
            mode = _mode(path)
            executable = bool(mode is not None and mode & 0o111)
            name_ok = bool(RUN_PARTS_NAME.match(path.name))
            first_line = data.split(b"\n", 1)[0].decode("utf-8", "replace")
            job = UnixJob(
                kind="cron_script",
                entry=str(path),
                provenance=Provenance(artifact="cron_script", location=str(path)),
                user="root",
                schedule=period,
                command=str(path),
                enabled=executable and name_ok,
                details={"run_parts_name_ok": name_ok, "executable": executable, "interpreter": first_line if first_line.startswith("#!") else None,
                         "script_commands": _script_commands(data)},
            )
            host.jobs.append(_finish(host, job, facts))


SCRIPT_COMMAND_LINES = 200  # run-parts scripts are short; a longer one keeps its first lines and says so


def _script_commands(data: bytes) -> list[str]:
    """The command lines of a run-parts script (no comments, blanks or shebang), for the content rules:
    the script is what the scheduled job runs."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    if len(commands) > SCRIPT_COMMAND_LINES:
        return commands[:SCRIPT_COMMAND_LINES] + [f"# ... {len(commands) - SCRIPT_COMMAND_LINES} more line(s) not kept"]
    return commands


def _mode(path: Any) -> int | None:
    try:
        return stat_module.S_IMODE(path.lstat().st_mode)
    except Exception:
        return None


# --- anacron ---------------------------------------------------------------------------------

def _anacron(host: _Host) -> None:
    stamps: dict[str, tuple[Any, bytes, FileFacts]] = {}
    for path in host.listdir(ANACRON_SPOOL):
        if path.is_file():
            read = host.read(path)
            if read is not None:
                stamps[path.name] = (path, read[1], read[0])
    for text in ANACRONTABS:
        path = host.path(text)
        if not path.is_file():
            continue
        read = host.read(path)
        if read is None:
            continue
        facts, data = read
        result = anacrontab.parse_anacrontab(_first_lines(host, text, data.decode("utf-8", "replace"), MAX_CRONTAB_LINES), text)
        for problem in result.errors:
            _gap_line(host, problem)
        for job in result.jobs:
            identifier = job.details["job_identifier"]
            if identifier in stamps:
                stamp_path, stamp_data, stamp_facts = stamps[identifier]
                try:
                    day = anacrontab.parse_stamp(stamp_data)
                    written = stamp_data.decode("ascii", "replace").strip()
                    job.stamps.append(local_stamp(datetime(day.year, day.month, day.day), "last_run_date", written, host.tz, precision=Precision.DAY))
                    job.details["last_run_date"] = day.isoformat()
                except anacrontab.AnacrontabError as exc:
                    job.errors.append(f"{stamp_path}: {exc}")
                job.details["timestamp_file"] = stamp_facts
            host.jobs.append(_finish(host, job, facts))


# --- at --------------------------------------------------------------------------------------

def _at_jobs(host: _Host) -> None:
    for spool in AT_SPOOLS:
        for path in host.listdir(spool):
            if not path.is_file() or path.name in AT_SPOOL_EXTRAS:
                continue
            read = host.read(path)
            if read is None:
                continue
            facts, data = read
            mode = _mode(path)
            try:
                job = atjob.parse_at_job(path.name, data, str(path), executable=bool(mode is not None and mode & 0o100))
            except atjob.AtJobError as exc:
                host.gap(str(path), str(exc))
                continue
            for problem in job.errors:
                host.gap(str(path), problem)
            host.jobs.append(_finish(host, job, facts))


# --- systemd ---------------------------------------------------------------------------------

@dataclass
class _Scope:
    """One systemd manager: the system, or one user's manager."""

    name: str  # "system" or "user:<name>" / "user:*" for units every user gets
    dirs: tuple[str, ...]  # unit search path, highest precedence first
    stamp_dir: str | None
    user: str | None


def _scopes(host: _Host) -> list[_Scope]:
    scopes = [_Scope("system", SYSTEM_UNIT_DIRS, SYSTEM_TIMER_STAMPS, "root")]
    homes = dict(host.homes)
    for path in host.listdir("/home"):
        homes.setdefault(path.name, str(path))
    homes.setdefault("root", "/root")
    seen = set()
    for user, home in sorted(homes.items()):
        if home in seen or not home.startswith("/") or home == "/":
            continue
        seen.add(home)
        config = f"{home.rstrip('/')}/.config/systemd/user"
        if host.path(config).is_dir():
            stamps = f"{home.rstrip('/')}/.local/share/systemd/timers"
            scopes.append(_Scope(f"user:{user}", (config,) + GLOBAL_USER_UNIT_DIRS, stamps, user))
    scopes.append(_Scope("user:*", GLOBAL_USER_UNIT_DIRS, None, None))
    return scopes


def _timers(host: _Host) -> None:
    done: set[str] = set()
    for scope in _scopes(host):
        units = _unit_files(host, scope.dirs)
        for name in sorted(units):
            if not name.endswith(".timer"):
                continue
            path = units[name]
            # a global user timer is reported once, under "user:*", not again for every user
            if scope.name.startswith("user:") and scope.name != "user:*" and not str(path).startswith(scope.dirs[0]):
                continue
            if str(path) in done:
                continue
            done.add(str(path))
            _timer(host, scope, units, name, path)
        _enabled_without_unit(host, scope, units)


def _enabled_without_unit(host: _Host, scope: _Scope, units: dict[str, Any]) -> None:
    """A ``*.wants``/``*.requires`` link to a timer whose unit file is in none of the scope's unit
    folders: enabled, unit file missing (deleted after enabling, or not collected)."""
    for directory in scope.dirs:
        if scope.name.startswith("user:") and scope.name != "user:*" and directory != scope.dirs[0]:
            continue  # global user folders are walked once, under "user:*"
        for sub in host.listdir(directory):
            if not sub.name.endswith((".wants", ".requires")) or not sub.is_dir():
                continue
            for link in host.listdir(str(sub)):
                if not link.name.endswith(".timer") or link.name in units or "@" in link.name:
                    continue
                try:
                    target = str(link.readlink()) if link.is_symlink() else None
                except Exception:
                    target = None
                target_dir = target.rsplit("/", 1)[0] if target and "/" in target else None
                collected = bool(target_dir and target_dir.startswith("/") and host.path(target_dir).is_dir())
                job = UnixJob(
                    kind="systemd_timer", entry=str(link),
                    provenance=Provenance(artifact="systemd_wants_link", location=str(link), raw=target),
                    user=scope.user, schedule=None, command=None, enabled=True,
                    details={"scope": scope.name, "service": link.name[: -len(".timer")] + ".service", "status": "enabled, unit file missing",
                             "unit_file_missing": True, "link_target": target, "enabled_by": [str(link)],
                             "target_folder_collected": collected},
                )
                host.jobs.append(_finish(host, job, file_facts(link)))


def _unit_files(host: _Host, dirs: tuple[str, ...]) -> dict[str, Any]:
    """unit name → the file systemd would load (first directory in precedence order wins)."""
    units: dict[str, Any] = {}
    for directory in dirs:
        for path in host.listdir(directory):
            if path.name.endswith((".timer", ".service")) and path.name not in units and (path.is_file() or path.is_symlink()):
                units[path.name] = path
    return units


def _load_unit(host: _Host, scope: _Scope, name: str, path: Any) -> tuple[systemd_unit.Unit | None, FileFacts | None]:
    if _masked(path):
        unit = systemd_unit.Unit(name=name, sources=[str(path)])
        unit.errors.append(f"{path}: masked (linked to /dev/null)")
        return unit, file_facts(path)
    read = host.read(path)
    if read is None:
        return None, None
    facts, data = read
    unit = systemd_unit.parse_unit(data.decode("utf-8", "replace"), name, str(path))
    dropins: dict[str, Any] = {}
    for directory in scope.dirs:
        for conf in host.listdir(f"{directory}/{name}.d"):
            if conf.name.endswith(".conf"):
                dropins.setdefault(conf.name, conf)
    for conf_name in sorted(dropins):
        conf_read = host.read(dropins[conf_name])
        if conf_read is not None:
            systemd_unit.parse_unit(conf_read[1].decode("utf-8", "replace"), name, str(dropins[conf_name]), into=unit)
    for problem in unit.errors:
        _gap_line(host, problem)
    return unit, facts


def _masked(path: Any) -> bool:
    try:
        return path.is_symlink() and str(path.readlink()) == "/dev/null"
    except Exception:
        return False


def _timer(host: _Host, scope: _Scope, units: dict[str, Any], name: str, path: Any) -> None:
    timer, facts = _load_unit(host, scope, name, path)
    if timer is None:
        return
    service_name = timer.value("Timer", "Unit") or name[: -len(".timer")] + ".service"
    service, service_facts = (None, None)
    if service_name in units:
        service, service_facts = _load_unit(host, scope, service_name, units[service_name])
    job = systemd_unit.timer_job(timer, service, str(path), user=scope.user, scope=scope.name)
    links = _wants_links(host, scope, name)
    job.enabled = bool(links) and not _masked(path)
    job.details["enabled_by"] = links
    if service_facts is not None:
        job.details["service_file"] = service_facts
    modified = host.mtime(facts) if facts else None
    for expression in timer.values("Timer", "OnCalendar"):
        if host.tz is None or modified is None:
            break
        try:
            job.details.setdefault("first_elapse_after_modified", {})[expression] = iso(systemd_unit.next_elapse(expression, modified, host.tz))
        except systemd_unit.SystemdUnitError as exc:
            job.errors.append(f"next elapse: {exc}")
    if scope.stamp_dir:
        stamp_path = host.path(f"{scope.stamp_dir}/stamp-{name}")
        if stamp_path.is_file():
            stamp_facts = file_facts(stamp_path)
            job.details["stamp_file"] = stamp_facts
            last = host.mtime(stamp_facts)
            if last is not None:
                job.stamps.append(Stamp(meaning="last_trigger", utc=iso(last), as_written=f"mtime of {stamp_path}", basis=Basis.UTC, precision=Precision.NS))
    host.jobs.append(_finish(host, job, facts or FileFacts(path=str(path))))


def _wants_links(host: _Host, scope: _Scope, name: str) -> list[str]:
    """``*.wants`` / ``*.requires`` symlinks naming the unit: how it gets started at boot/login."""
    out = []
    for directory in scope.dirs:
        for sub in host.listdir(directory):
            if sub.name.endswith((".wants", ".requires")) and sub.is_dir():
                link = host.path(f"{sub}/{name}")
                if link.is_symlink() or link.exists():
                    out.append(str(link))
    return out


# --- logs ------------------------------------------------------------------------------------

def _logs(host: _Host, events: list[TaskEvent]) -> None:
    """Append the events of every cron/syslog file and the journal to ``events`` (as each is read)."""
    seen = set()
    for directory, prefix, channel in LOG_PREFIXES:
        chain = []
        for path in host.listdir(directory):
            if not path.is_file() or not (path.name == prefix or re.match(rf"^{re.escape(prefix)}([.-]\d+.*)$", path.name)):
                continue
            if str(path) in seen:
                continue
            seen.add(str(path))
            chain.append(path)
        files = [log for log in (_log_file(host, path) for path in sorted(chain, key=lambda p: _rotation_order(p.name, prefix))) if log]
        for result in cronlog.parse_rotation_chain(files, channel=channel, tz=host.tz):
            kept = result.events
            if len(kept) > MAX_LOG_EVENTS:
                host.gap(f"{directory}/{prefix}", f"{len(kept)} scheduled-job events in one log: only the first {MAX_LOG_EVENTS} are kept")
                kept = kept[:MAX_LOG_EVENTS]
            events += _finish_events(host, kept)
    events += _finish_events(host, _journal(host))


def _finish_events(host: _Host, events: list[TaskEvent]) -> list[TaskEvent]:
    for event in events:
        event.host = event.host or host.source.host.hostname
        event.provenance.evidence = host.evidence
        event.provenance.evidence_sha256 = host.source.ref.sha256
    return events


_ROTATED = re.compile(r"^[.-](\d+)")


def _rotation_order(name: str, prefix: str) -> tuple:
    """Newest first: ``syslog``, ``syslog.1``, ``syslog.2.gz`` ...; dateext ``messages-20240114``
    files newest date first."""
    m = _ROTATED.match(name[len(prefix):])
    if not m:
        return (0, 0, name)
    number = int(m.group(1))
    return (1, -number if len(m.group(1)) == 8 else number, name)


def _log_file(host: _Host, path: Any) -> cronlog.LogFile | None:
    """One log of a rotation chain: at most MAX_LOG_BYTES of its text (gunzipped streaming); what is
    left out is a gap, what was read before a cap is still reported."""
    try:
        read = read_capped(path, MAX_LOG_BYTES)
    except Exception as exc:
        host.gap(str(path), f"cannot read file: {read_error(exc)}")
        return None
    data = read.data
    if read.stopped or not read.complete:
        host.gap(str(path), f"{read.stopped or f'larger than {MAX_LOG_BYTES} bytes ({read.facts.size} bytes)'}: "
                            f"only the first {len(data)} bytes are read")
    if path.name.endswith(".gz"):
        try:
            data, problem = inflate_capped(data, MAX_LOG_BYTES)
        except zlib.error as exc:
            host.gap(str(path), f"cannot decompress: {exc}")
            return None
        if problem:
            host.gap(str(path), problem)
    if len(data) >= MAX_LOG_BYTES:  # cut before the last, partial line
        data = data[:data.rfind(b"\n") + 1] or data
    mtime = host.mtime(read.facts)
    if mtime is None:
        host.gap(str(path), "no modification time: syslog lines without a year keep only their local text")
    rotated_on = None
    if m := re.search(r"-(\d{8})(?:\.gz)?$", path.name):
        try:
            rotated_on = datetime.strptime(m.group(1), "%Y%m%d")
        except ValueError:
            rotated_on = None
    return cronlog.LogFile(data.decode("utf-8", "replace"), str(path), mtime, rotated_on)


def _journal(host: _Host) -> list[TaskEvent]:
    if not any(host.path(d).is_dir() for d in JOURNAL_DIRS):
        return []
    events = []
    try:
        for index, record in enumerate(host.source.target.journal()):
            ts = record.ts
            if ts is None:
                continue
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=timezone.utc)
            event = cronlog.journal_event(ts, record.syslog_identifier or "", record.syslog_pid or record.pid, record.message or "",
                                          host=host.source.host.hostname, location=str(record.source or "journal"), index=index)
            if event is not None:
                events.append(event)
    except Exception as exc:
        host.gap("/var/log/journal", f"cannot read the journal: {exc}")
    return events


# --- linking runs to entries -----------------------------------------------------------------

# A run logged more than this after cron started is not an @reboot run.
REBOOT_WINDOW = timedelta(minutes=10)
ORPHAN_RUN_ACTIONS = ("cron_run", "anacron_run", "anacron_finished", "cron_script_run", "cron_script_finished")


def _link(host: _Host, events: list[TaskEvent]) -> None:
    """Set ``task`` on each event to the entry that explains it; drop systemd lines about units no
    timer starts; note runs and edits on the entries. A cron run is an entry's when user and command
    match (whitespace collapsed, as cron and syslog write it) and the entry's schedule fires at that
    minute; several such entries make the link ambiguous, and is said so. Runs no current entry
    explains are named after what the log says ran ("ran, no longer defined")."""
    cron_jobs: dict[tuple[str | None, str], list[UnixJob]] = {}
    for job in host.jobs:
        if job.kind == "cron":
            cron_jobs.setdefault((job.user, crontab.normalise_command(crontab.logged_command(job.command or ""))), []).append(job)
    by_entry = {job.entry: job for job in host.jobs}
    anacron_ids = {job.details["job_identifier"]: job for job in host.jobs if job.kind == "anacron"}
    at_files = {job.entry.rsplit("/", 1)[-1]: job for job in host.jobs if job.kind == "at"}
    timers_by_service: dict[str, list[UnixJob]] = {}
    timers_by_description: dict[str, list[UnixJob]] = {}
    for job in host.jobs:
        if job.kind == "systemd_timer":
            timers_by_service.setdefault(job.details["service"], []).append(job)
            if description := job.details.get("service_description"):
                timers_by_description.setdefault(description, []).append(job)
    crontab_by_user: dict[str, list[str]] = {}
    for location, user in sorted(host.crontab_files.items()):
        crontab_by_user.setdefault(user, []).append(location)
    cron_starts = sorted(e.time.utc for e in events if e.action == "cron_reboot_jobs" and e.time.utc)
    examined = _definitions_examined(host)
    kept = []
    for event in events:
        action = event.action
        candidates: list[UnixJob] = []
        reason = None
        if action == "cron_run":
            same = cron_jobs.get((event.user, crontab.normalise_command(event.command_line or "")), [])
            candidates, reason = _fitting_cron_entries(host, same, event, cron_starts)
            if same and not candidates:
                event.fields["same_command_entries"] = sorted(j.entry for j in same)
        elif action in ("cron_script_run", "cron_script_finished"):
            candidates = [by_entry[event.command_line]] if event.command_line in by_entry else []
            reason = "run-parts script path"
        elif action in ("anacron_run", "anacron_finished"):
            job = anacron_ids.get(event.fields.get("job_identifier"))
            candidates = [job] if job else []
            reason = "anacron job identifier"
        elif action == "at_run":
            job = at_files.get(event.fields.get("job_file"))
            candidates = [job] if job else []
            reason = "at job file name"
        elif action.startswith("timer_service_"):
            unit = event.fields.get("unit")
            candidates = timers_by_service.get(unit, []) if unit else timers_by_description.get(event.fields.get("description"), [])
            candidates = [j for j in candidates if _manager_matches(j, event)]
            if not candidates:
                continue  # a service no timer starts: not a scheduled-task event
            reason = "service started by the timer"
        elif action.startswith("crontab_"):
            owner = event.fields.get("crontab_owner") or event.user
            if action == "crontab_reload":
                owner = event.user
            files = crontab_by_user.get(owner or "", [])
            if files:
                event.task = files[0]
                event.fields["link"] = "crontab of the same user"
                for job in host.jobs:
                    if job.entry.rsplit(":", 1)[0] == files[0]:
                        job.details.setdefault("crontab_edits", []).append({"time": event.time.utc, "action": action, "by": event.user})
            else:
                event.fields["link"] = "no crontab for this user on this host"
            kept.append(event)
            continue
        if candidates:
            chosen = sorted(candidates, key=lambda j: (not j.enabled, j.entry))
            event.task = chosen[0].entry
            event.fields["link"] = reason
            if len(chosen) > 1:
                event.fields["link"] = f"ambiguous: {len(chosen)} entries fit ({reason}); shown under the first"
                event.fields["other_matching_entries"] = [j.entry for j in chosen[1:]]
                for other in chosen[1:]:
                    other.details["ambiguous_runs"] = other.details.get("ambiguous_runs", 0) + 1
            if action in ("cron_run", "cron_script_run", "anacron_run", "at_run", "timer_service_start"):
                _note_run(chosen[0], event)
        elif action in ORPHAN_RUN_ACTIONS:
            event.task = _orphan_name(event)
            event.fields["link"] = "ran, no longer defined: " + (
                "an entry with this user and command exists, but its schedule does not fire at this time"
                if event.fields.get("same_command_entries") else "no entry read on this host holds it")
            event.fields["definitions_examined"] = examined
        elif action == "at_run":
            event.fields["link"] = "no at job file (atd deletes a job's file when it runs it)"
        elif action not in ("cron_reboot_jobs",):
            event.fields["link"] = "no matching entry on this host"
        kept.append(event)
    events[:] = kept


def _orphan_name(event: TaskEvent) -> str:
    """The name a run with no entry goes by: what the log says ran, as the log says it."""
    if event.action == "cron_run":
        return f"cron log: ({event.user}) CMD ({crontab.normalise_command(event.command_line or '')})"
    if event.action.startswith("anacron_"):
        return f"anacron log: job {event.fields.get('job_identifier')}"
    return event.command_line or "run-parts log: (unknown script)"


def _definitions_examined(host: _Host) -> str | None:
    """Whether every place a run's entry could be was read: the system crontab and cron.d, a user
    crontab spool, the anacrontab and the run-parts folders. None when they were; else what was not
    (a tree of logs alone holds no crontab, and its runs are not "no longer defined")."""
    missing = []
    if not host.path("/etc/crontab").is_file() and not host.path("/etc/cron.d").is_dir():
        missing.append("/etc/crontab and /etc/cron.d not in the evidence")
    if not any(host.path(d).is_dir() for d in USER_CRONTAB_DIRS):
        missing.append("no user crontab spool (" + ", ".join(USER_CRONTAB_DIRS[:2]) + ") in the evidence")
    unreadable = [g.location for g in host.ctx.gaps if g.evidence == host.evidence and not re.search(r":\d+$", g.location)
                  and g.location.startswith(("/etc/crontab", "/etc/cron", "/var/spool/cron", "/etc/anacrontab"))]
    if unreadable:
        missing.append(f"{len(unreadable)} crontab place(s) unreadable, first {unreadable[0]}")
    return "; ".join(missing) or None


def _fitting_cron_entries(host: _Host, same: list[UnixJob], event: TaskEvent, cron_starts: list[str]) -> tuple[list[UnixJob], str]:
    """The entries among ``same`` (same user and command) whose schedule fires when the run was logged."""
    if not same:
        return [], ""
    fitting, unchecked = [], []
    for job in same:
        if job.schedule == "@reboot":
            if not cron_starts or event.time.utc is None:
                unchecked.append(job)
            elif _after_cron_start(event.time.utc, cron_starts):
                fitting.append(job)
            continue
        zone = _zone(job.details.get("environment", {}).get("CRON_TZ")) or host.tz
        local, weekday_known = _wall_clock(event, zone)
        if local is None:
            unchecked.append(job)
            continue
        try:
            if crontab.fires_within(job.schedule, local, late_minutes=_random_delay(job), weekday_known=weekday_known):
                fitting.append(job)
        except crontab.CrontabError:
            unchecked.append(job)
    if fitting:
        return fitting, "same user and command; the schedule fires at this time"
    if unchecked:
        return unchecked, "same user and command; schedule not checked (time of the run or of the cron start unknown)"
    return [], ""


def _random_delay(job: UnixJob) -> int:
    """cronie's RANDOM_DELAY (minutes) postpones the start; one minute of slack otherwise."""
    value = job.details.get("environment", {}).get("RANDOM_DELAY", "")
    return max(1, int(value)) if str(value).isdigit() else 1


def _after_cron_start(utc: str, cron_starts: list[str]) -> bool:
    when = datetime.fromisoformat(utc.replace("Z", "+00:00"))
    for start in cron_starts:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
        if began <= when <= began + REBOOT_WINDOW:
            return True
    return False


def _wall_clock(event: TaskEvent, zone: tzinfo | None) -> tuple[datetime | None, bool]:
    """The run's wall-clock time in ``zone`` and whether its weekday is known; from UTC when
    converted, else from the line as written (no year: weekday unknown)."""
    if event.time.utc and zone is not None:
        return datetime.fromisoformat(event.time.utc.replace("Z", "+00:00")).astimezone(zone).replace(tzinfo=None), True
    written = event.time.as_written or ""
    try:
        return datetime.strptime(f"2000 {written[:15]}", "%Y %b %d %H:%M:%S"), False
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(written).replace(tzinfo=None), True
    except ValueError:
        return None, False


def _manager_matches(job: UnixJob, event: TaskEvent) -> bool:
    """systemd[1] is the system manager; any other pid is a user manager."""
    system = job.details.get("scope") == "system"
    return system == (event.process_id == 1)


def _note_run(job: UnixJob, event: TaskEvent) -> None:
    runs = job.details.setdefault("logged_runs", {"count": 0, "first": None, "last": None})
    runs["count"] += 1
    when = event.time.utc
    if when:
        runs["first"] = min(filter(None, [runs["first"], when]))
        runs["last"] = max(filter(None, [runs["last"], when]))
