"""Hashes of the files a Windows task's actions run, where the evidence holds them.

Threat intelligence names payloads by hash, so a task is only fully checked when the binary it
starts is hashed too. Kept bounded: only paths an action references (the Exec command, absolute
paths inside its arguments, a ComHandler's resolved DLL), only files smaller than
:data:`MAX_BYTES`, each file read once per evidence item. The facts go into
``Action.details["files"]``: ``[{"path", "role", "size", "md5", "sha1", "sha256"}]`` (``role``:
command, argument, com_dll); a file too large to hash keeps its size and a ``not_hashed`` reason.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from triage.collect import Context, Source
from triage.collect.filefacts import read_capped, read_error
from triage.records import Action, TaskDefinition

MAX_BYTES = 50 * 1024 * 1024
# Environment variables a task's command may use that have one value per machine (per-user ones do not).
MACHINE_VARIABLES = {
    "windir": r"C:\Windows", "systemroot": r"C:\Windows", "systemdrive": "C:", "programdata": r"C:\ProgramData",
    "allusersprofile": r"C:\ProgramData", "programfiles": r"C:\Program Files",
    "programfiles(x86)": r"C:\Program Files (x86)", "commonprogramfiles": r"C:\Program Files\Common Files",
    "public": r"C:\Users\Public",
}
SEARCH_FOLDERS = (r"C:\Windows\System32", r"C:\Windows")  # CreateProcess's search order after the working folder
_VARIABLE = re.compile(r"%([^%\s]+)%")
_ABSOLUTE_PATH = re.compile(r"[A-Za-z]:\\[^\s,\"'<>|]+")


def expand(path: str) -> str | None:
    """Machine-wide %VARIABLES% expanded; None when a per-user or unknown variable remains."""
    unknown = False

    def value(match: re.Match) -> str:
        nonlocal unknown
        known = MACHINE_VARIABLES.get(match.group(1).lower())
        unknown = unknown or known is None
        return known or match.group(0)

    expanded = _VARIABLE.sub(value, path.strip().strip('"'))
    return None if unknown else expanded


def referenced_paths(action: Action) -> list[tuple[str, str]]:
    """(role, Windows path or bare file name) of every file the action names."""
    out: list[tuple[str, str]] = []
    if action.kind == "exec" and action.command:
        command = expand(action.command)
        if command:
            out.append(("command", command))
    if action.kind == "exec" and action.arguments:
        for token in _ABSOLUTE_PATH.findall(expand(action.arguments) or action.arguments):
            out.append(("argument", token))
    if action.kind == "comhandler" and action.resolved_dll:
        dll = expand(action.resolved_dll)
        if dll:
            out.append(("com_dll", dll))
    return out


def _candidates(path: str, working_directory: str | None) -> list[str]:
    if re.match(r"[A-Za-z]:\\", path):
        return [path]
    if "\\" in path or "/" in path:
        return []
    folders = [w for w in [expand(working_directory) if working_directory else None] if w] + list(SEARCH_FOLDERS)
    names = [path] if "." in path else [path, path + ".exe"]
    return [f"{folder}\\{name}" for folder in folders for name in names]


def _hash(target: Any, windows_path: str, cache: dict, source: Source, ctx: Context) -> dict | None:
    key = windows_path.lower()
    if key in cache:
        return cache[key]
    result = None
    path = target.fs.path(windows_path.replace("\\", "/"))
    try:
        if path.is_file():
            read = read_capped(path, MAX_BYTES, hash_all=False)  # counted while reading: a zip's size is not trusted
            result = {"path": windows_path, "size": read.facts.size}
            if not read.complete:
                result["not_hashed"] = f"larger than {MAX_BYTES // (1024 * 1024)} MB"
            else:
                data = read.data
                result.update(md5=hashlib.md5(data).hexdigest(), sha1=hashlib.sha1(data).hexdigest(),
                              sha256=read.facts.sha256)
    except Exception as exc:  # an unreadable payload is a gap, never a crash
        ctx.gap(source.name, windows_path, f"action binary not hashed: {read_error(exc)}")
        result = None
    cache[key] = result
    return result


def hash_action_binaries(source: Source, ctx: Context, definitions: list[TaskDefinition]) -> None:
    """Add ``details["files"]`` to each action of this evidence item's definitions whose files exist."""
    if source.target is None or source.os_family != "windows":
        return
    cache: dict[str, dict | None] = {}
    for definition in definitions:
        if definition.provenance.evidence != source.ref.path:
            continue
        for action in definition.actions:
            files = []
            for role, path in referenced_paths(action):
                for candidate in _candidates(path, action.working_directory):
                    facts = _hash(source.target, candidate, cache, source, ctx)
                    if facts:
                        files.append({**facts, "role": role})
                        break
            if files:
                action.details["files"] = files
