"""The SQLite backend's rule conditions compiled to Python, with SQLite's own answers.

Why: :mod:`triage.detect.sigma` stores each batch of events in SQLite and runs every rule's
``WHERE`` condition on it; on Sysmon logs some 70 rules of 30-odd ``LIKE`` terms each meet every
process-creation row, and inserting, querying and fetching cost more than the event decode. A
condition written in the small dialect pySigma's SQLite backend emits is therefore turned, once per
rule, into one Python expression over the row's values, evaluated without SQLite.

What is compiled, and how it keeps SQLite's semantics (the table's columns are ``TEXT COLLATE
NOCASE``; :mod:`tests.detect.test_sql_condition` compares the two on every corpus event log):

* ``col LIKE 'pattern' [ESCAPE 'c']``: ``%`` any run, ``_`` one character, case folded for ASCII
  letters only (SQLite's LIKE folds no other letter), and the value read up to its first NUL (LIKE
  reads C strings). Values and pattern are folded once, so a term is a substring, prefix, suffix or
  equality test; a pattern with ``_`` or inner ``%`` becomes one compiled regular expression.
* ``col = 'text'`` and ``col = 123``: NOCASE equality (ASCII folding, whole value; the integer is
  compared as its text, as the column's TEXT affinity makes SQLite do).
* ``col IS NULL`` / ``col IS NOT NULL``, ``COALESCE(expr, 0)``, ``NOT``, ``AND``, ``OR``, brackets.
  SQL's third truth value (a ``LIKE`` on an absent field is NULL) only matters under ``NOT``; the
  backend wraps every negated operand in ``COALESCE(..., 0)``, so a ``NOT`` over anything that can be
  NULL is not compiled, and everywhere else NULL counts as false, which selects the same rows.

Anything else (``REGEXP``, ``GLOB``, comparisons, field references, an unknown column) is not
compiled: :func:`compile_condition` returns None and the rule keeps running in SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RowTest = Callable[[Sequence[Any], Sequence[Any]], bool]
"""A compiled condition: ``test(values, like_values)`` over a row's folded values (see :func:`fold_row`)."""

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TOKEN = re.compile(r"""\s*(?:(?P<text>'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")*")|(?P<number>-?\d+(?![\w.]))"""
                    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol>[(),=]))""")
_KEYWORDS = {"AND", "OR", "NOT", "LIKE", "ESCAPE", "IS", "NULL"}
_LIKE_PATTERN_LIMIT = 50000  # SQLite's SQLITE_MAX_LIKE_PATTERN_LENGTH: a longer pattern is a runtime error


def fold(value: str) -> str:
    """ASCII letters to lower case, nothing else: SQLite's NOCASE and LIKE folding."""
    return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)


