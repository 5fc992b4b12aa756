"""CDS: one outbound cluster per service port, plus one per DestinationRule subset.

ServiceEntry hosts (``service_entry.ExternalHost``) get the same clusters as services; a
DNS-resolved one is reshaped by ``service_entry.dns_cluster``.

Shapes follow istiod's ``cluster_builder.go`` for a sidecar (reference sections 3.2-3.6): EDS over
ADS with ``initial_fetch_timeout: 0s``, an empty ``common_lb_config`` (from 1.31 a panic threshold of 0,
``Behaviour.panic_threshold_off``) and the ``<name>;`` alt stat name, and with a DR, the DR (and subset) in ``metadata.filter_metadata.istio`` on every cluster of the
host. ``applyTrafficPolicy`` runs for every cluster, DR or not, so each one gets the connection pool
defaults (10s connect timeout, circuit breakers at 2^32-1) and LEAST_REQUEST. A DR's effective
policy for the cluster (``traffic_policy``: port-level and subset merge) then sets the connection
pool (``connection_pool``), outlier detection (``outlier``) and load balancer (``lb``).
Istio-only pieces (the ``istio.metadata_exchange`` filter, auto-mTLS transport sockets) are left
out: vanilla Envoy has no such filter and the local mesh is plaintext (DR ``tls`` is accepted with
a warning and has no effect here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.istio.model import DestinationRule, IstioObject
from harness.mesh.local.translate import names
from harness.mesh.local.translate.connection_pool import translate_connection_pool
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.lb import translate_load_balancer
from harness.mesh.local.translate.outlier import translate_outlier_detection
from harness.mesh.local.translate.service_entry import ExternalHost
from harness.mesh.local.translate.traffic_policy import (
    DestinationRules,
    Policy,
    cluster_policy,
)
from harness.mesh.local.translate.versions import Behaviour
from harness.topology import Client, ServicePort, Topology


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
    dns: bool = False
    """A DNS-resolved ServiceEntry host: its endpoints go inline (``service_entry.dns_cluster``), not over EDS."""


def translate_clusters(
    topology: Topology,
    client: Client,
    objects: Sequence[IstioObject],
    behaviour: Behaviour,
    external: Sequence[ExternalHost] = (),
    rules: DestinationRules | None = None,
) -> list[BuiltCluster]:
    """Every outbound cluster for ``client``'s proxy: mesh services, then ServiceEntry hosts (``external``).

    Clusters come per service in topology order, then per port, the default cluster before the
    subsets in DR order. The DR lookup depends on the client's namespace, so clusters are per node
    (``rules``: the proxy's lookup; by default one built from ``objects`` for ``client``'s namespace).
    """
    rules = rules or DestinationRules(objects, client.namespace)
    hosts = [(s.fqdn, s.name, s.ports, False) for s in topology.services if not s.external]
    hosts += [(e.host, e.service, e.ports, e.dns) for e in external]
    out: list[BuiltCluster] = []
    for fqdn, service, ports, dns in hosts:
        merged = rules.for_host(fqdn)
        top = merged.traffic_policy if merged else None
        # The DR a cluster came from (AddConfigInfoMetadata), on the default cluster too, and its subset.
        config = {"config": _config_path(merged.rule)} if merged else {}
        for port in sorted(ports, key=lambda p: p.number):
            name = names.outbound_cluster(port.number, None, fqdn)
            resource = _cluster(name, port, behaviour, config, cluster_policy(top, None, port.number))
            out.append(BuiltCluster(resource, service, port.number, {}, dns))
            for subset in merged.subsets if merged else ():
                name = names.outbound_cluster(port.number, subset.name, fqdn)
                policy = cluster_policy(top, subset.traffic_policy, port.number)
                resource = _cluster(name, port, behaviour, {**config, "subset": subset.name}, policy)
                out.append(BuiltCluster(resource, service, port.number, dict(subset.labels), dns))
    return out


def _config_path(rule: DestinationRule) -> str:
    return names.config_path(rule.kind, rule.metadata.namespace, rule.metadata.name)


def _cluster(
    name: str, port: ServicePort, behaviour: Behaviour, istio_meta: dict[str, str], policy: Policy | None
) -> Resource:
    """``buildCluster`` + ``applyTrafficPolicy`` for one outbound cluster (``policy`` None: no DR policy)."""
    policy = policy or Policy()
    cluster: Resource = {
        "name": name,
        "type": "EDS",
        "eds_cluster_config": {"service_name": name, "eds_config": ads_config_source()},
        "common_lb_config": {},
    }
    pool = translate_connection_pool(policy.connection_pool, policy.retry_budget, port, behaviour.track_remaining)
    cluster.update(pool)
    outlier = translate_outlier_detection(policy.outlier_detection)
    cluster["common_lb_config"].update(outlier.pop("common_lb_config", {}))
    if behaviour.panic_threshold_off:  # applyLoadBalancer (1.31+): panic mode off unless minHealthPercent set it
        cluster["common_lb_config"].setdefault("healthy_panic_threshold", {"value": 0.0})
    cluster.update(outlier)
    cluster.update(translate_load_balancer(policy.load_balancer))
    if behaviour.alt_stat_name:
        cluster["alt_stat_name"] = names.alt_stat_name(name)
    if istio_meta:
        cluster["metadata"] = {"filter_metadata": {"istio": istio_meta}}
    return cluster
