"""Judging a load run: load gates on the whole run, and each check's expectations with the pytest statistics.

Pure: records in, a ``LoadReport`` out.

* **Thresholds** (``check_thresholds``) are thresholds on what the whole run measured, as Locust users set
  them (locust-plugins' ``--check-fail-ratio``, ``--check-rps``): the fail ratio (no response, or
  status >= 400, as Locust counts failures), the 95th and 99th latency percentiles (nearest rank,
  over every request) and requests per second (requests over the span from the first request sent
  to the last response). They are not statistical tests: set them with room, as any CI gate.
* **Expectations** (``judge_check``) are judged by the same judges as ``mesh-harness run``
  (``verdict.make_judges``), planned with the request budget the load run produced
  (``max_requests`` = the check's requests): a split or quantile gets the sequential design that
  fits in that budget, down to the fixed-n test. When even the fixed-n test needs more requests
  than the run produced, it is not judged and the check is inconclusive, never passed.
  Every-response and aggregate expectations are judged over every request of the run. The records
  are fed in the order the requests were sent, so which requests are counted does not depend on
  their outcome (only the few still in flight when Locust stopped are missing, at the very end).
  Only responses routed by the applied config version count, as in ``mesh-harness run``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from harness.expect import Sample, is_statistical, with_timer_tick
from harness.expect.base import show_seconds
from harness.loadspec import LoadSpec, Thresholds
from harness.locust.plan import CasePlan, LoadCheck
from harness.locust.wire import Record
from harness.mesh.base import Observation
from harness.result import Verdict, nearest_rank
from harness.settings import StatSettings
from harness.stats import AllDesign
from harness.verdict import Judge, make_judges, requests_needed, verdict

CheckOutcome = Literal["pass", "fail", "inconclusive", "not judged"]


@dataclass(frozen=True)
class VersionRow:
    """One check's responses from one version (``none``: Envoy answered; ``error``: no response)."""

    check: str
    version: str
    requests: int
    failures: int
    share: float


@dataclass(frozen=True)
class LoadSummary:
    """What the whole run measured. Latency percentiles are None when nothing was sent."""

    requests: int
    failures: int
    duration_s: float
    rps: float
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    rows: tuple[VersionRow, ...]

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ThresholdResult:
    gate: str
    want: str
    got: str
    passed: bool


