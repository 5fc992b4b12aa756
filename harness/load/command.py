"""``mesh-harness load CASE``: pick the case, lay the flags over its ``load:`` block, run, show, exit code.

Exit code 0 when every gate held and every judged check passed, 1 otherwise, whatever Locust's
own exit code would have been (it only tells whether Locust ran; see ``run.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from harness.case import Case, load_case_file
from harness.errors import Issue, ValidationError
from harness.load.locust_cli import LocustOutputs
from harness.load.render import checks_table, gates_table, versions_table
from harness.load.run import LocustRun, run_case_under_load
from harness.load.schema import LoadSpec
from harness.mesh.base import Mesh
from harness.settings import StatSettings

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class LoadOptions:
    """The command line; None keeps the case's ``load:`` value (or the default)."""

    case_file: str
    case_name: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    duration_s: float | None = None
    max_fail_ratio: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    min_rps: float | None = None
    workers: int = 0
    outputs: LocustOutputs = LocustOutputs()
    settings: StatSettings = StatSettings()


def load(options: LoadOptions, open_mesh: Callable[[], AbstractContextManager[Mesh]], console: Console) -> int:
    case = pick_case(options.case_file, options.case_name)
    spec = (case.load or LoadSpec()).overridden(
        users=options.users, spawn_rate=options.spawn_rate, duration_s=options.duration_s,
        max_fail_ratio=options.max_fail_ratio, p95_s=options.p95_s, p99_s=options.p99_s, min_rps=options.min_rps,
    )
    processes = f"a Locust master and {options.workers} workers" if options.workers else "one Locust process"
    console.print(f"load: case {case.name}, {spec.users} users (spawn {spec.rate:g}/s) for {spec.duration_s:g}s, "
                  f"{processes}; Locust sends as the in-mesh client through the client sidecar", highlight=False)
    with open_mesh() as mesh, Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                       TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting Locust", total=spec.duration_s)

        def progress(elapsed: float, records: int) -> None:
            bar.update(task, completed=min(elapsed, spec.duration_s), description=f"{records} responses")

        report, run = run_case_under_load(mesh, case, spec, options.settings, options.outputs, progress,
                                          workers=options.workers)
    show_workers(run, console)
    for table in (versions_table(report), gates_table(report), checks_table(report)):
        console.print(table)
    for path in (options.outputs.csv_prefix and f"{options.outputs.csv_prefix}_stats.csv", options.outputs.html):
        if path:
            console.print(f"Locust report: {path}", highlight=False)
    console.print("[green]load run passed[/]" if report.passed else "[red]load run failed[/]")
    return EXIT_OK if report.passed else EXIT_FAILED


def show_workers(run: LocustRun, console: Console) -> None:
    """Per worker, the records it delivered; a lost worker in red, by name."""
    if run.workers:
        console.print("workers: " + ", ".join(f"{w.name} {w.records} records" for w in run.workers), highlight=False)
    for lost in run.lost_workers:
        console.print(f"[red]lost worker {lost}: it died or lost its master mid-run; the run fails[/]", highlight=False)


def pick_case(file: str, name: str | None) -> Case:
    """The named case of the file; without a name, the first case with a ``load:`` block, else the first."""
    cases = load_case_file(file)
    if name is not None:
        chosen = next((c for c in cases if c.name == name), None)
        if chosen is None:
            names = ", ".join(c.name for c in cases)
            raise ValidationError([Issue(f"no case named {name!r} (cases in this file: {names}); pass one with --name", file)])
        return chosen
    return next((c for c in cases if c.load is not None), cases[0])
