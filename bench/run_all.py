"""Run every benchmark once with small, bounded sizes; print one table; write JSON and markdown.

Each figure stands next to a baseline measured in the same run on the same machine (a bare Envoy
next to the mesh, the wire-level ACK next to the harness's wait, direct traffic and wrk next to
traffic through the sidecar, the fixed-n test and the peers' rules next to the sequential test, a
target where the issue sets one), so that ratios stay meaningful on a machine shared with other
work, where absolute times move with the load. The I/O benchmarks run as subprocesses (their own
scripts, with their own cleanup) and their printed summaries are read back; the statistics one
is imported. Figures:

* push -> ACK and ``mesh.apply`` -> synced, median and p95, next to the bare push -> wait_synced
  and the RDS response -> ACK wire floor (bench/xds_push_ack.py, bench/local_mesh.py);
* mesh start, and the mesh's memory (RSS of Envoy, the apps and the process hosting the control
  plane) after deploy, after traffic, and after the warm suite, next to a bare Envoy plus a bare
  Python process per Python process;
* ForwardEcho and Locust throughput and ForwardEcho's latency p50 / p95 / p99 next to wrk's;
* requests per verdict: mean and p95 of the sequential test next to the fixed-n test, and the
  peers' rules (bench/stats_requests_per_verdict.py);
* the suite: ``mesh-harness run cases/`` cold, next to the time its policies demand, alone and
  plus one mesh start (the speed issue's target: at most twice that), broken down into time inside
  checks, policy waits, apply + revert and the rest; the same suite with ``--jobs`` 2 and 4
  (``SUITE_JOBS``: meshes at once) next to it and to the target; per case, its seconds (checks,
  apply, revert, waits) minus the time its policy demands (read from the case where that is easy, else "n/a"); the routing and split
  cases (``ROUTING_SPLIT``) run cold on their own against the issue's 30 s target; and the same
  default-topology files cold and warm (``mesh-harness up``, ``run --mesh-attach``, ``down``; an up
  environment serves one topology, so cases with their own services are left out of that pair).

Nothing is asserted: this is a benchmark, not a test.

Run from the repository root (about 4 minutes on two cores):  python bench/run_all.py [--out DIR]
Writes DIR/latest.json and DIR/latest.md (default DIR: bench/results).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stats_requests_per_verdict as stats_bench  # noqa: E402
from bench.local_mesh import compile_checkout, tree_rss_mib  # noqa: E402
from harness.case import Case, load_case_file  # noqa: E402
from harness.istio.duration import parse_duration  # noqa: E402
from harness.topology import DEFAULT_TOPOLOGY  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: Longest any one benchmark may run before the whole run is stopped with a message naming it.
BENCH_TIMEOUT_S = 240.0
#: Small sizes so that every benchmark together stays well under five minutes on two cores.
XDS_ARGS = ("--pushes", "40", "--starts", "3")
LOCAL_MESH_ARGS = ("--starts", "7", "--applies", "40", "--count", "4000")
FORWARD_ECHO_ARGS = ("--count", "4000", "--reps", "5", "--wrk-seconds", "2")  # 5 rounds: on a shared machine 3 left one busy round in the median
LOAD_ARGS = ("--users", "8", "--seconds", "3", "--reps", "1")
MESH_HARNESS = str(Path(sys.executable).with_name("mesh-harness"))
#: The issue's target for the routing and split cases together, on two cores.
ROUTING_SPLIT_TARGET_S = 30.0
#: The routing and split cases: they route by header, uri, query, method, authority, port, host or
#: source, or split by weight. Per file, the cases that count; a file's other cases still run in the
#: subset's wall time (so that figure is an upper bound), but not in the sum of the cases' seconds.
ROUTING_SPLIT: Mapping[str, tuple[str, ...]] = {
    "cases/header-route.yaml": ("header-route",),
    "cases/uri-match.yaml": ("uri-matches",),
    "cases/query-method.yaml": ("query-and-method-matches",),
    "cases/ports-and-hosts.yaml": ("host-forms-on-port-80", "virtual-service-host-without-service"),
    "cases/default-route.yaml": ("no-virtual-service",),
    "cases/no-match.yaml": ("virtual-service-matching-nothing",),
    "cases/canary.yaml": ("canary-90-10", "even-split"),
    "cases/three-way-split.yaml": ("three-way-split",),
    "cases/grpc.yaml": ("grpc-route-by-method", "grpc-weighted-split"),
    "cases/multiple-virtual-services.yaml": ("oldest-virtual-service-wins",),
    "cases/source-scoped.yaml": ("source-labels",),
}
#: The environment name for the warm run, under a temporary MESH_HARNESS_HOME (never the user's).
WARM_ENV = "bench"
SUITE_JOBS = (2, 4)
"""``run --jobs`` of the parallel suite figures: one mesh per core of the machine this is measured on, and two."""


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
    """One shipped case in the suite run: what it cost, and how much of that its policy demands."""

    case: str
    checks: int
    seconds: float  # inside its checks: send + judge
    setup_s: float | None  # apply (with deploy) + revert, from the result document; None: not recorded
    wait_s: float  # policy waits before checks (not in ``seconds``)
    floor_s: float | None  # delays every request must take, inside ``seconds``; None: not read (n/a)
    policy_how: str
    routing: bool  # one of ROUTING_SPLIT

    @property
    def policy_s(self) -> float | None:
        return None if self.floor_s is None else self.wait_s + self.floor_s

    @property
    def total_s(self) -> float:
        """Everything the case costs in a run besides mesh start: checks, apply + revert, waits."""
        return self.seconds + (self.setup_s or 0.0) + self.wait_s

    @property
    def rest_s(self) -> float | None:
        """What the case costs beyond what its policy demands; None where the policy time is not read."""
        return None if self.policy_s is None else max(0.0, self.total_s - self.policy_s)


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
    """Push -> ACK next to the wire floor; returns the bare numbers the mesh's figures are read against."""
    out = run_script("xds_push_ack.py", XDS_ARGS)
    bare: dict[str, float] = {}
    for key in ("spawn -> ready", "push -> wait_synced", "RDS response -> ACK"):
        found = grab(rf"^{re.escape(key)}\s+median\s+([\d.]+)\s+p95\s+([\d.]+)", out, key)
        bare[f"{key} median"], bare[f"{key} p95"] = number(found.group(1)), number(found.group(2))
    bare["envoy rss"] = number(grab(r"^bare Envoy RSS\s+([\d.]+) MiB", out, "bare Envoy RSS").group(1))
    figures = [Figure(f"xDS push -> every type ACKed (ControlPlane.wait_synced), {q}", bare[f"push -> wait_synced {q}"],
                      "ms", f"RDS response -> ACK on the wire, {q}", bare[f"RDS response -> ACK {q}"],
                      f"hand-made config, one Envoy; {XDS_ARGS[1]} pushes") for q in ("median", "p95")]
    return figures, bare


