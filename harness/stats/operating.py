"""Operating characteristics of a sequential design: P(pass), P(fail), P(inconclusive), E[n].

Exact when one binomial count describes every category (at most two categories have a nonzero
true fraction and, if two, no mass falls outside the bands): a dynamic program carries the
distribution of that count across the looks, removes the mass that stopped (pass or fail) at
each look and convolves the rest with the binomial increment to the next look. Envoy's
per-request draws are independent (reference/envoy-lab.md 4.6), so this is the exact law.

Otherwise the marginal count of each category is still binomial, and Bonferroni over the
categories gives guaranteed *upper bounds*, which is what the guarantees need:

* P(pass) <= min over categories of P(that category alone, stopped by its own pass or fail
  regions, ends in pass)
* P(fail) <= sum over categories of P(that category's fail region is reached at some look)
* P(inconclusive) <= sum over categories of P(not passing at the last look)
* E[n] <= n_1 + sum_k (n_k - n_{k-1}) * min(1, P(not passed or failed at look k-1))

Both also give the law of the number of requests a check uses, N (the look it stops at, or the
budget when it ends inconclusive): ``survival[k]`` = P(N > n_k), exact from the dynamic program,
an upper bound from the per-look bounds above (made non-increasing, since P(N > n_k) is), so a
quantile read from it (``quantile_n``) is exact, or an upper bound of the true quantile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from harness.stats.rule import Band, Regions, Stage, regions

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Operating:
    """Probabilities of each final outcome and the expected number of requests.

    When ``exact`` is false every number is an upper bound (so the three probabilities may sum
    to more than 1). ``looks`` and ``survival`` give the law of the requests used: the mean alone
    hides how long a slow check takes, and a CI budget is set by a high quantile (``quantile_n``).
    """

    p_pass: float
    p_fail: float
    p_inconclusive: float
    expected_n: float
    exact: bool
    looks: tuple[int, ...] = ()
    """Cumulative requests at each look (empty when built without the law of N)."""
    survival: tuple[float, ...] = ()
    """Per look k: P(N > looks[k]), N = requests the check uses; 0 at the last look (N <= budget)."""

    def quantile_n(self, q: float) -> int:
        """Fewest requests ``m`` (a look) with P(N <= m) >= q: exact, or an upper bound when not ``exact``."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must lie strictly between 0 and 1 (got {q})")
        if not self.looks:
            raise ValueError("this Operating carries no per-look law of N; build it with characterize()")
        return next(n for n, above in zip(self.looks, self.survival, strict=True) if above <= 1.0 - q)


def characterize(bands: Sequence[Band], stages: Sequence[Stage], probs: Sequence[float]) -> Operating:
    """Operating characteristics when band i's true fraction is ``probs[i]``: exact if possible, else bounds."""
    stage_regions = [[regions(b, s) for b in bands] for s in stages]
    coordinate = one_binomial(probs)
    if coordinate is not None:
        return exact(stages, stage_regions, coordinate)
    return bounds(stages, stage_regions, probs)


