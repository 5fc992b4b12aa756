"""``latency``: how long each request took as the caller measured it (send to last byte).

Three forms, each its own expectation:

* ``{at_least: 200ms}`` and/or ``{below: 2s}``: every request. Use a bound only where it is
  certain. A fault delay is a lower bound that holds on any machine; an upper bound ("a 504 comes
  before 1.5s") holds only if the machine is not so loaded that scheduling adds the slack, so keep
  upper bounds generous (several times the expected time) or use a quantile instead.
* ``{fraction_at_least: {bound: 200ms, expected: 0.5}}``: the share of requests taking at least
  ``bound`` is a random split (a 50% fault delay), judged like any fraction.
* ``{p99: {below: 1s}}`` or ``{p50: {at_least: 200ms}}``: a latency quantile against a bound,
  distribution-free (``harness.stats.QuantileDesign``).

A request that got no response at all is in category ``error`` (it neither meets nor misses a bound).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.expect.base import (
    NO_RESPONSE,
    Classifier,
    Expectation,
    Need,
    Sample,
    answered,
    show_seconds,
)


@dataclass(frozen=True)
class LatencyRange(Classifier):
    """``at_least <= latency < below``; either bound may be absent."""

    at_least: float | None = None
    below: float | None = None

    @property
    def label(self) -> str:
        """The category of a request inside the range: ``at least 200ms``, ``below 2s``, ``200ms to 2s``."""
        if self.at_least is not None and self.below is not None:
            return f"{show_seconds(self.at_least)} to {show_seconds(self.below)}"
        if self.at_least is not None:
            return f"at least {show_seconds(self.at_least)}"
        return f"below {show_seconds(self.below or 0.0)}"

    def category(self, sample: Sample) -> str:
        if not answered(sample.obs):
            return NO_RESPONSE
        latency = sample.obs.latency_s
        if self.at_least is not None and latency < self.at_least:
            return f"below {show_seconds(self.at_least)}"
        if self.below is not None and latency >= self.below:
            return f"{show_seconds(self.below)} or more"
        return self.label

    def detail(self, sample: Sample) -> str:
        if not answered(sample.obs):
            return NO_RESPONSE
        return f"{self.category(sample)} ({show_seconds(sample.obs.latency_s)})"


@dataclass(frozen=True)
class QuantileExpectation:
    """The ``q``-quantile of latency is below ``bound`` (or at least ``bound`` with ``at_least``)."""

    field: str
    q: float
    bound: float
    at_least: bool = False

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset()

    def describe(self) -> str:
        side = "at least" if self.at_least else "below"
        return f"{self.field} {side} {show_seconds(self.bound)}"


def latency_range(at_least: float | None = None, below: float | None = None) -> Expectation:
    """Every request took at least ``at_least`` and less than ``below`` seconds (either may be None)."""
    classify = LatencyRange(at_least, below)
    return Expectation("latency", classify, every=classify.label)


def latency_split(bound: float, expected: float) -> Expectation:
    """A share ``expected`` of requests took at least ``bound`` seconds, the rest less."""
    above = LatencyRange(at_least=bound)
    below = LatencyRange(below=bound)
    return Expectation("latency.fraction_at_least", above, fractions={above.label: expected, below.label: 1.0 - expected})


def latency_quantile(name: str, q: float, *, below: float | None = None, at_least: float | None = None) -> QuantileExpectation:
    """``latency_quantile("p99", 0.99, below=1.0)``: the 99th percentile is below 1s."""
    if (below is None) == (at_least is None):
        raise ValueError("give exactly one of below and at_least")
    bound = below if below is not None else at_least
    assert bound is not None
    return QuantileExpectation(f"latency.{name}", q, bound, at_least=at_least is not None)
