"""The HTML report: one self-contained file per run, or per gate (baseline next to candidate).

Built from typed results (``harness.result``), so a report can be made from a decoded stored
document as well as at the end of ``run``. This module decides what goes on the page (sections, rows,
which plot for which expectation); ``plots.py`` draws, ``templates/report.html.j2`` lays out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from harness.mesh.base import MeshInfo
from harness.report import plots
from harness.report.forensics import forensics_lines
from harness.report.gate import CheckDiff, GateDiff, distributions_of, mesh_text, plural, summary_counts
from harness.report.table import interval_text, observed_vs_expected
from harness.result import CheckResult, Counterexample, Evidence, RunResult

STATISTICAL_KINDS = ("fraction", "quantile")


@dataclass(frozen=True)
class EvidenceView:
    """What one run saw for one expectation; ``role`` is empty in a run report, baseline/candidate in a gate."""

    role: str
    outcome: str
    observed: str
    interval: str
    rule: str
    counterexample: Counterexample | None


@dataclass(frozen=True)
class ExpectationView:
    text: str
    runs: Sequence[EvidenceView]
    plot: str | None


@dataclass(frozen=True)
class CheckView:
    anchor: str
    case: str
    check: str
    where: str
    outcome: str
    requests: int
    errors: Sequence[tuple[str, str]]
    """(role, message) of each run that could not run the check."""
    expectations: Sequence[ExpectationView]
    plots: Sequence[tuple[str, str]] = ()
    """(caption, data URI) besides the per-expectation ones: latency histograms, gate distributions."""
    findings: Sequence[str] = ()
    label: str = ""
    baseline_outcome: str = ""
    candidate_outcome: str = ""
    open: bool = True
    forensics: Sequence[str] = ()
    """Where to look after a failure: the proxy's routes and clusters for the host, log tails (report/forensics.py)."""


def run_html(run: RunResult) -> str:
    """The report of one run."""
    return _render(
        mode="run",
        title="mesh-harness run",
        subtitle=mesh_text(run.mesh),
        counts=list(run.summary.items()),
        notes=_settings_note(run),
        checks=[_check_view(i, c) for i, c in enumerate(run.checks)],
    )


def gate_html(diff: GateDiff) -> str:
    """The report of a gate: the checks that differ first, each with baseline and candidate side by side."""
    titles = (f"baseline: {_mesh_short(diff.baseline_mesh)}", f"candidate: {_mesh_short(diff.candidate_mesh)}")
    ordered = sorted(range(len(diff.checks)), key=lambda i: (not diff.checks[i].differs, i))
    checks = [_gate_view(i, diff.checks[i], titles) for i in ordered]
    s = diff.settings
    return _render(
        mode="gate",
        title="mesh-harness gate",
        subtitle=f"{titles[0]}  →  {titles[1]}",
        counts=list(summary_counts(diff)),
        notes=(f"Distributions are compared per category by Fisher's exact test with Bonferroni over "
               f"{plural(diff.comparisons, 'test')} (a category differs at p ≤ {diff.threshold:.2g}): an unchanged mesh shows "
               f"any difference with probability at most {s.alpha:g}. Latency: {', '.join(s.latency_quantiles)} moved "
               f"by more than ×{s.latency_ratio:g} and {s.latency_floor_s * 1000:g} ms."),
        checks=checks,
    )


