"""``load CASE --mesh kind|cluster``, the live run: the case applied on the KubeMesh, the Locust master
here, the worker Deployment running while it runs, judged as a distributed run on this machine is.

Order (the ``--dry-run`` plan shows the same, ``kube_plan.py``): deploy and apply the case, start the
master (bound where the pods reach it), apply the worker Deployment and wait for its pods
(``KubeMesh.workload``), wait for the master to end the run, delete the Deployment (also on an error
or Ctrl-C), revert the case, judge. The master waits ``REMOTE_WAIT_FOR_WORKERS_S`` for the pods to
connect; a pod whose last records never came is named lost and fails the run (``LoadReport.passed``).
Unverified end to end: no cluster has run it.
"""

from __future__ import annotations

from dataclasses import replace

from harness.case import Case
from harness.errors import MeshError
from harness.loadspec import LoadSpec
from harness.locust.kube import LOAD_IMAGE_NAME, Workers, render_workers, service_url
from harness.locust.kube_plan import KubeLoad
from harness.locust.locust_cli import NO_OUTPUTS, Distribution, LocustOutputs
from harness.locust.plan import LOAD_CLIENT, CasePlan
from harness.locust.run import LocustRun, Progress, case_applied, run_locust
from harness.locust.thresholds import LoadReport, judge_load
from harness.mesh.kube.mesh import KubeMesh
from harness.settings import StatSettings


def run_case_under_load_on_kube(mesh: KubeMesh, case: Case, spec: LoadSpec, settings: StatSettings, load: KubeLoad,
                                master_host: str, outputs: LocustOutputs = NO_OUTPUTS,
                                progress: Progress | None = None) -> tuple[LoadReport, LocustRun]:
    """Run ``case`` under load from ``load.workers`` pods whose master, here, they reach at ``master_host``."""
    client = case.topology.client(LOAD_CLIENT)
    if client is None:  # plan_case sends every check from LOAD_CLIENT, which every topology has
        raise MeshError(f"case {case.name}: no {LOAD_CLIENT!r} workload to send as")

    def pods_url(case_plan: CasePlan) -> str:
        return service_url(case_plan.plan.requests[0].authority)

    with case_applied(mesh, case, spec, pods_url) as applied:
        plan = replace(applied.plan.plan, config_version=str(applied.config_version))
        workers = Workers(load.workers, master_host, load.master_port, applied.host, plan.protocol,
                          mesh.image(LOAD_IMAGE_NAME))
        deployment = render_workers(client, workers, mesh.render_options)
        # discovered on kind: bind exactly the kind network's gateway; given by the user: every interface
        bind_host = master_host if load.master_host_for_pods is None else "*"
        distribution = Distribution(remote_workers=load.workers, bind_host=bind_host, port=load.master_port)
        run = run_locust(plan, applied.host, spec, outputs, progress, distribution=distribution,
                         alongside=lambda: mesh.workload(deployment))
    report = judge_load(case.name, applied.plan, run.records, spec, settings, applied.config_version,
                        timer_tick_s=mesh.info().timer_tick_s, lost_workers=run.lost_workers)
    return report, run
