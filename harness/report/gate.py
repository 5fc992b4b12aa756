"""The upgrade gate's diff: two runs' results (baseline, candidate) -> what behaves differently. Pure.

Per check (matched by case and check name) it reports:

* an **outcome** change (pass -> fail is a regression, fail -> pass an improvement);
* **distributions that differ** even when both runs pass: the versions, statuses and response flags
  of the judged traffic and the categories of each per-request expectation on other fields
  (attempts, mirror copies, upstream headers...), over every judged request (``traffic``). Each category is a
  2x2 table (this category or not, baseline or candidate) under Fisher's exact test; a category
  differs when its two-sided p-value is at most ``alpha / m``, ``m`` being the number of tables in
  the whole diff (Bonferroni). So the chance that two runs of an unchanged mesh show *any*
  distribution difference is at most ``alpha`` (default 1e-6), provided each request's category is
  an independent draw, as Envoy's weighted choices are (balancing policies that spread requests
  more evenly than chance only make the test more conservative);
* **latency shifts**: a quantile (p50, p90) of the judged traffic that grew (or shrank) by more than
  ``latency_ratio`` *and* by more than ``latency_floor_s`` (defaults x3 and 250 ms), *and* whose
  distribution-free intervals in the two runs are disjoint: each run's quantile lies, with probability
  at least 1 - ``latency_alpha``, between two order statistics (binomial ranks, read off the run's
  histogram bins). A small batch's p90 is one of its few slowest requests (10 requests with 2 held
  300 ms by a circuit breaker: 3 ms or 300 ms by which request got queued); its interval is wide and
  such a jump is not reported. Latency on a shared machine moves with its load, so the ratio and floor
  stay: it catches a new fault delay, timeout or retry backoff, not a few milliseconds;
* checks **present in one run only**.

Latency-quantile and aggregate expectations (stat deltas, instances) have no per-request categories
and are compared through their outcome only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.errors import Issue, ValidationError
from harness.mesh.base import MeshInfo
from harness.result import LATENCY_QUANTILES, CheckOutcome, CheckResult, Latency, RunResult

# scipy (behind fisher_exact and binom) takes seconds to import on a busy machine; it is imported where
# used, so the CLI can build its parser from GateSettings without it.

OUTCOME_ORDER: dict[CheckOutcome, int] = {"pass": 0, "inconclusive": 1, "fail": 2, "error": 3}
"""Worse outcomes rank higher; a candidate ranking higher than its baseline is a regression."""

Presence = Literal["both", "baseline only", "candidate only"]
OutcomeChange = Literal["regression", "improvement"]
Label = Literal["regression", "changed", "improvement", "new", "same"]
LABELS: tuple[Label, ...] = ("regression", "changed", "improvement", "new", "same")
BLOCKING: tuple[Label, ...] = ("regression", "changed")
"""Labels that make the gate exit non-zero: improvements and new checks alone pass it."""


@dataclass(frozen=True)
class GateSettings:
    alpha: float = 1e-6
    """Family-wise chance that two runs of an unchanged mesh show a distribution difference."""
    latency_ratio: float = 3.0
    latency_floor_s: float = 0.25
    """Coarse on purpose: on a shared 2-core machine the local mesh's p50 of a check at concurrency 64
    moved from 66 ms to 193 ms between two runs of the same config; tighten both on a quiet machine."""
    latency_quantiles: tuple[str, ...] = ("p50", "p90")
    latency_alpha: float = 1e-3
    """Per run and quantile: the chance its interval misses the true quantile."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha: must be between 0 and 1 (got {self.alpha:g})")
        if self.latency_ratio <= 1.0:
            raise ValueError(f"latency ratio: must be above 1 (got {self.latency_ratio:g})")
        if self.latency_floor_s < 0.0:
            raise ValueError(f"latency floor: must not be negative (got {self.latency_floor_s:g})")


@dataclass(frozen=True)
class CategoryCounts:
    name: str
    baseline: int
    candidate: int


