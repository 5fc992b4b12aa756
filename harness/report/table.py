"""The terminal table at the end of a run: one row per expectation, with the numbers behind it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from harness.result import CheckResult, Evidence

_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "error": "bold magenta"}


def render_table(results: Sequence[CheckResult], console: Console) -> None:
    table = Table(title="mesh-harness results", show_lines=False)
    for column in ("case", "check", "verdict", "n", "observed vs expected", "interval"):
        table.add_column(column, overflow="fold")
    for r in results:
        style = _STYLE.get(r.outcome, "")
        if r.verdict is None or not r.verdict.evidence:
            table.add_row(r.case, r.check, f"[{style}]{r.outcome}[/]", "0", r.error or "", "")
            continue
        for i, e in enumerate(r.verdict.evidence):
            table.add_row(
                r.case if i == 0 else "", r.check if i == 0 else "",
                f"[{_STYLE[e.outcome]}]{e.outcome}[/]", str(e.n), observed_vs_expected(e), _evidence_column(e),
            )
    console.print(table)
    counts = {k: sum(1 for r in results if r.outcome == k) for k in _STYLE}
    console.print(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no checks ran")


def observed_vs_expected(e: Evidence) -> str:
    """``v1 0.902 (0.9), v2 0.098 (0.1)``: each category's observed fraction with the expected one;
    quantiles and aggregates (stat deltas, instances) carry their own summary."""
    if e.summary is not None:
        return e.summary
    names = list(e.expected) + [k for k in e.observed if k not in e.expected]
    parts = [f"{k} {e.observed.get(k, 0.0):.3f} ({e.expected.get(k, 0.0):g})" for k in names
             if k in e.observed or e.expected.get(k, 0.0) > 0]
    return ", ".join(parts)


def _evidence_column(e: Evidence) -> str:
    """The table's last column: the interval of a statistical verdict; for an every-response check that
    passed, only what its request count guards against (the full rule is in the JSON and in failures); for an
    inconclusive fraction the rule itself, which shows the pass and the (wider) fail interval it needed."""
    if e.kind == "every" and e.outcome == "pass" and e.leak is not None:
        return f"a {e.leak:.0%} leak shows with p {e.power:.3g}"
    if e.kind == "fraction" and e.outcome == "inconclusive":
        return e.rule
    return interval_text(e)


def interval_text(e: Evidence) -> str:
    if not e.intervals:
        return e.rule
    if e.kind == "quantile":
        (lo, hi), = e.intervals.values()
        return f"{level_percent(e.level or 0.0)} share [{lo:.3f}, {hi:.3f}] at alpha {e.alpha:g}"
    level = f"{level_percent(e.level)} " if e.level is not None else ""
    spans = ", ".join(f"{k} [{lo:.3f}, {hi:.3f}]" for k, (lo, hi) in e.intervals.items() if e.expected.get(k, 0) > 0 or e.observed.get(k))
    return f"{level}{spans}; ±{max(e.delta.values(), default=0):.3g} at alpha {e.alpha:g}"


def level_percent(level: float) -> str:
    """``99.975%``, ``99.99999938%``: two significant digits of the miss, so a level below 1 never reads as 100%."""
    miss = 100.0 * (1.0 - level)
    decimals = max(0, 1 - math.floor(math.log10(miss))) if miss > 0 else 0
    text = f"{100.0 - miss:.{decimals}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"
