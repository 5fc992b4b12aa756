"""Run one pytest selection (or one ``mesh-harness run``) K times in a row; record each run's outcome and failing ids.

Why: the suite's claim is that no statistical check fails a correct mesh more often than its stated
chance (each under 1e-6), so repeated runs should all pass. K clean runs are evidence of that, not
proof (the proof is the per-check error bound); a test that fails in some runs and not in others is
named here so that it can be looked at. Each run is a fresh ``python -m pytest`` process bounded by
``--run-timeout``; on overrun it gets SIGTERM (the plugin tears its mesh down), then SIGKILL for its
process group after a grace period. Nothing is asserted: this is a benchmark, not a test.

With ``--cli`` each run is ``mesh-harness run <selection> --json FILE`` instead (what ``run --jobs`` users
type; the pytest plugin has no ``--jobs``), its counts and failing "case :: check" ids read from that JSON.

Run from the repository root:  python bench/flake_runs.py --series NAME [-k 3] [--run-timeout 900] [--out FILE] [--cli] [-- selection ...]
e.g. the shipped cases on real istiod 50 times:  python bench/flake_runs.py --series cases-istiod -k 50 -- cases/ --control-plane istiod
and on four meshes at once through the CLI:  python bench/flake_runs.py --series cli-jobs4 -k 20 --cli -- cases/ -j 4
Each series (the shipped cases per control plane, the whole suite) is one entry of
bench/results/flake_runs.json (or --out), replaced when the series is run again; prints one row per run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "flake_runs.json"
#: How long a timed-out run gets after SIGTERM to stop its meshes before its process group is killed.
GRACE_S = 30.0
#: pytest's short summary line for a failed or erroring test (``-rfE``): "FAILED <node id> - <message>".
SUMMARY_LINE = re.compile(r"^(?:FAILED|ERROR) (?P<nodeid>.+?)(?: - .*)?$")
MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Run:
    """One pytest run: its exit code, duration, counts from its JUnit XML, and the ids that failed."""

    index: int
    exit_code: int | None
    timed_out: bool
    seconds: float
    passed: int
    failed: int
    errors: int
    skipped: int
    failing_ids: list[str]
    failure_lines: list[str]
    """pytest's short summary line of each (id and message, at most ``MESSAGE_CHARS``): the cause, kept."""
    load_before: tuple[float, float, float]
    """The machine's 1/5/15-minute load average when the run started (other work beside it shows here)."""
    load_after: tuple[float, float, float]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def run_once(index: int, selection: list[str], run_timeout: float, workdir: Path, *, cli: bool = False) -> Run:
    """One ``python -m pytest`` (``cli``: ``mesh-harness run``) over ``selection`` in its own process group,
    bounded by ``run_timeout``."""
    report = workdir / f"run-{index}.{'json' if cli else 'xml'}"
    if cli:
        cmd = [sys.executable, "-m", "harness.cli", "run", "-q", *selection, "--json", str(report)]
    else:
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", f"--junitxml={report}", *selection]
    env = {**os.environ, "COLUMNS": "400"}  # summary lines keep whole node ids
    load_before = os.getloadavg()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=run_timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        out = _stop(proc)
    seconds = time.monotonic() - started
    counts, failing = _cli_counts(report) if cli else (_junit_counts(report), _failing_ids(out))
    lines = [line[:MESSAGE_CHARS] for line in out.splitlines() if SUMMARY_LINE.match(line)]
    return Run(index=index, exit_code=None if timed_out else proc.returncode, timed_out=timed_out,
               seconds=round(seconds, 1), failing_ids=failing, failure_lines=lines, load_before=_rounded(load_before),
               load_after=_rounded(os.getloadavg()), **counts)


def _rounded(load: tuple[float, float, float]) -> tuple[float, float, float]:
    return (round(load[0], 2), round(load[1], 2), round(load[2], 2))


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM the overrunning pytest (its plugin closes the mesh), then SIGKILL its group after GRACE_S."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=GRACE_S)
    return out


def _failing_ids(output: str) -> list[str]:
    return [m["nodeid"] for line in output.splitlines() if (m := SUMMARY_LINE.match(line))]


def _junit_counts(path: Path) -> dict[str, int]:
    """passed/failed/errors/skipped from pytest's JUnit XML; zeros where the run wrote none (killed early)."""
    if not path.exists():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")  # type: ignore[assignment]
    tests, failed, errors, skipped = (int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped"))
    return {"passed": tests - failed - errors - skipped, "failed": failed, "errors": errors, "skipped": skipped}


def _cli_counts(path: Path) -> tuple[dict[str, int], list[str]]:
    """passed/failed (fail + inconclusive)/errors from a ``mesh-harness run --json`` document, and the
    "case :: check" ids that did not pass; zeros where the run wrote none (killed early, invalid input)."""
    if not path.exists():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}, []
    checks = json.loads(path.read_text())["checks"]
    outcomes = [c["outcome"] for c in checks]
    counts = {"passed": outcomes.count("pass"), "failed": outcomes.count("fail") + outcomes.count("inconclusive"),
              "errors": outcomes.count("error"), "skipped": 0}
    return counts, [f"{c['case']} :: {c['check']}" for c in checks if c["outcome"] != "pass"]


