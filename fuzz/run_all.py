"""Run every atheris fuzzer for a fixed budget: ``python3 fuzz/run_all.py --seconds 60``.

For each fuzzer: a fresh corpus seeded with the real samples (corpus files and builder outputs, as
the property tests use), one libFuzzer run of ``--seconds``, then a summary line (executions,
coverage, findings). A finding (an exception other than the parser's documented error) is copied to
tests/hostile/regressions/<parser>/ so the normal test suite replays it from then on. Exit code 0
when no fuzzer found anything, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(PROJECT))

from tests.hostile.parser_targets import TARGETS  # noqa: E402

FUZZERS = {
    "fuzz_taskcache.py": ("taskcache_actions", "taskcache_triggers", "taskcache_dynamic_info"),
    "fuzz_job.py": ("job",),
    "fuzz_sd.py": ("security_descriptor",),
    "fuzz_hive_log.py": ("hive_log",),
}
REGRESSIONS = PROJECT / "tests" / "hostile" / "regressions"


def _failing_target(data: bytes, names: tuple[str, ...]) -> str | None:
    for name in names:
        target = TARGETS[name]
        try:
            target.call(data)
        except target.error:
            pass
        except Exception:
            return name
    return None


def run_fuzzer(script: str, names: tuple[str, ...], seconds: int, work: Path) -> dict:
    corpus, artifacts = work / "corpus", work / "artifacts"
    corpus.mkdir(parents=True)
    artifacts.mkdir()
    for name in names:
        for seed in TARGETS[name].seeds():
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    seeds = len(list(corpus.iterdir()))
    command = [sys.executable, str(HERE / script), str(corpus), f"-max_total_time={seconds}", "-print_final_stats=1",
               f"-artifact_prefix={artifacts}/", "-timeout=10", "-rss_limit_mb=2048", "-max_len=65536"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT)
    log = result.stderr + result.stdout
    (work / "log.txt").write_text(log)
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.M))
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    findings = []
    for artifact in sorted(artifacts.iterdir()):
        data = artifact.read_bytes()
        parser = _failing_target(data, names) or names[0]
        keep = REGRESSIONS / parser / f"{script.removesuffix('.py')}-{artifact.name}"
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact, keep)
        findings.append(str(keep.relative_to(PROJECT)))
    return {"executions": int(stats.get("number_of_executed_units", 0)), "coverage": cov[-1] if cov else None,
            "findings": findings, "returncode": result.returncode, "seeds": seeds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 fuzz/run_all.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="budget per fuzzer (default 60)")
    parser.add_argument("--only", choices=sorted(FUZZERS), action="append", help="run only this fuzzer (repeatable)")
    args = parser.parse_args(argv)
    found = False
    with tempfile.TemporaryDirectory(prefix="triage-fuzz-") as tmp:
        for script in args.only or sorted(FUZZERS):
            summary = run_fuzzer(script, FUZZERS[script], args.seconds, Path(tmp) / script)
            cov = f"cov {summary['coverage'][0]} ft {summary['coverage'][1]}" if summary["coverage"] else "cov ?"
            print(f"{script}: {summary['executions']} inputs in {args.seconds} s from {summary['seeds']} seeds, {cov}, "
                  f"{len(summary['findings'])} findings")
            for finding in summary["findings"]:
                print(f"  finding kept as {finding}")
            if summary["findings"] or summary["returncode"] not in (0,):
                found = True
                if not summary["findings"]:
                    print(f"  libFuzzer exit {summary['returncode']}; last lines:\n"
                          + "\n".join((Path(tmp) / script / "log.txt").read_text().splitlines()[-15:]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
