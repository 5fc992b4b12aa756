"""Istio ``mirror``/``mirrors`` -> Envoy ``request_mirror_policies`` (``route.go:MirrorPercent``,
``MirrorPercentByPolicy``, ``TranslateRequestMirrorPolicy``; reference istio-semantics.md section 2.10).

- ``mirror`` gives the first policy, each ``mirrors[]`` entry one more, in order.
- Percentage: none -> 100% (``{100, HUNDRED}``); ``mirrorPercentage``/``percentage`` > 0 -> per
  million; the deprecated ``mirrorPercent`` > 0 -> per hundred; exactly 0 -> no policy at all.
- ``trace_sampled: false`` always; ``disable_shadow_host_suffix_append: true`` from 1.28 on (absent
  before, when Envoy appends ``-shadow`` to the mirrored Host).
- The cluster comes from the same port inference as the route's destinations.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.istio.model import Destination, HTTPRoute, Percent
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.units import per_hundred, per_million
from harness.mesh.local.translate.versions import Behaviour

FULL = 100


def translate_mirrors(
    rule: HTTPRoute, cluster_of: Callable[[Destination], str], behaviour: Behaviour
) -> list[Resource]:
    """The rule's mirror policies, in istiod's order; ``cluster_of`` names a destination's cluster."""
    out: list[Resource] = []
    if rule.mirror is not None:
        fraction = _fraction(rule.mirror_percentage, rule.mirror_percent)
        if fraction is not None:
            out.append(_policy(cluster_of(rule.mirror), fraction, behaviour))
    for mirror in rule.mirrors:
        fraction = _fraction(mirror.percentage, None)
        if fraction is not None:
            out.append(_policy(cluster_of(mirror.destination), fraction, behaviour))
    return out


def _fraction(percentage: Percent | None, deprecated_percent: int | None) -> Resource | None:
    """The mirrored share, or None when it is explicitly 0 (``percentage`` wins over the deprecated int)."""
    if percentage is not None:
        return per_million(percentage.value) if percentage.value > 0 else None
    if deprecated_percent is not None:
        return per_hundred(deprecated_percent) if deprecated_percent > 0 else None
    return per_hundred(FULL)


def _policy(cluster: str, fraction: Resource, behaviour: Behaviour) -> Resource:
    policy: Resource = {"cluster": cluster, "runtime_fraction": {"default_value": fraction}, "trace_sampled": False}
    if behaviour.shadow_host_suffix_disabled:
        policy["disable_shadow_host_suffix_append"] = True
    return policy
