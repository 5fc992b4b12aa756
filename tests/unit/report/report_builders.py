"""Hand-made result documents (``harness.report.result``) for the gate, markdown and HTML tests."""

from __future__ import annotations

from typing import Any

from harness.report.result import SCHEMA_VERSION
from harness.result import latency_json


def make_entry(
    check: str,
    *,
    case: str = "demo",
    outcome: str = "pass",
    version: dict[str, int] | None = None,
    status: dict[str, int] | None = None,
    latency_s: float = 0.005,
    expectations: list[dict[str, Any]] | None = None,
    distributions: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """A check entry whose traffic has these version and status counts (and ``distributions`` of its
    expectations), every latency ``latency_s``."""
    version = version or {"v1": 135}
    n = sum(version.values())
    return {
        "case": case, "check": check, "file": "cases/demo.yaml", "line": 7, "outcome": outcome,
        "requests": n, "stale_responses": 0, "seconds": 0.5, "error": None,
        "traffic": {
            "requests": n,
            "distributions": {"version": version, "status": status or {"200": n}, "flags": {"-": n},
                              **(distributions or {})},
            "latency": latency_json([latency_s] * n),
        },
        "expectations": expectations or [],
    }


def make_expectation(expectation: str, field: str, counts: dict[str, int], *, kind: str = "every",
                     outcome: str = "pass") -> dict[str, Any]:
    n = sum(counts.values())
    return {
        "expectation": expectation, "field": field, "kind": kind, "outcome": outcome, "requests": n,
        "counts": counts, "expected": {}, "observed": {k: v / n for k, v in counts.items()} if n else {}, "interval": {},
        "level": None, "alpha": 0.0, "power": 0.999, "delta": {}, "leak": 0.05, "rule": "", "counterexample": None,
        "summary": None, "bounds_s": {},
    }


def make_doc(*checks: dict[str, Any], istio: str = "1.30", envoy: str = "1.38.3") -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "mesh": {"kind": "local", "istio_version": istio, "envoy_version": envoy},
        "settings": {}, "seconds": 1.0,
        "summary": {k: sum(1 for c in checks if c["outcome"] == k) for k in ("pass", "fail", "inconclusive", "error")},
        "checks": list(checks),
    }
