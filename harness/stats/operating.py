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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal, stats

from harness.stats.rule import Band, Regions, Stage, regions

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Operating:
    """Probabilities of each final outcome and the expected number of requests.

    When ``exact`` is false every number is an upper bound (so the three probabilities may sum
    to more than 1).
    """

    p_pass: float
    p_fail: float
    p_inconclusive: float
    expected_n: float
    exact: bool


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
    expected_n = 0.0
    previous = 0
    for look, stage_regions in zip(looks, regions, strict=True):
        expected_n += (look.n - previous) * float(alive.sum())
        alive = _advance(alive, look.n - previous, coordinate.p)
        passing, failing = masks(coordinate, stage_regions, look.n)
        p_pass += float(alive[passing].sum())
        p_fail += float(alive[failing].sum())
        alive = np.where(passing | failing, 0.0, alive)
        previous = look.n
    p_inconclusive = float(alive.sum())
    return Operating(p_pass, p_fail, p_inconclusive, expected_n, exact=True)


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
    expected_n = float(looks[0].n)
    for k in range(1, len(looks)):
        expected_n += (looks[k].n - looks[k - 1].n) * min(1.0, undecided[k - 1])
    return Operating(
        p_pass=min(reach_pass),
        p_fail=min(1.0, sum(reach_fail)),
        p_inconclusive=min(1.0, miss_last),
        expected_n=expected_n,
        exact=False,
    )


def outside(lo: int, hi: int, n: int, p: float) -> float:
    """P(X < lo or X > hi) for X ~ Binomial(n, p), summed from both tails (accurate when tiny)."""
    if lo > hi:
        return 1.0
    below = float(stats.binom.cdf(lo - 1, n, p)) if lo > 0 else 0.0
    above = float(stats.binom.sf(hi, n, p)) if hi < n else 0.0
    return min(1.0, below + above)


def _advance(alive: FloatArray, requests: int, p: float) -> FloatArray:
    """Distribution of the count after ``requests`` more independent draws (exact up to rounding)."""
    if requests == 0:
        return alive
    step = stats.binom.pmf(np.arange(requests + 1), requests, p)
    if alive.size * step.size <= 1 << 16:
        moved: FloatArray = np.convolve(alive, step)
    else:
        moved = signal.fftconvolve(alive, step)
    return np.clip(moved, 0.0, None)
