"""Decoders for the TaskCache binary values: ``Actions``, ``Triggers`` and ``DynamicInfo``.

Bytes in, plain dataclasses out; no registry or memory access here, so the disk collector and the
memory plugin share one decoder. Layouts come from shared/docs/artifacts.md (GDATA winreg-tasks,
volatility3, GhostTask) and are settled by the real Windows 7/8.1/10 values in
shared/corpus/taskcache-values (PROVENANCE.md), which win where the public sources disagree:

* DynamicInfo: both u32s at 0x14 and 0x18 hold HRESULTs in real data (Vista/8 samples have one at
  0x14, a Windows 10 sample at 0x18), so both are reported, neither is called "the" error.
* Padding is relative to each field, never to the offset in the value: WNF state data is not
  padded at all (a real value is 370 bytes long), aligned_u1/u4 take 8 bytes, aligned strings pad
  their own byte length to 8, a trigger id pads (4 + length) to 8.
* An expand_sz string with character count 0 has no terminator and no padding.
* String lengths in Triggers include the NUL; one real value has three, so all trailing NULs are
  stripped (and remembered, so a decoded value re-encodes to the same bytes).
* JobBucket bits 0x8000 and 0x20000 occur (group and LocalSystem principals); optional settings
  length 0 occurs (no block).
* Actions version 1 (Windows 8.1) has no context string and no Exec flags.

Every decoder returns what it could decode plus ``errors`` and the raw hex; a truncated or unknown
value is flagged, never fatal. The only exception raised is :class:`TaskCacheError`, for input
that is not bytes at all.

Padding is kept as :class:`LayoutItem` entries in value order. Windows writes the filler 0x48 into
some pads and leaves uninitialised memory (pointer fragments, SYSTEMTIME remains) in others;
GhostTask-style writers put zeros there instead. ``TriggersBlob.uninitialised_padding_all_zero``
exposes that fingerprint without deciding anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from dissect.cstruct import cstruct

from triage.parsers import ParseError
from triage.parsers.security_descriptor import SecurityDescriptorError, sid_from_bytes
from triage.records import Action, Stamp, Trigger
from triage.timeutil import filetime_stamp


class TaskCacheError(ParseError):
    """Input that cannot be decoded at all (not bytes). Malformed bytes give errors, not this."""


_cs = cstruct().load(
    """
    struct TSTIME {
        uint8  is_localized;
        char   pad[7];
        uint64 filetime;
    };
    struct TIME_TRIGGER {
        TSTIME start;
        TSTIME end;
        TSTIME unknown_time;
        uint32 repetition_interval;
        uint32 repetition_duration;
        uint32 execution_time_limit;
        uint32 mode;
        uint16 data1;
        uint16 data2;
        uint16 data3;
        char   pad1[2];
        uint8  stop_at_duration_end;
        uint8  enabled;
        char   pad2[2];
        uint32 unknown;
        uint32 max_random_delay;
        char   pad3[4];
    };
    struct GENERIC_TRIGGER {
        TSTIME start;
        TSTIME end;
        uint32 delay;
        uint32 timeout;
        uint32 repetition_interval;
        uint32 repetition_duration;
        uint32 repetition_duration2;
        uint8  stop_at_duration_end;
        char   pad1[3];
        uint8  enabled;
        char   pad2[7];
        char   unknown[8];
    };
    struct OPTIONAL_SETTINGS {
        uint32 idle_duration;
        uint32 idle_wait_timeout;
        uint32 execution_time_limit;
        uint32 delete_expired_after;
        uint32 priority;
        uint32 restart_delay;
        uint32 restart_retries;
        char   network_id[16];
    };
    struct TSTIMEPERIOD {
        uint16 year;
        uint16 month;
        uint16 week;
        uint16 day;
        uint16 hour;
        uint16 minute;
        uint16 second;
    };
    """
)
TSTIME = _cs.TSTIME
TIME_TRIGGER = _cs.TIME_TRIGGER
GENERIC_TRIGGER = _cs.GENERIC_TRIGGER
OPTIONAL_SETTINGS = _cs.OPTIONAL_SETTINGS
TSTIMEPERIOD = _cs.TSTIMEPERIOD

FILETIME_NEVER = 0xFFFFFFFFFFFFFFFF

# Padding kinds. FILLER: Windows writes 0x48 ('H'). UNINITIALISED: Windows leaves whatever was in
# memory (real samples show pointer fragments and SYSTEMTIME remains; GhostTask writes zeros).
# ZERO: zeros in every real sample. TERMINATOR: trailing NULs of a string (kept to re-encode).
FILLER = "filler"
UNINITIALISED = "uninitialised"
ZERO = "zero"
TERMINATOR = "terminator"

ACTION_KINDS = {0x6666: "exec", 0x7777: "comhandler", 0x8888: "sendemail", 0x9999: "showmessage"}
TRIGGER_KINDS = {
    0xDDDD: "time",
    0xAAAA: "logon",
    0xFFFF: "boot",
    0xEEEE: "idle",
    0x8888: "registration",
    0x7777: "session_state_change",
    0xCCCC: "event",
    0x6666: "wnf",
}
TIME_MODES = {0: "time", 1: "daily", 2: "weekly", 3: "monthly_date", 4: "monthly_dow"}
SESSION_STATES = {
    1: "ConsoleConnect",
    2: "ConsoleDisconnect",
    3: "RemoteConnect",
    4: "RemoteDisconnect",
    5: "SessionLock",
    6: "SessionUnlock",
}
SID_TYPES = {
    1: "User",
    2: "Group",
    3: "Domain",
    4: "Alias",
    5: "WellKnownGroup",
    6: "DeletedAccount",
    7: "Invalid",
    8: "Unknown",
    9: "Computer",
    10: "Label",
    11: "LogonSession",
}

# JobBucket flags. 0x8000 and 0x20000 are missing from GDATA/volatility3 but occur in real values:
# 0x20000 on LocalSystem principals (the 0xlane post calls it LogonTypeNone; ServiceAccount in the
# XML), 0x8000 on a group principal (S-1-5-4, empty user name). Names for those two are inferred.
JOB_BUCKET_FLAGS = {
    0x2: "RunOnlyIfIdle",
    0x4: "RestartOnIdle",
    0x8: "StopOnIdleEnd",
    0x10: "DisallowStartIfOnBatteries",
    0x20: "StopIfGoingOnBatteries",
    0x40: "StartWhenAvailable",
    0x80: "RunOnlyIfNetworkAvailable",
    0x100: "AllowStartOnDemand",
    0x200: "WakeToRun",
    0x400: "ExecuteParallel",
    0x800: "ExecuteStopExisting",
    0x1000: "ExecuteQueue",
    0x2000: "ExecuteIgnoreNew",
    0x4000: "LogonTypeS4U",
    0x8000: "LogonTypeGroup",
    0x10000: "LogonTypeInteractiveToken",
    0x20000: "LogonTypeServiceAccount",
    0x40000: "LogonTypePassword",
    0x80000: "LogonTypeInteractiveTokenOrPassword",
    0x400000: "Enabled",
    0x800000: "Hidden",
    0x1000000: "RunLevelHighest",
    0x2000000: "Task",
    0x4000000: "Version",
    0x8000000: "TokenSidTypeNone",
    0x10000000: "TokenSidTypeUnrestricted",
    0x20000000: "Interval",
    0x40000000: "AllowHardTerminate",
}
FLAG_ENABLED = 0x400000
FLAG_HIDDEN = 0x800000
FLAG_RUNLEVEL_HIGHEST = 0x1000000
LOGON_TYPES = {
    0x4000: "S4U",
    0x8000: "Group",
    0x10000: "InteractiveToken",
    0x20000: "ServiceAccount",
    0x40000: "Password",
    0x80000: "InteractiveTokenOrPassword",
}

PRIVILEGES = {
    0x4: "SeCreateTokenPrivilege",
    0x8: "SeAssignPrimaryTokenPrivilege",
    0x10: "SeLockMemoryPrivilege",
    0x20: "SeIncreaseQuotaPrivilege",
    0x40: "SeMachineAccountPrivilege",
    0x80: "SeTcbPrivilege",
    0x100: "SeSecurityPrivilege",
    0x200: "SeTakeOwnershipPrivilege",
    0x400: "SeLoadDriverPrivilege",
    0x800: "SeSystemProfilePrivilege",
    0x1000: "SeSystemtimePrivilege",
    0x2000: "SeProfileSingleProcessPrivilege",
    0x4000: "SeIncreaseBasePriorityPrivilege",
    0x8000: "SeCreatePagefilePrivilege",
    0x10000: "SeCreatePermanentPrivilege",
    0x20000: "SeBackupPrivilege",
    0x40000: "SeRestorePrivilege",
    0x80000: "SeShutdownPrivilege",
    0x100000: "SeDebugPrivilege",
    0x200000: "SeAuditPrivilege",
    0x400000: "SeSystemEnvironmentPrivilege",
    0x800000: "SeChangeNotifyPrivilege",
    0x1000000: "SeRemoteShutdownPrivilege",
    0x2000000: "SeUndockPrivilege",
    0x4000000: "SeSyncAgentPrivilege",
    0x8000000: "SeEnableDelegationPrivilege",
    0x10000000: "SeManageVolumePrivilege",
    0x20000000: "SeImpersonatePrivilege",
    0x40000000: "SeCreateGlobalPrivilege",
    0x80000000: "SeTrustedCredManAccessPrivilege",
    0x100000000: "SeRelabelPrivilege",
    0x200000000: "SeIncreaseWorkingSetPrivilege",
    0x400000000: "SeTimeZonePrivilege",
    0x800000000: "SeCreateSymbolicLinkPrivilege",
    0x1000000000: "SeDelegateSessionUserImpersonatePrivilege",
}
DAYS_OF_WEEK = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
WEEKS_OF_MONTH = ["First", "Second", "Third", "Fourth", "Last"]

OPTIONAL_SETTINGS_BASE = 0x2C  # the seven u32s and the network GUID
OPTIONAL_SETTINGS_PRIVILEGES = 0x38
OPTIONAL_SETTINGS_MAINTENANCE = 0x58


# --------------------------------------------------------------------------------------------
# Decoded objects. Semantic fields compare equal; layout facts (offsets, padding) do not.


@dataclass(kw_only=True)
class LayoutItem:
    """One stretch of padding or string terminator, in value order."""

    offset: int
    label: str
    kind: str  # FILLER, UNINITIALISED, ZERO, TERMINATOR
    data: bytes

    @property
    def all_zero(self) -> bool:
        return not self.data.strip(b"\0")


@dataclass(kw_only=True)
class TsTime:
    """A TSTIME: is_localized flag + FILETIME. Localized FILETIMEs hold local wall-clock time."""

    is_localized: bool
    filetime: int
    flag_bytes: dict[str, int] = field(default_factory=dict)  # a flag byte other than 0/1, as found

    @property
    def is_set(self) -> bool:
        return self.filetime not in (0, FILETIME_NEVER)

    def stamp(self, meaning: str, local_tz: tzinfo | None) -> Stamp | None:
        if not self.is_set:
            return None
        return filetime_stamp(self.filetime, meaning, local_tz=local_tz, local=self.is_localized)


@dataclass(kw_only=True)
class TaskCacheAction:
    """One decoded action. Strings are None only where the layout has no such field."""

    magic: int
    kind: str  # exec, comhandler, sendemail, showmessage, unknown
    action_id: str = ""
    command: str | None = None
    arguments: str | None = None
    working_directory: str | None = None
    flags: int | None = None  # Exec flags (version 3 only)
    class_id: str | None = None
    data: str | None = None
    sender: str | None = None
    to: str | None = None
    cc: str | None = None
    bcc: str | None = None
    reply_to: str | None = None
    server: str | None = None
    subject: str | None = None
    body: str | None = None
    attachments: list[str] | None = None
    headers: list[tuple[str, str]] | None = None
    caption: str | None = None
    content: str | None = None
    offset: int = field(default=0, compare=False)


@dataclass(kw_only=True)
class ActionsBlob:
    """The ``Actions`` value: version, context (principal id) and every action in order."""

    version: int | None = None
    context: str | None = None  # absent (None) in version 1
    actions: list[TaskCacheAction] = field(default_factory=list)
    layout_variant: str = ""  # v1, v3, v2-context, v2-no-context, ...
    size: int = field(default=0, compare=False)
    consumed: int = field(default=0, compare=False)
    errors: list[str] = field(default_factory=list, compare=False)
    layout: list[LayoutItem] = field(default_factory=list, compare=False)
    raw_hex: str = field(default="", compare=False, repr=False)


@dataclass(kw_only=True)
class UserInfo:
    """JobBucket / trigger user: optional SID (with SID_NAME_USE type) and optional user name."""

    skip_user: bool
    skip_sid: bool | None = None
    flag_bytes: dict[str, int] = field(default_factory=dict)  # a flag byte other than 0/1, as found
    sid_type: int | None = None
    sid: str | None = None
    sid_hex: str | None = None  # kept when the SID bytes do not parse
    username: str | None = None


@dataclass(kw_only=True)
class OptionalSettings:
    length: int
    idle_duration: int | None = None
    idle_wait_timeout: int | None = None
    execution_time_limit: int | None = None
    delete_expired_after: int | None = None
    priority: int | None = None
    restart_delay: int | None = None
    restart_retries: int | None = None
    network_id: str | None = None
    privileges: int | None = None  # length >= 0x38
    periodicity: tuple[int, ...] | None = None  # length 0x58: maintenance settings
    deadline: tuple[int, ...] | None = None
    exclusive: int | None = None
    extra_hex: str | None = None  # bytes of an unknown, longer layout

    @property
    def privilege_names(self) -> list[str]:
        if not self.privileges:
            return []
        return [name for bit, name in PRIVILEGES.items() if self.privileges & bit]


@dataclass(kw_only=True)
class JobBucket:
    flags: int | None = None
    crc32: int | None = None
    principal_id: str | None = None  # version >= 0x16
    display_name: str | None = None  # version >= 0x17
    user: UserInfo | None = None
    settings_length: int | None = None
    settings: OptionalSettings | None = None

    @property
    def flag_names(self) -> list[str]:
        if self.flags is None:
            return []
        names = [name for bit, name in JOB_BUCKET_FLAGS.items() if self.flags & bit]
        unknown = self.unknown_flag_bits
        return names + ([f"0x{unknown:x}"] if unknown else [])

    @property
    def unknown_flag_bits(self) -> int:
        known = sum(JOB_BUCKET_FLAGS)
        return (self.flags or 0) & ~known


@dataclass(kw_only=True)
class TaskCacheTrigger:
    """One decoded trigger; which fields are set depends on ``kind``."""

    magic: int
    kind: str  # time, logon, boot, idle, registration, session_state_change, event, wnf
    start: TsTime | None = None
    end: TsTime | None = None
    enabled: bool | None = None
    stop_at_duration_end: bool | None = None
    flag_bytes: dict[str, int] = field(default_factory=dict)  # a flag byte other than 0/1, as found
    repetition_interval: int | None = None
    repetition_duration: int | None = None
    # time triggers
    unknown_time: TsTime | None = None
    execution_time_limit: int | None = None
    mode: int | None = None
    data1: int | None = None
    data2: int | None = None
    data3: int | None = None
    unknown: int | None = None
    max_random_delay: int | None = None
    # generic triggers
    delay: int | None = None
    timeout: int | None = None
    repetition_duration2: int | None = None
    # version >= 0x16
    trigger_id: str | None = None
    # logon, session
    user: UserInfo | None = None
    session_state: int | None = None
    # event
    subscription: str | None = None
    event_unknown1: int | None = None
    event_unknown2: int | None = None
    event_unknown_text: str | None = None
    value_queries: list[tuple[str, str]] | None = None
    # wnf
    wnf_state_name: str | None = None
    wnf_data: str | None = None  # hex
    offset: int = field(default=0, compare=False)


@dataclass(kw_only=True)
class TriggersBlob:
    """The ``Triggers`` value: header, JobBucket (principal, flags, settings) and every trigger."""

    version: int | None = None
    start_boundary: TsTime | None = None
    end_boundary: TsTime | None = None
    job_bucket: JobBucket | None = None
    triggers: list[TaskCacheTrigger] = field(default_factory=list)
    size: int = field(default=0, compare=False)
    consumed: int = field(default=0, compare=False)
    errors: list[str] = field(default_factory=list, compare=False)
    layout: list[LayoutItem] = field(default_factory=list, compare=False)
    raw_hex: str = field(default="", compare=False, repr=False)
    local_tz: tzinfo | None = field(default=None, compare=False, repr=False)

    def _pads(self, kind: str) -> list[LayoutItem]:
        return [item for item in self.layout if item.kind == kind]

    @property
    def uninitialised_padding_all_zero(self) -> bool | None:
        """True when every pad Windows leaves uninitialised is zero (GhostTask-style writer).

        None when the value has no such pad. Real Windows 7/8.1/10 values have non-zero bytes here.
        """
        pads = self._pads(UNINITIALISED)
        if not pads:
            return None
        return all(p.all_zero for p in pads)

    @property
    def filler_all_0x48(self) -> bool | None:
        """True when every filler pad is 0x48 (Windows and GhostTask both write it)."""
        pads = self._pads(FILLER)
        if not pads:
            return None
        return all(not p.data.strip(b"H") for p in pads)


@dataclass(kw_only=True)
class DynamicInfo:
    """The ``DynamicInfo`` value (28 bytes Vista/7, 36 bytes Windows 8+). FILETIMEs are UTC."""

    size: int
    magic: int | None = None
    created: int | None = None  # +0x04 (registration / creation)
    last_run: int | None = None  # +0x0C
    status_0x14: int | None = None  # HRESULT in real Vista and Windows 8 samples
    status_0x18: int | None = None  # HRESULT in a real Windows 10 sample
    last_successful_run: int | None = None  # +0x1C, 36-byte form only
    extra_hex: str | None = None
    errors: list[str] = field(default_factory=list, compare=False)
    raw_hex: str = field(default="", compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# Reading


class _Truncated(Exception):
    """Internal: the value ended inside a field."""


class _Reader:
    def __init__(self, data: bytes, layout: list[LayoutItem], errors: list[str]):
        self.data = data
        self.pos = 0
        self.layout = layout
        self.errors = errors

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise _Truncated(f"truncated: {what} needs {size} bytes at offset 0x{self.pos:x}, value is {len(self.data)} bytes")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "little")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little")

    def u64(self, what: str) -> int:
        return int.from_bytes(self.take(8, what), "little")

    def struct(self, kind: Any, what: str) -> Any:
        return kind(self.take(len(kind), what))

    def note(self, offset: int, label: str, kind: str, data: bytes) -> None:
        self.layout.append(LayoutItem(offset=offset, label=label, kind=kind, data=bytes(data)))

    def pad(self, size: int, label: str, kind: str) -> None:
        if size:
            offset = self.pos
            self.note(offset, label, kind, self.take(size, label))

    def aligned_u1(self, label: str, kind: str) -> int:
        value = self.u8(label)
        self.pad(7, label + ".pad", kind)
        return value

    def aligned_u4(self, label: str, kind: str) -> int:
        value = self.u32(label)
        self.pad(4, label + ".pad", kind)
        return value

    def text(self, size: int, label: str) -> str:
        """UTF-16LE of ``size`` bytes; trailing NULs stripped and kept as a TERMINATOR item."""
        offset = self.pos
        raw = self.take(size, label)
        if size % 2:
            self.errors.append(f"{label}: odd UTF-16 byte length {size} at offset 0x{offset:x}")
        even = raw[: size - size % 2]
        stripped = even
        while stripped.endswith(b"\0\0"):
            stripped = stripped[:-2]
        if len(stripped) != len(raw):
            self.note(offset + len(stripped), label + ".nul", TERMINATOR, raw[len(stripped) :])
        try:
            return stripped.decode("utf-16-le")
        except UnicodeDecodeError:
            self.errors.append(f"{label}: invalid UTF-16 at offset 0x{offset:x} (replaced)")
            return stripped.decode("utf-16-le", errors="replace")

    def bstr(self, label: str) -> str:
        return self.text(self.u32(label + ".length"), label)

    def aligned_bstr(self, label: str) -> str:
        size = self.aligned_u4(label + ".length", FILLER)
        offset = self.pos
        text = self.text(size, label)
        self._require_terminator(offset, size, label)
        self.pad(-size % 8, label + ".pad", FILLER)
        return text

    def expand_sz(self, label: str) -> str:
        count = self.aligned_u4(label + ".count", ZERO)
        if count == 0:
            return ""  # no terminator, no padding (real Event triggers)
        size = count * 2 + 2
        offset = self.pos
        text = self.text(size, label)
        self._require_terminator(offset, size, label)
        self.pad(-size % 8, label + ".pad", FILLER)
        return text

    def _require_terminator(self, offset: int, size: int, label: str) -> None:
        """Triggers strings always end with a UTF-16 NUL when Windows writes them: one without it was
        written by something else (or damaged), so it is flagged rather than silently completed."""
        if size >= 2 and self.data[offset + size - 2 : offset + size] != b"\0\0" and offset + size <= len(self.data):
            self.errors.append(f"{label}: no UTF-16 NUL terminator at offset 0x{offset + size - 2:x} (Windows writes one)")

    def tstime(self, label: str, unset_kind: str = UNINITIALISED) -> TsTime:
        offset = self.pos
        raw = self.struct(TSTIME, label)
        kind = unset_kind if raw.filetime == 0 else UNINITIALISED
        self.note(offset + 1, label + ".pad", kind, raw.pad)
        return _tstime(raw)


def _bytes_of(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TaskCacheError(f"expected bytes, got {type(data).__name__}")


def format_guid(raw: bytes) -> str:
    """16 bytes (GUID, little-endian fields) -> "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}"."""
    a, b, c = struct.unpack_from("<IHH", raw)
    return f"{{{a:08X}-{b:04X}-{c:04X}-{raw[8:10].hex().upper()}-{raw[10:16].hex().upper()}}}"


# --- Actions ------------------------------------------------------------------------------

# Version 2 is the open question: volatility3 and GhostTask (which writes 2 on Server 2016, with
# the context string and without the Exec flags) read a context string; GDATA's ksy reads it only
# for version 3. No real version-2 value exists in the corpus, so both are tried, GhostTask's first,
# and the one that decodes the whole value wins; ``layout_variant`` says which was used.
_ACTION_LAYOUTS = {
    1: [("v1", False, False)],
    2: [("v2-context", True, False), ("v2-no-context", False, False), ("v2-context-flags", True, True)],
    3: [("v3", True, True)],
}


def _read_action(reader: _Reader, magic: int, index: int, exec_flags: bool, action: TaskCacheAction) -> None:
    label = f"action[{index}]"
    action.action_id = reader.bstr(label + ".id")
    if magic == 0x6666:
        action.command = reader.bstr(label + ".command")
        action.arguments = reader.bstr(label + ".arguments")
        action.working_directory = reader.bstr(label + ".working_directory")
        if exec_flags:
            action.flags = reader.u16(label + ".flags")
    elif magic == 0x7777:
        action.class_id = format_guid(reader.take(16, label + ".clsid"))
        action.data = reader.bstr(label + ".data")
    elif magic == 0x8888:
        for name in ("sender", "to", "cc", "bcc", "reply_to", "server", "subject", "body"):
            setattr(action, name, reader.bstr(f"{label}.{name}"))
        action.attachments = []
        for i in range(reader.u32(label + ".attachment_count")):
            action.attachments.append(reader.bstr(f"{label}.attachment[{i}]"))
        action.headers = []
        for i in range(reader.u32(label + ".header_count")):
            name = reader.bstr(f"{label}.header[{i}].name")
            action.headers.append((name, reader.bstr(f"{label}.header[{i}].value")))
    elif magic == 0x9999:
        action.caption = reader.bstr(label + ".caption")
        action.content = reader.bstr(label + ".content")


def _decode_actions_as(data: bytes, version: int, variant: str, context: bool, exec_flags: bool) -> ActionsBlob:
    blob = ActionsBlob(version=version, layout_variant=variant, size=len(data), raw_hex=data.hex())
    reader = _Reader(data, blob.layout, blob.errors)
    reader.pos = 2
    try:
        if context:
            blob.context = reader.bstr("context")
        while reader.remaining:
            offset = reader.pos
            magic = reader.u16(f"action[{len(blob.actions)}].magic")
            if magic not in ACTION_KINDS:
                reader.pos = offset
                blob.errors.append(
                    f"unknown action magic 0x{magic:04x} at offset 0x{offset:x}; {reader.remaining} bytes left undecoded"
                )
                break
            action = TaskCacheAction(magic=magic, kind=ACTION_KINDS[magic], offset=offset)
            blob.actions.append(action)
            _read_action(reader, magic, len(blob.actions) - 1, exec_flags, action)
    except _Truncated as exc:
        blob.errors.append(str(exc))
    if not blob.actions and not blob.errors:
        blob.errors.append("Actions value holds no action (Windows requires 1 to 32)")
    blob.consumed = reader.pos
    return blob


def decode_actions(data: bytes) -> ActionsBlob:
    """Decode an ``Actions`` value (versions 1-3; Exec, ComHandler, SendEmail, ShowMessage)."""
    data = _bytes_of(data)
    if len(data) < 2:
        return ActionsBlob(size=len(data), errors=[f"truncated: Actions value is {len(data)} bytes"], raw_hex=data.hex())
    version = int.from_bytes(data[:2], "little")
    candidates = _ACTION_LAYOUTS.get(version)
    if candidates is None:
        blob = _decode_actions_as(data, version, "unknown-as-v3", True, True)
        blob.errors.insert(0, f"unknown Actions version {version}: decoded with the version-3 layout")
        return blob
    first = None
    for variant, context, exec_flags in candidates:
        blob = _decode_actions_as(data, version, variant, context, exec_flags)
        if not blob.errors and blob.actions:
            return blob
        first = first or blob
    return first


# --- Triggers -----------------------------------------------------------------------------


def set_flag(obj: Any, name: str, byte: int) -> None:
    """A u8 flag: true when non-zero, as Windows reads it; a byte other than 0/1 is kept as found so
    the value re-encodes to the same bytes (and stays visible to the examiner)."""
    setattr(obj, name, bool(byte))
    if byte not in (0, 1):
        obj.flag_bytes[name] = int(byte)


def flag_byte(obj: Any, name: str) -> int:
    """The byte a flag was read from (the inverse of :func:`set_flag`)."""
    return obj.flag_bytes.get(name, int(bool(getattr(obj, name))))


def _tstime(raw: Any) -> TsTime:
    value = TsTime(is_localized=False, filetime=raw.filetime)
    set_flag(value, "is_localized", raw.is_localized)
    return value


def _read_user(reader: _Reader, label: str) -> UserInfo:
    user = UserInfo(skip_user=False)
    set_flag(user, "skip_user", reader.aligned_u1(label + ".skip_user", FILLER))
    if not user.skip_user:
        set_flag(user, "skip_sid", reader.aligned_u1(label + ".skip_sid", FILLER))
        if not user.skip_sid:
            user.sid_type = reader.aligned_u4(label + ".sid_type", FILLER)
            size = reader.aligned_u4(label + ".sid.length", FILLER)
            offset = reader.pos
            raw = reader.take(size, label + ".sid")
            try:
                user.sid, used = sid_from_bytes(raw)
                if used != size:
                    user.sid_hex = raw.hex()
                    reader.errors.append(f"{label}.sid: {size - used} extra bytes at offset 0x{offset:x}")
            except SecurityDescriptorError as exc:
                user.sid_hex = raw.hex()
                reader.errors.append(f"{label}.sid at offset 0x{offset:x}: {exc}")
            reader.pad(-size % 8, label + ".sid.pad", FILLER)
        user.username = reader.aligned_bstr(label + ".username")
    return user


def _period(raw: Any) -> tuple[int, ...]:
    return tuple(getattr(raw, name) for name in ("year", "month", "week", "day", "hour", "minute", "second"))


def _read_settings(reader: _Reader, bucket: JobBucket) -> None:
    length = reader.aligned_u4("settings.length", FILLER)
    bucket.settings_length = length
    if not length:
        return
    settings = OptionalSettings(length=length)
    bucket.settings = settings
    end = reader.pos + length
    if length >= OPTIONAL_SETTINGS_BASE:
        base = reader.struct(OPTIONAL_SETTINGS, "settings")
        for name in (
            "idle_duration",
            "idle_wait_timeout",
            "execution_time_limit",
            "delete_expired_after",
            "priority",
            "restart_delay",
            "restart_retries",
        ):
            setattr(settings, name, getattr(base, name))
        settings.network_id = format_guid(base.network_id)
    if length >= OPTIONAL_SETTINGS_PRIVILEGES:
        reader.pad(4, "settings.privileges.align", ZERO)
        settings.privileges = reader.u64("settings.privileges")
    if length >= OPTIONAL_SETTINGS_MAINTENANCE:
        settings.periodicity = _period(reader.struct(TSTIMEPERIOD, "settings.periodicity"))
        settings.deadline = _period(reader.struct(TSTIMEPERIOD, "settings.deadline"))
        settings.exclusive = reader.u8("settings.exclusive")
        reader.pad(3, "settings.exclusive.pad", ZERO)
    if length not in (OPTIONAL_SETTINGS_BASE, OPTIONAL_SETTINGS_PRIVILEGES, OPTIONAL_SETTINGS_MAINTENANCE):
        reader.errors.append(f"unknown optional settings length 0x{length:x}: extra bytes kept as hex")
        settings.extra_hex = reader.take(end - reader.pos, "settings.extra").hex()
    reader.pad(-length % 8, "settings.pad", FILLER)


def _read_trigger_id(reader: _Reader, version: int, label: str, trigger: TaskCacheTrigger) -> None:
    if version >= 0x16:
        size = reader.u32(label + ".id.length")
        offset = reader.pos
        trigger.trigger_id = reader.text(size, label + ".id")
        reader._require_terminator(offset, size, label + ".id")  # like every Triggers string (hypothesis found it)
        reader.pad(-(4 + size) % 8, label + ".id.pad", FILLER)


def _read_time_trigger(reader: _Reader, version: int, label: str, trigger: TaskCacheTrigger) -> None:
    offset = reader.pos
    body = reader.struct(TIME_TRIGGER, label)
    for name in ("start", "end", "unknown_time"):
        raw = getattr(body, name)
        setattr(trigger, name, _tstime(raw))
    # Unset (0) tstimes in time triggers have zero padding in every real sample; set ones carry garbage.
    for i, name in enumerate(("start", "end", "unknown_time")):
        raw = getattr(body, name)
        reader.note(offset + 16 * i + 1, f"{label}.{name}.pad", ZERO if raw.filetime == 0 else UNINITIALISED, raw.pad)
    for name in ("repetition_interval", "repetition_duration", "execution_time_limit", "mode", "data1", "data2", "data3", "unknown", "max_random_delay"):
        setattr(trigger, name, getattr(body, name))
    set_flag(trigger, "stop_at_duration_end", body.stop_at_duration_end)
    set_flag(trigger, "enabled", body.enabled)
    reader.note(offset + 0x46, label + ".pad1", ZERO, body.pad1)
    reader.note(offset + 0x4A, label + ".pad2", UNINITIALISED, body.pad2)
    reader.note(offset + 0x54, label + ".pad3", UNINITIALISED, body.pad3)
    _read_trigger_id(reader, version, label, trigger)


def _read_generic_trigger(reader: _Reader, version: int, label: str, trigger: TaskCacheTrigger) -> None:
    offset = reader.pos
    body = reader.struct(GENERIC_TRIGGER, label)
    for i, name in enumerate(("start", "end")):
        raw = getattr(body, name)
        setattr(trigger, name, _tstime(raw))
        reader.note(offset + 16 * i + 1, f"{label}.{name}.pad", UNINITIALISED, raw.pad)
    for name in ("delay", "timeout", "repetition_interval", "repetition_duration", "repetition_duration2"):
        setattr(trigger, name, getattr(body, name))
    set_flag(trigger, "stop_at_duration_end", body.stop_at_duration_end)
    set_flag(trigger, "enabled", body.enabled)
    reader.note(offset + 0x35, label + ".pad1", UNINITIALISED, body.pad1)
    reader.note(offset + 0x39, label + ".pad2", UNINITIALISED, body.pad2)
    reader.note(offset + 0x40, label + ".unknown", UNINITIALISED, body.unknown)
    _read_trigger_id(reader, version, label, trigger)
    if trigger.magic == 0xAAAA:
        trigger.user = _read_user(reader, label + ".user")
    elif trigger.magic == 0x7777:
        trigger.session_state = reader.u32(label + ".state")
        reader.pad(4, label + ".state.pad", ZERO)
        trigger.user = _read_user(reader, label + ".user")
    elif trigger.magic == 0xCCCC:
        trigger.subscription = reader.expand_sz(label + ".subscription")
        trigger.event_unknown1 = reader.u32(label + ".unknown1")
        trigger.event_unknown2 = reader.u32(label + ".unknown2")
        trigger.event_unknown_text = reader.expand_sz(label + ".unknown_text")
        trigger.value_queries = []
        for i in range(reader.aligned_u4(label + ".value_query_count", ZERO)):
            name = reader.expand_sz(f"{label}.value_query[{i}].name")
            trigger.value_queries.append((name, reader.expand_sz(f"{label}.value_query[{i}].value")))
    elif trigger.magic == 0x6666:
        trigger.wnf_state_name = reader.take(8, label + ".state_name").hex()
        size = reader.aligned_u4(label + ".data.length", ZERO)
        trigger.wnf_data = reader.take(size, label + ".data").hex()  # not padded (real sample)


def decode_triggers(data: bytes, local_tz: tzinfo | None = None) -> TriggersBlob:
    """Decode a ``Triggers`` value. ``local_tz`` converts the localized (wall-clock) times."""
    data = _bytes_of(data)
    blob = TriggersBlob(size=len(data), raw_hex=data.hex(), local_tz=local_tz)
    reader = _Reader(data, blob.layout, blob.errors)
    try:
        blob.version = reader.aligned_u1("version", ZERO)
        if blob.version not in (0x15, 0x16, 0x17):
            blob.errors.append(f"unknown Triggers version 0x{blob.version:x}: decoded with the 0x17 layout")
        version = blob.version if blob.version in (0x15, 0x16, 0x17) else 0x17
        blob.start_boundary = reader.tstime("header.start")
        blob.end_boundary = reader.tstime("header.end")
        bucket = blob.job_bucket = JobBucket()
        bucket.flags = reader.aligned_u4("flags", FILLER)
        bucket.crc32 = reader.aligned_u4("crc32", FILLER)
        if version >= 0x16:
            bucket.principal_id = reader.aligned_bstr("principal_id")
        if version >= 0x17:
            bucket.display_name = reader.aligned_bstr("display_name")
        bucket.user = _read_user(reader, "user")
        _read_settings(reader, bucket)
        while reader.remaining:
            offset = reader.pos
            index = len(blob.triggers)
            label = f"trigger[{index}]"
            magic = reader.aligned_u4(label + ".magic", ZERO)
            if magic not in TRIGGER_KINDS:
                reader.pos = offset
                blob.layout.pop()
                blob.errors.append(
                    f"unknown trigger magic 0x{magic:x} at offset 0x{offset:x}; {reader.remaining} bytes left undecoded"
                )
                break
            trigger = TaskCacheTrigger(magic=magic, kind=TRIGGER_KINDS[magic], offset=offset)
            blob.triggers.append(trigger)
            if magic == 0xDDDD:
                _read_time_trigger(reader, version, label, trigger)
            else:
                _read_generic_trigger(reader, version, label, trigger)
    except _Truncated as exc:
        blob.errors.append(str(exc))
    blob.consumed = reader.pos
    return blob


# --- DynamicInfo --------------------------------------------------------------------------


def decode_dynamic_info(data: bytes) -> DynamicInfo:
    """Decode ``DynamicInfo`` (28 or 36 bytes); other sizes decode what is there and are flagged."""
    data = _bytes_of(data)
    info = DynamicInfo(size=len(data), raw_hex=data.hex())
    reader = _Reader(data, [], info.errors)
    try:
        info.magic = reader.u32("magic")
        info.created = reader.u64("created")
        info.last_run = reader.u64("last_run")
        info.status_0x14 = reader.u32("status_0x14")
        info.status_0x18 = reader.u32("status_0x18")
        if reader.remaining:
            info.last_successful_run = reader.u64("last_successful_run")
    except _Truncated as exc:
        info.errors.append(str(exc))
    if reader.remaining:
        info.extra_hex = reader.take(reader.remaining, "extra").hex()
    if info.magic is not None and info.magic != 3:
        info.errors.append(f"unexpected DynamicInfo magic {info.magic} (Windows writes 3)")
    if len(data) not in (28, 36):
        info.errors.append(f"unexpected DynamicInfo size {len(data)} (28 on Vista/7, 36 on Windows 8+)")
    return info


# --------------------------------------------------------------------------------------------
# Records


def seconds_to_duration(seconds: int | None) -> str | None:
    """Seconds -> ISO 8601 duration as the task XML writes it (PT20M, P1D, P3DT12H); 0 -> None."""
    if not seconds or seconds == 0xFFFFFFFF:
        return None
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return text + ("T" + clock if clock else "")


def _bits(value: int, names: list[str]) -> list[str]:
    return [name for i, name in enumerate(names) if value & (1 << i)]


def schedule_details(trigger: TaskCacheTrigger) -> dict[str, Any]:
    """The time-trigger schedule in words (mode data1/data2/data3 decoded)."""
    mode = trigger.mode
    d1, d2, d3 = trigger.data1 or 0, trigger.data2 or 0, trigger.data3 or 0
    if mode == 1:
        return {"days_interval": d1}
    if mode == 2:
        return {"weeks_interval": d1, "days_of_week": _bits(d2, DAYS_OF_WEEK)}
    if mode == 3:
        days = (d2 << 16) | d1
        return {"days_of_month": [i + 1 for i in range(31) if days & (1 << i)], "months": _bits(d3, MONTHS)}
    if mode == 4:
        return {"days_of_week": _bits(d1, DAYS_OF_WEEK), "weeks_of_month": _bits(d2, WEEKS_OF_MONTH), "months": _bits(d3, MONTHS)}
    return {}


def _user_id(user: UserInfo | None) -> str | None:
    if user is None or user.skip_user:
        return None
    return user.sid or user.username or None


def trigger_records(blob: TriggersBlob, local_tz: tzinfo | None = None) -> list[Trigger]:
    """Every decoded trigger as a :class:`triage.records.Trigger` (start/end as Stamps)."""
    tz = local_tz if local_tz is not None else blob.local_tz
    records = []
    for trig in blob.triggers:
        kind = trig.kind
        details: dict[str, Any] = {"magic": f"0x{trig.magic:04x}"}
        if trig.kind == "time":
            kind = TIME_MODES.get(trig.mode, "unknown")
            details.update(schedule_details(trig))
            details["mode"] = trig.mode
            details["random_delay"] = seconds_to_duration(trig.max_random_delay)
            details["execution_time_limit"] = seconds_to_duration(trig.execution_time_limit)
        else:
            details["timeout"] = seconds_to_duration(trig.timeout)
        details["stop_at_duration_end"] = trig.stop_at_duration_end
        if trig.user is not None:
            details["user_sid"] = trig.user.sid
            details["user_name"] = trig.user.username or None
        if trig.session_state is not None:
            details["state_change"] = SESSION_STATES.get(trig.session_state, f"0x{trig.session_state:x}")
        if trig.kind == "event":
            details["subscription"] = trig.subscription
            details["value_queries"] = [list(q) for q in trig.value_queries or []]
        if trig.kind == "wnf":
            details["state_name"] = trig.wnf_state_name
            details["data"] = trig.wnf_data
        records.append(
            Trigger(
                kind=kind,
                trigger_id=trig.trigger_id or None,
                enabled=trig.enabled,
                start=trig.start.stamp("trigger_start", tz) if trig.start else None,
                end=trig.end.stamp("trigger_end", tz) if trig.end else None,
                repetition_interval=seconds_to_duration(trig.repetition_interval),
                repetition_duration=seconds_to_duration(trig.repetition_duration),
                repetition_seconds=trig.repetition_interval or None,
                delay=seconds_to_duration(trig.delay),
                user_id=_user_id(trig.user),
                details={k: v for k, v in details.items() if v not in (None, [], "")},
            )
        )
    return records


def action_records(blob: ActionsBlob) -> list[Action]:
    """Every decoded action as a :class:`triage.records.Action`."""
    records = []
    for act in blob.actions:
        details: dict[str, Any] = {"magic": f"0x{act.magic:04x}"}
        if blob.context is not None:
            details["context"] = blob.context
        if act.flags is not None:
            details["flags"] = act.flags
        for name in ("sender", "to", "cc", "bcc", "reply_to", "server", "subject", "body", "caption", "content"):
            if getattr(act, name) is not None:
                details[name] = getattr(act, name)
        if act.attachments is not None:
            details["attachments"] = list(act.attachments)
        if act.headers is not None:
            details["headers"] = [list(h) for h in act.headers]
        records.append(
            Action(
                kind=act.kind,
                action_id=act.action_id or None,
                command=act.command,
                arguments=act.arguments or None,
                working_directory=act.working_directory or None,
                class_id=act.class_id,
                data=act.data or None,
                details=details,
            )
        )
    return records


def dynamic_info_stamps(info: DynamicInfo) -> list[Stamp]:
    """The DynamicInfo FILETIMEs (UTC) as Stamps: registered (when the task was created in the scheduler),
    last_run, last_successful_run."""
    stamps = []
    for meaning, value in (("registered", info.created), ("last_run", info.last_run), ("last_successful_run", info.last_successful_run)):
        stamp = filetime_stamp(value, meaning) if value and value != FILETIME_NEVER else None
        if stamp is not None:
            stamps.append(stamp)
    return stamps


def principal_facts(blob: TriggersBlob) -> dict[str, Any]:
    """TaskDefinition fields the JobBucket carries: principal, user, logon type, run level, enabled, hidden."""
    bucket = blob.job_bucket
    if bucket is None or bucket.flags is None:
        return {}
    flags = bucket.flags
    logon = [name for bit, name in LOGON_TYPES.items() if flags & bit]
    facts: dict[str, Any] = {
        "principal_id": bucket.principal_id or None,
        "user_id": _user_id(bucket.user),
        "logon_type": logon[0] if len(logon) == 1 else ("|".join(logon) or None),
        "run_level": "HighestAvailable" if flags & FLAG_RUNLEVEL_HIGHEST else "LeastPrivilege",
        "enabled": bool(flags & FLAG_ENABLED),
        "hidden": bool(flags & FLAG_HIDDEN),
    }
    return facts


def settings_facts(blob: TriggersBlob) -> dict[str, Any]:
    """JobBucket flags, CRC32 and optional settings as plain values (TaskDefinition.settings)."""
    bucket = blob.job_bucket
    if bucket is None:
        return {}
    out: dict[str, Any] = {}
    if bucket.flags is not None:
        out["job_bucket_flags"] = f"0x{bucket.flags:08x}"
        out["job_bucket_flag_names"] = bucket.flag_names
    if bucket.crc32 is not None:
        out["crc32"] = f"0x{bucket.crc32:08x}"
    if bucket.display_name:
        out["display_name"] = bucket.display_name
    if bucket.user is not None:
        out["user_name"] = bucket.user.username or None
        out["user_sid"] = bucket.user.sid
        if bucket.user.sid_type is not None:
            out["user_sid_type"] = SID_TYPES.get(bucket.user.sid_type, str(bucket.user.sid_type))
    settings = bucket.settings
    if bucket.settings_length is not None:
        out["optional_settings_length"] = f"0x{bucket.settings_length:x}"
    if settings is not None:
        out["idle_duration"] = seconds_to_duration(settings.idle_duration)
        out["idle_wait_timeout"] = seconds_to_duration(settings.idle_wait_timeout)
        out["execution_time_limit"] = seconds_to_duration(settings.execution_time_limit)
        out["delete_expired_after"] = seconds_to_duration(settings.delete_expired_after)
        out["priority"] = settings.priority
        out["restart_interval"] = seconds_to_duration(settings.restart_delay)
        out["restart_count"] = settings.restart_retries
        if settings.privileges is not None:
            out["privileges"] = settings.privilege_names
        if settings.periodicity is not None:
            out["maintenance_periodicity"] = list(settings.periodicity)
            out["maintenance_deadline"] = list(settings.deadline or ())
            out["maintenance_exclusive"] = bool(settings.exclusive)
    return {k: v for k, v in out.items() if v is not None}
