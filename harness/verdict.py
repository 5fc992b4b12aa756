"""Expectations x observations -> verdicts with evidence. Pure: no mesh, no I/O.

The judges live here; what they conclude (``Evidence``, ``Verdict``) are result records, in
``harness.result`` beside the check results that carry them to the reports.

A check holds one judge per expectation. The runner feeds every judge the same samples, batch by
batch, and asks how many more requests the undecided judges need (the next planned look of a
sequential test, or the fixed count of an every-response check). A judge that has decided keeps
its decision; the check's verdict is the worst of its judges' (fail > inconclusive > pass).

Five kinds of judge:

* ``FractionJudge``: a split, by a sequential equivalence test (``FractionDesign``);
* ``EveryJudge``: every request in one category, failing on the first counterexample (``AllDesign``);
* ``WhereJudge``: the same on the requests that match a filter (``expect_where``), failing also
  when none matched;
* ``QuantileJudge``: a latency quantile against a bound (``QuantileDesign``);
* aggregate judges (``StatsJudge``, ``SameInstanceJudge``, ``InstancesJudge``): exact statements
  about all the check's traffic, judged once it is sent (stats after ``settle``); and
  ``NoClaimJudge`` for ``expect: none``, which counts the traffic and claims nothing.

Only fractions and quantiles can fail a correct mesh by chance, so the check's alpha is split
(Bonferroni) over them; the others have no false failures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from harness.expect import (
    AnyExpectation,
    Expectation,
    InstancesExpectation,
    NoClaim,
    QuantileExpectation,
    SameInstanceExpectation,
    Sample,
    StatsExpectation,
    Where,
    is_statistical,
)
from harness.expect.aggregate import bounds_text
from harness.expect.base import show_seconds
from harness.expect.latency import LatencyRange
from harness.result import Counterexample, Evidence, Verdict, VerdictOutcome, nearest_rank
from harness.settings import StatSettings
from harness.stats.deterministic import AllDesign
from harness.stats.fractions import CategoryEstimate, FractionDecision, FractionDesign
from harness.stats.quantile import QuantileDecision, QuantileDesign
from harness.stats.rule import Outcome


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

    def add(self, samples: Iterable[Sample]) -> None:
        if self.decided:
            return
        for sample in samples:
            self.counts[self.expectation.category(sample)] += 1
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
            bounds_s=_latency_bounds(self.expectation),
        )


class _UntilCounterexample:
    """Judges of "every (matching) request has X": ``target`` requests, stopping at the first counterexample."""

    def __init__(self, design: AllDesign, count: int | None) -> None:
        self.design = design
        self.target = design.n if count is None else count
        self.n = 0
        self.counts: Counter[str] = Counter()
        """Categories of the requests counted (for a filtered judge: the matching ones only)."""
        self.counterexample: Counterexample | None = None

    @property
    def power(self) -> float:
        """Chance that a leak of ``design.leak`` shows in what this judge saw (each judge says of what)."""
        raise NotImplementedError

    @property
    def decided(self) -> bool:
        return self.counterexample is not None or self.n >= self.target

    def needs(self) -> int:
        return 0 if self.decided else self.target - self.n

    def _record(self, expectation: Expectation, sample: Sample) -> None:
        """Count ``sample``'s category; the first one the expectation does not accept is the counterexample."""
        got = expectation.category(sample)
        self.counts[got] += 1
        if not expectation.accepts(got):
            obs = sample.obs
            detail = expectation.classify.detail(sample)
            self.counterexample = Counterexample(self.n, obs.request_id, detail, obs.status, obs.error)

    def _evidence(self, described: str, field: str, inner: Expectation, outcome: VerdictOutcome, rule: str,
                  seen: int, summary: str | None = None) -> Evidence:
        """The Evidence of an every-request verdict; ``seen`` is the count its fractions are shares of."""
        return Evidence(
            expectation=described,
            field=field,
            kind="every",
            outcome=outcome,
            n=self.n,
            counts=dict(self.counts),
            expected={inner.wanted: 1.0},
            observed={k: v / seen for k, v in self.counts.items()} if seen else {},
            intervals={},
            level=None,
            rule=rule,
            alpha=0.0,
            power=self.power,
            leak=self.design.leak,
            counterexample=self.counterexample,
            summary=summary,
            bounds_s=_latency_bounds(inner),
        )


