"""Judges and their combination: truth tables, decisions on exact data, batching to looks.

Every test here is deterministic: judges are fed hand-made observations, never random draws.
"""

from __future__ import annotations

import itertools

import pytest

from harness.expect import Where, status, version
from harness.settings import StatSettings
from harness.stats.deterministic import AllDesign
from harness.stats.fractions import FractionDesign
from harness.verdict import (
    EveryJudge,
    FractionJudge,
    Judge,
    WhereJudge,
    make_judges,
    requests_needed,
    verdict,
)
from tests.unit.front.front_builders import exact_split, make_samples

SPLIT = {"v1": 0.9, "v2": 0.1}


def every_judge(state: str) -> EveryJudge:
    """An every-response judge (2 requests show a 50% leak at power 0.75) left in ``state``."""
    judge = EveryJudge(version("v1"), AllDesign.plan(leak=0.5, power=0.75))
    feed = {"pass": [("v1", 200)] * 2, "fail": [("v2", 200)], "inconclusive": []}[state]
    judge.add(make_samples(feed))
    assert judge.evidence().outcome == state
    return judge


def combined(outcomes: tuple[str, ...]) -> str:
    return "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"


@pytest.mark.parametrize(
    "outcomes",
    [combo for size in (1, 2, 3) for combo in itertools.product(("pass", "fail", "inconclusive"), repeat=size)],
)
def test_verdict_truth_table_fail_beats_inconclusive_beats_pass(outcomes: tuple[str, ...]) -> None:
    result = verdict([every_judge(o) for o in outcomes])
    assert result.outcome == combined(outcomes)
    assert tuple(e.outcome for e in result.evidence) == outcomes


def feed_until_decided(judge: Judge, fractions: dict[str, float]) -> int:
    """Feed batches of exactly the given fractions, sized by ``requests_needed``; return the batches used."""
    for batch in range(1, 20):
        count = requests_needed([judge])
        if count == 0:
            return batch - 1
        judge.add(make_samples(exact_split(count, fractions), start=judge.n))
    raise AssertionError("judge did not decide within 19 batches")


def test_fraction_judge_passes_on_data_at_the_expected_fractions() -> None:
    design = FractionDesign.plan(SPLIT)
    judge = FractionJudge(version(SPLIT), design)
    assert feed_until_decided(judge, SPLIT) >= 1
    evidence = judge.evidence()
    assert (evidence.outcome, evidence.kind) == ("pass", "fraction")
    assert evidence.n in design.looks
    assert evidence.observed == pytest.approx(SPLIT, abs=1 / evidence.n)
    low, high = evidence.intervals["v2"]
    assert low < 0.1 < high and high - low < 2 * 0.05
    assert evidence.rule.startswith("pass: every") and evidence.level is not None
    assert (evidence.alpha, evidence.power, evidence.delta["v2"]) == (1e-6, 0.999, 0.05)


def test_fraction_judge_fails_on_data_far_off_at_the_first_look() -> None:
    design = FractionDesign.plan(SPLIT)
    judge = FractionJudge(version(SPLIT), design)
    assert feed_until_decided(judge, {"v1": 0.7, "v2": 0.3}) == 1
    evidence = judge.evidence()
    assert (evidence.outcome, evidence.n) == ("fail", design.looks[0])
    assert "v1" in evidence.rule and "v2" in evidence.rule and evidence.rule.startswith("fail:")


def test_fraction_judge_counts_unexpected_values_as_other() -> None:
    judge = FractionJudge(version(SPLIT), FractionDesign.plan(SPLIT))
    judge.add(make_samples([(None, 404)] * requests_needed([judge])))
    evidence = judge.evidence()
    assert evidence.outcome == "fail" and evidence.counts == {"none": judge.n}


def test_fraction_judge_is_inconclusive_before_any_look() -> None:
    judge = FractionJudge(version(SPLIT), FractionDesign.plan(SPLIT))
    judge.add(make_samples([("v1", 200)] * 10))
    assert not judge.decided and judge.evidence().outcome == "inconclusive"
    assert judge.evidence().rule == f"undecided after 10 requests (budget {judge.design.budget})"


def test_every_judge_passes_after_exactly_its_planned_requests() -> None:
    design = AllDesign.plan()
    judge = EveryJudge(status("200"), design)
    judge.add(make_samples([("v1", 200)] * (design.n - 1)))
    assert (judge.decided, judge.needs(), judge.evidence().outcome) == (False, 1, "inconclusive")
    judge.add(make_samples([("v1", 200)] * 5, start=design.n - 1))
    evidence = judge.evidence()
    assert (evidence.outcome, evidence.n, judge.needs()) == ("pass", design.n, 0)
    assert evidence.rule == "pass: all 135 responses had status 200 (a 5% leak would show with probability 0.999)"


