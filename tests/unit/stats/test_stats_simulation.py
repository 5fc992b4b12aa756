"""Simulated checks at alpha 0.01-0.05, where false failures are frequent enough to count.

Each run uses a fixed seed, so results are reproducible. Tolerances are still chosen so that
a fresh seed would break an assertion with probability below 1e-6: a simulated rate is compared
with its limit (or with the exact value) allowing 5.3 binomial standard deviations (two-sided
normal tail 1.2e-7; the counts here are large enough for the normal approximation), plus the
slack of the bound itself. The long versions are marked ``slow``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest

from harness.stats import FractionDesign, Outcome, QuantileDesign
from harness.stats.rule import regions
from harness.stats.simulate import Simulated, simulate

Z = 5.3


def slack(p: float, runs: int) -> float:
    return Z * math.sqrt(max(p * (1 - p), 1.0 / runs) / runs)


def check_against_exact(design: FractionDesign, true: Mapping[str, float], sim: Simulated) -> None:
    exact = design.operating(true)
    assert exact.exact
    for got, want in ((sim.passed, exact.p_pass), (sim.failed, exact.p_fail), (sim.inconclusive, exact.p_inconclusive)):
        assert abs(got / sim.runs - want) <= slack(want, sim.runs)
    spread = design.budget / math.sqrt(sim.runs)  # n is within [0, budget]: sd of the mean <= budget / 2 / sqrt(runs)
    assert abs(sim.mean_n - exact.expected_n) <= Z * spread / 2


def check_null(design: FractionDesign, true: Mapping[str, float], runs: int, seed: int) -> None:
    sim = design.simulate(true, runs=runs, seed=seed)
    rate = (sim.failed + sim.inconclusive) / runs
    assert rate <= design.alpha + slack(design.alpha, runs)


def check_off(design: FractionDesign, true: Mapping[str, float], runs: int, seed: int) -> None:
    sim = design.simulate(true, runs=runs, seed=seed)
    beta = 1 - design.power
    assert sim.passed / runs <= beta + slack(beta, runs)


@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.95), (0.01, 0.9)])
def test_simulation_two_way_matches_exact_and_keeps_guarantees(alpha: float, power: float) -> None:
    design = FractionDesign.plan({"v1": 0.9, "v2": 0.1}, alpha=alpha, power=power)
    for seed, true in enumerate(({"v1": 0.9, "v2": 0.1}, {"v1": 0.85, "v2": 0.15}, {"v1": 0.95, "v2": 0.05})):
        check_against_exact(design, true, design.simulate(true, runs=20_000, seed=seed))
    check_null(design, {"v1": 0.9, "v2": 0.1}, runs=20_000, seed=11)
    check_off(design, {"v1": 0.85, "v2": 0.15}, runs=20_000, seed=12)


def test_simulation_three_way_keeps_guarantees_within_bounds() -> None:
    design = FractionDesign.plan({"a": 0.5, "b": 0.3, "c": 0.2}, alpha=0.05, power=0.95)
    null = design.simulate(design.expected, runs=20_000, seed=3)
    bound = design.operating(design.expected)
    assert (null.failed + null.inconclusive) / null.runs <= bound.p_fail + bound.p_inconclusive + slack(0.05, 20_000)
    check_off(design, {"a": 0.45, "b": 0.35, "c": 0.2}, runs=20_000, seed=4)
    check_off(design, {"a": 0.45, "b": 0.3, "c": 0.2, "x": 0.05}, runs=20_000, seed=5)


def test_simulation_regions_agree_with_decide_on_sampled_paths() -> None:
    """On count paths inside, at and beyond the band edge, ``decide`` agrees with the count regions."""
    design = FractionDesign.plan({"v1": 0.9, "v2": 0.1}, alpha=0.05, power=0.9)
    bands = design._bands()
    rng = np.random.default_rng(7)
    seen = set()
    for path in range(240):
        v2 = (0.03, 0.1, 0.13, 0.15, 0.17, 0.25)[path % 6]
        counts = np.zeros(3, dtype=np.int64)
        previous = 0
        for k, stage in enumerate(design.stages):
            counts += rng.multinomial(stage.n - previous, [1 - v2, v2, 0.0])
            previous = stage.n
            rs = [regions(b, stage) for b in bands]
            if any(r.fails(int(c)) for r, c in zip(rs, counts, strict=True)):
                want = Outcome.FAIL
            elif all(r.passes(int(c)) for r, c in zip(rs, counts, strict=True)):
                want = Outcome.PASS
            else:
                want = Outcome.INCONCLUSIVE if k == len(design.stages) - 1 else Outcome.CONTINUE
            assert design.decide({"v1": int(counts[0]), "v2": int(counts[1])}).outcome is want
            seen.add(want)
            if want is not Outcome.CONTINUE:
                break
    assert seen == set(Outcome)


def test_simulation_quantile_keeps_guarantees() -> None:
    design = QuantileDesign.plan(0.9, 0.2, alpha=0.05, power=0.95)
    ok = simulate((design._band(),), design.stages, [0.05], runs=20_000, seed=8)
    assert (ok.failed + ok.inconclusive) / ok.runs <= 0.05 + slack(0.05, ok.runs)
    bad = simulate((design._band(),), design.stages, [0.1], runs=20_000, seed=9)
    assert bad.passed / bad.runs <= 0.05 + slack(0.05, bad.runs)


@pytest.mark.slow
@pytest.mark.parametrize(
    "expected",
    [{"v1": 0.5, "v2": 0.5}, {"a": 1, "b": 1, "c": 1}, {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1}],
)
def test_simulation_long_runs_keep_guarantees(expected: dict[str, float]) -> None:
    for alpha, power in ((0.01, 0.99), (0.05, 0.9)):
        design = FractionDesign.plan(expected, alpha=alpha, power=power)
        check_null(design, design.expected, runs=200_000, seed=21)
        shares = dict(design.expected)
        names = [n for n in shares if shares[n] > 0]
        first, largest = names[-1], max(names, key=lambda n: shares[n])
        for seed, sign in enumerate((1.0, -1.0)):
            if first == largest:
                continue
            true = {**shares, first: shares[first] + sign * design.deltas[first]}
            true[largest] -= sign * design.deltas[first]
            check_off(design, true, runs=200_000, seed=30 + seed)
        leak = {**shares, "x": design.deltas["other"]}
        leak[largest] -= design.deltas["other"]
        check_off(design, leak, runs=200_000, seed=40)