def summarize(runs: list[Run]) -> dict[str, object]:
    """How many runs failed, and which ids failed in some runs but not all (the flaky ones)."""
    seen: dict[str, int] = {}
    for run in runs:
        for nodeid in set(run.failing_ids):
            seen[nodeid] = seen.get(nodeid, 0) + 1
    return {
        "runs": len(runs),
        "failed_runs": sum(not r.ok for r in runs),
        "failing_ids": {nodeid: count for nodeid, count in sorted(seen.items())},
        "flaky_ids": sorted(nodeid for nodeid, count in seen.items() if count < len(runs)),
    }


def table(runs: list[Run]) -> str:
    header = (f"{'run':>3}  {'result':<9} {'exit':>4} {'seconds':>8} {'passed':>6} {'failed':>6} {'errors':>6} "
              f"{'skipped':>7} {'load 1m':>8}")
    rows = [header]
    for r in runs:
        result = "TIMEOUT" if r.timed_out else ("pass" if r.ok else "FAIL")
        rows.append(f"{r.index:>3}  {result:<9} {r.exit_code if r.exit_code is not None else '-':>4} {r.seconds:>8.1f} "
                    f"{r.passed:>6} {r.failed:>6} {r.errors:>6} {r.skipped:>7} {r.load_before[0]:>8.2f}")
        rows.extend(f"       failing: {nodeid}" for nodeid in r.failing_ids)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection", nargs="*", default=["cases/"], help="pytest arguments (default: cases/)")
    parser.add_argument("-k", "--runs", type=int, default=3, help="how many times to run the selection")
    parser.add_argument("--run-timeout", type=float, default=900.0, help="seconds one run may take")
    parser.add_argument("--series", required=True, help="name of this series in the result file, e.g. cases-builtin, suite")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file (one entry per series)")
    parser.add_argument("--cli", action="store_true", help="run `mesh-harness run <selection>` instead of pytest")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.run_timeout <= 0:
        parser.error("--runs must be at least 1 and --run-timeout positive")
    # Started in the background by a shell (`... &`), this process ignores SIGINT and its pytest runs would
    # inherit that, so the suite's Ctrl-C tests would see a harness that cannot be interrupted. A handler
    # (unlike SIG_IGN) is not inherited: each run starts with the default, as in a terminal or in CI.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    runs: list[Run] = []
    commit = _commit()
    with tempfile.TemporaryDirectory(prefix="flake-runs-") as tmp:
        for index in range(1, args.runs + 1):
            run = run_once(index, args.selection, args.run_timeout, Path(tmp), cli=args.cli)
            print(f"run {index}/{args.runs}: {'pass' if run.ok else 'FAIL'} in {run.seconds:.1f} s "
                  f"(load {run.load_before[0]:.2f} -> {run.load_after[0]:.2f})"
                  + "".join(f"\n       failing: {nodeid}" for nodeid in run.failing_ids), flush=True)
            runs.append(run)
            save(args.out, args.series, series_document(runs, args.selection, args.run_timeout, commit, args.runs,
                                                        cli=args.cli))
    summary = summarize(runs)
    print(table(runs))
    print(f"{summary['failed_runs']} of {summary['runs']} runs failed; flaky ids: {summary['flaky_ids'] or 'none'}")
    print(f"wrote series {args.series!r} to {args.out}")
    return 0 if summary["failed_runs"] == 0 else 1


def series_document(runs: list[Run], selection: list[str], run_timeout: float, commit: str | None,
                    planned: int, *, cli: bool = False) -> dict[str, object]:
    """The series so far: saved after every run, so a series cut short (or stopped at a failure) keeps its runs."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "mesh-harness run" if cli else "pytest",
        "selection": selection,
        "run_timeout_s": run_timeout,
        "planned_runs": planned,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "commit": commit,
        "summary": summarize(runs),
        "runs": [{**asdict(r), "ok": r.ok} for r in runs],
    }


def save(out: Path, name: str, doc: dict[str, object]) -> None:
    """Replace series ``name`` in ``out``, keeping the others."""
    out.parent.mkdir(parents=True, exist_ok=True)
    series = json.loads(out.read_text())["series"] if out.exists() else {}
    series[name] = doc
    out.write_text(json.dumps({"series": series}, indent=2) + "\n")


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
