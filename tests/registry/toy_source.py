"""A toy source added through the registry alone: a parser, a collector on the shared per-file helper,
and one ``sources.register`` call. Files ``/toy/*.toy`` hold ``TOY1`` then ``<task path>\\t<command>``."""

from __future__ import annotations

from triage import sources
from triage.collect.perfile import collect_files
from triage.parsers import ParseError
from triage.records import Action, Provenance, TaskDefinition


class ToyError(ParseError):
    """Not a toy file (no TOY1 line, or a line without a tab)."""


def parse_toy(data: bytes, provenance: Provenance) -> list[TaskDefinition]:
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines or lines[0] != "TOY1":
        raise ToyError("no TOY1 header")
    found = []
    for line in lines[1:]:
        task, sep, command = line.partition("\t")
        if not sep:
            raise ToyError(f"line without a tab: {line[:40]!r}")
        program, _, arguments = command.partition(" ")
        found.append(TaskDefinition(task=task, source="toy", provenance=provenance,
                                    actions=[Action(kind="exec", command=program, arguments=arguments or None)]))
    return found


def collect(source, ctx):
    yield from collect_files(source, ctx, store="toy", folder=("toy",), pattern="*.toy", parse=parse_toy)


SAMPLE = b"TOY1\n\\Toy\\Updater\tC:\\Users\\Public\\upd.exe -silent\n"

sources.register(
    sources.SourceInfo(name="toy", evidence="toy store", csv_code="TOY", display="Toy file", label="toy file",
                       defines_task=True),
    parser=sources.ParserInfo(name="toy", source="toy", call=lambda data: parse_toy(data, Provenance(artifact="toy", location="-")),
                              error=ToyError, examples=lambda: [SAMPLE]),
    collector=collect,
)
