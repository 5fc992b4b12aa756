"""Which DestinationRule traffic policy applies to one cluster: istiod's merge rules, nothing else.

Reference istio-semantics.md section 3.3 and istiod 1.30 (``util.GetPortLevelTrafficPolicy``,
``util.MergeSubsetTrafficPolicy``, ``model.MergeTrafficPolicy``, ``PushContext.mergeDestinationRule``):

- Several DRs for one host in the chosen namespace merge oldest first: subsets are concatenated
  and the first DR that has a top-level ``trafficPolicy`` supplies it whole (``select.DestinationRuleIndex``,
  which also decides which namespace's DRs apply, with ``exportTo``).
- A ``portLevelSettings`` entry for the cluster's port replaces the policy wholesale: its
  connectionPool, loadBalancer, outlierDetection and tls, and nothing else survives (a top-level
  ``retryBudget`` is dropped too, as istiod's ``shadowCopyPortTrafficPolicy`` drops it).
- A subset policy (after its own port-level settings) replaces each component it sets, whole; when
  the subset has port-level settings for the port, the four port-level components replace the
  top-level ones even where they are unset. Fields are never deep-merged.

``tunnel`` and ``proxyProtocol`` are refused by ``support.py`` and so play no part here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TypeVar

from harness.istio.model import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    DestinationRule,
    IstioObject,
    LoadBalancerSettings,
    OutlierDetection,
    RetryBudget,
    Subset,
    TrafficPolicy,
)
from harness.mesh.local.translate.select import DestinationRuleIndex
from harness.topology import CLUSTER_DOMAIN

_T = TypeVar("_T")


@dataclass(frozen=True)
class Policy:
    """The components of a traffic policy that decide one cluster's config (istiod's shallow copy)."""

    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    load_balancer: LoadBalancerSettings | None = None
    tls: ClientTLSSettings | None = None
    retry_budget: RetryBudget | None = None


@dataclass(frozen=True)
class MergedRule:
    """What a sidecar sees of the DestinationRules for one host after istiod's merge."""

    rule: DestinationRule
    """The oldest DR of the merge; it names the merged rule in cluster metadata."""
    subsets: tuple[Subset, ...]
    traffic_policy: TrafficPolicy | None
    """The top-level policy of the oldest DR that has one."""

    def subset(self, name: str | None) -> Subset | None:
        return next((s for s in self.subsets if s.name == name), None) if name else None


@dataclass(frozen=True)
class DestinationRules:
    """DR lookup for one proxy: its namespace decides which DR applies (``select.DestinationRuleIndex``).

    ``service_namespaces`` maps every host the proxy sees (mesh services and visible ServiceEntry hosts)
    to the namespace of its service or ServiceEntry; a host not in it has no DR, as a host outside the
    proxy's SidecarScope has none in istiod. Without it, a ``<name>.<ns>.svc.cluster.local`` host has
    namespace ``<ns>`` and any other host none (only the proxy's and the root namespace are searched).
    """

    objects: Sequence[IstioObject]
    client_namespace: str
    service_namespaces: Mapping[str, str] | None = None
    merge_by_export_to: bool = True
    """1.24+ (``ENABLE_ENHANCED_DESTINATIONRULE_MERGE``), see ``DestinationRuleIndex``."""

    @cached_property
    def _index(self) -> DestinationRuleIndex:
        return DestinationRuleIndex.build(self.objects, self.merge_by_export_to)

    def for_host(self, fqdn: str) -> MergedRule | None:
        """The merged DR for ``fqdn``, looked up as istiod's ``SidecarScope.DestinationRule``."""
        if self.service_namespaces is None:
            service_namespace = _service_namespace(fqdn)
        elif fqdn in self.service_namespaces:
            service_namespace = self.service_namespaces[fqdn]
        else:
            return None
        found = self._index.lookup(self.client_namespace, fqdn, service_namespace)
        if found is None:
            return None
        return MergedRule(found.rule, tuple(found.subsets), found.traffic_policy)


def _service_namespace(fqdn: str) -> str:
    """``reviews.other.svc.cluster.local`` -> ``other``; a non-Kubernetes host has none (empty)."""
    suffix = "." + CLUSTER_DOMAIN
    if not fqdn.endswith(suffix):
        return ""
    parts = fqdn[: -len(suffix)].split(".")
    return parts[1] if len(parts) == 2 else ""


def port_policy(policy: TrafficPolicy | None, port: int) -> Policy | None:
    """``GetPortLevelTrafficPolicy``: the policy that applies on ``port`` (None without a policy)."""
    return None if policy is None else _for_port(policy, port)[0]


def cluster_policy(top: TrafficPolicy | None, subset: TrafficPolicy | None, port: int) -> Policy | None:
    """``MergeSubsetTrafficPolicy``: the effective policy of a cluster on ``port``; ``subset`` is the
    subset's own policy (None for the default cluster or a subset without one)."""
    merged = port_policy(top, port)
    if subset is None:
        return merged
    own, has_port_level = _for_port(subset, port)
    if merged is None:
        return own
    return replace(
        merged,
        connection_pool=_pick(own.connection_pool, merged.connection_pool, has_port_level),
        outlier_detection=_pick(own.outlier_detection, merged.outlier_detection, has_port_level),
        load_balancer=_pick(own.load_balancer, merged.load_balancer, has_port_level),
        tls=_pick(own.tls, merged.tls, has_port_level),
        retry_budget=_pick(own.retry_budget, merged.retry_budget, False),
    )


def _pick(own: _T | None, inherited: _T | None, wholesale: bool) -> _T | None:
    """The subset's component if it sets one (or if port-level settings replace them all), else the top-level one."""
    return own if own is not None or wholesale else inherited


def _for_port(policy: TrafficPolicy, port: int) -> tuple[Policy, bool]:
    """The components for ``port`` and whether a port-level entry supplied them (then wholesale)."""
    for setting in policy.port_level_settings:
        if setting.port is not None and setting.port.number == port:
            return Policy(setting.connection_pool, setting.outlier_detection, setting.load_balancer, setting.tls), True
    components = (policy.connection_pool, policy.outlier_detection, policy.load_balancer, policy.tls)
    return Policy(*components, policy.retry_budget), False
