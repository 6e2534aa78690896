"""Every parser that takes evidence bytes, as one table: real seed inputs, a call, the one allowed error.

Shared by the hypothesis property tests (tests/hostile/test_parser_properties.py), the regression
replay and the atheris fuzzers (fuzz/). Seeds are real files from the shared corpus (PROVENANCE.md)
and the bytes the test-image builders plant, so mutations start from what parsers really meet.
A call feeds the bytes to the parser *and* to every derived function a collector uses on the
result (records, SDDL, next runs), because an exception there loses the artifact just the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from triage.parsers import anacrontab, atjob, cronlog, crontab, evtx_task, gpp, hive_log, job, schedlgu
from triage.parsers import security_descriptor, systemd_unit, task_cmdline, task_xml, taskcache
from triage import sources
from triage.records import Provenance
from tests.conftest import CORPUS

PROJECT = Path(__file__).resolve().parents[2]
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2024, 3, 14, 9, 12, 44, tzinfo=timezone.utc)
PROVENANCE = Provenance(artifact="fuzz", location="fuzz-input")


@dataclass(frozen=True)
class Target:
    name: str
    call: Callable[[bytes], object]
    error: type[Exception]
    seeds: Callable[[], list[bytes]]


def _files(*patterns: str) -> list[bytes]:
    found: list[bytes] = []
    for pattern in patterns:
        found += [p.read_bytes() for p in sorted(CORPUS.glob(pattern)) if p.is_file()]
    return found


# --- seeds ------------------------------------------------------------------------------------


@functools.cache
def _windows_tasks():
    from test_images.taskcache_scenarios import stealth_task_files
    from test_images.windows_tree import all_tasks

    return all_tasks() + stealth_task_files()


@functools.cache
def _taskcache_values(name: str) -> tuple[bytes, ...]:
    from test_images.taskcache_scenarios import taskcache_keys

    corpus = [p.read_bytes() for p in sorted((CORPUS / "taskcache-values").rglob(f"*__{name}.bin"))]
    planted = sorted({v.data for key in taskcache_keys(_windows_tasks()) for v in key.values if v.name == name})
    return tuple(corpus + planted)


@functools.cache
def task_xml_seeds() -> tuple[bytes, ...]:
    stock = _files("AndrewRathbun__DFIRArtifactMuseum/Windows/ScheduledTasks/**/*",
                   "fox-it__dissect.target/tests/_data/plugins/os/windows/tasks/MapsToastTask",
                   "redcanaryco__atomic-red-team/atomics/T1053.005/src/*.xml")
    return tuple(stock + sorted({t.data for t in _windows_tasks()}))


@functools.cache
def gpp_seeds() -> tuple[bytes, ...]:
    from test_images.windows_tree import gpp_scheduled_tasks

    return tuple(_files("fox-it__dissect.target/**/ScheduledTasks.xml") + [gpp_scheduled_tasks()])


@functools.cache
def job_seeds() -> tuple[bytes, ...]:
    from test_images.jobfile import encode_job
    from test_images.windows_tree import at_jobs

    return tuple(_files("**/*.job") + [encode_job(j.job) for j in at_jobs()])


@functools.cache
def schedlgu_seeds() -> tuple[bytes, ...]:
    from test_images.taskxml import encode_utf16
    from test_images.windows_tree import at_jobs, schedlgu_text

    text = schedlgu_text(at_jobs())
    return (encode_utf16(text), text.encode("utf-8"))


@functools.cache
def security_event_seeds() -> tuple[dict, ...]:
    """Real Security 4698/4702 events (flattened fields), the TaskContent path's input."""
    from triage.evtx_reader import EvtxReader

    events = []
    for name in ("sbousseaden__EVTX-ATTACK-SAMPLES/Execution/temp_scheduled_task_4698_4699.evtx",
                 "sbousseaden__EVTX-ATTACK-SAMPLES/Lateral Movement/remote task update 4624 4702 same logonid.evtx",
                 "Velocidex__velociraptor/artifacts/testdata/files/SecurityTasks.evtx"):
        with open(CORPUS / name, "rb") as fh:
            events += [e.fields for e in EvtxReader(fh, name) if e.fields.get("EventID") in (4698, 4702)]
    return tuple(events)


def _content_key(event: dict) -> str:
    return "TaskContentNew" if event.get("EventID") == 4702 else "TaskContent"


@functools.cache
def task_content_seeds() -> tuple[bytes, ...]:
    return tuple(e[_content_key(e)].encode("utf-8") for e in security_event_seeds())


@functools.cache
def _linux_files() -> tuple[tuple[str, bytes], ...]:
    from test_images.linux_scenario import nodes

    return tuple((n.path, n.data) for n in nodes() if n.kind == "file")


def _linux(predicate: Callable[[str], bool]) -> list[bytes]:
    return [data for path, data in _linux_files() if predicate(path)]


