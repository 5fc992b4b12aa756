"""``--dry-run``: every command and every API write a ``--mesh kind|cluster`` run would make, in order (pure).

Nothing runs and nothing is contacted: no Docker, kind, kubectl or cluster is needed. The plan is
built from the same functions the run calls (command lines, the kind config, the install overlay,
the manifests, the case objects as written with their ServiceEntry endpoints translated, the
sentinels), in the order ``session.open_kube_mesh`` and ``KubeMesh`` issue them, for a cold machine
(no cluster yet, istioctl not cached, no image built). What only a live run knows is shown as a
placeholder in angle brackets: pod names, ClusterIPs. Cases the mesh cannot serve are listed as
refused with their reasons (``harness.mesh.capabilities``) and planned no further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.istio.manifest import to_manifest
from harness.istio.model import IstioObject
from harness.mesh.capabilities import case_refusals
from harness.mesh.gateway_request_ids import gateway_keeps_request_ids
from harness.mesh.kube import image
from harness.mesh.kube.external import point_at_external_app
from harness.mesh.kube.istio_install import (
    GATEWAY_SERVICE,
    ISTIO_NAMESPACE,
    install_command,
    install_overlay,
    istiod_name,
)
from harness.mesh.kube.kindcluster import (
    KindSpec,
    create_command,
    delete_command,
    kind_config,
    load_image_command,
)
from harness.mesh.kube.manifests import (
    CONTROL_PORT,
    RUN_LABEL,
    RenderOptions,
    namespaces,
    render_namespace,
    render_topology,
)
from harness.mesh.kube.mesh import ADMIN_PORT, GATEWAY, REQUEST_ID_FILTER, sync_objects
from harness.mesh.kube.portforward import port_forward_command
from harness.mesh.kube.tools import istioctl_url
from harness.mesh.kube.versions import DEFAULT_ISTIO_VERSION
from harness.topology import Topology

if TYPE_CHECKING:
    from harness.case import Case
    from harness.mesh.kube.session import KubeOptions

DRY_RUN_ID = "dry-run"
"""The run id the plan shows (a live run draws a random one)."""
BUILD_CONTEXT = Path("<build context>")
"""The docker build context the plan shows (a live build copies the image's files from the installed
harness into a temporary directory: ``image.staged_context``)."""

Action = Literal["run", "download", "write", "apply", "delete", "forward", "wait", "send", "refuse"]


@dataclass(frozen=True)
class Step:
    """One thing the run does: a command line, a download, a file or an API object written, a wait."""

    action: Action
    summary: str
    body: dict[str, Any] | None = None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)

    def add(self, action: Action, summary: str, body: dict[str, Any] | None = None) -> None:
        self.steps.append(Step(action, summary, body))

    def run(self, argv: list[str]) -> None:
        self.add("run", " ".join(argv))

    def apply(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        where = f"{meta['namespace']}/" if meta.get("namespace") else ""
        self.add("apply", f"{obj['kind']} {where}{meta['name']}", obj)

    def objects(self) -> list[dict[str, Any]]:
        """Every object the plan writes to the API server, in order."""
        return [s.body for s in self.steps if s.action == "apply" and s.body is not None]


def kube_plan(opts: KubeOptions, cases: list[Case], *, cache_dir: Path) -> Plan:
    """The plan of ``mesh-harness run --mesh kind|cluster`` over ``cases`` (``opts`` checked by ``check_options``)."""
    plan = Plan()
    served = []
    for case in cases:
        refused = case_refusals(case, opts.mesh)
        if refused:
            plan.add("refuse", f"case {case.name} ({case.file}): " + "; ".join(i.message for i in refused))
        else:
            served.append(case)
    steps = plan_setup(plan, opts, cache_dir=cache_dir)
    steps.add(served)
    plan_teardown(plan, opts, cache_dir=cache_dir)
    return plan


def plan_setup(plan: Plan, opts: KubeOptions, *, cache_dir: Path, images: Sequence[image.ImageSpec] = ()) -> CaseSteps:
    """The cluster, Istio, the echo image and ``images`` (``open_kube_mesh(images=)``), as ``open_kube_mesh``
    readies them; then what deploys the cases. ``CaseSteps.images`` names each image as the pods do."""
    state = cache_dir / "kind"
    spec = KindSpec(kubernetes=opts.kubernetes)
    kind_kubeconfig = state / spec.name / "kubeconfig"
    kubeconfig = Path(opts.kubeconfig) if opts.kubeconfig else (kind_kubeconfig if opts.mesh == "kind" else None)
    context = opts.context or spec.context
    version = opts.istio_version or DEFAULT_ISTIO_VERSION
    plan.run(["docker", "version", "--format", "{{.Server.Version}}"])
    if opts.mesh == "kind":
        plan.run(["kind", "get", "clusters"])
        config_path = state / spec.name / "kind-config.json"
        plan.add("write", str(config_path), kind_config(spec))
        plan.run(create_command("kind", spec, config_path, kind_kubeconfig))
    plan.add("wait", f"GET Nodes and Deployment {ISTIO_NAMESPACE}/{istiod_name(opts.istio_revision)}: a Ready "
                     "node, istiod ready if it runs, which Istio it is, the nodes' platform")
    if opts.mesh == "kind":
        istioctl = cache_dir / f"istioctl-{version}" / "istioctl"
        url = istioctl_url(version, "<os>-<arch>")
        plan.add("download", f"{url} and {url}.sha256 -> {istioctl} (unless cached; checksum verified)")
        overlay_path = Path("<work dir>") / f"istio-overlay{'-' + opts.istio_revision if opts.istio_revision else ''}.json"
        plan.add("write", str(overlay_path), install_overlay(opts.istio_revision))
        plan.run(install_command(str(istioctl), overlay_path, kind_kubeconfig, context))
    refs = plan_images(plan, opts, (image.ECHO, *images))
    echo = refs.pop(image.ECHO.name)
    plan.add("wait", f"GET Service {ISTIO_NAMESPACE}/{GATEWAY_SERVICE}: the ingress gateway's ClusterIP")
    prefix = f"mh-{DRY_RUN_ID}" if opts.mesh == "cluster" else None
    render = RenderOptions(image=echo, run_id=DRY_RUN_ID, namespace_prefix=prefix, revision=opts.istio_revision,
                           gateway_ip=f"<ClusterIP of {ISTIO_NAMESPACE}/{GATEWAY_SERVICE}>")
    return CaseSteps(plan, render, kubeconfig, context, images=refs)


def plan_images(plan: Plan, opts: KubeOptions, specs: Sequence[image.ImageSpec]) -> dict[str, str]:
    """Each image inspected, built unless found (and pushed to a cluster's registry), then all ``kind load``ed,
    as ``open_kube_mesh`` does; image name -> its reference as the pods name it."""
    registry = opts.image_registry if opts.mesh == "cluster" else None
    platform = "linux/<arch of the nodes>" if opts.mesh == "cluster" else None
    refs = {spec.name: image.image_ref(image.image_tag(platform, spec), registry, spec) for spec in specs}
    for spec in specs:
        ref = refs[spec.name]
        plan.run(image.inspect_command("docker", ref))
        plan.add("run", " ".join(image.build_command("docker", ref, BUILD_CONTEXT, platform, spec))
                 + "   (only when the inspect finds no such image)")
        if opts.mesh == "cluster":
            plan.run(image.push_command("docker", ref))
    if opts.mesh == "kind":
        kind = KindSpec(kubernetes=opts.kubernetes)
        for ref in refs.values():
            plan.run(load_image_command("kind", kind, ref))
    return refs


def plan_teardown(plan: Plan, opts: KubeOptions, *, cache_dir: Path) -> None:
    """The kind cluster deleted, unless kept (a ``--mesh cluster`` is never the harness's to delete)."""
    spec = KindSpec(kubernetes=opts.kubernetes)
    if opts.mesh == "kind" and not opts.keep_cluster:
        plan.run(delete_command("kind", spec, cache_dir / "kind" / spec.name / "kubeconfig"))


@dataclass
class CaseSteps:
    """The KubeMesh part of the plan: deploy, apply, send, revert per served case, then cleanup."""

    plan: Plan
    render: RenderOptions
    kubeconfig: Path | None
    context: str
    images: dict[str, str] = field(default_factory=dict)
    """Images besides the echo image: name -> reference (``plan_setup(images=)``)."""
    topology: Topology | None = None
    version: int = 0
    created: list[str] = field(default_factory=list)

    def add(self, cases: list[Case]) -> None:
        for case in cases:
            self.deploy(case.topology)
            written = self.write(case.objects, case.topology)
            for check in case.checks:
                via = " via the ingress gateway" if check.send.via == "gateway" else ""
                self.plan.add("send", f"case {case.name}, check {check.name!r}: ForwardEcho on {check.send.client} "
                                      f"{check.send.method} {check.send.url}{via}")
            self.revert(written)
        self.cleanup()

    def revert(self, written: list[dict[str, Any]]) -> None:
        """The case's objects deleted, and the sidecars synced again."""
        for obj in written:
            meta = obj["metadata"]
            self.plan.add("delete", f"{obj['kind']} {meta['namespace']}/{meta['name']} (revert)")
        self.sync()

    def cleanup(self) -> None:
        """What ``KubeMesh.close`` deletes."""
        self.plan.add("delete", f"the run's objects (label {RUN_LABEL}={self.render.run_id}) and the namespaces "
                                f"it made (of {', '.join(self.created) or 'none'}, those that were missing); then the port-forwards")

    def deploy(self, topology: Topology) -> None:
        if topology == self.topology:
            return
        for name in namespaces(topology):
            manifest = render_namespace(name, self.render)
            if manifest["metadata"]["name"] not in self.created:
                self.plan.add("wait", f"GET Namespace {manifest['metadata']['name']}: created only when missing")
                self.plan.apply(manifest)
                self.created.append(manifest["metadata"]["name"])
        if topology.gateway:
            self.plan.apply(gateway_keeps_request_ids(ISTIO_NAMESPACE, f"{REQUEST_ID_FILTER}-{self.render.run_id}",
                                                      {RUN_LABEL: self.render.run_id}))
        for manifest in render_topology(topology, self.render):
            self.plan.apply(manifest)
        self.plan.add("delete", "the run's Deployments and Services this topology no longer has")
        self.plan.add("wait", "one ready pod per app instance and client (bounded)")
        for client in topology.clients:
            for port in (CONTROL_PORT, ADMIN_PORT):
                self.plan.add("forward", " ".join(port_forward_command(
                    "kubectl", self.kubeconfig, self.context, self.render.namespace(client.namespace),
                    f"<pod of {client.name}>", port, cache_dir=Path("<work dir>/kubectl-cache"))))
        if topology.gateway:
            self.plan.add("forward", " ".join(port_forward_command(
                "kubectl", self.kubeconfig, self.context, ISTIO_NAMESPACE, f"<pod of {GATEWAY}>", ADMIN_PORT,
                cache_dir=Path("<work dir>/kubectl-cache"))))
        self.plan.add("wait", "each client sidecar's /clusters holds one healthy host per instance (bounded)")
        self.topology = topology
        self.sync()

    def write(self, objects: tuple[IstioObject, ...], topology: Topology) -> list[dict[str, Any]]:
        written = []
        labels = {RUN_LABEL: self.render.run_id}
        for obj in objects:
            namespace = self.render.namespace(obj.metadata.namespace)
            ips = {s.name: f"<ClusterIP of Service {namespace}/{s.name}>" for s in topology.services if s.external}
            manifest = point_at_external_app(to_manifest(obj, namespace, labels), topology, namespace, ips)
            self.plan.apply(manifest)
            written.append(manifest)
        self.sync()
        return written

    def sync(self) -> None:
        assert self.topology is not None  # deploy came first
        self.version += 1
        labels = {RUN_LABEL: self.render.run_id}
        spaces = sorted({self.render.namespace(c.namespace) for c in self.topology.clients})
        for namespace in spaces:
            for sentinel in sync_objects(namespace, self.version, labels, gateway=self.topology.gateway):
                self.plan.apply(sentinel)
        proxies = ", ".join([c.name for c in self.topology.clients] + ([GATEWAY] if self.topology.gateway else []))
        self.plan.add("wait", f"config version {self.version}: the sentinels in the config_dump of {proxies} (bounded)")


def render_plan(plan: Plan) -> str:
    """The plan as text: numbered steps, each object or file as YAML below its line."""
    import yaml

    lines: list[str] = []
    for number, step in enumerate(plan.steps, 1):
        lines.append(f"{number:3d}. {step.action:8s} {step.summary}")
        if step.body is not None:
            text = yaml.safe_dump(step.body, sort_keys=False, default_flow_style=False).rstrip()
            lines += [f"         {line}" for line in text.splitlines()]
    return "\n".join(lines)
