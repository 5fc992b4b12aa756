"""Which Istio objects a sidecar sees, in the order istiod considers them.

istiod sorts configs by creationTimestamp, then name, then namespace (``configCompareByCreationTime``)
and lets the first one win where two compete (reference section 2.1, #36621). Objects without a
timestamp (not yet stamped by a mesh) sort after every stamped one, as if created just now, and
among themselves by name and namespace, as istiod does for equal timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.istio.model import DestinationRule, Gateway, IstioObject, Subset, TrafficPolicy, VirtualService
from harness.istio.semantics import (
    binds_to_sidecars,
    creation_order,
    resolve_gateway_name,
    resolve_host,
)
from harness.topology import Client

ROOT_NAMESPACE = "istio-system"
PUBLIC = "*"
PRIVATE = "."
NONE = "~"
"""``exportTo`` values: every namespace, the object's own namespace, no namespace (ServiceEntry only;
``pkg/config/visibility``)."""


def exported_to(export_to: Sequence[str], owner_namespace: str, namespace: str) -> bool:
    """Whether a VirtualService or ServiceEntry of ``owner_namespace`` is visible in ``namespace``
    (istiod's ``initVirtualServices`` / ``initServiceRegistry`` indexes; mesh default ``*`` when unset):
    ``*`` everywhere, ``~`` nowhere, ``.`` or its own namespace there, a namespace name there."""
    export = set(export_to) or {PUBLIC}
    if PUBLIC in export:
        return True
    if NONE in export:
        return False
    return namespace in export or (namespace == owner_namespace and PRIVATE in export)


def _by_visibility(virtual_services: Sequence[VirtualService], namespace: str) -> list[VirtualService]:
    """The VirtualServices visible in ``namespace`` in istiod's order (``SelectVirtualServices``,
    ``VirtualServicesForGateway``): private to the namespace, then exported to it by name, then public,
    each oldest first; the first VS for a host wins on sidecars, so a private one beats an older public one."""
    private: list[VirtualService] = []
    exported: list[VirtualService] = []
    public: list[VirtualService] = []
    for vs in sorted(virtual_services, key=creation_order):
        export = set(vs.spec.export_to) or {PUBLIC}
        if PUBLIC in export:
            public.append(vs)
        elif NONE in export:
            continue
        elif vs.metadata.namespace == namespace and export & {PRIVATE, namespace}:
            private.append(vs)
        elif namespace in export and vs.metadata.namespace != namespace:
            exported.append(vs)
    return [*private, *exported, *public]


def sidecar_virtual_services(objects: Sequence[IstioObject], namespace: str) -> list[VirtualService]:
    """VirtualServices bound to sidecars (``gateways`` empty or containing ``mesh``) that a sidecar in
    ``namespace`` sees (``exportTo``), in istiod's order (``_by_visibility``)."""
    return _by_visibility([o for o in objects if isinstance(o, VirtualService) and binds_to_sidecars(o)], namespace)


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


def gateway_virtual_services(objects: Sequence[IstioObject], name: str, namespace: str) -> list[VirtualService]:
    """VirtualServices bound to gateway ``name`` (``ns/name``) by ``spec.gateways`` that a gateway proxy in
    ``namespace`` sees (``exportTo``), in ``PushContext.VirtualServicesForGateway``'s order (``_by_visibility``)."""
    return _by_visibility(
        [
            o for o in objects
            if isinstance(o, VirtualService)
            and any(resolve_gateway_name(g, o.metadata.namespace) == name for g in o.spec.gateways)
        ],
        namespace,
    )


@dataclass
class ConsolidatedRule:
    """istiod's ``ConsolidatedDestRule``: DestinationRules for one host merged oldest first (subsets
    concatenated, a repeated subset name keeping its first definition, the first top-level
    ``trafficPolicy``); the oldest DR names it."""

    rule: DestinationRule
    export_to: frozenset[str]
    subsets: list[Subset] = field(default_factory=list)
    traffic_policy: TrafficPolicy | None = None

    @classmethod
    def of(cls, rule: DestinationRule, export_to: frozenset[str]) -> ConsolidatedRule:
        return cls(rule, export_to, list(rule.spec.subsets), rule.spec.traffic_policy)

    def merge(self, rule: DestinationRule) -> None:
        seen = {s.name for s in self.subsets}
        self.subsets += [s for s in rule.spec.subsets if s.name not in seen]
        if self.traffic_policy is None:
            self.traffic_policy = rule.spec.traffic_policy


