"""Opening a KubeMesh from the command-line options: prerequisites first, then cluster, Istio, image, mesh.

``--mesh kind``: docker, kind and kubectl must be on PATH (checked before anything starts); the
harness creates or reuses its kind cluster, installs Istio at ``--istio-version`` (istioctl fetched
and checksum-verified when not cached) unless that version already runs there, builds the echo
image and loads it into the cluster. ``--mesh cluster``: kubectl and docker on PATH, a named
``--context`` (the harness never falls back to the user's current context), Istio already
installed, and ``--image-registry`` to push the echo image to. Whatever was made before a failure
is undone before the error is raised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import CaseError, MeshError
from harness.mesh.kube.api import KubeApi
from harness.mesh.kube.commands import Runner, run_command
from harness.mesh.kube.image import BUILD_TIMEOUT_S, ECHO, ImageSpec, ensure_image
from harness.mesh.kube.istio_install import (
    GATEWAY_SERVICE,
    INSTALL_TIMEOUT_S,
    ISTIO_NAMESPACE,
    install_istio,
    istiod_image_version,
    istiod_name,
)
from harness.mesh.kube.kindcluster import CREATE_TIMEOUT_S, LOAD_TIMEOUT_S, KindCluster, KindSpec
from harness.mesh.kube.manifests import RenderOptions
from harness.mesh.kube.mesh import ROLLOUT_TIMEOUT_S, Forwarder, KubeMesh
from harness.mesh.kube.portforward import PortForward, port_forward_command
from harness.mesh.kube.tools import ToolMissing, default_cache_dir, ensure_istioctl, find_tool, kubernetes_client
from harness.mesh.kube.versions import DEFAULT_ISTIO_VERSION, DEFAULT_KUBERNETES
from harness.progress import Observer, ignore

DOCKER_CHECK_TIMEOUT_S = 20.0
SETUP_BOUND_S = (DOCKER_CHECK_TIMEOUT_S + CREATE_TIMEOUT_S + INSTALL_TIMEOUT_S + BUILD_TIMEOUT_S + LOAD_TIMEOUT_S
                 + ROLLOUT_TIMEOUT_S)
"""The most opening a kube mesh and its first deploy can take, each step at its own bound: a test that makes
the mesh in a fixture needs a pytest-timeout at least this long (the plugin makes it before any timer)."""


@dataclass(frozen=True)
class KubeOptions:
    """The ``--mesh kind|cluster`` options of the CLI and the pytest plugin."""

    mesh: Literal["kind", "cluster"]
    kubeconfig: str | None = None
    context: str | None = None
    istio_version: str | None = None
    istio_revision: str | None = None
    keep_cluster: bool = False
    image_registry: str | None = None
    kubernetes: str = DEFAULT_KUBERNETES


@dataclass(frozen=True)
class Tools:
    kubectl: str
    docker: str
    kind: str | None


def check_options(opts: KubeOptions) -> None:
    """The options each mesh needs, and none it does not take (pure: ``--dry-run`` checks them too)."""
    if opts.mesh == "cluster":
        if not opts.context:
            raise CaseError("--mesh cluster needs --context NAME (and --kubeconfig FILE unless it is in the default "
                            "kubeconfig): the harness never uses your current context implicitly")
        if not opts.image_registry:
            raise CaseError("--mesh cluster needs --image-registry REGISTRY (e.g. ghcr.io/me): the echo image is "
                            "pushed there for the cluster's nodes to pull")
    elif opts.kubeconfig or opts.context:
        raise CaseError("--kubeconfig and --context are for --mesh cluster; --mesh kind uses the kubeconfig of the "
                        "kind cluster it makes")


def check_prerequisites(opts: KubeOptions, *, run: Runner = run_command, path: str | None = None) -> Tools:
    """Fail fast, before anything is created, when a tool, the Docker engine or an option the mesh needs is missing."""
    check_options(opts)
    what = f"--mesh {opts.mesh}"
    docker = find_tool("docker", needed_for=what, path=path)
    kind = find_tool("kind", needed_for=what, path=path) if opts.mesh == "kind" else None
    kubectl = find_tool("kubectl", needed_for=what, path=path)
    kubernetes_client()
    try:
        run([docker, "version", "--format", "{{.Server.Version}}"], what="asking the Docker engine for its version",
            timeout_s=DOCKER_CHECK_TIMEOUT_S)
    except MeshError as exc:
        raise ToolMissing(f"{what} needs a running Docker engine, and `docker version` got no answer from it; "
                          f"start Docker (or run with --mesh local): {exc}") from exc
    return Tools(kubectl=kubectl, docker=docker, kind=kind)


def run_namespace_prefix(mesh: str, run_id: str) -> str | None:
    """Namespaces of a run: as the cases name them on a kind cluster of one run; ``mh-<worker>-`` per xdist
    worker; ``mh-<run id>-`` on a shared cluster, so concurrent runs never meet."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if mesh == "cluster":
        return f"mh-{worker}-{run_id}" if worker else f"mh-{run_id}"
    return f"mh-{worker}" if worker else None


