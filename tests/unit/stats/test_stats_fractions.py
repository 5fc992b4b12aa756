"""FractionDesign: planning from the user's inputs, decisions at looks, and what a verdict reports."""

from __future__ import annotations

from types import ModuleType

import pytest

from harness import stats
from harness.stats import OTHER, AllDesign, FractionDesign, Outcome


@pytest.fixture(scope="module")
def split() -> FractionDesign:
    return FractionDesign.plan({"v1": 0.9, "v2": 0.1})


def test_fractions_plan_defaults(split: FractionDesign) -> None:
    assert dict(split.expected) == {"v1": 0.9, "v2": 0.1, OTHER: 0.0}
    assert dict(split.deltas) == {"v1": 0.05, "v2": 0.05, OTHER: 0.05}
    assert (split.alpha, split.power) == (1e-6, 0.999)
    assert 6 <= len(split.looks) <= 12
    assert list(split.looks) == sorted(set(split.looks))
    assert split.budget == split.looks[-1]
    assert 2000 <= split.budget <= 5000  # a few thousand, not tens of thousands


def test_fractions_weights_are_normalized() -> None:
    assert FractionDesign.plan({"v1": 90, "v2": 10}).expected == FractionDesign.plan({"v1": 0.9, "v2": 0.1}).expected


def test_fractions_relative_and_per_category_deltas() -> None:
    design = FractionDesign.plan({"200": 0.99, "503": 0.01}, relative=0.5, deltas={"200": 0.02})
    assert dict(design.deltas) == pytest.approx({"200": 0.02, "503": 0.005, OTHER: 0.005})


def test_fractions_zero_expected_category_gets_the_smallest_delta() -> None:
    design = FractionDesign.plan({"v1": 1.0, "v2": 0.0}, deltas={"v1": 0.1})
    assert dict(design.deltas) == {"v1": 0.1, "v2": 0.05, OTHER: 0.05}


def test_fractions_single_category_needs_as_many_requests_as_a_deterministic_check() -> None:
    # {v1: 1} passes once "other" is shown below 0.05: the same n as catching a 5% leak.
    assert FractionDesign.plan({"v1": 1.0}).looks == (AllDesign.plan().n,)


def test_fractions_pass_at_last_look_with_expected_counts(split: FractionDesign) -> None:
    n = split.budget
    decision = split.decide({"v1": round(0.9 * n), "v2": n - round(0.9 * n)})
    assert decision.outcome is Outcome.PASS
    assert decision.look is not None and split.looks[decision.look] == n
    assert decision.rule == f"pass: every 99.975% interval inside expected +/- 0.05 (n={n})"
    v1, v2, other = decision.categories
    assert (v1.name, v1.count, v1.expected, v1.delta) == ("v1", round(0.9 * n), 0.9, 0.05)
    assert v1.low < v1.observed < v1.high
    assert v2.low > 0.05 and v2.high < 0.15  # shown inside 0.1 +/- 0.05
    assert (other.count, other.observed, other.low) == (0, 0.0, 0.0)
    assert decision.level == pytest.approx(1 - 2 * 0.001 / len(split.looks))
    assert (decision.alpha, decision.power, decision.n) == (1e-6, 0.999, n)


