"""Which Istio objects a sidecar sees, in the order istiod considers them.

istiod sorts configs by creationTimestamp, then name, then namespace (``configCompareByCreationTime``)
and lets the first one win where two compete (reference section 2.1, #36621). Objects without a
timestamp (not yet stamped by a mesh) sort after every stamped one, as if created just now, and
among themselves by name and namespace, as istiod does for equal timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.istio.model import DestinationRule, Gateway, IstioObject, Subset, VirtualService
from harness.istio.semantics import (
    binds_to_sidecars,
    creation_order,
    resolve_gateway_name,
    resolve_host,
)
from harness.topology import Client

ROOT_NAMESPACE = "istio-system"


def sidecar_virtual_services(objects: Sequence[IstioObject]) -> list[VirtualService]:
    """VirtualServices bound to sidecars (``gateways`` empty or containing ``mesh``), oldest first."""
    out = [o for o in objects if isinstance(o, VirtualService) and binds_to_sidecars(o)]
    return sorted(out, key=creation_order)


def selected_gateways(objects: Sequence[IstioObject], workload: Client) -> list[Gateway]:
    """Gateways whose ``selector`` labels are all on ``workload`` (an empty selector selects every
    gateway workload), oldest first. Any namespace: ``PILOT_SCOPE_GATEWAY_TO_NAMESPACE`` is off by default."""
    labels = dict(workload.labels)
    out = [o for o in objects if isinstance(o, Gateway)
           and all(labels.get(k) == v for k, v in o.spec.selector.items())]
    return sorted(out, key=creation_order)


def gateway_name(gateway: Gateway) -> str:
    """``namespace/name``, the form VirtualService ``gateways`` references resolve to."""
    return f"{gateway.metadata.namespace}/{gateway.metadata.name}"


def gateway_virtual_services(objects: Sequence[IstioObject], name: str) -> list[VirtualService]:
    """VirtualServices bound to gateway ``name`` (``ns/name``) by ``spec.gateways``, oldest first
    (``PushContext.VirtualServicesForGateway``)."""
    out = [
        o for o in objects
        if isinstance(o, VirtualService)
        and any(resolve_gateway_name(g, o.metadata.namespace) == name for g in o.spec.gateways)
    ]
    return sorted(out, key=creation_order)


def destination_rule_subsets(
    objects: Sequence[IstioObject], fqdn: str, client_namespace: str, service_namespace: str
) -> tuple[DestinationRule, list[Subset]] | None:
    """The DR a sidecar in ``client_namespace`` applies to ``fqdn`` and its merged subsets, or None.

    Lookup as istiod's ``SidecarScope.DestinationRule`` for an exact host: DRs in the client's
    namespace first, else the service's namespace, else the root namespace (reference section 3.1).
    Several DRs in the chosen namespace are merged oldest first: subsets concatenated, a repeated
    subset name keeps the first definition; the oldest DR names the merged rule, as in istiod.
    """
    matching = [
        o for o in objects if isinstance(o, DestinationRule) and resolve_host(o.spec.host, o.metadata.namespace) == fqdn
    ]
    for namespace in (client_namespace, service_namespace, ROOT_NAMESPACE):
        rules = sorted((d for d in matching if d.metadata.namespace == namespace), key=creation_order)
        if rules:
            subsets: list[Subset] = []
            seen: set[str] = set()
            for rule in rules:
                for subset in rule.spec.subsets:
                    if subset.name not in seen:
                        seen.add(subset.name)
                        subsets.append(subset)
            return rules[0], subsets
    return None