def kubectl_forwarder(kubectl: str, kubeconfig: Path | None, context: str | None, cache_dir: Path) -> Forwarder:
    """Pod port-forwards by kubectl, with its cache in ``cache_dir`` (the run's work dir), not ``~/.kube/cache``."""
    def forward(namespace: str, pod: str, remote_port: int) -> tuple[int, Callable[[], None]]:
        command = port_forward_command(kubectl, kubeconfig, context, namespace, pod, remote_port, cache_dir=cache_dir)
        started = PortForward(command, f"{namespace}/{pod}:{remote_port}").start()
        return started.local_port, started.close

    return forward


def open_kube_mesh(opts: KubeOptions, *, run: Runner = run_command, observer: Observer = ignore,
                   images: Sequence[ImageSpec] = ()) -> KubeMesh:
    """A started KubeMesh for ``opts`` (nothing deployed yet); the caller closes it. ``observer`` is told of
    each long step (cluster create, Istio install, image build and load, rollout) with its elapsed time.
    ``images``: built and loaded (or pushed) beside the echo image, for workloads of the caller's own
    (``KubeMesh.image(name)``: the Locust worker image of ``load``)."""
    tools = check_prerequisites(opts, run=run)
    version = opts.istio_version or DEFAULT_ISTIO_VERSION
    cache = default_cache_dir()
    workdir = Path(tempfile.mkdtemp(prefix="mesh-harness-kube-"))
    undo: list[Callable[[], None]] = [lambda: shutil.rmtree(workdir, ignore_errors=True)]
    kubeconfig: Path | None
    context: str | None
    setup = ExitStack()  # on kind: the cluster's lock, held until Istio and the image are in place
    try:
        if opts.mesh == "kind":
            assert tools.kind is not None
            cluster = KindCluster(KindSpec(kubernetes=opts.kubernetes), kind=tools.kind, state_dir=cache / "kind",
                                  run=run, keep=opts.keep_cluster, observer=observer)
            undo.insert(0, cluster.close)
            setup.enter_context(cluster.exclusive())
            cluster.up()
            kubeconfig, context = cluster.kubeconfig, cluster.context
        else:
            kubeconfig, context = (Path(opts.kubeconfig) if opts.kubeconfig else None), opts.context
        api = KubeApi.from_kubeconfig(str(kubeconfig) if kubeconfig else None, context)
        undo.insert(0, api.close)
        nodes = api.list("v1", "Node", None)
        istiod = api.get("apps/v1", "Deployment", ISTIO_NAMESPACE, istiod_name(opts.istio_revision))
        problems = readiness_problems(nodes, istiod)
        if problems:
            raise MeshError(f"the cluster on context {context} is not ready: {'; '.join(problems)}; check it with "
                            f"kubectl get nodes and kubectl -n {ISTIO_NAMESPACE} get pods")
        running = running_istio(api, opts.istio_revision)
        if running is None and opts.mesh == "cluster":
            raise MeshError(f"no {istiod_name(opts.istio_revision)} in {ISTIO_NAMESPACE} on context {context}: install "
                            "Istio first; the harness installs Istio only on kind clusters it makes")
        if running is None:
            assert kubeconfig is not None and context is not None
            istioctl = ensure_istioctl(version, cache)
            install_istio(run, str(istioctl), workdir, kubeconfig, context, opts.istio_revision, observer)
            running = version
        elif opts.mesh == "kind" and running != version:
            raise MeshError(f"the kind cluster runs Istio {running} ({istiod_name(opts.istio_revision)}), not {version}: "
                            "pass --istio-revision NAME to install a canary beside it, or delete the cluster")
        registry = opts.image_registry if opts.mesh == "cluster" else None
        platform = node_platform(nodes) if opts.mesh == "cluster" else None
        built = {spec.name: ensure_image(run, tools.docker, registry, observer, platform=platform, spec=spec)
                 for spec in (ECHO, *images)}
        if opts.mesh == "kind":
            for ref in built.values():
                cluster.load_image(ref)
        image = built.pop(ECHO.name)
        setup.close()
        run_id = uuid.uuid4().hex[:8]
        render = RenderOptions(image=image, run_id=run_id, namespace_prefix=run_namespace_prefix(opts.mesh, run_id),
                               revision=opts.istio_revision, gateway_ip=gateway_ip(api))
        return KubeMesh(kind=opts.mesh, api=api, render=render, istio_version=running,
                        forward=kubectl_forwarder(tools.kubectl, kubeconfig, context, workdir / "kubectl-cache"),
                        cleanups=undo[1:], observer=observer, images=built)
    except BaseException:
        setup.close()
        for step in undo:
            try:
                step()
            except Exception:  # noqa: BLE001 (the first error is the one to report)
                continue
        raise