def memory_floor(processes: int, bare: Mapping[str, float]) -> float:
    """RSS a mesh of ``processes`` processes (one Envoy, the rest Python) takes at the least: bare ones."""
    return bare["envoy rss"] + (processes - 1) * bare["python rss"]


def local_mesh_figures(bare: dict[str, float]) -> list[Figure]:
    out = run_script("local_mesh.py", LOCAL_MESH_ARGS)
    start = number(grab(r"^start \+ deploy default topology\s+([\d.]+)", out, "start").group(1))
    apply = grab(r"^apply -> every sidecar ACKed\s+([\d.]+)\s+([\d.]+)", out, "apply")
    via = grab(r"^through Envoy \(mesh\.send\)\s+([\d,.]+)\s+([\d.]+)", out, "through Envoy")
    direct = grab(r"^direct to reviews-v1-0\s+([\d,.]+)\s+([\d.]+)", out, "direct")
    bare["python rss"] = number(grab(r"^bare python process RSS\s+([\d.]+) MiB", out, "bare python").group(1))
    bare["mesh start median"] = start
    batch = f"{LOCAL_MESH_ARGS[5]} requests at concurrency 32"
    figures = [
        Figure("local mesh start + deploy default topology, median (target: ratio <= 4)", start, "ms",
               "one bare Envoy spawn -> ready, median", bare["spawn -> ready median"],
               "control plane, echo zygote + 3 echo apps, 1 Envoy to its first ACK"),
        *(Figure(f"mesh.apply -> every sidecar ACKed (validate, translate, push, ACK), {q}", number(apply.group(i)),
                 "ms", f"bare push -> wait_synced, {q}", bare[f"push -> wait_synced {q}"],
                 f"VirtualService flipping v1/v2, {LOCAL_MESH_ARGS[3]} applies; push -> ACK wire floor {q} "
                 f"{show(bare[f'RDS response -> ACK {q}'])} ms") for i, q in ((1, "median"), (2, "p95"))),
        Figure("ForwardEcho through the sidecar (mesh.send)", number(via.group(1)), "req/s",
               "same batch direct to the app (no Envoy)", number(direct.group(1)),
               f"{batch}; p50 {via.group(2)} ms vs {direct.group(2)} ms"),
    ]
    for when in ("after deploy", "after applies + traffic"):
        found = grab(rf"^mesh RSS {re.escape(when)}\s+([\d.]+) MiB\s+\((\d+) processes\)", out, f"RSS {when}")
        processes = int(found.group(2))
        figures.append(Figure(f"local mesh memory (RSS, every process), {when}", number(found.group(1)), "MiB",
                              f"bare Envoy + {processes - 1} bare Python processes", memory_floor(processes, bare),
                              f"Envoy, {processes - 2} apps, the process hosting the control plane; bare Envoy "
                              f"{show(bare['envoy rss'])}, bare Python {show(bare['python rss'])} MiB; shared pages "
                              "count in each process"))
    return figures


