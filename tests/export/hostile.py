"""Hostile evidence for the export tests: the real Windows 10 APT-simulator task folder from the
corpus plus planted tasks whose names and contents are dangerous in each output format."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from tests.conftest import CORPUS

WIN10_TASKS = CORPUS / "AndrewRathbun__DFIRArtifactMuseum" / "Windows" / "ScheduledTasks" / "Win10" / "APTSimulatorVM"
HUNT_DATE = "20260101"

# One task definition full of content that is dangerous in each output format.
HOSTILE_XML = """<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Date>2024-03-14T09:12:44</Date>
    <Author>=HYPERLINK("http://evil.example/x","click")</Author>
    <Description>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(2)&gt; [link](http://evil.example) &#x202E;exe.txt</Description>
  </RegistrationInfo>
  <Triggers><BootTrigger><Enabled>true</Enabled></BootTrigger></Triggers>
  <Principals><Principal id="Author"><UserId>S-1-5-18</UserId><RunLevel>HighestAvailable</RunLevel></Principal></Principals>
  <Settings><Hidden>true</Hidden></Settings>
  <Actions Context="Author"><Exec><Command>=cmd|' /C calc'!A0</Command><Arguments>-enc &lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;</Arguments></Exec></Actions>
</Task>
"""

# Task file names (relative to System32\Tasks): a spreadsheet formula ("/" makes "=cmd|' " a folder, as
# on Windows), a path-traversal name, an HTML tag and terminal escape sequences.
HOSTILE_NAMES = ("=cmd|' /C calc'!A0", "..\\..\\escape", "<script>alert(4)</script", "ansi\x1b[2J\x07bell")
OUTPUT_NAMES = {"tasks.jsonl", "timeline.jsonl", "timeline_undated.jsonl", "timeline.csv", "findings.json",
                "findings.md", "report.html", "manifest.json", "manifest.sha256", "attack-layer.json", "detections"}


def build_hostile_target(root: Path) -> Path:
    tasks = root / "Windows" / "System32" / "Tasks"
    shutil.copytree(WIN10_TASKS, tasks)
    for name in HOSTILE_NAMES:
        path = tasks / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(HOSTILE_XML.encode("utf-16"))
    return root


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
