"""``triage hunt EVIDENCE... -o DIR``: triage a fleet on Dask, then stack tasks across hosts.

Each evidence item is one Dask task: a worker runs exactly what ``triage ITEM -o CASE`` runs
(:func:`triage.run.run` and :func:`triage.export.write_case`) and sends back a small summary (stack
keys, findings, gaps, hostname); dissect objects never leave the worker. With no ``--scheduler``
a local cluster is started on loopback (one single-threaded worker process per core); with
``--scheduler tcp://host:8786`` the same tasks go to an existing cluster whose workers must see the
evidence at the same paths (shared storage).

Failure isolation: an item that cannot be opened, or whose task raises (retried once), or that runs
longer than ``--timeout`` (its worker is then restarted, since a thread stuck in a read cannot be
stopped), is reported as failed and the rest finish. A worker that dies mid-item has that item
retried once on another worker (``distributed.scheduler.allowed-failures`` = 1, set for the local
cluster; start an external scheduler with ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1``).

Outputs in DIR: ``cases/<name>-<hash8>/`` (one case folder per item), ``stacks.csv``,
``stacks.jsonl``, ``fleet_findings.json``, ``fleet_report.html``. They are built from the summaries
sorted by evidence path, so the local cluster and an external one give the same bytes.

Exit codes: 0 every item triaged and fully read; 1 some items failed or have gaps; 2 bad usage or
no item could be triaged.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import glob
import hashlib
import io
import os
import re
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from triage.options import (
    UsageError,
    add_common_options,
    check_input_paths,
    filter_rows,
    parse_dates,
)
from triage.export.safe import escape_controls

EXIT_OK, EXIT_GAPS, EXIT_USAGE = 0, 1, 2
START_TOPIC = "triage-hunt-start"
POLL_SECONDS = 0.2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triage hunt", description="Triage many evidence items in parallel on Dask and stack tasks across hosts.")
    parser.add_argument("evidence", nargs="+",
                        help="evidence paths, globs (quoted), or @LIST / LIST.txt naming one path per line")
    parser.add_argument("-o", "--output", metavar="DIR", required=True, help="hunt folder (cases/, stacks, report)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing Dask scheduler (default: local cluster)")
    parser.add_argument("--workers", type=int, metavar="N", help="local cluster worker processes (default: one per core)")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="per-item time limit once a worker starts it (default 3600)")
    parser.add_argument("--threshold-percent", type=float, default=5.0, metavar="P",
                        help="rare: on at most P%% of hosts ... (default 5)")
    parser.add_argument("--threshold-hosts", type=int, default=3, metavar="N",
                        help="... or at most N hosts, whichever is larger (default 3)")
    parser.add_argument("--since", metavar="TIME", help="each case's timeline rows at or after this time (ISO 8601; UTC when no offset)")
    parser.add_argument("--until", metavar="TIME", help="each case's timeline rows at or before this time (ISO 8601; UTC when no offset)")
    add_common_options(parser)  # --memory (each image an item of its own), --symbols, --sigma, --ioc, --examiner, --case, ...
    parser.epilog = ("exit codes:\n  0    every item triaged and fully read\n  1    some items failed or have gaps\n"
                     "  2    bad usage, a hunt folder that cannot be written or is refused, or no item triaged\n"
                     "  130  interrupted (SIGINT), 143 terminated (SIGTERM): partial work and temporary files removed")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


# ---------------------------------------------------------------------------------------------
# Evidence list


def expand_evidence(items: list[str]) -> list[str]:
    """Absolute evidence paths from paths, globs and list files, sorted and unique.

    A list file (``@FILE``, or any existing ``.txt`` file) names one path per line; blank lines and
    ``#`` comments are skipped, relative paths are relative to the list file's folder."""
    paths: set[str] = set()
    for item in items:
        list_file = item[1:] if item.startswith("@") else (item if item.lower().endswith(".txt") and Path(item).is_file() else None)
        if list_file is not None:
            base = Path(list_file).resolve().parent
            for line in Path(list_file).read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    paths.add(os.path.abspath(base / line))
        elif glob.has_magic(item):
            paths.update(os.path.abspath(p) for p in glob.glob(item))
        else:
            paths.add(os.path.abspath(item))
    return sorted(paths)