@dataclass(frozen=True)
class Distribution:
    """One distribution of one check in both runs, with the smallest category p-value (uncorrected)."""

    name: str
    baseline_n: int
    candidate_n: int
    categories: tuple[CategoryCounts, ...]
    p_value: float
    significant: bool

    @property
    def tables(self) -> int:
        """Fisher tests this distribution spends of the Bonferroni budget."""
        return tables_for(len(self.categories)) if self.baseline_n and self.candidate_n else 0


@dataclass(frozen=True)
class LatencyShift:
    quantile: str
    baseline_s: float
    candidate_s: float

    @property
    def slower(self) -> bool:
        return self.candidate_s > self.baseline_s


@dataclass(frozen=True)
class CheckDiff:
    """One check in both runs; ``baseline``/``candidate`` are its results in each run (None: not in that run)."""

    case: str
    check: str
    file: str
    line: int
    baseline: CheckResult | None
    candidate: CheckResult | None
    distributions: tuple[Distribution, ...]
    latency: tuple[LatencyShift, ...]

    @property
    def presence(self) -> Presence:
        if self.baseline is None:
            return "candidate only"
        return "baseline only" if self.candidate is None else "both"

    @property
    def outcome_change(self) -> OutcomeChange | None:
        if self.baseline is None or self.candidate is None:
            return None
        before, after = OUTCOME_ORDER[self.baseline.outcome], OUTCOME_ORDER[self.candidate.outcome]
        return None if before == after else "regression" if after > before else "improvement"

    @property
    def changed_distributions(self) -> tuple[Distribution, ...]:
        return tuple(d for d in self.distributions if d.significant)

    @property
    def label(self) -> Label:
        """The worst of: ``regression`` (worse outcome, slower, or missing from the candidate run),
        ``changed`` (a distribution differs), ``improvement`` (better outcome or faster), ``new``
        (candidate run only), ``same``."""
        if (self.presence == "baseline only" or self.outcome_change == "regression"
                or any(s.slower for s in self.latency)):
            return "regression"
        if self.changed_distributions:
            return "changed"
        if self.outcome_change == "improvement" or self.latency:
            return "improvement"
        return "new" if self.presence == "candidate only" else "same"

    @property
    def differs(self) -> bool:
        return self.label != "same"

    @property
    def blocks(self) -> bool:
        """Whether the gate fails on this check: it regressed or behaves differently."""
        return self.label in BLOCKING

    def findings(self) -> list[str]:
        """One line per difference, for the terminal, markdown and HTML reports."""
        if self.presence != "both":
            return [f"only in the {self.presence.split()[0]} run"]
        assert self.baseline is not None and self.candidate is not None
        lines = []
        if self.outcome_change is not None:
            lines.append(f"outcome {self.baseline.outcome} -> {self.candidate.outcome}")
        lines += [distribution_text(d) for d in self.changed_distributions]
        lines += [f"latency {s.quantile} {show_ms(s.baseline_s)} -> {show_ms(s.candidate_s)}" for s in self.latency]
        return lines


@dataclass(frozen=True)
class GateDiff:
    baseline_mesh: MeshInfo | None
    candidate_mesh: MeshInfo | None
    settings: GateSettings
    comparisons: int
    """Fisher tests in the diff (the Bonferroni ``m``)."""
    checks: tuple[CheckDiff, ...]

    @property
    def threshold(self) -> float:
        """The p-value at or below which one category counts as changed."""
        return self.settings.alpha / max(1, self.comparisons)

    @property
    def differences(self) -> tuple[CheckDiff, ...]:
        return tuple(c for c in self.checks if c.differs)

    def labelled(self, label: Label) -> tuple[CheckDiff, ...]:
        return tuple(c for c in self.checks if c.label == label)

    @property
    def blocking(self) -> tuple[CheckDiff, ...]:
        return tuple(c for c in self.checks if c.blocks)


