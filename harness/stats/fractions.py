"""Fractional expectations ("90% to v1, 10% to v2"): a sequential equivalence test.

A check passes when the observed fractions are *shown* to be within +/- delta of the expected
ones, fails when some fraction is shown to be outside, and is inconclusive (a failure) when the
request budget runs out first. The rule, its error split and why it holds are in ``rule.py`` and
``plan.py``; in one sentence: simultaneous exact (Clopper-Pearson) intervals per category, with
the error split over looks and categories by Bonferroni.

Guarantees, for every category set and true distribution (binomial model, one draw per request):

* correct mesh (true fractions == expected): P(fail or inconclusive) <= alpha;
* some category's true fraction at least delta_i away from expected: P(pass) <= 1 - power.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from harness.stats import intervals, plan
from harness.stats.operating import Operating, characterize
from harness.stats.rule import Band, Outcome, Stage, conclude
from harness.stats.simulate import Simulated, simulate

OTHER = "other"
"""Implicit category of observations whose value is not in the expected set (expected 0)."""

DEFAULT_DELTA = 0.05
DEFAULT_ALPHA = 1e-6
DEFAULT_POWER = 0.999


@dataclass(frozen=True)
class CategoryEstimate:
    """One category's evidence at a look: count, observed fraction and its interval."""

    name: str
    expected: float
    observed: float
    low: float
    high: float
    count: int
    delta: float = DEFAULT_DELTA


@dataclass(frozen=True)
class FractionDecision:
    """The verdict of one look, with everything a report needs to explain it.

    ``look`` indexes ``FractionDesign.looks`` (None when ``n`` is not a planned look); ``level``
    is the two-sided level of the intervals in ``categories``; ``rule`` says the rule in words.
    """

    outcome: Outcome
    n: int
    look: int | None
    categories: tuple[CategoryEstimate, ...]
    level: float
    rule: str
    alpha: float = DEFAULT_ALPHA
    power: float = DEFAULT_POWER


