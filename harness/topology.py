"""Which services, versions and client workloads a mesh runs.

Names follow Istio's Bookinfo so that Istio's docs read the same against the harness: a caller
workload ``client`` and a service ``reviews`` with versions v1 and v2, HTTP on 9080 and gRPC on
7070. Pure data: both meshes (local processes, Kubernetes Deployments) are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_NAMESPACE = "default"
CLUSTER_DOMAIN = "svc.cluster.local"


ISTIO_PORT_PROTOCOLS = {
    "tcp": "TCP",
    "udp": "UDP",
    "grpc": "GRPC",
    "http": "HTTP",
    "http_proxy": "HTTP_PROXY",
    "http2": "HTTP2",
    "https": "HTTPS",
    "tls": "TLS",
    "mongo": "Mongo",
    "redis": "Redis",
    "mysql": "MySQL",
}
"""istiod's ``protocol.Parse`` (``pkg/config/protocol/instance.go``): lower-cased name -> canonical protocol.
Its ``"grpc-web"`` case cannot match a port-name prefix (cut at the first ``-``), and its ``"DoubleHBONE"``
case never matches a lower-cased string, so neither is listed; ``ConvertProtocol`` finds GRPC-Web itself."""
GRPC_WEB = "GRPC-Web"
WELL_KNOWN_TCP_PORTS = frozenset({25, 53, 3306, 27017})
"""SMTP, DNS, MySQL, MongoDB: ``ConvertProtocol`` makes an unknown name on these ports TCP (no sniffing)."""
HTTP_ISTIO_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", GRPC_WEB})
"""Protocols whose port istiod serves with an HTTP connection manager (``IsHTTP``, less ``HTTP_PROXY``,
which is for Sidecar egress listeners, not service ports)."""


def _go_lower(s: str) -> str:
    """Go's ``strings.ToLower`` (simple case mapping): as ``str.lower`` except U+0130 becomes a plain ``i``."""
    return "".join("i" if c == "\u0130" else c.lower() for c in s)


@dataclass(frozen=True)
class ServicePort:
    """A named service port; the name carries the protocol as in Kubernetes (``http``, ``grpc``, ``tcp-db``)."""

    name: str
    number: int

    @property
    def istio_protocol(self) -> str | None:
        """The protocol istiod gives this Kubernetes service port (TCP, no ``appProtocol``), or None when
        istiod has none for it and sniffs the protocol (``UnsupportedProtocol``).

        Exactly ``kube.ConvertProtocol`` (``pkg/config/kube/conversion.go``) as
        ``serviceregistry/kube/conversion.go:convertPort`` calls it: a name starting with ``grpc-web``
        in any case is ``"GRPC-Web"``; otherwise the part before the first ``-``, lower-cased, is looked
        up in ``protocol.Parse``'s table (``"TCP"``, ``"UDP"``, ``"GRPC"``, ``"HTTP"``, ``"HTTP_PROXY"``,
        ``"HTTP2"``, ``"HTTPS"``, ``"TLS"``, ``"Mongo"``, ``"Redis"``, ``"MySQL"``: ``ISTIO_PORT_PROTOCOLS``);
        an unknown name is ``"TCP"`` on the well-known ports 25, 53, 3306 and 27017 and None elsewhere.
        The values are what a ServiceEntry ``ports[].protocol`` field takes (``protocol.Parse`` reads it back).
        """
        head = self.name[: len(GRPC_WEB)]
        if head.isascii() and head.lower() == GRPC_WEB.lower():
            return GRPC_WEB
        found = ISTIO_PORT_PROTOCOLS.get(_go_lower(self.name.split("-", 1)[0]))
        if found is None and self.number in WELL_KNOWN_TCP_PORTS:
            return "TCP"
        return found

    @property
    def protocol(self) -> str:
        """What the app behind the port speaks, from ``istio_protocol``: ``grpc`` for GRPC and GRPC-Web,
        ``http2`` for HTTP2, else ``http`` (the echo app's HTTP port also serves TCP and sniffed ports)."""
        istio = self.istio_protocol
        if istio in ("GRPC", GRPC_WEB):
            return "grpc"
        if istio == "HTTP2":
            return "http2"
        return "http"


