"""The program token of a raw Windows command line (a process's, or a task action's as one string)."""

from __future__ import annotations

import re


def first_token_end(text: str) -> int:
    """Index just past the program token of a raw command line (quoted or not)."""
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    if stripped.startswith('"'):
        end = stripped.find('"', 1)
        return lead + (len(stripped) if end < 0 else end + 1)
    space = re.search(r"\s", stripped)
    return lead + (space.start() if space else len(stripped))


def split_program(command_line: str) -> tuple[str, str | None]:
    """(program, arguments) of a raw command line, the way a task action stores them."""
    end = first_token_end(command_line)
    return command_line[:end].strip().strip('"'), command_line[end:].strip() or None


__all__ = ["first_token_end", "split_program"]
