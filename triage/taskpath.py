"""Task path normalisation: the join key between XML files, TaskCache keys, events and memory."""

from __future__ import annotations


def display_task_path(path: str | None) -> str:
    """``Microsoft/Windows/Defrag/ScheduledDefrag`` → ``\\Microsoft\\Windows\\Defrag\\ScheduledDefrag``."""
    text = (path or "").strip().replace("/", "\\").rstrip("\x00")
    while "\\\\" in text:
        text = text.replace("\\\\", "\\")
    text = text.rstrip("\\")
    if not text.startswith("\\"):
        text = "\\" + text
    return text


def normalise_task_path(path: str | None) -> str:
    """Case-insensitive key, as the Task Scheduler treats task paths."""
    return display_task_path(path).lower()
