"""The law of the number of requests a check uses (``Operating.survival``, ``quantile_n``).

Exact for one binomial coordinate: checked against a count-by-count enumeration that applies the
interval rule (``judge``) directly, and against fixed-seed simulations. For three categories it is
an upper bound: a simulation must not exceed it. Simulated rates are compared with their limit
allowing 5.3 binomial standard deviations (two-sided normal tail 1.2e-7 per comparison, so a
fresh seed would break one with probability below 1e-6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from harness.stats import OTHER, FractionDesign, Operating
from harness.stats.operating import characterize
from harness.stats.rule import Band, Outcome, Stage, judge
from harness.stats.simulate import simulate

Z = 5.3
RUNS = 20_000
TWO_WAY = (Band("a", 0.5, 0.3, 0.7), Band("b", 0.5, 0.3, 0.7), Band(OTHER, 0.0, -0.2, 0.2))
STAGES = (Stage(6, 0.05, 0.02), Stage(13, 0.05, 0.02), Stage(21, 0.05, 0.02))


def enumerated_survival(bands: Sequence[Band], stages: Sequence[Stage], p: float) -> list[float]:
    """P(not stopped after look k) for two categories (a ~ Binomial(n, p), b = n - a), by the rule itself."""
    alive = {0: 1.0}
    out = []
    previous = 0
    for stage in stages:
        m = stage.n - previous
        moved: dict[int, float] = {}
        for a, weight in alive.items():
            for d in range(m + 1):
                moved[a + d] = moved.get(a + d, 0.0) + weight * math.comb(m, d) * p**d * (1 - p) ** (m - d)
        alive = {a: w for a, w in moved.items() if judge(tuple(bands), (a, stage.n - a, 0), stage) is Outcome.CONTINUE}
        out.append(sum(alive.values()))
        previous = stage.n
    return out


@pytest.mark.parametrize("p", [0.5, 0.62, 0.8, 0.2])
def test_operating_law_matches_enumeration_of_the_rule(p: float) -> None:
    law = characterize(TWO_WAY, STAGES, (p, 1 - p, 0.0))
    truth = enumerated_survival(TWO_WAY, STAGES, p)
    assert law.exact and law.looks == (6, 13, 21)
    assert law.survival[:-1] == pytest.approx(truth[:-1], rel=1e-9, abs=1e-12)
    assert law.survival[-1] == 0.0  # an inconclusive check stops at the budget
    assert law.p_inconclusive == pytest.approx(truth[-1], rel=1e-9, abs=1e-12)
    assert law.expected_n == pytest.approx(6 + 7 * truth[0] + 8 * truth[1], rel=1e-9)


def test_operating_law_first_look_by_hand() -> None:
    """At 6 requests of a 50/50 split the rule stops only on counts it can tell apart: sum their pmf."""
    stops = [a for a in range(7) if judge(TWO_WAY, (a, 6 - a, 0), STAGES[0]) is not Outcome.CONTINUE]
    by_hand = 1.0 - sum(math.comb(6, a) for a in stops) / 2**6
    assert characterize(TWO_WAY, STAGES, (0.5, 0.5, 0.0)).survival[0] == pytest.approx(by_hand, rel=1e-12)


def test_operating_quantile_n_reads_the_first_look_past_q() -> None:
    law = Operating(0.9, 0.05, 0.05, 0.0, exact=True, looks=(10, 20, 30), survival=(0.5, 0.04, 0.0))
    assert [law.quantile_n(q) for q in (0.1, 0.5, 0.51, 0.95, 0.96, 0.97, 0.999)] == [10, 10, 20, 20, 20, 30, 30]


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 2.0])
def test_operating_quantile_n_refuses_q_outside_zero_one(q: float) -> None:
    law = Operating(1.0, 0.0, 0.0, 10.0, exact=True, looks=(10,), survival=(0.0,))
    with pytest.raises(ValueError, match=f"q must lie strictly between 0 and 1 \\(got {q}\\)"):
        law.quantile_n(q)


def test_operating_quantile_n_needs_the_law() -> None:
    with pytest.raises(ValueError, match="carries no per-look law of N"):
        Operating(1.0, 0.0, 0.0, 10.0, exact=True).quantile_n(0.95)


def simulated_survival(design: FractionDesign, true: dict[str, float], seed: int) -> list[float]:
    """Share of simulated checks still running after each look: the design cut after that look, same seed.

    The simulation draws look by look from one generator, so a cut design sees the same paths.
    """
    bands, probs = design._bands(), design._probs(true)
    return [simulate(bands, design.stages[: k + 1], probs, runs=RUNS, seed=seed).inconclusive / RUNS
            for k in range(len(design.stages) - 1)]


def slack(p: float) -> float:
    return Z * math.sqrt(max(p * (1 - p), 1.0 / RUNS) / RUNS)


@pytest.mark.parametrize("true", [{"v1": 0.9, "v2": 0.1}, {"v1": 0.86, "v2": 0.14}])
def test_operating_law_matches_a_fixed_seed_simulation(true: dict[str, float]) -> None:
    design = FractionDesign.plan({"v1": 0.9, "v2": 0.1}, alpha=0.05, power=0.95)
    law = design.operating(true)
    assert law.exact
    for exact, sim in zip(law.survival, simulated_survival(design, true, seed=21), strict=False):
        assert abs(sim - exact) <= slack(exact)


def test_operating_law_bounds_a_three_way_simulation() -> None:
    design = FractionDesign.plan({"a": 0.5, "b": 0.3, "c": 0.2}, alpha=0.05, power=0.95)
    law = design.operating(design.expected)
    assert not law.exact
    assert list(law.survival) == sorted(law.survival, reverse=True)
    for bound, sim in zip(law.survival, simulated_survival(design, dict(design.expected), seed=22), strict=False):
        assert sim <= bound + slack(min(bound, 1.0))
    assert law.quantile_n(0.95) <= design.budget