def fold_row(row: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """A row's values as compiled conditions read them: folded for ``=``, and for ``LIKE`` also cut at a NUL."""
    lower = _ASCII_LOWER
    values = [value if value.__class__ is not str else value.lower() if value.isascii() else value.translate(lower)
              for value in row]
    if not [True for value in values if value.__class__ is str and "\x00" in value]:
        return values, values
    return values, [value.split("\x00", 1)[0] if value.__class__ is str else value for value in values]


class _NotCompiled(Exception):
    """The condition uses SQL this compiler does not reproduce: the rule stays in SQLite."""


@dataclass(frozen=True)
class _Atom:
    """One test of one column: ``kind`` is eq, like_eq, contains, prefix, suffix, regex, any, null or not_null."""

    kind: str
    column: int
    operand: str = ""


@dataclass(frozen=True)
class _Node:
    op: str  # and, or, not, true
    args: tuple[Any, ...] = ()


def compile_condition(condition: str, columns: Mapping[str, int],
                      implied: Callable[[str, str], bool]) -> RowTest | None:
    """``condition`` (SQL from the SQLite backend) as a Python test of a folded row, or None if it cannot be.

    ``columns`` maps each column's lower-case name to its index in the row; ``implied(column, pattern)``
    says that a ``LIKE`` on that column is already known true for every row the test will see (the
    logsource terms, which the evaluator checks before a rule meets a row)."""
    try:
        tree, _ = _Parser(condition, columns, implied).parse()
        return _generate(tree)
    except _NotCompiled:
        return None


class _Parser:
    """Recursive descent over the backend's dialect; returns (node, may_be_null)."""

    def __init__(self, text: str, columns: Mapping[str, int], implied: Callable[[str, str], bool]):
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                if not text[pos:].strip():
                    break
                raise _NotCompiled(f"unknown SQL at {pos}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.pos = 0
        self.columns = columns
        self.implied = implied

    def parse(self) -> tuple[Any, bool]:
        node = self._or()
        if self.pos != len(self.tokens):
            raise _NotCompiled("trailing SQL")
        return node

    def _peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def _keyword(self, word: str) -> bool:
        kind, text = self._peek()
        if kind == "word" and text.upper() == word:
            self.pos += 1
            return True
        return False

    def _expect(self, kind: str, text: str | None = None) -> str:
        got_kind, got = self._peek()
        if got_kind != kind or (text is not None and got.upper() != text):
            raise _NotCompiled(f"expected {text or kind}")
        self.pos += 1
        return got

    def _or(self) -> tuple[Any, bool]:
        parts = [self._and()]
        while self._keyword("OR"):
            parts.append(self._and())
        return (parts[0] if len(parts) == 1 else (_Node("or", tuple(p for p, _ in parts)), any(n for _, n in parts)))

    def _and(self) -> tuple[Any, bool]:
        parts = [self._not()]
        while self._keyword("AND"):
            parts.append(self._not())
        return (parts[0] if len(parts) == 1 else (_Node("and", tuple(p for p, _ in parts)), any(n for _, n in parts)))

    def _not(self) -> tuple[Any, bool]:
        if self._keyword("NOT"):
            inner, nullable = self._not()
            if nullable:
                raise _NotCompiled("NOT over a value that may be NULL")
            return _Node("not", (inner,)), False
        return self._primary()

    def _primary(self) -> tuple[Any, bool]:
        kind, text = self._peek()
        if kind == "symbol" and text == "(":
            self.pos += 1
            inner = self._or()
            self._expect("symbol", ")")
            return inner
        if kind == "word" and text.upper() == "COALESCE" and self._peek(1) == ("symbol", "("):
            self.pos += 2
            inner, _ = self._or()
            self._expect("symbol", ",")
            if self._expect("number") != "0":
                raise _NotCompiled("COALESCE default other than 0")
            self._expect("symbol", ")")
            return inner, False  # NULL read as 0: false, exactly what the two-valued test gives
        return self._comparison()

    def _column(self) -> tuple[str, int]:
        kind, text = self._peek()
        if kind == "quoted":
            name = text[1:-1].replace('""', '"')
        elif kind == "word" and text.upper() not in _KEYWORDS:
            name = text
        else:
            raise _NotCompiled("expected a column")
        self.pos += 1
        index = self.columns.get(name.lower())
        if index is None:
            raise _NotCompiled(f"unknown column {name}")
        return name, index

    def _comparison(self) -> tuple[Any, bool]:
        name, column = self._column()
        if self._keyword("IS"):
            negated = self._keyword("NOT")
            self._expect("word", "NULL")
            return _Atom("not_null" if negated else "null", column), False
        if self._keyword("LIKE"):
            pattern = _literal(self._expect("text"))
            escape = _literal(self._expect("text")) if self._keyword("ESCAPE") else None
            if self.implied(name, pattern) and escape is None:
                return _Node("true"), False
            return _like(column, pattern, escape), True
        self._expect("symbol", "=")
        kind, text = self._peek()
        if kind == "text":
            value = _literal(text)
        elif kind == "number" and abs(int(text)) < 2**63:
            value = str(int(text))  # TEXT affinity: the column compares with the number's text
        else:
            raise _NotCompiled("= with something other than a literal")
        self.pos += 1
        if "\x00" in value:
            raise _NotCompiled("NUL in a literal")
        return _Atom("eq", column, fold(value)), True


def _literal(token: str) -> str:
    return token[1:-1].replace("''", "'")


def _like(column: int, pattern: str, escape: str | None) -> _Atom:
    """A LIKE pattern as the cheapest equivalent test of the folded, NUL-cut value."""
    if escape is not None and len(escape) != 1:
        raise _NotCompiled("ESCAPE of other than one character")  # SQLite raises an error at run time
    if "\x00" in pattern or len(pattern.encode("utf-8")) > _LIKE_PATTERN_LIMIT:
        raise _NotCompiled("pattern SQLite would cut or refuse")
    parts: list[str] = []  # literal text and the wildcards "%" / "_" as their own items
    literal: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            following = next(chars, None)
            if following is None:
                raise _NotCompiled("pattern ends in its escape")  # SQLite: never matches
            literal.append(following)
        elif char in "%_":
            parts.extend(["".join(literal), char])
            literal = []
        else:
            literal.append(char)
    parts.append("".join(literal))
    texts = [fold(p) for p in parts[0::2]]
    wildcards = parts[1::2]
    if not wildcards:
        return _Atom("like_eq", column, texts[0])
    if "_" not in wildcards:
        inner = [t for t in texts[1:-1] if t]
        if not inner:
            first, last = texts[0], texts[-1]
            if not first and not last:
                return _Atom("any", column)
            if not last:
                return _Atom("prefix", column, first)
            if not first:
                return _Atom("suffix", column, last)
        if len(texts) == 3 and not texts[0] and not texts[2]:
            return _Atom("contains", column, texts[1])
    regex = "".join(re.escape(text) + {"%": ".*", "_": "."}.get(wildcard, "")
                    for text, wildcard in zip(texts, [*wildcards, ""]))
    return _Atom("regex", column, regex)


def _generate(tree: Any) -> RowTest:
    """The tree as one Python expression (no call per node at run time), compiled once."""
    names: dict[str, Any] = {}
    source = f"lambda E, L: {_expression(tree, names)}"
    return eval(compile(source, "<sigma condition>", "eval"), {"__builtins__": {}, **names})


_READS = {"eq": "E", "null": "E", "not_null": "E"}  # everything else reads the NUL-cut LIKE values


def _expression(node: Any, names: dict[str, Any]) -> str:
    if isinstance(node, _Atom):
        return _group([node], names)
    if node.op == "true":
        return "True"
    if node.op == "not":
        return f"(not {_expression(node.args[0], names)})"
    if node.op == "and":
        return "(" + " and ".join(_expression(arg, names) for arg in node.args) + ")"
    # OR: the atoms on one column share one NULL check and one tuple read
    grouped: dict[tuple[str, int], list[_Atom]] = {}
    order: list[Any] = []
    for arg in node.args:
        if isinstance(arg, _Atom) and arg.kind not in ("null", "not_null"):
            key = (_READS.get(arg.kind, "L"), arg.column)
            if key not in grouped:
                grouped[key] = []
                order.append(key)
            grouped[key].append(arg)
        else:
            order.append(arg)
    return "(" + " or ".join(_group(grouped[item], names) if isinstance(item, tuple) else _expression(item, names)
                             for item in order) + ")"


def _group(atoms: list[_Atom], names: dict[str, Any]) -> str:
    """Tests of one column (an OR of them), in the rule's order but suffixes and prefixes tested together."""
    first = atoms[0]
    read = f"{_READS.get(first.kind, 'L')}[{first.column}]"
    if first.kind == "null":
        return f"({read} is None)"
    if first.kind == "not_null":
        return f"({read} is not None)"
    var = f"v{first.column}"
    tests: list[str] = []
    suffixes = [a.operand for a in atoms if a.kind == "suffix"]
    prefixes = [a.operand for a in atoms if a.kind == "prefix"]
    for atom in atoms:
        if atom.kind in ("eq", "like_eq"):
            tests.append(f"{var} == {atom.operand!r}")
        elif atom.kind == "contains":
            tests.append(f"{atom.operand!r} in {var}")
        elif atom.kind == "any":
            tests.append("True")
        elif atom.kind == "regex":
            name = f"r{len(names)}"
            names[name] = re.compile(atom.operand, re.DOTALL).fullmatch
            tests.append(f"{name}({var}) is not None")
        elif atom.kind == "suffix" and atom.operand == suffixes[0]:
            tests.append(f"{var}.endswith({tuple(suffixes)!r})")
        elif atom.kind == "prefix" and atom.operand == prefixes[0]:
            tests.append(f"{var}.startswith({tuple(prefixes)!r})")
    return f"(({var} := {read}) is not None and ({' or '.join(tests)}))"