DEFAULT_PORTS = (ServicePort("http", 9080), ServicePort("grpc", 7070))


@dataclass(frozen=True)
class Service:
    """A service with versions; each version runs ``replicas[version]`` instances labelled ``version: vN``."""

    name: str
    versions: tuple[str, ...] = ("v1", "v2")
    replicas: tuple[tuple[str, int], ...] = ()
    ports: tuple[ServicePort, ...] = DEFAULT_PORTS
    namespace: str = DEFAULT_NAMESPACE
    knobs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """Echo-app defaults (``status``, ``delay``, ``fail-first``, ``grpc-status``) keyed by a version
    (every instance of it) or by an instance name (``reviews-v1-2``: one bad replica among good ones)."""
    external: bool = False
    """An app outside the mesh: not in the service registry (no cluster or virtual host of its own),
    reached only through a ServiceEntry whose host's first label is its name (``api.example.com`` -> ``api``)."""

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.{CLUSTER_DOMAIN}"

    def replica_count(self, version: str) -> int:
        return dict(self.replicas).get(version, 1)

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.number == number), None)

    def instance_knobs(self, version: str, instance: str) -> dict[str, str]:
        """The echo-app defaults for one instance: its version's, then its own on top."""
        by_key = {key: dict(values) for key, values in self.knobs}
        return {**by_key.get(version, {}), **by_key.get(instance, {})}


@dataclass(frozen=True)
class Client:
    """A caller workload with its own sidecar. Its labels feed ``sourceLabels`` matching."""

    name: str = "client"
    labels: tuple[tuple[str, str], ...] = (("app", "client"), ("version", "v1"))
    namespace: str = DEFAULT_NAMESPACE
    source_ip: str = "127.0.0.1"
    """Loopback address the client's traffic leaves from (distinct per client for useSourceIp hashing)."""

    @property
    def node_id(self) -> str:
        return f"{self.name}.{self.namespace}"


INGRESS_GATEWAY = Client(
    "istio-ingressgateway", labels=(("app", "istio-ingressgateway"), ("istio", "ingressgateway")), namespace="istio-system"
)
"""The ingress gateway workload, labelled and placed as ``istioctl install`` does (a Gateway selects it
with ``selector: {istio: ingressgateway}``). It is a proxy only: no app of its own."""


@dataclass(frozen=True)
class Topology:
    """Everything a mesh deploys for a run."""

    services: tuple[Service, ...] = field(default_factory=lambda: (Service("reviews"),))
    clients: tuple[Client, ...] = field(default_factory=lambda: (Client(),))
    gateway: bool = False
    """Run the ingress gateway (``INGRESS_GATEWAY``); a mesh also runs it while a Gateway object is applied."""

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def client(self, name: str) -> Client | None:
        return next((c for c in self.clients if c.name == name), None)

    def external_app(self, host: str) -> Service | None:
        """The external app that serves a ServiceEntry host: the one named by its first label
        (``api.example.com`` -> ``api``), as every mesh reads a case's ServiceEntry."""
        return next((s for s in self.services if s.external and s.name == host.split(".")[0]), None)

    def instances(self) -> dict[str, tuple[str, str]]:
        """Instance name (``reviews-v1-0``) -> (service, version), for every replica of every version."""
        return {
            f"{s.name}-{v}-{i}": (s.name, v)
            for s in self.services for v in s.versions for i in range(s.replica_count(v))
        }

    def service_ports(self) -> tuple[int, ...]:
        """Every distinct port of a mesh (not external) service, sorted: an outbound listener each on every sidecar."""
        return tuple(sorted({p.number for s in self.services if not s.external for p in s.ports}))


DEFAULT_TOPOLOGY = Topology()
