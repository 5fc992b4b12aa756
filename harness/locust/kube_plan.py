"""``mesh-harness load CASE --mesh kind|cluster --dry-run``: every command and API write of a load run on real Istio. Pure.

The same plan format and the same parts as ``run --dry-run`` (``harness.mesh.kube.plan``: cluster,
Istio, echo image, the case's topology and config with their sync waits, revert, cleanup), with the
load run's own steps in between, in the order a live run (``kube_run.py``) issues them: the worker
image (``kube.load_image``, beside the echo image), the master's address for the pods, the case, the
master started here in the background, the worker Deployment applied, the wait for its pods and the
master's end, the Deployment deleted (also on Ctrl-C), then the revert. Nothing runs and nothing is
contacted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from harness.case import Case
from harness.errors import MeshError
from harness.loadspec import LoadSpec
from harness.locust.kube import (
    WORKERS_NAME,
    Workers,
    kind_gateway_command,
    load_image,
    render_workers,
    service_url,
)
from harness.locust.locust_cli import NO_OUTPUTS, RunFiles, locustfile_for, master_command
from harness.locust.plan import LOAD_CLIENT, plan_case
from harness.locust.run import REMOTE_WAIT_FOR_WORKERS_S, STARTUP_MARGIN_S
from harness.mesh.capabilities import case_refusals
from harness.mesh.kube.plan import Plan, plan_setup, plan_teardown
from harness.mesh.kube.session import KubeOptions

KIND_GATEWAY = "<IPv4 gateway of the kind network>"
"""What the plan shows for the master's address on kind (``kube.kind_gateway`` reads it from Docker)."""
WORK_DIR = Path("<work dir>")


@dataclass(frozen=True)
class KubeLoad:
    """The load run's own settings on a kube mesh: how many worker pods, where their master listens."""

    workers: int
    master_port: int
    master_host_for_pods: str | None = None
    """``--master-host-for-pods``; None on kind: the kind network's gateway."""
    locust_version: str = "<the installed Locust>"


def load_kube_plan(opts: KubeOptions, case: Case, spec: LoadSpec, load: KubeLoad, *, cache_dir: Path) -> Plan:
    """The plan of ``load CASE --mesh kind|cluster`` (``opts`` checked by ``check_options``; a case a load
    run cannot send is refused by ``plan_case`` before anything is planned)."""
    case_plan = plan_case(case, spec)
    plan = Plan()
    refused = case_refusals(case, opts.mesh)
    if refused:
        plan.add("refuse", f"case {case.name} ({case.file}): " + "; ".join(i.message for i in refused))
        return plan
    client = case.topology.client(LOAD_CLIENT)
    if client is None:  # plan_case sends every check from LOAD_CLIENT, which every topology has
        raise MeshError(f"case {case.name}: no {LOAD_CLIENT!r} workload to send as")
    worker_image = load_image(load.locust_version)
    steps = plan_setup(plan, opts, cache_dir=cache_dir, images=(worker_image,))
    if load.master_host_for_pods is None:
        plan.run(kind_gateway_command("docker"))
        master_host, bind_host = KIND_GATEWAY, KIND_GATEWAY
    else:
        master_host, bind_host = load.master_host_for_pods, "*"
    steps.deploy(case.topology)
    written = steps.write(case.objects, case.topology)
    url = service_url(case_plan.plan.requests[0].authority)
    files = RunFiles(WORK_DIR / "plan.json", WORK_DIR / "records.jsonl", WORK_DIR / "workers.json",
                     locustfile_for(case_plan.plan.protocol))
    plan.add("write", str(files.plan), json.loads(replace(case_plan.plan, config_version=str(steps.version)).to_json()))
    master = master_command(files, url, spec, NO_OUTPUTS, bind_host=bind_host, port=load.master_port,
                            workers=load.workers, wait_for_workers_s=REMOTE_WAIT_FOR_WORKERS_S)
    plan.add("run", " ".join(master) + "   (here, in the background: it ends the run)")
    deployment = render_workers(client, Workers(load.workers, master_host, load.master_port, url,
                                                case_plan.plan.protocol, steps.images[worker_image.name]), steps.render)
    plan.apply(deployment)
    where = f"{deployment['metadata']['namespace']}/{WORKERS_NAME}"
    plan.add("wait", f"{load.workers} pods of Deployment {where} running with their sidecars, and {load.workers} "
                     f"workers connected to the master (at most {REMOTE_WAIT_FOR_WORKERS_S:g}s)")
    plan.add("wait", f"the master's exit: {spec.duration_s:g}s of load, then every worker's last records (at most "
                     f"{spec.duration_s + STARTUP_MARGIN_S:g}s); a pod whose last records never came is named lost "
                     "and fails the run")
    plan.add("delete", f"Deployment {where} (also on Ctrl-C or a failed wait)")
    steps.revert(written)
    steps.cleanup()
    plan_teardown(plan, opts, cache_dir=cache_dir)
    return plan