def test_every_judge_fails_on_the_first_counterexample_and_records_it() -> None:
    judge = EveryJudge(version("v2"), AllDesign.plan())
    judge.add(make_samples([("v2", 200)] * 7))
    judge.add(make_samples([("v2", 200)] * 3 + [(None, 503), ("v1", 200)], start=7))
    evidence = judge.evidence()
    assert (evidence.outcome, evidence.n, evidence.counts) == ("fail", 11, {"v2": 10, "none": 1})
    example = evidence.counterexample
    assert example is not None
    assert (example.index, example.request_id, example.got, example.status) == (11, "r10", "none", 503)
    assert evidence.rule == "fail: request 11 answered version none, want every v2"


def test_every_judge_version_none_does_not_pass_on_requests_without_response() -> None:
    judge = EveryJudge(version("none"), AllDesign.plan())
    judge.add(make_samples([(None, 404), (None, 0)]))
    example = judge.evidence().counterexample
    assert judge.evidence().outcome == "fail" and example is not None and example.got == "error"


def test_make_judges_splits_alpha_over_the_fractional_expectations() -> None:
    fractional = [version(SPLIT), status({"200": 0.5, "503": 0.5})]
    every = status("200")
    judges = make_judges([*fractional, every], StatSettings(alpha=1e-6))
    assert [type(j) for j in judges] == [FractionJudge, FractionJudge, EveryJudge]
    assert [j.design.alpha for j in judges if isinstance(j, FractionJudge)] == [5e-7, 5e-7]
    (single,) = [j for j in make_judges([fractional[0], every], StatSettings(alpha=1e-6)) if isinstance(j, FractionJudge)]
    assert single.design.alpha == 1e-6


def test_make_judges_passes_leak_power_and_max_requests_through() -> None:
    judges = make_judges([status("200")], StatSettings(leak=0.01, power=0.99))
    assert isinstance(judges[0], EveryJudge) and judges[0].design == AllDesign.plan(leak=0.01, power=0.99)
    with pytest.raises(ValueError, match="max_requests=10 is too small"):
        make_judges([version(SPLIT)], StatSettings(max_requests=10))


def test_requests_needed_batches_to_the_nearest_look_of_any_undecided_judge() -> None:
    fraction = FractionJudge(version(SPLIT), FractionDesign.plan(SPLIT))
    every = EveryJudge(status("200"), AllDesign.plan())
    first_look = fraction.design.looks[0]
    assert first_look > every.design.n
    assert requests_needed([fraction, every]) == every.design.n
    batch = make_samples(exact_split(every.design.n, SPLIT))
    fraction.add(batch)
    every.add(batch)
    assert every.evidence().outcome == "pass"
    assert requests_needed([fraction, every]) == first_look - every.design.n


def test_requests_needed_stops_once_any_judge_failed() -> None:
    fraction = FractionJudge(version(SPLIT), FractionDesign.plan(SPLIT))
    every = EveryJudge(status("200"), AllDesign.plan())
    batch = make_samples([("v1", 500)])
    fraction.add(batch)
    every.add(batch)
    assert not fraction.decided
    assert requests_needed([fraction, every]) == 0
    assert verdict([fraction, every]).outcome == "fail"
    assert verdict([fraction, every]).requests == 1


def test_where_judge_counts_every_request_but_judges_only_the_matching() -> None:
    judge = WhereJudge(Where((status("503"),), version("none")), AllDesign.plan(), count=3)
    judge.add(make_samples([("v1", 200), (None, 503)]))
    assert (judge.n, judge.matched, judge.needs(), judge.evidence().outcome) == (2, 1, 1, "inconclusive")
    judge.add(make_samples([("v1", 200), (None, 503)], start=2))
    assert (judge.n, judge.matched, judge.evidence().outcome) == (3, 1, "pass")  # the 4th request is past the count


@pytest.mark.parametrize(
    ("values", "outcome"),
    [([("v1", 200)] * 3, "fail"), ([(None, 503)] * 3, "pass"), ([("v1", 503)], "fail"), ([], "inconclusive")],
    ids=["none-matched", "all-matched", "counterexample", "nothing-yet"],
)
def test_where_judge_outcomes(values: list[tuple[str | None, int]], outcome: str) -> None:
    judge = WhereJudge(Where((status("503"),), version("none")), AllDesign.plan(), count=3)
    judge.add(make_samples(values))
    assert judge.evidence().outcome == outcome
    assert requests_needed([judge]) == (3 if outcome == "inconclusive" else 0)
