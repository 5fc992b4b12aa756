"""ForwardEcho's HTTP traffic generator: the raw HTTP/1.1 client against the aiohttp one it replaced.

Same run, same mesh (``LocalMesh`` + ``DEFAULT_TOPOLOGY``, every request routed to reviews v1):

* new, through Envoy: ``mesh.send()`` (the client app sends through its sidecar listener), after
  an untimed 1-request ``mesh.send`` that reads what the other variants left in the access log;
* new, through Envoy (control): the same batch by the client app's control call alone, without
  what ``mesh.send`` adds (the access-log join): ForwardEcho itself, as the old variant is measured;
* old, through Envoy: the same batch from a second client app running the old code (``--old-rev``,
  by default the commit before ``http1.py`` was added, checked out with ``git archive`` into a temp
  dir), sent to the same sidecar listener;
* new and old, direct: the same batch straight to the v1 app's port (no Envoy);
* wrk (if installed), through the same listener with the same Host header, as the ceiling a
  C generator reaches there; and wrk direct.

req/s counts the whole ForwardEcho call as a check sees it (control call, batch, records back).
Latency percentiles (p50 / p95 / p99) are per request: for ForwardEcho from its records, for wrk
from its own histogram (a ``done`` script asks for exactly those percentiles; ``--latency`` prints
p90, not p95); each is the median over rounds.
"client CPU" is the CPU time of the generating process per request (for ForwardEcho that includes
encoding the records); Envoy and app "cores" are their CPU time over the wall time. On a machine
shared with other work, CPU per request is the steadier number; req/s moves with the load.
Each of ``--reps`` rounds runs every variant once, interleaved (each round starting with the next
variant), so that load from other work on the machine spreads over all of them; the table shows the median and the range (min..max) over rounds,
and the ratios are taken within each round. Nothing is asserted.

Run from the repository root:  python bench/forward_echo.py [--count 20000] [--concurrency 32] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from functools import partial
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_mesh import route_all_to
from harness.mesh.base import Observation, SendSpec
from harness.mesh.echo_client import ControlClient
from harness.mesh.local.apps import AppProcess, _read_ready_line
from harness.mesh.local.mesh import LocalMesh
from harness.topology import DEFAULT_TOPOLOGY

ROOT = Path(__file__).resolve().parent.parent
URL = "http://reviews:9080/"
HOST = "reviews:9080"
_TICKS = os.sysconf("SC_CLK_TCK")


def default_old_rev() -> str:
    """The parent of the commit that added the raw client: the last aiohttp ForwardEcho."""
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--",
                            "harness/sample_apps/echo/http1.py"], cwd=ROOT, check=True, capture_output=True,
                           text=True).stdout.split()
    if not added:
        raise SystemExit("harness/sample_apps/echo/http1.py is not in git history; pass --old-rev")
    return f"{added[-1]}^"


@contextmanager
def old_client_app(rev: str) -> Iterator[AppProcess]:
    """A client echo app running ``harness`` as of ``rev``, in a temp dir removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="forward-echo-old-") as tmp:
        archive = subprocess.run(["git", "archive", rev, "harness"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        stderr_path = Path(tmp) / "client-old.stderr.log"
        cmd = [sys.executable, "-m", "harness.sample_apps.echo", "--service", "client", "--version", "old",
               "--instance", "client-old-0", "--http-port", "0", "--grpc-port", "0", "--control-port", "0"]
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0,
                                    env={**os.environ, "PYTHONPATH": tmp}, cwd=tmp)
        app: AppProcess | None = None
        try:
            ready = _read_ready_line(proc, "client-old-0", stderr_path, 10.0)
            app = AppProcess("client-old-0", proc, {k: int(ready[k]) for k in ("http", "grpc", "control")},
                             stderr_path)
            yield app
        finally:
            if app is not None:
                app.stop()
            elif proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Run(NamedTuple):
    """One measured batch. CPU per request is the robust number on a shared machine; req/s is not."""

    rate: float  # requests per second of wall time
    client_us: float  # generator CPU per request, microseconds
    envoy_cores: float  # sidecar CPU / wall time
    app_cores: float  # reviews-v1-0 CPU / wall time
    latency_ms: tuple[float, float, float] | None  # p50, p95, p99 of single requests
    non_200: int


Latencies = tuple[float, float, float]
#: The per-request latency percentiles every generator reports.
PERCENTILES = (50, 95, 99)
#: wrk's ``done`` hook: print the same percentiles (microseconds) from wrk's own histogram.
WRK_PERCENTILES_LUA = (
    "done = function(summary, latency, requests)\n"
    f"  for _, p in ipairs({{{', '.join(str(p) for p in PERCENTILES)}}}) do\n"
    '    io.write(string.format("latency p%d %d us\\n", p, latency:percentile(p)))\n'
    "  end\n"
    "end\n"
)


def percentiles_ms(latencies_s: list[float]) -> Latencies:
    """Nearest-rank p50, p95, p99 of per-request latencies, in milliseconds."""
    ordered = sorted(latencies_s)
    p50, p95, p99 = (ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1e3 for p in PERCENTILES)
    return p50, p95, p99


def measure(run: Callable[[], tuple[int, Latencies | None, int, float | None]], client_pid: int | None,
            others: tuple[int, int]) -> Run:
    """``run()`` -> (requests, latencies ms, non-200, client CPU s if ``client_pid`` is None); CPU deltas around it."""
    pids = [p for p in (client_pid, *others) if p is not None]
    cpu0, began = [cpu_seconds(p) for p in pids], time.perf_counter()
    requests, latency_ms, non_200, own_cpu = run()
    elapsed = time.perf_counter() - began
    used = dict(zip(pids, (cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)), strict=True))
    client_cpu = used[client_pid] if client_pid is not None else own_cpu or 0.0
    return Run(requests / elapsed, client_cpu / requests * 1e6, used[others[0]] / elapsed, used[others[1]] / elapsed,
               latency_ms, non_200)


