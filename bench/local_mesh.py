"""The local mesh as a case run sees it: start-up, apply -> ACK, and traffic throughput.

Measures, on this machine, with real Envoy and the echo apps of the default topology:

* start: ``LocalMesh().start()`` + ``deploy(DEFAULT_TOPOLOGY)`` (control plane, three apps, one Envoy
  up to its first ACK), ``--starts`` times, each in a fresh mesh;
* apply -> ACK: ``mesh.apply()`` of a VirtualService that alternates between v1 and v2, until it
  returns (translate, push, every type ACKed), ``--applies`` times;
* ForwardEcho throughput: one ``mesh.send()`` batch of ``--count`` requests at ``--concurrency``
  through the client's sidecar, against the same batch from the same client app sent straight to
  the v1 app's port (no Envoy), in the same run. req/s counts the whole call as a check sees it
  (the control call, the batch, shipping the records back, building Observations);
* memory: resident set size (VmRSS) of the whole mesh after deploy and again after the applies and
  the traffic: Envoy, every app process and this process (it hosts the control plane, as a run's
  does); next to a bare Python process that only waits on stdin (the floor of each Python process).
  Each process's RSS counts the pages it shares with others, so the sum is an upper bound.

Prints a table of medians / p95 / max. Nothing is asserted.

Run from the repository root:  python bench/local_mesh.py [--starts 3] [--applies 50] [--count 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.istio.load import load_objects
from harness.istio.model import IstioObject
from harness.mesh.base import Observation, SendSpec
from harness.mesh.childproc import read_until, stop
from harness.mesh.echo_client import ControlClient
from harness.mesh.local.mesh import LocalMesh
from harness.topology import DEFAULT_TOPOLOGY
from harness.yamlsource import load_documents

SUBSETS = Path(__file__).resolve().parent.parent / "cases" / "manifests" / "reviews-subsets.yaml"
URL = "http://reviews:9080/"
HARNESS = "harness + control plane (this process)"


PACKAGE_DIRS = ("harness", "sample_apps", "fixtures")
"""The checkout's folders that install as the ``harness`` package (pyproject.toml's package-dir)."""


def compile_checkout(tree: Path, python: str = sys.executable) -> None:
    """Write the bytecode of ``tree``'s package, as ``pip install`` does: with PYTHONDONTWRITEBYTECODE set (this
    machine sets it) an editable checkout would otherwise compile its modules at every import, in the CLI
    and in the echo zygote, which no installed copy does."""
    subprocess.run([python, "-m", "compileall", "-q", *(str(tree / d) for d in PACKAGE_DIRS if (tree / d).is_dir())],
                   check=True, stdout=subprocess.DEVNULL)


def route_all_to(subset: str) -> list[IstioObject]:
    text = SUBSETS.read_text() + f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: {subset}}}}}]}}]
"""
    return load_objects(load_documents(text, "<bench>"))


