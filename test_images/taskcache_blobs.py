"""Encoder for TaskCache registry values, used by the test-image builder.

It writes ``Actions``, ``Triggers``, ``DynamicInfo`` and Tree ``SD`` values the way Windows does,
modelled on the real Windows 7/8.1/10 values in shared/corpus/taskcache-values:

* style ``"windows"``: 0x48 filler in the JobBucket/user/settings/trigger-id pads, and *non-zero*
  bytes where Windows leaves memory uninitialised (tstime padding = the tail of a SYSTEMTIME of
  the start date, e.g. ``07 0b 00 00 00 0e 00`` for 2023-11-14; generic-trigger pads and the time
  trigger's pad2/pad3 = heap-pointer fragments), zeros where every real sample has zeros;
* style ``"ghosttask"``: what netero1010/GhostTask writes: the same 0x48 filler but zeros in every
  uninitialised pad (combine with crc32 0 and a 1992-05-01 start via :func:`ghosttask_triggers`).

Every ``encode_*`` takes the same dataclasses :mod:`triage.parsers.taskcache` decodes to, so
``decode(encode(x)) == x``; passing a decoded value's ``layout`` reproduces its bytes exactly.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import datetime, timedelta, timezone
from typing import Iterable

from triage.parsers.security_descriptor import (
    ACE_FLAGS,
    ACE_TYPES,
    RIGHTS_BY_NAME,
    SE_DACL_PRESENT,
    SE_SACL_PRESENT,
    SE_SELF_RELATIVE,
    SecurityDescriptorError,
    sid_to_bytes,
)
from triage.parsers.taskcache import (
    FILETIME_NEVER,
    FILLER,
    flag_byte,
    GENERIC_TRIGGER,
    OPTIONAL_SETTINGS,
    OPTIONAL_SETTINGS_MAINTENANCE,
    OPTIONAL_SETTINGS_PRIVILEGES,
    TIME_TRIGGER,
    TRIGGER_KINDS,
    TSTIME,
    TSTIMEPERIOD,
    UNINITIALISED,
    ZERO,
    ActionsBlob,
    JobBucket,
    LayoutItem,
    OptionalSettings,
    TaskCacheAction,
    TaskCacheTrigger,
    TriggersBlob,
    TsTime,
    UserInfo,
)

WINDOWS = "windows"
GHOSTTASK = "ghosttask"

EPOCH_1601 = datetime(1601, 1, 1)
GHOSTTASK_START_DATE = (1992, 5, 1)

# The JobBucket flags of an ordinary task registered by a user (real Windows 10 samples).
USER_TASK_FLAGS = 0x42412138
# GhostTask.c: AllowHardTerminate|Task|Enabled|InteractiveToken|IgnoreNew|AllowStartOnDemand|StopOnIdleEnd.
GHOSTTASK_FLAGS = 0x42412108
_KIND_MAGIC = {kind: magic for magic, kind in TRIGGER_KINDS.items()}


def filetime(dt: datetime) -> int:
    """datetime -> FILETIME. A naive datetime is taken as written (wall clock, for localized tstimes)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    delta = dt - EPOCH_1601
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _filetime_date(value: int) -> datetime | None:
    if not value or value == FILETIME_NEVER:
        return None
    try:
        return EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


