"""KubeMesh: the Mesh interface on a Kubernetes cluster with Istio (a kind cluster the harness made, or any cluster).

istiod translates, real Istio sidecars route; the harness only writes objects and reads evidence:

* ``deploy``: namespaces, Services, one Deployment per app instance and per client
  (``manifests.py``), server-side applied; waits (bounded) for the rollouts and then for the
  client sidecars to hold exactly the new endpoints (``/clusters`` of each client's admin API);
* ``apply``/``revert``: the case's Istio objects, server-side applied or deleted (``apply.py``),
  then the sentinels of the new version; returns when every client sidecar's config_dump holds
  them (``harness/mesh/sentinels.py``). A webhook denial or an Envoy rejection (``error_state``, or a grown
  ``update_rejected`` counter: CDS and RDS rejections leave no error in the config_dump) restores the previous
  objects and raises ``ConfigRejected`` with istiod's or Envoy's message;
* ``send``: ForwardEcho on the client pod (its control port through a pod port-forward), so the
  traffic leaves through the client's own sidecar; Envoy's response flags come from the sidecar's
  JSON access log (``istio-proxy`` container log), joined by request id as on the local mesh.
  ``via: gateway`` sends from the client pod to the ingress gateway Service's ClusterIP (which the
  client's sidecar lets pass: ``manifests.py``) with the case's Host, and joins the gateway's access log;
  the gateway proxy's config_dump is awaited with the client sidecars' whenever the topology has a gateway;
* ServiceEntry endpoints on ``127.0.0.1`` are pointed at the external app's Service (``external.py``);
* ``proxy_stats``/``drain``: the client sidecar's admin API through a pod port-forward;
* ``app_log``: each instance's request log through its control port.

``close`` undoes it in reverse: port-forwards, the run's objects and namespaces, the API client,
then the cluster (``KindCluster.close``: only one this run created, and not with --keep-cluster),
also on Ctrl-C (``atexit`` and the callers' ``with`` blocks).
"""

from __future__ import annotations

import atexit
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx

from harness.errors import ConfigRejected, MeshError
from harness.istio.manifest import to_manifest
from harness.istio.model import IstioObject
from harness.loopback import loopback_client
from harness.mesh import sentinels
from harness.mesh.accesslog import BatchJoin, Unclaimed, parse_entry
from harness.mesh.base import COARSEST_KERNEL_TICK_S, MeshInfo, Observation, ReceivedRequest, SendSpec, SyncToken
from harness.mesh.cleanup import run_all
from harness.mesh.echo_client import ControlClient
from harness.mesh.gateway_request_ids import gateway_keeps_request_ids, keeps_request_ids
from harness.mesh.kube.api import ApiError, KubeApi, describe
from harness.mesh.kube.apply import Key, plan
from harness.mesh.kube.external import point_at_external_app
from harness.mesh.kube.istio_install import GATEWAY_LABELS, GATEWAY_SERVICE, ISTIO_NAMESPACE
from harness.mesh.kube.manifests import (
    CONTROL_PORT,
    INSTANCE_LABEL,
    RUN_LABEL,
    RenderOptions,
    namespaces,
    render_namespace,
    render_topology,
)
from harness.mesh.kube.podlog import LogCursor, new_lines
from harness.mesh.kube.pods import is_ready, pod_summary
from harness.mesh.kube.workload import running_workload
from harness.progress import Observer, ignore, step
from harness.topology import Topology
from harness.waits import wait_until

ADMIN_PORT = 15000
PROXY_CONTAINER = "istio-proxy"
ROLLOUT_TIMEOUT_S = 300.0
SYNC_TIMEOUT_S = 60.0
ACCESS_LOG_TIMEOUT_S = 30.0
"""Envoy flushes its stdout access log about once a second, and the kubelet adds its own delay."""
NAMESPACE_DELETE_TIMEOUT_S = 120.0
POLL_S = 0.5
_ADMIN_TIMEOUT_S = 10.0
GATEWAY = GATEWAY_SERVICE
"""The ingress gateway's name among the proxies the mesh reads (``proxy_stats``, sync, access log)."""
ISTIO_KINDS = (("networking.istio.io/v1", "VirtualService"), ("networking.istio.io/v1", "DestinationRule"),
               ("networking.istio.io/v1", "ServiceEntry"), ("networking.istio.io/v1", "Gateway"),
               ("networking.istio.io/v1alpha3", "EnvoyFilter"))