@dataclass(frozen=True)
class FractionDesign:
    """A planned check of observed fractions against expected ones (build with ``plan``).

    ``stages`` holds, per look, the interval tails that the guarantees were planned with.
    """

    expected: Mapping[str, float] = field(hash=False)
    deltas: Mapping[str, float] = field(hash=False)
    alpha: float
    power: float
    looks: tuple[int, ...]
    stages: tuple[Stage, ...] = ()

    def __post_init__(self) -> None:
        if not self.looks or tuple(s.n for s in self.stages) != self.looks:
            raise ValueError("a FractionDesign needs a stage per look; build it with FractionDesign.plan(...)")

    @classmethod
    def plan(
        cls,
        expected: Mapping[str, float],
        *,
        delta: float = DEFAULT_DELTA,
        relative: float | None = None,
        deltas: Mapping[str, float] | None = None,
        alpha: float = DEFAULT_ALPHA,
        power: float = DEFAULT_POWER,
        max_requests: int | None = None,
        max_looks: int = plan.LOOKS,
    ) -> FractionDesign:
        """Plan looks and budget for ``expected`` (weights, normalized to sum 1).

        Tolerances: ``delta`` (absolute) for every category, or ``relative`` (delta_i =
        relative * expected_i) when given; ``deltas`` overrides named categories. A category
        expected at 0 (including the implicit ``"other"``) gets the smallest positive delta of the
        others unless named in ``deltas``. Raises ValueError on bad input, or when
        ``max_requests`` is below the fewest requests that can meet alpha and power (the message
        says how many are needed). ``max_looks=1`` gives the fixed-n test.
        """
        plan.check_open("alpha", alpha, 0.0, 0.5)
        plan.check_open("power", power, 0.5, 1.0)
        shares = _normalize(expected)
        widths = _deltas(shares, delta=delta, relative=relative, deltas=deltas or {})
        bands = tuple(Band(name, e, e - widths[name], e + widths[name]) for name, e in shares.items())
        stages = plan.fit(bands, alpha=alpha, beta=1.0 - power, max_requests=max_requests, max_looks=max_looks)
        return cls(
            expected=MappingProxyType(shares),
            deltas=MappingProxyType(widths),
            alpha=alpha,
            power=power,
            looks=tuple(s.n for s in stages),
            stages=stages,
        )

    @property
    def budget(self) -> int:
        """Most requests the check can use (the last look)."""
        return self.looks[-1]

    def next_look(self, n: int) -> int | None:
        """The first planned look at or after ``n`` requests (None past the budget)."""
        return next((look for look in self.looks if look >= n), None)

    def decide(self, counts: Mapping[str, int]) -> FractionDecision:
        """Judge cumulative counts per observed value; keys not in ``expected`` count as ``"other"``.

        Decides only when the total is a planned look; between looks it says CONTINUE. A total
        past the budget is a caller error (ValueError): the guarantees hold only at planned looks.
        """
        tally = self._tally(counts)
        n = sum(tally.values())
        outcome, look, tail = conclude(self._bands(), tuple(tally.values()), n, self.stages)
        categories = tuple(self._estimate(name, tally[name], n, tail) for name in tally)
        level = 1.0 - 2.0 * tail
        rule = self._rule(outcome, categories, level, n, None if look is None else self.stages[look])
        return FractionDecision(
            outcome=outcome,
            n=n,
            look=look,
            categories=categories,
            level=level,
            rule=rule,
            alpha=self.alpha,
            power=self.power,
        )

    def operating(self, true: Mapping[str, float]) -> Operating:
        """P(pass), P(fail), P(inconclusive) and E[n] if the true fractions are ``true`` (see operating.py)."""
        return characterize(self._bands(), self.stages, self._probs(true))

    def simulate(self, true: Mapping[str, float], *, runs: int, seed: int) -> Simulated:
        """Outcome counts of ``runs`` simulated checks with true fractions ``true`` (fixed ``seed``)."""
        return simulate(self._bands(), self.stages, self._probs(true), runs=runs, seed=seed)

    def _probs(self, true: Mapping[str, float]) -> list[float]:
        """True fractions per design category; names not expected fall into ``"other"``."""
        probs = dict.fromkeys(self.expected, 0.0)
        for name, p in _normalize(true, with_other=False).items():
            probs[name if name in probs else OTHER] += p
        return list(probs.values())

    def _bands(self) -> tuple[Band, ...]:
        return tuple(Band(n, e, e - self.deltas[n], e + self.deltas[n]) for n, e in self.expected.items())

    def _tally(self, counts: Mapping[str, int]) -> dict[str, int]:
        tally = dict.fromkeys(self.expected, 0)
        for name, count in counts.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"count of {name!r} must be a non-negative integer (got {count!r})")
            tally[name if name in tally else OTHER] += count
        return tally

    def _estimate(self, name: str, count: int, n: int, tail: float) -> CategoryEstimate:
        low, high = intervals.interval(count, n, tail)
        return CategoryEstimate(
            name=name,
            expected=self.expected[name],
            observed=count / n if n else 0.0,
            low=low,
            high=high,
            count=count,
            delta=self.deltas[name],
        )

    def _rule(self, outcome: Outcome, categories: tuple[CategoryEstimate, ...], level: float, n: int,
              stage: Stage | None) -> str:
        widths = set(self.deltas.values())
        band = f"expected +/- {widths.pop():g}" if len(widths) == 1 else "expected +/- its delta"
        interval = f"{intervals.percent(level)} interval"
        if outcome is Outcome.PASS:
            return f"pass: every {interval} inside {band} (n={n})"
        if outcome is Outcome.FAIL:
            outside = [c.name for c in categories if c.low > c.expected + c.delta or c.high < c.expected - c.delta]
            return f"fail: the {interval} of {', '.join(outside)} lies outside {band} (n={n})"
        undecided = f"not every {interval} inside {band}, none outside"
        if stage is not None:  # at a look: say why each undecided category decided nothing
            undecided = f"neither shown inside nor outside {band}: {self._undecided(categories, stage)}"
        if outcome is Outcome.INCONCLUSIVE:
            return f"inconclusive: budget of {n} requests spent; {undecided}"
        return f"continue at n={n}: {undecided}; next look at n={self.next_look(n + 1)}"

    def _undecided(self, categories: tuple[CategoryEstimate, ...], stage: Stage) -> str:
        """Why a look decided nothing, per category not shown inside its band: where the observation lies
        against the band, and both intervals, since passing and failing use different ones (the fail
        interval is wider: a correct mesh may fail only with the little error the plan gives it)."""
        pass_level, fail_level = intervals.percent(stage.pass_level), intervals.percent(stage.fail_level)
        parts = []
        for c in categories:
            low, high = c.expected - c.delta, c.expected + c.delta
            if low < c.low and c.high < high:
                continue
            fail_low, fail_high = intervals.interval(c.count, stage.n, stage.fail_tail)
            parts.append(
                f"{c.name} = {c.observed:.3f}, {_distance(c.observed, low, high)} [{max(low, 0):.3f}, {min(high, 1):.3f}]; "
                f"pass needs its {pass_level} interval [{c.low:.3f}, {c.high:.3f}] inside the band, "
                f"fail needs its {fail_level} interval [{fail_low:.3f}, {fail_high:.3f}] wholly outside"
            )
        return "; ".join(parts)


