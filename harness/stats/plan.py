"""Planning a sequential design: the look schedule, the interval tails and the request budget.

The error budget is spent by Bonferroni, so each guarantee is a short sum:

* power: a category whose true fraction is outside its band can only pass at look k if its
  one-sided interval misses the truth, probability <= pass_tail_k. The pass tails over the looks
  sum to beta = 1 - power, so P(pass) <= beta, whatever the number of categories.
* alpha (correct mesh gets fail or inconclusive): P(fail at some look) + P(not all pass at the
  last look). The first part is at most ``FAIL_SHARE * alpha``: per look, category and side the
  fail tail is FAIL_SHARE * alpha / (2 * looks * categories with a nonzero expected fraction)
  (categories expected at 0 have count 0 under a correct mesh and cannot fail). The second part
  is computed exactly at the planning point; the budget is the smallest last look for which it
  is within the rest of alpha.

The pass tail is split equally over the looks. The first look is the smallest n at which a
correct mesh passes with probability at least ``FIRST_LOOK_PASS``; the others are spaced
geometrically up to the budget. Count, spacing and split were chosen by exact expected sample
sizes (bench/stats_requests_per_verdict.py): the expected n is flat near these values, and
unequal splits trade a few percent of budget against a few percent of expected n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.stats import intervals
from harness.stats.operating import one_binomial, outside
from harness.stats.rule import Band, Stage, regions

FAIL_SHARE = 0.1
"""Fraction of alpha given to false FAIL verdicts; the rest covers running out of budget."""

LOOKS = 8
"""Default number of looks (spacing and count chosen in bench/stats_requests_per_verdict.py)."""

FIRST_LOOK_PASS = 0.1
"""A correct mesh passes at the first look with at least this probability (earlier looks waste time)."""

LARGEST_BUDGET = 10_000_000
"""No design may need more requests than this; past it ``plan`` says which input to relax."""


def null_miss(bands: Sequence[Band], look: Stage) -> float:
    """P(not every band passes at ``look``) when every true fraction equals its expected value.

    Exact when one binomial describes all counts (``operating.one_binomial``), else the
    Bonferroni sum over the categories.
    """
    expected = [b.expected for b in bands]
    rs = [regions(b, look) for b in bands]
    coordinate = one_binomial(expected)
    if coordinate is not None:
        lo, hi = 0, look.n
        for role, r in zip(coordinate.roles, rs, strict=True):
            if role == 0:
                if not r.passes(0):
                    return 1.0
            elif role == 1:
                lo, hi = max(lo, r.pass_from), min(hi, r.pass_to)
            else:
                lo, hi = max(lo, look.n - r.pass_to), min(hi, look.n - r.pass_from)
        return outside(lo, hi, look.n, coordinate.p)
    return min(1.0, sum(outside(r.pass_from, r.pass_to, look.n, b.expected) for b, r in zip(bands, rs, strict=True)))


def schedule(
    bands: Sequence[Band],
    *,
    alpha: float,
    beta: float,
    looks: int = LOOKS,
) -> tuple[Stage, ...]:
    """The stages of a design with ``looks`` looks (fewer if the budget is too small to space them)."""
    positive = sum(1 for b in bands if b.expected > 0.0)
    fail_tail = FAIL_SHARE * alpha / (2 * looks * max(1, positive))
    pass_tail = beta / looks
    allowed = (1.0 - FAIL_SHARE) * alpha
    budget = smallest(lambda n: null_miss(bands, Stage(n, pass_tail, fail_tail)) <= allowed)
    if budget is None:
        raise ValueError(
            f"no design with at most {LARGEST_BUDGET} requests meets alpha={alpha:g} and power={1 - beta:g}; "
            "use a larger delta, alpha or a smaller power"
        )
    first = smallest(lambda n: null_miss(bands, Stage(n, pass_tail, fail_tail)) <= 1.0 - FIRST_LOOK_PASS)
    first = budget if first is None else min(first, budget)
    sizes = _geometric(first, budget, looks)
    if len(sizes) < looks:  # too few distinct sizes: split the errors over the looks that remain
        return schedule(bands, alpha=alpha, beta=beta, looks=len(sizes))
    return tuple(Stage(n, pass_tail, fail_tail) for n in sizes)


def smallest(holds: Callable[[int], bool]) -> int | None:
    """Smallest n in [1, LARGEST_BUDGET] where ``holds`` is true, assuming it stays true after.

    Doubling then bisection: about 2 log2(n) evaluations. The result always satisfies ``holds``.
    """
    hi = 1
    while not holds(hi):
        if hi >= LARGEST_BUDGET:
            return None
        hi = min(2 * hi, LARGEST_BUDGET)
    return intervals.bisect_true(hi // 2, hi, holds)  # holds(hi // 2) is false, or hi // 2 == 0


def _geometric(first: int, last: int, count: int) -> list[int]:
    """``count`` increasing integers from first to last, evenly spaced on a log scale (deduplicated)."""
    if count == 1 or first >= last:
        return [last]
    ratio = (last / first) ** (1.0 / (count - 1))
    sizes = sorted({min(last, round(first * ratio**k)) for k in range(count - 1)} | {last})
    return sizes


def fit(
    bands: tuple[Band, ...], *, alpha: float, beta: float, max_requests: int | None, max_looks: int = LOOKS
) -> tuple[Stage, ...]:
    """The default schedule, or one with fewer looks that fits ``max_requests``, or a clear error.

    Fewer looks need fewer requests at most (the pass tail is split fewer ways), down to a
    single look, the fixed-n test; if even that needs more than ``max_requests``, no design can
    keep the stated alpha and power, and the error says how many requests it would take.
    """
    if isinstance(max_looks, bool) or not isinstance(max_looks, int) or not 1 <= max_looks <= 100:
        raise ValueError(f"max_looks must be an integer in [1, 100] (got {max_looks!r})")
    if max_requests is not None and max_requests < 1:
        raise ValueError(f"max_requests must be at least 1 (got {max_requests})")
    for looks in range(max_looks, 0, -1):
        stages = schedule(bands, alpha=alpha, beta=beta, looks=looks)
        if max_requests is None or stages[-1].n <= max_requests:
            return stages
    raise ValueError(
        f"max_requests={max_requests} is too small: alpha={alpha:g} and power={1 - beta:g} need at least "
        f"{stages[-1].n} requests (a single look); raise max_requests, or relax delta, alpha or power"
    )


def check_open(name: str, value: float, low: float, high: float) -> None:
    """Reject anything but a number strictly between low and high, naming the parameter."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low < value < high:
        raise ValueError(f"{name} must be a number in ({low:g}, {high:g}) (got {value!r})")
