"""``mesh-harness load CASE --mesh kind|cluster``: the flags checked; the ``--dry-run`` plan printed, or the run.

The live run (``kube_run.py``) opens the KubeMesh with the worker image built beside the echo image,
finds the master's address for the pods (kind: the kind network's gateway, from Docker), and runs.
It is tested on recorded API answers with Locust stood in for; none of it has run on a cluster.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from harness.errors import CaseError
from harness.locust.command import (
    EXIT_OK,
    MAX_PORT,
    LoadOptions,
    first_with_load,
    load_spec,
    show_report,
    with_progress,
)
from harness.locust.kube import kind_gateway, kind_gateway_command, load_image, locust_version, master_host_for_pods
from harness.locust.kube_plan import KubeLoad, load_kube_plan
from harness.locust.kube_run import run_case_under_load_on_kube
from harness.locust.locust_cli import DEFAULT_MASTER_PORT
from harness.locust.run import LocustRun, Progress
from harness.locust.thresholds import LoadReport
from harness.mesh.kube.commands import run_command
from harness.mesh.kube.image import ImageSpec
from harness.mesh.kube.mesh import KubeMesh
from harness.mesh.kube.plan import render_plan
from harness.mesh.kube.session import KubeOptions, check_options, open_kube_mesh
from harness.mesh.kube.tools import find_tool
from harness.session import console_warning, enforce, pick_case, preflight

GATEWAY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KubeFlags:
    """The ``load`` flags that matter on a kube mesh, as typed (None: not given)."""

    mesh: str
    dry_run: bool = False
    workers: int | None = None
    master_port: int | None = None
    master_host_for_pods: str | None = None
    stray: tuple[str, ...] = ()
    """Flags given that a kube load run does not take (``--master``, ``--worker``, ...), by name."""


def kube_load_from(flags: KubeFlags) -> KubeLoad:
    """The kube load settings; CaseError naming the flag and what to do instead."""
    if flags.mesh == "local":
        if flags.dry_run:
            raise CaseError("--dry-run plans a load run on real Istio: use it with --mesh kind or --mesh cluster")
        if flags.master_host_for_pods is not None:
            raise CaseError("--master-host-for-pods is for --mesh kind|cluster, where the Locust workers are pods")
    if flags.master_port is not None and flags.master_port > MAX_PORT:
        raise CaseError(f"--master-port must be a TCP port, at most {MAX_PORT} (got {flags.master_port})")
    if flags.stray:
        raise CaseError(f"on --mesh {flags.mesh} the Locust workers are pods the harness starts and the master runs "
                        f"here: leave out {', '.join(flags.stray)} (--workers N sets the number of pods)")
    return KubeLoad(workers=flags.workers or 1, master_port=flags.master_port or DEFAULT_MASTER_PORT,
                    master_host_for_pods=master_host_for_pods(flags.mesh, flags.master_host_for_pods))


def load_on_kube(options: LoadOptions, opts: KubeOptions, flags: KubeFlags, console: Console, *, cache_dir: Path,
                 open_mesh: Callable[[KubeOptions, ImageSpec], AbstractContextManager[KubeMesh]] | None = None,
                 master_address: Callable[[], str] | None = None) -> int:
    """Print the plan of the load run (``--dry-run``), or run it; the exit code. ``open_mesh`` and
    ``master_address`` (kind: the kind network's gateway) are seams for tests."""
    load = kube_load_from(flags)
    check_options(opts)
    case = pick_case(options.case_file, options.case_name, default=first_with_load)
    # a dry run lists what the mesh refuses in its plan; a live run refuses before anything starts
    enforce(preflight([case], None if flags.dry_run else opts.mesh), console_warning(console))
    spec = load_spec(options, case)
    load = replace(load, locust_version=locust_version())
    if flags.dry_run:
        try:
            print(render_plan(load_kube_plan(opts, case, spec, load, cache_dir=cache_dir)), flush=True)
        except BrokenPipeError:  # `| head`: as `run --dry-run`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    console.print(f"load: case {case.name}, {spec.users} users (spawn {spec.rate:g}/s) for {spec.duration_s:g}s, "
                  f"a Locust master here and {load.workers} worker pod{'s' if load.workers != 1 else ''} on --mesh {opts.mesh}, "
                  "each sending through its own sidecar (unverified on a cluster: see README)", highlight=False)
    opener = open_mesh or _open_mesh
    image = load_image(load.locust_version)

    def body(mesh: KubeMesh, progress: Progress) -> tuple[LoadReport, LocustRun]:
        host = load.master_host_for_pods or (master_address or _kind_gateway)()
        return run_case_under_load_on_kube(mesh, case, spec, options.settings, load, host, options.outputs, progress)

    report, run = with_progress(lambda: opener(opts, image), spec, console, body)
    return show_report(report, run, options.outputs, console)


def _open_mesh(opts: KubeOptions, image: ImageSpec) -> AbstractContextManager[KubeMesh]:
    return open_kube_mesh(opts, images=(image,))


def _kind_gateway() -> str:
    docker = find_tool("docker", needed_for="load --mesh kind")
    return kind_gateway(run_command(kind_gateway_command(docker), what="finding the kind network's gateway, where "
                                    "the worker pods reach the Locust master", timeout_s=GATEWAY_TIMEOUT_S))