class _Writer:
    """Appends fields; pads come from a decoded value's layout when given, else from the style."""

    def __init__(self, style: str, layout: Iterable[LayoutItem] | None, seed: bytes, date: datetime | None = None):
        if style not in (WINDOWS, GHOSTTASK):
            raise ValueError(f"unknown style {style!r}")
        self.out = bytearray()
        self.style = style
        self.recorded = {item.label: item.data for item in layout or []}
        self.seed = seed
        self.date = date  # the task's start date: Windows leaves its SYSTEMTIME in tstime padding

    def raw(self, data: bytes) -> None:
        self.out += data

    def u16(self, value: int) -> None:
        self.out += struct.pack("<H", value)

    def u32(self, value: int) -> None:
        self.out += struct.pack("<I", value)

    def u64(self, value: int) -> None:
        self.out += struct.pack("<Q", value)

    def _pointer_fragment(self, label: str, size: int) -> bytes:
        """Deterministic bytes that look like the heap-pointer leftovers of real values (never zero)."""
        digest = hashlib.sha256(self.seed + label.encode()).digest()
        pointer = (0x0000028700000000 | int.from_bytes(digest[:4], "little") | 0x01010000).to_bytes(8, "little")
        return (pointer * 2)[digest[4] % 3 : digest[4] % 3 + size]

    @staticmethod
    def systemtime_tail(when: datetime) -> bytes:
        """Bytes 1..7 of SYSTEMTIME(wYear, wMonth, wDayOfWeek=0, wDay): what real tstime padding holds."""
        return bytes([when.year >> 8, when.month, 0, 0, 0, when.day, 0])

    def pad_bytes(self, size: int, label: str, kind: str, when: datetime | None = None) -> bytes:
        """Recorded bytes if the layout has them; else filler, zeros, or Windows-like leftovers."""
        data = self.recorded.get(label)
        if data is not None and len(data) == size:
            return data
        if kind == FILLER:
            return b"H" * size
        if kind == ZERO or self.style == GHOSTTASK:
            return bytes(size)
        if when is not None and size == 7:
            return self.systemtime_tail(when)
        return self._pointer_fragment(label, size)

    def pad(self, size: int, label: str, kind: str) -> None:
        if size:
            self.out += self.pad_bytes(size, label, kind)

    def aligned_u1(self, value: int, label: str, kind: str) -> None:
        self.out.append(value)
        self.pad(7, label + ".pad", kind)

    def aligned_u4(self, value: int, label: str, kind: str) -> None:
        self.u32(value)
        self.pad(4, label + ".pad", kind)

    def text(self, value: str, label: str, nul: bool) -> bytes:
        data = value.encode("utf-16-le")
        terminator = self.recorded.get(label + ".nul")
        if terminator is None:
            terminator = b"\0\0" if nul and value else b""
        return data + terminator

    def bstr(self, value: str, label: str, nul: bool = False) -> None:
        data = self.text(value, label, nul)
        self.u32(len(data))
        self.out += data

    def aligned_bstr(self, value: str, label: str) -> None:
        data = self.text(value, label, nul=True)
        self.aligned_u4(len(data), label + ".length", FILLER)
        self.out += data
        self.pad(-len(data) % 8, label + ".pad", FILLER)

    def expand_sz(self, value: str, label: str) -> None:
        if not value:
            self.aligned_u4(0, label + ".count", ZERO)
            return
        data = self.text(value, label, nul=True) if self.recorded.get(label + ".nul") else value.encode("utf-16-le") + b"\0\0"
        self.aligned_u4((len(data) - 2) // 2, label + ".count", ZERO)
        self.out += data
        self.pad(-len(data) % 8, label + ".pad", FILLER)


# --- Actions ------------------------------------------------------------------------------


def exec_action(command: str, arguments: str = "", working_directory: str = "", action_id: str = "", flags: int | None = 0) -> TaskCacheAction:
    return TaskCacheAction(magic=0x6666, kind="exec", action_id=action_id, command=command, arguments=arguments, working_directory=working_directory, flags=flags)


def comhandler_action(class_id: str, data: str = "", action_id: str = "") -> TaskCacheAction:
    return TaskCacheAction(magic=0x7777, kind="comhandler", action_id=action_id, class_id=class_id.upper(), data=data)


def email_action(sender: str, to: str, subject: str, body: str, server: str, *, cc: str = "", bcc: str = "", reply_to: str = "", attachments: list[str] | None = None, headers: list[tuple[str, str]] | None = None, action_id: str = "") -> TaskCacheAction:
    return TaskCacheAction(
        magic=0x8888, kind="sendemail", action_id=action_id, sender=sender, to=to, cc=cc, bcc=bcc, reply_to=reply_to,
        server=server, subject=subject, body=body, attachments=list(attachments or []), headers=list(headers or []),
    )


def message_action(caption: str, content: str, action_id: str = "") -> TaskCacheAction:
    return TaskCacheAction(magic=0x9999, kind="showmessage", action_id=action_id, caption=caption, content=content)


def _guid_bytes(text: str) -> bytes:
    hexdigits = text.strip("{}").replace("-", "")
    raw = bytes.fromhex(hexdigits)
    a, b, c = struct.unpack(">IHH", raw[:8])
    return struct.pack("<IHH", a, b, c) + raw[8:]


def encode_actions(actions: list[TaskCacheAction], version: int = 3, context: str | None = "Author", layout: Iterable[LayoutItem] | None = None, exec_flags: bool | None = None) -> bytes:
    """``Actions`` value. Version 1 has no context and no Exec flags (Windows 8.1); version 3 has
    both (Windows 10); version 2 is written as GhostTask writes it (context, no flags)."""
    w = _Writer(WINDOWS, layout, b"actions")
    w.u16(version)
    if exec_flags is None:
        exec_flags = version >= 3
    if version >= 2 and context is not None:
        w.bstr(context, "context")
    for i, act in enumerate(actions):
        label = f"action[{i}]"
        w.u16(act.magic)
        w.bstr(act.action_id, label + ".id")
        if act.magic == 0x6666:
            w.bstr(act.command or "", label + ".command")
            w.bstr(act.arguments or "", label + ".arguments")
            w.bstr(act.working_directory or "", label + ".working_directory")
            if exec_flags:
                w.u16(act.flags or 0)
        elif act.magic == 0x7777:
            w.raw(_guid_bytes(act.class_id or "{00000000-0000-0000-0000-000000000000}"))
            w.bstr(act.data or "", label + ".data")
        elif act.magic == 0x8888:
            for name in ("sender", "to", "cc", "bcc", "reply_to", "server", "subject", "body"):
                w.bstr(getattr(act, name) or "", f"{label}.{name}")
            w.u32(len(act.attachments or []))
            for j, item in enumerate(act.attachments or []):
                w.bstr(item, f"{label}.attachment[{j}]")
            w.u32(len(act.headers or []))
            for j, (name, value) in enumerate(act.headers or []):
                w.bstr(name, f"{label}.header[{j}].name")
                w.bstr(value, f"{label}.header[{j}].value")
        elif act.magic == 0x9999:
            w.bstr(act.caption or "", label + ".caption")
            w.bstr(act.content or "", label + ".content")
        else:
            raise ValueError(f"cannot encode action magic 0x{act.magic:x}")
    return bytes(w.out)


def encode_actions_blob(blob: ActionsBlob) -> bytes:
    """Re-encode a decoded ``Actions`` value with its own layout (exactly the same bytes)."""
    flags = any(a.flags is not None for a in blob.actions) if blob.version == 2 else None
    return encode_actions(blob.actions, blob.version or 0, blob.context, blob.layout, exec_flags=flags)


# --- Triggers -----------------------------------------------------------------------------


def user_info(sid: str | None = None, username: str | None = "", sid_type: int = 1) -> UserInfo:
    """A user as the JobBucket / logon trigger holds it. ``username=None`` with no SID = any user."""
    if sid is None and username is None:
        return UserInfo(skip_user=True)
    if sid is None:
        return UserInfo(skip_user=False, skip_sid=True, username=username)
    return UserInfo(skip_user=False, skip_sid=False, sid_type=sid_type, sid=sid, username=username or "")


def default_settings(**overrides: int) -> OptionalSettings:
    """The 0x2C optional-settings block of a task created with defaults (real Windows 10 samples)."""
    settings = OptionalSettings(
        length=0x2C, idle_duration=600, idle_wait_timeout=3600, execution_time_limit=259200,
        delete_expired_after=0xFFFFFFFF, priority=7, restart_delay=0, restart_retries=0,
        network_id="{00000000-0000-0000-0000-000000000000}",
    )
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


def job_bucket(user: UserInfo, *, principal_id: str = "Author", flags: int = USER_TASK_FLAGS, crc32: int = 0, display_name: str = "", settings: OptionalSettings | None = None) -> JobBucket:
    settings = settings if settings is not None else default_settings()
    return JobBucket(flags=flags, crc32=crc32, principal_id=principal_id, display_name=display_name, user=user, settings_length=settings.length if settings else 0, settings=settings)


def _ts(when: datetime | None, localized: bool = True) -> TsTime:
    return TsTime(is_localized=localized and when is not None, filetime=filetime(when) if when else 0)


def time_trigger(start: datetime, *, mode: str = "once", interval: int = 1, days_of_week: int = 0, days_of_month: int = 0, months: int = 0, weeks_of_month: int = 0, end: datetime | None = None, repetition_interval: int = 0, repetition_duration: int = 0, execution_time_limit: int = 0xFFFFFFFF, stop_at_duration_end: bool = False, enabled: bool = True, random_delay: int = 0, trigger_id: str = "") -> TaskCacheTrigger:
    """A 0xDDDD trigger. ``start`` is local wall-clock time (written localized, as Windows does)."""
    modes = {"once": 0, "daily": 1, "weekly": 2, "monthly_date": 3, "monthly_dow": 4}
    code = modes[mode]
    data = {
        0: (0, 0, 0),
        1: (interval, 0, 0),
        2: (interval, days_of_week, 0),
        3: (days_of_month & 0xFFFF, days_of_month >> 16, months),
        4: (days_of_week, weeks_of_month, months),
    }[code]
    return TaskCacheTrigger(
        magic=0xDDDD, kind="time", start=_ts(start), end=_ts(end), unknown_time=TsTime(is_localized=False, filetime=0),
        enabled=enabled, stop_at_duration_end=stop_at_duration_end, repetition_interval=repetition_interval,
        repetition_duration=repetition_duration, execution_time_limit=execution_time_limit, mode=code,
        data1=data[0], data2=data[1], data3=data[2], unknown=1, max_random_delay=random_delay, trigger_id=trigger_id,
    )


def generic_trigger(kind: str, *, delay: int = 0, timeout: int = 0xFFFFFFFF, repetition_interval: int = 0, repetition_duration: int = 0, enabled: bool = True, start: datetime | None = None, end: datetime | None = None, user: UserInfo | None = None, session_state: int | None = None, subscription: str = "", value_queries: list[tuple[str, str]] | None = None, wnf_state_name: str = "", wnf_data: bytes = b"", trigger_id: str = "") -> TaskCacheTrigger:
    """Boot, logon, idle, registration, session_state_change, event or wnf trigger."""
    trig = TaskCacheTrigger(
        magic=_KIND_MAGIC[kind], kind=kind, start=_ts(start),
        end=_ts(end) if end else TsTime(is_localized=False, filetime=FILETIME_NEVER),
        enabled=enabled, stop_at_duration_end=False, repetition_interval=repetition_interval,
        repetition_duration=repetition_duration, delay=delay, timeout=timeout, repetition_duration2=repetition_duration,
        trigger_id=trigger_id,
    )
    if kind == "logon":
        trig.user = user or user_info(None, None)
    elif kind == "session_state_change":
        trig.session_state = session_state or 1
        trig.user = user or user_info(None, None)
    elif kind == "event":
        trig.subscription, trig.event_unknown1, trig.event_unknown2, trig.event_unknown_text = subscription, 0, 0, ""
        trig.value_queries = list(value_queries or [])
    elif kind == "wnf":
        trig.wnf_state_name, trig.wnf_data = wnf_state_name, wnf_data.hex()
    return trig


def triggers_blob(triggers: list[TaskCacheTrigger], bucket: JobBucket, *, version: int = 0x17) -> TriggersBlob:
    """Header boundaries as Windows derives them: earliest trigger start, latest end (or never)."""
    starts = [t.start for t in triggers if t.start and t.start.is_set]
    ends = [t.end for t in triggers if t.end]
    start = min(starts, key=lambda t: t.filetime) if starts else TsTime(is_localized=False, filetime=0)
    end = TsTime(is_localized=False, filetime=FILETIME_NEVER)
    if ends and all(e.is_set for e in ends):
        end = max(ends, key=lambda t: t.filetime)
    if version < 0x16:
        bucket.principal_id = None
        for trig in triggers:
            trig.trigger_id = None
    if version < 0x17:
        bucket.display_name = None
    return TriggersBlob(version=version, start_boundary=start, end_boundary=end, job_bucket=bucket, triggers=triggers)


def _write_user(w: _Writer, user: UserInfo, label: str) -> None:
    w.aligned_u1(flag_byte(user, "skip_user"), label + ".skip_user", FILLER)
    if user.skip_user:
        return
    w.aligned_u1(flag_byte(user, "skip_sid"), label + ".skip_sid", FILLER)
    if not user.skip_sid:
        w.aligned_u4(user.sid_type or 0, label + ".sid_type", FILLER)
        sid = sid_to_bytes(user.sid) if user.sid else bytes.fromhex(user.sid_hex or "")
        w.aligned_u4(len(sid), label + ".sid.length", FILLER)
        w.raw(sid)
        w.pad(-len(sid) % 8, label + ".sid.pad", FILLER)
    w.aligned_bstr(user.username or "", label + ".username")


def _write_settings(w: _Writer, length: int, settings: OptionalSettings | None) -> None:
    w.aligned_u4(length, "settings.length", FILLER)
    if not length or settings is None:
        return
    start = len(w.out)
    if length >= 0x2C:
        w.raw(
            OPTIONAL_SETTINGS(
                idle_duration=settings.idle_duration or 0, idle_wait_timeout=settings.idle_wait_timeout or 0,
                execution_time_limit=settings.execution_time_limit or 0, delete_expired_after=settings.delete_expired_after or 0,
                priority=settings.priority or 0, restart_delay=settings.restart_delay or 0,
                restart_retries=settings.restart_retries or 0, network_id=_guid_bytes(settings.network_id or "0" * 32),
            ).dumps()
        )
    if length >= OPTIONAL_SETTINGS_PRIVILEGES:
        w.pad(4, "settings.privileges.align", ZERO)
        w.u64(settings.privileges or 0)
    if length >= OPTIONAL_SETTINGS_MAINTENANCE:
        for period in (settings.periodicity, settings.deadline):
            values = dict(zip(("year", "month", "week", "day", "hour", "minute", "second"), period or (0,) * 7))
            w.raw(TSTIMEPERIOD(**values).dumps())
        w.raw(bytes([settings.exclusive or 0]))
        w.pad(3, "settings.exclusive.pad", ZERO)
    if settings.extra_hex:
        w.raw(bytes.fromhex(settings.extra_hex))
    written = len(w.out) - start
    if written != length:
        raise ValueError(f"optional settings of length 0x{length:x} encode to {written} bytes")
    w.pad(-length % 8, "settings.pad", FILLER)


def _write_trigger_id(w: _Writer, version: int, trig: TaskCacheTrigger, label: str) -> None:
    if version >= 0x16:
        data = w.text(trig.trigger_id or "", label + ".id", nul=True)
        w.u32(len(data))
        w.raw(data)
        w.pad(-(4 + len(data)) % 8, label + ".id.pad", FILLER)


def _tstime(w: _Writer, value: TsTime | None, label: str, *, unset_zero: bool = False, header: bool = False):
    """A TSTIME struct. Windows leaves the SYSTEMTIME it converted in the padding: the tstime's own
    date, or for the header's unset/never boundary the task's start date; unset tstimes in time
    triggers are zero-padded, those in other triggers hold pointer fragments."""
    value = value or TsTime(is_localized=False, filetime=0)
    kind = ZERO if unset_zero and value.filetime == 0 else UNINITIALISED
    when = _filetime_date(value.filetime) or (w.date if header else None)
    pad = w.pad_bytes(7, label + ".pad", kind, when)
    return TSTIME(is_localized=flag_byte(value, "is_localized"), pad=pad, filetime=value.filetime)


def _write_trigger(w: _Writer, version: int, trig: TaskCacheTrigger, label: str) -> None:
    w.aligned_u4(trig.magic, label + ".magic", ZERO)
    if trig.magic == 0xDDDD:
        w.raw(
            TIME_TRIGGER(
                start=_tstime(w, trig.start, label + ".start", unset_zero=True),
                end=_tstime(w, trig.end, label + ".end", unset_zero=True),
                unknown_time=_tstime(w, trig.unknown_time, label + ".unknown_time", unset_zero=True),
                repetition_interval=trig.repetition_interval or 0, repetition_duration=trig.repetition_duration or 0,
                execution_time_limit=trig.execution_time_limit or 0, mode=trig.mode or 0,
                data1=trig.data1 or 0, data2=trig.data2 or 0, data3=trig.data3 or 0,
                pad1=w.pad_bytes(2, label + ".pad1", ZERO), stop_at_duration_end=flag_byte(trig, "stop_at_duration_end"),
                enabled=flag_byte(trig, "enabled"), pad2=w.pad_bytes(2, label + ".pad2", UNINITIALISED),
                unknown=trig.unknown or 0, max_random_delay=trig.max_random_delay or 0,
                pad3=w.pad_bytes(4, label + ".pad3", UNINITIALISED),
            ).dumps()
        )
        _write_trigger_id(w, version, trig, label)
        return
    w.raw(
        GENERIC_TRIGGER(
            start=_tstime(w, trig.start, label + ".start"),
            end=_tstime(w, trig.end, label + ".end"),
            delay=trig.delay or 0, timeout=trig.timeout or 0, repetition_interval=trig.repetition_interval or 0,
            repetition_duration=trig.repetition_duration or 0, repetition_duration2=trig.repetition_duration2 or 0,
            stop_at_duration_end=flag_byte(trig, "stop_at_duration_end"), pad1=w.pad_bytes(3, label + ".pad1", UNINITIALISED),
            enabled=flag_byte(trig, "enabled"), pad2=w.pad_bytes(7, label + ".pad2", UNINITIALISED),
            unknown=w.pad_bytes(8, label + ".unknown", UNINITIALISED),
        ).dumps()
    )
    _write_trigger_id(w, version, trig, label)
    if trig.magic == 0xAAAA:
        _write_user(w, trig.user or UserInfo(skip_user=True), label + ".user")
    elif trig.magic == 0x7777:
        w.u32(trig.session_state or 0)
        w.pad(4, label + ".state.pad", ZERO)
        _write_user(w, trig.user or UserInfo(skip_user=True), label + ".user")
    elif trig.magic == 0xCCCC:
        w.expand_sz(trig.subscription or "", label + ".subscription")
        w.u32(trig.event_unknown1 or 0)
        w.u32(trig.event_unknown2 or 0)
        w.expand_sz(trig.event_unknown_text or "", label + ".unknown_text")
        w.aligned_u4(len(trig.value_queries or []), label + ".value_query_count", ZERO)
        for i, (name, value) in enumerate(trig.value_queries or []):
            w.expand_sz(name, f"{label}.value_query[{i}].name")
            w.expand_sz(value, f"{label}.value_query[{i}].value")
    elif trig.magic == 0x6666:
        w.raw(bytes.fromhex(trig.wnf_state_name or "0" * 16))
        data = bytes.fromhex(trig.wnf_data or "")
        w.aligned_u4(len(data), label + ".data.length", ZERO)
        w.raw(data)  # unpadded, as in the real value


def encode_triggers(blob: TriggersBlob, style: str = WINDOWS, layout: Iterable[LayoutItem] | None = None) -> bytes:
    """``Triggers`` value for a decoded-form blob (see :func:`triggers_blob`)."""
    seed = hashlib.sha256(repr(blob).encode()).digest()[:8]
    start_date = _filetime_date(blob.start_boundary.filetime) if blob.start_boundary else None
    w = _Writer(style, layout if layout is not None else blob.layout, seed, start_date)
    version = blob.version or 0x17
    w.aligned_u1(version, "version", ZERO)
    w.raw(_tstime(w, blob.start_boundary, "header.start", header=True).dumps())
    w.raw(_tstime(w, blob.end_boundary, "header.end", header=True).dumps())
    bucket = blob.job_bucket or JobBucket()
    w.aligned_u4(bucket.flags or 0, "flags", FILLER)
    w.aligned_u4(bucket.crc32 or 0, "crc32", FILLER)
    if version >= 0x16:
        w.aligned_bstr(bucket.principal_id or "", "principal_id")
    if version >= 0x17:
        w.aligned_bstr(bucket.display_name or "", "display_name")
    _write_user(w, bucket.user or UserInfo(skip_user=True), "user")
    _write_settings(w, bucket.settings_length or 0, bucket.settings)
    for i, trig in enumerate(blob.triggers):
        _write_trigger(w, version, trig, f"trigger[{i}]")
    return bytes(w.out)


def ghosttask_triggers(user_sid: str, *, mode: str = "daily", hour: int = 0, minute: int = 0, days_of_week: int = 0, repetition_interval: int = 0, created: datetime | None = None, logon: bool = False) -> bytes:
    """``Triggers`` as GhostTask writes them: crc32 0, username length 0, start 1992-05-01 hh:mm for
    daily/weekly, zeros in every pad Windows leaves uninitialised (0x48 filler kept)."""
    user = UserInfo(skip_user=False, skip_sid=False, sid_type=1, sid=user_sid, username="")
    bucket = job_bucket(user, flags=GHOSTTASK_FLAGS, crc32=0)
    if logon:
        trig = generic_trigger("logon", user=UserInfo(skip_user=True))
        trig.end = TsTime(is_localized=False, filetime=0)
    elif mode == "second":
        trig = time_trigger(created or datetime(1992, 5, 1), mode="once", repetition_interval=repetition_interval)
    else:
        trig = time_trigger(datetime(*GHOSTTASK_START_DATE, hour, minute), mode=mode, interval=1, days_of_week=days_of_week)
    blob = triggers_blob([trig], bucket)
    # GhostTask leaves the header tstimes as they were on its stack; write them zero like its other pads
    blob.start_boundary = trig.start if not logon else TsTime(is_localized=False, filetime=0)
    blob.end_boundary = TsTime(is_localized=False, filetime=0)
    return encode_triggers(blob, style=GHOSTTASK)


# --- DynamicInfo --------------------------------------------------------------------------


def encode_dynamic_info(created: int, last_run: int = 0, status_0x14: int = 0, status_0x18: int = 0, last_successful_run: int | None = 0) -> bytes:
    """``DynamicInfo``: 36 bytes (Windows 8+), or 28 bytes (Vista/7) when ``last_successful_run`` is None."""
    data = struct.pack("<IQQII", 3, created, last_run, status_0x14, status_0x18)
    if last_successful_run is not None:
        data += struct.pack("<Q", last_successful_run)
    return data


# --- Security descriptors -----------------------------------------------------------------

_SDDL_ACE_TYPES = {name: code for code, name in ACE_TYPES.items()}
_SDDL_ACE_FLAGS = {name: bit for bit, name in ACE_FLAGS}


def _two_letter_codes(text: str, table: dict[str, int], what: str) -> int:
    value = 0
    for i in range(0, len(text), 2):
        code = text[i : i + 2]
        if code not in table:
            raise SecurityDescriptorError(f"unknown SDDL {what} {code!r}")
        value |= table[code]
    return value


def _ace_bytes(text: str) -> bytes:
    fields = text.split(";")
    if len(fields) != 6 or fields[0] not in _SDDL_ACE_TYPES or fields[3] or fields[4]:
        raise SecurityDescriptorError(f"unsupported SDDL ACE ({text})")
    rights = fields[2]
    mask = int(rights, 16) if rights.lower().startswith("0x") else _two_letter_codes(rights, RIGHTS_BY_NAME, "right")
    body = struct.pack("<I", mask) + sid_to_bytes(fields[5])
    return struct.pack("<BBH", _SDDL_ACE_TYPES[fields[0]], _two_letter_codes(fields[1], _SDDL_ACE_FLAGS, "ACE flag"), 4 + len(body)) + body


def _acl(text: str, protected: int, auto_req: int, auto_inherited: int) -> tuple[int, bytes | None]:
    head, _, aces = text.partition("(")
    control = 0
    if head.endswith("NO_ACCESS_CONTROL"):
        head, acl = head[: -len("NO_ACCESS_CONTROL")], None
    else:
        entries = [_ace_bytes(a) for a in ("(" + aces).strip("()").split(")(") if a] if aces else []
        body = b"".join(entries)
        acl = struct.pack("<BBHHH", 2, 0, 8 + len(body), len(entries), 0) + body
    control |= protected if "P" in head.replace("AR", "").replace("AI", "") else 0
    control |= auto_req if "AR" in head else 0
    control |= auto_inherited if "AI" in head else 0
    return control, acl


def encode_security_descriptor(sddl: str) -> bytes:
    """SDDL (owner, group, DACL/SACL of simple ACEs) -> self-relative SECURITY_DESCRIPTOR, laid
    out as RtlMakeSelfRelativeSD does: header, SACL, DACL, owner, group. ``D:`` = empty DACL."""
    parts: dict[str, str] = {}
    rest = sddl
    while rest:
        key, colon = rest[0], rest[1:2]
        if key not in "OGDS" or colon != ":":
            raise SecurityDescriptorError(f"bad SDDL at {rest!r}")
        body = rest[2:]
        cut = len(body)
        depth = 0
        for i, ch in enumerate(body):
            depth += (ch == "(") - (ch == ")")
            if depth == 0 and ch in "OGDS" and body[i + 1 : i + 2] == ":":
                cut = i
                break
        parts[key], rest = body[:cut], body[cut:]
    control = SE_SELF_RELATIVE
    blobs: dict[str, bytes | None] = {}
    if "S" in parts:
        flags, blobs["sacl"] = _acl(parts["S"], 0x2000, 0x200, 0x800)
        control |= SE_SACL_PRESENT | flags
    if "D" in parts:
        flags, blobs["dacl"] = _acl(parts["D"], 0x1000, 0x100, 0x400)
        control |= SE_DACL_PRESENT | flags
    if "O" in parts:
        blobs["owner"] = sid_to_bytes(parts["O"])
    if "G" in parts:
        blobs["group"] = sid_to_bytes(parts["G"])
    offsets = dict.fromkeys(("owner", "group", "sacl", "dacl"), 0)
    out = b""
    for name in ("sacl", "dacl", "owner", "group"):
        if blobs.get(name) is not None:
            offsets[name] = 20 + len(out)
            out += blobs[name]
    header = struct.pack("<BBHIIII", 1, 0, control, offsets["owner"], offsets["group"], offsets["sacl"], offsets["dacl"])
    return header + out
