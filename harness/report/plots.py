"""The HTML report's plots, each an inline PNG (``data:`` URI) so the report is one self-contained file.

Pure apart from rendering to memory: figures are built on ``matplotlib.figure.Figure``, never pyplot,
so no global figure state and no display is involved. Inputs are the typed results (``harness.result``).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from harness.expect.base import show_seconds
from harness.report.table import level_percent
from harness.result import Evidence

PASS, FAIL, BAND, EXPECTED = "#2b7bba", "#c23b22", "#cfe8cf", "#222222"
BASELINE, CANDIDATE = "#8c8c8c", "#2b7bba"
_DPI = 96
_WIDTH_IN = 5.6


def fraction_plot(expectation: Evidence) -> str:
    """Observed share per category with its interval, against the expected value and its tolerance band."""
    cats = categories_of(expectation)
    fig = _figure(len(cats))
    _fraction_axes(fig.add_subplot(1, 1, 1), expectation, cats)
    return _data_uri(fig)


def fraction_pair_plot(baseline: Evidence, candidate: Evidence, titles: tuple[str, str]) -> str:
    """The same expectation in two runs, side by side on shared axes."""
    cats = list(dict.fromkeys(categories_of(baseline) + categories_of(candidate)))
    fig = _figure(len(cats), width=_WIDTH_IN * 1.7)
    left = fig.add_subplot(1, 2, 1)
    right = fig.add_subplot(1, 2, 2, sharey=left, sharex=left)
    for ax, entry, title in ((left, baseline, titles[0]), (right, candidate, titles[1])):
        _fraction_axes(ax, entry, cats)
        ax.set_title(title, fontsize=9, loc="left")
    right.tick_params(labelleft=False)
    return _data_uri(fig)


def distribution_pair_plot(name: str, baseline: Mapping[str, int], candidate: Mapping[str, int]) -> str:
    """A traffic distribution in two runs: share per category, baseline and candidate bars side by side."""
    cats = sorted(set(baseline) | set(candidate))
    fig = _figure(len(cats) + 1)
    ax = fig.add_subplot(1, 1, 1)
    height = 0.38
    for offset, counts, color, title in ((-height / 2, baseline, BASELINE, "baseline"), (height / 2, candidate, CANDIDATE, "candidate")):
        n = sum(counts.values()) or 1
        ax.barh([i + offset for i in range(len(cats))], [counts.get(c, 0) / n for c in cats], height=height,
                color=color, label=f"{title} (n {sum(counts.values())})")
    _categories_axis(ax, cats)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of responses: {name}", fontsize=8)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False)
    _tidy(ax)
    return _data_uri(fig)


def latency_plot(histograms: Sequence[tuple[str, Sequence[Sequence[float]]]], bounds_s: Mapping[str, float]) -> str:
    """Latency histograms (log time axis, one step line per run) with the expectation's bounds as lines."""
    fig = Figure(figsize=(_WIDTH_IN, 2.3), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    colors = [CANDIDATE] if len(histograms) == 1 else [BASELINE, CANDIDATE]
    for (label, bins), color in zip(histograms, colors, strict=False):
        total = sum(b[2] for b in bins) or 1
        edges = [b[0] for b in bins] + [bins[-1][1]] if bins else []
        if len(histograms) == 1:
            ax.bar([b[0] for b in bins], [b[2] / total for b in bins], width=[b[1] - b[0] for b in bins],
                   align="edge", color=color, label=f"{label} (n {total})")
        else:
            ax.stairs([b[2] / total for b in bins], edges, color=color, linewidth=1.8, label=f"{label} (n {total})")
    for side, bound in bounds_s.items():
        ax.axvline(bound, color=FAIL, linestyle="--", linewidth=1.2)
        ax.annotate(f"{side.replace('_', ' ')} {show_seconds(bound)}", (bound, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(4, -12), textcoords="offset points", color=FAIL, fontsize=8)
    ax.set_xscale("log")
    edges = [b[i] for _, bins in histograms for b in bins for i in (0, 1)] + list(bounds_s.values())
    if edges:
        low, high = min(edges) / 1.25, max(edges) * 1.25
        ax.set_xlim(low, high)
        ax.set_xticks(_nice_ticks(low, high), [show_seconds(t) for t in _nice_ticks(low, high)])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("latency (log scale)", fontsize=8)
    ax.set_ylabel("share", fontsize=8)
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False)
    _tidy(ax)
    return _data_uri(fig)


def _nice_ticks(low: float, high: float) -> list[float]:
    """The densest of 1..9, 1-2-5 and 1 steps per decade with at most 8 ticks inside [low, high]
    (a log axis spanning less than a decade gets no labels from matplotlib)."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    inside: list[float] = []
    for mantissas in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1,)):
        inside = [m * 10.0 ** k for k in decades for m in mantissas if low <= m * 10.0 ** k <= high]
        if len(inside) <= 8:
            break
    return inside


def categories_of(expectation: Evidence) -> list[str]:
    """Expected categories first, then any other observed one."""
    return list(expectation.expected) + [k for k in expectation.observed if k not in expectation.expected]


def _fraction_axes(ax: Axes, e: Evidence, cats: Sequence[str]) -> None:
    for i, cat in enumerate(cats):
        want = e.expected.get(cat, 0.0)
        if e.kind == "quantile":  # the share on the wrong side of the bound may be anything up to the limit
            low, high = 0.0, want
        else:
            d = e.delta.get(cat, 0.0)
            low, high = max(0.0, want - d), min(1.0, want + d)
        ax.barh(i, high - low, left=low, height=0.7, color=BAND, zorder=1)
        ax.plot([want, want], [i - 0.35, i + 0.35], color=EXPECTED, linewidth=1.5, zorder=2)
        got = e.observed.get(cat, 0.0)
        lo, hi = e.intervals.get(cat, (got, got))
        inside = low - 1e-12 <= lo and hi <= high + 1e-12
        color = PASS if inside else FAIL
        ax.errorbar(got, i, xerr=[[got - lo], [hi - got]], fmt="o", color=color, capsize=4, markersize=5, zorder=3)
    _categories_axis(ax, cats)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("share of requests" + (f" ({level_percent(e.level)} interval)" if e.level else ""), fontsize=8)
    _tidy(ax)


def _categories_axis(ax: Axes, cats: Sequence[str]) -> None:
    """First category on top; set as limits (not inverted) so axes that share y stay consistent."""
    ax.set_yticks(range(len(cats)), [_short(c) for c in cats])
    ax.set_ylim(len(cats) - 0.5, -0.5)


def _figure(rows: int, width: float = _WIDTH_IN) -> Figure:
    return Figure(figsize=(width, 0.9 + 0.42 * max(1, rows)), dpi=_DPI, layout="constrained")


def _tidy(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


def _short(label: str, width: int = 36) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _data_uri(fig: Figure) -> str:
    out = io.BytesIO()
    fig.savefig(out, format="png")  # a Figure without pyplot renders through Agg for png
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
