"""Ctrl-C (SIGINT) and SIGTERM at exact phases of a run leave no process, port or temp dir behind.

A driver process (``DRIVER_SCRIPT``) runs a LocalMesh with the CLI's signal handling and stops at
one phase: a hook on the function that marks the phase prints what the mesh holds so far as a JSON
line, then blocks (bounded) until the test's signal arrives there. The test owns the signal, so
it lands exactly at the phase, never by sleeping and hoping:

- ``half-the-apps``: one app is up, the other app starts are held until the signal (they start while
  the interrupt unwinds: those must be stopped too; this case found the app whose start the interrupt
  cut short left running);
- ``envoy-spawned``: the sidecar's Envoy was spawned and has no config yet (not ready);
- ``first-ack-wait``: the first config is pushed and deploy waits for the sidecar's ACK;
- ``traffic``: in the middle of a large bounded ``send`` (the test waits until requests reach the apps);
- ``revert-ack-wait``: a case's config was applied; ``revert`` pushed and waits for the ACK.

The hooks name functions, not an order (the mesh starts its apps, then Envoy, then waits for the
ACK), so a change of start-up order keeps each phase meaningful. Then the ``mesh-harness run`` console script itself is signalled once its Envoy runs, and must exit
with the codes the CLI documents (130 SIGINT, 143 SIGTERM).

Found here and fixed: a client app in the middle of a ForwardEcho batch waited for its /forward
handler on SIGTERM (aiohttp's 60 s shutdown timeout), so ``close()`` had to kill it after
``STOP_TIMEOUT_S``; the echo app now cancels in-flight handlers after ``SHUTDOWN_GRACE_S``.

"Nothing left" is checked by identity, never by name: every pid the driver reported and every
descendant found under the driver's pid before the signal (pid and start time), every port those
processes listened on (found from their sockets, plus the ports reported), the work dir, any
``mesh-harness-*`` temp dir owned by the driver's pid, and any live process carrying the run's tag
in its environment (children inherit it, so this also finds processes started after the signal).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from harness.cli import EXIT_INTERRUPTED, EXIT_TERMINATED
from harness.mesh.base import SendSpec
from harness.mesh.childproc import OutputClosed, OutputTimeout, read_until
from harness.mesh.local.envoy_binary import find_envoy
from harness.mesh.local.mesh import LocalMesh
from harness.mesh.local.workdir import OWNER_FILE, PREFIX
from harness.topology import DEFAULT_TOPOLOGY
from tests.integration.test_local_mesh import REPO_ROOT, port_is_held, wait_all_gone

pytestmark = pytest.mark.envoy

REPORT_TIMEOUT_S = 120.0  # ten drivers start side by side (interpreter, imports, apps, Envoy: each bounded by 60 s) on a loaded 2-core machine
HOLD_S = 120.0  # how long a driver waits at its phase for the signal; the test signals long before
TRAFFIC_TIMEOUT_S = 30.0  # from the phase report until the first request reached an app
EXIT_TIMEOUT_S = 30.0
"""From the signal until the run exited: ten runs unwind at once on a loaded 2-core machine."""
TAG_VARIABLE = "MESH_HARNESS_INTERRUPT_TAG"
EXPECTED_EXIT = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
SIGNALS = (signal.SIGINT, signal.SIGTERM)

DRIVER_SCRIPT = r'''
import itertools, json, select, signal, sys, threading
from pathlib import Path

from harness.case import load_case_file
from harness.cli import EXIT_INTERRUPTED, EXIT_TERMINATED
from harness.interrupts import Terminated, sigterm_as_interrupt
from harness.mesh.base import SendSpec
from harness.mesh.local.apps import AppProcess
from harness.mesh.local.controlplane import ControlPlane
from harness.mesh.local.envoy import EnvoyProcess
from harness.mesh.local.mesh import LocalMesh
from harness.topology import DEFAULT_TOPOLOGY

PHASE, HOLD_S = sys.argv[1], float(sys.argv[2])
signalled = threading.Event()  # app starts held back by the half-the-apps hook go on once it is set
apps = {}  # instance -> AppProcess as the hook saw it start (the mesh records apps only once all are up)
mesh = LocalMesh()


def on_signal(signum, frame):
    signalled.set()
    (sigterm_as_interrupt if signum == signal.SIGTERM else signal.default_int_handler)(signum, frame)


def report():
    inventory = mesh.inventory()
    pids = {**{name: app.pid for name, app in apps.items()}, **inventory.pids}
    ports = {**{f"{name}/{kind}": getattr(app, f"{kind}_port") for name, app in apps.items()
                for kind in ("http", "grpc", "control")}, **inventory.ports}
    print(json.dumps({"phase": PHASE, "pids": pids, "ports": ports, "workdir": str(inventory.workdir)}), flush=True)


def hold():
    """Report, then wait for the signal: it raises KeyboardInterrupt out of this select."""
    report()
    select.select([sys.stdin], [], [], HOLD_S)
    sys.exit(f"driver: no signal within {HOLD_S:g}s at phase {PHASE}")


def hold_at_first(cls, name, *, after):
    """Hold at the first call of ``cls.name``, before it runs or ``after`` it returned."""
    original, calls = getattr(cls, name), itertools.count()

    def hooked(self, *args, **kwargs):
        first = next(calls) == 0
        if first and not after:
            hold()
        result = original(self, *args, **kwargs)
        if first and after:
            hold()
        return result

    setattr(cls, name, hooked)


def hold_after_first_app():
    """The first app start reports once its app is up; the others wait for the signal, then start."""
    original, calls = AppProcess.start, itertools.count()

    def start(*args, **kwargs):
        first = next(calls) == 0
        if not first and not signalled.wait(HOLD_S):
            raise RuntimeError(f"driver: no signal within {HOLD_S:g}s at phase {PHASE}")
        app = original(*args, **kwargs)
        apps[app.instance] = app
        if first:
            report()
        return app

    AppProcess.start = start


signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)
try:
    with mesh:
        if PHASE == "half-the-apps":
            hold_after_first_app()
        elif PHASE == "envoy-spawned":
            hold_at_first(EnvoyProcess, "start", after=True)
        elif PHASE == "first-ack-wait":
            hold_at_first(ControlPlane, "wait_synced", after=False)
        mesh.deploy(DEFAULT_TOPOLOGY)
        if PHASE == "traffic":
            report()
            mesh.send(SendSpec(url="http://reviews:9080/", count=100_000, concurrency=4, rate=500.0,
                               deadline_s=HOLD_S))
        elif PHASE == "revert-ack-wait":
            token = mesh.apply(load_case_file(Path("cases/canary.yaml"))[0].objects)
            hold_at_first(ControlPlane, "wait_synced", after=False)
            mesh.revert(token)
except KeyboardInterrupt as exc:
    sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
sys.exit(f"driver: phase {PHASE} ran to its end without a signal")
'''

PHASES = ["half-the-apps", "envoy-spawned", "first-ack-wait", "traffic", "revert-ack-wait"]


@dataclass(frozen=True)
class Held:
    """What a signalled run held just before the signal, to check afterwards that all of it is gone."""

    owner: int  # the pid of the driver (or CLI): it owns the work dir
    pids: Mapping[str, int]  # label -> pid
    starts: Mapping[str, str]  # label -> start time (/proc stat), so a reused pid is not mistaken for a survivor
    ports: Mapping[str, int]  # label -> port
    workdir: Path | None


@dataclass
class Run:
    """A signalled process, its captured stderr and the tag its descendants inherit."""

    proc: subprocess.Popen[bytes]
    stderr_path: Path
    tag: str

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]


# --- the tests -------------------------------------------------------------------------------------


def test_sigint_and_sigterm_at_every_phase_leave_nothing_behind(tmp_path: Path) -> None:
    """One driver per phase and signal, all side by side: the handshake puts each signal at its phase
    however loaded the machine is, and ten runs overlap in a third of the time they take in turn."""
    with ExitStack() as stack:
        runs = {(phase, sig): stack.enter_context(driver(phase, tmp_path / f"{phase}-{sig.name}"))
                for phase in PHASES for sig in SIGNALS}
        held: dict[tuple[str, signal.Signals], Held] = {}
        for (phase, sig), run in runs.items():
            held[phase, sig] = held_at_phase(run)
            run.proc.send_signal(sig)
        for (phase, sig), run in runs.items():
            assert_interrupted(run, sig, held[phase, sig], f"after {sig.name} at {phase}")


def test_cli_run_signalled_once_its_envoy_runs(tmp_path: Path) -> None:
    """``mesh-harness run`` as a user runs it (SIGINT and SIGTERM, side by side); the signal lands while
    the run starts the mesh, applies or sends, whichever it is at when its Envoy appears."""
    cli = Path(sys.executable).with_name("mesh-harness")
    envoy_binary = Path(find_envoy(None)).resolve()
    with ExitStack() as stack:
        runs = {sig: stack.enter_context(spawned([str(cli), "run", "cases/canary.yaml"], tmp_path / sig.name))
                for sig in SIGNALS}
        held: dict[signal.Signals, Held] = {}
        for sig, run in runs.items():
            held[sig] = held_by(run.proc.pid, {"envoy": wait_for_descendant(run, envoy_binary)}, {}, None)
            run.proc.send_signal(sig)
        for sig, run in runs.items():
            assert_interrupted(run, sig, held[sig], f"after {sig.name} of mesh-harness run")
            assert "interrupted; everything the harness started has been stopped" in run.stderr()


def test_cli_run_with_two_jobs_signalled_once_both_meshes_run(tmp_path: Path) -> None:
    """``run --jobs 2``: the signal lands in the main thread while two jobs drive their meshes from theirs;
    both meshes (each its Envoy, apps, control plane, work dir) must be gone, and the exit code the usual."""
    cli = Path(sys.executable).with_name("mesh-harness")
    envoy_binary = Path(find_envoy(None)).resolve()
    with ExitStack() as stack:
        runs = {sig: stack.enter_context(spawned([str(cli), "run", "-j", "2", "cases/outlier.yaml", "cases/canary.yaml"],
                                                 tmp_path / sig.name)) for sig in SIGNALS}
        held: dict[signal.Signals, Held] = {}
        for sig, run in runs.items():
            envoys = wait_for_descendants(run, envoy_binary, 2)
            held[sig] = held_by(run.proc.pid, {f"envoy {n}": pid for n, pid in enumerate(envoys)}, {}, None)
            run.proc.send_signal(sig)
        for sig, run in runs.items():
            assert_interrupted(run, sig, held[sig], f"after {sig.name} of mesh-harness run -j 2")
            assert "interrupted; everything the harness started has been stopped" in run.stderr()
            assert "Traceback" not in run.stderr(), run.stderr()


def test_cli_ctrl_c_in_a_terminal_reaches_the_whole_process_group(tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to every process of the foreground group: Envoy and the apps get
    it too, and may be gone before the harness cleans up. The run must still exit 130 with its usual
    message, no traceback and nothing left (the run is its own session here, as a shell job is)."""
    cli = Path(sys.executable).with_name("mesh-harness")
    envoy_binary = Path(find_envoy(None)).resolve()
    with spawned([str(cli), "run", "cases/canary.yaml"], tmp_path, new_session=True) as run:
        held = held_by(run.proc.pid, {"envoy": wait_for_descendant(run, envoy_binary)}, {}, None)
        os.killpg(run.proc.pid, signal.SIGINT)
        assert_interrupted(run, signal.SIGINT, held, "after Ctrl-C to the process group of mesh-harness run")
        stderr = run.stderr()
    assert "interrupted; everything the harness started has been stopped" in stderr
    assert "Traceback" not in stderr, stderr