def case_folder_name(path: str) -> str:
    """``<safe name>-<first 8 hex of SHA-256 of the path>``: readable, unique, never outside ``cases/``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name).strip("._-")[:60] or "evidence"
    return f"{slug}-{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


# ---------------------------------------------------------------------------------------------
# The worker side


def triage_item(path: str, case_dir: str, hunt_date: str, options: dict) -> dict:
    """One evidence item, triaged in a Dask worker exactly as ``triage PATH -o CASE_DIR`` would.

    ``options``: symbols, sigma, iocs, examiner, case_id, since, until (UTC datetimes), memory (the
    item is a memory image). Returns a small picklable summary; warnings the run prints go into
    ``gaps`` instead of the worker's stderr. Temporary files live in one folder removed at the end."""
    _report_start(path)
    from triage.context import Context, RunOptions
    from triage.export import write_case
    from triage.export.casefolder import CaseFolderError
    from triage.run import run
    from triage.runscope import run_scope
    from triage.stacking import stack_keys
    from triage.timeorder import earliest, latest

    with contextlib.redirect_stderr(io.StringIO()), run_scope("triage-item", signals=False):
        ctx = Context(quiet=True, options=RunOptions(symbols=options.get("symbols"), sigma=options.get("sigma"),
                                                     iocs=options.get("iocs")))
        memory = bool(options.get("memory"))
        case = run([] if memory else [path], ctx, memory_paths=[path] if memory else [], hunt_date=hunt_date)
        case.timeline = filter_rows(case.timeline, options.get("since"), options.get("until"))
        hashes = _binary_hashes(case)
        written = None
        if case.opened:
            argv = ["triage", *(["--memory"] if memory else []), path, "-o", case_dir, "--hunt-date", hunt_date]
            try:
                written = write_case(case, case_dir, ctx, argv=argv, examiner=options.get("examiner"),
                                     case_id=options.get("case_id"))
            except CaseFolderError as exc:
                ctx.gap(path, case_dir, f"case folder not written: {exc}")
    host = next((h.hostname for h in case.hosts if h.hostname), None)
    # A folder copied to the examiner's host has inode-change times of the copy, not of the machine.
    copied = {ref.path for ref in case.evidence if ref.kind == "dir"}
    entities = []
    for entity in case.entities:
        stamps = [row.utc for row in entity.timeline
                  if row.utc and not (row.meaning == "changed" and row.provenance.evidence in copied)]
        entities.append({"task": entity.task, "kind": entity.kind,
                         "stacks": [list(k) for k in stack_keys(entity, hashes)],
                         "first_seen": earliest(stamps), "last_seen": latest(stamps)})
    systems = " ".join(h.os or "" for h in case.hosts).lower()
    family = "windows" if "windows" in systems else ("unix" if systems.strip() else None)
    return {
        "evidence": path, "host": host, "opened": case.opened, "case_dir": str(written) if written else None,
        "evidence_sha256": next((ref.sha256 for ref in case.evidence if ref.sha256), None), "family": family,
        "entities": sorted(entities, key=lambda e: (e["task"], e["kind"])),
        "findings": [{"hunt_id": f.hunt_id, "task": f.task, "risk_level": f.risk_level, "confidence": f.confidence,
                      "title": f.title, "rule": f.rule} for f in case.findings],
        "gaps": [g.line() for g in ctx.gaps],
    }


class WarmUp(WorkerPlugin):
    """Worker plugin: import the triage pipeline when a worker starts (or restarts), so that import
    time (dissect, pySigma rules) is not charged to the first item's timeout."""

    name = "triage-warm-up"

    def setup(self, worker) -> None:
        from triage.detect import content_rules
        from triage.export import write_case  # noqa: F401
        from triage.run import run  # noqa: F401

        content_rules.load_rules()
        import dissect.target  # noqa: F401


