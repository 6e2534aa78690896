"""Task Scheduler 2.0 XML written byte for byte the way Windows writes it.

Windows stores a registered task as ``FF FE`` + UTF-16LE text, ``<?xml version="1.0"
encoding="UTF-16"?>``, two-space indentation, CRLF line ends, ``<Tag />`` for empty elements,
only ``&``, ``<`` and ``>`` escaped in text, and no line end after ``</Task>``.
"""

from __future__ import annotations

from dataclasses import dataclass

TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
DECLARATION = '<?xml version="1.0" encoding="UTF-16"?>'


@dataclass(frozen=True)
class El:
    """One XML element: text or children, never both (Task Scheduler XML has no mixed content)."""

    tag: str
    text: str | None = None
    children: tuple[El, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()

    def child(self, tag: str) -> El | None:
        return next((c for c in self.children if c.tag == tag), None)

    def find_text(self, tag: str) -> str | None:
        """Text of the first descendant named ``tag``."""
        for c in self.children:
            if c.tag == tag and c.text is not None:
                return c.text
            found = c.find_text(tag)
            if found is not None:
                return found
        return None


def el(tag: str, *children: El | str | None, **attrs: str) -> El:
    """``el("Exec", el("Command", "cmd.exe"))``; a single str child becomes the text; None children are dropped."""
    kept = [c for c in children if c is not None]
    if len(kept) == 1 and isinstance(kept[0], str):
        return El(tag, text=kept[0], attrs=tuple(attrs.items()))
    return El(tag, children=tuple(kept), attrs=tuple(attrs.items()))


def escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    return escape_text(text).replace('"', "&quot;")


def _lines(node: El, depth: int) -> list[str]:
    pad = "  " * depth
    attrs = "".join(f' {name}="{escape_attr(value)}"' for name, value in node.attrs)
    if node.text is not None:
        return [f"{pad}<{node.tag}{attrs}>{escape_text(node.text)}</{node.tag}>"]
    if not node.children:
        return [f"{pad}<{node.tag}{attrs} />"]
    inner = [line for c in node.children for line in _lines(c, depth + 1)]
    return [f"{pad}<{node.tag}{attrs}>", *inner, f"{pad}</{node.tag}>"]


def render_text(root: El) -> str:
    return "\r\n".join([DECLARATION, *_lines(root, 0)])


def encode_utf16(text: str) -> bytes:
    """FF FE BOM plus UTF-16LE, as Task Scheduler writes its files."""
    return b"\xff\xfe" + text.encode("utf-16-le")


def render(root: El) -> bytes:
    return encode_utf16(render_text(root))
