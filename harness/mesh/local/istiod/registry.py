"""What real istiod needs to configure the local mesh, as Istio objects and node metadata (pure).

istiod runs without Kubernetes here (``--registries=`` and a ``--configDir``), so the topology's
services reach it as objects it reads from files, the way a VM workload joins a mesh: a
``ServiceEntry`` (MESH_INTERNAL, STATIC, a workload selector) per service and a ``WorkloadEntry``
per app instance. istiod then names clusters and virtual hosts exactly as for a Kubernetes Service
(``outbound|9080|v1|reviews.default.svc.cluster.local``; the short-name domains come from the proxy's
DNS domain), and subsets select instances by their labels.

Every proxy (client sidecar or the ingress gateway) gets its own loopback address, in a /24 block
chosen per mesh: with ``INTERCEPTION_MODE=NONE`` istiod binds outbound listeners to 127.0.0.1 and
Envoy's SO_REUSEPORT would let two sidecars (or two meshes) share one silently, so a ``Sidecar``
per client moves its listeners to its own address (``egress[].bind``), and the gateway's servers
get ``bind`` too. The apps stay on 127.0.0.1 on their own ports (``WorkloadEntry.ports``).

What differs from a cluster is listed in the README ("Two control planes"): no ClusterIP domain, the
registry is ``External`` rather than ``Kubernetes``, endpoints are never unready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.istio.manifest import to_manifest
from harness.istio.model import Gateway, IstioObject, ServiceEntry
from harness.mesh.capabilities import MESHES
from harness.mesh.gateway_request_ids import gateway_keeps_request_ids
from harness.mesh.local.plane import Instance
from harness.topology import CLUSTER_DOMAIN, INGRESS_GATEWAY, Client, Service, ServicePort, Topology

API_VERSION = "networking.istio.io/v1"
ROOT_NAMESPACE = "istio-system"
PROXY_LABEL = "mesh-harness.io/proxy"
"""A label every proxy carries (its workload name), so that its Sidecar selects it and nothing else."""
INSTANCE_LABEL = "mesh-harness.io/instance"
APP_ADDRESS = "127.0.0.1"
"""Where every app instance listens (its own ports); no proxy uses this address."""
GATEWAY_HOST = 2
FIRST_CLIENT_HOST = 10


@dataclass(frozen=True)
class Proxy:
    """One Envoy istiod configures: its node id, address and the metadata istiod reads from it."""

    name: str
    """The workload (``client``, ``source-labels``) or ``INGRESS_GATEWAY.name``."""
    address: str
    namespace: str
    labels: tuple[tuple[str, str], ...]
    router: bool

    @property
    def node_id(self) -> str:
        """``type~ip~pod.namespace~namespace.svc.cluster.local``, as pilot-agent builds it (``model.ParseServiceNode``)."""
        kind = "router" if self.router else "sidecar"
        return f"{kind}~{self.address}~{self.name}-0.{self.namespace}~{self.namespace}.{CLUSTER_DOMAIN}"

    def metadata(self, istio_version: str) -> dict[str, Any]:
        """Node metadata (``model.NodeMetadata``: every value a string, ``INSTANCE_IPS`` comma-separated)."""
        return {
            "ISTIO_VERSION": istio_version,
            "NAMESPACE": self.namespace,
            "INTERCEPTION_MODE": "NONE",
            "INSTANCE_IPS": self.address,
            "CLUSTER_ID": "Kubernetes",
            "LABELS": {**dict(self.labels), PROXY_LABEL: self.name},
            "WORKLOAD_NAME": self.name,
        }


def proxies(topology: Topology, block: str) -> dict[str, Proxy]:
    """Every client sidecar and the ingress gateway, with addresses in ``block`` (``127.A.B``)."""
    out = {c.name: _client_proxy(c, f"{block}.{FIRST_CLIENT_HOST + i}") for i, c in enumerate(topology.clients)}
    gateway = INGRESS_GATEWAY
    out[gateway.name] = Proxy(gateway.name, f"{block}.{GATEWAY_HOST}", gateway.namespace, gateway.labels, router=True)
    return out


def _client_proxy(client: Client, address: str) -> Proxy:
    return Proxy(client.name, address, client.namespace, client.labels, router=False)


def registry_objects(topology: Topology, apps: Mapping[str, Instance], clients: Sequence[Proxy]) -> list[dict[str, Any]]:
    """The services of ``topology`` (ServiceEntry + a WorkloadEntry per running instance in ``apps``)
    and a Sidecar per client proxy that binds its listeners to its own address."""
    out: list[dict[str, Any]] = []
    instances = topology.instances()
    for service in topology.services:
        if service.external:
            continue  # reached only through the case's ServiceEntry (case_objects)
        out.append(_service_entry(service))
        for instance, (name, version) in sorted(instances.items()):
            if name == service.name and instance in apps:
                out.append(_workload_entry(service, version, instance, apps[instance]))
    out.extend(_sidecar(proxy) for proxy in clients)
    out.append(gateway_keeps_request_ids(ROOT_NAMESPACE, "mesh-harness-gateway-request-id"))
    return out


def _service_entry(service: Service) -> dict[str, Any]:
    ports = []
    for port in service.ports:
        entry: dict[str, Any] = {"name": port.name, "number": port.number}
        protocol = _protocol(port)
        if protocol is not None:
            entry["protocol"] = protocol
        ports.append(entry)
    return _object("ServiceEntry", service.name, service.namespace, {
        "hosts": [service.fqdn],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "ports": ports,
        "workloadSelector": {"labels": {"app": service.name}},
    })


def _protocol(port: ServicePort) -> str | None:
    """Istio's protocol for a Kubernetes port name, so the ServiceEntry port means what the Service's would
    (None: istiod sniffs it, as for a Service port with an unknown name)."""
    return port.istio_protocol


def _workload_entry(service: Service, version: str, instance: str, ports: Instance) -> dict[str, Any]:
    real = {p.name: (ports.grpc_port if p.protocol == "grpc" else ports.http_port) for p in service.ports}
    return _object("WorkloadEntry", instance, service.namespace, {
        "address": APP_ADDRESS,
        "labels": {"app": service.name, "version": version, INSTANCE_LABEL: instance},
        "ports": real,
    })


def _sidecar(proxy: Proxy) -> dict[str, Any]:
    """Moves every outbound listener of ``proxy`` from 127.0.0.1 to its own address (catch-all egress bind)."""
    return _object("Sidecar", f"mesh-harness-{proxy.name}", proxy.namespace, {
        "workloadSelector": {"labels": {PROXY_LABEL: proxy.name}},
        "egress": [{"bind": proxy.address, "hosts": ["*/*"]}],
    })


def case_objects(objects: Sequence[IstioObject], topology: Topology, apps: Mapping[str, Instance],
                 gateway: Proxy) -> list[dict[str, Any]]:
    """The case's objects as written, with what a cluster would supply and loopback cannot: a
    ServiceEntry endpoint on 127.0.0.1 stands for the instances of the external app that serves the
    host (their real ports), and each Gateway server binds to the gateway's own address."""
    out = []
    for obj in objects:
        manifest = to_manifest(obj, obj.metadata.namespace, {})
        if not manifest["metadata"]["labels"]:
            del manifest["metadata"]["labels"]
        if isinstance(obj, ServiceEntry):
            _point_at_external_app(manifest["spec"], topology, apps)
        elif isinstance(obj, Gateway):
            for server in manifest["spec"].get("servers", []):
                server["bind"] = gateway.address
        out.append(manifest)
    return out


