"""Exact error rates of the stopping rule, and the guarantees they prove.

Under a correct mesh P(fail) + P(inconclusive) <= alpha; with one category off by its delta
P(pass) <= 1 - power; the budget does not decrease as alpha, delta or 1 - power shrink.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.stats import OTHER, FractionDesign, Operating, operating_characteristics
from harness.stats.operating import characterize, one_binomial
from harness.stats.rule import Band, Outcome, Stage, judge

SPLITS: list[tuple[dict[str, float], dict[str, object]]] = [
    ({"v1": 0.5, "v2": 0.5}, {}),
    ({"v1": 0.9, "v2": 0.1}, {}),
    ({"v1": 0.8, "v2": 0.2}, {}),
    ({"200": 0.99, "503": 0.01}, {"relative": 0.5}),
    ({"v1": 0.7, "v2": 0.3}, {"deltas": {"v2": 0.03}}),
    ({"v1": 1.0}, {}),
]


def brute_force(bands: Sequence[Band], stages: Sequence[Stage], probs: Sequence[float]) -> Operating:
    """Carry the full multinomial count vector across the looks and apply ``judge`` (the interval rule).

    Independent of operating.py: no count regions, no reduction to one binomial.
    """
    cells = list(probs)
    assert math.isclose(sum(cells), 1.0)
    alive: dict[tuple[int, ...], float] = {(0,) * len(cells): 1.0}
    totals = {Outcome.PASS: 0.0, Outcome.FAIL: 0.0}
    expected_n = 0.0
    previous = 0
    for stage in stages:
        m = stage.n - previous
        expected_n += m * sum(alive.values())
        steps = [s for s in itertools.product(range(m + 1), repeat=len(cells)) if sum(s) == m]
        weights = {s: multinomial(s, cells) for s in steps}
        moved: dict[tuple[int, ...], float] = {}
        for counts, p in alive.items():
            for s, w in weights.items():
                key = tuple(c + d for c, d in zip(counts, s, strict=True))
                moved[key] = moved.get(key, 0.0) + p * w
        alive = {}
        for counts, p in moved.items():
            outcome = judge(tuple(bands), counts, stage)
            if outcome is Outcome.CONTINUE:
                alive[counts] = p
            else:
                totals[outcome] += p
        previous = stage.n
    return Operating(totals[Outcome.PASS], totals[Outcome.FAIL], sum(alive.values()), expected_n, exact=True)


def multinomial(counts: Sequence[int], probs: Sequence[float]) -> float:
    ways = math.factorial(sum(counts))
    for c in counts:
        ways //= math.factorial(c)
    return ways * math.prod(p**c for p, c in zip(probs, counts, strict=True))


TINY_BANDS = (Band("a", 0.5, 0.3, 0.7), Band("b", 0.5, 0.3, 0.7), Band(OTHER, 0.0, -0.2, 0.2))
TINY_STAGES = (Stage(6, 0.05, 0.02), Stage(13, 0.05, 0.02), Stage(21, 0.05, 0.02))


@pytest.mark.parametrize("probs", [(0.5, 0.5, 0.0), (0.7, 0.3, 0.0), (0.1, 0.9, 0.0), (1.0, 0.0, 0.0)])
def test_operating_dynamic_program_equals_enumeration(probs: tuple[float, ...]) -> None:
    exact = characterize(TINY_BANDS, TINY_STAGES, probs)
    truth = brute_force(TINY_BANDS, TINY_STAGES, probs)
    assert exact.exact
    for got, want in zip(
        (exact.p_pass, exact.p_fail, exact.p_inconclusive, exact.expected_n),
        (truth.p_pass, truth.p_fail, truth.p_inconclusive, truth.expected_n),
        strict=True,
    ):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("probs", [(0.4, 0.4, 0.2), (0.5, 0.3, 0.2), (0.2, 0.2, 0.6)])
def test_operating_bounds_are_upper_bounds_of_enumeration(probs: tuple[float, ...]) -> None:
    bound = characterize(TINY_BANDS, TINY_STAGES, probs)
    truth = brute_force(TINY_BANDS, TINY_STAGES, probs)
    assert not bound.exact
    assert truth.p_pass <= bound.p_pass + 1e-12
    assert truth.p_fail <= bound.p_fail + 1e-12
    assert truth.p_inconclusive <= bound.p_inconclusive + 1e-12
    assert truth.expected_n <= bound.expected_n + 1e-9


def test_operating_one_binomial_roles() -> None:
    assert one_binomial([0.9, 0.1, 0.0]) == one_binomial([0.9, 0.1, 0.0])
    c = one_binomial([0.9, 0.1, 0.0])
    assert c is not None and (c.p, c.roles) == (0.9, (1, -1, 0))
    c = one_binomial([0.0, 0.3])  # one band and mass outside all bands (a quantile check)
    assert c is not None and (c.p, c.roles) == (0.3, (0, 1))
    assert one_binomial([0.5, 0.3, 0.2]) is None
    assert one_binomial([0.5, 0.3]) is None  # two bands and mass elsewhere


def deviations(design: FractionDesign, factor: float = 1.0) -> list[dict[str, float]]:
    """One category moved by factor * delta, the difference taken from or given to the largest other."""
    expected = dict(design.expected)
    out = []
    for name, e in expected.items():
        donor = max((n for n in expected if n != name), key=lambda n: expected[n])
        for sign in (1.0, -1.0):
            shift = sign * factor * design.deltas[name]
            if 0.0 <= e + shift <= 1.0 and 0.0 <= expected[donor] - shift <= 1.0:
                out.append({**expected, name: e + shift, donor: expected[donor] - shift})
    return out


def assert_guarantees(design: FractionDesign, expected: Mapping[str, float], factors: Sequence[float] = (1.0,)) -> None:
    p_pass, p_fail, p_inconclusive = operating_characteristics(design, expected)
    assert p_fail + p_inconclusive <= design.alpha
    assert p_pass >= 1 - design.alpha
    for factor in factors:
        for true in deviations(design, factor):
            assert design.operating(true).p_pass <= 1 - design.power, true


@pytest.mark.parametrize(("expected", "options"), SPLITS)
def test_operating_guarantees_hold_at_defaults(expected: dict[str, float], options: dict[str, object]) -> None:
    design = FractionDesign.plan(expected, **options)  # type: ignore[arg-type]
    assert design.operating(expected).exact
    assert_guarantees(design, expected, factors=(1.0, 1.5))


@pytest.mark.parametrize(
    ("alpha", "power", "delta"),
    [(1e-3, 0.9, 0.1), (1e-9, 0.9999, 0.05), (0.05, 0.8, 0.03), (1e-6, 0.999, 0.2)],
)
def test_operating_guarantees_hold_at_other_settings(alpha: float, power: float, delta: float) -> None:
    design = FractionDesign.plan({"a": 0.5, "b": 0.3, "c": 0.2}, alpha=alpha, power=power, delta=delta)
    assert_guarantees(design, design.expected)


@settings(derandomize=True, deadline=None, max_examples=10)
@given(
    share=st.integers(3, 97).map(lambda k: k / 100),
    delta=st.sampled_from([0.03, 0.05, 0.1]),
    alpha=st.sampled_from([1e-2, 1e-4, 1e-6]),
    power=st.sampled_from([0.9, 0.999]),
)
def test_operating_guarantees_hold_for_any_two_way_split(
    share: float, delta: float, alpha: float, power: float
) -> None:
    expected = {"v1": share, "v2": 1 - share}
    design = FractionDesign.plan(expected, delta=delta, alpha=alpha, power=power)
    assert_guarantees(design, expected)


def test_operating_three_way_split_is_bounded_not_exact() -> None:
    design = FractionDesign.plan({"a": 1, "b": 1, "c": 1})
    null = design.operating({"a": 1, "b": 1, "c": 1})
    assert not null.exact
    assert null.p_fail + null.p_inconclusive <= design.alpha
    assert null.expected_n <= design.budget


def test_operating_characteristics_is_the_tuple_of_operating() -> None:
    design = FractionDesign.plan({"v1": 0.9, "v2": 0.1})
    result = design.operating({"v1": 0.88, "v2": 0.12})
    assert operating_characteristics(design, {"v1": 0.88, "v2": 0.12}) == (
        result.p_pass,
        result.p_fail,
        result.p_inconclusive,
    )
    assert math.isclose(result.p_pass + result.p_fail + result.p_inconclusive, 1.0, rel_tol=1e-9)
    # values outside the design count as "other"
    assert design.operating({"v1": 0.9, "v3": 0.1}).p_pass <= 1 - design.power


@pytest.mark.parametrize("expected", [{"v1": 0.9, "v2": 0.1}, {"a": 1, "b": 1, "c": 1}])
def test_operating_budget_grows_as_requirements_tighten(expected: dict[str, float]) -> None:
    by_alpha = [FractionDesign.plan(expected, alpha=a).budget for a in (1e-2, 1e-3, 1e-4, 1e-6, 1e-8)]
    by_delta = [FractionDesign.plan(expected, delta=d).budget for d in (0.2, 0.1, 0.05, 0.03, 0.02)]
    by_power = [FractionDesign.plan(expected, power=p).budget for p in (0.9, 0.99, 0.999, 0.9999)]
    for budgets in (by_alpha, by_delta, by_power):
        assert budgets == sorted(budgets), budgets