"""The Istio kinds the harness writes, and deletes at close (its objects carry the run label)."""
REQUEST_ID_FILTER = "mesh-harness-gateway-request-id"
"""The gateway's EnvoyFilter (``gateway_request_ids.py``), one per run: ``<this>-<run id>`` in istio-system."""
_IN_FLIGHT = r"^(cluster\.outbound\|.*\.upstream_rq_active|http\.outbound_.*\.downstream_rq_active)$"


class Forwarder(Protocol):
    """Opens a pod port-forward; returns (local port, close)."""

    def __call__(self, namespace: str, pod: str, remote_port: int) -> tuple[int, Callable[[], None]]: ...


@dataclass
class _Client:
    """What the mesh keeps per proxy it reads (a client workload, or the gateway): its pod, its control
    (the echo app's; None for the gateway, which has no app) and admin connections, its log cursor."""

    pod: str
    namespace: str
    control: ControlClient | None
    admin: httpx.Client
    cursor: LogCursor = field(default_factory=LogCursor)
    unclaimed: Unclaimed = field(default_factory=Unclaimed)


class KubeMesh:
    """The Mesh on Kubernetes. Built by ``session.open_kube_mesh``; ``close()`` removes what it made."""

    def __init__(self, *, kind: Literal["kind", "cluster"], api: KubeApi, render: RenderOptions, forward: Forwarder,
                 istio_version: str, cleanups: Sequence[Callable[[], None]] = (),
                 sync_timeout_s: float = SYNC_TIMEOUT_S, rollout_timeout_s: float = ROLLOUT_TIMEOUT_S,
                 poll_s: float = POLL_S, observer: Observer = ignore, images: Mapping[str, str] | None = None) -> None:
        """``cleanups`` run last in ``close()``, in order (delete the kind cluster, remove the work dir);
        ``observer`` is told of each rollout wait with its elapsed time; ``images``: image name -> the
        reference the session built and loaded besides the echo image."""
        self._images = dict(images or {})
        self._observer = observer
        self._kind = kind
        self._api = api
        self._render = render
        self._forward = forward
        self._istio_version = istio_version
        self._cleanups = list(cleanups)
        self._sync_timeout_s = sync_timeout_s
        self._rollout_timeout_s = rollout_timeout_s
        self._poll_s = poll_s
        self._topology: Topology | None = None
        self._objects: dict[Key, IstioObject] = {}
        self._version = 0
        self._created_namespaces: list[str] = []
        self._touched_namespaces: set[str] = set()
        self._swept: set[str] = set()
        self._clients: dict[str, _Client] = {}
        self._gateway: _Client | None = None
        self._cluster_ips: dict[tuple[str, str], str] = {}  # (namespace, Service) -> its ClusterIP
        self._rejected: dict[str, dict[str, int]] = {}  # proxy -> its update_rejected counters, as last accounted for
        self._controls: dict[str, ControlClient] = {}  # app pod -> its control connection
        self._forwards: dict[tuple[str, str, int], Callable[[], None]] = {}
        self._envoy_version: str | None = None
        self._closed = False
        atexit.register(self.close)

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> KubeMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Port-forwards, then the run's objects and namespaces, then the API client and ``cleanups``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        steps: list[Callable[[], None]] = [self._close_connections, self._delete_run_objects, self._api.close,
                                           *self._cleanups]
        run_all(steps)

    def info(self) -> MeshInfo:
        if self._envoy_version is None and self._clients:
            client = next(iter(self._clients.values()))
            self._envoy_version = envoy_version(self._admin_json(client, "/server_info"))
        return MeshInfo(kind=self._kind, istio_version=self._istio_version,
                        envoy_version=self._envoy_version or "unknown until the first deploy",
                        timer_tick_s=COARSEST_KERNEL_TICK_S)  # the nodes' kernel is not read

    @property
    def config_version(self) -> int:
        return self._version

    @property
    def render_options(self) -> RenderOptions:
        """How this run renders its objects (image, run id, namespaces), for workloads rendered beside the topology."""
        return self._render

    def image(self, name: str) -> str:
        """The reference of an image the session built besides the echo image (``open_kube_mesh(images=)``)."""
        if name not in self._images:
            raise MeshError(f"no image {name!r} was built for this run (built: {', '.join(sorted(self._images)) or 'none'})")
        return self._images[name]

    def workload(self, deployment: dict[str, Any]) -> AbstractContextManager[list[str]]:
        """``deployment`` (rendered with ``render_options``) running while the block runs: its pods ready
        (their names are yielded), deleted when the block ends, also on Ctrl-C (``workload.py``)."""
        self._touched_namespaces.add(deployment["metadata"]["namespace"])
        return running_workload(self._api, deployment, timeout_s=self._rollout_timeout_s, poll_s=self._poll_s,
                                observer=self._observer)

    # --- Mesh interface ------------------------------------------------------------------------

    def deploy(self, topology: Topology) -> None:
        """Run exactly ``topology``'s apps and clients; returns when every client sidecar sees their endpoints."""
        if topology == self._topology:
            return
        self._ensure_namespaces(topology)
        if topology.gateway and not self._render.gateway_ip:
            raise MeshError(f"the case sends via the ingress gateway or applies a Gateway, and the cluster has no "
                            f"Service {ISTIO_NAMESPACE}/{GATEWAY_SERVICE}; install Istio's ingress gateway (labels "
                            f"istio: ingressgateway), as --mesh kind does")
        if topology.gateway:
            self._touched_namespaces.add(ISTIO_NAMESPACE)
            self._api.apply(gateway_keeps_request_ids(ISTIO_NAMESPACE, f"{REQUEST_ID_FILTER}-{self._render.run_id}",
                                                      {RUN_LABEL: self._render.run_id}))
        wanted = render_topology(topology, self._render)
        for obj in wanted:
            applied = self._api.apply(obj)
            if obj["kind"] == "Service" and applied.get("spec", {}).get("clusterIP"):
                self._cluster_ips[obj["metadata"]["namespace"], obj["metadata"]["name"]] = applied["spec"]["clusterIP"]
        self._delete_unwanted(wanted)
        with step(self._observer, "rollout", f"{len(self._workloads(topology))} workloads, one ready pod each"):
            self._wait_rollout(topology)
        self._connect(topology)
        self._topology = topology
        self._wait_endpoints(topology)
        self._sync(self._next_version())

    def apply(self, objects: Sequence[IstioObject]) -> SyncToken:
        previous = dict(self._objects)
        wanted = dict(previous)
        for obj in objects:
            wanted[obj.key] = obj
        self._converge(wanted)
        return SyncToken(self._version, tuple(previous.values()))

    def revert(self, token: SyncToken) -> None:
        self._converge({o.key: o for o in token.previous})

    def send(self, spec: SendSpec) -> list[Observation]:
        client = self._client(spec.client)
        assert client.control is not None  # every client workload runs the echo app
        if spec.via == "gateway":
            gateway = self._gateway
            if gateway is None or not self._render.gateway_ip:
                raise MeshError(f"{spec.url}: send via gateway, but the deployed topology has no ingress gateway; "
                                "apply a Gateway (selector: {istio: ingressgateway}) in the case")
            records = client.control.forward_records(
                spec, connect_to=gateway_address(self._render.gateway_ip, spec.url), capture_headers=spec.capture_headers)
            return self._join_access_log(GATEWAY, gateway, records)
        records = client.control.forward_records(spec, connect_to=None, capture_headers=spec.capture_headers)
        return self._join_access_log(spec.client, client, records)

    def proxy_stats(self, workload: str) -> dict[str, int]:
        return self._stats(self._proxy(workload), None)

    def drain(self, timeout_s: float = 10.0) -> None:
        active: dict[str, int] = {}

        def idle() -> bool:
            active.clear()
            active.update({f"{name}: {stat}": value for name, client in self._clients.items()
                           for stat, value in self._stats(client, _IN_FLIGHT).items() if value})
            return not active

        wait_until(idle, timeout_s, self._poll_s, message=lambda: (
            f"drain: requests still in flight after {timeout_s:g}s: "
            + ", ".join(f"{k} = {v}" for k, v in sorted(active.items()))))

    def app_log(self, service: str, version: str | None = None, *, since: float = 0.0) -> list[ReceivedRequest]:
        """Whole logs: ``since`` is this machine's clock and the pods' may differ (a remote cluster)."""
        topology = self._deployed()
        records: list[ReceivedRequest] = []
        for instance, (svc, ver) in sorted(topology.instances().items()):
            if svc == service and version in (None, ver):
                found = topology.service(svc)
                assert found is not None, svc
                records += self._app_control(self._render.namespace(found.namespace), instance).log()
        return sorted(records, key=lambda r: r.time)

    def config_dump(self, workload: str) -> dict[str, Any]:
        """The workload's sidecar ``/config_dump`` (routes and clusters for failure evidence)."""
        return self._admin_json(self._proxy(workload), "/config_dump")

    def access_log_tail(self, workload: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the workload's ``istio-proxy`` container log (its access log), from the API."""
        client = self._client(workload)
        return self._api.pod_log(client.namespace, client.pod, PROXY_CONTAINER, tail_lines=lines).splitlines()

    # --- apply / revert ------------------------------------------------------------------------

    def _converge(self, wanted: dict[Key, IstioObject]) -> None:
        """Make the cluster hold exactly ``wanted``; on a rejection restore the previous set and raise."""
        previous = dict(self._objects)
        try:
            self._write(wanted)
            self._sync(self._next_version())
        except ConfigRejected:
            self._write(previous)
            self._sync(self._next_version())
            raise

    def _write(self, wanted: dict[Key, IstioObject]) -> None:
        steps = plan(self._objects, wanted)
        labels = {RUN_LABEL: self._render.run_id}
        for obj in steps.delete:
            self._api.delete(obj.api_version, obj.kind, self._render.namespace(obj.metadata.namespace), obj.metadata.name)
            self._objects.pop(obj.key, None)
        for obj in steps.apply:
            namespace = self._render.namespace(obj.metadata.namespace)
            manifest = point_at_external_app(to_manifest(obj, namespace, labels), self._deployed(), namespace,
                                             {name: ip for (ns, name), ip in self._cluster_ips.items() if ns == namespace})
            self._touched_namespaces.add(manifest["metadata"]["namespace"])
            try:
                self._api.apply(manifest)
            except ApiError as exc:
                if exc.status in (400, 422):  # the validating webhook or the CRD schema said no
                    raise ConfigRejected("istiod (validation)", describe(manifest), str(self._version + 1),
                                         exc.reason) from exc
                raise
            self._objects[obj.key] = obj

    def _sync(self, version: int) -> None:
        """Write the sentinels of ``version`` and wait until every client sidecar (and the gateway) holds them."""
        labels = {RUN_LABEL: self._render.run_id}
        spaces = sorted({c.namespace for c in self._clients.values()})
        for namespace in spaces:
            for sentinel in sync_objects(namespace, version, labels, gateway=self._gateway is not None):
                self._api.apply(sentinel)
        pending = dict(self._clients)
        if self._gateway is not None:
            pending[GATEWAY] = self._gateway
        last: dict[str, sentinels.SyncState] = {}

        def synced() -> bool:
            for name, client in list(pending.items()):
                self._check_rejections(name, client, version)
                dump = self._admin_json(client, "/config_dump")
                state = sentinels.sync_state(dump, client.namespace if name != GATEWAY else spaces[0], version)
                if name == GATEWAY and not keeps_request_ids(dump):
                    state = replace(state, has_route=False)  # the request-id filter is not in yet: not synced
                last[name] = state
                if state.rejected:
                    raise ConfigRejected(f"{client.pod} ({name})", "config", str(version), "; ".join(state.rejected))
                if state.synced:
                    del pending[name]
            return not pending

        def timed_out() -> str:
            seen = ", ".join(f"{n}: route v{version} {'seen' if s.has_route else 'missing'}, cluster "
                             f"{'seen' if s.has_cluster else 'missing'}" for n, s in sorted(last.items()) if n in pending)
            return (f"config version {version}: client sidecars did not get istiod's push within "
                    f"{self._sync_timeout_s:g}s ({seen}); is istiod running? {self._describe_pods(spaces)}")

        wait_until(synced, self._sync_timeout_s, self._poll_s, message=timed_out)

    def _check_rejections(self, name: str, proxy: _Client, version: int) -> None:
        """ConfigRejected when the proxy's ``update_rejected`` counters grew since they were last accounted for:
        Envoy keeps no ``error_state`` in its config_dump for a rejected CDS or RDS update (recordings/
        real_config_dump_rds_rejected.json), so the sentinels alone would report the stale config as synced."""
        now = self._stats(proxy, REJECTED_STATS)
        grown = rejected_growth(self._rejected.get(name), now)
        self._rejected[name] = now
        if grown:
            raise ConfigRejected(f"{proxy.pod} ({name})", "config", str(version),
                                 f"Envoy counted rejected updates ({', '.join(grown)}); its config_dump keeps no "
                                 f"message for CDS and RDS: istiod's /debug/syncz on port 15014 has it")

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    # --- deploy --------------------------------------------------------------------------------

    def _ensure_namespaces(self, topology: Topology) -> None:
        for name in namespaces(topology):
            manifest = render_namespace(name, self._render)
            real = manifest["metadata"]["name"]
            self._touched_namespaces.add(real)
            if real in self._created_namespaces or real in self._swept:
                continue
            if self._api.get("v1", "Namespace", None, real) is not None:
                self._sweep(real)  # a namespace the run did not make keeps its labels: pods ask for injection themselves
                continue
            self._api.apply(manifest)
            self._created_namespaces.append(real)

    def _sweep(self, namespace: str) -> None:
        """Delete what an earlier run that crashed left in ``namespace`` (objects with another run's label):
        its VirtualServices would still route, its Deployments would still back the Services. A namespace
        is one run's at a time (kind: the cases' own or ``mh-<worker>-``; a cluster: ``mh-<run id>-``)."""
        self._swept.add(namespace)
        others = f"{RUN_LABEL},{RUN_LABEL}!={self._render.run_id}"
        for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service"), *ISTIO_KINDS):
            for obj in self._api.list(api_version, kind, namespace, others):
                self._api.delete(api_version, kind, namespace, obj["metadata"]["name"])

    def _delete_unwanted(self, wanted: list[dict[str, Any]]) -> None:
        keep = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in wanted}
        for namespace in sorted(self._touched_namespaces):
            for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service")):
                for obj in self._api.list(api_version, kind, namespace, f"{RUN_LABEL}={self._render.run_id}"):
                    name = obj["metadata"]["name"]
                    if (kind, namespace, name) not in keep:
                        self._api.delete(api_version, kind, namespace, name)
                        self._drop_pod_connections(name)

    def _wait_rollout(self, topology: Topology) -> None:
        """Every instance and client has exactly one ready pod, and pods of removed ones are gone."""
        wanted = self._workloads(topology)
        spaces = sorted({ns for ns, _ in wanted.values()})
        problems: list[str] = []

        def ready() -> bool:
            problems[:] = rollout_problems(wanted, {ns: self._run_pods(ns) for ns in spaces})
            return not problems

        wait_until(ready, self._rollout_timeout_s, self._poll_s, message=lambda: (
            f"deploy: pods not ready after {self._rollout_timeout_s:g}s: {'; '.join(problems[:10])}. "
            f"{self._describe_pods(spaces)}"))

    def _wait_endpoints(self, topology: Topology) -> None:
        """Each client sidecar's cluster ``outbound|<port>||<fqdn>`` has one healthy host per instance."""
        expected: dict[str, int] = {}
        for service in topology.services:
            count = sum(service.replica_count(v) for v in service.versions)
            fqdn = f"{service.name}.{self._render.namespace(service.namespace)}.svc.cluster.local"
            expected.update({f"outbound|{p.number}||{fqdn}": count for p in service.ports})
        wrong: dict[str, str] = {}

        def seen() -> bool:
            wrong.clear()
            for name, client in self._clients.items():
                hosts = healthy_hosts(self._admin_json(client, "/clusters?format=json"))
                wrong.update({f"{name}: {c}": f"{hosts.get(c, 0)} of {n}" for c, n in expected.items()
                              if hosts.get(c, 0) != n})
            return not wrong

        wait_until(seen, self._rollout_timeout_s, self._poll_s, message=lambda: (
            f"deploy: client sidecars did not see the new endpoints within {self._rollout_timeout_s:g}s: "
            + ", ".join(f"{k} has {v} healthy hosts" for k, v in sorted(wrong.items())[:10])))

    def _workloads(self, topology: Topology) -> dict[str, tuple[str, str]]:
        """Instance or client name -> (namespace, name): one ready pod each."""
        out: dict[str, tuple[str, str]] = {}
        for instance, (svc, _) in topology.instances().items():
            service = topology.service(svc)
            assert service is not None, svc
            out[instance] = (self._render.namespace(service.namespace), instance)
        out.update({c.name: (self._render.namespace(c.namespace), c.name) for c in topology.clients})
        return out

    def _run_pods(self, namespace: str) -> list[dict[str, Any]]:
        return self._api.list("v1", "Pod", namespace, f"{RUN_LABEL}={self._render.run_id}")

    def _connect(self, topology: Topology) -> None:
        """Control and admin connections to each client pod (new pods get new ones)."""
        for client in topology.clients:
            namespace = self._render.namespace(client.namespace)
            pod = self._ready_pod(namespace, client.name)
            known = self._clients.get(client.name)
            if known is not None and known.pod == pod:
                continue
            if known is not None:  # a replaced pod: its connections and port-forwards go with it
                self._release(known)
            control_port = self._open_forward(namespace, pod, CONTROL_PORT)
            admin_port = self._open_forward(namespace, pod, ADMIN_PORT)
            self._clients[client.name] = _Client(
                pod=pod, namespace=namespace, control=ControlClient(control_port, f"{client.name} (pod {pod})"),
                admin=loopback_client(f"http://127.0.0.1:{admin_port}", timeout=_ADMIN_TIMEOUT_S))
        for name in [n for n in self._clients if topology.client(n) is None]:
            self._release(self._clients.pop(name))
        self._connect_gateway(topology.gateway)

    def _release(self, proxy: _Client) -> None:
        """Close a proxy's connections and the port-forwards to its pod."""
        if proxy.control is not None:
            proxy.control.close()
        proxy.admin.close()
        for key in [k for k in self._forwards if k[:2] == (proxy.namespace, proxy.pod)]:
            self._forwards.pop(key)()

    def _connect_gateway(self, wanted: bool) -> None:
        """The gateway proxy's admin connection while the topology has a gateway (its pod can change)."""
        if not wanted:
            if self._gateway is not None:
                self._release(self._gateway)
            self._gateway = None
            return
        selector = ",".join(f"{k}={v}" for k, v in GATEWAY_LABELS.items())
        pods = sorted(str(p["metadata"]["name"]) for p in self._api.list("v1", "Pod", ISTIO_NAMESPACE, selector)
                      if is_ready(p))
        if not pods:
            raise MeshError(f"no ready ingress gateway pod ({selector}) in {ISTIO_NAMESPACE}; check it with "
                            f"kubectl -n {ISTIO_NAMESPACE} get pods -l {selector}")
        if self._gateway is not None and self._gateway.pod in pods:
            return
        if self._gateway is not None:
            self._release(self._gateway)
        # Several replicas: the harness reads one; a cluster of its own (kind) runs one.
        admin_port = self._open_forward(ISTIO_NAMESPACE, pods[0], ADMIN_PORT)
        self._gateway = _Client(pod=pods[0], namespace=ISTIO_NAMESPACE, control=None, admin=loopback_client(
            f"http://127.0.0.1:{admin_port}", timeout=_ADMIN_TIMEOUT_S))

    def _ready_pod(self, namespace: str, instance: str) -> str:
        pods = [p for p in self._run_pods(namespace) if p["metadata"].get("labels", {}).get(INSTANCE_LABEL) == instance
                and is_ready(p)]
        if len(pods) != 1:
            raise MeshError(f"expected one ready pod of {namespace}/{instance}, found {len(pods)}")
        return str(pods[0]["metadata"]["name"])

    def _app_control(self, namespace: str, instance: str) -> ControlClient:
        pod = self._ready_pod(namespace, instance)
        control = self._controls.get(pod)
        if control is None:
            control = self._controls[pod] = ControlClient(self._open_forward(namespace, pod, CONTROL_PORT),
                                                          f"{instance} (pod {pod})")
        return control

    def _open_forward(self, namespace: str, pod: str, port: int) -> int:
        local, close = self._forward(namespace, pod, port)
        self._forwards[(namespace, pod, port)] = close
        return local

    def _drop_pod_connections(self, workload: str) -> None:
        """Close the port-forwards of pods that belonged to a removed Deployment (pod names start with it)."""
        for key in [k for k in self._forwards if k[1].startswith(f"{workload}-")]:
            self._forwards.pop(key)()
            control = self._controls.pop(key[1], None)
            if control is not None:
                control.close()

    # --- evidence ------------------------------------------------------------------------------

    def _join_access_log(self, name: str, client: _Client, records: list[dict[str, Any]]) -> list[Observation]:
        """The batch's Observations (from the echo app's ``records``), joined to the sidecar's access log."""
        join = BatchJoin(records)

        def joined() -> bool:
            text = self._api.pod_log(client.namespace, client.pod, PROXY_CONTAINER, since_time=client.cursor.since_time())
            lines, client.cursor = new_lines(text, client.cursor)
            client.unclaimed.add(parse_entry(entry) for entry in access_log_entries(lines))
            join.add(client.unclaimed.take(join.wants()))
            return join.missing == 0

        wait_until(joined, ACCESS_LOG_TIMEOUT_S, self._poll_s, message=lambda: (
            f"sidecar of {name} (pod {client.pod}): {join.missing} of {len(records)} answered "
            f"requests have no access log line after {ACCESS_LOG_TIMEOUT_S:g}s (e.g. request ids "
            f"{join.missing_ids()}); is the mesh's accessLogEncoding JSON (istio_install.py)?"))
        return join.joined()

    def _stats(self, client: _Client, regex: str | None) -> dict[str, int]:
        params = {"format": "json", **({"filter": regex} if regex else {})}
        body = self._admin_json(client, "/stats", params)
        # filtered here too: Envoy's filter saves the transfer, this keeps the result exact
        return {e["name"]: e["value"] for e in body.get("stats", [])
                if isinstance(e.get("value"), int) and (regex is None or re.search(regex, e["name"]))}

    def _admin_json(self, client: _Client, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = client.admin.get(path, params=params)
        except httpx.HTTPError as exc:
            raise MeshError(f"sidecar admin of {client.pod}: GET {path} failed through the port-forward: {exc}") from exc
        if response.status_code != 200:
            raise MeshError(f"sidecar admin of {client.pod}: GET {path} answered {response.status_code}")
        body = response.json()
        if not isinstance(body, dict):
            raise MeshError(f"sidecar admin of {client.pod}: GET {path} did not answer a JSON object")
        return body

    def _describe_pods(self, spaces: Iterable[str]) -> str:
        """Pod phases, waiting reasons and recent warning events: what a failed wait shows."""
        lines: list[str] = []
        try:
            for namespace in spaces:
                lines += [f"pod {namespace}/{pod_summary(p)}" for p in self._run_pods(namespace)]
                events = self._api.list("v1", "Event", namespace, field_selector="type=Warning")
                lines += [f"event {e.get('involvedObject', {}).get('name')}: {e.get('reason')}: {e.get('message')}"
                          for e in events[-10:]]
        except MeshError as exc:
            lines.append(f"(could not read pods and events: {exc})")
        return "Pods and events: " + ("; ".join(lines) if lines else "none")

    def _proxy(self, workload: str) -> _Client:
        """A client's sidecar, or the gateway (``GATEWAY``)."""
        if workload == GATEWAY and self._gateway is not None:
            return self._gateway
        return self._client(workload)

    def _client(self, workload: str) -> _Client:
        client = self._clients.get(workload)
        if client is None:
            raise MeshError(f"no client workload {workload!r} in the mesh (clients: {', '.join(self._clients)})")
        return client

    def _deployed(self) -> Topology:
        if self._topology is None:
            raise MeshError("nothing is deployed yet; call deploy() first")
        return self._topology

    # --- cleanup -------------------------------------------------------------------------------

    def _close_connections(self) -> None:
        for client in [*self._clients.values(), *([self._gateway] if self._gateway else [])]:
            if client.control is not None:
                client.control.close()
            client.admin.close()
        for control in self._controls.values():
            control.close()
        closes = list(self._forwards.values())
        self._forwards.clear()
        run_all(closes)

    def _delete_run_objects(self) -> None:
        """Namespaces the run made go whole (waited for, bounded); in others, the run's labelled objects go."""
        selector = f"{RUN_LABEL}={self._render.run_id}"
        kinds = [("apps/v1", "Deployment"), ("v1", "Service"), *ISTIO_KINDS]
        for namespace in sorted(self._touched_namespaces - set(self._created_namespaces)):
            for api_version, kind in kinds:
                for obj in self._api.list(api_version, kind, namespace, selector):
                    self._api.delete(api_version, kind, namespace, obj["metadata"]["name"])
        for namespace in self._created_namespaces:
            self._api.delete("v1", "Namespace", None, namespace)
        left = list(self._created_namespaces)

        def gone() -> bool:
            left[:] = [n for n in left if self._api.get("v1", "Namespace", None, n) is not None]
            return not left

        wait_until(gone, NAMESPACE_DELETE_TIMEOUT_S, self._poll_s, message=lambda: (
            f"close: namespaces {', '.join(left)} still terminating after "
            f"{NAMESPACE_DELETE_TIMEOUT_S:g}s; check them with kubectl get namespace"))


# --- pure helpers ------------------------------------------------------------------------------


REJECTED_STATS = r"update_rejected$"
"""Envoy's per-xDS-subscription counters of rejected updates (``cluster_manager.cds``, ``listener_manager.lds``,
``http.<prefix>.rds.<route config>``, per-cluster EDS)."""


def rejected_growth(before: dict[str, int] | None, now: dict[str, int]) -> list[str]:
    """``<counter> +<n>`` for every rejection counter that grew (pure); nothing for a proxy seen the first time."""
    if before is None:
        return []
    return [f"{name} +{value - before.get(name, 0)}" for name, value in sorted(now.items()) if value > before.get(name, 0)]


def sync_export(gateway: bool) -> tuple[str, ...]:
    """Where the sentinels are visible: their namespace, and the gateway's when one is read (a gateway proxy
    sees only objects exported to its own namespace)."""
    return (".", ISTIO_NAMESPACE) if gateway else (".",)


def sync_objects(namespace: str, version: int, labels: dict[str, str], *, gateway: bool) -> list[dict[str, Any]]:
    """The sentinels of ``version`` in ``namespace`` (ServiceEntry, VirtualService, DestinationRule); with a
    gateway, a sentinel Gateway server that their VirtualService binds to as well, so that the gateway's route
    table carries the sentinel route too."""
    entry = sentinels.sentinel_service_entry(namespace, version, labels, export_to=sync_export(gateway))
    if not gateway:
        return [entry, *sentinels.sentinels(namespace, version, labels)]
    bound = (f"{namespace}/{sentinels.SYNC_NAME}",)
    return [entry, sentinels.sentinel_gateway(namespace, version, dict(GATEWAY_LABELS), labels=labels),
            *sentinels.sentinels(namespace, version, labels, export_to=sync_export(True), gateways=bound)]


def gateway_address(gateway_ip: str, url: str) -> str:
    """``ip:port`` of the gateway Service for the URL's port (80 by default): a Gateway server's port is
    the Service's port, which istioctl maps to the pod's listener (80 -> 8080)."""
    port = urlsplit(url).port or 80
    return f"{gateway_ip}:{port}"


def rollout_problems(wanted: dict[str, tuple[str, str]], pods_by_ns: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Why the pods do not match ``wanted`` (instance -> (namespace, name)) yet; empty when they do (pure)."""
    problems: list[str] = []
    by_instance: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for namespace, pods in pods_by_ns.items():
        for pod in pods:
            instance = pod["metadata"].get("labels", {}).get(INSTANCE_LABEL, "?")
            by_instance.setdefault((namespace, instance), []).append(pod)
    for instance, key in sorted(wanted.items()):
        pods = by_instance.pop(key, [])
        ready = [p for p in pods if is_ready(p)]
        if len(ready) != 1 or len(pods) != 1:
            shown = ", ".join(pod_summary(p) for p in pods) or "no pod"
            problems.append(f"{instance}: {shown}")
    problems += [f"{ns}/{inst}: removed, {len(pods)} pod(s) still terminating" for (ns, inst), pods in sorted(by_instance.items())]
    return problems


def healthy_hosts(clusters: dict[str, Any]) -> dict[str, int]:
    """Cluster name -> healthy hosts, from the admin ``/clusters?format=json`` (pure)."""
    out: dict[str, int] = {}
    for cluster in clusters.get("cluster_statuses", []):
        hosts = cluster.get("host_statuses", [])
        out[cluster["name"]] = sum(1 for h in hosts if h.get("health_status", {}).get("eds_health_status", "HEALTHY")
                                   == "HEALTHY" and not _failed(h))
    return out


def _failed(host: dict[str, Any]) -> bool:
    status = host.get("health_status", {})
    return any(v is True for k, v in status.items() if k.startswith("failed_"))


def access_log_entries(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The JSON access log lines among a sidecar's stdout (Envoy and pilot-agent log other lines there too)."""
    out: list[dict[str, Any]] = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            decoded = json.loads(line)
        except ValueError:
            continue  # a JSON-looking line of another writer; not an access log entry
        if isinstance(decoded, dict) and "response_code" in decoded:
            out.append(decoded)
    return out


def envoy_version(server_info: dict[str, Any]) -> str:
    """``<sha>/1.38.3-dev/Clean/RELEASE/BoringSSL`` -> ``1.38.3-dev`` (pure)."""
    parts = str(server_info.get("version", "")).split("/")
    return parts[1] if len(parts) > 1 else str(server_info.get("version", "unknown"))


