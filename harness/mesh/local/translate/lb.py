"""loadBalancer -> a cluster's ``lb_policy`` and LB config, and consistent hash -> route ``hash_policy``.

Cluster side, as istiod 1.30's ``applyLoadBalancer`` and ``ApplyRingHashLoadBalancer`` (reference 3.5):

- ``simple`` unset, ``LEAST_REQUEST`` or the deprecated ``LEAST_CONN`` -> ``LEAST_REQUEST``;
  ``ROUND_ROBIN``; ``RANDOM``. ``warmup`` (or the deprecated ``warmupDurationSecs``) gives the
  round-robin / least-request ``slow_start_config``; RANDOM has none. ``PASSTHROUGH`` is refused by
  ``support.py``: it needs an original destination, which the local mesh does not have.
- ``consistentHash`` then sets ``MAGLEV`` (``maglev_lb_config.table_size`` when non-zero) or
  ``RING_HASH`` (``ring_hash_lb_config.minimum_ring_size`` when non-zero; with neither ringHash nor
  maglev, the deprecated ``minimumRingSize`` or 1024). The LB config is one proto ``oneof``: a
  ring/maglev config replaces a slow-start config, and a zero size leaves the slow start in place.
- ``localityLbSetting`` emits nothing on a cluster unless it has ``distribute`` or (with outlier
  detection) ``failover``/``failoverPriority``; ``support.py`` refuses those, so only the no-op
  ``enabled`` reaches here.

Route side: a consistent hash only works together with a route ``hash_policy``, which istiod adds
(``route.go:consistentHashToHashPolicy``, ``HashForHTTPDestination``, ``hashForService``):

- on a VirtualService route, one hash policy per destination (weight-0 destinations of a weighted
  route are skipped, as their clusters are), from the destination's DR: the subset's port-level
  hash (only when ``destination.port`` is set), else the subset's, else the top-level port-level
  one (likewise), else the top-level one;
- on the default route of a host without a VirtualService: the top-level hash, or the port-level
  one for the listener port when that entry has a consistent hash.

Port-level *hash* lookup does not follow the wholesale replacement of cluster policies: a
port-level entry without a consistent hash leaves the top-level hash on the route, as in istiod.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.istio.model import (
    ConsistentHashLB,
    HTTPRouteDestination,
    LoadBalancerSettings,
    PortTrafficPolicy,
    TrafficPolicy,
    WarmupConfiguration,
)
from harness.istio.semantics import resolve_host
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.traffic_policy import DestinationRules
from harness.mesh.local.translate.units import envoy_duration

DEFAULT_MINIMUM_RING_SIZE = 1024
WARMUP_AGGRESSION = 1.0
WARMUP_MINIMUM_PERCENT = 10.0
WARMUP_RUNTIME_KEY = "("
"""istiod fixes the slow-start aggression with this (unused) runtime key."""

_SIMPLE_POLICIES = {None: "LEAST_REQUEST", "UNSPECIFIED": "LEAST_REQUEST", "LEAST_REQUEST": "LEAST_REQUEST",
                    "LEAST_CONN": "LEAST_REQUEST", "ROUND_ROBIN": "ROUND_ROBIN", "RANDOM": "RANDOM"}
_SLOW_START_CONFIG = {"ROUND_ROBIN": "round_robin_lb_config", "LEAST_REQUEST": "least_request_lb_config"}


def translate_load_balancer(lb: LoadBalancerSettings | None) -> Resource:
    """The cluster fields ``lb_policy`` and at most one LB config (``*_lb_config``)."""
    policy = _SIMPLE_POLICIES[lb.simple if lb else None]
    config: tuple[str, Resource] | None = None
    slow_start = _slow_start(lb) if lb else None
    if slow_start is not None and policy in _SLOW_START_CONFIG:
        config = (_SLOW_START_CONFIG[policy], {"slow_start_config": slow_start})
    if lb is not None and (ch := lb.consistent_hash) is not None:
        if ch.maglev is not None:
            policy = "MAGLEV"
            if ch.maglev.table_size:
                config = ("maglev_lb_config", {"table_size": ch.maglev.table_size})
        elif ch.ring_hash is not None:
            policy = "RING_HASH"
            if ch.ring_hash.minimum_ring_size:
                config = ("ring_hash_lb_config", {"minimum_ring_size": ch.ring_hash.minimum_ring_size})
        else:
            policy = "RING_HASH"
            size = ch.minimum_ring_size or DEFAULT_MINIMUM_RING_SIZE
            config = ("ring_hash_lb_config", {"minimum_ring_size": size})
    out: Resource = {"lb_policy": policy}
    if config is not None:
        out[config[0]] = config[1]
    return out


def _slow_start(lb: LoadBalancerSettings) -> Resource | None:
    """``setWarmup`` (defaults filled in) or, for the deprecated ``warmupDurationSecs``, ``setSlowStartConfig``."""
    if lb.warmup is not None:
        return _warmup(lb.warmup)
    if lb.warmup_duration_secs is not None:
        return {"slow_start_window": envoy_duration(lb.warmup_duration_secs)}
    return None


def _warmup(warmup: WarmupConfiguration) -> Resource:
    aggression = warmup.aggression if warmup.aggression is not None else WARMUP_AGGRESSION
    minimum = warmup.minimum_percent if warmup.minimum_percent is not None else WARMUP_MINIMUM_PERCENT
    return {
        "slow_start_window": envoy_duration(warmup.duration),
        "aggression": {"default_value": aggression, "runtime_key": WARMUP_RUNTIME_KEY},
        "min_weight_percent": {"value": minimum},
    }


def hash_policy(ch: ConsistentHashLB | None) -> Resource | None:
    """``consistentHashToHashPolicy``: the route ``hash_policy`` entry for a consistent hash (None without a key)."""
    if ch is None:
        return None
    if ch.http_header_name is not None:
        return {"header": {"header_name": ch.http_header_name}}
    if (cookie := ch.http_cookie) is not None:
        out: Resource = {"name": cookie.name}
        if cookie.ttl is not None:
            out["ttl"] = envoy_duration(cookie.ttl)
        if cookie.path:
            out["path"] = cookie.path
        if cookie.attributes:
            out["attributes"] = [
                {"name": a.name, **({"value": a.value} if a.value else {})} for a in cookie.attributes
            ]
        return {"cookie": out}
    if ch.use_source_ip is not None:
        return {"connection_properties": {"source_ip": ch.use_source_ip}}
    if ch.http_query_parameter_name is not None:
        return {"query_parameter": {"name": ch.http_query_parameter_name}}
    return None


def route_hash_policies(
    destinations: Sequence[HTTPRouteDestination], vs_namespace: str, rules: DestinationRules
) -> list[Resource]:
    """The ``hash_policy`` list of a VirtualService route with ``destinations`` (empty: no hashing).

    The retry default of a single destination follows ``destination_hash``, not this list: a
    ``consistentHash`` without a hash key adds no policy here but still drops previous_hosts.
    """
    used = destinations if len(destinations) == 1 else [d for d in destinations if d.weight != 0]
    out: list[Resource] = []
    for dest in used:
        policy = hash_policy(destination_hash(dest, vs_namespace, rules))
        if policy is not None:
            out.append(policy)
    return out


def destination_hash(dest: HTTPRouteDestination, vs_namespace: str, rules: DestinationRules) -> ConsistentHashLB | None:
    """``HashForHTTPDestination``: the consistent hash that applies to one route destination."""
    merged = rules.for_host(resolve_host(dest.destination.host, vs_namespace))
    if merged is None:
        return None
    port = dest.destination.port.number if dest.destination.port is not None else None
    top = merged.traffic_policy
    subset = merged.subset(dest.destination.subset)
    own = subset.traffic_policy if subset is not None else None
    candidates = (
        _port_level_hash(own, port) if port is not None else None,
        _hash(own),
        _port_level_hash(top, port) if port is not None else None,
        _hash(top),
    )
    return next((c for c in candidates if c is not None), None)


def default_route_hash_policies(fqdn: str, port: int, rules: DestinationRules) -> list[Resource]:
    """``hashForService``: the ``hash_policy`` list of the default route of ``fqdn`` on ``port``."""
    merged = rules.for_host(fqdn)
    if merged is None:
        return []
    top = merged.traffic_policy
    policy = hash_policy(_port_level_hash(top, port) or _hash(top))
    return [policy] if policy is not None else []


def _hash(policy: TrafficPolicy | None) -> ConsistentHashLB | None:
    lb = policy.load_balancer if policy is not None else None
    return lb.consistent_hash if lb is not None else None


def _port_level_hash(policy: TrafficPolicy | None, port: int) -> ConsistentHashLB | None:
    """The consistent hash of the first port-level entry for ``port`` (None if it has none)."""
    setting: PortTrafficPolicy | None = next(
        (s for s in (policy.port_level_settings if policy else ()) if s.port is not None and s.port.number == port),
        None,
    )
    lb = setting.load_balancer if setting is not None else None
    return lb.consistent_hash if lb is not None else None
