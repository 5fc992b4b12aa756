"""Istio VirtualService/DestinationRule -> Envoy v3 resources for one client sidecar, as istiod builds them.

Pure: no I/O, no protos. ``translate`` returns JSON-shaped dicts for CDS, EDS, LDS and RDS; the
xDS server converts them with ``json_format.ParseDict`` after importing ``ANY_PROTO_MODULES``.
``unsupported_issues`` names every field the local mesh does not reproduce yet; ``translate``
refuses input that has any.

Modules, one job each: ``names`` (every Envoy name), ``select`` (which objects a sidecar sees, in
istiod's order), ``clusters`` (CDS), ``endpoints`` (EDS), ``listeners`` (LDS), ``matches``,
``routes`` and ``vhosts`` (RDS), ``versions`` (behaviour by Istio release), ``support``,
``service_entry`` (ServiceEntry hosts as services) and ``gateway`` (the ingress gateway's
listeners and routes; ``translate_gateway``).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import UnsupportedError
from harness.mesh.local.translate.clusters import BuiltCluster, translate_clusters
from harness.mesh.local.translate.endpoints import translate_load_assignment
from harness.mesh.local.translate.gateway import (
    servers_by_port,
    translate_gateway_listener,
    translate_gateway_route_config,
)
from harness.mesh.local.translate.inputs import (
    DEFAULT_ISTIO_VERSION,
    Endpoint,
    EnvoyResources,
    Resource,
    TranslateInput,
)
from harness.mesh.local.translate.listeners import translate_listener
from harness.mesh.local.translate.names import ANY_PROTO_MODULES
from harness.mesh.local.translate.routes import RouteContext
from harness.mesh.local.translate.select import exported_to, selected_gateways, sidecar_virtual_services
from harness.mesh.local.translate.service_entry import ExternalHost, dns_cluster, external_hosts
from harness.mesh.local.translate.support import topology_issues, unsupported_issues
from harness.mesh.local.translate.traffic_policy import DestinationRules
from harness.mesh.local.translate.versions import Behaviour, behaviour_for
from harness.mesh.local.translate.vhosts import translate_route_config

__all__ = [
    "ANY_PROTO_MODULES",
    "DEFAULT_ISTIO_VERSION",
    "Endpoint",
    "EnvoyResources",
    "Resource",
    "TranslateInput",
    "translate",
    "topology_issues",
    "translate_gateway",
    "unsupported_issues",
]


def translate(inp: TranslateInput) -> EnvoyResources:
    """The Envoy config of ``inp.client``'s sidecar.

    Raises ``UnsupportedError`` (every issue at once) when an object sets a field the local mesh
    does not reproduce, and ``ValueError`` for an ``istio_version`` that is not ``1.x[.y]``.
    """
    behaviour, external = _checked(inp)
    rules = _destination_rules(inp, behaviour, external)
    clusters, load_assignments = _clusters(inp, behaviour, external, rules)
    services = [s for s in inp.topology.services if not s.external]
    ports = sorted({*inp.topology.service_ports(), *(p.number for e in external for p in e.ports)})
    virtual_services = sidecar_virtual_services(inp.objects, inp.client.namespace)
    route_configs = tuple(
        translate_route_config(
            [s for s in services if s.port(port) is not None],
            virtual_services,
            RouteContext(inp.client, port, behaviour, inp.config_version, rules),
            [e.host for e in external if any(p.number == port for p in e.ports)],
        )
        for port in ports
    )
    return EnvoyResources(
        clusters=clusters,
        endpoints=load_assignments,
        listeners=tuple(translate_listener(port, inp.access_log_path, behaviour.proxy_100_continue) for port in ports),
        routes=route_configs,
    )


def translate_gateway(inp: TranslateInput) -> EnvoyResources:
    """The Envoy config of the ingress gateway workload ``inp.client`` (``topology.INGRESS_GATEWAY``):
    every cluster a sidecar has, and a listener and route config per port of the Gateways selecting it.

    Raises as ``translate`` does.
    """
    behaviour, external = _checked(inp)
    rules = _destination_rules(inp, behaviour, external)
    clusters, load_assignments = _clusters(inp, behaviour, external, rules)
    only_ports = {s.fqdn: s.ports[0].number for s in inp.topology.services if not s.external and len(s.ports) == 1}
    only_ports.update({e.host: e.ports[0].number for e in external if len(e.ports) == 1})
    by_port = servers_by_port(selected_gateways(inp.objects, inp.client))

    def context(port: int) -> Callable[[str], RouteContext]:
        return lambda gateway: RouteContext(inp.client, port, behaviour, inp.config_version, rules,
                                            frozenset({gateway}), only_ports)

    return EnvoyResources(
        clusters=clusters,
        endpoints=load_assignments,
        listeners=tuple(translate_gateway_listener(port, inp.access_log_path, behaviour.proxy_100_continue)
                        for port in by_port),
        routes=tuple(
            translate_gateway_route_config(port, servers, inp.objects, context(port)) for port, servers in by_port.items()
        ),
    )


def _checked(inp: TranslateInput) -> tuple[Behaviour, list[ExternalHost]]:
    """The emulated release's behaviour and the ServiceEntry hosts the proxy sees (``exportTo``);
    UnsupportedError with every issue."""
    behaviour = behaviour_for(inp.istio_version)
    issues = [*topology_issues(inp.topology), *unsupported_issues(inp.objects, behaviour)]
    external, unserved = external_hosts(inp.objects, inp.topology)
    if issues or unserved:
        raise UnsupportedError([*issues, *unserved])
    return behaviour, [e for e in external if exported_to(e.export_to, e.namespace, inp.client.namespace)]


def _destination_rules(inp: TranslateInput, behaviour: Behaviour, external: list[ExternalHost]) -> DestinationRules:
    """The proxy's DR lookup over the hosts it sees: mesh services and its ServiceEntry hosts."""
    namespaces = {s.fqdn: s.namespace for s in inp.topology.services if not s.external}
    namespaces.update({e.host: e.namespace for e in external})
    return DestinationRules(inp.objects, inp.client.namespace, namespaces, behaviour.dr_merge_by_export_to)


def _clusters(
    inp: TranslateInput, behaviour: Behaviour, external: list[ExternalHost], rules: DestinationRules
) -> tuple[tuple[Resource, ...], tuple[Resource, ...]]:
    """CDS and EDS: a DNS cluster carries its endpoints inline, every other cluster gets a ClusterLoadAssignment."""
    built = translate_clusters(inp.topology, inp.client, inp.objects, behaviour, external, rules)
    clusters: list[Resource] = []
    assignments: list[Resource] = []
    for c in built:
        assignment = _load_assignment(inp, c)
        if c.dns:
            clusters.append(dns_cluster(c.resource, assignment))
        else:
            clusters.append(c.resource)
            assignments.append(assignment)
    return tuple(clusters), tuple(assignments)


def _load_assignment(inp: TranslateInput, cluster: BuiltCluster) -> Resource:
    endpoints = inp.endpoints.get((cluster.service, cluster.port), ())
    return translate_load_assignment(cluster.resource["name"], endpoints, cluster.subset_labels)