def readiness_problems(nodes: list[dict[str, Any]], istiod: dict[str, Any] | None) -> list[str]:
    """Why a cluster (made now, or reused) cannot take pods yet (pure; empty when it can): no node is Ready
    (kind's ``--wait`` only warns when it runs out), or an istiod is there but none of its replicas is ready."""
    problems = []
    ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in n.get("status", {}).get("conditions", []))]
    if not ready:
        shown = ", ".join(str(n.get("metadata", {}).get("name")) for n in nodes) or "none"
        problems.append(f"no node is Ready (nodes: {shown})")
    if istiod is not None and not istiod.get("status", {}).get("readyReplicas"):
        problems.append(f"{ISTIO_NAMESPACE}/{istiod['metadata']['name']} has no ready replica")
    return problems


def node_platform(nodes: list[dict[str, Any]]) -> str:
    """``linux/<arch>`` of the cluster's nodes, which the echo image is built for (pure); an error for a mix."""
    platforms = sorted({f"{n['status']['nodeInfo'].get('operatingSystem', 'linux')}/{n['status']['nodeInfo']['architecture']}"
                        for n in nodes if n.get("status", {}).get("nodeInfo", {}).get("architecture")})
    if len(platforms) != 1:
        raise MeshError(f"the echo image is built for one platform, and the cluster's nodes run "
                        f"{', '.join(platforms) or 'no reported platform'}; run on a cluster of one architecture")
    return platforms[0]


def gateway_ip(api: KubeApi) -> str | None:
    """The ClusterIP of the ingress gateway Service, or None when the cluster has none."""
    service = api.get("v1", "Service", ISTIO_NAMESPACE, GATEWAY_SERVICE)
    address = (service or {}).get("spec", {}).get("clusterIP")
    return str(address) if address and address != "None" else None


def running_istio(api: KubeApi, revision: str | None) -> str | None:
    """The Istio version of the istiod (of ``revision``) running in the cluster, or None."""
    deployment = api.get("apps/v1", "Deployment", ISTIO_NAMESPACE, istiod_name(revision))
    if deployment is None:
        return None
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return istiod_image_version(containers[0].get("image", "")) if containers else None
