"""QuantileDesign: a latency quantile against a bound, with the fraction machinery on one category."""

from __future__ import annotations

import pytest

from harness.stats import Outcome, QuantileDesign


@pytest.fixture(scope="module")
def p99() -> QuantileDesign:
    return QuantileDesign.plan(0.99, 0.05)


def test_quantile_guarantees_are_exact(p99: QuantileDesign) -> None:
    assert p99.limit == pytest.approx(0.01)
    ok = p99.operating(0.005)  # a correct mesh at the planning share (margin 0.5)
    assert ok.exact and ok.p_fail + ok.p_inconclusive <= p99.alpha
    assert p99.operating(0.01).p_pass <= 1 - p99.power  # the 0.99-quantile sits at the bound
    assert p99.operating(0.02).p_pass <= 1 - p99.power


def test_quantile_decide_pass_and_fail(p99: QuantileDesign) -> None:
    n = p99.looks[0]
    fast = p99.decide([0.01] * n)
    assert (fast.outcome, fast.wrong, fast.look) == (Outcome.PASS, 0, 0)
    assert (
        fast.rule
        == f"pass: the 99.975% interval of the share above 0.05 lies below 0.01, so 0.99-quantile <= 0.05 (n={n})"
    )
    slow = p99.decide([0.01] * (n - n // 10) + [0.2] * (n // 10))
    assert slow.outcome is Outcome.FAIL
    assert slow.rule.startswith("fail: the ") and slow.rule.endswith(
        f"lies above 0.01, so not 0.99-quantile <= 0.05 (n={n})"
    )
    assert p99.decide([0.01] * 10).outcome is Outcome.CONTINUE


def test_quantile_above_counts_values_below_the_bound() -> None:
    design = QuantileDesign.plan(0.5, 0.2, below=False, margin=1.0)  # a delay fault: none faster than 200 ms
    assert design.limit == 0.5
    n = design.looks[0]
    decision = design.decide([0.25] * n)
    assert decision.outcome is Outcome.PASS
    assert "share below 0.2 lies below 0.5, so 0.5-quantile >= 0.2" in decision.rule
    assert design.looks == (n,)  # a correct mesh shows no value below: one look is enough
    # All values below the bound, yet too few of them to show it at the fail level: inconclusive, a failure.
    assert design.decide([0.1] * n).outcome is Outcome.INCONCLUSIVE


def test_quantile_inconclusive_at_the_budget(p99: QuantileDesign) -> None:
    n = p99.looks[-1]
    wrong = round(0.01 * n)
    decision = p99.decide([0.2] * wrong + [0.01] * (n - wrong))
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert decision.rule.startswith(f"inconclusive: budget of {n} values spent; the 99.975% interval")


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((1.0, 0.05), {}, r"q must be a number in \(0, 1\) \(got 1.0\)"),
        ((0.99, float("nan")), {}, r"bound must be a finite number \(got nan\)"),
        ((0.99, 0.05), {"margin": 0.0}, r"margin must be a number in \(0, 1\) \(got 0.0\)"),
    ],
)
def test_quantile_rejects_bad_input(args: tuple[float, float], options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuantileDesign.plan(*args, **options)


def test_quantile_decide_past_budget_is_a_caller_error(p99: QuantileDesign) -> None:
    with pytest.raises(ValueError, match="exceed the budget"):
        p99.decide([0.0] * (p99.looks[-1] + 1))
