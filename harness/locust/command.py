"""``mesh-harness load CASE``: pick the case, pre-flight it, lay the flags over its ``load:`` block, run, show, exit code.

Exit code 0 when every gate held and every judged check passed, 1 otherwise, whatever Locust's
own exit code would have been (it only tells whether Locust ran; see ``run.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from harness.case import Case
from harness.errors import CaseError
from harness.loadspec import LoadSpec
from harness.locust.locust_cli import DEFAULT_MASTER_PORT, ONE_PROCESS, Distribution, LocustOutputs
from harness.locust.render import checks_table, thresholds_table, versions_table
from harness.locust.run import LocustRun, run_case_under_load
from harness.locust.run import Progress as RunProgress
from harness.locust.thresholds import LoadReport
from harness.locust.worker import serve_as_worker
from harness.mesh.base import Mesh
from harness.mesh.capabilities import MeshName
from harness.session import console_warning, enforce, pick_case, preflight
from harness.settings import StatSettings

EXIT_OK, EXIT_FAILED = 0, 1
M = TypeVar("M", bound=Mesh)
T = TypeVar("T")
MAX_PORT = 65535


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
    distribution: Distribution = ONE_PROCESS
    worker_of: tuple[str, int] | None = None
    """``--worker --master-host HOST``: this machine only sends, for the master at (HOST, port)."""
    outputs: LocustOutputs = LocustOutputs()
    settings: StatSettings = StatSettings()
    mesh: MeshName = "local-builtin"
    """The mesh the case runs on, whose refusals pre-flight applies (``harness.mesh.capabilities``)."""


@dataclass(frozen=True)
class ProcessFlags:
    """The command line's say on Locust processes, as typed (None: not given)."""

    workers: int | None = None
    master: bool = False
    expect_workers: int | None = None
    master_bind_host: str | None = None
    master_port: int | None = None
    worker: bool = False
    master_host: str | None = None
    has_reports: bool = False


def processes_from(flags: ProcessFlags) -> tuple[Distribution, tuple[str, int] | None]:
    """The run's Locust processes (and for ``--worker``, its master); CaseError naming the flags that do not go together."""
    port = flags.master_port or DEFAULT_MASTER_PORT
    if port > MAX_PORT:
        raise CaseError(f"--master-port must be a TCP port, at most {MAX_PORT} (got {port})")
    if flags.worker:
        if flags.master_host is None:
            raise CaseError("--worker needs --master-host HOST (the machine running `mesh-harness load CASE --master`)")
        given = [name for name, on in (("--master", flags.master), ("--workers", flags.workers),
                                       ("--expect-workers", flags.expect_workers), ("--csv/--html", flags.has_reports),
                                       ("--master-bind-host", flags.master_bind_host)) if on]
        if given:
            raise CaseError(f"--worker only sends and its master judges: leave out {', '.join(given)} "
                            "(give them to the master)")
        return ONE_PROCESS, (flags.master_host, port)
    if flags.master_host is not None:
        raise CaseError("--master-host is for --worker: the master this machine's worker connects to")
    if flags.master:
        if not flags.expect_workers:
            raise CaseError("--master needs --expect-workers N: how many `mesh-harness load CASE --worker` to wait for")
        return Distribution(local_workers=flags.workers or 0, remote_workers=flags.expect_workers,
                            bind_host=flags.master_bind_host or "*", port=port), None
    stray = [name for name, on in (("--expect-workers", flags.expect_workers), ("--master-bind-host", flags.master_bind_host),
                                   ("--master-port", flags.master_port)) if on]
    if stray:
        raise CaseError(f"{', '.join(stray)} only go with --master (workers on other machines)")
    return Distribution(local_workers=flags.workers or 0), None