def diff_results(baseline: RunResult, candidate: RunResult, settings: GateSettings = GateSettings(),
                 *, sources: tuple[str, str] = ("baseline", "candidate")) -> GateDiff:
    """Compare two runs (as ``harness.result.decode`` reads them from documents); ``sources`` name them in errors."""
    before = checks_by_key(baseline, sources[0])
    after = checks_by_key(candidate, sources[1])
    keys = list(before) + [k for k in after if k not in before]
    tallies = {k: _distribution_counts(before.get(k), after.get(k)) for k in keys}
    comparisons = sum(tables_for(len(cats)) for dists in tallies.values() for _, nb, nc, cats in dists if nb and nc)
    threshold = settings.alpha / max(1, comparisons)
    checks = []
    for key in keys:
        b, c = before.get(key), after.get(key)
        entry = b or c
        assert entry is not None
        checks.append(CheckDiff(
            case=key[0], check=key[1], file=entry.file, line=entry.line, baseline=b, candidate=c,
            distributions=tuple(compare_counts(name, nb, nc, cats, threshold) for name, nb, nc, cats in tallies[key]),
            latency=latency_shifts(b, c, settings) if b and c else (),
        ))
    return GateDiff(baseline.mesh, candidate.mesh, settings, comparisons, tuple(checks))


def checks_by_key(run: RunResult, source: str) -> dict[tuple[str, str], CheckResult]:
    """The run's checks by (case, check); a (case, check) found twice is an error (every one raised at once)."""
    issues: list[Issue] = []
    found: dict[tuple[str, str], CheckResult] = {}
    for i, check in enumerate(run.checks):
        key = (check.case, check.check)
        if key in found:
            issues.append(Issue(f"check {key[1]!r} of case {key[0]!r} appears twice; case names must be unique in a run",
                                file=source, path=f"checks[{i}]"))
        found[key] = check
    if issues:
        raise ValidationError(issues)
    return found


_Counts = tuple[str, int, int, tuple[CategoryCounts, ...]]


def _distribution_counts(baseline: CheckResult | None, candidate: CheckResult | None) -> list[_Counts]:
    """Each distribution both runs recorded for a check: (name, baseline n, candidate n, categories)."""
    if baseline is None or candidate is None:
        return []
    before, after = distributions_of(baseline), distributions_of(candidate)
    out = []
    for name in [n for n in before if n in after]:
        b, c = before[name], after[name]
        cats = tuple(CategoryCounts(k, b.get(k, 0), c.get(k, 0)) for k in sorted(set(b) | set(c)))
        out.append((name, sum(b.values()), sum(c.values()), cats))
    return out


def distributions_of(check: CheckResult) -> dict[str, dict[str, int]]:
    """The per-request distributions a check records (``harness.result.Traffic``); none when it sent no traffic."""
    traffic = check.traffic
    return {name: dict(counts) for name, counts in traffic.distributions.items()} if traffic else {}


def tables_for(categories: int) -> int:
    """Fisher tests for a distribution over this many categories (two categories share one table)."""
    return 0 if categories < 2 else 1 if categories == 2 else categories


def compare_counts(name: str, baseline_n: int, candidate_n: int, categories: Sequence[CategoryCounts],
                   threshold: float) -> Distribution:
    """Fisher's exact test per category (one for two categories); significant when the smallest p <= threshold."""
    tested = categories[:1] if len(categories) == 2 else categories if len(categories) > 2 else ()
    p = min((category_p_value(c, baseline_n, candidate_n) for c in tested), default=1.0) if baseline_n and candidate_n else 1.0
    return Distribution(name, baseline_n, candidate_n, tuple(categories), p, p <= threshold)


def category_p_value(c: CategoryCounts, baseline_n: int, candidate_n: int) -> float:
    """Two-sided Fisher exact p-value of (in this category or not) x (baseline, candidate)."""
    from scipy.stats import fisher_exact

    table = [[c.baseline, baseline_n - c.baseline], [c.candidate, candidate_n - c.candidate]]
    return float(fisher_exact(table, alternative="two-sided").pvalue)


def latency_shifts(baseline: CheckResult, candidate: CheckResult, settings: GateSettings) -> tuple[LatencyShift, ...]:
    """Quantiles (of ``LATENCY_QUANTILES``) that moved by more than the ratio and the floor, either way."""
    b, c = (run.traffic.latency if run.traffic else None for run in (baseline, candidate))
    if b is None or c is None:
        return ()
    shifts = []
    for q in settings.latency_quantiles:
        if q not in b.quantiles_s or q not in c.quantiles_s:
            continue
        low, high = sorted((b.quantiles_s[q], c.quantiles_s[q]))
        if high - low > settings.latency_floor_s and high > settings.latency_ratio * low \
                and _disjoint(b, c, LATENCY_QUANTILES[q], settings.latency_alpha):
            shifts.append(LatencyShift(q, b.quantiles_s[q], c.quantiles_s[q]))
    return tuple(shifts)


