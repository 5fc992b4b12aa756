"""Echo app processes of the local mesh.

``AppProcess.start`` spawns ``python -m harness.sample_apps.echo`` (or has the mesh's zygote fork
it, ``launcher.AppLauncher``) with its stdin kept open (the app exits when stdin reaches EOF, so
it never outlives us), waits a bounded time for its one ready line, and exposes the ports it
bound, with a ``ControlClient`` (``harness.mesh.echo_client``) on its control port.

Every failure becomes a ``MeshError`` naming the instance: ``ProcessError`` when the process
died or did not come up.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import CaseError, ProcessError
from harness.mesh.childproc import OutputClosed, OutputTimeout, python_module, read_until, stop
from harness.mesh.echo_client import ControlClient
from harness.mesh.local.launcher import AppLauncher, ForkedApp
from harness.sample_apps.echo import knobs

KNOB_FLAGS = (knobs.STATUS.name, knobs.DELAY.name, knobs.FAIL_FIRST.name, knobs.GRPC_STATUS.name)
"""Knob names accepted in ``AppProcess.start(defaults=...)``; each becomes the flag ``--<name>``."""

STOP_TIMEOUT_S = 5.0
_STDERR_TAIL_BYTES = 4000


def _stderr_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - _STDERR_TAIL_BYTES))
            return f.read().decode(errors="replace").strip()
    except OSError as exc:
        return f"(could not read {path}: {exc})"


def _check_defaults(instance: str, defaults: Mapping[str, str]) -> list[str]:
    """Validate knob defaults before spawning, so a bad value is a CaseError, not a dead process."""
    unknown = sorted(set(defaults) - set(KNOB_FLAGS))
    if unknown:
        raise CaseError(f"echo app {instance}: unknown knob(s) {unknown}; known knobs: {', '.join(KNOB_FLAGS)}")
    get = defaults.get
    try:
        knobs.Knobs.from_flags(get("status"), get("delay"), get("fail-first"), get("grpc-status"))
    except knobs.KnobError as exc:
        raise CaseError(f"echo app {instance}: {exc}") from exc
    return [arg for name, value in defaults.items() for arg in (f"--{name}", value)]


class AppProcess:
    """One running echo instance. Create with ``start``; ``stop`` (idempotent) ends it."""

    def __init__(self, instance: str, proc: subprocess.Popen[bytes] | ForkedApp, ports: Mapping[str, int], stderr_path: Path):
        self.instance = instance
        self._proc = proc
        self._ports = dict(ports)
        self._stderr_path = stderr_path
        self.control = ControlClient(self.control_port, instance)

    @classmethod
    def start(cls, service: str, version: str, instance: str, *, defaults: Mapping[str, str] | None = None,
              workdir: Path, ready_timeout: float = 10.0, launcher: AppLauncher | None = None) -> AppProcess:
        """Spawn the app (forked by ``launcher`` if given) and wait up to ``ready_timeout`` seconds for its ready line.

        ``defaults`` maps knob names (``KNOB_FLAGS``) to instance-default values, e.g.
        ``{"status": "503", "delay": "100ms"}``. The app's stderr goes to ``workdir/<instance>.stderr.log``.
        """
        flags = _check_defaults(instance, defaults or {})
        Path(workdir).mkdir(parents=True, exist_ok=True)
        stderr_path = Path(workdir) / f"{instance}.stderr.log"
        argv = ["--service", service, "--version", version, "--instance", instance, "--http-port", "0",
                "--grpc-port", "0", "--control-port", "0", *flags]
        proc: subprocess.Popen[bytes] | ForkedApp
        if launcher is not None:
            proc = launcher.spawn(argv, stderr_path, ready_timeout)
        else:
            with stderr_path.open("wb") as stderr:
                proc = subprocess.Popen([*python_module("harness.sample_apps.echo"), *argv], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
        try:
            ready = _read_ready_line(proc, instance, stderr_path, ready_timeout)
        except BaseException:
            _terminate(proc)
            raise
        return cls(instance, proc, {k: int(ready[k]) for k in ("http", "grpc", "control")}, stderr_path)

    @property
    def http_port(self) -> int:
        return self._ports["http"]

    @property
    def grpc_port(self) -> int:
        return self._ports["grpc"]

    @property
    def control_port(self) -> int:
        return self._ports["control"]

    @property
    def pid(self) -> int:
        return self._proc.pid

    def is_running(self) -> bool:
        return self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """None while the app runs; else its exit code (negative: the signal that ended it)."""
        return self._proc.poll()

    def log_tail(self) -> str:
        """The end of the app's stderr, for error messages."""
        tail = _stderr_tail(self._stderr_path)
        return f"last lines of {self._stderr_path}:\n{tail}" if tail else f"{self._stderr_path} is empty"

    def stop(self) -> None:
        """Close stdin, SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Safe to call twice."""
        self.control.close()
        _terminate(self._proc)

    def __enter__(self) -> AppProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"AppProcess({self.instance!r}, pid={self.pid}, ports={self._ports})"


def _read_ready_line(proc: subprocess.Popen[bytes] | ForkedApp, instance: str, stderr_path: Path, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    try:
        line = read_until(proc.stdout, timeout, lambda buf: buf.split(b"\n", 1)[0] if b"\n" in buf else None)
    except OutputClosed:
        try:
            code: int | None = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        raise ProcessError(f"echo app {instance} exited before it was ready (exit code {code}); "
                           f"stderr tail:\n{_stderr_tail(stderr_path)}") from None
    except OutputTimeout:
        raise ProcessError(f"echo app {instance} (pid {proc.pid}) printed no ready line within {timeout:g}s; "
                           f"stderr tail:\n{_stderr_tail(stderr_path)}") from None
    proc.stdout.close()  # the app prints nothing after the ready line
    try:
        ready = json.loads(line)
        if ready.get("ready") is not True:
            raise ValueError("no 'ready': true")
        return dict(ready)
    except (ValueError, AttributeError) as exc:
        raise ProcessError(f"echo app {instance} printed an unexpected ready line {line[:200]!r}: {exc}") from exc


def _terminate(proc: subprocess.Popen[bytes] | ForkedApp) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass  # the app is already gone; the pipe close is all we wanted
    if proc.stdout is not None and not proc.stdout.closed:
        proc.stdout.close()
    stop(proc, STOP_TIMEOUT_S)

