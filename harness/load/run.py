"""Running a case under load: apply it, run Locust headless in a process of its own, read back the records.

Locust patches the standard library with gevent when imported, so it never runs inside the
harness (or pytest) process: ``run_locust`` starts ``python -m locust -f <shipped locustfile>``
in its own session and temp dir, bounded in wall time (run time plus ``STARTUP_MARGIN_S``),
kills its process group on timeout, and reads the records it wrote. Locust's own exit code is not
the verdict (it says 1 for any failed request, even when failures are what the case expects): it
only tells whether Locust itself ran. The verdict comes from ``gates.judge_load``.

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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness.case import Case
from harness.errors import MeshError, ProcessError, SyncTimeout
from harness.load.gates import LoadReport, judge_load
from harness.load.plan import LOAD_CLIENT, plan_case
from harness.load.schema import LoadSpec
from harness.load.wire import LoadPlan, Record, decode_records
from harness.mesh.base import Mesh
from harness.settings import StatSettings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: Wall time on top of the run time for Locust to import, spawn users, stop and write its reports.
STARTUP_MARGIN_S = 60.0
#: How often the run is polled (progress, exit); also the granularity of the timeout.
POLL_S = 0.25
#: How long a killed Locust process group may take to go away.
KILL_WAIT_S = 10.0
_LOG_TAIL = 3000

Progress = Callable[[float, int], None]
"""Called while Locust runs with (seconds since start, records written so far)."""

@dataclass(frozen=True)
class LocustOutputs:
    """Locust's own reports, written where the user asks: ``--csv PREFIX`` and ``--html FILE``."""

    csv_prefix: str | None = None
    html: str | None = None

def run_case_under_load(
    mesh: Mesh, case: Case, spec: LoadSpec, settings: StatSettings, outputs: LocustOutputs = LocustOutputs(),
    progress: Progress | None = None,
) -> LoadReport:
    """Deploy and apply ``case``, run Locust against the client sidecar, revert, judge.

    Needs a local mesh, own or attached (``--mesh-attach``: the environment's), for its sidecar
    listener ports; on kind the load would come from an in-mesh client or the ingress gateway,
    which is not built.
    """
    listener_address = _listener_lookup(mesh)
    case_plan = plan_case(case, spec)
    mesh.deploy(case.topology)
    token = mesh.apply(case.objects)
    try:
        address = listener_address(LOAD_CLIENT, case_plan.port)
        if address is None:
            raise MeshError(f"case {case.name}: no service listens on port {case_plan.port} in this mesh")
        records = run_locust(case_plan.plan, f"http://{address}", spec, outputs, progress)
    finally:
        mesh.revert(token)
    return judge_load(case.name, case_plan, records, spec, settings, token.version,
                      timer_tick_s=mesh.info().timer_tick_s)

def _listener_lookup(mesh: Mesh) -> Callable[[str, int], str | None]:
    """How to find a client sidecar's listener for a service port on this mesh: (client, port) -> ``ip:port`` or None.

    Only the local mesh has one on loopback: a ``LocalMesh`` or an environment
    attached with ``--mesh-attach`` (its daemon's status); any other mesh is a MeshError.
    """
    from harness.env.remote import AttachedMesh
    from harness.mesh.local.mesh import LocalMesh

    if isinstance(mesh, AttachedMesh):
        return mesh.listener_address
    if isinstance(mesh, LocalMesh):
        return mesh.listener_address
    raise MeshError(f"load runs send through the local mesh's client sidecar; got a {type(mesh).__name__}")

def locust_command(plan: Path, records: Path, host: str, spec: LoadSpec, outputs: LocustOutputs) -> list[str]:
    """The headless Locust command line. ``--exit-code-on-error 0``: failed requests are the
    harness's to judge, so a non-zero exit means Locust itself failed."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(spec.users), "-r", f"{spec.rate:g}", "-t", f"{max(1, round(spec.duration_s))}s",
        "--stop-timeout", "0", "--exit-code-on-error", "0", "--host", host,
        "--mesh-plan", str(plan), "--mesh-records", str(records),
    ]
    if outputs.csv_prefix:
        command += ["--csv", str(Path(outputs.csv_prefix).absolute())]
    if outputs.html:
        command += ["--html", str(Path(outputs.html).absolute())]
    return command

def run_locust(plan: LoadPlan, host: str, spec: LoadSpec, outputs: LocustOutputs = LocustOutputs(),
               progress: Progress | None = None) -> list[Record]:
    """Run Locust headless against ``host`` (a loopback address: 127.0.0.0/8) and return its records.

    SyncTimeout when it outlives the run time plus ``STARTUP_MARGIN_S`` (its process group is
    killed); ProcessError when Locust is missing or exits non-zero (with its log's tail).
    """
    if not _is_loopback_url(host):
        raise MeshError(f"load runs send to loopback addresses only (127.0.0.0/8; got {host})")
    if importlib.util.find_spec("locust") is None:
        raise ProcessError("Locust is not installed; install it with `pip install 'mesh-harness[load]'`")
    workdir = Path(tempfile.mkdtemp(prefix="mesh-harness-load-"))
    try:
        plan_path, records_path, log_path = workdir / "plan.json", workdir / "records.jsonl", workdir / "locust.log"
        plan_path.write_text(plan.to_json())
        records_path.touch()
        command = locust_command(plan_path, records_path, host, spec, outputs)
        with open(log_path, "wb") as log:
            # cwd=workdir: Locust reads ./locust.conf and ./pyproject.toml; the user's must not change this run
            process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True, env=_environment())
        try:
            _wait(process, spec.duration_s + STARTUP_MARGIN_S, records_path, log_path, progress)
        finally:
            _kill(process)
        if process.returncode != 0:
            raise ProcessError(f"Locust exited with code {process.returncode}; its log ends:\n{_tail(log_path)}")
        with open(records_path, encoding="utf-8") as lines:
            return decode_records(lines, str(records_path))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

def _wait(process: subprocess.Popen[bytes], limit_s: float, records: Path, log: Path, progress: Progress | None) -> None:
    started = time.monotonic()
    counter = _LineCounter(records)
    for _ in range(int(limit_s / POLL_S) + 2):  # bounded by the deadline below, too
        if process.poll() is not None:
            return
        elapsed = time.monotonic() - started
        if elapsed > limit_s:
            break
        if progress is not None:
            progress(elapsed, counter.count())
        time.sleep(POLL_S)
    raise SyncTimeout(f"Locust did not finish within {limit_s:g}s (run time plus {STARTUP_MARGIN_S:g}s to start and stop); "
                      f"it was stopped. Its log ends:\n{_tail(log)}")

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

def _kill(process: subprocess.Popen[bytes]) -> None:
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

def _tail(log: Path) -> str:
    try:
        return log.read_bytes()[-_LOG_TAIL:].decode(errors="replace")
    except OSError:
        return "(no log)"

def _is_loopback_url(url: str) -> bool:
    """``http://<loopback address>:port``: the builtin plane's sidecars listen on 127.0.0.1, istiod's on their own 127.A.B.x."""
    host = urlsplit(url).hostname
    try:
        return url.startswith("http://") and host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
