"""``mesh-harness load CASE --mesh kind|cluster``: the flags checked, and the ``--dry-run`` plan printed.

Only the plan exists as a command. Of the live run, the Kubernetes part is built (``KubeMesh.workload``:
the worker Deployment applied, its pods awaited, deleted at the end and on Ctrl-C; tested on recorded API
answers); building the worker image in the session, discovering the kind gateway and running the master
against the pods are not wired, so without ``--dry-run`` the command is refused, naming ``--dry-run`` and
what is missing. None of it has run on a cluster.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import CaseError
from harness.load.command import MAX_PORT, LoadOptions, load_spec, pick_case
from harness.load.kube import locust_version, master_host_for_pods
from harness.load.kube_plan import KubeLoad, load_kube_plan
from harness.load.locust_cli import DEFAULT_MASTER_PORT
from harness.mesh.kube.plan import render_plan
from harness.mesh.kube.session import KubeOptions, check_options

NOT_BUILT = ("load --mesh {mesh} runs only as a plan so far: add --dry-run to see it (the worker image, the worker "
             "Deployment, the master command, the case's apply and revert); not built yet: the live run, which "
             "builds the worker image, starts the master here and runs the worker pods against it")


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


def load_on_kube(options: LoadOptions, opts: KubeOptions, flags: KubeFlags, *, cache_dir: Path) -> int:
    """Print the plan of the load run (``--dry-run``), or refuse the live run with ``NOT_BUILT``."""
    load = kube_load_from(flags)
    check_options(opts)
    if not flags.dry_run:
        raise CaseError(NOT_BUILT.format(mesh=opts.mesh))
    case = pick_case(options.case_file, options.case_name)
    plan = load_kube_plan(opts, case, load_spec(options, case), replace(load, locust_version=locust_version()),
                          cache_dir=cache_dir)
    try:
        print(render_plan(plan), flush=True)
    except BrokenPipeError:  # `| head`: as `run --dry-run`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