def _point_at_external_app(spec: dict[str, Any], topology: Topology, apps: Mapping[str, Instance]) -> None:
    hosts = spec.get("hosts", [])
    service = topology.external_app(hosts[0]) if hosts else None
    if service is None or not spec.get("endpoints"):
        return
    real: list[dict[str, Any]] = []
    for instance, (name, _version) in sorted(topology.instances().items()):
        if name != service.name or instance not in apps:
            continue
        ports = {p["name"]: (apps[instance].grpc_port if p.get("protocol", "").upper() in ("GRPC", "GRPC-WEB")
                             else apps[instance].http_port) for p in spec.get("ports", [])}
        real.append({"address": APP_ADDRESS, "ports": ports})
    spec["endpoints"] = real


def mesh_config() -> dict[str, Any]:
    """The mesh config istiod runs with, each setting for a reason of this machine.

    ``enableAutoMtls: false``: auto mTLS would put SDS-backed TLS on every cluster, and there is no
    SDS server (pilot-agent's job) here, so clusters would never finish warming. Access logs go to
    each Envoy's stdout as JSON, as the kind install configures them (the harness reads them there).
    REGISTRY_ONLY: the local mesh has no original-destination passthrough (no iptables), so an
    unknown host gets Istio's ``BlackHoleCluster`` 502 instead of leaving the machine.
    """
    return {
        "rootNamespace": ROOT_NAMESPACE,
        "enableAutoMtls": False,
        "enableTracing": False,
        "accessLogFile": "/dev/stdout",
        "accessLogEncoding": "JSON",
        "outboundTrafficPolicy": {"mode": MESHES["local-istiod"].outbound_policy},
    }


def _object(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}
