"""AllDesign: enough requests to catch a leak with the stated power; the first counterexample fails."""

from __future__ import annotations

import pytest

from harness.stats import AllDesign, Outcome


def test_deterministic_default_is_135_requests() -> None:
    design = AllDesign.plan()
    assert (design.leak, design.power, design.n) == (0.05, 0.999, 135)


@pytest.mark.parametrize(("leak", "power"), [(0.05, 0.999), (0.01, 0.99), (0.2, 0.9999), (0.5, 0.6)])
def test_deterministic_n_is_the_fewest_that_catch_the_leak(leak: float, power: float) -> None:
    n = AllDesign.plan(leak=leak, power=power).n
    assert (1 - leak) ** n <= 1 - power < (1 - leak) ** (n - 1)


def test_deterministic_decisions() -> None:
    design = AllDesign.plan()
    fail = design.decide(10, 1)
    assert (fail.outcome, fail.rule) == (
        Outcome.FAIL,
        "fail: 1 of 10 requests did not match; one counterexample is enough",
    )
    going = design.decide(100, 0)
    assert (going.outcome, going.rule) == (Outcome.CONTINUE, "continue: 100 of 135 requests matched so far")
    done = design.decide(135, 0)
    assert done.outcome is Outcome.PASS
    assert done.rule == (
        "pass: all 135 requests matched; "
        "a leak of 0.05 or more would have shown a counterexample with probability 0.999"
    )
    assert done.leak_upper < 0.05 and done.level == pytest.approx(0.999)
    assert design.decide(0, 0).leak_upper == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"leak": 0.0}, r"leak must be a number in \(0, 1\) \(got 0.0\)"),
        ({"power": 1.0}, r"power must be a number in \(0, 1\) \(got 1.0\)"),
        ({"power": 0.5}, r"power must be above 0.5 \(got 0.5\)"),
    ],
)
def test_deterministic_rejects_bad_input(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AllDesign.plan(**options)


def test_deterministic_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match=r"need 0 <= mismatches <= n \(got n=3, mismatches=4\)"):
        AllDesign.plan().decide(3, 4)