def forward_echo_figures(bare: dict[str, float]) -> list[Figure]:
    """ForwardEcho against the old client and wrk; wrk's rate goes into ``bare`` (the suite's traffic floor)."""
    out = run_script("forward_echo.py", FORWARD_ECHO_ARGS)

    def row(name: str) -> tuple[float, float]:
        found = grab(rf"^{re.escape(name)}\s+([\d.]+) \([^)]*\)\s+([\d.]+) \(", out, name)
        return number(found.group(1)), number(found.group(2))

    def latencies(name: str) -> tuple[float, float, float]:
        found = grab(rf"^{re.escape(name)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out.split("per-request latency", 1)[-1],
                     f"latency of {name}")
        return number(found.group(1)), number(found.group(2)), number(found.group(3))

    # "control": ForwardEcho itself (the client app's batch through its sidecar, records decoded), the
    # same work the old client and wrk do; "mesh.send" adds the harness's access-log join on top.
    new, send, old = row("new, through Envoy (control)"), row("new, through Envoy (mesh.send)"), row("old, through Envoy")
    figures = [
        Figure("ForwardEcho raw HTTP/1.1 client through Envoy", new[0], "req/s",
               "old aiohttp client, same listener", old[0], f"{FORWARD_ECHO_ARGS[1]} req, c=32, median of "
               f"{FORWARD_ECHO_ARGS[3]} interleaved rounds"),
        Figure("ForwardEcho client CPU per request", new[1], "us", "old aiohttp client", old[1],
               "CPU is the steadier number on a shared machine"),
    ]
    if re.search(r"^wrk, through Envoy", out, re.MULTILINE):
        wrk = row("wrk, through Envoy")
        bare["wrk req/s"] = wrk[0]
        figures.append(Figure("ForwardEcho through Envoy vs a C generator (target: ratio >= 0.7)", new[0],
                              "req/s", "wrk -t1 -c32, same listener", wrk[0], f"wrk runs {FORWARD_ECHO_ARGS[5]}s"))
        figures.append(Figure("mesh.send (ForwardEcho + access-log join) vs a C generator (target: ratio >= 0.6)", send[0], "req/s",
                              "wrk -t1 -c32, same listener", wrk[0], "what a check's batch costs end to end"))
        ours, theirs = latencies("new, through Envoy (mesh.send)"), latencies("wrk, through Envoy")
        for i, q in enumerate(("p50", "p95", "p99")):
            figures.append(Figure(f"ForwardEcho per-request latency through the sidecar, {q}", ours[i], "ms",
                                  f"wrk -t1 -c32, same listener, {q}", theirs[i],
                                  "concurrency 32 both; ForwardEcho from its records, wrk from its histogram"))
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
        bound = "" if r.n_exact else " (upper bound)"
        figures.append(Figure(f"requests per verdict on a correct mesh, {r.label}: sequential mean n{bound}",
                              r.expected_n, "requests", "fixed-n test, same alpha and power", r.fixed_n,
                              f"budget {r.budget:,}; looks {len(r.looks)}"))
        figures.append(Figure(f"requests per verdict on a correct mesh, {r.label}: sequential p95 n{bound}",
                              r.p95_n, "requests", "fixed-n test, same alpha and power", r.fixed_n,
                              f"95% of checks on a correct mesh stop by this look; budget {r.budget:,}"))
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