@functools.cache
def crontab_seeds() -> tuple[bytes, ...]:
    return tuple(_files("AiratNig__python-crontab/tests/data/**/*", "cronie-crond__cronie/contrib/0hourly",
                        "cronie-crond__cronie/contrib/dailyjobs")
                 + _linux(lambda p: p == "etc/crontab" or "/cron.d/" in p or "spool/cron/crontabs" in p))


@functools.cache
def anacrontab_seeds() -> tuple[bytes, ...]:
    return tuple(_files("cronie-crond__cronie/contrib/anacrontab") + _linux(lambda p: p.endswith("anacrontab")))


@functools.cache
def atjob_seeds() -> tuple[bytes, ...]:
    return tuple(_linux(lambda p: "/atjobs/" in p or "/at/" in p and not p.endswith(".SEQ")))


@functools.cache
def systemd_seeds() -> tuple[bytes, ...]:
    return tuple(_files("logrotate__logrotate/examples/logrotate.*")
                 + _linux(lambda p: p.endswith((".timer", ".service", ".conf")) and "systemd" in p))


@functools.cache
def cronlog_seeds() -> tuple[bytes, ...]:
    return tuple(_files("AndrewRathbun__DFIRArtifactMuseum/Linux/GeminiIntrusion/var/log/syslog",
                        "log2timeline__plaso/test_data/syslog/syslog_cron.log", "AiratNig__python-crontab/tests/data/test.log")
                 + _linux(lambda p: p.startswith("var/log/")))


@functools.cache
def _dirty_hive_base_block() -> bytes:
    """The base block of a hive whose logs still hold entries 2 and up (secondary sequence number 2)."""
    from test_images import taskcache_scenarios as builder

    return builder._base_block(b"regf" + bytes(4092), 3, 2, 8192)


@functools.cache
def hive_log_seeds() -> tuple[bytes, ...]:
    """SOFTWARE.LOG1/.LOG2 as the test-image builder writes them: entries 2 and 3 with dirty pages, and a
    stale entry 1."""
    from test_images import taskcache_scenarios as builder

    page = bytes(range(256)) * 16
    head = builder._base_block(b"regf" + bytes(508), 3, 3, 8192, builder.FILE_TYPE_LOG_NEW, builder.LOG_BASE_BLOCK)
    log1 = head + builder.log_entry(2, 8192, [(0, page)]) + builder.log_entry(3, 8192, [(4096, page[::-1]), (0, page)])
    return (log1, head + builder.log_entry(1, 8192, [(0, bytes(4096))]))


# --- calls ------------------------------------------------------------------------------------


def call_task_xml(data: bytes) -> object:
    return task_xml.parse_task_xml(data, task="\\Fuzz", provenance=PROVENANCE, local_tz=BERLIN)


def call_gpp(data: bytes) -> object:
    return gpp.parse_gpp_scheduled_tasks(data, path="fuzz/ScheduledTasks.xml", provenance=PROVENANCE, local_tz=BERLIN)


def call_job(data: bytes) -> object:
    return job.parse_job(data, task="\\Fuzz.job", provenance=PROVENANCE, local_tz=BERLIN)


def call_schedlgu(data: bytes) -> object:
    return schedlgu.parse_schedlgu(data, provenance=PROVENANCE, local_tz=BERLIN)


def call_actions(data: bytes) -> object:
    blob = taskcache.decode_actions(data)
    return blob, taskcache.action_records(blob)


def call_triggers(data: bytes) -> object:
    blob = taskcache.decode_triggers(data, BERLIN)
    return (blob, taskcache.trigger_records(blob, BERLIN), taskcache.principal_facts(blob), taskcache.settings_facts(blob),
            blob.uninitialised_padding_all_zero, blob.filler_all_0x48)


def call_dynamic_info(data: bytes) -> object:
    info = taskcache.decode_dynamic_info(data)
    return info, taskcache.dynamic_info_stamps(info)


def call_security_descriptor(data: bytes) -> object:
    sd = security_descriptor.parse_security_descriptor(data)
    return sd, sd.sddl, sd.control_names, sd.dacl_empty


def call_task_content(data: bytes) -> object:
    """The 4698/4702 path: a real Security event whose TaskContent is the fuzzed text."""
    seeds = security_event_seeds()
    event = dict(seeds[len(data) % len(seeds)])
    event[_content_key(event)] = data.decode("utf-8", "replace")
    return evtx_task.task_event(event, location="Security.evtx", local_tz=BERLIN)


