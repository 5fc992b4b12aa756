"""Expectations x observations -> verdicts with evidence. Pure: no mesh, no I/O.

A check holds one judge per expectation. The runner feeds every judge the same observations,
batch by batch, and asks how many more requests the undecided judges need (the next planned look
of a sequential test, or the fixed count of an every-response check). A judge that has decided
keeps its decision; the check's verdict is the worst of its judges' (fail > inconclusive > pass).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.expectations import Expectation
from harness.mesh.base import Observation
from harness.settings import StatSettings
from harness.stats.deterministic import AllDesign
from harness.stats.fractions import CategoryEstimate, FractionDecision, FractionDesign
from harness.stats.rule import Outcome

VerdictOutcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Counterexample:
    """The first response that broke an every-response expectation. ``index`` is its position
    (from 1) among the check's counted responses, across batches; ``request_id`` joins it to app logs."""

    index: int
    request_id: str
    got: str
    status: int
    error: str | None


@dataclass(frozen=True)
class Evidence:
    """What one expectation saw and concluded; everything a report prints about it."""

    expectation: str
    field: str
    kind: Literal["fraction", "every"]
    outcome: VerdictOutcome
    n: int
    counts: Mapping[str, int]
    expected: Mapping[str, float]
    observed: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]
    level: float | None
    rule: str
    alpha: float
    power: float
    delta: Mapping[str, float] = dataclasses.field(default_factory=dict)
    leak: float | None = None
    counterexample: Counterexample | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: VerdictOutcome
    evidence: tuple[Evidence, ...]

    @property
    def requests(self) -> int:
        return max((e.n for e in self.evidence), default=0)


class FractionJudge:
    """A fractional expectation judged by a sequential equivalence test (harness.stats)."""

    def __init__(self, expectation: Expectation, design: FractionDesign) -> None:
        assert expectation.fractions is not None
        self.expectation = expectation
        self.design = design
        self.counts: Counter[str] = Counter()
        self.decision: FractionDecision | None = None

    @property
    def decided(self) -> bool:
        return self.decision is not None and self.decision.outcome is not Outcome.CONTINUE

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def needs(self) -> int:
        """Requests still needed before this judge can decide at its next look."""
        if self.decided:
            return 0
        look = self.design.next_look(self.n + 1)
        return 0 if look is None else look - self.n

    def add(self, observations: Iterable[Observation]) -> None:
        if self.decided:
            return
        for obs in observations:
            self.counts[self.expectation.category(obs)] += 1
        if self.n in self.design.looks:
            self.decision = self.design.decide(self.counts)

    def evidence(self) -> Evidence:
        decision = self.decision
        outcome: VerdictOutcome = "inconclusive"
        cats: Sequence[CategoryEstimate] = ()
        rule = f"undecided after {self.n} requests (budget {self.design.budget})"
        level = None
        if decision is not None and decision.outcome is not Outcome.CONTINUE:
            outcome = decision.outcome.value
            cats, rule, level = decision.categories, decision.rule, decision.level
        n = self.n
        return Evidence(
            expectation=self.expectation.describe(),
            field=self.expectation.field,
            kind="fraction",
            outcome=outcome,
            n=n,
            counts=dict(self.counts),
            expected=dict(self.design.expected),
            observed={k: (v / n if n else 0.0) for k, v in self.counts.items()},
            intervals={c.name: (c.low, c.high) for c in cats},
            level=level,
            rule=rule,
            alpha=self.design.alpha,
            power=self.design.power,
            delta=dict(self.design.deltas),
        )


class EveryJudge:
    """Every response must have one value: enough requests to catch a leak, fail on the first exception."""

    def __init__(self, expectation: Expectation, design: AllDesign, alpha: float) -> None:
        assert expectation.every is not None
        self.expectation = expectation
        self.design = design
        self.alpha = alpha
        self.counts: Counter[str] = Counter()
        self.counterexample: Counterexample | None = None

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def decided(self) -> bool:
        return self.counterexample is not None or self.n >= self.design.n

    def needs(self) -> int:
        return 0 if self.decided else self.design.n - self.n

    def add(self, observations: Iterable[Observation]) -> None:
        for obs in observations:
            if self.decided:
                return
            got = self.expectation.category(obs)
            self.counts[got] += 1
            if got != self.expectation.every:
                self.counterexample = Counterexample(self.n, obs.request_id, got, obs.status, obs.error)

    def evidence(self) -> Evidence:
        n = self.n
        want = self.expectation.every or ""
        if self.counterexample is not None:
            outcome: VerdictOutcome = "fail"
            rule = f"fail: request {n} answered {self.expectation.field} {self.counterexample.got}, want every {want}"
        elif n >= self.design.n:
            outcome = "pass"
            rule = (f"pass: all {n} responses had {self.expectation.field} {want} "
                    f"(a {self.design.leak:.0%} leak would show with probability {self.design.power})")
        else:
            outcome = "inconclusive"
            rule = f"undecided after {n} of {self.design.n} requests"
        return Evidence(
            expectation=self.expectation.describe(),
            field=self.expectation.field,
            kind="every",
            outcome=outcome,
            n=n,
            counts=dict(self.counts),
            expected={want: 1.0},
            observed={k: v / n for k, v in self.counts.items()} if n else {},
            intervals={},
            level=None,
            rule=rule,
            alpha=0.0,
            power=self.design.power,
            leak=self.design.leak,
            counterexample=self.counterexample,
        )


Judge = FractionJudge | EveryJudge


def make_judges(expectations: Sequence[Expectation], settings: StatSettings) -> list[Judge]:
    """One judge per expectation; the check's alpha is split evenly over its fractional expectations
    (Bonferroni), since only those can fail a correct mesh."""
    fractional = [e for e in expectations if e.is_fraction]
    alpha = settings.alpha / max(1, len(fractional))
    judges: list[Judge] = []
    for e in expectations:
        if e.fractions is not None:
            design = FractionDesign.plan(
                e.fractions, delta=settings.delta, relative=settings.relative_delta, alpha=alpha,
                power=settings.power, max_requests=settings.max_requests,
            )
            judges.append(FractionJudge(e, design))
        else:
            judges.append(EveryJudge(e, AllDesign.plan(leak=settings.leak, power=settings.power), alpha))
    return judges


def requests_needed(judges: Sequence[Judge]) -> int:
    """How many more requests the next batch should send: the nearest need of any undecided judge,
    or 0 when the check is decided (every judge has decided, or one has already failed)."""
    if any(j.decided and j.evidence().outcome == "fail" for j in judges):
        return 0
    needs = [j.needs() for j in judges if not j.decided]
    return min((n for n in needs if n > 0), default=0)


def verdict(judges: Sequence[Judge]) -> Verdict:
    """The check's verdict: fail if any judge failed, else inconclusive if any is undecided, else pass."""
    evidence = tuple(j.evidence() for j in judges)
    outcomes = {e.outcome for e in evidence}
    outcome: VerdictOutcome = "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    return Verdict(outcome, evidence)
