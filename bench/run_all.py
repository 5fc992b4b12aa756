"""Run every benchmark once with small, bounded sizes; print one table; write JSON and markdown.

Each figure stands next to a baseline measured in the same run on the same machine (a bare Envoy
next to the mesh, the wire-level ACK next to the harness's wait, direct traffic next to traffic
through the sidecar, a C load generator next to ours, the fixed-n test and the peers' rules next
to the sequential test), so that ratios stay meaningful on a machine shared with other work,
where absolute times move with the load. The I/O benchmarks run as subprocesses (their own
scripts, with their own cleanup) and their printed summaries are read back; the statistics one
is imported. The suite wall time runs the shipped cases once, cold, with
``mesh-harness run cases/ --json`` and splits each case's seconds into the time its policy
demands (waits, injected delays, timeouts; read from the case where that is easy, else "n/a")
and the rest. Nothing is asserted: this is a benchmark, not a test.

Run from the repository root (about 3 minutes):  python bench/run_all.py
Writes bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stats_requests_per_verdict as stats_bench  # noqa: E402
from harness.case import Case, load_case_file  # noqa: E402
from harness.istio.duration import parse_duration  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: Longest any one benchmark may run before the whole run is stopped with a message naming it.
BENCH_TIMEOUT_S = 240.0
#: Small sizes so that every benchmark together stays well under five minutes on two cores.
XDS_ARGS = ("--pushes", "20", "--starts", "3")
LOCAL_MESH_ARGS = ("--starts", "2", "--applies", "20", "--count", "4000")
FORWARD_ECHO_ARGS = ("--count", "4000", "--reps", "2", "--wrk-seconds", "2")
LOAD_ARGS = ("--users", "8", "--seconds", "3", "--reps", "1")


@dataclass(frozen=True)
class Figure:
    """One measured number next to the baseline it is read against (``ratio`` = value / baseline)."""

    figure: str
    value: float
    unit: str
    baseline_name: str
    baseline: float | None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline


@dataclass(frozen=True)
class CaseTime:
    """One shipped case in the suite run: its checks' seconds, and how much of that its policy demands."""

    case: str
    checks: int
    seconds: float
    wait_s: float  # policy waits before checks (not in ``seconds``)
    floor_s: float | None  # delays every request must take, inside ``seconds``; None: not read (n/a)
    policy_how: str

    @property
    def policy_s(self) -> float | None:
        return None if self.floor_s is None else self.wait_s + self.floor_s


# --- running the benchmark scripts ---------------------------------------------------------


def run_script(name: str, args: tuple[str, ...]) -> str:
    """Stdout of ``bench/<name>`` run with ``args``; a failure or a run past the bound stops everything."""
    cmd = [sys.executable, str(ROOT / "bench" / name), *args]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"bench/{name} did not finish within {BENCH_TIMEOUT_S:g}s; "
                         f"run it alone to see where it hangs: {' '.join(cmd)}") from exc
    if done.returncode != 0:
        raise SystemExit(f"bench/{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def grab(pattern: str, text: str, what: str) -> re.Match[str]:
    """The line of a script's summary matching ``pattern``; a changed format names the figure it broke."""
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"could not read {what!r} from the benchmark's output (format changed?):\n{text}")
    return found


def number(text: str) -> float:
    return float(text.replace(",", ""))


def xds_figures() -> tuple[list[Figure], dict[str, float]]:
    out = run_script("xds_push_ack.py", XDS_ARGS)
    median = {key: number(grab(rf"^{re.escape(key)}\s+median\s+([\d.]+)", out, key).group(1))
              for key in ("spawn -> ready", "push -> wait_synced", "RDS response -> ACK")}
    figures = [Figure("xDS push -> every type ACKed (ControlPlane.wait_synced), median", median["push -> wait_synced"],
                      "ms", "RDS response -> ACK on the wire, median", median["RDS response -> ACK"],
                      f"hand-made config, one Envoy; {XDS_ARGS[1]} pushes")]
    return figures, median


