"""Monte-Carlo operating characteristics, for checking the exact numbers and the bounds.

``operating.py`` is exact when one binomial count describes a check and gives upper bounds
otherwise; simulation (fixed seed, so the numbers are reproducible) estimates the actual rates in
the other cases and cross-checks the exact ones. It applies the count regions of ``rule.py``,
which tests prove identical to the interval rule that ``decide`` applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats.rule import Band, Stage, regions


@dataclass(frozen=True)
class Simulated:
    """Outcome counts of ``runs`` simulated checks and their mean number of requests."""

    runs: int
    passed: int
    failed: int
    inconclusive: int
    mean_n: float


def simulate(
    bands: Sequence[Band], stages: Sequence[Stage], probs: Sequence[float], *, runs: int, seed: int
) -> Simulated:
    """Run ``runs`` independent checks where band i's true fraction is ``probs[i]``.

    Any mass not covered by ``probs`` (1 - sum) falls outside every band.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1 (got {runs})")
    rest = max(0.0, 1.0 - float(sum(probs)))
    pvals = np.array([*probs, rest], dtype=np.float64)
    pvals /= pvals.sum()
    rng = np.random.default_rng(seed)
    counts = np.zeros((runs, len(bands)), dtype=np.int64)
    state = np.zeros(runs, dtype=np.int8)  # 0 running, 1 passed, 2 failed
    used = np.full(runs, stages[-1].n, dtype=np.int64)
    previous = 0
    for stage in stages:
        counts += rng.multinomial(stage.n - previous, pvals, size=runs)[:, : len(bands)]
        passing = np.ones(runs, dtype=bool)
        failing = np.zeros(runs, dtype=bool)
        for i, band in enumerate(bands):
            r = regions(band, stage)
            c = counts[:, i]
            passing &= (c >= r.pass_from) & (c <= r.pass_to)
            failing |= (c <= r.fail_to) | (c >= r.fail_from)
        running = state == 0
        state[running & failing] = 2
        state[running & passing & ~failing] = 1
        used[running & (passing | failing)] = stage.n
        previous = stage.n
    return Simulated(
        runs=runs,
        passed=int((state == 1).sum()),
        failed=int((state == 2).sum()),
        inconclusive=int((state == 0).sum()),
        mean_n=float(used.mean()),
    )
