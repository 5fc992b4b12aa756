"""The stopping rule at one look: per-category bands, exact interval checks, and their count regions.

A *band* is what one category must show. A check PASSes at a look when every category's
interval (one-sided tails ``pass_tail``) lies strictly inside its band, and FAILs when some
category's interval (tails ``fail_tail``) lies wholly outside it. Fail wins over pass. Why this
is sound: if a category's true fraction is outside its band, "interval inside the band" means
the interval missed the truth, which happens with probability at most ``pass_tail`` at that look;
summed over looks that is the stated 1 - power. A correct mesh can only FAIL when an interval
misses its true fraction by more than the band's half-width, at most ``fail_tail`` per look and side.

The same decisions are also expressed as integer count regions (``Regions``), so the exact error
computation in ``operating.py`` walks over counts yet describes precisely the rule applied to data.
"""

from __future__ import annotations

import bisect
import enum
import functools
from dataclasses import dataclass

from harness.stats import intervals


class Outcome(enum.Enum):
    """What a look (or a whole check) concluded."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # the request budget is spent without a decision: a failure
    CONTINUE = "continue"  # not decided yet: send traffic up to the next look


@dataclass(frozen=True)
class Band:
    """One category's requirement.

    ``expected`` is its true fraction under a correct mesh (the planning point for the budget);
    the interval must lie strictly inside ``(low, high)`` to pass; ``-inf``/``inf`` mean no limit.
    """

    name: str
    expected: float
    low: float
    high: float


@dataclass(frozen=True)
class Stage:
    """A planned look: cumulative sample size and the one-sided interval tails used there."""

    n: int
    pass_tail: float
    fail_tail: float

    @property
    def pass_level(self) -> float:
        """Two-sided level of the interval reported for pass/continue/inconclusive."""
        return 1.0 - 2.0 * self.pass_tail

    @property
    def fail_level(self) -> float:
        """Two-sided level of the interval reported for a failure."""
        return 1.0 - 2.0 * self.fail_tail


@dataclass(frozen=True)
class Regions:
    """The rule for one band at one look, in counts.

    Pass iff ``pass_from <= count <= pass_to``; fail iff ``count <= fail_to`` or ``count >= fail_from``.
    Empty ranges are encoded as ``pass_from > pass_to``, ``fail_to = -1``, ``fail_from = n + 1``.
    """

    pass_from: int
    pass_to: int
    fail_to: int
    fail_from: int

    def passes(self, count: int) -> bool:
        return self.pass_from <= count <= self.pass_to

    def fails(self, count: int) -> bool:
        return count <= self.fail_to or count >= self.fail_from


def passes(band: Band, count: int, n: int, tail: float) -> bool:
    """The band's interval at ``tail`` lies strictly inside (low, high)."""
    return intervals.lower(count, n, tail) > band.low and intervals.upper(count, n, tail) < band.high


def fails(band: Band, count: int, n: int, tail: float) -> bool:
    """The band's interval at ``tail`` lies wholly outside [low, high]."""
    return intervals.lower(count, n, tail) > band.high or intervals.upper(count, n, tail) < band.low


@functools.lru_cache(maxsize=1024)
def regions(band: Band, look: Stage) -> Regions:
    """Translate the interval rule into count thresholds (bisection over the same bound functions).

    Memoized: a pure function of two frozen values, asked again for every true distribution a
    design's operating characteristics are computed for.
    """
    n, pt, ft = look.n, look.pass_tail, look.fail_tail
    return Regions(
        pass_from=intervals.first_count(n, lambda x: intervals.lower(x, n, pt) > band.low),
        pass_to=intervals.first_count(n, lambda x: intervals.upper(x, n, pt) >= band.high) - 1,
        fail_to=intervals.first_count(n, lambda x: intervals.upper(x, n, ft) >= band.low) - 1,
        fail_from=intervals.first_count(n, lambda x: intervals.lower(x, n, ft) > band.high),
    )


def judge(bands: tuple[Band, ...], counts: tuple[int, ...], look: Stage) -> Outcome:
    """Apply the rule at a planned look: FAIL beats PASS; otherwise CONTINUE."""
    if any(fails(b, x, look.n, look.fail_tail) for b, x in zip(bands, counts, strict=True)):
        return Outcome.FAIL
    if all(passes(b, x, look.n, look.pass_tail) for b, x in zip(bands, counts, strict=True)):
        return Outcome.PASS
    return Outcome.CONTINUE


def conclude(
    bands: tuple[Band, ...], counts: tuple[int, ...], n: int, stages: tuple[Stage, ...]
) -> tuple[Outcome, int | None, float]:
    """Outcome after ``n`` requests, the look index (None between looks) and the tail to report.

    Decisions happen only at planned looks, where the guarantees were computed; an undecided
    last look is INCONCLUSIVE. Past the budget there is no valid decision (ValueError).
    """
    looks = [s.n for s in stages]
    if n > looks[-1]:
        raise ValueError(
            f"{n} observations exceed the budget of {looks[-1]}; call decide() at the planned looks {tuple(looks)}"
        )
    look = looks.index(n) if n in looks else None
    stage = stages[bisect.bisect_left(looks, n)]  # this look, or the next one
    outcome = Outcome.CONTINUE
    if look is not None:
        outcome = judge(bands, counts, stage)
        if outcome is Outcome.CONTINUE and look == len(looks) - 1:
            outcome = Outcome.INCONCLUSIVE
    return outcome, look, stage.fail_tail if outcome is Outcome.FAIL else stage.pass_tail