def test_a_second_run_right_after_an_interrupted_one_works(tmp_path: Path) -> None:
    with driver("half-the-apps", tmp_path) as run:
        held = held_at_phase(run)
        run.proc.send_signal(signal.SIGTERM)
        assert_interrupted(run, signal.SIGTERM, held, "after SIGTERM at half-the-apps")

    with LocalMesh() as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        batch = mesh.send(SendSpec(url="http://reviews:9080/", count=20, deadline_s=30.0))
    assert [o.status for o in batch] == [200] * 20, [o.error for o in batch if o.status != 200][:3]


# --- running and signalling a driver -------------------------------------------------------------


@contextmanager
def spawned(argv: list[str], tmp_path: Path, *, new_session: bool = False) -> Iterator[Run]:
    """Start ``argv`` in the repo root with a fresh tag (``new_session``: as the leader of its own process
    group, which a signal to the group reaches); afterwards nothing it started may run on.

    Teardown (also when a test failed) kills, by pid, the process and any live process with its tag,
    and removes temp dirs it owns, so one failure does not leak into the next test.
    """
    tag = uuid.uuid4().hex
    tmp_path.mkdir(parents=True, exist_ok=True)
    stderr_path = tmp_path / "stderr.log"
    env = {**os.environ, TAG_VARIABLE: tag,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                env=env, start_new_session=new_session)
    run = Run(proc, stderr_path, tag)
    try:
        yield run
    finally:
        for leftover in [proc.pid, *tagged(tag)]:
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(EXIT_TIMEOUT_S)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        for path in owned_workdirs(proc.pid):
            shutil.rmtree(path, ignore_errors=True)