def _disjoint(baseline: Latency, candidate: Latency, q: float, alpha: float) -> bool:
    """Whether the two runs' intervals for the q-quantile do not overlap (True without histograms: the
    documents of older harnesses are judged by the ratio and floor alone)."""
    b, c = (quantile_interval(run.histogram, q, alpha) for run in (baseline, candidate))
    if b is None or c is None:
        return True
    return b[1] < c[0] or c[1] < b[0]


def quantile_interval(histogram: Sequence[Sequence[float]] | None, q: float, alpha: float) -> tuple[float, float] | None:
    """A distribution-free interval for the q-quantile from a run's histogram (``[[low_s, high_s, count], ...]``).

    With n samples the ranks l and u are chosen so that Binomial(n, q) falls below l, or at or above u,
    with probability at most alpha/2 each: then X(l) <= quantile <= X(u) with probability >= 1 - alpha.
    Ranks are read as bin edges (the low edge of the bin holding rank l, the high edge of the one
    holding rank u); a rank outside the sample is 0 or infinity. None when there is no histogram.
    """
    if not histogram:
        return None
    from scipy.stats import binom

    bins = sorted((float(low), float(high), int(count)) for low, high, count in histogram)
    n = sum(count for _, _, count in bins)
    lower_rank = int(binom.ppf(alpha / 2, n, q))  # P(Bin < lower_rank) <= alpha/2: X(lower_rank) is below the quantile
    upper_rank = int(binom.isf(alpha / 2, n, q)) + 1  # P(Bin >= upper_rank) <= alpha/2
    return _value_at_rank(bins, lower_rank, low_edge=True), _value_at_rank(bins, upper_rank, low_edge=False)


def _value_at_rank(bins: Sequence[tuple[float, float, int]], rank: int, *, low_edge: bool) -> float:
    if rank < 1:
        return 0.0
    seen = 0
    for low, high, count in bins:
        seen += count
        if seen >= rank:
            return low if low_edge else high
    return math.inf


def distribution_text(d: Distribution) -> str:
    """``status: 200 100.0% -> 0.0%, 503 0.0% -> 100.0% (n 135 -> 135, p 1.2e-80)``: the categories that moved most first."""
    moved = sorted(d.categories, key=lambda c: -round(abs(_share(c.baseline, d.baseline_n) - _share(c.candidate, d.candidate_n)), 9))
    parts = [f"{c.name} {_share(c.baseline, d.baseline_n):.1%} -> {_share(c.candidate, d.candidate_n):.1%}" for c in moved[:4]]
    return f"{d.name}: {', '.join(parts)} (n {d.baseline_n} -> {d.candidate_n}, p {d.p_value:.2g})"


def _share(count: int, n: int) -> float:
    return count / n if n else 0.0


def show_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def mesh_text(mesh: MeshInfo | None) -> str:
    """``local mesh, Istio 1.30, Envoy 1.38.3`` (or ``unknown mesh``)."""
    if mesh is None:
        return "unknown mesh"
    return f"{mesh.kind} mesh, Istio {mesh.istio_version}, Envoy {mesh.envoy_version}"


def summary_counts(diff: GateDiff) -> list[tuple[str, int]]:
    """Headline numbers: checks compared, then how many carry each label other than ``same``."""
    return [("checks", len(diff.checks)), *((label, len(diff.labelled(label))) for label in LABELS if label != "same")]


def headline(diff: GateDiff) -> str:
    """``3 of 6 checks differ: 2 changed, 1 improvement`` or ``no differences in 6 checks``."""
    if not diff.differences:
        return f"no differences in {plural(len(diff.checks), 'check')}"
    parts = [f"{n} {label}" for label, n in summary_counts(diff)[1:] if n]
    return f"{len(diff.differences)} of {plural(len(diff.checks), 'check')} differ: {', '.join(parts)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
