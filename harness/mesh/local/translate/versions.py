"""Which istiod behaviours apply to the Istio release the local mesh emulates.

istiod changes its generated config between releases behind feature flags whose defaults flip
(reference istio-semantics.md section 7). The translator asks this one object instead of comparing
version strings in many places, so a new release is one new row here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?$")


@dataclass(frozen=True)
class Behaviour:
    """The release-dependent switches, each named after what it changes in the Envoy config."""

    alt_stat_name: bool
    """Clusters carry ``alt_stat_name: "<name>;"`` (1.23+, PR #51861)."""
    retry_on_503: bool
    """The default retry policy lists 503 in ``retriable_status_codes`` (up to 1.23;
    ``EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`` from 1.24)."""
    absolute_fqdn_domain: bool
    """Virtual hosts also match the FQDN with a trailing dot (1.27+, ``PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN``)."""
    track_remaining: bool
    """Circuit breakers track the ``remaining_*`` gauges (up to 1.28;
    ``DISABLE_TRACK_REMAINING_CB_METRICS`` from 1.29)."""
    shadow_host_suffix_disabled: bool
    """Mirror policies set ``disable_shadow_host_suffix_append: true``, so mirrored requests keep their Host
    (1.28+, ``DISABLE_SHADOW_HOST_SUFFIX``, PR #57708); before, the field is absent and Envoy appends ``-shadow``."""
    redirect_prefix_rewrite: bool
    """``HTTPRedirect.prefixRewrite`` exists and becomes the redirect's ``prefix_rewrite`` (1.31+, PR #60385);
    older releases have no such field."""
    consistent_hash_retry: bool
    """A VirtualService route to one destination with a DR ``consistentHash`` starts from the retry default
    without the previous_hosts predicate (1.23+: ``ConvertPolicy(policy, consistentHash)``; 1.22's
    ``ConvertPolicy(policy)`` has no such variant)."""
    dr_merge_by_export_to: bool
    """DestinationRules for one host merge only when their ``exportTo`` agree (1.24+,
    ``ENABLE_ENHANCED_DESTINATIONRULE_MERGE``); before, they all merge into one (``select.DestinationRuleIndex``)."""
    proxy_100_continue: bool
    """HTTP connection managers set ``proxy_100_continue: true``: Envoy passes ``100 Continue`` through
    instead of answering ``Expect: 100-continue`` itself (1.23+, ``ENABLE_100_CONTINUE_HEADERS``, PR #50782)."""
    panic_threshold_off: bool
    """Every outbound cluster gets ``common_lb_config.healthy_panic_threshold: 0`` (panic mode off) unless an
    outlierDetection ``minHealthPercent`` set it (1.31+: ``PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS`` defaults on,
    PR #60690, ``applyLoadBalancer``); before, only clusters with outlierDetection had it."""


def behaviour_for(istio_version: str) -> Behaviour:
    """The switches for ``"1.30"`` or ``"1.30.3"``; anything else is a ValueError naming the expected form."""
    m = _VERSION.match(istio_version.strip())
    if not m or m.group(1) != "1":
        raise ValueError(f"istio_version: expected a 1.x release such as '1.30' or '1.30.3' (got {istio_version!r})")
    minor = int(m.group(2))
    return Behaviour(
        alt_stat_name=minor >= 23,
        retry_on_503=minor <= 23,
        absolute_fqdn_domain=minor >= 27,
        track_remaining=minor <= 28,
        shadow_host_suffix_disabled=minor >= 28,
        redirect_prefix_rewrite=minor >= 31,
        consistent_hash_retry=minor >= 23,
        dr_merge_by_export_to=minor >= 24,
        proxy_100_continue=minor >= 23,
        panic_threshold_off=minor >= 31,
    )