def driver(phase: str, tmp_path: Path) -> AbstractContextManager[Run]:
    return spawned([sys.executable, "-c", DRIVER_SCRIPT, phase, str(HOLD_S)], tmp_path)


def held_at_phase(run: Run) -> Held:
    """Wait (bounded) for the driver's report at its phase; what it and its descendants hold now."""
    assert run.proc.stdout is not None
    try:
        line = read_until(run.proc.stdout, REPORT_TIMEOUT_S, lambda buf: buf.split(b"\n", 1)[0] if b"\n" in buf else None)
    except OutputClosed:
        pytest.fail(f"the driver exited before its phase report:\n{run.stderr()}")
    except OutputTimeout:
        pytest.fail(f"the driver printed no phase report within {REPORT_TIMEOUT_S:g}s:\n{run.stderr()}")
    report = json.loads(line)
    if report["phase"] == "traffic":
        wait_for_traffic(report["ports"])
    return held_by(run.proc.pid, report["pids"], report["ports"], Path(report["workdir"]))


def wait_for_traffic(ports: Mapping[str, int]) -> None:
    """Until a reviews app logged a request of the batch (its control port, never through the mesh); bounded."""
    controls = [port for name, port in ports.items() if name.startswith("reviews-") and name.endswith("/control")]
    deadline = time.monotonic() + TRAFFIC_TIMEOUT_S
    with httpx.Client(trust_env=False, timeout=TRAFFIC_TIMEOUT_S) as http:
        while not any(http.get(f"http://127.0.0.1:{port}/log", params={"limit": 1}).json()["entries"]
                      for port in controls):
            if time.monotonic() >= deadline:
                pytest.fail(f"no request reached the reviews apps within {TRAFFIC_TIMEOUT_S:g}s of the send")
            time.sleep(0.01)