class EveryJudge(_UntilCounterexample):
    """Every request must be in one category: enough requests to catch a leak (or exactly
    ``count`` when the check fixes it), fail on the first exception."""

    def __init__(self, expectation: Expectation, design: AllDesign, count: int | None = None) -> None:
        assert expectation.fractions is None
        super().__init__(design, count)
        self.expectation = expectation

    @property
    def power(self) -> float:
        """Chance that a leak of ``design.leak`` shows within ``target`` requests."""
        return 1.0 - (1.0 - self.design.leak) ** self.target

    def add(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            if self.decided:
                return
            self.n += 1
            self._record(self.expectation, sample)

    def evidence(self) -> Evidence:
        n = self.n
        want = self.expectation.wanted
        field = self.expectation.field
        never = [c for c in self.expectation.one_of or () if not self.counts[c]]
        summary = None
        if self.expectation.one_of is not None:
            summary = f"{field}: " + (", ".join(f"{k} x{v}" for k, v in sorted(self.counts.items())) or "no responses")
        if self.counterexample is not None:
            outcome: VerdictOutcome = "fail"
            rule = f"fail: request {n} answered {field} {self.counterexample.got}, want every {want}"
        elif n >= self.target and never:
            outcome = "fail"
            rule = (f"fail: {field} {', '.join(never)} never occurred in {n} responses, want each of "
                    f"{', '.join(self.expectation.one_of or ())} at least once")
        elif n >= self.target:
            outcome = "pass"
            each = ", each at least once" if self.expectation.one_of is not None else ""
            rule = (f"pass: all {n} responses had {field} {want}{each} "
                    f"(a {self.design.leak:.0%} leak would show with probability {self.power:.3g})")
        else:
            outcome = "inconclusive"
            rule = f"undecided after {n} of {self.target} requests"
        return self._evidence(self.expectation.describe(), field, self.expectation, outcome, rule, n, summary)


#: Most requests a filtered check sends, unless the check's ``max_requests`` says otherwise: enough for
#: a filter matching 2.5% of responses to reach the 135 matches of the default leak and power.
WHERE_MAX_REQUESTS = 10_000


class WhereJudge(_UntilCounterexample):
    """Every request matching the filter in one category, and at least one matching.

    Its power against a leak is that of the matching requests alone, so without ``count`` it keeps
    asking for traffic until as many requests *matched* as an every-response check judges
    (``design.n``): the power it states is then the design's. It fails at the first matching
    request in another category, and when none of the first ``design.n`` requests matched (a
    filter with a typo); it is inconclusive when ``budget`` requests brought too few matches. With
    ``count`` it judges exactly those requests, at the power their matching ones give, stated.
    """

    def __init__(self, expectation: Where, design: AllDesign, count: int | None = None,
                 budget: int = WHERE_MAX_REQUESTS) -> None:
        super().__init__(design, count)
        self.expectation = expectation
        self.fixed = count is not None
        self.budget = self.target if count is not None else max(budget, design.n)

    @property
    def matched(self) -> int:
        return sum(self.counts.values())

    @property
    def power(self) -> float:
        """Chance that a leak of ``design.leak`` among the matching requests shows in those seen."""
        return 1.0 - (1.0 - self.design.leak) ** self.matched

    @property
    def decided(self) -> bool:
        if self.counterexample is not None or self.n >= self.budget:
            return True
        if self.fixed:
            return False
        return self.matched >= self.design.n or (self.n >= self.design.n and not self.matched)

    def needs(self) -> int:
        """Until ``design.n`` matched: the missing matches scaled by the share that matched so far."""
        if self.decided:
            return 0
        if self.fixed or not self.matched:
            return self.target - self.n
        missing = math.ceil((self.design.n - self.matched) * self.n / self.matched)
        return min(self.budget - self.n, missing)

    def add(self, samples: Iterable[Sample]) -> None:
        inner = self.expectation.inner
        for sample in samples:
            if self.decided:
                return
            self.n += 1
            if not self.expectation.matches(sample):
                continue
            self._record(inner, sample)

    def evidence(self) -> Evidence:
        e, n, matched = self.expectation, self.n, self.matched
        want, field, condition = e.inner.wanted, e.inner.field, e.condition_text
        if self.counterexample is not None:
            outcome: VerdictOutcome = "fail"
            rule = f"fail: request {self.counterexample.index} ({condition}) answered {field} {self.counterexample.got}, want every {want}"
        elif not self.decided:
            outcome = "inconclusive"
            rule = f"undecided after {n} requests ({matched} with {condition})"
        elif not matched:
            outcome = "fail"
            rule = (f"fail: none of {n} responses had {condition}, so none showed {field} {want}; "
                    "at least one must match (check the filter, or the traffic that should produce it)")
        elif self.fixed or matched >= self.design.n:
            outcome = "pass"
            rule = (f"pass: all {matched} of {n} responses with {condition} had {field} {want} "
                    f"(a {self.design.leak:.0%} leak among them would show with probability {self.power:.3g})")
        else:
            outcome = "inconclusive"
            rule = (f"inconclusive: only {matched} of {n} responses (the budget) had {condition}; {self.design.n} are "
                    f"needed for a {self.design.leak:.0%} leak among them to show with probability {self.design.power:g} "
                    f"(these give {self.power:.3g}); raise max_requests, or send traffic of which more matches")
        seen = ", ".join(f"{k} x{v}" for k, v in sorted(self.counts.items()))
        summary = f"{matched} of {n} responses had {condition}" + (f"; their {field}: {seen}" if seen else "")
        return self._evidence(e.describe(), e.field, e.inner, outcome, rule, matched, summary)


class QuantileJudge:
    """A latency quantile against a bound, by the sequential rule of ``QuantileDesign``.
    Requests without a response count on the wrong side: they never met the bound."""

    def __init__(self, expectation: QuantileExpectation, design: QuantileDesign) -> None:
        self.expectation = expectation
        self.design = design
        self.values: list[float] = []
        self.decision: QuantileDecision | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def decided(self) -> bool:
        return self.decision is not None and self.decision.outcome is not Outcome.CONTINUE

    def needs(self) -> int:
        if self.decided:
            return 0
        look = next((x for x in self.design.looks if x > self.n), None)
        return 0 if look is None else look - self.n

    def add(self, samples: Iterable[Sample]) -> None:
        if self.decided:
            return
        wrong = float("-inf") if self.expectation.at_least else float("inf")
        self.values.extend(s.obs.latency_s if s.obs.status else wrong for s in samples)
        if self.n in self.design.looks:
            self.decision = self.design.decide(self.values)

    def evidence(self) -> Evidence:
        d = self.decision
        outcome: VerdictOutcome = "inconclusive"
        rule = f"undecided after {self.n} requests (budget {self.design.looks[-1]})"
        intervals: dict[str, tuple[float, float]] = {}
        level = None
        side = "below" if self.expectation.at_least else "at or above"
        name = f"{side} {show_seconds(self.expectation.bound)}"
        wrong = sum(1 for v in self.values if (v < self.design.bound if self.expectation.at_least else v > self.design.bound))
        if d is not None and d.outcome is not Outcome.CONTINUE:
            outcome = d.outcome.value
            rule, level = d.rule, d.level
            intervals = {name: (d.low, d.high)}
            wrong = d.wrong
        observed = nearest_rank(sorted(self.values), self.expectation.q) if self.values else 0.0  # for the report only
        return Evidence(
            expectation=self.expectation.describe(),
            field=self.expectation.field,
            kind="quantile",
            outcome=outcome,
            n=self.n,
            counts={name: wrong},
            expected={name: self.design.limit},
            observed={name: wrong / self.n if self.n else 0.0},
            intervals=intervals,
            level=level,
            rule=rule,
            alpha=self.design.alpha,
            power=self.design.power,
            summary=(f"{self.expectation.field.split('.')[-1]} {show_seconds(observed)}; "
                     f"{wrong} of {self.n} {name} (at most {self.design.limit:.3g} allowed)") if self.n else None,
            bounds_s={"at_least" if self.expectation.at_least else "below": self.expectation.bound},
        )


def _latency_bounds(expectation: Expectation) -> dict[str, float]:
    """The bounds of a latency range (every-request or split form); empty for other fields."""
    c = expectation.classify
    if not isinstance(c, LatencyRange):
        return {}
    return {k: v for k, v in (("at_least", c.at_least), ("below", c.below)) if v is not None}


class _AggregateJudge:
    """Counts every request up to ``target``, then judges the lot; a judge that finds a request
    breaking its claim on the way (``counterexample``) is decided there."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.n = 0
        self.instances: Counter[str] = Counter()
        self.counterexample: Counterexample | None = None

    @property
    def decided(self) -> bool:
        return self.counterexample is not None or self.n >= self.target

    def needs(self) -> int:
        return max(0, self.target - self.n)

    def add(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            if self.decided:
                return
            self.n += 1
            self.instances[sample.obs.instance or _NO_INSTANCE] += 1
            self._seen(sample)

    def _seen(self, sample: Sample) -> None:
        """Hook for judges that look at each request as it comes."""


_NO_INSTANCE = "(no instance)"


class SameInstanceJudge(_AggregateJudge):
    """Every response came from the instance that answered the first; fails at the first other one."""

    def __init__(self, expectation: SameInstanceExpectation, target: int) -> None:
        super().__init__(target)
        self.expectation = expectation
        self.first: str | None = None

    def _seen(self, sample: Sample) -> None:
        got = sample.obs.instance or _NO_INSTANCE
        if self.first is None and got != _NO_INSTANCE:
            self.first = got
        elif got != self.first:
            obs = sample.obs
            self.counterexample = Counterexample(self.n, obs.request_id, got, obs.status, obs.error)

    def evidence(self) -> Evidence:
        if self.counterexample is not None:
            outcome: VerdictOutcome = "fail"
            rule = f"fail: request {self.counterexample.index} came from {self.counterexample.got}, earlier ones from {self.first}"
        elif self.n >= self.target:
            outcome = "pass"
            rule = f"pass: all {self.n} responses came from {self.first}"
        else:
            outcome, rule = "inconclusive", f"undecided after {self.n} of {self.target} requests"
        return _aggregate_evidence(self.expectation.describe(), self.expectation.field, outcome, self.n, self.instances,
                                   rule, _instances_text(self.instances), self.counterexample)


class InstancesJudge(_AggregateJudge):
    """The number of distinct instances that answered, judged after ``target`` requests; and the
    excluded instances, failing at the first request that reached one (answered or received)."""

    def __init__(self, expectation: InstancesExpectation, target: int) -> None:
        super().__init__(target)
        self.expectation = expectation

    def _seen(self, sample: Sample) -> None:
        reached = self.expectation.reached_excluded(sample)
        if reached is not None:
            obs = sample.obs
            self.counterexample = Counterexample(self.n, obs.request_id, reached, obs.status, obs.error)

    def evidence(self) -> Evidence:
        e = self.expectation
        seen = len([k for k in self.instances if k != _NO_INSTANCE])
        if self.counterexample is not None:
            outcome: VerdictOutcome = "fail"
            rule = f"fail: request {self.counterexample.index} reached excluded instance {self.counterexample.got}"
        elif self.n < self.target:
            outcome = "inconclusive"
            rule = f"undecided after {self.n} of {self.target} requests"
        else:
            outcome = "pass" if e.holds(seen) else "fail"
            parts = [f"{seen} distinct instances answered {self.n} requests, want {bounds_text(e.at_least, e.at_most)}"
                     ] if e.counts_instances else []
            if e.exclude and (outcome == "pass" or not parts):
                parts.append(f"none of {self.n} requests reached {', '.join(e.exclude)} (answered or received)")
            rule = f"{outcome}: " + "; ".join(parts)
        return _aggregate_evidence(e.describe(), e.field, outcome, self.n, self.instances,
                                   rule, _instances_text(self.instances), self.counterexample)


class NoClaimJudge(_AggregateJudge):
    """``expect: none``: counts the requests sent and claims nothing, so it never fails; the
    evidence says that no claim was made, with what the responses were, for whoever reads the report."""

    def __init__(self, expectation: NoClaim, target: int) -> None:
        super().__init__(target)
        self.expectation = expectation
        self.statuses: Counter[str] = Counter()

    def _seen(self, sample: Sample) -> None:
        self.statuses[str(sample.obs.status) if sample.obs.status else "error"] += 1

    def evidence(self) -> Evidence:
        outcome: VerdictOutcome = "pass" if self.n >= self.target else "inconclusive"
        statuses = ", ".join(f"{k} x{v}" for k, v in sorted(self.statuses.items())) or "no responses"
        rule = f"no claim (expect: none): {self.n} of {self.target} requests sent"
        return _aggregate_evidence(self.expectation.describe(), self.expectation.field, outcome, self.n, self.statuses,
                                   rule, f"no claim: {self.n} requests sent (status {statuses})")


class StatsJudge(_AggregateJudge):
    """Summed counter deltas of the client's sidecar over the check; needs ``settle`` after the traffic."""

    def __init__(self, expectation: StatsExpectation, target: int) -> None:
        super().__init__(target)
        self.expectation = expectation
        self.deltas: dict[str, int] | None = None

    def settle(self, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        names = set(self.expectation.matching(before)) | set(self.expectation.matching(after))
        self.deltas = {k: after.get(k, 0) - before.get(k, 0) for k in sorted(names)}

    def evidence(self) -> Evidence:
        e = self.expectation
        want = e.describe().removeprefix(f"stats {e.key} ")
        if self.deltas is None:
            outcome: VerdictOutcome = "inconclusive"
            rule = f"undecided: stats not read yet after {self.n} of {self.target} requests"
            summary = None
        elif not self.deltas:
            outcome = "fail"
            rule = (f"fail: no counter of the client's sidecar is named {' or '.join(e.names)} or ends in "
                    f".{' or .'.join(e.names)}; check the name (e.g. upstream_rq_retry, upstream_rq_pending_overflow)")
            summary = "no matching counter"
        else:
            total = sum(self.deltas.values())
            outcome = "pass" if e.holds(total) else "fail"
            changed = {k: v for k, v in self.deltas.items() if v}
            shown = ", ".join(f"{k} +{v}" for k, v in list(changed.items())[:4]) or "no matching counter changed"
            more = f" (and {len(changed) - 4} more)" if len(changed) > 4 else ""
            rule = f"{outcome}: delta {total} over {len(self.deltas)} matching counters, want {want}"
            summary = f"delta {total} (want {want}): {shown}{more}"
        return _aggregate_evidence(e.describe(), e.field, outcome, self.n, self.deltas or {}, rule, summary)


def _instances_text(instances: Mapping[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(instances.items())) or "no responses"


def _aggregate_evidence(
    expectation: str, field: str, outcome: VerdictOutcome, n: int, counts: Mapping[str, int], rule: str,
    summary: str | None, counterexample: Counterexample | None = None,
) -> Evidence:
    return Evidence(
        expectation=expectation, field=field, kind="aggregate", outcome=outcome, n=n, counts=dict(counts),
        expected={}, observed={}, intervals={}, level=None, rule=rule, alpha=0.0, power=1.0,
        counterexample=counterexample, summary=summary,
    )


Judge = (FractionJudge | EveryJudge | WhereJudge | QuantileJudge | SameInstanceJudge | InstancesJudge | StatsJudge
         | NoClaimJudge)


def make_judges(expectations: Sequence[AnyExpectation], settings: StatSettings, *, count: int | None = None) -> list[Judge]:
    """One judge per expectation. The check's alpha is split evenly over its fractional and
    quantile expectations (Bonferroni), since only those can fail a correct mesh. With ``count``
    (a check that fixes its requests) every other judge judges exactly ``count`` requests;
    statistical ones are refused (ValueError), since they need their own plan."""
    statistical = [e for e in expectations if is_statistical(e)]
    if count is not None and statistical:
        raise ValueError(f"send.count fixes the requests at {count}, but {statistical[0].describe()} needs a statistical plan")
    alpha = settings.alpha / max(1, len(statistical))
    every = AllDesign.plan(leak=settings.leak, power=settings.power)
    target = every.n if count is None else count
    judges: list[Judge] = []
    for e in expectations:
        if isinstance(e, Expectation) and e.fractions is not None:
            design = FractionDesign.plan(
                e.fractions, delta=settings.delta, relative=settings.relative_delta, alpha=alpha,
                power=settings.power, max_requests=settings.max_requests,
            )
            judges.append(FractionJudge(e, design))
        elif isinstance(e, Expectation):
            judges.append(EveryJudge(e, every, count))
        elif isinstance(e, Where):
            judges.append(WhereJudge(e, every, count, settings.max_requests or WHERE_MAX_REQUESTS))
        elif isinstance(e, QuantileExpectation):
            judges.append(QuantileJudge(e, QuantileDesign.plan(
                e.q, e.judged_bound, below=not e.at_least, alpha=alpha, power=settings.power, max_requests=settings.max_requests,
            )))
        elif isinstance(e, StatsExpectation):
            judges.append(StatsJudge(e, target))
        elif isinstance(e, SameInstanceExpectation):
            judges.append(SameInstanceJudge(e, target))
        elif isinstance(e, NoClaim):
            judges.append(NoClaimJudge(e, target))
        else:
            judges.append(InstancesJudge(e, target))
    return judges


def requests_needed(judges: Sequence[Judge]) -> int:
    """How many more requests the next batch should send: the nearest need of any undecided judge,
    or 0 when the check is decided (every judge has decided, or one has already failed)."""
    if any(j.decided and j.evidence().outcome == "fail" for j in judges):
        return 0
    needs = [j.needs() for j in judges if not j.decided]
    return min((n for n in needs if n > 0), default=0)


def settle(judges: Sequence[Judge], before: Mapping[str, int], after: Mapping[str, int]) -> None:
    """Give the stats judges the client sidecar's counters from before and after the traffic."""
    for judge in judges:
        if isinstance(judge, StatsJudge):
            judge.settle(before, after)


def verdict(judges: Sequence[Judge]) -> Verdict:
    """The check's verdict: fail if any judge failed, else inconclusive if any is undecided, else pass."""
    evidence = tuple(j.evidence() for j in judges)
    outcomes = {e.outcome for e in evidence}
    outcome: VerdictOutcome = "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    return Verdict(outcome, evidence)
