"""``mesh-harness load CASE --worker --master-host HOST``: a Locust worker of a master on another machine.

The worker machine runs its own local mesh with the case applied, and its Locust worker sends
only to its own client sidecar listener (loopback), never to the master's machine: the traffic is
in-mesh on each machine, and only the records travel, over Locust's own connection to the master
(``relay.py``). Its responses of its own applied config version are stamped with the master's
(``wire.restamped``), so the master counts them as routed by the case. The master judges; this
side only says whether its worker ran to the end.

Bounded: the master may wait ``REMOTE_WAIT_FOR_WORKERS_S`` for its workers, then runs the case's
duration; a worker still running after that plus ``STARTUP_MARGIN_S`` is stopped.
"""

from __future__ import annotations

import shutil
import subprocess

from harness.case import Case
from harness.errors import MeshError, ProcessError, SyncTimeout
from harness.loadspec import LoadSpec
from harness.locust.locust_cli import locustfile_for, worker_command
from harness.locust.run import (
    REMOTE_WAIT_FOR_WORKERS_S,
    STARTUP_MARGIN_S,
    case_applied,
    is_loopback_url,
    locust_log_tail,
    start_locust,
    stop_locust,
)
from harness.mesh.base import Mesh
from harness.mesh.local.workdir import make_workdir


def serve_as_worker(mesh: Mesh, case: Case, spec: LoadSpec, master_host: str, port: int) -> None:
    """Apply ``case`` on this machine's mesh and run a Locust worker of ``master_host:port`` through
    its client sidecar until the master ends the run; SyncTimeout or ProcessError when it does not."""
    with case_applied(mesh, case, spec) as applied:
        if not is_loopback_url(applied.host):
            raise MeshError(f"case {case.name}: load runs send to loopback addresses only (got {applied.host})")
        _run_worker(worker_command(master_host, port, locustfile=locustfile_for(applied.plan.plan.protocol),
                                   own_host=applied.host, config_version=applied.config_version),
                    spec.duration_s + STARTUP_MARGIN_S + REMOTE_WAIT_FOR_WORKERS_S, f"{master_host}:{port}")


def _run_worker(command: list[str], limit_s: float, master: str) -> None:
    workdir = make_workdir("load-worker")  # swept by the next run if this process is killed
    log = workdir / "locust.log"
    try:
        process = start_locust(command, workdir, log)
        try:
            process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired as exc:
            raise SyncTimeout(f"the Locust worker of the master at {master} was still running after {limit_s:g}s "
                              f"(no master there, or it never ended the run); it was stopped. Its log ends:\n"
                              f"{locust_log_tail(log)}") from exc
        finally:
            stop_locust(process)
        if process.returncode != 0:
            raise ProcessError(f"the Locust worker of the master at {master} exited with code {process.returncode}; "
                               f"its log ends:\n{locust_log_tail(log)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