def write_html(path: str | Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def _check_view(index: int, r: CheckResult) -> CheckView:
    expectations = [ExpectationView(e.expectation, [_evidence_view("", e)],
                                    plots.fraction_plot(e) if e.kind in STATISTICAL_KINDS else None)
                    for e in _evidence(r)]
    latency = _latency_plot([("responses", r)])
    return CheckView(
        anchor=f"check-{index}", case=r.case, check=r.check, where=f"{r.file}:{r.line}",
        outcome=r.outcome, requests=requests_of(r), errors=_errors([("", r)]),
        expectations=expectations, plots=[("latency", latency)] if latency else [],
        open=r.outcome != "pass" or bool(latency) or any(e.plot for e in expectations),
        forensics=forensics_lines(r.forensics) if r.forensics else (),
    )


def _gate_view(index: int, c: CheckDiff, titles: tuple[str, str]) -> CheckView:
    runs = [(role, r) for role, r in (("baseline", c.baseline), ("candidate", c.candidate)) if r is not None]
    figures: list[tuple[str, str]] = []
    if c.baseline is not None and c.candidate is not None:
        traffic = [distributions_of(r) for _, r in runs]
        figures += [(f"{d.name}: baseline and candidate", plots.distribution_pair_plot(d.name, traffic[0][d.name], traffic[1][d.name]))
                    for d in c.changed_distributions if d.name in traffic[0] and d.name in traffic[1]]
        latency = _latency_plot(runs, force=bool(c.latency))
        if latency:
            figures.append(("latency: baseline and candidate", latency))
    return CheckView(
        anchor=f"check-{index}", case=c.case, check=c.check, where=f"{c.file}:{c.line}",
        outcome=runs[-1][1].outcome, requests=requests_of(runs[-1][1]), errors=_errors(runs),
        expectations=_paired_expectations(runs, titles), plots=figures, findings=c.findings(), label=c.label,
        open=c.differs, baseline_outcome=c.baseline.outcome if c.baseline else "—",
        candidate_outcome=c.candidate.outcome if c.candidate else "—",
    )


def _paired_expectations(runs: Sequence[tuple[str, CheckResult]], titles: tuple[str, str]) -> list[ExpectationView]:
    """Each expectation with what every run saw; statistical ones in both runs get side-by-side plots."""
    by_text: dict[str, dict[str, Evidence]] = {}
    for role, r in runs:
        for e in _evidence(r):
            by_text.setdefault(e.expectation, {})[role] = e
    views = []
    for text, seen in by_text.items():
        b, c = seen.get("baseline"), seen.get("candidate")
        plot = (plots.fraction_pair_plot(b, c, titles)
                if b is not None and c is not None and b.kind in STATISTICAL_KINDS and c.kind in STATISTICAL_KINDS else None)
        views.append(ExpectationView(text, [_evidence_view(role, e) for role, e in seen.items()], plot))
    return views


def _evidence(r: CheckResult) -> tuple[Evidence, ...]:
    return r.verdict.evidence if r.verdict is not None else ()


def _evidence_view(role: str, e: Evidence) -> EvidenceView:
    return EvidenceView(role=role, outcome=e.outcome, observed=observed_vs_expected(e),
                        interval=interval_text(e) if e.intervals else "", rule=e.rule, counterexample=e.counterexample)


def requests_of(r: CheckResult) -> int:
    """Requests sent and judged (the traffic's count: an every-request judge stops counting at a counterexample)."""
    return r.traffic.requests if r.traffic is not None else r.requests


def _errors(runs: Sequence[tuple[str, CheckResult]]) -> list[tuple[str, str]]:
    return [(role, r.error) for role, r in runs if r.error]


def _latency_plot(runs: Sequence[tuple[str, CheckResult]], *, force: bool = False) -> str | None:
    """A histogram where a latency expectation sets a bound (or, for a gate, where latency shifted)."""
    bounds: dict[str, float] = {}
    for _, r in runs:
        for e in _evidence(r):
            bounds.update(e.bounds_s)
    histograms = [(label, r.traffic.latency.histogram if r.traffic and r.traffic.latency else ()) for label, r in runs]
    if not (bounds or force) or not any(h for _, h in histograms):
        return None
    return plots.latency_plot(histograms, bounds)


def _settings_note(run: RunResult) -> str:
    s = run.settings
    return f"Settings: alpha {s.alpha:g}, delta {s.delta:g}, power {s.power:g}. Run took {round(run.seconds, 3):g} s."


def _mesh_short(mesh: MeshInfo | None) -> str:
    if mesh is None:
        return "unknown mesh"
    return f"Istio {mesh.istio_version}, Envoy {mesh.envoy_version}"


def _render(**context: Any) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)
