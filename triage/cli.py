"""The ``triage`` command: arguments, terminal tables, exit codes.

Exit codes: 0 completed and everything was read; 1 completed but some evidence could not be read
(each listed as a gap); 2 bad usage, a case folder that cannot be written, or no evidence could be
opened at all; 130 / 143 interrupted by SIGINT (Ctrl-C) / SIGTERM (partial work removed).

Every line printed goes through :func:`triage.export.safe.escape_controls`: evidence chooses host
names, task names, titles and file names, and none of its control, escape or bidi characters
reaches the terminal raw.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from datetime import datetime

from triage.termtable import fit_table, terminal_width

from triage.export.safe import escape_controls
from triage.options import UsageError, add_common_options, check_input_paths, filter_rows, parse_dates

EXIT_OK, EXIT_GAPS, EXIT_USAGE = 0, 1, 2
EXIT_CODES = """exit codes:
  0    done, all evidence read
  1    done, some evidence could not be read (each listed as a gap)
  2    bad usage, a case folder that cannot be written or is refused, or no evidence opened
  130  interrupted (SIGINT, Ctrl-C): partial work and temporary files removed
  143  terminated (SIGTERM): partial work and temporary files removed"""
VERSIONED = ("dissect.target", "volatility3", "pySigma")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triage",
        description="Hunt scheduled-task persistence (T1053) in disk images, collections, event logs and memory.",
        epilog="other commands:\n  triage verify CASE_DIR   re-check a case folder's hashes\n"
               "  triage hunt EVIDENCE... -o DIR   triage a fleet and stack tasks across hosts\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("evidence", nargs="*", help="E01/raw/VMDK/VHD(X)/QCOW2 image, KAPE or Velociraptor collection, directory, .evtx file or folder")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="write the case folder (a new or empty folder; built aside and renamed into place when complete)")
    parser.add_argument("--task", metavar="PATH", help="show one task's full story (full path, or its name when unique)")
    parser.add_argument("--since", metavar="TIME", help="timeline rows at or after this time (ISO 8601; UTC when no offset is given)")
    parser.add_argument("--until", metavar="TIME", help="timeline rows at or before this time (ISO 8601; UTC when no offset is given; "
                                                        "a date alone means to the end of that day)")
    parser.add_argument("--version", action="store_true", help="print the versions of triage, dissect.target, volatility3 and pySigma")
    parser.add_argument("--workers", type=_worker_count, default=os.cpu_count() or 1, metavar="N",
                        help="processes reading event logs (default: the CPU count; 1 = all in this process); "
                             "the output is the same for any N")
    add_common_options(parser)
    return parser


def _worker_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of processes, 1 or more")
    return int(text)


def say(text: str = "", *, err: bool = False) -> None:
    """Print one line (or a table) with every control, escape and bidi character of evidence shown escaped."""
    lines = str(text).split("\n")
    print("\n".join(escape_controls(line) for line in lines), file=sys.stderr if err else sys.stdout, flush=err)


def version_text() -> str:
    from triage.export.manifest import dependency_versions, tool_version

    versions = dependency_versions()
    return f"triage {tool_version()} (" + ", ".join(f"{name} {versions.get(name, 'not installed')}" for name in VERSIONED) + ")"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["verify"]:
        from triage.export.manifest import verify_main

        return verify_main(argv[1:])
    if argv[:1] == ["hunt"]:
        from triage.hunt import hunt_main

        return hunt_main(argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    if args.version:
        say(version_text())
        return EXIT_OK
    if not args.evidence and not args.memory:
        parser.print_usage(sys.stderr)
        say("triage: error: give at least one evidence path", err=True)
        return EXIT_USAGE
    try:
        since, until = parse_dates(args)
        check_input_paths(args)
    except UsageError as exc:
        say(f"triage: error: {exc}", err=True)
        return EXIT_USAGE
    if (since or until) and not args.quiet:
        say(f"triage: timeline limited to {since.isoformat() if since else 'the start'} .. "
            f"{until.isoformat() if until else 'the end'} (UTC)", err=True)
    from triage.export.casefolder import CaseFolderError, check_output
    from triage.runscope import Interrupted, run_scope
    from triage.store import StoreError

    try:
        if args.output:
            inputs = [*args.evidence, *args.memory, *args.sigma, *args.ioc, *([args.symbols] if args.symbols else [])]
            check_output(args.output, inputs, force=args.force)
        with run_scope():
            return _triage(args, argv, since, until)
    except CaseFolderError as exc:
        say(f"triage: error: {exc}", err=True)
        return EXIT_USAGE
    except StoreError as exc:  # the store is removed at exit, and no case folder was put in place
        say(f"triage: error: {exc}; nothing was left behind", err=True)
        return EXIT_USAGE
    except Interrupted as exc:
        done = f"; the case folder {args.written} was already complete" if getattr(args, "written", None) else ""
        say(f"triage: interrupted by {exc.name}: partial work and temporary files removed{done}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place: nothing was written yet
        say("triage: interrupted by SIGINT: nothing was written", err=True)
        return 130


def _triage(args, argv: list[str], since: datetime | None, until: datetime | None) -> int:
    from triage.collect import Context
    from triage.intel import IocError, load_iocs
    from triage.run import run

    try:
        iocs = load_iocs(args.ioc)
    except IocError as exc:
        say(f"triage: error: {exc}", err=True)
        return EXIT_USAGE
    ctx = Context(quiet=args.quiet, options={"symbols": args.symbols, "sigma": args.sigma, "iocs": iocs, "workers": args.workers,
                                             "work_dir": os.path.dirname(os.path.abspath(args.output)) if args.output else None})
    if args.ioc:
        ctx.progress(f"ioc: {len(iocs.indicators)} indicator(s) from {len(iocs.files)} file(s), {len(iocs.skipped)} not matchable")
        for line in iocs.skipped:
            ctx.progress(f"ioc: skipped {line}")
    case = run(args.evidence, ctx, memory_paths=args.memory, hunt_date=args.hunt_date)
    if case.opened == 0:
        say("triage: error: no evidence could be opened", err=True)
        return EXIT_USAGE
    case.timeline = filter_rows(case.timeline, since, until)
    if args.output:
        from triage.export import write_case
        from triage.export.manifest import MANIFEST_NAME

        written = args.written = write_case(case, args.output, ctx, argv=["triage", *argv], examiner=args.examiner,
                                            case_id=args.case_id, force=args.force)
        digest = (written / "manifest.sha256").read_text(encoding="ascii").split()[0]
        say(f"triage: case folder {written}: {MANIFEST_NAME} SHA-256 {digest} (note it: "
            f"'triage verify {written} --manifest-sha256 {digest}' catches any later edit)", err=True)
    if args.task:
        return _show_task(case, args.task, ctx, since, until)
    _print_summary(case, ctx)
    return EXIT_GAPS if ctx.gaps else EXIT_OK


def _actions_text(entity) -> str:
    seen: list[str] = []
    for definition in entity.definitions:
        for action in definition.actions:
            text = action.command_line or action.kind
            if text not in seen:
                seen.append(text)
    for job in entity.unix_jobs:
        if job.command and job.command not in seen:
            seen.append(job.command)
    if not seen:  # a schtasks/at command that created the task is evidence, not the task's action
        from triage.parsers.task_cmdline import parse_task_command

        seen = sorted({e.command_line for e in entity.events if e.command_line and parse_task_command(e.command_line) is None})
    return _clip(" | ".join(seen), 70)


def _triggers_text(entity) -> str:
    kinds: list[str] = []
    for definition in entity.definitions:
        for trigger in definition.triggers:
            label = trigger.kind + (f" every {trigger.repetition_interval}" if trigger.repetition_interval else "")
            if label not in kinds:
                kinds.append(label)
    for job in entity.unix_jobs:
        if job.schedule and job.schedule not in kinds:
            kinds.append(job.schedule)
    return _clip(", ".join(kinds), 40)


def _clip(text: str, width: int) -> str:
    text = escape_controls(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_summary(case, ctx) -> None:
    rows = [[e.task, escape_controls(e.host or ""), ",".join(e.sources), _actions_text(e), _triggers_text(e), e.status or ""]
            for e in case.entities]
    say(f"Scheduled tasks and jobs: {len(case.entities)}")
    say(fit_table(rows, ["Task", "Host", "Sources", "Actions", "Triggers", "Status"]))
    say()
    say(f"Findings: {len(case.findings)}")
    if case.findings:
        rows = [[f.hunt_id, f.risk_level, f.confidence, f.technique, f.task, f.title] for f in case.findings]
        say(fit_table(rows, ["Hunt ID", "Risk", "Confidence", "Technique", "Task", "Finding"], whole=(0, 1, 2, 3)))
    width = (terminal_width() or 100_000) - 4  # the list lines, cut like the tables ("  - " before each)
    if ctx.gaps:
        say()
        say(f"Gaps (not read): {len(ctx.gaps)}")
        for gap in ctx.gaps:
            say(f"  - {_clip(gap.line(), width)}")
    # which stores were read per host (absence findings stand only on these)
    if getattr(case, "stores", None):
        from triage.stores import summary_lines

        say()
        say("Stores examined:")
        for line in summary_lines(case.stores):
            say(f"  - {_clip(line, width)}")
    say()
    say(fit_table(_summary_rows(case, ctx), ["Summary", ""]))


def _summary_rows(case, ctx) -> list[list[str]]:
    risks = {level: sum(f.risk_level == level for f in case.findings) for level in ("Critical", "High", "Medium", "Low")}
    hosts = sorted({h.hostname for h in case.hosts if h.hostname})
    systems = sorted({h.os for h in case.hosts if h.os})
    return [[name, escape_controls(value)] for name, value in [
        ["Evidence", ", ".join(f"{e.path} ({e.kind})" for e in case.evidence)],
        ["Host", ", ".join(hosts) or "unknown"],
        ["OS", ", ".join(systems) or "unknown"],
        ["Tasks and jobs", str(len(case.entities))],
        ["Timeline rows", str(len(case.timeline))],
        ["Findings", f"{len(case.findings)} (" + ", ".join(f"{n} {level}" for level, n in risks.items()) + ")"],
        ["Gaps", str(len(ctx.gaps))],
    ]]


def find_task(entities: list, wanted: str) -> tuple[object | None, list[str]]:
    """The entity ``--task`` names (full path, or a leaf name that is unique), else close names to suggest."""
    from triage.taskpath import normalise_task_path

    if "\\" in wanted or "/" in wanted:  # a path: exactly that task
        key = normalise_task_path(wanted) if wanted.startswith("\\") or "/" not in wanted else wanted
        entity = next((e for e in entities if e.key in (key, wanted)), None)
        if entity is not None:
            return entity, []
    leaf = wanted.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    same_leaf = [e for e in entities if e.task.replace("/", "\\").rsplit("\\", 1)[-1].lower() == leaf]
    if len(same_leaf) == 1:
        return same_leaf[0], []
    if same_leaf:
        return None, sorted(e.task for e in same_leaf)
    names = {e.task.lower(): e.task for e in entities}
    leaves = {e.task.replace("/", "\\").rsplit("\\", 1)[-1].lower(): e.task for e in entities}
    close = difflib.get_close_matches(wanted.lower(), list(names), n=5, cutoff=0.6)
    close += [leaves[c] for c in difflib.get_close_matches(leaf, list(leaves), n=5, cutoff=0.6)]
    return None, sorted({names.get(c, c) for c in close})


def _show_task(case, wanted: str, ctx, since: datetime | None = None, until: datetime | None = None) -> int:
    entity, suggestions = find_task(case.entities, wanted)
    if entity is None:
        hint = f"; did you mean: {', '.join(suggestions)}" if suggestions else ""
        say(f"triage: error: no task {wanted!r} in the evidence{hint}", err=True)
        return EXIT_USAGE
    say(f"Task: {entity.task}")
    say(f"Host: {entity.host or ''}")
    say(f"Sources: {', '.join(entity.sources)}")
    say(f"Status: {entity.status or ''}")
    say(f"Actions: {_actions_text(entity)}")
    say(f"Triggers: {_triggers_text(entity)}")
    for finding in (f for f in case.findings if f.task == entity.task):
        say(f"Finding {finding.hunt_id}: [{finding.risk_level}/{finding.confidence}] {finding.title}")
    say()
    rows = [[r.utc or f"{r.as_written} (local, zone unknown)", r.what, r.source, r.provenance.location]
            for r in filter_rows(entity.timeline, since, until)]
    say(fit_table(rows, ["UTC", "What", "Source", "Where"], whole=(0,)))
    return EXIT_GAPS if ctx.gaps else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