def local_mesh_figures(bare: Mapping[str, float]) -> list[Figure]:
    out = run_script("local_mesh.py", LOCAL_MESH_ARGS)
    start = number(grab(r"^start \+ deploy default topology\s+([\d.]+)", out, "start").group(1))
    apply = number(grab(r"^apply -> every sidecar ACKed\s+([\d.]+)", out, "apply").group(1))
    via = grab(r"^through Envoy \(mesh\.send\)\s+([\d,.]+)\s+([\d.]+)", out, "through Envoy")
    direct = grab(r"^direct to reviews-v1-0\s+([\d,.]+)\s+([\d.]+)", out, "direct")
    batch = f"{LOCAL_MESH_ARGS[5]} requests at concurrency 32"
    return [
        Figure("local mesh start + deploy default topology, median", start, "ms",
               "one bare Envoy spawn -> ready, median", bare["spawn -> ready"],
               "control plane, 3 echo apps, 1 Envoy to its first ACK"),
        Figure("mesh.apply (validate, translate, push, ACK), median", apply, "ms",
               "bare push -> wait_synced, median", bare["push -> wait_synced"], "VirtualService flipping v1/v2"),
        Figure("ForwardEcho through the sidecar (mesh.send)", number(via.group(1)), "req/s",
               "same batch direct to the app (no Envoy)", number(direct.group(1)),
               f"{batch}; p50 {via.group(2)} ms vs {direct.group(2)} ms"),
    ]


def forward_echo_figures() -> list[Figure]:
    out = run_script("forward_echo.py", FORWARD_ECHO_ARGS)

    def row(name: str) -> tuple[float, float]:
        found = grab(rf"^{re.escape(name)}\s+([\d.]+) \([^)]*\)\s+([\d.]+) \(", out, name)
        return number(found.group(1)), number(found.group(2))

    new, old = row("new, through Envoy (mesh.send)"), row("old, through Envoy")
    figures = [
        Figure("ForwardEcho raw HTTP/1.1 client through Envoy", new[0], "req/s",
               "old aiohttp client, same listener", old[0], f"{FORWARD_ECHO_ARGS[1]} req, c=32, median of "
               f"{FORWARD_ECHO_ARGS[3]} interleaved rounds"),
        Figure("ForwardEcho client CPU per request", new[1], "us", "old aiohttp client", old[1],
               "CPU is the steadier number on a shared machine"),
    ]
    if re.search(r"^wrk, through Envoy", out, re.MULTILINE):
        wrk = row("wrk, through Envoy")
        figures.append(Figure("ForwardEcho through Envoy vs a C generator", new[0], "req/s",
                              "wrk -t1 -c32, same listener", wrk[0], f"wrk runs {FORWARD_ECHO_ARGS[5]}s"))
    return figures


def load_figures() -> list[Figure]:
    out = run_script("load_locust.py", LOAD_ARGS)
    users = LOAD_ARGS[1]

    def rps(name: str) -> float:
        return number(grab(rf"^{re.escape(name)}\s+([\d,]+)\s+\(", out, name).group(1))

    figures = [Figure(f"Locust MeshUser, {users} users, through the sidecar", rps(f"Locust MeshUser, {users} users"),
                      "req/s", f"ForwardEcho, {users} in flight", rps(f"ForwardEcho, {users} in flight"),
                      f"cases/load-canary.yaml applied; {LOAD_ARGS[3]} s per run")]
    if re.search(rf"^wrk -t1 -c{users}\b", out, re.MULTILINE):
        figures.append(Figure(f"Locust MeshUser, {users} users, through the sidecar", figures[0].value, "req/s",
                              f"wrk -t1 -c{users}", rps(f"wrk -t1 -c{users}"), "a C generator's ceiling there"))
    return figures


# --- statistics: imported, pure ---------------------------------------------------------------


def stats_figures(rows: list[stats_bench.SplitRow]) -> list[Figure]:
    figures = []
    for r in rows:
        bound = "" if r.exact else " (upper bound)"
        figures.append(Figure(f"requests per verdict on a correct mesh, {r.label}: sequential E[n]{bound}",
                              r.expected_n, "requests", "fixed-n test, same alpha and power", r.fixed_n,
                              f"budget {r.budget:,}; looks {len(r.looks)}"))
    for r in rows:
        if r.label not in ("50/50", "90/10"):
            continue
        for p in r.peers:
            figures.append(Figure(
                f"P(pass) when off by delta, {r.label}: ours (sequential, alpha 1e-6, power 0.999)", r.worst_p_pass_off,
                "", p.rule.name, p.worst_p_pass_off,
                f"P(fail) on a correct mesh: ours {r.p_not_pass_correct:.1e}, its {stats_bench.rate(p.p_false_failure)} "
                f"({p.p_attempt_fails:.1e} per attempt, hidden by retries); requests on a correct mesh: ours "
                f"{r.expected_n:,.0f}, its {p.mean_n_correct:,.0f}"))
    return figures


