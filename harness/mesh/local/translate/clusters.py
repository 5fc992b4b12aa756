"""CDS: one outbound cluster per service port, plus one per DestinationRule subset.

Shapes follow istiod's ``cluster_builder.go`` for a sidecar (reference section 3.2): EDS over ADS
with ``initial_fetch_timeout: 0s``, the mesh's 10s connect timeout, LEAST_REQUEST, an empty
``common_lb_config``, circuit breakers at 2^32-1 (so only a DR can make them trip) and the
``<name>;`` alt stat name. Istio-only pieces (the ``istio.metadata_exchange`` filter, auto-mTLS
transport sockets) are left out: vanilla Envoy has no such filter and the local mesh is plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.istio.model import IstioObject
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.select import destination_rule_subsets
from harness.mesh.local.translate.versions import Behaviour
from harness.topology import Client, ServicePort, Topology

UNLIMITED = 4294967295
"""istiod's default for every circuit-breaker threshold (``math.MaxUint32``): effectively off."""

CONNECT_TIMEOUT = "10s"
"""The mesh default ``connectTimeout``."""


def ads_config_source() -> Resource:
    """Config from the ADS stream; wait for it forever (``initial_fetch_timeout: 0s``), as istiod sets."""
    return {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}


@dataclass(frozen=True)
class BuiltCluster:
    """A cluster and what its ClusterLoadAssignment is made of."""

    resource: Resource
    service: str
    port: int
    subset_labels: dict[str, str]
    """Labels an endpoint of ``service``/``port`` must carry to be in this cluster (none: all)."""


def translate_clusters(
    topology: Topology, client: Client, objects: Sequence[IstioObject], behaviour: Behaviour
) -> list[BuiltCluster]:
    """Every outbound cluster for ``client``'s sidecar.

    Clusters come per service in topology order, then per port, the default cluster before the
    subsets in DR order. The DR lookup depends on the client's namespace, so clusters are per node.
    """
    out: list[BuiltCluster] = []
    for service in topology.services:
        merged = destination_rule_subsets(objects, service.fqdn, client.namespace, service.namespace)
        for port in sorted(service.ports, key=lambda p: p.number):
            name = names.outbound_cluster(port.number, None, service.fqdn)
            out.append(BuiltCluster(_cluster(name, port, behaviour, None), service.name, port.number, {}))
            if merged is None:
                continue
            rule, subsets = merged
            for subset in subsets:
                name = names.outbound_cluster(port.number, subset.name, service.fqdn)
                meta = {
                    "config": names.config_path(rule.kind, rule.metadata.namespace, rule.metadata.name),
                    "subset": subset.name,
                }
                resource = _cluster(name, port, behaviour, meta)
                out.append(BuiltCluster(resource, service.name, port.number, dict(subset.labels)))
    return out


def _cluster(name: str, port: ServicePort, behaviour: Behaviour, istio_meta: dict[str, str] | None) -> Resource:
    cluster: Resource = {
        "name": name,
        "type": "EDS",
        "eds_cluster_config": {"service_name": name, "eds_config": ads_config_source()},
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "LEAST_REQUEST",
        "common_lb_config": {},
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": UNLIMITED,
                    "max_pending_requests": UNLIMITED,
                    "max_requests": UNLIMITED,
                    "max_retries": UNLIMITED,
                    "track_remaining": behaviour.track_remaining,
                }
            ]
        },
    }
    if behaviour.alt_stat_name:
        cluster["alt_stat_name"] = names.alt_stat_name(name)
    if port.protocol in ("grpc", "http2"):
        # setUpstreamProtocol: HTTP/2 ports talk h2 upstream (reference section 5).
        cluster["typed_extension_protocol_options"] = {
            names.HTTP_PROTOCOL_OPTIONS: {
                "@type": names.TYPE_HTTP_PROTOCOL_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    if istio_meta:
        # The DR and subset a cluster came from, as istiod records them (AddConfigInfoMetadata, AddSubsetToMetadata).
        cluster["metadata"] = {"filter_metadata": {"istio": istio_meta}}
    return cluster