def call_hive_log(data: bytes) -> object:
    """A transaction log beside a dirty hive (as the TaskCache collector plans its replay), and as a hive."""
    plan = hive_log.replay_plan(_dirty_hive_base_block(), {"SOFTWARE.LOG1": data})
    return plan, hive_log.hive_is_dirty(data[:hive_log.BASE_BLOCK]), hive_log.log_entries("SOFTWARE.LOG1", data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def call_crontab(data: bytes) -> object:
    results = [crontab.parse_crontab(_text(data), "/etc/crontab", user_column=True),
               crontab.parse_crontab(_text(data), "/var/spool/cron/crontabs/u", user_column=False, owner="u")]
    for job_ in (j for r in results for j in r.jobs[:20]):
        try:
            crontab.next_run(job_.schedule or "", NOW, BERLIN)
        except crontab.CrontabError:
            pass
    return results


def call_anacrontab(data: bytes) -> object:
    result = anacrontab.parse_anacrontab(_text(data), "/etc/anacrontab")
    try:
        anacrontab.parse_stamp(data)
    except anacrontab.AnacrontabError:
        pass
    return result


def call_atjob(data: bytes) -> object:
    return atjob.parse_at_job("a0000101b2feb6", data, "/var/spool/cron/atjobs/a0000101b2feb6", executable=True)


def call_systemd(data: bytes) -> object:
    timer = systemd_unit.parse_unit(_text(data), "fuzz.timer", "/etc/systemd/system/fuzz.timer")
    service = systemd_unit.parse_unit(_text(data), "fuzz.service", "/etc/systemd/system/fuzz.service")
    job_ = systemd_unit.timer_job(timer, service, "/etc/systemd/system/fuzz.timer", user=None, scope="system")
    for expression in timer.values("Timer", "OnCalendar")[:20]:
        try:
            systemd_unit.next_elapse(expression, NOW, BERLIN)
        except systemd_unit.SystemdUnitError:
            pass
    return job_


def call_cronlog(data: bytes) -> object:
    return cronlog.parse_log(_text(data), "/var/log/syslog", channel="syslog", mtime=NOW, tz=BERLIN)


class NeverRaised(Exception):
    """For parsers that document they raise nothing at all."""


@functools.cache
def task_cmdline_seeds() -> list[bytes]:
    """Every command line and script block the corpus logs hold (4688, Sysmon 1, 4104), as logged."""
    from triage.evtx_reader import EvtxReader

    seen: list[bytes] = []
    for path in sorted(CORPUS.rglob("*.evtx")):
        with path.open("rb") as fh:
            for record in EvtxReader(fh, str(path), on_problem=lambda *_: None):
                for key in ("CommandLine", "ParentCommandLine", "ScriptBlockText"):
                    value = record.fields.get(key)
                    if isinstance(value, str) and value and value.encode() not in seen:
                        seen.append(value.encode("utf-8"))
    return seen


def call_task_cmdline(data: bytes) -> object:
    text = _text(data)
    found = task_cmdline.parse_task_command(text)
    defined = task_cmdline.to_definition(found, provenance=PROVENANCE, host="h", creating_user="u") if found else None
    script = task_cmdline.parse_powershell_task(text)
    return found, defined, script, task_cmdline.decode_powershell(text), task_cmdline.split_action(text)


_BUILT_IN: dict[str, Target] = {t.name: t for t in (
    Target("task_xml", call_task_xml, task_xml.TaskXmlError, task_xml_seeds),
    Target("gpp", call_gpp, gpp.GppError, gpp_seeds),
    Target("job", call_job, job.JobError, job_seeds),
    Target("schedlgu", call_schedlgu, schedlgu.SchedLgUError, schedlgu_seeds),
    Target("taskcache_actions", call_actions, taskcache.TaskCacheError, lambda: _taskcache_values("Actions")),
    Target("taskcache_triggers", call_triggers, taskcache.TaskCacheError, lambda: _taskcache_values("Triggers")),
    Target("taskcache_dynamic_info", call_dynamic_info, taskcache.TaskCacheError, lambda: _taskcache_values("DynamicInfo")),
    Target("security_descriptor", call_security_descriptor, security_descriptor.SecurityDescriptorError,
           lambda: _taskcache_values("SD") + _taskcache_values("SecurityDescriptor")),
    Target("evtx_task_content", call_task_content, evtx_task.EvtxTaskError, task_content_seeds),
    Target("hive_log", call_hive_log, hive_log.HiveLogError, hive_log_seeds),
    Target("crontab", call_crontab, NeverRaised, crontab_seeds),
    Target("anacrontab", call_anacrontab, NeverRaised, anacrontab_seeds),
    Target("atjob", call_atjob, atjob.AtJobError, atjob_seeds),
    Target("systemd_unit", call_systemd, NeverRaised, systemd_seeds),
    Target("cronlog", call_cronlog, NeverRaised, cronlog_seeds),
    Target("task_cmdline", call_task_cmdline, NeverRaised, task_cmdline_seeds),
)}


class _Targets(Mapping[str, Target]):
    """The built-in targets above plus every parser registered in triage.sources, read at each use: a
    source registered through the registry is fuzzed and property-tested without an edit here."""

    def _all(self) -> dict[str, Target]:
        found = dict(_BUILT_IN)
        for parser in sources.registered_parsers().values():
            found.setdefault(parser.name, Target(parser.name, parser.call, parser.error,
                                                 functools.partial(lambda p: list(p.examples()), parser)))
        return found

    def __getitem__(self, name: str) -> Target:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


TARGETS: Mapping[str, Target] = _Targets()


def run_one(target: Target, data: bytes) -> str:
    """'decoded' or 'rejected' (the documented error); anything else propagates."""
    try:
        target.call(data)
    except target.error:
        return "rejected"
    return "decoded"
