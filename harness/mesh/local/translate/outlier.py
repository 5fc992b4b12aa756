"""outlierDetection -> ``cluster.outlier_detection`` and the panic threshold, as istiod 1.30 builds them.

``applyOutlierDetection`` (reference sections 0.6 and 3.6):

- success-rate ejection is always off (``enforcing_success_rate: 0``);
- ``consecutive_5xx`` and ``consecutive_gateway_failure`` are set only when given, each with its
  enforcement at 100 (0 when the count is 0). Left unset, Envoy's defaults stay: 5 consecutive 5xx
  enforced at 100%, gateway failures not enforced;
- ``interval``, ``baseEjectionTime`` when given; ``maxEjectionPercent`` when > 0;
- ``splitExternalLocalOriginErrors`` turns the split on, with local-origin success rate off and,
  when ``consecutiveLocalOriginFailures`` > 0, that count enforced at 100;
- the deprecated ``consecutiveErrors`` is ignored (validation warns);
- ``common_lb_config.healthy_panic_threshold`` = ``minHealthPercent`` (default 0: panic mode off, so
  a cluster whose hosts are all ejected answers 503 UH instead of spreading over ejected hosts).
  istiod forces 0 for services that send unhealthy endpoints; local services never do.
"""

from __future__ import annotations

from harness.istio.model import OutlierDetection
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.units import envoy_duration

ENFORCED = 100


def translate_outlier_detection(outlier: OutlierDetection | None) -> Resource:
    """The cluster fields ``outlier_detection`` and ``common_lb_config`` (empty without outlierDetection)."""
    if outlier is None:
        return {}
    out: Resource = {"enforcing_success_rate": 0}
    if outlier.consecutive_5xx_errors is not None:
        out["consecutive_5xx"] = outlier.consecutive_5xx_errors
        out["enforcing_consecutive_5xx"] = _enforcing(outlier.consecutive_5xx_errors)
    if outlier.consecutive_gateway_errors is not None:
        out["consecutive_gateway_failure"] = outlier.consecutive_gateway_errors
        out["enforcing_consecutive_gateway_failure"] = _enforcing(outlier.consecutive_gateway_errors)
    if outlier.interval is not None:
        out["interval"] = envoy_duration(outlier.interval)
    if outlier.base_ejection_time is not None:
        out["base_ejection_time"] = envoy_duration(outlier.base_ejection_time)
    if outlier.max_ejection_percent:
        out["max_ejection_percent"] = outlier.max_ejection_percent
    if outlier.split_external_local_origin_errors:
        out["split_external_local_origin_errors"] = True
        if outlier.consecutive_local_origin_failures:
            out["consecutive_local_origin_failure"] = outlier.consecutive_local_origin_failures
            out["enforcing_consecutive_local_origin_failure"] = ENFORCED
        out["enforcing_local_origin_success_rate"] = 0
    panic = float(outlier.min_health_percent or 0)
    return {"outlier_detection": out, "common_lb_config": {"healthy_panic_threshold": {"value": panic}}}


def _enforcing(count: int) -> int:
    return ENFORCED if count > 0 else 0