def test_fractions_fail_names_the_category_outside(split: FractionDesign) -> None:
    n = split.looks[0]
    decision = split.decide({"v1": n // 2, "v2": n - n // 2})
    assert decision.outcome is Outcome.FAIL
    assert decision.rule == f"fail: the 99.99999938% interval of v1, v2 lies outside expected +/- 0.05 (n={n})"
    assert decision.level == pytest.approx(1 - 2 * 1e-7 / (2 * len(split.looks) * 2))


def test_fractions_unknown_values_count_as_other(split: FractionDesign) -> None:
    n = split.looks[0]
    decision = split.decide({"v1": n - 200, "v2": 100, "v3": 60, "v4": 40})
    assert decision.outcome is Outcome.FAIL
    assert [c.name for c in decision.categories] == ["v1", "v2", OTHER]
    assert decision.categories[2].count == 100
    assert decision.rule.startswith("fail: the 99.99999938% interval of v1, other lies outside")


def test_fractions_continue_between_and_at_looks(split: FractionDesign) -> None:
    between = split.decide({"v1": 90, "v2": 10})
    assert (between.outcome, between.look) == (Outcome.CONTINUE, None)
    assert between.rule.startswith("continue at n=100: ")
    assert between.rule.endswith(f"; next look at n={split.looks[0]}")
    assert split.decide({}).outcome is Outcome.CONTINUE
    n = split.looks[0]
    at_look = split.decide({"v1": n - 70, "v2": 70})  # v2 = 0.14: not yet shown inside
    assert (at_look.outcome, at_look.look) == (Outcome.CONTINUE, 0)
    assert at_look.rule.startswith(f"continue at n={n}: neither shown inside nor outside expected +/- 0.05: ")
    assert at_look.rule.endswith(f"; next look at n={split.looks[1]}")
    assert split.next_look(n + 1) == split.looks[1]
    assert split.next_look(split.budget + 1) is None


def test_fractions_inconclusive_when_budget_spent_undecided(split: FractionDesign) -> None:
    n = split.budget
    leak = round(0.15 * n)  # v2 right at the edge of its band: neither inside nor outside
    decision = split.decide({"v1": n - leak, "v2": leak})
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert decision.rule.startswith(
        f"inconclusive: budget of {n} requests spent; neither shown inside nor outside expected +/- 0.05: "
    )


def test_fractions_inconclusive_outside_the_band_shows_both_intervals_and_how_far_off(split: FractionDesign) -> None:
    # v2 observed at 0.175, above its band [0.05, 0.15]: its pass interval lies wholly above the band, yet the
    # wider fail interval still reaches into it, so the budget ends undecided. The rule shows both.
    n = split.budget
    leak = round(0.175 * n)
    decision = split.decide({"v1": n - leak, "v2": leak})
    assert decision.outcome is Outcome.INCONCLUSIVE
    last = split.stages[-1]
    v2 = decision.categories[1]
    fail_low, fail_high = stats.intervals.interval(leak, n, last.fail_tail)
    assert fail_low < 0.15 < v2.low  # the case the rule must explain
    assert (
        f"v2 = {leak / n:.3f}, {leak / n - 0.15:.3f} above its band [0.050, 0.150]; "
        f"pass needs its 99.975% interval [{v2.low:.3f}, {v2.high:.3f}] inside the band, "
        f"fail needs its 99.99999938% interval [{fail_low:.3f}, {fail_high:.3f}] wholly outside"
    ) in decision.rule
    assert "other" not in decision.rule  # a category shown inside its band is not listed


def test_fractions_per_category_deltas_are_named_in_the_rule() -> None:
    design = FractionDesign.plan({"v1": 0.5, "v2": 0.5}, deltas={"v1": 0.1, "v2": 0.1, OTHER: 0.02})
    n = design.budget
    assert "expected +/- its delta" in design.decide({"v1": n // 2, "v2": n - n // 2}).rule


def test_fractions_decide_past_budget_is_a_caller_error(split: FractionDesign) -> None:
    with pytest.raises(ValueError, match=rf"exceed the budget of {split.budget}; call decide\(\) at the planned looks"):
        split.decide({"v1": split.budget + 1})


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"v1": -1}, r"count of 'v1' must be a non-negative integer \(got -1\)"),
        ({"v1": 1.5}, r"count of 'v1' must be a non-negative integer \(got 1.5\)"),
    ],
)
def test_fractions_decide_rejects_bad_counts(split: FractionDesign, counts: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split.decide(counts)


@pytest.mark.parametrize(
    ("expected", "options", "message"),
    [
        ({}, {}, r"expected fractions are empty; give at least one category"),
        ({"v1": -0.1, "v2": 1}, {}, r"fraction of 'v1' must be a finite number >= 0 \(got -0.1\)"),
        ({"v1": 0, "v2": 0}, {}, r"fractions must not all be 0"),
        ({"v1": 1}, {"alpha": 0.6}, r"alpha must be a number in \(0, 0.5\) \(got 0.6\)"),
        ({"v1": 1}, {"power": 0.4}, r"power must be a number in \(0.5, 1\) \(got 0.4\)"),
        ({"v1": 1}, {"delta": 0}, r"delta must be a number in \(0, 1\) \(got 0\)"),
        ({"v1": 1}, {"relative": 1.5}, r"relative must be a number in \(0, 1\) \(got 1.5\)"),
        ({"v1": 1}, {"deltas": {"v9": 0.1}}, r"deltas name unknown categories \['v9'\]; known: \['other', 'v1'\]"),
        ({"v1": 1}, {"deltas": {"v1": 2.0}}, r"delta of 'v1' must be a number in \(0, 1\) \(got 2.0\)"),
        ({"v1": 1}, {"max_requests": 0}, r"max_requests must be at least 1 \(got 0\)"),
        ({"v1": 1}, {"max_looks": 0}, r"max_looks must be an integer in \[1, 100\] \(got 0\)"),
    ],
)
def test_fractions_plan_rejects_bad_input(expected: dict[str, float], options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FractionDesign.plan(expected, **options)  # type: ignore[arg-type]


def test_fractions_cap_below_the_fixed_n_minimum_says_what_is_needed() -> None:
    fixed = FractionDesign.plan({"v1": 0.9, "v2": 0.1}, max_looks=1)
    assert len(fixed.looks) == 1
    with pytest.raises(ValueError) as error:
        FractionDesign.plan({"v1": 0.9, "v2": 0.1}, max_requests=fixed.budget - 1)
    assert str(error.value) == (
        f"max_requests={fixed.budget - 1} is too small: alpha=1e-06 and power=0.999 need at least "
        f"{fixed.budget} requests (a single look); raise max_requests, or relax delta, alpha or power"
    )


def test_fractions_cap_between_fixed_and_sequential_budget_uses_fewer_looks(split: FractionDesign) -> None:
    fixed = FractionDesign.plan({"v1": 0.9, "v2": 0.1}, max_looks=1)
    cap = (fixed.budget + split.budget) // 2
    capped = FractionDesign.plan({"v1": 0.9, "v2": 0.1}, max_requests=cap)
    assert capped.budget <= cap
    assert 1 <= len(capped.looks) < len(split.looks)


def test_stats_exports_are_exactly_the_public_api() -> None:
    assert stats.__all__ == sorted(stats.__all__)
    public = {n for n, v in vars(stats).items() if not n.startswith("_") and not isinstance(v, ModuleType)}
    assert set(stats.__all__) == public


def test_fractions_unreachable_precision_names_what_to_relax() -> None:
    with pytest.raises(ValueError) as error:
        FractionDesign.plan({"v1": 0.5, "v2": 0.5}, delta=1e-4)
    assert str(error.value) == (
        "no design with at most 10000000 requests meets alpha=1e-06 and power=0.999; "
        "use a larger delta, alpha or a smaller power"
    )
