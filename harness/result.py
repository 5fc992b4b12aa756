"""What a check's judged traffic looked like, whatever its verdict: the behaviour fingerprint.

The upgrade gate compares two runs of the same check. Its verdict alone would hide changes (a check
on ``status`` says nothing of which version answered, and an every-request judge stops counting at
its first counterexample), so every check also records, over all the responses it judged:

* the distribution of versions, statuses and Envoy response flags;
* the categories of each of its per-request expectations on other fields (attempts, mirror copies,
  what the upstream saw...), keyed by the expectation's description;
* the latencies: quantiles for the gate, a histogram for the HTML report.

Pure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.expect import AnyExpectation, Expectation, Sample
from harness.mesh.base import Observation

DISTRIBUTIONS = ("version", "status", "flags")
"""The per-request categories every check records; an expectation on one of these fields adds nothing."""
_COVERED = {*DISTRIBUTIONS, "grpc_status"}

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}

BINS_PER_DECADE = 20
"""Latency histogram bins are log-spaced on one fixed grid (edges 10^(k/20) s, 12% wide), so two runs' histograms line up."""

NO_RESPONSE = "no response"


@dataclass(frozen=True)
class Traffic:
    """The judged responses of one check: category counts per distribution, and every latency in seconds."""

    distributions: Mapping[str, Mapping[str, int]]
    latencies_s: tuple[float, ...] = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.latencies_s)


class TrafficTally:
    """Accumulates a check's judged samples batch by batch (the runner's side of ``Traffic``)."""

    def __init__(self, expectations: Sequence[AnyExpectation] = ()) -> None:
        self._extra = {e.describe(): e for e in expectations if isinstance(e, Expectation) and e.field not in _COVERED}
        self._counts: dict[str, Counter[str]] = {name: Counter() for name in [*DISTRIBUTIONS, *self._extra]}
        self._latencies: list[float] = []

    def add(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            for name in DISTRIBUTIONS:
                self._counts[name][category(sample.obs, name)] += 1
            for name, expectation in self._extra.items():
                self._counts[name][expectation.category(sample)] += 1
            self._latencies.append(sample.obs.latency_s)

    def freeze(self) -> Traffic:
        return Traffic({k: dict(v) for k, v in self._counts.items()}, tuple(self._latencies))


def category(obs: Observation, distribution: str) -> str:
    """``v1`` / ``none``; ``200`` / ``grpc 14`` / ``no response``; ``UF,URX`` / ``-``."""
    if distribution == "version":
        return obs.version or "none"
    if distribution == "status":
        if obs.grpc_status is not None:
            return f"grpc {obs.grpc_status}"
        return str(obs.status) if obs.status else NO_RESPONSE
    return ",".join(obs.flags) or "-"


def traffic_json(traffic: Traffic) -> dict[str, Any]:
    """The result document's ``traffic`` entry: counts, latency quantiles (seconds) and histogram."""
    return {
        "requests": traffic.n,
        "distributions": {k: dict(sorted(v.items())) for k, v in traffic.distributions.items()},
        "latency": latency_json(traffic.latencies_s),
    }


def latency_json(latencies_s: Sequence[float]) -> dict[str, Any] | None:
    """``{p50, p90, p99, max, histogram: [[low_s, high_s, count], ...]}`` (non-empty bins only); None without data."""
    if not latencies_s:
        return None
    ordered = sorted(latencies_s)
    entry: dict[str, Any] = {name: round(quantile(ordered, q), 6) for name, q in QUANTILES.items()}
    entry["max"] = round(ordered[-1], 6)
    bins: Counter[int] = Counter(_bin(v) for v in ordered)
    entry["histogram"] = [[_edge(k), _edge(k + 1), bins[k]] for k in sorted(bins)]
    return entry


def quantile(ordered: Sequence[float], q: float) -> float:
    """The empirical q-quantile of sorted values: the value at rank ceil(q n)."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


_FLOOR_BIN = -100  # 10 microseconds: anything faster (or a clock glitch at 0) lands in the first bin


def _bin(seconds: float) -> int:
    if seconds <= 0:
        return _FLOOR_BIN
    return max(_FLOOR_BIN, math.floor(math.log10(seconds) * BINS_PER_DECADE))


def _edge(k: int) -> float:
    return float(f"{10 ** (k / BINS_PER_DECADE):.6g}")
