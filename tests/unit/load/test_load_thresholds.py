"""Judging a load run from its records: gates on the whole run, expectations with the pytest statistics.

Records are built in fixed version patterns, so every outcome here is deterministic (no chance of
a false failure): an exact 90/10 pattern passes a 90/10 split, a 70/30 one fails it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.loadspec import LoadSpec, Thresholds
from harness.locust.plan import plan_case
from harness.locust.thresholds import (
    LoadSummary,
    VersionRow,
    check_thresholds,
    judge_check,
    judge_load,
    summarize,
)
from harness.settings import StatSettings
from tests.unit.load.load_builders import CANARY, canary_pattern, make_case, make_records

SETTINGS = StatSettings()
CHECK = plan_case(make_case(), LoadSpec()).checks[0]


def test_load_gates_exact_split_passes_with_the_budget_the_run_produced() -> None:
    result = judge_check(CHECK, make_records(canary_pattern(5000)), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert result.outcome == "pass"
    assert result.requests == 5000 and result.stale == 0 and result.note is None
    assert result.verdict is not None
    split = next(e for e in result.verdict.evidence if e.kind == "fraction")
    assert split.outcome == "pass" and split.n < 5000  # the sequential design decided at an early look


def test_load_gates_wrong_split_fails() -> None:
    versions = ["v2" if i % 10 >= 7 else "v1" for i in range(5000)]  # 70/30
    result = judge_check(CHECK, make_records(versions), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert result.outcome == "fail"


def test_load_gates_too_few_requests_for_a_fixed_n_test_is_inconclusive_never_pass() -> None:
    result = judge_check(CHECK, make_records(canary_pattern(200)), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert result.outcome == "inconclusive"
    assert result.note is not None and result.note.startswith("200 requests are too few to judge version v1=0.9, v2=0.1")
    assert "run longer (--duration) or with more users" in result.note


def test_load_gates_every_response_expectation_covers_the_whole_run() -> None:
    versions: list[str | None] = list(canary_pattern(5000))
    versions[3999] = None  # Envoy answered request 4000 itself (503), long after the split decided
    result = judge_check(CHECK, make_records(versions), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert result.outcome == "fail"
    assert result.verdict is not None
    status = next(e for e in result.verdict.evidence if e.expectation == "every status = 200")
    assert status.outcome == "fail" and status.counterexample is not None
    assert status.counterexample.index == 4000 and status.counterexample.status == 503


def test_load_gates_records_are_judged_in_the_order_they_were_sent() -> None:
    versions: list[str | None] = list(canary_pattern(5000))
    in_order = judge_check(CHECK, make_records(versions), SETTINGS, config_version=7, timer_tick_s=0.0)
    shuffled = judge_check(CHECK, list(reversed(make_records(versions))), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert shuffled.verdict == in_order.verdict


def test_load_gates_responses_of_another_config_are_not_counted() -> None:
    records = make_records(["v2"] * 300, config_version="6") + make_records(canary_pattern(5000))
    result = judge_check(CHECK, records, SETTINGS, config_version=7, timer_tick_s=0.0)
    assert (result.outcome, result.requests, result.stale) == ("pass", 5000, 300)


def test_load_gates_check_overrides_cap_the_budget() -> None:
    capped = replace(CHECK, check=replace(CHECK.check, overrides=replace(CHECK.check.overrides, max_requests=100)))
    result = judge_check(capped, make_records(canary_pattern(5000)), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert result.outcome == "inconclusive" and result.note is not None


def test_load_gates_a_check_with_nothing_judgeable_is_not_judged() -> None:
    case = make_case(CANARY.replace("expect: {version: {v1: 0.9, v2: 0.1}, status: 200, headers: {location: null}}",
                                    "expect: {flags: '-'}"))
    (check,) = plan_case(case, LoadSpec()).checks
    result = judge_check(check, make_records(canary_pattern(500)), SETTINGS, config_version=7, timer_tick_s=0.0)
    assert (result.outcome, result.verdict) == ("not judged", None)
    assert result.unjudged == (("every flags = -", check.unjudged[0][1]),)


def test_load_gates_summary_rows_per_check_and_version() -> None:
    records = make_records(canary_pattern(100) + [None] * 10, latency_s=0.002)
    records += [replace(records[0], check=0, status=0, version=None, error="reset", started=2000.0, latency_s=1.0)]
    s = summarize(records, ["split"])
    assert s.requests == 111 and s.failures == 11
    assert s.rows == (
        VersionRow("split", "error", 1, 1, 1 / 111),
        VersionRow("split", "none", 10, 10, 10 / 111),
        VersionRow("split", "v1", 90, 0, 90 / 111),
        VersionRow("split", "v2", 10, 0, 10 / 111),
    )
    assert s.p50_s == 0.002 and s.p99_s == 0.002
    assert s.duration_s == pytest.approx(1001.0)  # from the first request sent to the last response


def test_load_gates_summary_of_nothing() -> None:
    s = summarize([], ["split"])
    assert (s.requests, s.rps, s.p95_s, s.fail_ratio, s.rows) == (0, 0.0, None, 0.0, ())


def _summary(**changes: object) -> LoadSummary:
    base = LoadSummary(requests=1000, failures=5, duration_s=10.0, rps=100.0, p50_s=0.01, p95_s=0.05, p99_s=0.2, rows=())
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("gates", "passed"), [
    (Thresholds(max_fail_ratio=0.005), [True]),
    (Thresholds(max_fail_ratio=0.004), [False]),
    (Thresholds(p95_s=0.05, p99_s=0.1), [True, False]),
    (Thresholds(min_rps=100), [True]),
    (Thresholds(min_rps=100.5), [False]),
    (Thresholds(), []),
])
def test_load_gates_each_gate_holds_or_not(gates: Thresholds, passed: list[bool]) -> None:
    assert [g.passed for g in check_thresholds(gates, _summary())] == passed


def test_load_gates_text_says_want_and_got() -> None:
    (p99,) = check_thresholds(Thresholds(p99_s=0.1), _summary())
    assert (p99.gate, p99.want, p99.got) == ("latency p99", "<= 100ms", "200ms")
    (rps,) = check_thresholds(Thresholds(min_rps=150), _summary())
    assert (rps.want, rps.got) == (">= 150", "100.0 (1000 in 10.0s)")


def test_load_gates_a_run_without_requests_fails_every_gate() -> None:
    empty = _summary(requests=0, failures=0, rps=0.0, p50_s=None, p95_s=None, p99_s=None)
    results = check_thresholds(Thresholds(max_fail_ratio=1.0, p95_s=10.0, p99_s=10.0, min_rps=0.001), empty)
    assert [g.passed for g in results] == [False] * 4
    assert results[1].got == "no requests"


def test_load_gates_report_passes_only_when_gates_and_checks_pass() -> None:
    plan = plan_case(make_case(), LoadSpec())
    records = make_records(canary_pattern(5000))
    good = judge_load("canary", plan, records, LoadSpec(gates=Thresholds(max_fail_ratio=0.0)), SETTINGS, 7, timer_tick_s=0.0)
    assert good.passed
    slow = judge_load("canary", plan, records, LoadSpec(gates=Thresholds(p99_s=0.001)), SETTINGS, 7, timer_tick_s=0.0)
    assert not slow.passed and slow.checks[0].outcome == "pass"
    short = judge_load("canary", plan, records[:200], LoadSpec(), SETTINGS, 7, timer_tick_s=0.0)
    assert not short.passed and short.checks[0].outcome == "inconclusive"


def test_load_gates_a_lost_worker_makes_a_pass_inconclusive_and_fails_the_run() -> None:
    plan = plan_case(make_case(), LoadSpec())
    lost = ("worker-2 (812 records delivered)",)
    report = judge_load("canary", plan, make_records(canary_pattern(5000)), LoadSpec(), SETTINGS, 7, timer_tick_s=0.0,
                        lost_workers=lost)
    assert not report.passed and report.lost_workers == lost
    check = report.checks[0]
    assert check.outcome == "inconclusive" and check.verdict is not None and check.verdict.outcome == "pass"
    assert check.note == ("lost Locust worker(s) worker-2 (812 records delivered) mid-run; "
                          "the rest is judged, never passed")


def test_load_gates_a_lost_worker_leaves_a_failure_a_failure() -> None:
    plan = plan_case(make_case(), LoadSpec())
    versions = ["v2" if i % 10 >= 7 else "v1" for i in range(5000)]  # 70/30
    report = judge_load("canary", plan, make_records(versions), LoadSpec(), SETTINGS, 7, timer_tick_s=0.0,
                        lost_workers=("worker-1 (0 records delivered)",))
    assert report.checks[0].outcome == "fail" and report.checks[0].note is None
