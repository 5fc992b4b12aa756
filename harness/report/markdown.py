"""The gate summary as Markdown, for a CI comment on the upgrade's pull request. Pure.

Only the checks that differ get a row (a comment is read on a phone); the method and its error
rate close the comment, so a reviewer knows what "no differences" is worth.
"""

from __future__ import annotations

from harness.report.gate import CheckDiff, GateDiff, headline, mesh_text, plural, show_ms


def gate_markdown(diff: GateDiff) -> str:
    s = diff.settings
    lines = [
        f"## mesh-harness gate: {headline(diff)}",
        "",
        f"- baseline: {mesh_text(diff.baseline_mesh)}",
        f"- candidate: {mesh_text(diff.candidate_mesh)}",
        "",
    ]
    if diff.differences:
        lines += ["| | check | baseline | candidate | what changed |", "|---|---|---|---|---|"]
        lines += [_row(c) for c in diff.differences]
        lines.append("")
    lines += [
        f"<sub>Distributions (versions, statuses, response flags, and each expectation's categories) are compared "
        f"per category by Fisher's exact test, Bonferroni over {plural(diff.comparisons, 'test')}: a category differs at "
        f"p <= {diff.threshold:.2g}, so an unchanged mesh shows any difference with probability at most {s.alpha:g}. "
        f"Latency: {', '.join(s.latency_quantiles)} moved by more than x{s.latency_ratio:g} and "
        f"{show_ms(s.latency_floor_s)}. The gate fails on regressions (worse outcome, slower, check missing) "
        "and changes (a distribution differs).</sub>",
        "",
    ]
    return "\n".join(lines)


def _row(c: CheckDiff) -> str:
    label = f"**{c.label}**" if c.blocks else c.label
    before = c.baseline.outcome if c.baseline else "-"
    after = c.candidate.outcome if c.candidate else "-"
    what = "<br>".join(_cell(f.replace(" -> ", " → ")) for f in c.findings())
    return f"| {label} | {_cell(c.case)} / {_cell(c.check)} <sub>{_cell(c.file)}:{c.line}</sub> | {before} | {after} | {what} |"


def _cell(text: str) -> str:
    """Table-safe: pipes escaped, no line breaks, no HTML from case names."""
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