# --- suite wall time ------------------------------------------------------------------------


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) pair in a parsed YAML tree."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield (*path, str(key)), value
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, path)


def latency_floor(raw: Mapping[str, Any], headers: tuple[tuple[str, str], ...]) -> tuple[float | None, str]:
    """Seconds the policy adds to every request of a check, when the config makes that plain.

    Plain means: at most one injected delay at 100%, one app delay (knob or ``x-echo-delay``), one
    route timeout, one HTTP route, and no retries or connection pools (which make waiting depend
    on scheduling). Otherwise (None, why).
    """
    pairs = list(walk(raw.get("config", [])))
    fixed = [parse_duration(str(v)) for p, v in pairs if p[-1] == "fixedDelay"]
    shares = [float(v) for p, v in pairs if p[-2:] == ("percentage", "value") and "delay" in p]
    timeouts = [parse_duration(str(v)) for p, v in pairs if p[-1] == "timeout" and p[-2:-1] != ("retries",)]
    app = [parse_duration(str(v)) for p, v in walk(raw.get("services", {})) if p[-1] == "delay"]
    app += [parse_duration(v) for k, v in headers if k.lower() == "x-echo-delay"]
    routes = sum(len(v) for p, v in pairs if p[-1] == "http" and isinstance(v, list))
    if not (fixed or app):
        return 0.0, "no delays"
    if any(p[-1] in ("retries", "connectionPool") for p, _ in pairs):
        return None, "retries/connection pool"
    if len(fixed) > 1 or len(app) > 1 or len(timeouts) > 1 or routes > 1 or any(s < 100 for s in shares):
        return None, "several routes or delays"
    served = min(app[0], timeouts[0]) if app and timeouts else (app[0] if app else 0.0)
    return (fixed[0] if fixed else 0.0) + served, "delay x rounds"


def policy_seconds(case: Case, raw: Mapping[str, Any], requests: Mapping[str, int]) -> tuple[float, float | None, str]:
    """(waits, delay floor or None, how): the floor is, per check, the latency every request must take
    times ceil(requests / concurrency), a lower bound. Waits come before a check's traffic and are
    not in its JSON seconds; the floor is."""
    waits, hows = 0.0, set()
    total: float | None = 0.0
    for check in case.checks:
        waits += check.wait_s
        floor, how = latency_floor(raw, check.send.headers)
        hows.add(how)
        rounds = math.ceil(requests.get(check.name, 0) / max(1, check.send.concurrency))
        total = None if total is None or floor is None else total + floor * rounds
    return waits, total, ", ".join(sorted(hows))


def suite_run() -> tuple[float, dict[str, Any]]:
    """Wall seconds of one cold ``mesh-harness run cases/ --json``, and its result document."""
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        path = Path(tmp) / "suite.json"
        cmd = [str(Path(sys.executable).with_name("mesh-harness")), "run", "cases/", "--json", str(path)]
        began = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise SystemExit(f"the shipped suite did not finish within {BENCH_TIMEOUT_S:g}s: {' '.join(cmd)}") from exc
        wall = time.perf_counter() - began
        if not path.exists():
            raise SystemExit(f"mesh-harness run wrote no JSON (exit {done.returncode}):\n{done.stderr[-3000:]}")
        document: dict[str, Any] = json.loads(path.read_text())
    return wall, document


def case_times(document: Mapping[str, Any]) -> list[CaseTime]:
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for check in document["checks"]:
        by_case.setdefault(check["case"], []).append(check)
    cases: dict[str, tuple[Case, Mapping[str, Any]]] = {}
    for file in sorted({c["file"] for c in document["checks"]}):
        raws = [d for d in yaml.safe_load_all((ROOT / file).read_text()) if d is not None]
        for case in load_case_file(ROOT / file):
            cases[case.name] = (case, next(r for r in raws if r.get("name") == case.name))
    out = []
    for name, checks in by_case.items():
        case, raw = cases[name]
        waits, floor, how = policy_seconds(case, raw, {c["check"]: c["requests"] or 0 for c in checks})
        out.append(CaseTime(name, len(checks), sum(c["seconds"] for c in checks), waits, floor, how))
    return out


