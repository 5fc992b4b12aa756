"""Locust's distributed mode on this machine: req/s and CPU per request with 1, 2 and 4 workers, next to wrk.

Same run, same mesh (``LocalMesh``, ``cases/load-canary.yaml`` applied: 90/10 to two Python echo
apps behind the client's Envoy), interleaved over ``--reps`` rounds so that other work on the
machine spreads over every variant. Per variant:

* req/s: records over the span from the first request sent to the last answered (Locust's start-up
  not counted; wrk's own Requests/sec);
* CPU per request of the generator: the CPU time of every Locust process of the run (master and
  workers, from ``getrusage(RUSAGE_CHILDREN)`` around the run: exact, start-up included) over the
  requests, and the master's share of it (sampled with psutil every 0.2 s while it runs: a lower
  bound, the last 0.2 s are missed);
* CPU per request of the mesh: the client's Envoy and the two echo apps (psutil, before and after).

The merged split verdict's n is the responses the run judged (all of them). The machine's load
average is recorded before and after: on a shared 2-core machine, ratios within one run matter more
than the absolutes. Nothing is asserted; this is a benchmark, not a test. From the repository root:

    python bench/load_workers.py [--workers 0 1 2 4] [--users 16] [--seconds 8] [--reps 2]

(``--workers 0`` is the one-process run of ``mesh-harness load``.) Writes ``bench/results/load_workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import threading
from pathlib import Path

import psutil

from harness.case import load_case_file
from harness.loadspec import LoadSpec
from harness.locust.locust_cli import Distribution
from harness.locust.plan import plan_case
from harness.locust.run import run_locust
from harness.locust.thresholds import summarize
from harness.locust.wire import LoadPlan
from harness.mesh.local.mesh import LocalMesh

CASE = Path(__file__).parents[1] / "cases" / "load-canary.yaml"
OUT = Path(__file__).parent / "results" / "load_workers.json"
SAMPLE_S = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    case = load_case_file(CASE)[0]
    plan = plan_case(case, LoadSpec())
    rows: dict[str, list[dict[str, float]]] = {}
    load_before = os.getloadavg()
    with LocalMesh() as mesh:
        mesh.deploy(case.topology)
        mesh.apply(case.objects)
        inventory = mesh.inventory()
        host = f"http://127.0.0.1:{inventory.ports[f'sidecar-client/{plan.port}']}"
        mesh_pids = {name: pid for name, pid in inventory.pids.items() if name.startswith(("sidecar-client", "reviews"))}
        spec = LoadSpec(users=args.users, duration_s=args.seconds)
        for _ in range(args.reps):
            for workers in args.workers:
                name = "Locust, one process" if not workers else f"Locust, master + {workers} workers"
                rows.setdefault(name, []).append(_locust(plan.plan, host, spec, workers, mesh_pids))
            rows.setdefault(f"wrk -t1 -c{args.users}", []).append(_wrk(host, args.users, args.seconds, mesh_pids))
    load_after = os.getloadavg()
    result = {
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after},
        "settings": {"users": args.users, "seconds": args.seconds, "reps": args.reps, "case": CASE.name},
        "variants": {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {"rounds": runs}
                     for name, runs in rows.items()},
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'generator':32} {'req/s':>8} {'gen CPU ms/req':>15} {'master ms/req':>14} {'mesh CPU ms/req':>16} {'n':>7}")
    for name, v in result["variants"].items():
        print(f"{name:32} {v['rps']:8,.0f} {v['generator_cpu_ms']:15.3f} {v.get('master_cpu_ms', 0.0):14.3f} "
              f"{v['mesh_cpu_ms']:16.3f} {v['requests']:7,.0f}")


def _cpu(pids: dict[str, int]) -> float:
    total = 0.0
    for pid in pids.values():
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _MasterSampler:
    """The Locust master's CPU time, sampled while it runs (a lower bound: the last interval is missed)."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            for p in psutil.Process().children(recursive=True):
                try:
                    if "--master" in p.cmdline():
                        times = p.cpu_times()
                        self.cpu_s = max(self.cpu_s, times.user + times.system)
                except psutil.Error:
                    pass

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.cpu_s


def _locust(plan: LoadPlan, host: str, spec: LoadSpec, workers: int, mesh_pids: dict[str, int]) -> dict[str, float]:
    mesh_before, children_before = _cpu(mesh_pids), _children_cpu()
    sampler = _MasterSampler()
    run = run_locust(plan, host, spec, distribution=Distribution(local_workers=workers))
    master_s = sampler.stop()
    summary = summarize(run.records, ["split"])
    n = max(1, summary.requests)
    row = {"rps": summary.rps, "requests": float(summary.requests),
           "generator_cpu_ms": (_children_cpu() - children_before) * 1000 / n,
           "mesh_cpu_ms": (_cpu(mesh_pids) - mesh_before) * 1000 / n}
    if workers:
        row["master_cpu_ms"] = master_s * 1000 / n
    return row


def _wrk(host: str, connections: int, seconds: float, mesh_pids: dict[str, int]) -> dict[str, float]:
    mesh_before, children_before = _cpu(mesh_pids), _children_cpu()
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-H", "Host: reviews:9080",
                           host + "/"], capture_output=True, text=True, timeout=seconds + 30, check=True)
    rps = float(m.group(1)) if (m := re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)) else 0.0
    total = re.search(r"(\d+) requests in", done.stdout)
    n = max(1, int(total.group(1)) if total else 1)
    return {"rps": rps, "requests": float(n), "generator_cpu_ms": (_children_cpu() - children_before) * 1000 / n,
            "mesh_cpu_ms": (_cpu(mesh_pids) - mesh_before) * 1000 / n}


if __name__ == "__main__":
    main()