@dataclass(frozen=True)
class Coordinate:
    """Every category's count as a function of one binomial count ``x ~ Binomial(n, p)``.

    ``roles[i]`` is 0 (count always 0), 1 (count is x) or -1 (count is n - x).
    """

    p: float
    roles: tuple[int, ...]

    def count(self, role: int, x: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
        if role == 1:
            return x
        if role == -1:
            return n - x
        return np.zeros_like(x)


def one_binomial(probs: Sequence[float]) -> Coordinate | None:
    """Describe all counts by one binomial when possible (see module docstring), else None."""
    positive = [i for i, p in enumerate(probs) if p > 0.0]
    roles = [0] * len(probs)
    if not positive:
        return Coordinate(p=0.0, roles=tuple(roles))
    if len(positive) == 1:
        roles[positive[0]] = 1
        return Coordinate(p=float(probs[positive[0]]), roles=tuple(roles))
    if len(positive) == 2 and abs(sum(probs) - 1.0) <= 1e-12:
        first, second = positive
        roles[first], roles[second] = 1, -1
        return Coordinate(p=float(probs[first]), roles=tuple(roles))
    return None


def masks(coordinate: Coordinate, regions: Sequence[Regions], n: int) -> tuple[BoolArray, BoolArray]:
    """(pass, fail) as boolean arrays over x = 0..n for one look; fail wins over pass."""
    x = np.arange(n + 1, dtype=np.int64)
    passing = np.ones(n + 1, dtype=bool)
    failing = np.zeros(n + 1, dtype=bool)
    for role, region in zip(coordinate.roles, regions, strict=True):
        c = coordinate.count(role, x, n)
        passing &= (c >= region.pass_from) & (c <= region.pass_to)
        failing |= (c <= region.fail_to) | (c >= region.fail_from)
    return passing & ~failing, failing


def exact(looks: Sequence[Stage], regions: Sequence[Sequence[Regions]], coordinate: Coordinate) -> Operating:
    """Dynamic program over the single binomial count across the looks (module docstring)."""
    alive: FloatArray = np.ones(1)  # P(x = 0 and not stopped) before any request
    p_pass = p_fail = 0.0
    survival: list[float] = []
    previous = 0
    for look, stage_regions in zip(looks, regions, strict=True):
        alive = _advance(alive, look.n - previous, coordinate.p)
        passing, failing = masks(coordinate, stage_regions, look.n)
        p_pass += float(alive[passing].sum())
        p_fail += float(alive[failing].sum())
        alive = np.where(passing | failing, 0.0, alive)
        survival.append(float(alive.sum()))
        previous = look.n
    p_inconclusive = survival[-1]
    survival[-1] = 0.0  # an inconclusive check stops at the budget
    return _with_law(Operating(p_pass, p_fail, p_inconclusive, 0.0, exact=True), looks, survival)


def bounds(looks: Sequence[Stage], regions: Sequence[Sequence[Regions]], probs: Sequence[float]) -> Operating:
    """Bonferroni upper bounds from each category's own binomial walk (module docstring)."""
    reach_pass: list[float] = []
    reach_fail: list[float] = []
    miss_last = 0.0
    undecided = [0.0] * len(looks)  # per look: upper bound on P(no stop at or before it)
    for i, p in enumerate(probs):
        walk = Coordinate(p=float(p), roles=(1,))
        alone = [[r[i]] for r in regions]
        # The check passes only if this category's own pass/fail walk ends in pass.
        reach_pass.append(exact(looks, alone, walk).p_pass)
        # It fails through this category only if the walk reaches the fail region, passes ignored.
        never_passing = [[dataclasses.replace(r[i], pass_from=1, pass_to=0)] for r in regions]
        reach_fail.append(exact(looks, never_passing, walk).p_fail)
        for k, look in enumerate(looks):
            r = regions[k][i]
            undecided[k] += outside(r.pass_from, r.pass_to, look.n, p)
            undecided[k] += outside(r.fail_to + 1, r.fail_from - 1, look.n, p)
        last = regions[-1][i]
        miss_last += outside(last.pass_from, last.pass_to, looks[-1].n, p)
    survival = [*undecided[:-1], 0.0]
    for k in range(1, len(survival)):  # P(N > n_k) does not grow with k, so neither need its bound
        survival[k] = min(survival[k], survival[k - 1])
    bound = Operating(p_pass=min(reach_pass), p_fail=min(1.0, sum(reach_fail)), p_inconclusive=min(1.0, miss_last),
                      expected_n=0.0, exact=False)
    return _with_law(bound, looks, [min(1.0, s) for s in survival])


def _with_law(operating: Operating, looks: Sequence[Stage], survival: Sequence[float]) -> Operating:
    """``operating`` with the law of N attached and E[n] = sum_k (n_k - n_{k-1}) P(N > n_{k-1}) taken from it."""
    ns = tuple(look.n for look in looks)
    expected_n = float(ns[0]) + sum((ns[k] - ns[k - 1]) * survival[k - 1] for k in range(1, len(ns)))
    return dataclasses.replace(operating, expected_n=expected_n, looks=ns, survival=tuple(survival))


def outside(lo: int, hi: int, n: int, p: float) -> float:
    """P(X < lo or X > hi) for X ~ Binomial(n, p), summed from both tails (accurate when tiny)."""
    if lo > hi:
        return 1.0
    below = float(special.bdtr(lo - 1, n, p)) if lo > 0 else 0.0
    above = float(special.bdtrc(hi, n, p)) if hi < n else 0.0
    return min(1.0, below + above)


def _advance(alive: FloatArray, requests: int, p: float) -> FloatArray:
    """Distribution of the count after ``requests`` more independent draws (exact up to rounding)."""
    # Imported here: a run plans its checks with ``outside`` alone; scipy.stats and scipy.signal take
    # half a second to import, which every ``mesh-harness`` command paid for this one function.
    from scipy import signal, stats

    if requests == 0:
        return alive
    step = stats.binom.pmf(np.arange(requests + 1), requests, p)
    if alive.size * step.size <= 1 << 16:
        moved: FloatArray = np.convolve(alive, step)
    else:
        moved = signal.fftconvolve(alive, step)
    return np.clip(moved, 0.0, None)
