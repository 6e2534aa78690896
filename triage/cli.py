"""The ``triage`` command: arguments, terminal tables, exit codes.

Exit codes: 0 completed and everything was read; 1 completed but some evidence could not be read
(each listed as a gap); 2 bad usage, or no evidence could be opened at all.
"""

from __future__ import annotations

import argparse
import re
import sys

from triage.termtable import fit_table, terminal_width

EXIT_OK, EXIT_GAPS, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triage",
        description="Hunt scheduled-task persistence (T1053) in disk images, collections, event logs and memory.",
        epilog="Other commands: 'triage verify CASE_DIR' re-checks a case folder's hashes; "
               "'triage hunt EVIDENCE... -o DIR' triages a fleet and stacks tasks across hosts.",
    )
    parser.add_argument("evidence", nargs="*", help="E01/raw/VMDK/VHD(X)/QCOW2 image, KAPE or Velociraptor collection, directory, .evtx file or folder")
    parser.add_argument("-o", "--output", metavar="DIR", help="write the case folder (tasks.jsonl, findings, timeline, report, manifest)")
    parser.add_argument("--memory", action="append", default=[], metavar="IMAGE", help="a memory image of the same host (repeatable)")
    parser.add_argument("--symbols", metavar="DIR", help="volatility3 symbol tables for memory images")
    parser.add_argument("--sigma", action="append", default=[], metavar="DIR", help="extra Sigma rules to run on the events")
    parser.add_argument("--ioc", action="append", default=[], metavar="FILE",
                        help="indicators to match: STIX 2.1 bundle, MISP event JSON, or CSV type,value[,comment] (repeatable)")
    parser.add_argument("--task", metavar="PATH", help="show one task's full story (entity and timeline)")
    parser.add_argument("--since", metavar="UTC", help="timeline rows at or after this UTC time (ISO 8601)")
    parser.add_argument("--until", metavar="UTC", help="timeline rows at or before this UTC time (ISO 8601)")
    parser.add_argument("--hunt-date", metavar="YYYYMMDD", help="date used in Hunt IDs (default: today, UTC)")
    parser.add_argument("--examiner", help="examiner name for the manifest")
    parser.add_argument("--case", dest="case_id", help="case id for the manifest")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    return parser


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
    if not args.evidence and not args.memory:
        parser.print_usage(sys.stderr)
        print("triage: error: give at least one evidence path", file=sys.stderr)
        return EXIT_USAGE
    if args.hunt_date and not re.fullmatch(r"\d{8}", args.hunt_date):
        print("triage: error: --hunt-date must be YYYYMMDD", file=sys.stderr)
        return EXIT_USAGE
    return _triage(args, argv)


def _triage(args, argv: list[str]) -> int:
    from triage.collect import Context
    from triage.correlate import filter_timeline
    from triage.run import run

    from triage.intel import IocError, load_iocs

    try:
        iocs = load_iocs(args.ioc)
    except IocError as exc:
        print(f"triage: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ctx = Context(quiet=args.quiet, options={"symbols": args.symbols, "sigma": args.sigma, "iocs": iocs})
    if args.ioc:
        ctx.progress(f"ioc: {len(iocs.indicators)} indicator(s) from {len(iocs.files)} file(s), {len(iocs.skipped)} not matchable")
        for line in iocs.skipped:
            ctx.progress(f"ioc: skipped {line}")
    case = run(args.evidence, ctx, memory_paths=args.memory, hunt_date=args.hunt_date)
    if case.opened == 0:
        print("triage: error: no evidence could be opened", file=sys.stderr)
        return EXIT_USAGE
    case.timeline = filter_timeline(case.timeline, since=args.since, until=args.until)
    if args.output:
        from triage.export import write_case

        write_case(case, args.output, ctx, argv=["triage", *argv], examiner=args.examiner, case_id=args.case_id)
    if args.task:
        return _show_task(case, args.task, ctx)
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
    if not seen:
        seen = sorted({e.command_line for e in entity.events if e.command_line})
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
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_summary(case, ctx) -> None:
    rows = [[e.task, e.host or "", ",".join(e.sources), _actions_text(e), _triggers_text(e), e.status or ""]
            for e in case.entities]
    print(f"Scheduled tasks and jobs: {len(case.entities)}")
    print(fit_table(rows, ["Task", "Host", "Sources", "Actions", "Triggers", "Status"]))
    print()
    print(f"Findings: {len(case.findings)}")
    if case.findings:
        rows = [[f.hunt_id, f.risk_level, f.confidence, f.technique, f.task, f.title] for f in case.findings]
        print(fit_table(rows, ["Hunt ID", "Risk", "Confidence", "Technique", "Task", "Finding"], whole=(0, 1, 2, 3)))
    if ctx.gaps:
        print()
        print(f"Gaps (not read): {len(ctx.gaps)}")
        for gap in ctx.gaps:
            print(f"  - {_clip(gap.line(), (terminal_width() or 100_000) - 4)}")
    print()
    print(fit_table(_summary_rows(case, ctx), ["Summary", ""]))


def _summary_rows(case, ctx) -> list[list[str]]:
    risks = {level: sum(f.risk_level == level for f in case.findings) for level in ("Critical", "High", "Medium", "Low")}
    hosts = sorted({h.hostname for h in case.hosts if h.hostname})
    systems = sorted({h.os for h in case.hosts if h.os})
    return [
        ["Evidence", ", ".join(f"{e.path} ({e.kind})" for e in case.evidence)],
        ["Host", ", ".join(hosts) or "unknown"],
        ["OS", ", ".join(systems) or "unknown"],
        ["Tasks and jobs", str(len(case.entities))],
        ["Timeline rows", str(len(case.timeline))],
        ["Findings", f"{len(case.findings)} (" + ", ".join(f"{n} {level}" for level, n in risks.items()) + ")"],
        ["Gaps", str(len(ctx.gaps))],
    ]


def _show_task(case, wanted: str, ctx) -> int:
    from triage.taskpath import normalise_task_path

    key = normalise_task_path(wanted) if wanted.startswith("\\") or "/" not in wanted else wanted
    entity = next((e for e in case.entities if e.key in (key, wanted)), None)
    if entity is None:
        print(f"triage: error: no task {wanted!r} in the evidence", file=sys.stderr)
        return EXIT_USAGE
    print(f"Task: {entity.task}")
    print(f"Host: {entity.host or ''}")
    print(f"Sources: {', '.join(entity.sources)}")
    print(f"Status: {entity.status or ''}")
    print(f"Actions: {_actions_text(entity)}")
    print(f"Triggers: {_triggers_text(entity)}")
    for finding in (f for f in case.findings if f.task == entity.task):
        print(f"Finding {finding.hunt_id}: [{finding.risk_level}/{finding.confidence}] {finding.title}")
    print()
    rows = [[r.utc or f"{r.as_written} (local, zone unknown)", r.what, r.source, r.provenance.location]
            for r in entity.timeline]
    print(fit_table(rows, ["UTC", "What", "Source", "Where"], whole=(0,)))
    return EXIT_GAPS if ctx.gaps else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
