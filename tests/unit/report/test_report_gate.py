"""The gate's diff on hand-made results, and the exact false-alarm rate of its two-sample test."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import binom

from harness.errors import ValidationError
from harness.report.gate import (
    CategoryCounts,
    GateSettings,
    category_p_value,
    diff_results,
    quantile_interval,
)
from harness.result import CheckResult, Latency
from tests.unit.report.report_builders import make_doc, make_entry


def test_gate_identical_runs_show_no_differences() -> None:
    doc = make_doc(make_entry("split", version={"v1": 120, "v2": 15}), make_entry("all v1"))
    diff = diff_results(doc, doc)
    assert diff.differences == () and diff.blocking == ()
    assert [c.presence for c in diff.checks] == ["both", "both"]


def test_gate_outcome_flip_is_a_regression_one_way_and_an_improvement_the_other() -> None:
    passed = make_doc(make_entry("retry", status={"503": 135}))
    failed = make_doc(make_entry("retry", outcome="fail", status={"503": 135}))
    worse, = diff_results(passed, failed).differences
    assert worse.outcome_change == "regression" and worse.label == "regression" and worse.blocks
    assert worse.findings() == ["outcome pass -> fail"]
    better, = diff_results(failed, passed).differences
    assert better.label == "improvement" and not better.blocks


def test_gate_detects_a_distribution_shift_between_two_passing_runs() -> None:
    before = make_doc(make_entry("split", version={"v1": 1200, "v2": 150}))
    after = make_doc(make_entry("split", version={"v1": 1080, "v2": 270}))
    shifted, = diff_results(before, after).differences
    assert shifted.outcome_change is None and shifted.label == "changed" and shifted.blocks
    version, = shifted.changed_distributions
    assert version.name == "version" and version.p_value < 1e-9
    assert shifted.findings() == [
        f"version: v1 88.9% -> 80.0%, v2 11.1% -> 20.0% (n 1350 -> 1350, p {version.p_value:.2g})"]


def test_gate_chance_variation_is_not_a_difference() -> None:
    before = make_doc(make_entry("split", version={"v1": 120, "v2": 15}))
    after = make_doc(make_entry("split", version={"v1": 112, "v2": 23}))
    assert diff_results(before, after).differences == ()


def test_gate_compares_the_categories_of_expectations_over_every_request() -> None:
    """An every-request judge stops at its first counterexample; the traffic's tally of its categories does not."""
    before = make_doc(make_entry("retry", distributions={"every attempts = 1": {"1": 135}}))
    after = make_doc(make_entry("retry", outcome="fail", distributions={"every attempts = 1": {"2": 135}}))
    diff = diff_results(before, after)
    assert [d.name for d in diff.checks[0].distributions] == ["version", "status", "flags", "every attempts = 1"]
    assert [d.name for d in diff.checks[0].changed_distributions] == ["every attempts = 1"]


def test_gate_bonferroni_threshold_counts_every_table() -> None:
    # version: 2 categories -> 1 table; status: 3 categories -> 3 tables; flags: 1 category -> none
    doc = make_doc(make_entry("a", version={"v1": 10, "v2": 10}, status={"200": 10, "503": 5, "504": 5}))
    diff = diff_results(doc, doc, GateSettings(alpha=1e-4))
    assert diff.comparisons == 4 and diff.threshold == pytest.approx(2.5e-5)


def test_gate_latency_shift_needs_the_ratio_and_the_floor() -> None:
    base = make_doc(make_entry("slow", latency_s=0.005), make_entry("jitter", latency_s=0.005))
    cand = make_doc(make_entry("slow", latency_s=0.300), make_entry("jitter", latency_s=0.030))
    slow, = diff_results(base, cand).differences
    assert slow.check == "slow" and slow.label == "regression"
    assert slow.findings() == ["latency p50 5.0 ms -> 300.0 ms", "latency p90 5.0 ms -> 300.0 ms"]
    faster, = diff_results(cand, base).differences
    assert faster.label == "improvement" and not faster.latency[0].slower


def test_gate_latency_shift_of_a_small_batch_needs_disjoint_intervals() -> None:
    """10 requests, 8 refused at once by a circuit breaker and 2 held 300 ms (or 1 when the queue drained
    first): the p90 is 300 ms or 2 ms by chance, its interval reaches from 2 ms to the slowest request."""
    def batch(slow: int) -> CheckResult:
        return make_entry("breaker", version={"v1": 10}, latencies_s=[0.002] * (10 - slow) + [0.3] * slow)

    assert diff_results(make_doc(batch(1)), make_doc(batch(2))).differences == ()
    latency = Latency.of([0.002] * 9 + [0.3])
    assert latency is not None
    low, high = quantile_interval(latency.histogram, 0.9, 1e-3) or (0, 0)
    assert low < 0.002 and high == math.inf


def test_gate_quantile_interval_covers_the_quantile_at_its_level() -> None:
    """Exact coverage of the rank interval for a continuous distribution (uniform samples on a fine grid)."""
    rng = random.Random(7)
    misses = 0
    for _ in range(2000):
        samples = [rng.random() for _ in range(40)]
        histogram = [[v, v, 1] for v in samples]  # one bin per sample: edges are the values themselves
        low, high = quantile_interval(histogram, 0.5, 0.05) or (0, 0)
        misses += not low <= 0.5 <= high
    assert misses / 2000 <= 0.05 + 4 * (0.05 * 0.95 / 2000) ** 0.5  # at most alpha, beyond chance of 4 sd


def test_gate_checks_present_in_one_run_only() -> None:
    base = make_doc(make_entry("kept"), make_entry("dropped"))
    cand = make_doc(make_entry("kept"), make_entry("added"))
    diff = diff_results(base, cand)
    assert [(c.check, c.presence, c.label, c.blocks) for c in diff.differences] == [
        ("dropped", "baseline only", "regression", True), ("added", "candidate only", "new", False)]
    assert diff.differences[0].findings() == ["only in the baseline run"]


def test_gate_refuses_a_run_with_a_check_twice() -> None:
    twice = make_doc(make_entry("a"), make_entry("a"))
    with pytest.raises(ValidationError) as caught:
        diff_results(twice, make_doc(), sources=("old.json", "new.json"))
    assert [str(i) for i in caught.value.issues] == [
        "old.json: checks[1]: check 'a' of case 'demo' appears twice; case names must be unique in a run"]


def test_gate_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="latency ratio: must be above 1"):
        GateSettings(latency_ratio=0.5)


@pytest.mark.parametrize(("n1", "n2", "p", "level"), [(40, 40, 0.3, 0.01), (40, 25, 0.1, 0.05), (30, 60, 0.5, 1e-3)])
def test_gate_fisher_false_alarm_rate_is_at_most_its_level(n1: int, n2: int, p: float, level: float) -> None:
    """Exact, by enumeration: when both runs draw from the same p, P(p-value <= level) <= level.

    With Bonferroni over m tables at level alpha/m each, the chance of any false difference in the
    whole diff is then at most alpha (union bound), whatever the dependence between tables.
    """
    false_alarm = sum(
        binom.pmf(x1, n1, p) * binom.pmf(x2, n2, p)
        for x1 in range(n1 + 1) for x2 in range(n2 + 1)
        if category_p_value(CategoryCounts("c", x1, x2), n1, n2) <= level
    )
    assert false_alarm <= level


def test_gate_fisher_catches_a_clear_shift_at_the_default_threshold() -> None:
    """135 v. 135 requests (an every-response check), all in one category v. all in another: p ~ 1e-80."""
    assert category_p_value(CategoryCounts("503", 135, 0), 135, 135) < 1e-70
