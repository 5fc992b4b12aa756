"""Clopper-Pearson bounds: exact coverage at their level, ordering, and the helpers around them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from harness.stats import intervals

TAILS = st.sampled_from([0.2, 0.05, 1e-3, 1e-6])


@settings(derandomize=True, deadline=None, max_examples=60)
@given(n=st.integers(1, 150), p=st.floats(0.001, 0.999), tail=TAILS)
def test_intervals_cover_at_their_level(n: int, p: float, tail: float) -> None:
    """Exact miss probability, summed over every count, is at most the tail on each side."""
    pmf = stats.binom.pmf(range(n + 1), n, p)
    miss_low = sum(pmf[x] for x in range(n + 1) if intervals.lower(x, n, tail) > p)
    miss_high = sum(pmf[x] for x in range(n + 1) if intervals.upper(x, n, tail) < p)
    assert miss_low <= tail * (1 + 1e-9)
    assert miss_high <= tail * (1 + 1e-9)


@settings(derandomize=True, deadline=None, max_examples=60)
@given(n=st.integers(1, 2000), data=st.data(), tail=TAILS)
def test_intervals_bracket_the_estimate_and_grow_with_the_count(n: int, data: st.DataObject, tail: float) -> None:
    x = data.draw(st.integers(0, n))
    assert 0.0 <= intervals.lower(x, n, tail) <= x / n <= intervals.upper(x, n, tail) <= 1.0
    if x < n:
        assert intervals.lower(x, n, tail) < intervals.lower(x + 1, n, tail)
        assert intervals.upper(x, n, tail) < intervals.upper(x + 1, n, tail)


def test_intervals_closed_forms_at_the_edges() -> None:
    # With no successes the upper bound solves (1 - U)^n = tail.
    assert intervals.upper(0, 135, 1e-3) == pytest.approx(1 - 1e-3 ** (1 / 135), rel=1e-12)
    assert intervals.lower(0, 10, 0.01) == 0.0
    assert intervals.upper(10, 10, 0.01) == 1.0
    assert intervals.lower(10, 10, 0.01) == pytest.approx(0.01 ** (1 / 10), rel=1e-12)


def test_intervals_first_count_finds_the_switch() -> None:
    assert intervals.first_count(10, lambda x: x >= 7) == 7
    assert intervals.first_count(10, lambda x: True) == 0
    assert intervals.first_count(10, lambda x: False) == 11
    assert intervals.first_count(0, lambda x: x >= 0) == 0


@pytest.mark.parametrize(
    ("level", "text"),
    [(0.95, "95%"), (0.99975, "99.975%"), (1 - 2e-8, "99.999998%"), (0.999, "99.9%"), (0.5, "50%")],
)
def test_intervals_percent_keeps_two_significant_digits_of_the_gap(level: float, text: str) -> None:
    assert intervals.percent(level) == text


@pytest.mark.parametrize(
    ("count", "n", "tail", "message"),
    [
        (3, 2, 0.01, r"need 0 <= count <= n and n >= 1 \(got count=3, n=2\)"),
        (0, 0, 0.01, r"need 0 <= count <= n and n >= 1 \(got count=0, n=0\)"),
        (1, 2, 0.5, r"tail must be in \(0, 0.5\) \(got 0.5\)"),
    ],
)
def test_intervals_reject_bad_arguments(count: int, n: int, tail: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        intervals.lower(count, n, tail)