UNLIMITED = 2**32 - 1
"""istiod's value for a connection-pool limit left unset or at 0."""


@dataclass(frozen=True)
class Floor:
    """What a check's policy makes every round of requests wait: ``seconds`` per round, rounds of at most
    ``parallel`` requests at once (besides the check's own concurrency)."""

    seconds: float
    how: str
    parallel: int = UNLIMITED

    def total(self, requests: int, concurrency: int) -> float:
        return self.seconds * math.ceil(requests / max(1, min(concurrency, self.parallel)))


def latency_floor(raw: Mapping[str, Any], headers: tuple[tuple[str, str], ...]) -> Floor | None:
    """What the policy adds to each round of a check's requests, when the config makes it plain; else None.

    Plain means: at most one injected delay at 100%, one app delay (knob or ``x-echo-delay``), one
    route timeout and one HTTP route; and of the policies that make a request wait on others or try
    again, only these two shapes, each a lower bound:

    * ``connectionPool.tcp.maxConnections`` m with no pending limit: HTTP/1.1 requests queue for the
      m connections, so rounds hold m at a time; with a pending limit, requests past it are refused
      at once, so only one round is certain;
    * ``retries`` with a ``perTryTimeout`` t below the app's delay and no route timeout: each
      request takes ``attempts + 1`` tries of t when ``retryOn`` retries a timeout (5xx,
      gateway-error), else one (the backoff between tries is random from 0, so it adds nothing certain).
    """
    pairs = list(walk(raw.get("config", [])))
    fixed = [parse_duration(str(v)) for p, v in pairs if p[-1] == "fixedDelay"]
    shares = [float(v) for p, v in pairs if p[-2:] == ("percentage", "value") and "delay" in p]
    timeouts = [parse_duration(str(v)) for p, v in pairs if p[-1] == "timeout" and p[-2:-1] != ("retries",)]
    app = [parse_duration(str(v)) for p, v in walk(raw.get("services", {})) if p[-1] == "delay"]
    app += [parse_duration(v) for k, v in headers if k.lower() == "x-echo-delay"]
    routes = sum(len(v) for p, v in pairs if p[-1] == "http" and isinstance(v, list))
    if not (fixed or app):
        return Floor(0.0, "no delays")
    if len(fixed) > 1 or len(app) > 1 or len(timeouts) > 1 or routes > 1 or any(s < 100 for s in shares):
        return None
    retries = [v for p, v in pairs if p[-1] == "retries" and isinstance(v, Mapping)]
    pools = [v for p, v in pairs if p[-1] == "connectionPool" and isinstance(v, Mapping)]
    if retries and pools or len(retries) > 1 or len(pools) > 1:
        return None
    if retries:
        per_try = retries[0].get("perTryTimeout")
        if per_try is None or timeouts or fixed or not app or parse_duration(str(per_try)) >= app[0]:
            return None
        retried = {"5xx", "gateway-error"} & set(str(retries[0].get("retryOn", "")).split(","))
        tries = 1 + int(retries[0].get("attempts", 2)) if retried else 1
        return Floor(tries * parse_duration(str(per_try)), "tries x perTryTimeout x rounds")
    served = min(app[0], timeouts[0]) if app and timeouts else (app[0] if app else 0.0)
    per_round = (fixed[0] if fixed else 0.0) + served
    if not pools:
        return Floor(per_round, "delay x rounds")
    tcp, http = pools[0].get("tcp", {}), pools[0].get("http", {})
    connections = int(tcp.get("maxConnections", 0)) or UNLIMITED
    if int(http.get("http1MaxPendingRequests", 0)) or int(http.get("http2MaxRequests", 0)):
        return Floor(per_round, "delay, one round certain (a pending limit refuses the rest)", parallel=UNLIMITED)
    if connections == UNLIMITED:
        return Floor(per_round, "delay x rounds (no connection limit)")
    return Floor(per_round, "delay x rounds of maxConnections", parallel=connections)