def wait_for_descendant(run: Run, binary: Path) -> int:
    """The pid of the first descendant of ``run`` that runs ``binary`` (by its /proc exe); bounded."""
    return wait_for_descendants(run, binary, 1)[0]


def wait_for_descendants(run: Run, binary: Path, count: int) -> list[int]:
    """The pids of ``count`` descendants of ``run`` that run ``binary`` (by their /proc exe); bounded."""
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while True:
        found = []
        for child in descendants(run.proc.pid):
            try:
                if Path(child.exe()).resolve() == binary:
                    found.append(int(child.pid))
            except psutil.Error:
                continue  # gone, or still exec'ing
        if len(found) >= count:
            return found
        if run.proc.poll() is not None or time.monotonic() >= deadline:
            pytest.fail(f"{len(found)} of {count} {binary.name} processes under pid {run.proc.pid} within "
                        f"{REPORT_TIMEOUT_S:g}s (exit code {run.proc.poll()}):\n{run.stderr()}")
        time.sleep(0.01)


def held_by(owner: int, pids: Mapping[str, int], ports: Mapping[str, int], workdir: Path | None) -> Held:
    """The reported pids and ports plus every descendant of ``owner`` and every port one of them listens on."""
    all_pids = {f"{name} (reported)": pid for name, pid in pids.items()}
    all_pids.update({f"pid {child.pid} under {owner}": child.pid for child in descendants(owner)})
    starts = {label: stat_start for label, pid in all_pids.items() if (stat_start := start_time_or_none(pid))}
    all_ports = {f"{name} (reported)": port for name, port in ports.items()}
    all_ports.update(listening_ports([owner, *all_pids.values()]))
    return Held(owner, {label: all_pids[label] for label in starts}, starts, all_ports, workdir)


