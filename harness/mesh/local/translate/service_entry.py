"""ServiceEntry hosts as services of the local mesh: which app serves each, and their DNS clusters.

istiod turns each ServiceEntry host into a service (``serviceentry/conversion.go``): every sidecar and
gateway gets ``outbound|<port>||<host>`` clusters and a virtual host per port, exactly as for a
Kubernetes service, so a VirtualService can route, fault or retry it. STATIC resolution gives an EDS
cluster; DNS a ``STRICT_DNS`` cluster with the endpoints inline (``cluster_builder.go:buildCluster``:
c-ares resolver, V4_ONLY for an IPv4 proxy, mesh ``dnsRefreshRate`` 60s, 100ms jitter, DNS TTL respected).

The local mesh has no outside world: a ServiceEntry host is served by the case's *external* app
(``Service.external``) named by the host's first label (``api.example.com`` -> ``api``), and its one
endpoint, ``127.0.0.1``, stands for that app's instances on the matching port. What else a
ServiceEntry may say is refused in ``support.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import Issue
from harness.istio.model import IstioObject, ServiceEntry
from harness.istio.semantics import creation_order
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.topology import ServicePort, Topology
from harness.yamlsource import PathKey, format_path

DNS_REFRESH_RATE = "60s"
"""Mesh config ``dnsRefreshRate`` default."""
DNS_JITTER = "0.100s"
"""``PILOT_DNS_JITTER_DURATION`` default."""
CARES_UDP_MAX_QUERIES = 100
"""``PILOT_DNS_CARES_UDP_MAX_QUERIES`` default."""

_Problem = Callable[[PathKey, str], None]


@dataclass(frozen=True)
class ExternalHost:
    """One ServiceEntry host and the external app that serves it."""

    host: str
    namespace: str
    """The ServiceEntry's namespace: the service namespace of its DestinationRule lookup."""
    export_to: tuple[str, ...]
    """The ServiceEntry's ``exportTo`` (empty: every namespace)."""
    service: str
    """The external app (``Service.external``) whose instances are the endpoints."""
    ports: tuple[ServicePort, ...]
    dns: bool
    """Resolution DNS (a STRICT_DNS cluster) rather than STATIC (EDS)."""


def external_hosts(objects: Sequence[IstioObject], topology: Topology) -> tuple[list[ExternalHost], list[Issue]]:
    """The hosts of every ServiceEntry, oldest entry first, and an Issue for each one no external app can serve.

    A host claimed by an older ServiceEntry is refused in a newer one (istiod would merge their ports).
    """
    hosts: list[ExternalHost] = []
    issues: list[Issue] = []
    owner: dict[str, ServiceEntry] = {}
    entries = sorted((o for o in objects if isinstance(o, ServiceEntry)), key=creation_order)
    for entry in entries:

        def problem(path: PathKey, message: str, entry: ServiceEntry = entry) -> None:
            src = entry.source
            issues.append(Issue(message, src.file if src else None, src.line_of(path) if src else None,
                                entry.ref, format_path(path)))

        for i, host in enumerate(entry.spec.hosts):
            first = owner.setdefault(host.lower(), entry)
            if first is not entry:
                problem(("spec", "hosts", i), f"already a host of {first.ref}; merging ServiceEntries is not "
                        "supported by the local mesh yet; put the ports in one ServiceEntry, or run with --mesh kind")
                continue
            served = _served(entry, i, topology, problem)
            if served is not None:
                hosts.append(served)
    return hosts, issues


def _served(entry: ServiceEntry, index: int, topology: Topology, problem: _Problem) -> ExternalHost | None:
    host = entry.spec.hosts[index].lower()
    name = host.split(".")[0]
    app = topology.service(name)
    if app is None or not app.external:
        known = ", ".join(s.name for s in topology.services if s.external) or "none"
        problem(("spec", "hosts", index), f"no external app {name!r} serves this host (external apps: {known}); "
                f"the local mesh serves a ServiceEntry host from the app named by its first label: declare "
                f"services: {{{name}: {{external: true, ports: [...]}}}} in the case")
        return None
    ports: list[ServicePort] = []
    for k, port in enumerate(entry.spec.ports):
        if app.port(port.number) is None:
            have = ", ".join(str(p.number) for p in app.ports)
            problem(("spec", "ports", k, "number"), f"external app {name!r} has no port {port.number} (its ports: "
                    f"{have}); add {{name: http, number: {port.number}}} to services.{name}.ports")
        else:
            ports.append(ServicePort("http", port.number))  # support.py admits HTTP ports only
    return ExternalHost(host, entry.metadata.namespace, entry.spec.export_to, name, tuple(ports),
                        dns=entry.spec.resolution == "DNS")


def dns_cluster(cluster: Resource, load_assignment: Resource) -> Resource:
    """An EDS cluster from ``clusters.py`` reshaped as istiod's STRICT_DNS cluster, endpoints inline."""
    out = {k: v for k, v in cluster.items() if k != "eds_cluster_config"}
    out.update(
        type="STRICT_DNS",
        dns_lookup_family="V4_ONLY",
        typed_dns_resolver_config={
            "name": names.DNS_RESOLVER_CARES,
            "typed_config": {"@type": names.TYPE_CARES, "udp_max_queries": CARES_UDP_MAX_QUERIES},
        },
        dns_jitter=DNS_JITTER,
        dns_refresh_rate=DNS_REFRESH_RATE,
        respect_dns_ttl=True,
        load_assignment=load_assignment,
    )
    return out
