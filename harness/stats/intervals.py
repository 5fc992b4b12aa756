"""Exact (Clopper-Pearson) one-sided confidence bounds for a binomial proportion.

Why exact bounds: every error rate the harness states is proved from the binomial model
(Envoy draws each request independently, reference/envoy-lab.md 4.6), and a Clopper-Pearson
bound has coverage of at least its level for every true proportion and every n, with no
normal approximation that breaks down at 1e-6 tails or for fractions near 0 and 1.

Bounds take a *tail* (the one-sided error), not a confidence level: ``lower(x, n, t)`` is
below the true proportion with probability at least ``1 - t``. A two-sided interval built
from ``lower`` and ``upper`` at tail ``t`` each has level ``1 - 2 t``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy import special


def lower(count: int, n: int, tail: float) -> float:
    """Lower bound L with P(L > p) <= tail for X ~ Binomial(n, p), X = count."""
    _check(count, n, tail)
    if count == 0:
        return 0.0
    return float(special.betaincinv(count, n - count + 1, tail))


def upper(count: int, n: int, tail: float) -> float:
    """Upper bound U with P(U < p) <= tail for X ~ Binomial(n, p), X = count."""
    _check(count, n, tail)
    if count == n:
        return 1.0
    # betainccinv inverts the upper tail directly: no 1 - tail rounding at tiny tails.
    return float(special.betainccinv(count + 1, n - count, tail))


def interval(count: int, n: int, tail: float) -> tuple[float, float]:
    """(lower, upper) at ``tail`` each; with no observations yet, everything is possible: (0, 1)."""
    if n == 0:
        return 0.0, 1.0
    return lower(count, n, tail), upper(count, n, tail)


def first_count(n: int, holds: Callable[[int], bool]) -> int:
    """Smallest count in [0, n] where a predicate monotone in the count turns true (n + 1 if never).

    Used to turn "interval above/below a limit" into count thresholds by bisection over the very
    same bound functions that ``decide`` uses, so that exact error computations over counts
    describe exactly the rule that is applied to data.
    """
    if not holds(n):
        return n + 1
    return bisect_true(-1, n, holds)


def bisect_true(lo: int, hi: int, holds: Callable[[int], bool]) -> int:
    """The smallest x in (lo, hi] where a monotone predicate holds, given it fails at ``lo`` (or ``lo``
    lies below the domain) and holds at ``hi``."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid
    return hi


def percent(level: float) -> str:
    """Render a confidence level so that the part below 100% keeps two significant digits.

    0.99975 -> "99.975%", 1 - 2e-8 -> "99.999998%", 0.95 -> "95%".
    """
    gap = 100.0 * (1.0 - level)
    if gap <= 0.0:
        return "100%"
    decimals = max(0, 1 - math.floor(math.log10(gap)))
    text = f"{100.0 * level:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def _check(count: int, n: int, tail: float) -> None:
    if n < 1 or not 0 <= count <= n:
        raise ValueError(f"need 0 <= count <= n and n >= 1 (got count={count}, n={n})")
    if not 0.0 < tail < 0.5:
        raise ValueError(f"tail must be in (0, 0.5) (got {tail})")