def _report_start(path: str) -> None:
    """Tell the client when (and where) this item really starts: the per-item timeout runs from here."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not inside a Dask worker (called directly): nothing to report
        return
    worker.log_event(START_TOPIC, {"path": path, "worker": worker.address})


def _binary_hashes(case) -> dict[str, str]:
    """SHA-256 of the file each Windows exec action runs, keyed as :func:`triage.stacking.stack_keys` wants
    it: taken from the hashes the run made (:mod:`triage.collect.binaries`, one resolver and one size cap),
    for the hashed file that is the action's binary (the DLL for rundll32/regsvr32)."""
    from triage.stacking import action_binary, normalise_windows_command

    hashes = {}
    for definition in case.definitions:
        for action in definition.actions:
            if action.kind != "exec" or not (binary := action_binary(action.command, action.arguments)):
                continue
            for file in action.details.get("files") or []:
                if file.get("sha256") and normalise_windows_command(file["path"]) == binary:
                    hashes.setdefault(binary, file["sha256"])
    return hashes


# ---------------------------------------------------------------------------------------------
# The client side


class _Progress:
    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.last = total, quiet, None

    def show(self, done: int, failed: int, running: int) -> None:
        line = f"triage hunt: {done + failed}/{self.total} finished: {done} done, {failed} failed, {running} running"
        if line != self.last and not self.quiet:
            print(line, file=sys.stderr, flush=True)
        self.last = line


def _client(args):
    import dask
    from distributed import Client, LocalCluster

    if args.scheduler:
        return Client(args.scheduler, timeout="30s"), None
    # allowed-failures 1: a dead worker's item is retried once. The statistical profiler samples the
    # running item's stack every 10 ms: measured here as ~9 % more CPU per item, for a dashboard nobody opens.
    dask.config.set({"distributed.scheduler.allowed-failures": 1, "distributed.worker.profile.enabled": False})
    cluster = LocalCluster(n_workers=args.workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, silence_logs=50)
    return Client(cluster), cluster


def run_items(paths: list[str], cases_dir: Path, args, options: dict | None = None,
              memory_paths: frozenset[str] = frozenset()) -> tuple[dict[str, dict], dict[str, str]]:
    """Submit every item, wait with per-item timeouts; returns (summaries, failures) keyed by path."""
    from distributed import wait

    client, cluster = _client(args)
    started: dict[str, tuple[float, str]] = {}  # task key -> (monotonic start, worker address)
    lock = threading.Lock()

    def on_start(event) -> None:
        _, message = event
        with lock:
            started[keys_by_path[message["path"]]] = (time.monotonic(), message["worker"])

    options = dict(options or {"symbols": None, "sigma": []})
    hunt_date = args.hunt_date
    keys_by_path = {path: f"triage-item-{case_folder_name(path)}" for path in paths}
    summaries: dict[str, dict] = {}
    failures: dict[str, str] = {}
    progress = _Progress(len(paths), args.quiet)
    try:
        client.subscribe_topic(START_TOPIC, on_start)
        client.register_plugin(WarmUp())
        futures = {client.submit(triage_item, path, str(cases_dir / case_folder_name(path)), hunt_date,
                                 dict(options, memory=path in memory_paths),
                                 key=keys_by_path[path], retries=1, pure=False): path for path in paths}
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in this poll
                done = set()
            for future in done:
                path = futures[future]
                try:
                    summary = future.result()
                except Exception as exc:  # the task raised twice, or its worker died twice (KilledWorker)
                    failures[path] = f"{type(exc).__name__}: {exc}"
                    continue
                if summary["opened"]:
                    summaries[path] = summary
                else:
                    failures[path] = "; ".join(summary["gaps"]) or "no evidence could be opened"
            now = time.monotonic()
            with lock:
                overdue = [(f, started[f.key][1]) for f in pending
                           if f.key in started and now - started[f.key][0] > args.timeout]
            for future, worker in overdue:
                future.cancel()
                pending.discard(future)
                failures[futures[future]] = f"timed out after {args.timeout:g} s (worker restarted)"
                if not args.quiet:
                    print(escape_controls(f"triage hunt: timed out: {futures[future]} on worker {worker}"),
                          file=sys.stderr, flush=True)
                with contextlib.suppress(Exception):  # a worker without a nanny cannot be restarted
                    client.restart_workers([worker], raise_for_error=False)
            with lock:
                running = sum(1 for f in pending if f.key in started)
            progress.show(len(summaries), len(failures), running)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return summaries, failures