def load(options: LoadOptions, open_mesh: Callable[[], AbstractContextManager[Mesh]], console: Console) -> int:
    case = pick_case(options.case_file, options.case_name, default=first_with_load)
    enforce(preflight([case], options.mesh), console_warning(console))
    spec = load_spec(options, case)
    if options.worker_of is not None:
        return _serve_as_worker(case, spec, options.worker_of, open_mesh, console)
    processes = describe(options.distribution)
    console.print(f"load: case {case.name}, {spec.users} users (spawn {spec.rate:g}/s) for {spec.duration_s:g}s, "
                  f"{processes}; Locust sends as the in-mesh client through the client sidecar", highlight=False)
    report, run = with_progress(open_mesh, spec, console, lambda mesh, progress: run_case_under_load(
        mesh, case, spec, options.settings, options.outputs, progress, distribution=options.distribution))
    return show_report(report, run, options.outputs, console)


def with_progress(open_mesh: Callable[[], AbstractContextManager[M]], spec: LoadSpec, console: Console,
                  body: Callable[[M, RunProgress], T]) -> T:
    """``body`` on the opened mesh, with a progress bar over the run time fed by its progress calls."""
    with open_mesh() as mesh, Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                       TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting Locust", total=spec.duration_s)

        def progress(elapsed: float, records: int) -> None:
            bar.update(task, completed=min(elapsed, spec.duration_s), description=f"{records} responses")

        return body(mesh, progress)


def show_report(report: LoadReport, run: LocustRun, outputs: LocustOutputs, console: Console) -> int:
    """The workers, the tables, where Locust's reports went, the verdict; the exit code."""
    show_workers(run, console)
    for table in (versions_table(report), thresholds_table(report), checks_table(report)):
        console.print(table)
    for path in (outputs.csv_prefix and f"{outputs.csv_prefix}_stats.csv", outputs.html):
        if path:
            console.print(f"Locust report: {path}", highlight=False)
    console.print("[green]load run passed[/]" if report.passed else "[red]load run failed[/]")
    return EXIT_OK if report.passed else EXIT_FAILED


def load_spec(options: LoadOptions, case: Case) -> LoadSpec:
    """The case's ``load:`` block (or the defaults) with the command line's values laid over it."""
    return (case.load or LoadSpec()).overridden(
        users=options.users, spawn_rate=options.spawn_rate, duration_s=options.duration_s,
        max_fail_ratio=options.max_fail_ratio, p95_s=options.p95_s, p99_s=options.p99_s, min_rps=options.min_rps,
    )


def describe(d: Distribution) -> str:
    if not d.workers:
        return "one Locust process"
    here = f"a Locust master and {d.local_workers} workers here" if d.local_workers else "a Locust master here"
    remote = f", waiting for {d.remote_workers} from other machines at {d.bind_host}:{d.port}" if d.remote_workers else ""
    return here + remote


def _serve_as_worker(case: Case, spec: LoadSpec, master: tuple[str, int],
                     open_mesh: Callable[[], AbstractContextManager[Mesh]], console: Console) -> int:
    host, port = master
    console.print(f"load worker: case {case.name} on this machine's mesh, for the Locust master at {host}:{port}; "
                  "it sends through this machine's client sidecar and the master judges", highlight=False)
    with open_mesh() as mesh:
        serve_as_worker(mesh, case, spec, host, port)
    console.print("worker done: the master ended the run (its report has the verdict)", highlight=False)
    return EXIT_OK


def show_workers(run: LocustRun, console: Console) -> None:
    """Per worker, the records it delivered; a lost worker in red, by name."""
    if run.workers:
        console.print("workers: " + ", ".join(f"{w.name} {w.records} records" for w in run.workers), highlight=False)
    for lost in run.lost_workers:
        console.print(f"[red]lost worker {lost}: it died or lost its master mid-run; the run fails[/]", highlight=False)


def first_with_load(cases: Sequence[Case]) -> Case:
    """Without ``--name``: the first case with a ``load:`` block, else the first."""
    return next((c for c in cases if c.load is not None), cases[0])
