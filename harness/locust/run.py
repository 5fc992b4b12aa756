"""Running a case under load: apply it, run Locust headless in a process of its own, read back the records.

Locust patches the standard library with gevent when imported, so it never runs inside the
harness (or pytest) process: ``run_locust`` starts ``python -m locust -f <shipped locustfile>``
in its own session and temp dir, bounded in wall time (run time plus ``STARTUP_MARGIN_S``),
kills its process group on timeout, and reads the records it wrote. With ``workers`` it starts a
Locust master and that many workers on 127.0.0.1 instead (Locust's distributed mode); the workers
relay their records to the master (``relay.py``) and every process dies with the harness, even
on SIGKILL (``die_with_parent``). Locust's own exit code is not
the verdict (it says 1 for any failed request, even when failures are what the case expects): it
only tells whether Locust itself ran. The verdict comes from ``thresholds.judge_load``.

The Locust process is the in-mesh client: it connects to the client sidecar's listener for the
service port with the service's Host header, as ``LocalMesh.send``'s ForwardEcho does, so the
traffic takes the same path as the checks of ``mesh-harness run``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from harness.applied import applied
from harness.case import Case
from harness.errors import MeshError, ProcessError
from harness.loadspec import LoadSpec
from harness.locust.locust_cli import (
    NO_OUTPUTS,
    ONE_PROCESS,
    Distribution,
    LocustOutputs,
    RunFiles,
    locustfile_for,
    master_command,
    single_command,
    worker_command,
)
from harness.locust.plan import LOAD_CLIENT, CasePlan, plan_case
from harness.locust.thresholds import LoadReport, judge_load
from harness.locust.wire import LoadPlan, Record, WorkerShare, decode_records, read_ledger
from harness.mesh.base import Mesh, SidecarListeners
from harness.mesh.childproc import die_with_parent
from harness.mesh.local.workdir import make_workdir
from harness.settings import StatSettings
from harness.waits import wait_until

#: Wall time on top of the run time for Locust to import, spawn users, stop and write its reports.
STARTUP_MARGIN_S = 60.0
#: How long a master waits for its workers to connect before it gives up (within the margin above).
WAIT_FOR_WORKERS_S = 30.0
#: The same for workers on other machines, which someone starts by hand (``mesh-harness load --worker``).
REMOTE_WAIT_FOR_WORKERS_S = 300.0
#: How often the run is polled (progress, exit); also the granularity of the timeout.
POLL_S = 0.25
#: How long a killed Locust process group may take to go away, and workers to follow their master out.
KILL_WAIT_S = 10.0
_LOG_TAIL = 3000

Progress = Callable[[float, int], None]
"""Called while Locust runs with (seconds since start, records written so far)."""


@dataclass(frozen=True)
class LocustRun:
    """What a Locust run produced: every record, and per worker what it delivered (empty for one process)."""

    records: list[Record]
    workers: tuple[WorkerShare, ...] = ()

    @property
    def lost_workers(self) -> tuple[str, ...]:
        """Workers whose last records never came (died or lost their master mid-run), by name."""
        return tuple(f"{w.name} ({w.records} records delivered)" for w in self.workers if not w.finished)


def run_case_under_load(
    mesh: Mesh, case: Case, spec: LoadSpec, settings: StatSettings, outputs: LocustOutputs = NO_OUTPUTS,
    progress: Progress | None = None, *, distribution: Distribution = ONE_PROCESS,
) -> tuple[LoadReport, LocustRun]:
    """Deploy and apply ``case``, run Locust against the client sidecar, revert, judge.

    ``distribution`` runs a Locust master with workers on this machine and (``remote_workers``) others.
    Needs a local mesh, own or attached (``--mesh-attach``: the environment's), for its sidecar
    listener ports; on kind the Locust workers are pods with sidecars instead (``kube_run.py``).
    """
    with case_applied(mesh, case, spec) as applied:
        plan = replace(applied.plan.plan, config_version=str(applied.config_version))
        run = run_locust(plan, applied.host, spec, outputs, progress, distribution=distribution)
    report = judge_load(case.name, applied.plan, run.records, spec, settings, applied.config_version,
                        timer_tick_s=mesh.info().timer_tick_s, lost_workers=run.lost_workers)
    return report, run


@dataclass(frozen=True)
class AppliedCase:
    """A case applied for a load run: its plan, the client sidecar's listener (``http://ip:port``), its config version."""

    plan: CasePlan
    host: str
    config_version: int


@contextmanager
def case_applied(mesh: Mesh, case: Case, spec: LoadSpec,
                 host_of: Callable[[CasePlan], str] | None = None) -> Iterator[AppliedCase]:
    """``case`` deployed and applied on ``mesh`` while the block runs, then reverted. ``host_of``: where
    Locust sends for the case's plan (default: the client sidecar's listener of a local mesh)."""
    host = host_of or sidecar_listener(mesh, case)
    case_plan = plan_case(case, spec)
    with applied(mesh, case) as token:
        yield AppliedCase(case_plan, host(case_plan), token.version)


def sidecar_listener(mesh: Mesh, case: Case) -> Callable[[CasePlan], str]:
    """The client sidecar's listener (``http://ip:port``) for the plan's service port, on a local mesh."""
    listener_address = listener_lookup(mesh)

    def host(case_plan: CasePlan) -> str:
        address = listener_address(LOAD_CLIENT, case_plan.port)
        if address is None:
            raise MeshError(f"case {case.name}: no service listens on port {case_plan.port} in this mesh")
        return f"http://{address}"

    return host


def listener_lookup(mesh: Mesh) -> Callable[[str, int], str | None]:
    """How to find a client sidecar's listener for a service port on this mesh: (client, port) -> ``ip:port`` or None.

    Only a mesh whose sidecars listen on loopback has one (``SidecarListeners``: a ``LocalMesh`` or an
    environment attached with ``--mesh-attach``); any other mesh is a MeshError.
    """
    if isinstance(mesh, SidecarListeners):
        return mesh.listener_address
    raise MeshError(f"load runs send through the local mesh's client sidecar; got a {type(mesh).__name__}")

def run_locust(plan: LoadPlan, host: str, spec: LoadSpec, outputs: LocustOutputs = NO_OUTPUTS,
               progress: Progress | None = None, *, distribution: Distribution = ONE_PROCESS,
               alongside: Callable[[], AbstractContextManager[object]] | None = None) -> LocustRun:
    """Run Locust headless against ``host`` (a loopback address: 127.0.0.0/8) and return its records.

    A ``distribution`` with workers: a master and the local worker processes (remote ones connect
    by themselves), which relay their records to it (``relay.py``); the master's ledger says which
    worker delivered what. When every worker is remote, no process here sends, and ``host`` may be
    any URL (the workers' own, as the master hands it on). ``alongside`` is entered once the
    processes here have started and left when they are done, also on error or Ctrl-C (the worker
    pods of ``load --mesh kind``: ``kube_run.py``).
    SyncTimeout when the run outlives its run time plus ``STARTUP_MARGIN_S`` (every process is
    killed); ProcessError when Locust is missing or its master (or only process) exits non-zero.
    """
    sends_here = not distribution.workers or distribution.local_workers > 0
    if sends_here and not is_loopback_url(host):
        raise MeshError(f"load runs send to loopback addresses only (127.0.0.0/8; got {host})")
    if importlib.util.find_spec("locust") is None:
        raise ProcessError("Locust is not installed; install it with `pip install 'mesh-harness[load]'`")
    workdir = make_workdir("load")  # swept by the next run if this process is killed
    try:
        files = RunFiles(workdir / "plan.json", workdir / "records.jsonl", workdir / "workers.json",
                         locustfile_for(plan.protocol))
        files.plan.write_text(plan.to_json())
        files.records.touch()
        argvs = _commands(files, host, spec, outputs, distribution)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for i, command in enumerate(argvs):
                processes.append(start_locust(command, workdir, workdir / f"locust-{i}.log"))
            limit_s = spec.duration_s + STARTUP_MARGIN_S + (REMOTE_WAIT_FOR_WORKERS_S if distribution.remote_workers else 0)
            with alongside() if alongside is not None else nullcontext():
                _wait(processes[0], limit_s, files.records, workdir / "locust-0.log", progress)
                _wait_for_exit(processes[1:], KILL_WAIT_S)  # workers leave on the master's "quit"
        finally:
            for process in processes:
                stop_locust(process)
        if processes[0].returncode != 0:
            raise ProcessError(f"Locust{' master' if distribution.workers else ''} exited with code {processes[0].returncode}; "
                               f"its log ends:\n{locust_log_tail(workdir / 'locust-0.log')}")
        with open(files.records, encoding="utf-8") as lines:
            records = decode_records(lines, str(files.records))
        shares = read_ledger(files.ledger.read_text(), str(files.ledger)) if distribution.workers else ()
        return LocustRun(records, shares)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _commands(files: RunFiles, host: str, spec: LoadSpec, outputs: LocustOutputs, d: Distribution) -> list[list[str]]:
    """The Locust processes of the run on this machine, the one that ends it first."""
    if not d.workers:
        return [single_command(files, host, spec, outputs)]
    port = d.port or _free_port()
    # remote workers are started by people, on other machines: give them longer to connect
    wait_s = WAIT_FOR_WORKERS_S if not d.remote_workers else REMOTE_WAIT_FOR_WORKERS_S
    return [
        master_command(files, host, spec, outputs, bind_host=d.bind_host, port=port, workers=d.workers,
                       wait_for_workers_s=wait_s),
        *(worker_command(d.local_master_host, port, f"worker-{i}", locustfile=files.locustfile)
          for i in range(1, d.local_workers + 1)),
    ]


def start_locust(command: list[str], workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """A Locust process in its own session that dies with this one (SIGKILL of the harness included)."""
    prefix, preexec = die_with_parent()
    with open(log_path, "wb") as log:
        # cwd=workdir: Locust reads ./locust.conf and ./pyproject.toml; the user's must not change this run
        return subprocess.Popen([*prefix, *command], cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=_environment(),
                                preexec_fn=preexec)


def _free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1, for the master to bind (Locust takes a number, not 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_exit(processes: Sequence[subprocess.Popen[bytes]], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return  # killed by the caller


def _wait(process: subprocess.Popen[bytes], limit_s: float, records: Path, log: Path, progress: Progress | None) -> None:
    started = time.monotonic()
    counter = _LineCounter(records)

    def finished() -> bool:
        if process.poll() is not None:
            return True
        if progress is not None:
            progress(time.monotonic() - started, counter.count())
        return False

    wait_until(finished, limit_s, POLL_S, message=lambda: (
        f"Locust did not finish within {limit_s:g}s (run time plus {STARTUP_MARGIN_S:g}s to start and stop); "
        f"it was stopped. Its log ends:\n{locust_log_tail(log)}"))


class _LineCounter:
    """Records written so far (lines in the file), reading only what was added since the last call."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._lines = 0

    def count(self) -> int:
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        self._lines += chunk.count(b"\n")
        return self._lines

def stop_locust(process: subprocess.Popen[bytes]) -> None:
    """Stop Locust's process group if it still runs (timeout, Ctrl-C), and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(f"Locust (pid {process.pid}) did not exit within {KILL_WAIT_S:g}s of SIGKILL") from exc

def _environment() -> dict[str, str]:
    """This process's environment without ``LOCUST_*`` settings, which would change the run behind our back."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}

def locust_log_tail(log: Path) -> str:
    try:
        return log.read_bytes()[-_LOG_TAIL:].decode(errors="replace")
    except OSError:
        return "(no log)"

def is_loopback_url(url: str) -> bool:
    """``http://<loopback address>:port``: the builtin plane's sidecars listen on 127.0.0.1, istiod's on their own 127.A.B.x."""
    host = urlsplit(url).hostname
    try:
        return url.startswith("http://") and host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
