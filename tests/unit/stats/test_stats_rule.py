"""The stopping rule: count regions say exactly what the interval rule says, and fail beats pass."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.stats.rule import Band, Outcome, Stage, fails, judge, passes, regions


@st.composite
def band_and_stage(draw: st.DrawFn) -> tuple[Band, Stage]:
    e = draw(st.sampled_from([0.0, 0.01, 0.1, 0.3333, 0.5, 0.9, 1.0]))
    d = draw(st.sampled_from([0.005, 0.05, 0.2]))
    one_sided = draw(st.booleans())
    band = Band("c", e, -math.inf if one_sided else e - d, e + d)
    stage = Stage(
        n=draw(st.integers(1, 600)),
        pass_tail=draw(st.sampled_from([0.2, 1e-3, 1e-5])),
        fail_tail=draw(st.sampled_from([0.2, 1e-4, 1e-9])),
    )
    return band, stage


@settings(derandomize=True, deadline=None, max_examples=80)
@given(case=band_and_stage())
def test_rule_regions_agree_with_intervals_at_every_count(case: tuple[Band, Stage]) -> None:
    band, stage = case
    r = regions(band, stage)
    for x in range(stage.n + 1):
        assert r.passes(x) == passes(band, x, stage.n, stage.pass_tail), x
        assert r.fails(x) == fails(band, x, stage.n, stage.fail_tail), x


def test_rule_judge_truth_table() -> None:
    stage = Stage(n=1000, pass_tail=1e-3, fail_tail=1e-6)
    a = Band("a", 0.5, 0.45, 0.55)
    b = Band("b", 0.5, 0.45, 0.55)
    assert judge((a, b), (500, 500), stage) is Outcome.PASS
    assert judge((a, b), (540, 460), stage) is Outcome.CONTINUE  # inside, but not shown inside
    assert judge((a, b), (700, 300), stage) is Outcome.FAIL
    # one category passes and the other fails: fail wins
    c = Band("c", 0.5, 0.45, 0.55)
    wide = Band("w", 0.3, 0.0, 0.6)
    assert passes(wide, 300, 1000, 1e-3)
    assert judge((wide, c), (300, 700), stage) is Outcome.FAIL


def test_rule_stage_levels_are_two_sided() -> None:
    stage = Stage(n=10, pass_tail=1.25e-4, fail_tail=1e-8)
    assert stage.pass_level == 1 - 2.5e-4
    assert stage.fail_level == 1 - 2e-8