def _say(line: str) -> None:
    print(escape_controls(line), file=sys.stderr, flush=True)


def check_scheduler(address: str) -> None:
    """A well-formed ``tcp://HOST:PORT`` (or tls://, ws://, wss://) that answers, checked before any work."""
    import socket

    match = re.fullmatch(r"(tcp|tls|ws|wss)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address)
    if not match or not 0 < int(match.group(3)) < 65536:
        raise UsageError(f"--scheduler {address!r} is not an address like tcp://HOST:PORT")
    host = match.group(2).strip("[]")
    try:
        socket.create_connection((host, int(match.group(3))), timeout=10).close()
    except OSError as exc:
        raise UsageError(f"--scheduler {address}: no Dask scheduler answers there ({exc.strerror or exc})") from None


def hunt_main(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    from triage.export.casefolder import CaseFolderError, check_output
    from triage.runscope import Interrupted, run_scope

    try:
        since, until = parse_dates(args)
        if args.timeout <= 0 or args.threshold_hosts < 1 or not 0 <= args.threshold_percent <= 100:
            raise UsageError("--timeout must be > 0, --threshold-hosts >= 1, --threshold-percent 0-100")
        check_input_paths(args)
        if args.scheduler:
            check_scheduler(args.scheduler)
        try:
            paths = expand_evidence(args.evidence)
        except OSError as exc:
            raise UsageError(f"cannot read evidence list: {exc.strerror or exc}") from None
        memory_paths = [os.path.abspath(m) for m in args.memory]
        paths = sorted(set(paths) | set(memory_paths))
        if not paths:
            raise UsageError("no evidence matched")
        from triage.intel import IocError, load_iocs

        try:
            iocs = load_iocs(args.ioc)
        except IocError as exc:
            raise UsageError(str(exc)) from None
    except UsageError as exc:
        _say(f"triage hunt: error: {exc}")
        return EXIT_USAGE
    if not args.hunt_date:
        from datetime import datetime

        args.hunt_date = datetime.now(UTC).strftime("%Y%m%d")
    options = {"symbols": args.symbols, "sigma": args.sigma, "iocs": iocs, "examiner": args.examiner,
               "case_id": args.case_id, "since": since, "until": until}
    try:
        out = check_output(args.output, [*paths, *args.sigma, *args.ioc, *([args.symbols] if args.symbols else [])],
                           force=args.force)
        with run_scope("triage-hunt"):
            return _hunt(paths, frozenset(memory_paths), out, args, options, argv)
    except CaseFolderError as exc:
        _say(f"triage hunt: error: {exc}")
        return EXIT_USAGE
    except Interrupted as exc:
        _say(f"triage hunt: interrupted by {exc.name}: partial work and temporary files removed")
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place: nothing was written yet
        _say("triage hunt: interrupted by SIGINT: nothing was written")
        return 130


def _hunt(paths: list[str], memory_paths: frozenset[str], out: Path, args, options: dict, argv: list[str]) -> int:
    """Triage every item into a temporary sibling of the hunt folder, write the fleet outputs and the
    hunt manifest there, and rename it into place."""
    from triage.export.casefolder import CaseBuilder, CaseFolderError, remove_own_tree

    try:
        builder = CaseBuilder(out, force=args.force)
    except OSError as exc:
        raise CaseFolderError(f"cannot create the hunt folder beside {out}: {exc.strerror or exc}") from None
    try:
        cases_dir = builder.tmp / "cases"
        cases_dir.mkdir()
        if not args.quiet:
            engine = args.scheduler or f"local cluster, {args.workers or os.cpu_count()} worker processes"
            _say(f"triage hunt: {len(paths)} evidence items on {engine}")
        summaries, failures = run_items(paths, cases_dir, args, options, memory_paths)
        for leftover in cases_dir.glob(".*.triage-tmp-*"):  # a case half-written by a worker that was killed
            remove_own_tree(leftover)
        for path, problem in sorted(failures.items()):
            _say(f"triage hunt: failed: {path}: {problem}")
        if not summaries:
            _say("triage hunt: error: no evidence item could be triaged")
            builder.discard()
            return EXIT_USAGE
        fleet_record = write_fleet(builder.tmp, [summaries[p] for p in sorted(summaries)], failures, args)
        digest = write_hunt_manifest(builder, [summaries[p] for p in sorted(summaries)], failures, args, argv)
        builder.commit()
    except OSError as exc:
        builder.discard()
        raise CaseFolderError(f"cannot write the hunt folder {out}: {exc.strerror or exc} "
                              f"({exc.filename or out}); nothing was left behind") from None
    except BaseException:
        builder.discard()
        raise
    _say(f"triage hunt: wrote {out}: manifest.json SHA-256 {digest}")
    from triage.stacking import build_stacks

    summary = fleet_summary_text(fleet_record, build_stacks(identify_hosts([summaries[p] for p in sorted(summaries)]),
                                                            args.threshold_percent, args.threshold_hosts))
    for line in summary.splitlines():
        print(escape_controls(line))
    has_gaps = any(s["gaps"] for s in summaries.values())
    return EXIT_GAPS if failures or has_gaps else EXIT_OK


def write_hunt_manifest(builder, summaries: list[dict], failures: dict[str, str], args, argv: list[str]) -> str:
    """``manifest.json`` of the hunt folder: every file in it (each case's files included) with its
    SHA-256, and each case's own manifest hash; ``manifest.sha256`` beside it. Returns the hash."""
    from triage.export import manifest
    from triage.export.casefolder import MANIFEST_HASH_NAME

    root = builder.tmp
    outputs = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            data = path.read_bytes()
            outputs.append({"file": path.relative_to(root).as_posix(), "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()})
    cases = []
    for summary in summaries:
        case_dir = Path(summary["case_dir"]) if summary["case_dir"] else None
        noted = (case_dir / MANIFEST_HASH_NAME).read_text(encoding="ascii").split()[0] if case_dir else None
        cases.append({"evidence": summary["evidence"], "host": summary["host"],
                      "case_dir": case_dir.relative_to(root).as_posix() if case_dir else None,
                      "manifest_sha256": noted})
    record = {
        "tool": {"name": "triage", "version": manifest.tool_version()},
        "kind": "hunt",
        "dependencies": manifest.dependency_versions(),
        "command_line": ["triage", "hunt", *argv],
        "examiner": args.examiner,
        "case_id": args.case_id,
        "hunt_date": args.hunt_date,
        "cases": cases,
        "failed": [{"evidence": path, "problem": problem} for path, problem in sorted(failures.items())],
        "outputs": sorted(outputs, key=lambda o: o["file"]),
    }
    digest = builder.write(manifest.MANIFEST_NAME, manifest.manifest_text(record).encode("utf-8"))
    builder.write(MANIFEST_HASH_NAME, manifest.manifest_hash_line(digest).encode("ascii"))
    return digest


# ---------------------------------------------------------------------------------------------
# Fleet outputs


def _host_label(summary: dict) -> str:
    """The hostname, or the case folder name when the evidence does not name its host."""
    return summary["host"] or f"[{case_folder_name(summary['evidence'])}]"


def identify_hosts(summaries: list[dict]) -> list[dict]:
    """Host summaries labelled by host name plus evidence hash.

    The same name from the same evidence bytes (one image listed twice) is one host. The same name
    from different evidence (two images, a disk and a collection, or a cloned machine) is kept as two
    hosts, labelled ``NAME [sha256 prefix]`` and flagged ``name_shared``, never silently merged."""
    by_name: dict[str, set[str]] = {}
    for summary in summaries:
        identity = summary.get("evidence_sha256") or summary["evidence"]
        by_name.setdefault(_host_label(summary), set()).add(identity)
    hosts = []
    for summary in summaries:
        name = _host_label(summary)
        identity = summary.get("evidence_sha256") or summary["evidence"]
        shared = len(by_name[name]) > 1
        suffix = (summary.get("evidence_sha256") or "")[:8] or case_folder_name(summary["evidence"])[-8:]
        label = f"{name} [{suffix}]" if shared else name
        hosts.append(dict(summary, host=label, host_name=name, identity=identity, name_shared=shared))
    return hosts


def write_fleet(out: Path, summaries: list[dict], failures: dict[str, str], args) -> dict:
    """Write the fleet outputs; returns the fleet record (for the terminal summary)."""
    from triage.export import jsonl
    from triage.export.safe import csv_cell, json_text
    from triage.stacking import (
        MIN_FLEET_HOSTS,
        build_stacks,
        family_sizes,
        os_family,
        rare_limit,
        stacking_findings,
    )

    hosts = identify_hosts(summaries)
    stacks = build_stacks(hosts, args.threshold_percent, args.threshold_hosts)
    findings = stacking_findings(stacks, hosts, args.hunt_date, args.threshold_hosts, args.threshold_percent)
    sizes = family_sizes(hosts)
    fleet_size = len({h["host"] for h in hosts})
    columns = ("family", "kind", "value", "host_count", "fleet_hosts", "percent", "rare", "hosts", "tasks", "first_seen",
               "last_seen")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for stack in stacks:
        writer.writerow([csv_cell(";".join(v) if isinstance(v := stack[c], list) else v) for c in columns])
    (out / "stacks.csv").write_text(buffer.getvalue(), encoding="utf-8")
    (out / "stacks.jsonl").write_text(
        "".join(json_text({c: stack[c] for c in columns}) + "\n" for stack in stacks), encoding="utf-8")
    items = [{"evidence": h["evidence"], "host": h["host"], "host_name": h["host_name"], "family": os_family(h),
              "evidence_sha256": h.get("evidence_sha256"), "name_shared_with_other_evidence": h["name_shared"],
              "status": "done", "case_dir": str(Path(h["case_dir"]).relative_to(out)) if h["case_dir"] else None,
              "host_findings": len(h["findings"]), "top_host_findings": _top_host_findings(h), "gaps": h["gaps"]}
             for h in hosts]
    items += [{"evidence": path, "status": "failed", "problem": problem} for path, problem in failures.items()]
    families = {family: {"hosts": size, "rare_at_most_hosts": rare_limit(size, args.threshold_percent, args.threshold_hosts),
                         "stacking_findings": size >= MIN_FLEET_HOSTS}
                for family, size in sizes.items()}
    record = {"hunt_date": args.hunt_date, "fleet_hosts": fleet_size,
              "rare_at_most_hosts": rare_limit(fleet_size, args.threshold_percent, args.threshold_hosts),
              "minimum_hosts_for_stacking_findings": MIN_FLEET_HOSTS, "families": families,
              "items": sorted(items, key=lambda i: i["evidence"]),
              "findings": [jsonl.finding_dict(f) for f in findings]}
    (out / "fleet_findings.json").write_text(json_text(record, indent=2) + "\n", encoding="utf-8")
    (out / "fleet_report.html").write_text(fleet_report_html(record, stacks), encoding="utf-8")
    return record


def _top_host_findings(host: dict) -> list[dict]:
    from triage.detect import RISK_ORDER

    ordered = sorted(host["findings"], key=lambda f: (-RISK_ORDER.get(f["risk_level"], 0), f["hunt_id"]))
    return [{k: f[k] for k in ("hunt_id", "risk_level", "confidence", "task", "title")} for f in ordered[:3]]


def _stacking_note(record: dict) -> str:
    """Why stacking raised findings for a family, or why it did not."""
    parts = []
    for family, facts in record["families"].items():
        if facts["stacking_findings"]:
            parts.append(f"{family}: {facts['hosts']} hosts, an entry is rare on at most {facts['rare_at_most_hosts']} hosts")
        else:
            parts.append(f"{family}: only {facts['hosts']} host(s), fewer than the {record['minimum_hosts_for_stacking_findings']} "
                         "needed before rarity means anything, so its stacks are shown but raise no finding")
    return "; ".join(parts)


def fleet_summary_text(record: dict, stacks: list[dict], width: int | None = None) -> str:
    """What ``triage hunt`` prints when done: hosts, failed items, the rarest entries and the top findings."""
    import textwrap

    from triage.termtable import fit_table, terminal_width

    width = width or terminal_width() or 100_000
    done = [i for i in record["items"] if i["status"] == "done"]
    failed = [i for i in record["items"] if i["status"] == "failed"]
    families = ", ".join(f"{facts['hosts']} {family}" for family, facts in record["families"].items())
    lines = [f"Hosts: {record['fleet_hosts']} ({families}); evidence items: {len(done)} done, {len(failed)} failed"]
    shared = sorted({i["host_name"] for i in done if i["name_shared_with_other_evidence"]})
    if shared:
        lines.append(f"Same host name from different evidence (kept apart): {', '.join(shared)}")
    lines.append(f"Stacking: {_stacking_note(record)}")
    for item in failed:
        lines.append(f"Failed: {item['evidence']}: {item['problem']}")
    lines = [wrapped for line in lines for wrapped in textwrap.wrap(line, width, subsequent_indent="  ",
                                                                    break_long_words=True, break_on_hyphens=False)]
    rare = [s for s in stacks if s["rare"]][:10]
    if rare:
        lines += ["", "Rarest entries:", fit_table([[s["host_count"], s["family"], s["kind"], s["value"], ", ".join(s["hosts"])]
                                                      for s in rare], ["Hosts", "Family", "Kind", "Value", "Which hosts"], width, whole=(0, 1, 2))]
    top = [f for f in record["findings"]][:10]
    host_top = sorted((dict(f, host=i["host"]) for i in done for f in i["top_host_findings"]),
                      key=lambda f: (-_risk_rank(f["risk_level"]), f["host"], f["hunt_id"]))[:10]
    if top:
        lines += ["", "Stacking findings:", fit_table([[f["hunt_id"], f["risk_level"], f["confidence"], f["title"]] for f in top],
                                                      ["Hunt ID", "Risk", "Confidence", "Finding"], width, whole=(0, 1, 2))]
    if host_top:
        lines += ["", "Top per-host findings:", fit_table([[f["host"], f["hunt_id"], f["risk_level"], f["task"], f["title"]]
                                                           for f in host_top], ["Host", "Hunt ID", "Risk", "Task", "Finding"], width, whole=(0, 1, 2))]
    return "\n".join(lines) + "\n"


def _risk_rank(risk: str) -> int:
    from triage.detect import RISK_ORDER

    return RISK_ORDER.get(risk, 0)


def fleet_report_html(record: dict, stacks: list[dict]) -> str:
    """A self-contained page styled like report.html (no scripts, no external resources), every value
    HTML-escaped; each host links to its own case folder's report.html."""
    from importlib import resources

    from triage.export.safe import html_text as h

    template = resources.files("triage").joinpath("data", "report.html.tmpl").read_text(encoding="utf-8")
    style = template[template.index("<style>"):template.index("</style>") + len("</style>")]
    failed = [i for i in record["items"] if i["status"] == "failed"]
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
             "<meta name=\"referrer\" content=\"no-referrer\">",
             f"<title>Fleet hunt {h(record['hunt_date'])}</title>{style}",
             ("<style>tr.rare td { background: #fff0f0; } table.fleet td { overflow-wrap: anywhere; word-break: break-word; }"
              " table.fleet { table-layout: fixed; } table.fleet code { white-space: pre-wrap; overflow-wrap: anywhere; }"
              " table.fleet td.time { font-size: 11px; }"
              "</style></head><body>"),
             (f"<header><h1>Fleet hunt {h(record['hunt_date'])}: scheduled-task persistence (MITRE ATT&amp;CK T1053)</h1>"
              f"<p>{h(record['fleet_hosts'])} hosts · {len(failed)} evidence item(s) failed</p></header><main>"),
             "<section id=\"summary\"><h2>Summary</h2>",
             (f"<p class=\"lead\">{h(record['fleet_hosts'])} host(s) were triaged, each into its own case folder (linked "
              f"below). Tasks are stacked within each operating-system family only. {h(_stacking_note(record))}.</p>")]
    shared = sorted({i["host_name"] for i in record["items"] if i.get("name_shared_with_other_evidence")})
    if shared:
        parts.append(f"<p class=\"warn\">Same host name from different evidence, kept as separate hosts: {h(', '.join(shared))}.</p>")
    parts.append("</section><section id=\"findings\"><h2>Stacking findings</h2>")
    if record["findings"]:
        parts.append("<table class=\"fleet\"><thead><tr><th style=\"width:18%\">Hunt ID</th><th style=\"width:8%\">Risk</th>"
                     "<th style=\"width:9%\">Confidence</th><th>Finding</th><th style=\"width:18%\">Hosts</th>"
                     "<th style=\"width:20%\">Why</th></tr></thead><tbody>")
        for f in record["findings"]:
            parts.append(f"<tr><td class=\"nowrap\">{h(f['hunt_id'])}</td><td><span class=\"badge risk-{h(f['risk_level'].lower())}\">"
                         f"{h(f['risk_level'])}</span></td><td>{h(f['confidence'])}</td><td>{h(f['title'])}</td>"
                         f"<td>{h(f.get('host'))}</td><td>{h(f.get('confidence_basis'))}</td></tr>")
        parts.append("</tbody></table>")
    else:
        parts.append(f"<p class=\"note\">No stacking finding: {h(_stacking_note(record))}.</p>")
    parts.append("</section><section id=\"hosts\"><h2>Hosts and evidence items</h2><table class=\"fleet\"><thead><tr>"
                 "<th style=\"width:14%\">Host</th><th style=\"width:7%\">Family</th><th>Evidence (SHA-256)</th>"
                 "<th style=\"width:7%\">Status</th><th style=\"width:8%\">Findings</th><th style=\"width:20%\">Report / problem</th>"
                 "<th style=\"width:18%\">Gaps</th></tr></thead><tbody>")
    for i in record["items"]:
        if i["status"] == "done" and i.get("case_dir"):
            link = f"{i['case_dir']}/report.html"
            where = f'<a href="{h(link)}">{h(link)}</a>'
        else:
            where = h(i.get("problem") or "—")
        sha = f"<br><span class=\"hash\">{h(i['evidence_sha256'])}</span>" if i.get("evidence_sha256") else ""
        flag = " (name shared with other evidence)" if i.get("name_shared_with_other_evidence") else ""
        parts.append(f"<tr><td>{h(i.get('host') or '—')}{h(flag)}</td><td>{h(i.get('family') or '—')}</td>"
                     f"<td><span class=\"path\">{h(i['evidence'])}</span>{sha}</td><td>{h(i['status'])}</td>"
                     f"<td>{h(i.get('host_findings', '—'))}</td><td>{where}</td><td>{h('; '.join(i.get('gaps', [])) or '—')}</td></tr>")
    parts.append("</tbody></table></section><section id=\"stacks\"><h2>Stacks, rarest first</h2><table class=\"fleet\"><thead><tr>"
                 "<th style=\"width:6%\">Family</th><th style=\"width:9%\">Kind</th><th style=\"width:20%\">Value</th>"
                 "<th style=\"width:5%\">Hosts</th><th style=\"width:5%\">%</th><th style=\"width:12%\">Which hosts</th>"
                 "<th style=\"width:13%\">Tasks</th><th style=\"width:15%\">First seen</th><th style=\"width:15%\">Last seen</th>"
                 "</tr></thead><tbody>")
    for s in stacks:
        row_class = ' class="rare"' if s["rare"] else ""
        which = ", ".join(s["hosts"]) if s["rare"] else f"{len(s['hosts'])} hosts"
        parts.append(f"<tr{row_class}><td>{h(s['family'])}</td><td>{h(s['kind'])}</td><td><code>{h(s['value'])}"
                     f"</code></td><td>{h(s['host_count'])}</td><td>{h(s['percent'])}</td><td>{h(which)}</td>"
                     f"<td>{h(', '.join(s['tasks']))}</td><td class=\"time\">{h(s['first_seen'])}</td>"
                     f"<td class=\"time\">{h(s['last_seen'])}</td></tr>")
    parts.append("</tbody></table></section></main><footer>Written by triage hunt. All times are UTC. Each host's case "
                 "folder holds its own report, timeline and manifest.</footer></body></html>\n")
    return "\n".join(parts)
