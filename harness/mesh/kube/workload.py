"""A Deployment beside the topology for the length of a block: applied, awaited until its pods are ready, deleted.

For what a run brings besides the case's apps and clients (the Locust worker pods of ``load --mesh
kind``). The mesh's own rollout wait is built for one pod per instance; such a workload has
``replicas`` pods under one instance label, so it is awaited on its own here. The Deployment is
deleted when the block ends however it ends (an error, a timeout, Ctrl-C): its pods would otherwise
keep sending. ``KubeMesh.close`` deletes it too (it carries the run label), should this process die.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.mesh.kube.api import KubeApi
from harness.mesh.kube.manifests import INSTANCE_LABEL, RUN_LABEL
from harness.mesh.kube.pods import is_ready, pod_summary
from harness.progress import Observer, ignore, step
from harness.waits import wait_until


def own_pods(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods of ``deployment`` among ``pods`` (by its instance label; pure)."""
    instance = deployment["spec"]["selector"]["matchLabels"][INSTANCE_LABEL]
    return [p for p in pods if p["metadata"].get("labels", {}).get(INSTANCE_LABEL) == instance]


def workload_problems(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> list[str]:
    """Why ``deployment``'s pods are not all ready yet, one line per pod or missing pod; empty when they are (pure)."""
    mine = own_pods(deployment, pods)
    want = deployment["spec"]["replicas"]
    ready = [p for p in mine if is_ready(p)]
    problems = [pod_summary(p) for p in mine if not is_ready(p)]
    if len(ready) < want and len(mine) < want:
        problems.append(f"{want - len(mine)} of {want} pods not created yet")
    return [] if len(ready) >= want else problems


@contextmanager
def running_workload(api: KubeApi, deployment: dict[str, Any], *, timeout_s: float, poll_s: float,
                     observer: Observer = ignore) -> Iterator[list[str]]:
    """``deployment`` applied, its ``replicas`` pods ready (their names are yielded), deleted at the end.

    SyncTimeout naming each pod's state when they are not ready within ``timeout_s`` (deleted first).
    """
    meta = deployment["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    selector = f"{RUN_LABEL}={meta['labels'][RUN_LABEL]},{INSTANCE_LABEL}={deployment['spec']['selector']['matchLabels'][INSTANCE_LABEL]}"
    api.apply(deployment)
    try:
        with step(observer, "rollout", f"Deployment {namespace}/{name}: {deployment['spec']['replicas']} ready pods"):
            pods = _wait_ready(api, deployment, selector, timeout_s, poll_s)
        yield sorted(p["metadata"]["name"] for p in own_pods(deployment, pods) if is_ready(p))
    finally:
        api.delete("apps/v1", "Deployment", namespace, name)


def _wait_ready(api: KubeApi, deployment: dict[str, Any], selector: str, timeout_s: float,
                poll_s: float) -> list[dict[str, Any]]:
    namespace = deployment["metadata"]["namespace"]
    pods: list[dict[str, Any]] = []
    problems: list[str] = []

    def ready() -> bool:
        pods[:] = api.list("v1", "Pod", namespace, selector)
        problems[:] = workload_problems(deployment, pods)
        return not problems

    wait_until(ready, timeout_s, poll_s, message=lambda: (
        f"Deployment {namespace}/{deployment['metadata']['name']}: pods not ready after {timeout_s:g}s: "
        f"{'; '.join(problems[:10])}; it was deleted"))
    return pods