def forward_batch(send: Callable[[SendSpec], list[Observation]], spec: SendSpec) -> tuple[int, Latencies, int, None]:
    records = send(spec)
    return (len(records), percentiles_ms([o.latency_s for o in records]),
            sum(1 for o in records if o.status != 200), None)


def wrk(script: Path, port: int, concurrency: int, seconds: int) -> tuple[int, Latencies, int, float]:
    """wrk for ``seconds`` (its CPU read from our children's rusage): requests, latencies ms, non-2xx/3xx, CPU s.

    ``script`` holds ``WRK_PERCENTILES_LUA``."""
    cpu0 = children_cpu_seconds()
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script), "-H",
                          f"Host: {HOST}", f"http://127.0.0.1:{port}/"], check=True, capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    found = re.search(r"(\d+) requests in", out)
    latencies = {int(p): int(us) / 1e3 for p, us in re.findall(r"^latency p(\d+) (\d+) us$", out, re.MULTILINE)}
    if found is None or set(latencies) != set(PERCENTILES):
        raise SystemExit(f"could not read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    p50, p95, p99 = (latencies[p] for p in PERCENTILES)
    return int(found.group(1)), (p50, p95, p99), int(bad.group(1)) if bad else 0, children_cpu_seconds() - cpu0


def span(values: list[float], fmt: str = ".0f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}..{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--old-rev", default=None, help="git revision of the old (aiohttp) client")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    args = parser.parse_args()
    old_rev = args.old_rev or default_old_rev()
    has_wrk = shutil.which("wrk") is not None

    spec = SendSpec(url=URL, count=args.count, concurrency=args.concurrency, deadline_s=600.0)
    rows: dict[str, list[Run]] = {}
    with ExitStack() as stack:
        mesh = stack.enter_context(LocalMesh())
        script = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="forward-echo-wrk-"))) / "percentiles.lua"
        script.write_text(WRK_PERCENTILES_LUA)
        old = stack.enter_context(old_client_app(old_rev))
        mesh.deploy(DEFAULT_TOPOLOGY)
        mesh.apply(route_all_to("v1"))
        inv = mesh.inventory()
        listener = inv.ports["sidecar-client/9080"]
        app_port = inv.ports["reviews-v1-0/http"]
        others = (inv.pids["sidecar-client"], inv.pids["reviews-v1-0"])
        new = stack.enter_context(closing(ControlClient(inv.ports["client/control"], "client")))
        variants: dict[str, tuple[Callable[[SendSpec], list[Observation]], int]] = {
            "new, through Envoy (mesh.send)": (mesh.send, inv.pids["client"]),
            "new, through Envoy (control)": (lambda s: new.forward(s, f"127.0.0.1:{listener}"), inv.pids["client"]),
            "old, through Envoy": (lambda s: old.control.forward(s, f"127.0.0.1:{listener}"), old.pid),
            "new, direct": (lambda s: new.forward(s, f"127.0.0.1:{app_port}"), inv.pids["client"]),
            "old, direct": (lambda s: old.control.forward(s, f"127.0.0.1:{app_port}"), old.pid),
        }
        warm = SendSpec(url=URL, count=1000, concurrency=args.concurrency)
        for send, _ in variants.values():
            send(warm)
        names = list(variants)
        for index in range(args.reps):
            # The variant after wrk pays for Envoy still writing wrk's burst to its access log: each round
            # starts with another one, so that no variant takes that place every time.
            for name in names[index % len(names):] + names[:index % len(names)]:
                send, pid = variants[name]
                if send == mesh.send:
                    # Untimed: the join reads every line the other variants and wrk left in the sidecar's
                    # access log (40k lines a round); a check's own batches leave none behind.
                    mesh.send(SendSpec(url=URL))
                rows.setdefault(name, []).append(measure(partial(forward_batch, send, spec), pid, others))
            if has_wrk:
                for name, port in (("wrk, through Envoy", listener), ("wrk, direct", app_port)):
                    rows.setdefault(name, []).append(
                        measure(partial(wrk, script, port, args.concurrency, args.wrk_seconds), None, others))
        info = mesh.info()

    print(f"ForwardEcho HTTP, {args.count} requests at concurrency {args.concurrency}, {args.reps} rounds; "
          f"Envoy {info.envoy_version}; old = {old_rev}")
    print("median (min..max) over rounds; client CPU is per request, Envoy and app CPU are cores (CPU s / wall s)")
    print(f"{'':<31} {'req/s':>20} {'client CPU us/req':>18} {'Envoy cores':>17} {'app cores':>17} "
          f"{'p50 ms':>18} {'non-200':>7}")
    for name, runs in rows.items():
        p50s = [r.latency_ms[0] for r in runs if r.latency_ms is not None]
        print(f"{name:<31} {span([r.rate for r in runs]):>20} {span([r.client_us for r in runs]):>18} "
              f"{span([r.envoy_cores for r in runs], '.2f'):>17} {span([r.app_cores for r in runs], '.2f'):>17} "
              f"{span(p50s, '.2f') if p50s else '':>18} {sum(r.non_200 for r in runs):>7}")

    print("\nper-request latency, ms, median over rounds:")
    print(f"{'':<31} " + " ".join(f"{'p' + str(p):>8}" for p in PERCENTILES))
    for name, runs in rows.items():
        each = [r.latency_ms for r in runs if r.latency_ms is not None]
        print(f"{name:<31} " + " ".join(f"{statistics.median(x[i] for x in each):>8.2f}" for i in range(3)))

    def ratio(a: str, b: str, of: Callable[[Run], float]) -> str:
        if a not in rows or b not in rows:
            return "n/a (no wrk)"
        return span([of(x) / of(y) for x, y in zip(rows[a], rows[b], strict=True)], ".2f")

    print("\nratios within each round, median (min..max):")
    for a, b in (("new, through Envoy (control)", "old, through Envoy"), ("new, direct", "old, direct"),
                 ("new, through Envoy (mesh.send)", "wrk, through Envoy"),
                 ("new, through Envoy (control)", "wrk, through Envoy"), ("old, through Envoy", "wrk, through Envoy"),
                 ("new, direct", "wrk, direct")):
        print(f"  {a} / {b}: req/s {ratio(a, b, lambda r: r.rate)}, "
              f"client CPU per request {ratio(a, b, lambda r: r.client_us)}")


if __name__ == "__main__":
    main()