def _distance(observed: float, low: float, high: float) -> str:
    """How far an observed fraction is off its band [low, high], or how near it is to the band's edge."""
    if observed > high:
        return f"{observed - high:.3f} above its band"
    if observed < low:
        return f"{low - observed:.3f} below its band"
    return f"inside (by {min(observed - low, high - observed):.3f}) its band"


def operating_characteristics(design: FractionDesign, true: Mapping[str, float]) -> tuple[float, float, float]:
    """(P(pass), P(fail), P(inconclusive)) if the true fractions are ``true``.

    Exact when at most two categories have a nonzero true fraction (dynamic program over the
    binomial count across looks); otherwise each value is a Bonferroni upper bound (see
    operating.py), which still proves "P(pass) <= 1 - power" and "P(fail or inconclusive) <= alpha".
    """
    result = design.operating(true)
    return result.p_pass, result.p_fail, result.p_inconclusive


def _normalize(weights: Mapping[str, float], *, with_other: bool = True) -> dict[str, float]:
    if not weights:
        raise ValueError("expected fractions are empty; give at least one category")
    for name, w in weights.items():
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
            raise ValueError(f"fraction of {name!r} must be a finite number >= 0 (got {w!r})")
    total = float(sum(weights.values()))
    if total <= 0.0:
        raise ValueError(f"fractions must not all be 0 (got {dict(weights)})")
    shares = {str(name): w / total for name, w in weights.items()}
    if with_other:
        shares.setdefault(OTHER, 0.0)
    return shares


def _deltas(
    shares: Mapping[str, float], *, delta: float, relative: float | None, deltas: Mapping[str, float]
) -> dict[str, float]:
    unknown = sorted(set(deltas) - set(shares))
    if unknown:
        raise ValueError(f"deltas name unknown categories {unknown}; known: {sorted(shares)}")
    if relative is not None:
        plan.check_open("relative", relative, 0.0, 1.0)
        widths = {name: relative * e for name, e in shares.items() if e > 0.0}
    else:
        plan.check_open("delta", delta, 0.0, 1.0)
        widths = {name: delta for name, e in shares.items() if e > 0.0}
    fallback = min(widths.values())
    widths.update(deltas)
    widths = {name: widths.get(name, fallback) for name in shares}
    for name, width in widths.items():
        plan.check_open(f"delta of {name!r}", width, 0.0, 1.0)
    return widths
