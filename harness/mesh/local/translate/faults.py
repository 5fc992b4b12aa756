"""Istio ``HTTPFaultInjection`` -> the per-route ``envoy.filters.http.fault`` config (``route.go:TranslateFault``).

Reference istio-semantics.md sections 2.9 and 5:

- ``delay.fixedDelay`` -> ``delay.fixed_delay``; ``delay.percentage`` per million, else the
  deprecated integer ``percent`` per hundred, which is 0 when unset: a delay without a percentage
  never fires. ``exponentialDelay`` gives no delay (validation rejects it anyway).
- ``abort.httpStatus`` -> ``http_status``; ``abort.grpcStatus`` (a code name) -> its number;
  ``abort.percentage`` per million, and **no percentage at all when unset**, which Envoy reads as
  0%: an abort without a percentage never fires. An abort without a status gives no abort.
- If neither delay nor abort survives, istiod still attaches the filter config, empty.
"""

from __future__ import annotations

from harness.istio.model import Abort, Delay, HTTPFaultInjection
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.units import envoy_duration, per_hundred, per_million

GRPC_STATUS_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
"""gRPC status names as ``abort.grpcStatus`` spells them, and their codes (``pkg/util/grpc/codes.go``)."""


def translate_fault(fault: HTTPFaultInjection) -> Resource:
    """The ``HTTPFault`` (with its ``@type``) for ``typed_per_filter_config["envoy.filters.http.fault"]``."""
    out: Resource = {"@type": names.TYPE_FAULT}
    if fault.delay is not None and (delay := _delay(fault.delay)) is not None:
        out["delay"] = delay
    if fault.abort is not None and (abort := _abort(fault.abort)) is not None:
        out["abort"] = abort
    return out


def _delay(delay: Delay) -> Resource | None:
    if delay.fixed_delay is None:
        return None
    percentage = (
        per_million(delay.percentage.value) if delay.percentage is not None else per_hundred(delay.percent or 0)
    )
    return {"fixed_delay": envoy_duration(delay.fixed_delay), "percentage": percentage}


def _abort(abort: Abort) -> Resource | None:
    out: Resource
    if abort.http_status is not None:
        out = {"http_status": abort.http_status}
    elif abort.grpc_status is not None and abort.grpc_status in GRPC_STATUS_CODES:
        out = {"grpc_status": GRPC_STATUS_CODES[abort.grpc_status]}
    else:
        return None
    if abort.percentage is not None:
        out["percentage"] = per_million(abort.percentage.value)
    return out
