"""Self-relative SECURITY_DESCRIPTOR parsing and SDDL rendering (TaskCache Tree ``SD`` values).

Why triage has its own: the Tree ``SD`` value decides who may see a task (Tarrask deletes it,
GhostTask writes ``O:BAG:SYD:`` with an empty DACL), and no anchor tool decodes it. The layout is
MS-DTYP 2.4.6 (SECURITY_DESCRIPTOR, relative form), 2.4.5 (ACL), 2.4.4 (ACEs), 2.4.2 (SID);
the SDDL rendering follows MS-DTYP 2.5.1 and what ConvertSecurityDescriptorToStringSecurityDescriptor
prints: well-known SID aliases, composite rights (FA, KA ...) or concatenated single rights, else hex.

Only :class:`SecurityDescriptorError` is ever raised, for bytes that are not a descriptor.
A descriptor without a DACL (``dacl is None``) and one with an empty DACL (``dacl == []``, deny
everyone) are different things and stay different here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dissect.cstruct import cstruct

from triage.parsers import ParseError


class SecurityDescriptorError(ParseError):
    """The bytes are not a well-formed self-relative security descriptor (or a SID)."""


_cs = cstruct().load(
    """
    struct SD_HEADER {
        uint8  revision;
        uint8  sbz1;
        uint16 control;
        uint32 owner_offset;
        uint32 group_offset;
        uint32 sacl_offset;
        uint32 dacl_offset;
    };
    struct ACL_HEADER {
        uint8  revision;
        uint8  sbz1;
        uint16 size;
        uint16 ace_count;
        uint16 sbz2;
    };
    struct ACE_HEADER {
        uint8  type;
        uint8  flags;
        uint16 size;
    };
    """
)

# SECURITY_DESCRIPTOR_CONTROL bits (MS-DTYP 2.4.6).
CONTROL_FLAGS = {
    0x0001: "SE_OWNER_DEFAULTED",
    0x0002: "SE_GROUP_DEFAULTED",
    0x0004: "SE_DACL_PRESENT",
    0x0008: "SE_DACL_DEFAULTED",
    0x0010: "SE_SACL_PRESENT",
    0x0020: "SE_SACL_DEFAULTED",
    0x0040: "SE_DACL_TRUSTED",
    0x0080: "SE_SERVER_SECURITY",
    0x0100: "SE_DACL_AUTO_INHERIT_REQ",
    0x0200: "SE_SACL_AUTO_INHERIT_REQ",
    0x0400: "SE_DACL_AUTO_INHERITED",
    0x0800: "SE_SACL_AUTO_INHERITED",
    0x1000: "SE_DACL_PROTECTED",
    0x2000: "SE_SACL_PROTECTED",
    0x4000: "SE_RM_CONTROL_VALID",
    0x8000: "SE_SELF_RELATIVE",
}
SE_DACL_PRESENT = 0x0004
SE_SACL_PRESENT = 0x0010
SE_SELF_RELATIVE = 0x8000

# ACE type -> SDDL ace_type string (MS-DTYP 2.5.1.1).
ACE_TYPES = {
    0x00: "A",
    0x01: "D",
    0x02: "AU",
    0x03: "AL",
    0x05: "OA",
    0x06: "OD",
    0x07: "OU",
    0x08: "OL",
    0x09: "XA",
    0x0A: "XD",
    0x0B: "ZA",
    0x0C: "ZD",
    0x0D: "XU",
    0x0F: "ZU",
    0x11: "ML",
    0x12: "RA",
    0x13: "SP",
}
_OBJECT_ACE_TYPES = {0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0F, 0x10}

# ACE flags in SDDL order.
ACE_FLAGS = [(0x01, "OI"), (0x02, "CI"), (0x04, "NP"), (0x08, "IO"), (0x10, "ID"), (0x40, "SA"), (0x80, "FA")]

# Composite rights Windows prints as one alias (checked first, exact match only).
_COMPOSITE_RIGHTS = [
    ("FA", 0x001F01FF),
    ("FR", 0x00120089),
    ("FW", 0x00120116),
    ("FX", 0x001200A0),
    ("KA", 0x000F003F),
    ("KR", 0x00020019),
    ("KW", 0x00020006),
]
# Single rights in the order Windows concatenates them.
_SINGLE_RIGHTS = [
    ("GA", 0x10000000),
    ("GR", 0x80000000),
    ("GW", 0x40000000),
    ("GX", 0x20000000),
    ("RC", 0x00020000),
    ("SD", 0x00010000),
    ("WD", 0x00040000),
    ("WO", 0x00080000),
    ("RP", 0x00000010),
    ("WP", 0x00000020),
    ("CC", 0x00000001),
    ("DC", 0x00000002),
    ("LC", 0x00000004),
    ("SW", 0x00000008),
    ("LO", 0x00000080),
    ("DT", 0x00000040),
    ("CR", 0x00000100),
]
RIGHTS_BY_NAME = dict(_COMPOSITE_RIGHTS + _SINGLE_RIGHTS + [("KX", 0x00020019)])

# Well-known SIDs with an SDDL alias that does not depend on a domain (MS-DTYP 2.5.1.1).
SID_ALIASES = {
    "S-1-1-0": "WD",
    "S-1-3-0": "CO",
    "S-1-3-1": "CG",
    "S-1-3-4": "OW",
    "S-1-5-2": "NU",
    "S-1-5-4": "IU",
    "S-1-5-6": "SU",
    "S-1-5-7": "AN",
    "S-1-5-9": "ED",
    "S-1-5-10": "PS",
    "S-1-5-11": "AU",
    "S-1-5-12": "RC",
    "S-1-5-18": "SY",
    "S-1-5-19": "LS",
    "S-1-5-20": "NS",
    "S-1-5-33": "WR",
    "S-1-5-32-544": "BA",
    "S-1-5-32-545": "BU",
    "S-1-5-32-546": "BG",
    "S-1-5-32-547": "PU",
    "S-1-5-32-548": "AO",
    "S-1-5-32-549": "SO",
    "S-1-5-32-550": "PO",
    "S-1-5-32-551": "BO",
    "S-1-5-32-552": "RE",
    "S-1-5-32-554": "RU",
    "S-1-5-32-555": "RD",
    "S-1-5-32-556": "NO",
    "S-1-5-32-558": "MU",
    "S-1-5-32-559": "LU",
    "S-1-5-32-568": "IS",
    "S-1-5-32-569": "CY",
    "S-1-5-32-573": "ER",
    "S-1-5-32-574": "CD",
    "S-1-5-32-575": "RA",
    "S-1-5-32-576": "ES",
    "S-1-5-32-577": "HA",
    "S-1-5-32-580": "RM",
    "S-1-15-2-1": "AC",
    "S-1-16-4096": "LW",
    "S-1-16-8192": "ME",
    "S-1-16-8448": "MP",
    "S-1-16-12288": "HI",
    "S-1-16-16384": "SI",
}
_ALIAS_SIDS = {v: k for k, v in SID_ALIASES.items()}


def sid_from_bytes(data: bytes) -> tuple[str, int]:
    """Binary SID -> ("S-1-5-...", bytes used). Raises SecurityDescriptorError when malformed."""
    if len(data) < 8:
        raise SecurityDescriptorError(f"SID needs at least 8 bytes, got {len(data)}")
    revision, count = data[0], data[1]
    if revision != 1:
        raise SecurityDescriptorError(f"SID revision {revision} is not 1")
    size = 8 + 4 * count
    if count > 15 or len(data) < size:
        raise SecurityDescriptorError(f"SID with {count} sub-authorities does not fit in {len(data)} bytes")
    authority = int.from_bytes(data[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", data, 8)
    authority_text = str(authority) if authority < 2**32 else f"0x{authority:012X}"
    return "-".join(["S", "1", authority_text, *(str(s) for s in subs)]), size


def sid_to_bytes(sid: str) -> bytes:
    """"S-1-5-18" (or an SDDL alias such as "SY") -> binary SID."""
    text = _ALIAS_SIDS.get(sid, sid)
    parts = text.split("-")
    try:
        if len(parts) < 3 or parts[0].upper() != "S" or parts[1] != "1":
            raise ValueError(text)
        authority = int(parts[2], 0)
        subs = [int(p) for p in parts[3:]]
        if len(subs) > 15 or authority >= 2**48 or any(not 0 <= s < 2**32 for s in subs):
            raise ValueError(text)
    except ValueError:
        raise SecurityDescriptorError(f"not a SID: {sid!r}") from None
    return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def sid_alias(sid: str) -> str:
    """SDDL form of a SID: its two-letter alias when it has one, else the S-1-... string."""
    return SID_ALIASES.get(sid, sid)


def rights_string(mask: int) -> str:
    """Access mask as Windows writes it in SDDL: alias, concatenated rights, or 0x hex."""
    for name, value in _COMPOSITE_RIGHTS:
        if mask == value:
            return name
    rest = mask
    names = []
    for name, value in _SINGLE_RIGHTS:
        if rest & value:
            names.append(name)
            rest &= ~value
    if rest or not names:
        return f"0x{mask:x}"
    return "".join(names)


@dataclass(kw_only=True)
class Ace:
    """One access control entry."""

    type: int
    type_name: str  # SDDL ace type ("A", "D", "AU" ...) or "0x.." when unknown
    flags: int
    mask: int
    sid: str | None
    object_type: str | None = None  # GUID, object ACEs only
    inherited_object_type: str | None = None
    application_data: str | None = None  # hex, callback / resource-attribute ACEs

    @property
    def flag_names(self) -> list[str]:
        return [name for bit, name in ACE_FLAGS if self.flags & bit]

    @property
    def sddl(self) -> str:
        flags = "".join(self.flag_names)
        sid = sid_alias(self.sid) if self.sid else ""
        return f"({self.type_name};{flags};{rights_string(self.mask)};{self.object_type or ''};{self.inherited_object_type or ''};{sid})"


@dataclass(kw_only=True)
class SecurityDescriptor:
    """A decoded self-relative security descriptor.

    ``dacl``/``sacl``: None when not present (SE_DACL_PRESENT clear); ``dacl_null`` when present
    with offset 0 (a NULL DACL: everyone has full access); ``[]`` for an empty DACL (nobody).
    """

    revision: int
    control: int
    owner: str | None
    group: str | None
    dacl: list[Ace] | None
    sacl: list[Ace] | None
    dacl_null: bool = False
    sacl_null: bool = False
    size: int = 0
    raw_hex: str = field(default="", repr=False)

    @property
    def control_names(self) -> list[str]:
        return [name for bit, name in sorted(CONTROL_FLAGS.items()) if self.control & bit]

    @property
    def dacl_empty(self) -> bool:
        """True for a present, non-NULL DACL with no entries (denies everyone; GhostTask writes one)."""
        return self.dacl is not None and not self.dacl

    @property
    def sddl(self) -> str:
        parts = []
        if self.owner:
            parts.append(f"O:{sid_alias(self.owner)}")
        if self.group:
            parts.append(f"G:{sid_alias(self.group)}")
        if self.control & SE_DACL_PRESENT:
            parts.append("D:" + _acl_sddl(self.control, self.dacl, self.dacl_null, 0x1000, 0x100, 0x400))
        if self.control & SE_SACL_PRESENT:
            parts.append("S:" + _acl_sddl(self.control, self.sacl, self.sacl_null, 0x2000, 0x200, 0x800))
        return "".join(parts)


def _acl_sddl(control: int, aces: list[Ace] | None, null: bool, protected: int, req: int, inherited: int) -> str:
    flags = ("P" if control & protected else "") + ("AR" if control & req else "") + ("AI" if control & inherited else "")
    if null:
        return flags + "NO_ACCESS_CONTROL"
    return flags + "".join(ace.sddl for ace in aces or [])


def _guid(data: bytes) -> str:
    a, b, c = struct.unpack_from("<IHH", data)
    return f"{a:08x}-{b:04x}-{c:04x}-{data[8:10].hex()}-{data[10:16].hex()}"


def _parse_ace(data: bytes, offset: int) -> tuple[Ace, int]:
    if offset + 4 > len(data):
        raise SecurityDescriptorError(f"ACE header at offset {offset} runs past the end")
    header = _cs.ACE_HEADER(data[offset : offset + 4])
    if header.size < 8 or offset + header.size > len(data):
        raise SecurityDescriptorError(f"ACE at offset {offset} has bad size {header.size}")
    body = data[offset + 4 : offset + header.size]
    (mask,) = struct.unpack_from("<I", body)
    pos = 4
    object_type = inherited = None
    if header.type in _OBJECT_ACE_TYPES:
        if len(body) < 8:
            raise SecurityDescriptorError(f"object ACE at offset {offset} too short")
        (object_flags,) = struct.unpack_from("<I", body, 4)
        pos = 8
        for bit in (1, 2):
            if object_flags & bit:
                if pos + 16 > len(body):
                    raise SecurityDescriptorError(f"object ACE at offset {offset} too short for its GUIDs")
                guid = _guid(body[pos : pos + 16])
                if bit == 1:
                    object_type = guid
                else:
                    inherited = guid
                pos += 16
    sid, used = sid_from_bytes(body[pos:])
    tail = body[pos + used :]
    ace = Ace(
        type=header.type,
        type_name=ACE_TYPES.get(header.type, f"0x{header.type:x}"),
        flags=header.flags,
        mask=mask,
        sid=sid,
        object_type=object_type,
        inherited_object_type=inherited,
        application_data=tail.hex() if tail.strip(b"\0") else None,
    )
    return ace, header.size


def _parse_acl(data: bytes, offset: int, what: str) -> list[Ace]:
    if offset + 8 > len(data):
        raise SecurityDescriptorError(f"{what} at offset {offset} runs past the end ({len(data)} bytes)")
    header = _cs.ACL_HEADER(data[offset : offset + 8])
    if header.revision not in (2, 4):
        raise SecurityDescriptorError(f"{what} revision {header.revision} is not 2 or 4")
    if header.size < 8 or offset + header.size > len(data):
        raise SecurityDescriptorError(f"{what} size {header.size} at offset {offset} runs past the end")
    acl = data[: offset + header.size]
    aces = []
    pos = offset + 8
    for _ in range(header.ace_count):
        ace, size = _parse_ace(acl, pos)
        aces.append(ace)
        pos += size
    return aces


def parse_security_descriptor(data: bytes) -> SecurityDescriptor:
    """Decode a self-relative SECURITY_DESCRIPTOR (REG_BINARY ``SD`` of a Tree key)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SecurityDescriptorError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 20:
        raise SecurityDescriptorError(f"security descriptor needs 20 bytes, got {len(data)}")
    header = _cs.SD_HEADER(data[:20])
    if header.revision != 1:
        raise SecurityDescriptorError(f"security descriptor revision {header.revision} is not 1")
    if not header.control & SE_SELF_RELATIVE:
        raise SecurityDescriptorError("security descriptor is not self-relative (SE_SELF_RELATIVE clear)")

    def sid_at(offset: int, what: str) -> str | None:
        if not offset:
            return None
        if offset >= len(data):
            raise SecurityDescriptorError(f"{what} offset {offset} is past the end ({len(data)} bytes)")
        return sid_from_bytes(data[offset:])[0]

    def acl_at(present_bit: int, offset: int, what: str) -> tuple[list[Ace] | None, bool]:
        if not header.control & present_bit:
            return None, False
        if not offset:
            return None, True
        return _parse_acl(data, offset, what), False

    dacl, dacl_null = acl_at(SE_DACL_PRESENT, header.dacl_offset, "DACL")
    sacl, sacl_null = acl_at(SE_SACL_PRESENT, header.sacl_offset, "SACL")
    return SecurityDescriptor(
        revision=header.revision,
        control=header.control,
        owner=sid_at(header.owner_offset, "owner SID"),
        group=sid_at(header.group_offset, "group SID"),
        dacl=dacl,
        sacl=sacl,
        dacl_null=dacl_null,
        sacl_null=sacl_null,
        size=len(data),
        raw_hex=data.hex(),
    )
