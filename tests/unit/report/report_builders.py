"""Hand-made results (``harness.result``) for the gate, markdown and HTML tests."""

from __future__ import annotations

from collections.abc import Sequence

from harness.mesh.base import MeshInfo
from harness.result import CheckOutcome, CheckResult, Latency, RunResult, Traffic, Verdict
from harness.settings import StatSettings


def make_entry(
    check: str,
    *,
    case: str = "demo",
    outcome: CheckOutcome = "pass",
    version: dict[str, int] | None = None,
    status: dict[str, int] | None = None,
    latency_s: float = 0.005,
    latencies_s: Sequence[float] | None = None,
    distributions: dict[str, dict[str, int]] | None = None,
) -> CheckResult:
    """A check whose traffic has these version and status counts (and ``distributions`` of its
    expectations), every latency ``latency_s`` unless ``latencies_s`` lists them."""
    version = version or {"v1": 135}
    n = sum(version.values())
    traffic = Traffic(n, {"version": version, "status": status or {"200": n}, "flags": {"-": n}, **(distributions or {})},
                      Latency.of(latencies_s if latencies_s is not None else [latency_s] * n))
    return CheckResult(case, check, "cases/demo.yaml", 7, outcome, None if outcome == "error" else Verdict(outcome, ()),
                       n, 0, 0.5, traffic=traffic)


def make_doc(*checks: CheckResult, istio: str = "1.30", envoy: str = "1.38.3") -> RunResult:
    return RunResult(MeshInfo("local", istio, envoy, 0.0), StatSettings(), 1.0, checks)