def assert_interrupted(run: Run, sig: signal.Signals, held: Held, when: str) -> None:
    """The run exits (bounded) with the code the CLI documents for ``sig``, and left nothing behind."""
    code = run.proc.wait(EXIT_TIMEOUT_S)
    assert code == EXPECTED_EXIT[sig], f"{when}: exit code {code}, want {EXPECTED_EXIT[sig]}; stderr:\n{run.stderr()}"
    assert_nothing_left(run, held, when)


def assert_nothing_left(run: Run, held: Held, when: str) -> None:
    wait_all_gone(held.pids, held.starts, EXIT_TIMEOUT_S, when)
    survivors = {pid: describe(pid) for pid in tagged(run.tag)}
    assert not survivors, f"{when}: processes started by the run still live: {survivors}"
    ours = set(tagged(run.tag))
    busy = {label: port for label, port in held.ports.items() if port_is_held(port, lambda pid: pid in ours)}
    assert not busy, f"{when}: ports still bound: {busy}"
    if held.workdir is not None:
        assert not held.workdir.exists(), f"{when}: work dir {held.workdir} was left behind"
    assert not owned_workdirs(held.owner), f"{when}: temp dirs of pid {held.owner} left: {owned_workdirs(held.owner)}"


# --- processes, sockets and temp dirs by identity --------------------------------------------------


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def start_time_or_none(pid: int) -> str | None:
    """The start time field of /proc/<pid>/stat (as ``is_alive`` compares it), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (FileNotFoundError, ProcessLookupError):
        return None


def listening_ports(pids: list[int]) -> dict[str, int]:
    """Every TCP port one of ``pids`` listens on, labelled by the pid."""
    ports: dict[str, int] = {}
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue  # gone already: its sockets are closed
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN:
                ports[f"listener of pid {pid} on {conn.laddr.ip}"] = conn.laddr.port
    return ports


def tagged(tag: str) -> list[int]:
    """Live processes (not zombies) whose environment carries ``tag``: everything a run started inherits it."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TAG_VARIABLE) == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.Error:
            continue  # gone, or not ours to read
    return found


def describe(pid: int) -> str:
    """A process's command line and parent, for a failure message."""
    try:
        process = psutil.Process(pid)
        return f"{' '.join(process.cmdline())[:300]} (parent {process.ppid()})"
    except psutil.Error as exc:
        return f"({exc})"


def owned_workdirs(owner: int) -> list[Path]:
    """``mesh-harness-*`` dirs under the temp root whose owner file names ``owner``."""
    owned = []
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            if int((path / OWNER_FILE).read_text().strip()) == owner:
                owned.append(path)
        except (OSError, ValueError):
            continue
    return owned
