"""Istio VirtualService/DestinationRule -> Envoy v3 resources for one client sidecar, as istiod builds them.

Pure: no I/O, no protos. ``translate`` returns JSON-shaped dicts for CDS, EDS, LDS and RDS; the
xDS server converts them with ``json_format.ParseDict`` after importing ``ANY_PROTO_MODULES``.
``unsupported_issues`` names every field the local mesh does not reproduce yet; ``translate``
refuses input that has any.

Modules, one job each: ``names`` (every Envoy name), ``select`` (which objects a sidecar sees, in
istiod's order), ``clusters`` (CDS), ``endpoints`` (EDS), ``listeners`` (LDS), ``matches``,
``routes`` and ``vhosts`` (RDS), ``versions`` (behaviour by Istio release), ``support``.
"""

from __future__ import annotations

from harness.errors import UnsupportedError
from harness.mesh.local.translate.clusters import translate_clusters
from harness.mesh.local.translate.endpoints import translate_load_assignment
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
from harness.mesh.local.translate.select import sidecar_virtual_services
from harness.mesh.local.translate.support import unsupported_issues
from harness.mesh.local.translate.traffic_policy import DestinationRules
from harness.mesh.local.translate.versions import behaviour_for
from harness.mesh.local.translate.vhosts import translate_route_config

__all__ = [
    "ANY_PROTO_MODULES",
    "DEFAULT_ISTIO_VERSION",
    "Endpoint",
    "EnvoyResources",
    "Resource",
    "TranslateInput",
    "translate",
    "unsupported_issues",
]


def translate(inp: TranslateInput) -> EnvoyResources:
    """The Envoy config of ``inp.client``'s sidecar.

    Raises ``UnsupportedError`` (every issue at once) when an object sets a field the local mesh
    does not reproduce, and ``ValueError`` for an ``istio_version`` that is not ``1.x[.y]``.
    """
    behaviour = behaviour_for(inp.istio_version)
    issues = unsupported_issues(inp.objects, behaviour)
    if issues:
        raise UnsupportedError(issues)
    built = translate_clusters(inp.topology, inp.client, inp.objects, behaviour)
    load_assignments = tuple(
        translate_load_assignment(c.resource["name"], inp.endpoints.get((c.service, c.port), ()), c.subset_labels)
        for c in built
    )
    ports = inp.topology.service_ports()
    virtual_services = sidecar_virtual_services(inp.objects)
    rules = DestinationRules(inp.objects, inp.client.namespace)
    route_configs = tuple(
        translate_route_config(
            [s for s in inp.topology.services if s.port(port) is not None],
            virtual_services,
            RouteContext(inp.client, port, behaviour, inp.config_version, rules),
        )
        for port in ports
    )
    return EnvoyResources(
        clusters=tuple(c.resource for c in built),
        endpoints=load_assignments,
        listeners=tuple(translate_listener(port, inp.access_log_path) for port in ports),
        routes=route_configs,
    )