def policy_seconds(case: Case, raw: Mapping[str, Any], requests: Mapping[str, int]) -> tuple[float, float | None, str]:
    """(waits, delay floor or None, how): the floor is, per check, the wait every round of requests must
    take times its rounds (``Floor.total``), a lower bound. Waits come before a check's traffic and are
    not in its JSON seconds; the floor is."""
    waits, hows = 0.0, set()
    total: float | None = 0.0
    for check in case.checks:
        waits += check.wait_s
        floor = latency_floor(raw, check.send.headers)
        hows.add("several routes, delays or policies" if floor is None else floor.how)
        if total is not None and floor is not None:
            total += floor.total(requests.get(check.name, 0), check.send.concurrency)
        else:
            total = None
    return waits, total, ", ".join(sorted(hows))


def mesh_harness(args: Sequence[str], what: str, env: Mapping[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds and outcome of ``mesh-harness <args>``; a run past the bound stops everything, naming ``what``."""
    cmd = [MESH_HARNESS, *args]
    began = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S,
                              env={**os.environ, "COLUMNS": "200", **env})
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"{what} did not finish within {BENCH_TIMEOUT_S:g}s: {' '.join(cmd)}") from exc
    return time.perf_counter() - began, done


def suite_run(paths: Sequence[str], what: str, *, attach: str | None = None,
              env: Mapping[str, str] | None = None, jobs: int = 1) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``mesh-harness run <paths> --json`` (cold, or on environment ``attach``; on ``jobs``
    meshes at once) and its document."""
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        path = Path(tmp) / "suite.json"
        extra = (["--mesh-attach", attach] if attach else []) + (["--jobs", str(jobs)] if jobs > 1 else [])
        wall, done = mesh_harness(["run", *paths, "--json", str(path), *extra], what, env or {})
        if not path.exists():
            raise SystemExit(f"{what}: mesh-harness run wrote no JSON (exit {done.returncode}):\n{done.stderr[-3000:]}")
        document: dict[str, Any] = json.loads(path.read_text())
    return wall, document


@dataclass(frozen=True)
class WarmRun:
    """The default-topology files run on an environment that was already up, and the mesh's memory around it."""

    up_s: float
    wall: float
    document: dict[str, Any]
    rss_after_up: dict[str, float]  # per process of the daemon's tree, MiB
    rss_after_run: dict[str, float]


def warm_run(paths: Sequence[str]) -> WarmRun:
    """``mesh-harness up``, ``run <paths> --mesh-attach``, ``down``, under a temporary MESH_HARNESS_HOME."""
    with tempfile.TemporaryDirectory(prefix="bench-env-") as home:
        env = {"MESH_HARNESS_HOME": home}
        up_s, up = mesh_harness(["up", "--name", WARM_ENV], "mesh-harness up", env)
        if up.returncode != 0:
            raise SystemExit(f"mesh-harness up --name {WARM_ENV} failed (exit {up.returncode}):\n{up.stderr[-3000:]}")
        try:
            daemon = int(grab(r"daemon\s+pid\s+(\d+)", up.stdout, "the environment daemon's pid").group(1))
            after_up = tree_rss_mib(daemon)
            wall, document = suite_run(paths, "the warm suite", attach=WARM_ENV, env=env)
            after_run = tree_rss_mib(daemon)
        finally:
            _, down = mesh_harness(["down", "--name", WARM_ENV], "mesh-harness down", env)
            if down.returncode != 0:
                raise SystemExit(f"mesh-harness down --name {WARM_ENV} failed (exit {down.returncode}); stop it with "
                                 f"MESH_HARNESS_HOME={home} mesh-harness down --name {WARM_ENV}:\n{down.stderr[-3000:]}")
    return WarmRun(up_s, wall, document, after_up, after_run)


def default_topology_files() -> list[str]:
    """Shipped case files whose every case runs on DEFAULT_TOPOLOGY: what one ``mesh-harness up`` can serve."""
    return [str(f.relative_to(ROOT)) for f in sorted((ROOT / "cases").glob("*.yaml"))
            if all(c.topology == DEFAULT_TOPOLOGY for c in load_case_file(f))]


def check_routing_split() -> None:
    """Every file and case named in ROUTING_SPLIT exists (before minutes of benchmarks, not after)."""
    for file, names in ROUTING_SPLIT.items():
        if not (ROOT / file).exists():
            raise SystemExit(f"ROUTING_SPLIT names {file}, which does not exist; update bench/run_all.py")
        missing = set(names) - {c.name for c in load_case_file(ROOT / file)}
        if missing:
            raise SystemExit(f"ROUTING_SPLIT names cases {sorted(missing)} that {file} does not hold; update "
                             "bench/run_all.py")


def case_times(document: Mapping[str, Any]) -> list[CaseTime]:
    by_case: dict[str, list[Mapping[str, Any]]] = {}
    for check in document["checks"]:
        by_case.setdefault(check["case"], []).append(check)
    cases: dict[str, tuple[Case, Mapping[str, Any]]] = {}
    for file in sorted({c["file"] for c in document["checks"]}):
        raws = [d for d in yaml.safe_load_all((ROOT / file).read_text()) if d is not None]
        for case in load_case_file(ROOT / file):
            cases[case.name] = (case, next(r for r in raws if r.get("name") == case.name))
    routing = {name for names in ROUTING_SPLIT.values() for name in names}
    out = []
    for name, checks in by_case.items():
        case, raw = cases[name]
        waits, floor, how = policy_seconds(case, raw, {c["check"]: c["requests"] or 0 for c in checks})
        apply_s, revert_s = checks[0].get("case_apply_s"), checks[0].get("case_revert_s")
        setup = None if apply_s is None or revert_s is None else apply_s + revert_s
        out.append(CaseTime(name, len(checks), sum(c["seconds"] for c in checks), setup, waits, floor, how,
                            name in routing))
    return out


def outcomes(document: Mapping[str, Any]) -> str:
    """``"61 pass, 1 inconclusive (three-way-split / split follows the weights)"``: counts, and which did not pass."""
    counts = ", ".join(f"{v} {k}" for k, v in document["summary"].items() if v)
    others = [f"{c['case']} / {c['check']}: {c['outcome']}" for c in document["checks"] if c["outcome"] != "pass"]
    return counts + (f" ({'; '.join(others)})" if others else "")


def suite_figures(wall: float, document: Mapping[str, Any], times: list[CaseTime], mesh_start_s: float,
                  wrk_rps: float | None) -> list[Figure]:
    """The cold suite against the time its policies demand (alone, and with one mesh start as issue 21's
    target reads it), and, with wrk, also plus the time its requests take at wrk's rate on the same
    listener (the traffic the statistics ask for cannot go faster than Envoy and the echo app serve
    it); its breakdown, and the non-routing cases' rest."""
    known = [t for t in times if t.policy_s is not None]
    policy = sum(t.policy_s or 0.0 for t in known) + sum(t.wait_s for t in times if t.policy_s is None)
    checks_s, waits = sum(t.seconds for t in times), sum(t.wait_s for t in times)
    setup = sum(t.setup_s or 0.0 for t in times)
    unrecorded = sum(1 for t in times if t.setup_s is None)
    others = [t for t in times if not t.routing and t.rest_s is not None]
    worst = max(others, key=lambda t: t.rest_s or 0.0, default=None)
    part = "share of the suite wall time"
    figures = [
        Figure("suite wall time, cold (mesh start included)", wall, "s", "time the policies demand (known cases)",
               policy, f"{len(times)} cases, {len(document['checks'])} checks ({outcomes(document)}); policy time "
               f"n/a for {len(times) - len(known)} cases"),
        Figure("suite wall time, cold (target: ratio <= 2)", wall, "s",
               "time the policies demand + one mesh start (same run)", policy + mesh_start_s,
               f"policy {policy:.1f} s + mesh start + deploy {mesh_start_s:.2f} s"),
    ]
    if wrk_rps:
        requests = sum(c["requests"] or 0 for c in document["checks"])
        traffic = requests / wrk_rps
        figures.append(Figure(
            "suite wall time, cold", wall, "s", "policy time + one mesh start + its requests at wrk's rate",
            policy + mesh_start_s + traffic, f"{requests:,} requests / {wrk_rps:,.0f} req/s (wrk -t1 -c32 through "
            f"the sidecar, same run) = {traffic:.1f} s; a floor, since no check sends faster than the mesh serves"))
    figures += [
        Figure("cold suite, part: inside checks (send + judge)", checks_s, "s", "suite wall time", wall, part),
        Figure("cold suite, part: policy waits before checks", waits, "s", "suite wall time", wall, part),
        Figure("cold suite, part: apply + revert (deploys, the first one starts the mesh; ACK waits)", setup, "s", "suite wall time", wall,
               f"{part}; not recorded for {unrecorded} cases (apply failed)"),
        Figure("cold suite, part: the rest (CLI start, loading cases, reports, shutdown)",
               wall - checks_s - waits - setup, "s", "suite wall time", wall, part),
    ]
    if worst is not None:
        figures.append(Figure(
            "cases other than routing/split: seconds beyond the time their policy demands, total",
            sum(t.rest_s or 0.0 for t in others), "s", "time their policies demand", sum(t.policy_s or 0.0 for t in others),
            f"{len(others)} cases (checks + apply + revert + waits - policy), mean {sum(t.rest_s or 0.0 for t in others) / len(others):.2f} s "
            f"a case, largest {worst.case} {worst.rest_s:.2f} s; policy time not read for "
            f"{sum(1 for t in times if not t.routing and t.rest_s is None)} cases"))
    return figures


def parallel_figures(wall: float, document: Mapping[str, Any], jobs: int, one_job_wall: float,
                     times: list[CaseTime], mesh_start_s: float) -> list[Figure]:
    """The cold suite on ``jobs`` meshes at once, against the one-job run of the same session and against
    issue 21's target (policy time + one mesh start, as for one job)."""
    known = [t for t in times if t.policy_s is not None]
    policy = sum(t.policy_s or 0.0 for t in known) + sum(t.wait_s for t in times if t.policy_s is None)
    what = f"suite wall time, cold, --jobs {jobs}"
    return [
        Figure(f"{what} (target: ratio <= 2)", wall, "s", "time the policies demand + one mesh start (same run)",
               policy + mesh_start_s, f"{len(document['checks'])} checks ({outcomes(document)}); {jobs} local meshes, "
               "cases taken from one queue, policy time as for one job"),
        Figure(what, wall, "s", "the same suite on one mesh (same run)", one_job_wall,
               f"{jobs} meshes on {os.cpu_count()} cores"),
    ]


def routing_figures(wall: float, document: Mapping[str, Any]) -> list[Figure]:
    """The routing and split files run cold on their own, against the issue's 30 s target."""
    times = case_times(document)
    mine = [t for t in times if t.routing]
    return [
        Figure("routing + split cases: cold `mesh-harness run` of their files", wall, "s", "target",
               ROUTING_SPLIT_TARGET_S, f"{len(ROUTING_SPLIT)} files: {len(mine)} routing/split cases and "
               f"{len(times) - len(mine)} other cases of those files; mesh start included ({outcomes(document)})"),
        Figure("routing + split cases: their own seconds (checks + apply + revert)", sum(t.total_s for t in mine), "s",
               "target", ROUTING_SPLIT_TARGET_S, "the same run, those cases only"),
    ]


def warm_figures(cold_wall: float, cold: Mapping[str, Any], warm: WarmRun, files: Sequence[str],
                 bare: Mapping[str, float]) -> list[Figure]:
    """The default-topology files warm against cold, and the up environment's memory before and after them."""
    after_up, after_run = sum(warm.rss_after_up.values()), sum(warm.rss_after_run.values())
    processes = len(warm.rss_after_up)
    cases = len({c["case"] for c in warm.document["checks"]})
    return [
        Figure("suite wall time, warm (`mesh-harness up` first, `run --mesh-attach`)", warm.wall, "s",
               "the same files, cold", cold_wall, f"{len(files)} files whose cases all run on the default topology, "
               f"{cases} cases (warm: {outcomes(warm.document)}; cold: {outcomes(cold)}); up itself took "
               f"{warm.up_s:.1f} s"),
        Figure("local mesh memory (RSS, daemon + Envoy + apps), after the warm suite", after_run, "MiB",
               "the same, right after `mesh-harness up`", after_up,
               f"{processes} processes; floor (bare Envoy + {processes - 1} bare Python): "
               f"{show(memory_floor(processes, bare))} MiB"),
    ]


# --- machine and output ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_start": list(os.getloadavg()),
            "python": sys.version.split()[0], "commit": commit.strip(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "shared": "the machine runs other work at the same time; absolute figures move with its load, ratios less",
            # set here: an editable checkout then compiles its modules at every import (the zygote's and the
            # CLI's), which an installed wheel, compiled by pip, does not
            "bytecode": "compiled first (compileall, as pip install does)"}


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
             f"{host['python']}, bytecode {host['bytecode']}; load average (1/5/15 min) {load}; {host['shared']}.", "",
             "| figure | value | baseline | ratio | notes |", "|---|---|---|---|---|"]
    for f in figures:
        value = f"{show(f.value)} {f.unit}".strip()
        lines.append(f"| {f.figure} | {value} | {f.baseline_name}: {show(f.baseline)} | {show(f.ratio)} | "
                     f"{f.notes} |")
    lines += ["", "Suite (cold run of cases/), per case: checks = seconds inside its checks (send + judge); apply+revert "
              "= the case's deploy + apply and revert (ACK waits; the first case's deploy starts the mesh); policy wait = check waits before traffic; delay "
              "floor = injected/app delays x rounds of requests (a lower bound, inside the checks' seconds; n/a "
              "where the config does not make it plain); total = checks + apply+revert + wait; rest = total - "
              "(wait + floor). R = a routing/split case.", "",
              "| case | R | checks | checks s | apply+revert s | policy wait s | delay floor s | total s | rest s "
              "| floor read from |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in sorted(times, key=lambda t: -t.total_s):
        lines.append(f"| {t.case} | {'R' if t.routing else ''} | {t.checks} | {t.seconds:.2f} | {show(t.setup_s)} | "
                     f"{show(t.wait_s)} | {show(t.floor_s)} | {t.total_s:.2f} | {show(t.rest_s)} | {t.policy_how} |")
    return "\n".join(lines) + "\n"


def timed(name: str, step: Callable[[], list[Figure]], spent: dict[str, float]) -> list[Figure]:
    print(f"running {name} ...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    figures = step()
    spent[name] = round(time.perf_counter() - began, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.md go "
                        "(default: bench/results; use a temp dir for a trial on a busy machine)")
    out_dir: Path = parser.parse_args().out
    check_routing_split()
    compile_checkout(ROOT)
    host = machine()
    spent: dict[str, float] = {}
    figures: list[Figure] = []
    bare: dict[str, float] = {}

    def xds() -> list[Figure]:
        found, measured = xds_figures()
        bare.update(measured)
        return found

    figures += timed("xds_push_ack", xds, spent)
    figures += timed("local_mesh", lambda: local_mesh_figures(bare), spent)
    figures += timed("forward_echo", lambda: forward_echo_figures(bare), spent)
    figures += timed("load_locust", load_figures, spent)
    rows: list[stats_bench.SplitRow] = []

    def stats() -> list[Figure]:
        rows.extend(stats_bench.measure_all())
        return stats_figures(rows)

    figures += timed("stats_requests_per_verdict", stats, spent)
    times: list[CaseTime] = []

    def suite() -> list[Figure]:
        wall, document = suite_run(["cases/"], "the shipped suite")
        times.extend(case_times(document))
        mesh_start_s = bare["mesh start median"] / 1e3
        figures = suite_figures(wall, document, times, mesh_start_s, bare.get("wrk req/s"))
        for jobs in SUITE_JOBS:
            parallel_wall, parallel = suite_run(["cases/"], f"the shipped suite, --jobs {jobs}", jobs=jobs)
            figures += parallel_figures(parallel_wall, parallel, jobs, wall, times, mesh_start_s)
        return figures

    def routing() -> list[Figure]:
        return routing_figures(*suite_run(list(ROUTING_SPLIT), "the routing and split cases"))

    warm_files = default_topology_files()
    warm: list[WarmRun] = []

    def cold_and_warm() -> list[Figure]:
        cold_wall, cold = suite_run(warm_files, "the default-topology files, cold")
        warm.append(warm_run(warm_files))
        return warm_figures(cold_wall, cold, warm[0], warm_files, bare)

    figures += timed("suite", suite, spent)
    figures += timed("suite_routing_split", routing, spent)
    figures += timed("suite_cold_and_warm", cold_and_warm, spent)
    host["loadavg_end"] = list(os.getloadavg())
    host["seconds_per_benchmark"] = spent
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(figures, times, host)
    (out_dir / "latest.md").write_text(table)
    (out_dir / "latest.json").write_text(json.dumps({
        "machine": host,
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
        "stats_splits": [asdict(r) for r in rows],
        "suite_cases": [{**asdict(t), "policy_s": t.policy_s, "total_s": t.total_s, "rest_s": t.rest_s} for t in times],
        "routing_split": dict(ROUTING_SPLIT),
        "warm": {"files": warm_files, "rss_after_up_mib": warm[0].rss_after_up,
                 "rss_after_run_mib": warm[0].rss_after_run,
                 "cases": [{**asdict(t), "total_s": t.total_s} for t in case_times(warm[0].document)]},
    }, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