def summary(name: str, unit: str, values: Sequence[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{name:<34} {statistics.median(ordered):>9.1f} {p95:>9.1f} {ordered[-1]:>9.1f}  {unit}"
            f"  (n={len(ordered)})")


def rss_mib(pid: int) -> float:
    """Resident set size of one process (``VmRSS`` in /proc/<pid>/status), MiB."""
    found = vm_rss_mib(pid)
    if found is None:
        raise SystemExit(f"/proc/{pid}/status has no VmRSS line: process {pid} exited before it was measured")
    return found


def vm_rss_mib(pid: int) -> float | None:
    """``VmRSS`` of ``pid`` in MiB; None once it has exited (no status file, or a zombie without VmRSS)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), None)


def mesh_rss_mib(pids: Mapping[str, int]) -> dict[str, float]:
    """RSS per mesh process, and of this process as ``harness + control plane``."""
    return {**{name: rss_mib(pid) for name, pid in sorted(pids.items())}, HARNESS: rss_mib(os.getpid())}


def tree_rss_mib(root: int) -> dict[str, float]:
    """RSS of ``root`` and every descendant (found through each process's parent pid), ``<comm> <pid>`` -> MiB.

    For a mesh started by ``mesh-harness up``: its daemon hosts the control plane, its children are
    Envoy and the apps. A process that exits while being read is left out.
    """
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited between listing and reading
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:  # bounded: each pid enters the tree once
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree += frontier
    out = {}
    for pid in tree:
        rss = vm_rss_mib(pid)
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if rss is not None:
            out[f"{name} {pid}"] = rss
    return out


def bare_python_rss_mib(timeout_s: float = 10.0) -> float:
    """RSS of a bare ``python -c`` that has printed ``ready`` and waits on stdin: the floor of any Python app."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        read_until(proc.stdout, timeout_s, lambda out: True if b"ready" in out else None)
        return rss_mib(proc.pid)
    finally:
        stop(proc, timeout_s)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def memory_lines(when: str, rss: Mapping[str, float]) -> list[str]:
    """``mesh RSS <when>`` with the total and one line per process, in MiB."""
    return [f"mesh RSS {when:<25} {sum(rss.values()):>9.1f} MiB  ({len(rss)} processes)",
            *(f"  {name:<40} {mib:>7.1f} MiB" for name, mib in rss.items())]


def start_times(starts: int) -> list[float]:
    out = []
    for _ in range(starts):
        began = time.perf_counter()
        with LocalMesh() as mesh:
            mesh.deploy(DEFAULT_TOPOLOGY)
            out.append((time.perf_counter() - began) * 1e3)
    return out


def apply_times(mesh: LocalMesh, applies: int) -> list[float]:
    configs = [route_all_to("v1"), route_all_to("v2")]
    out = []
    for i in range(applies):
        began = time.perf_counter()
        mesh.apply(configs[i % 2])
        out.append((time.perf_counter() - began) * 1e3)
    return out


def throughput(sender: ControlClient | LocalMesh, spec: SendSpec, connect_to: str | None) -> tuple[float, float, int]:
    """(req/s, median latency ms, non-200 count) of one batch; ``connect_to`` only for a ControlClient."""
    began = time.perf_counter()
    records: list[Observation] = (
        sender.send(spec) if isinstance(sender, LocalMesh) else sender.forward(spec, connect_to=connect_to)
    )
    elapsed = time.perf_counter() - began
    errors = sum(1 for o in records if o.status != 200)
    return len(records) / elapsed, statistics.median(o.latency_s for o in records) * 1e3, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--applies", type=int, default=50)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    starts = start_times(args.starts)
    bare_python = bare_python_rss_mib()
    with LocalMesh() as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        info = mesh.info()
        deployed_rss = mesh_rss_mib(mesh.inventory().pids)
        applies = apply_times(mesh, args.applies)
        mesh.apply(route_all_to("v1"))
        ports = mesh.inventory().ports
        spec = SendSpec(url=URL, count=args.count, concurrency=args.concurrency, deadline_s=300.0)
        direct = ControlClient(ports["client/control"], "client")
        try:
            warm = SendSpec(url=URL, count=500, concurrency=args.concurrency)
            mesh.send(warm)
            direct.forward(warm, connect_to=f"127.0.0.1:{ports['reviews-v1-0/http']}")
            via_envoy = throughput(mesh, spec, None)
            straight = throughput(direct, spec, f"127.0.0.1:{ports['reviews-v1-0/http']}")
        finally:
            direct.close()
        worked_rss = mesh_rss_mib(mesh.inventory().pids)

    print(f"local mesh, Envoy {info.envoy_version}, emulating Istio {info.istio_version}")
    print(f"{'':<34} {'median':>9} {'p95':>9} {'max':>9}")
    print(summary("start + deploy default topology", "ms", starts))
    print(summary("apply -> every sidecar ACKed", "ms", applies))
    print(f"\nForwardEcho, {args.count} requests at concurrency {args.concurrency}:")
    print(f"{'':<34} {'req/s':>9} {'p50 ms':>9} {'non-200':>9}")
    for name, (rate, p50, errors) in (("through Envoy (mesh.send)", via_envoy), ("direct to reviews-v1-0", straight)):
        print(f"{name:<34} {rate:>9.0f} {p50:>9.2f} {errors:>9}")
    print("\nmemory (VmRSS; shared pages counted in each process):")
    print("\n".join(memory_lines("after deploy", deployed_rss)))
    print("\n".join(memory_lines("after applies + traffic", worked_rss)))
    print(f"bare python process RSS           {bare_python:>9.1f} MiB")


if __name__ == "__main__":
    main()
