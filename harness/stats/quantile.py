"""Latency quantiles against a bound, distribution-free ("p99 below 50 ms", "p50 above 200 ms").

A quantile claim is a claim about one fraction: the q-quantile is at most ``bound`` exactly when
the share of values above ``bound`` is at most 1 - q, and at least ``bound`` when the share below
it is at most q. That share is binomial whatever the latency distribution, so the same sequential
rule as for fractions applies to one category, the values on the wrong side of ``bound``:

* pass when the share's upper bound is below the limit (shown: quantile on the right side);
* fail when its lower bound is above the limit (shown: quantile on the wrong side);
* the budget is planned for a correct mesh whose wrong-side share is (1 - margin) * limit.

Guarantees: P(pass) <= 1 - power when the quantile is on the wrong side of ``bound``;
P(fail or inconclusive) <= alpha when the wrong-side share is at most the planning share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.stats import intervals, plan
from harness.stats.operating import Operating, characterize
from harness.stats.rule import Band, Outcome, Stage, conclude

DEFAULT_MARGIN = 0.5


@dataclass(frozen=True)
class QuantileDecision:
    """Verdict of one look: wrong-side count and share with its interval at ``level``."""

    outcome: Outcome
    n: int
    look: int | None
    wrong: int
    observed: float
    low: float
    high: float
    level: float
    rule: str


@dataclass(frozen=True)
class QuantileDesign:
    """A planned check that the ``q``-quantile is below (``below=True``) or above ``bound``."""

    q: float
    bound: float
    below: bool
    margin: float
    alpha: float
    power: float
    looks: tuple[int, ...]
    stages: tuple[Stage, ...] = ()

    @classmethod
    def plan(
        cls,
        q: float,
        bound: float,
        *,
        below: bool = True,
        margin: float = DEFAULT_MARGIN,
        alpha: float = 1e-6,
        power: float = 0.999,
        max_requests: int | None = None,
        max_looks: int = plan.LOOKS,
    ) -> QuantileDesign:
        """Plan looks and budget; ``margin`` in (0, 1] sets the correct mesh's share (see module doc)."""
        plan.check_open("q", q, 0.0, 1.0)
        plan.check_open("alpha", alpha, 0.0, 0.5)
        plan.check_open("power", power, 0.5, 1.0)
        plan.check_open("margin", margin, 0.0, 1.0 + 1e-12)
        if not math.isfinite(bound):
            raise ValueError(f"bound must be a finite number (got {bound!r})")
        margin = min(margin, 1.0)
        band = _wrong_side(q, below, margin)
        stages = plan.fit((band,), alpha=alpha, beta=1.0 - power, max_requests=max_requests, max_looks=max_looks)
        return cls(q, float(bound), below, margin, alpha, power, tuple(s.n for s in stages), stages)

    def __post_init__(self) -> None:
        if not self.looks or tuple(s.n for s in self.stages) != self.looks:
            raise ValueError("a QuantileDesign needs a stage per look; build it with QuantileDesign.plan(...)")

    @property
    def limit(self) -> float:
        """Largest wrong-side share for which the quantile claim holds."""
        return self._band().high

    def decide(self, values: Sequence[float]) -> QuantileDecision:
        """Judge all values seen so far; decides only at planned looks (like FractionDesign.decide)."""
        n = len(values)
        wrong = sum(1 for v in values if (v > self.bound if self.below else v < self.bound))
        outcome, look, tail = conclude((self._band(),), (wrong,), n, self.stages)
        low, high = intervals.interval(wrong, n, tail)
        level = 1.0 - 2.0 * tail
        return QuantileDecision(
            outcome, n, look, wrong, wrong / n if n else 0.0, low, high, level, self._rule(outcome, level, n)
        )

    def operating(self, wrong_share: float) -> Operating:
        """Exact P(pass), P(fail), P(inconclusive) and E[n] when the true wrong-side share is given."""
        return characterize((self._band(),), self.stages, [wrong_share])

    def _band(self) -> Band:
        return _wrong_side(self.q, self.below, self.margin)

    def _rule(self, outcome: Outcome, level: float, n: int) -> str:
        side = "above" if self.below else "below"
        claim = f"{self.q:g}-quantile {'<=' if self.below else '>='} {self.bound:g}"
        share = f"the {intervals.percent(level)} interval of the share {side} {self.bound:g}"
        if outcome is Outcome.PASS:
            return f"pass: {share} lies below {self.limit:g}, so {claim} (n={n})"
        if outcome is Outcome.FAIL:
            return f"fail: {share} lies above {self.limit:g}, so not {claim} (n={n})"
        if outcome is Outcome.INCONCLUSIVE:
            return f"inconclusive: budget of {n} values spent; {share} still contains {self.limit:g}"
        return f"continue: {share} contains {self.limit:g} at n={n}"


def _wrong_side(q: float, below: bool, margin: float) -> Band:
    """The one category judged: values on the wrong side of the bound, at most ``limit`` of them."""
    limit = 1.0 - q if below else q
    return Band("wrong side", (1.0 - margin) * limit, -math.inf, limit)
