"""The final tables of a load run: per check and version, the gates, and the checks' verdicts. No I/O."""

from __future__ import annotations

from rich.table import Table

from harness.expect.base import show_seconds
from harness.locust.thresholds import LoadReport

_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow", "not judged": "dim"}


def versions_table(report: LoadReport) -> Table:
    s = report.summary
    latency = "" if s.p50_s is None else (
        f"; p50 {show_seconds(s.p50_s)}, p95 {show_seconds(s.p95_s or 0.0)}, p99 {show_seconds(s.p99_s or 0.0)}")
    table = Table(title=f"{report.case}: {s.requests} requests in {s.duration_s:.1f}s ({s.rps:.0f}/s){latency}")
    for column, justify in (("check", "left"), ("version", "left"), ("requests", "right"), ("share", "right"),
                            ("failures", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in report.summary.rows:
        table.add_row(row.check, row.version, str(row.requests), f"{row.share:.3f}", str(row.failures))
    return table


def thresholds_table(report: LoadReport) -> Table:
    table = Table(title="gates")
    for column in ("gate", "want", "got", "outcome"):
        table.add_column(column)
    for g in report.gates:
        outcome = "[green]pass[/]" if g.passed else "[red]fail[/]"
        table.add_row(g.gate, g.want, g.got, outcome)
    if not report.gates:
        table.add_row("(none set)", "", "", "")
    return table


def checks_table(report: LoadReport) -> Table:
    """Each check's outcome and, per expectation, what decided it (the same rule text as ``run``)."""
    table = Table(title="expectations under load")
    for column in ("check", "expectation", "outcome", "n", "evidence"):
        table.add_column(column, overflow="fold")
    for c in report.checks:
        style = _STYLE[c.outcome]
        table.add_row(c.name, "", f"[{style}]{c.outcome}[/]", str(c.requests),
                      f"{c.stale} responses from another config ignored" if c.stale else "")
        for e in c.verdict.evidence if c.verdict else ():
            table.add_row("", e.expectation, f"[{_STYLE[e.outcome]}]{e.outcome}[/]", str(e.n), e.summary or e.rule)
        for expectation, why in c.unjudged:
            table.add_row("", expectation, "[dim]not judged[/]", "", why)
        if c.note:
            table.add_row("", "", "[yellow]inconclusive[/]", "", c.note)
    return table