@dataclass(frozen=True)
class CheckUnderLoad:
    """A check's verdict under load. ``verdict`` is None when none of its expectations could be
    judged; ``unjudged`` lists (expectation, why not); ``note`` says why a split was not judged."""

    name: str
    line: int
    outcome: CheckOutcome
    verdict: Verdict | None
    requests: int
    stale: int
    unjudged: tuple[tuple[str, str], ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class LoadReport:
    case: str
    spec: LoadSpec
    summary: LoadSummary
    gates: tuple[ThresholdResult, ...]
    checks: tuple[CheckUnderLoad, ...]
    lost_workers: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every gate held, no judged check failed or stayed inconclusive, and no Locust worker was lost."""
        return (not self.lost_workers and all(g.passed for g in self.gates)
                and all(c.outcome in ("pass", "not judged") for c in self.checks))


def judge_load(
    case: str, plan: CasePlan, records: Sequence[Record], spec: LoadSpec, settings: StatSettings, config_version: int,
    *, timer_tick_s: float, lost_workers: Sequence[str] = (),
) -> LoadReport:
    """The run's gates and its checks' verdicts; ``timer_tick_s`` is the mesh's (``MeshInfo``).

    ``lost_workers`` names Locust workers that died mid-run: what they did deliver is judged, but
    a check that would pass is inconclusive (its traffic is not what the run was asked to send).
    """
    summary = summarize(records, [c.check.name for c in plan.checks])
    checks = tuple(
        judge_check(c, [r for r in records if r.check == i], settings, config_version, timer_tick_s=timer_tick_s)
        for i, c in enumerate(plan.checks)
    )
    if lost_workers:
        checks = tuple(never_pass_without(c, lost_workers) for c in checks)
    return LoadReport(case, spec, summary, tuple(check_thresholds(spec.gates, summary)), checks, tuple(lost_workers))


def never_pass_without(check: CheckUnderLoad, lost_workers: Sequence[str]) -> CheckUnderLoad:
    """``check`` judged on a run that lost workers: a pass becomes inconclusive, saying which workers."""
    if check.outcome != "pass":
        return check
    return replace(check, outcome="inconclusive",
                   note=f"lost Locust worker(s) {', '.join(lost_workers)} mid-run; the rest is judged, never passed")


def summarize(records: Sequence[Record], checks: Sequence[str]) -> LoadSummary:
    """Totals, latency percentiles, requests per second and the per-check, per-version rows."""
    latencies = sorted(r.latency_s for r in records)
    span = (max(r.started + r.latency_s for r in records) - min(r.started for r in records)) if records else 0.0
    counts: Counter[tuple[int, str]] = Counter()
    failures: Counter[tuple[int, str]] = Counter()
    for r in records:
        key = (r.check, version_of(r))
        counts[key] += 1
        failures[key] += r.failed
    per_check = Counter(r.check for r in records)
    rows = tuple(
        VersionRow(checks[c] if 0 <= c < len(checks) else f"#{c}", v, n, failures[(c, v)], n / per_check[c])
        for (c, v), n in sorted(counts.items())
    )

    def q(p: float) -> float | None:
        return nearest_rank(latencies, p) if latencies else None

    return LoadSummary(
        requests=len(records), failures=sum(r.failed for r in records), duration_s=span,
        rps=len(records) / span if span > 0 else 0.0, p50_s=q(0.5), p95_s=q(0.95), p99_s=q(0.99), rows=rows,
    )


def version_of(record: Record) -> str:
    """The row a record falls in: the answering version, ``none`` (Envoy answered), ``error`` (no response)."""
    if record.status == 0:
        return "error"
    return record.version or "none"


def check_thresholds(gates: Thresholds, summary: LoadSummary) -> list[ThresholdResult]:
    """One result per gate that is set; a run without requests fails every gate."""
    results = []
    n = summary.requests
    if gates.max_fail_ratio is not None:
        results.append(ThresholdResult(
            "fail ratio", f"<= {gates.max_fail_ratio:g}", f"{summary.fail_ratio:.4g} ({summary.failures} of {n})",
            n > 0 and summary.fail_ratio <= gates.max_fail_ratio,
        ))
    for name, bound, got in (("p95", gates.p95_s, summary.p95_s), ("p99", gates.p99_s, summary.p99_s)):
        if bound is not None:
            results.append(ThresholdResult(
                f"latency {name}", f"<= {show_seconds(bound)}", "no requests" if got is None else show_seconds(got),
                got is not None and got <= bound,
            ))
    if gates.min_rps is not None:
        results.append(ThresholdResult(
            "requests/s", f">= {gates.min_rps:g}", f"{summary.rps:.1f} ({n} in {summary.duration_s:.1f}s)",
            n > 0 and summary.rps >= gates.min_rps,
        ))
    return results


def judge_check(load_check: LoadCheck, records: Sequence[Record], settings: StatSettings, config_version: int,
                *, timer_tick_s: float) -> CheckUnderLoad:
    """The check's judgeable expectations over its records, planned with the budget the run produced."""
    check = load_check.check
    unjudged = tuple((e.describe(), why) for e, why in load_check.unjudged)
    fresh = sorted((r for r in records if r.config_version in (None, str(config_version))), key=lambda r: r.started)
    stale = len(records) - len(fresh)
    samples = [Sample(to_observation(i, r)) for i, r in enumerate(fresh)]
    if not load_check.judged:
        return CheckUnderLoad(check.name, check.line, "not judged", None, len(fresh), stale, unjudged)
    base = check.overrides.over(settings)
    judged = with_timer_tick(load_check.judged, timer_tick_s)
    statistical = [e for e in judged if is_statistical(e)]
    others = [e for e in judged if not is_statistical(e)]
    # Every-response and aggregate expectations hold for the whole run (a rare breakage under load
    # is what it is for), once the run has at least the requests their stated power needs.
    every_n = AllDesign.plan(leak=base.leak, power=base.power).n
    judges = make_judges(others, base, count=len(samples) if len(samples) >= every_n else None)
    budget = len(samples) if base.max_requests is None else min(base.max_requests, len(samples))
    note = None
    try:
        judges += make_judges(statistical, replace(base, max_requests=max(1, budget)))
    except ValueError as exc:  # even the fixed-n test needs more requests than the run produced
        note = (f"{len(samples)} requests are too few to judge {', '.join(e.describe() for e in statistical)} "
                f"({exc}); run longer (--duration) or with more users")
    result = verdict(feed(judges, samples))
    outcome: CheckOutcome = result.outcome
    if note is not None and outcome == "pass":
        outcome = "inconclusive"
    return CheckUnderLoad(check.name, check.line, outcome, result, len(fresh), stale, unjudged, note)


def feed(judges: list[Judge], samples: Sequence[Sample]) -> list[Judge]:
    """Feed samples in order, up to each undecided judge's next look at a time (the judges decide
    only at their planned looks), until all decide or the samples run out."""
    position = 0
    for _ in range(len(samples) + 1):  # each round consumes at least one sample or ends
        wanted = requests_needed(judges)
        if wanted == 0 or position >= len(samples):
            break
        chunk = samples[position:position + wanted]
        position += len(chunk)
        for judge in judges:
            judge.add(chunk)
    return judges


def to_observation(index: int, record: Record) -> Observation:
    return Observation(
        index=index, request_id=record.request_id, status=record.status, latency_s=record.latency_s,
        service=record.service, version=record.version, instance=record.instance,
        config_version=record.config_version, grpc_status=record.grpc_status, error=record.error,
        headers=dict(record.headers),
    )
