"""Durations as Istio accepts them: Go duration strings ("1s", "500ms", "1h30m") <-> float seconds.

Istio's CRDs take durations as strings, and istiod parses them with Go's duration grammar: one or
more ``<number><unit>`` terms, an optional leading sign, and the bare ``0``. The model keeps
seconds as a float so that translators need no parsing; ``format_duration`` gives the proto-JSON
form Envoy wants ("0.5s").
"""

from __future__ import annotations

import re

ACCEPTED_FORMS = "a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 1.5s, 1m30s"

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign, accepted by Go
    "μs": 1e-6,  # U+03BC Greek mu, accepted by Go
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_TERM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h)"
_DURATION = re.compile(rf"[-+]?(?:{_TERM})+")
_TERMS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; raises ``ValueError`` naming the accepted forms."""
    stripped = text.strip()
    if stripped in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION.fullmatch(stripped):
        raise ValueError(f"not a valid duration; use {ACCEPTED_FORMS}")
    sign = -1.0 if stripped.startswith("-") else 1.0
    total = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _TERMS.findall(stripped))
    return sign * total


def format_duration(seconds: float) -> str:
    """Proto-JSON duration for Envoy: ``0.5`` -> ``"0.5s"``, ``2`` -> ``"2s"``, nanosecond precision."""
    nanos = round(seconds * 1_000_000_000)
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), 1_000_000_000)
    if frac == 0:
        return f"{sign}{whole}s"
    return f"{sign}{whole}.{frac:09d}".rstrip("0") + "s"