def suite_figures(wall: float, document: Mapping[str, Any], times: list[CaseTime]) -> list[Figure]:
    known = [t for t in times if t.policy_s is not None]
    policy = sum(t.policy_s or 0.0 for t in known) + sum(t.wait_s for t in times if t.policy_s is None)
    checks_s = sum(t.seconds for t in times)
    summary = ", ".join(f"{v} {k}" for k, v in document["summary"].items() if v)
    return [
        Figure("suite wall time, cold (mesh start included)", wall, "s", "time the policies demand (known cases)",
               policy, f"{len(times)} cases, {len(document['checks'])} checks ({summary}); policy time n/a for "
               f"{len(times) - len(known)} cases"),
        Figure("suite: seconds inside checks (send + judge)", checks_s, "s", "suite wall time", wall,
               "the rest is mesh start, apply/revert (ACK waits) and process start-up"),
    ]


# --- machine and output ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_start": list(os.getloadavg()),
            "python": sys.version.split()[0], "commit": commit.strip(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "shared": "the machine runs other work at the same time; absolute figures move with its load, ratios less"}


def show(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == 0.0 or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) >= 0.01 else f"{x:.1e}"


def markdown(figures: list[Figure], times: list[CaseTime], host: Mapping[str, Any]) -> str:
    load = " / ".join(f"{x:.2f}" for x in host["loadavg_start"]) + " -> " + " / ".join(
        f"{x:.2f}" for x in host["loadavg_end"])
    lines = [f"Measured {host['date']} at {host['commit']} on {host['nproc']} x {host['cpu']}, Python "
             f"{host['python']}; load average (1/5/15 min) {load}; {host['shared']}.", "",
             "| figure | value | baseline | ratio | notes |", "|---|---|---|---|---|"]
    for f in figures:
        value = f"{show(f.value)} {f.unit}".strip()
        lines.append(f"| {f.figure} | {value} | {f.baseline_name}: {show(f.baseline)} | {show(f.ratio)} | "
                     f"{f.notes} |")
    lines += ["", "Suite, per case: checks' seconds from the JSON (send + judge; apply/revert not included); "
              "policy wait (before the traffic, not in those seconds); delay floor = injected/app delays x rounds "
              "of requests (a lower bound, inside those seconds; n/a where the config does not make it plain); "
              "rest = seconds - floor.", "",
              "| case | checks | seconds | policy wait s | delay floor s | rest s | floor read from |",
              "|---|---|---|---|---|---|---|"]
    for t in sorted(times, key=lambda t: -(t.seconds + t.wait_s)):
        rest = None if t.floor_s is None else max(0.0, t.seconds - t.floor_s)
        lines.append(f"| {t.case} | {t.checks} | {t.seconds:.2f} | {show(t.wait_s)} | {show(t.floor_s)} | {show(rest)} "
                     f"| {t.policy_how} |")
    return "\n".join(lines) + "\n"


def timed(name: str, step: Callable[[], list[Figure]], spent: dict[str, float]) -> list[Figure]:
    print(f"running {name} ...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    figures = step()
    spent[name] = round(time.perf_counter() - began, 1)
    return figures


def main() -> None:
    host = machine()
    spent: dict[str, float] = {}
    figures: list[Figure] = []
    bare: dict[str, float] = {}

    def xds() -> list[Figure]:
        found, medians = xds_figures()
        bare.update(medians)
        return found

    figures += timed("xds_push_ack", xds, spent)
    figures += timed("local_mesh", lambda: local_mesh_figures(bare), spent)
    figures += timed("forward_echo", forward_echo_figures, spent)
    figures += timed("load_locust", load_figures, spent)
    rows: list[stats_bench.SplitRow] = []

    def stats() -> list[Figure]:
        rows.extend(stats_bench.measure_all())
        return stats_figures(rows)

    figures += timed("stats_requests_per_verdict", stats, spent)
    suite: dict[str, Any] = {}

    def run_suite() -> list[Figure]:
        wall, document = suite_run()
        suite.update(wall=wall, document=document, times=case_times(document))
        return suite_figures(wall, document, suite["times"])

    figures += timed("suite", run_suite, spent)
    host["loadavg_end"] = list(os.getloadavg())
    host["seconds_per_benchmark"] = spent
    RESULTS.mkdir(exist_ok=True)
    table = markdown(figures, suite["times"], host)
    (RESULTS / "latest.md").write_text(table)
    (RESULTS / "latest.json").write_text(json.dumps({
        "machine": host,
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
        "stats_splits": [asdict(r) for r in rows],
        "suite_cases": [{**asdict(t), "policy_s": t.policy_s} for t in suite["times"]],
    }, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
