"""Istio quantities in the protobuf-JSON shapes Envoy takes: durations and fractional percentages.

istiod converts percentages two ways (``route.go``, reference istio-semantics.md section 0.4):
``Percent.value`` (a double, 0-100) becomes parts per million, truncated as Go's ``uint32(v*10000)``
does; the deprecated integer fields (``fault.delay.percent``, ``mirrorPercent``) stay per hundred.
"""

from __future__ import annotations

from harness.mesh.local.translate.inputs import Resource


def envoy_duration(seconds: float) -> str:
    """Seconds as a protobuf JSON duration: 0.5 -> ``"0.5s"``, 2.0 -> ``"2s"`` (nanosecond precision)."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def per_million(percent: float) -> Resource:
    """``translatePercentToFractionalPercent``: 12.5 -> ``{125000, MILLION}`` (truncated, like Go's uint32())."""
    return {"numerator": int(percent * 10000), "denominator": "MILLION"}


def per_hundred(percent: int) -> Resource:
    """``translateIntegerToFractionalPercent``: 5 -> ``{5, HUNDRED}``."""
    return {"numerator": percent, "denominator": "HUNDRED"}
