"""Requests per second Locust reaches through the client sidecar, next to plain generators on the same mesh.

Same run, same mesh (``LocalMesh``, the shipped ``cases/load-canary.yaml`` applied: 90/10 to two
Python echo apps), interleaved over ``--reps`` rounds so that other work on the machine spreads
over every variant:

* Locust (``MeshUser``, FastHttpUser, closed loop) as ``mesh-harness load`` runs it, at
  ``--users`` users, ``--seconds`` per run; req/s is records over the span from the first request
  sent to the last response (Locust's start-up is not counted);
* ForwardEcho (``mesh.send``, the harness's own raw asyncio HTTP/1.1 client in the client app) with
  as many requests in flight as Locust has users;
* wrk (if installed) through the same listener with the same Host header, as a C generator's ceiling.

Nothing is asserted; this is a benchmark, not a test. Run from the repository root:
    python bench/load_locust.py [--users 8 32] [--seconds 8] [--reps 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from harness.case import load_case_file
from harness.loadspec import LoadSpec
from harness.locust.plan import plan_case
from harness.locust.run import run_locust
from harness.locust.thresholds import summarize
from harness.mesh.base import SendSpec
from harness.mesh.local.mesh import LocalMesh

CASE = Path(__file__).parents[1] / "cases" / "load-canary.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    case = load_case_file(CASE)[0]
    plan = plan_case(case, LoadSpec())
    results: dict[str, list[float]] = {}
    with LocalMesh() as mesh:
        mesh.deploy(case.topology)
        mesh.apply(case.objects)
        port = mesh.inventory().ports[f"sidecar-client/{plan.port}"]
        host = f"http://127.0.0.1:{port}"
        send = replace(case.checks[0].send, deadline_s=args.seconds * 10)
        for _ in range(args.reps):
            for users in args.users:
                spec = LoadSpec(users=users, duration_s=args.seconds)
                records = run_locust(plan.plan, host, spec).records
                results.setdefault(f"Locust MeshUser, {users} users", []).append(summarize(records, ["split"]).rps)
                count = int(results[f"Locust MeshUser, {users} users"][-1] * args.seconds) or 1000
                results.setdefault(f"ForwardEcho, {users} in flight", []).append(_forward_echo(mesh, send, count, users))
                if shutil.which("wrk"):
                    results.setdefault(f"wrk -t1 -c{users}", []).append(_wrk(host, users, args.seconds))
    print(f"{'generator':32} {'req/s median':>12}   (min..max over {args.reps} rounds)")
    for name, values in results.items():
        print(f"{name:32} {statistics.median(values):12,.0f}   ({min(values):,.0f}..{max(values):,.0f})")


def _forward_echo(mesh: LocalMesh, spec: SendSpec, count: int, concurrency: int) -> float:
    started = time.perf_counter()
    observations = mesh.send(replace(spec, count=count, concurrency=concurrency))
    return len(observations) / (time.perf_counter() - started)


def _wrk(host: str, connections: int, seconds: float) -> float:
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-H", "Host: reviews:9080", host + "/"],
                          capture_output=True, text=True, timeout=seconds + 30, check=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return float(match.group(1)) if match else 0.0


if __name__ == "__main__":
    main()