_ByHost = dict[str, list[ConsolidatedRule]]


@dataclass(frozen=True)
class DestinationRuleIndex:
    """``PushContext.setDestinationRules`` and ``PushContext.destinationRule`` (istiod 1.30.3
    ``pilot/pkg/model/push_context.go``), for DRs without ``workloadSelector`` and wildcard hosts
    (``support.py`` refuses both) and the mesh default ``defaultDestinationRuleExportTo: *``.

    Each DR (oldest first) goes into up to two indexes of its namespace:

    - ``namespace_local``: every DR visible in its own namespace (no ``exportTo``, ``*``, ``.`` or its
      own namespace), for proxies of that namespace;
    - ``exported``: every DR not private only (private only = ``exportTo`` is exactly ``.`` or exactly
      its own namespace), for proxies of other namespaces, filtered by ``exportTo`` at lookup;
      private-only DRs of the root namespace go to ``root_local`` instead.

    ``merge_by_export_to`` (1.24+, ``ENABLE_ENHANCED_DESTINATIONRULE_MERGE``): a DR merges only into
    entries with the same ``exportTo`` (or a non-empty subset of it), else it becomes an entry of its
    own; the lookup then yields several entries and a sidecar uses the last one
    (``SidecarScope.DestinationRule``). Before 1.24 every DR for a host merges into one entry, whose
    ``exportTo`` is the first non-empty one of the merged DRs.
    """

    namespace_local: dict[str, _ByHost]
    exported: dict[str, _ByHost]
    root_local: _ByHost
    merge_by_export_to: bool

    @classmethod
    def build(cls, objects: Sequence[IstioObject], merge_by_export_to: bool = True) -> DestinationRuleIndex:
        index = cls({}, {}, {}, merge_by_export_to)
        rules = sorted((o for o in objects if isinstance(o, DestinationRule)), key=creation_order)
        for rule in rules:
            ns = rule.metadata.namespace
            export_to = frozenset(rule.spec.export_to)
            if not export_to or export_to & {PUBLIC, PRIVATE, ns}:
                index._merge(index.namespace_local.setdefault(ns, {}), rule, export_to)
            private_only = len(export_to) == 1 and bool(export_to & {PRIVATE, ns})
            if not private_only:
                index._merge(index.exported.setdefault(ns, {}), rule, export_to)
            elif ns == ROOT_NAMESPACE:
                index._merge(index.root_local, rule, export_to)
        return index

    def _merge(self, by_host: _ByHost, rule: DestinationRule, export_to: frozenset[str]) -> None:
        """``mergeDestinationRule`` for DRs without workload selectors."""
        host = resolve_host(rule.spec.host, rule.metadata.namespace)
        entries = by_host.get(host)
        if not entries:
            by_host[host] = [ConsolidatedRule.of(rule, export_to)]
            return
        if not self.merge_by_export_to:
            (entry,) = entries
            entry.merge(rule)
            if not entry.export_to and export_to:
                entry.export_to = export_to
            return
        separately = True
        for entry in entries:
            if not (export_to == entry.export_to or (entry.export_to and export_to >= entry.export_to)):
                separately = True
                continue
            entry.merge(rule)
            separately = False  # both without selector: merged, whatever the superset branch said
        if separately:
            entries.append(ConsolidatedRule.of(rule, export_to))

    def lookup(self, proxy_namespace: str, fqdn: str, service_namespace: str) -> ConsolidatedRule | None:
        """The DR entry a proxy in ``proxy_namespace`` applies to ``fqdn`` (a service of ``service_namespace``).

        Proxy namespace first (for a proxy in the root namespace only its private root DRs), then the
        service's namespace, then the root namespace, each time only DRs exported to the proxy's namespace.
        Of several entries the last one wins, as ``SidecarScope.DestinationRule`` picks it.
        """
        if proxy_namespace != ROOT_NAMESPACE:
            found = self.namespace_local.get(proxy_namespace, {}).get(fqdn)
        else:
            found = self.root_local.get(fqdn)
        if found:
            return found[-1]
        for owner in (service_namespace, ROOT_NAMESPACE):
            if not owner:
                continue
            exported = [
                e for e in self.exported.get(owner, {}).get(fqdn, ())
                if not e.export_to or PUBLIC in e.export_to or proxy_namespace in e.export_to
            ]
            if exported:
                return exported[-1]
        return None
