"""A pod port-forward (``kubectl port-forward pod/NAME :PORT``) with bounded readiness and a clean stop.

A *pod* port-forward, never a service one: a service port-forward picks a pod behind the service
and bypasses the caller's sidecar, so it would test no client-side routing. The harness only reaches
the echo app's control port and the sidecar's admin port this way; the traffic itself starts inside
the client pod (ForwardEcho). kubectl picks a free local port on 127.0.0.1 and says which on its
first line; ``start`` waits for that line (bounded) and ``close`` ends the process.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path
from typing import IO

from harness.errors import ProcessError, SyncTimeout
from harness.mesh.childproc import OutputClosed, OutputTimeout, read_until, stop

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
MAX_REOPENS = 20
"""A forward that keeps failing is left closed after this many reopens; the next call through it says so."""
REOPEN_PAUSE_S = 1.0
_ERROR_TAIL = 2000
_FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


def port_forward_command(kubectl: str, kubeconfig: Path | None, context: str | None, namespace: str, pod: str,
                         remote_port: int, *, cache_dir: Path | None = None) -> list[str]:
    """``cache_dir``: kubectl's discovery and HTTP cache (``--cache-dir``). kubectl resolves ``pod/NAME``
    through API discovery and caches it, by default under ``~/.kube/cache``; the harness gives it a
    directory of its own so that nothing is written under the user's ``~/.kube``."""
    cmd = [kubectl]
    if kubeconfig is not None:
        cmd += ["--kubeconfig", str(kubeconfig)]
    if context is not None:
        cmd += ["--context", context]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    return cmd + ["--namespace", namespace, "port-forward", "--address", "127.0.0.1", f"pod/{pod}", f":{remote_port}"]


def parse_forwarding_line(line: str) -> int | None:
    """The local port of ``Forwarding from 127.0.0.1:43121 -> 15000`` (pure); None for other lines."""
    match = _FORWARDING.match(line.strip())
    return int(match.group(1)) if match else None


class PortForward:
    """One port-forward to ``pod``:``remote_port``, kept open: ``local_port`` once started.

    kubectl ends a port-forward after a stream error (kubectl 1.23 and later), and the harness keeps
    clients pointed at ``local_port``: a watcher notices the exit and starts kubectl again on the same
    local port (``LOCAL:REMOTE``), bounded by ``MAX_REOPENS``; ``reopened`` counts it. Both pipes are
    read all along (a full pipe would stall kubectl); stderr's tail is kept for the messages."""

    def __init__(self, command: list[str], what: str) -> None:
        self._command = command
        self.what = what
        self.local_port = 0
        self.reopened = 0
        self.last_error = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> PortForward:
        self.local_port = self._open(self._command, timeout_s)
        threading.Thread(target=self._watch, name=f"port-forward watcher {self.what}", daemon=True).start()
        return self

    def is_running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        """SIGTERM, bounded wait, SIGKILL; no reopening after it. Idempotent."""
        self._closing.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            stop(proc, STOP_TIMEOUT_S)

    def _open(self, command: list[str], timeout_s: float) -> int:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        with self._lock:
            if self._closing.is_set():
                stop(proc, STOP_TIMEOUT_S)
                raise ProcessError(f"port-forward to {self.what} was closed")
            self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            port = self._wait_ready(proc, timeout_s)
        except BaseException:
            stop(proc, STOP_TIMEOUT_S)
            _close(proc)
            raise
        # kubectl prints a line per connection from now on, and errors on stderr; unread pipes would stall it.
        threading.Thread(target=_drain, args=(proc.stdout,), name=f"port-forward {self.what}", daemon=True).start()
        threading.Thread(target=self._keep_errors, args=(proc.stderr,), name=f"port-forward errors {self.what}",
                         daemon=True).start()
        return port

    def _watch(self) -> None:
        """Reopen on the same local port whenever kubectl exits, until closed (or ``MAX_REOPENS``)."""
        again = [*self._command[:-1], f"{self.local_port}{self._command[-1]}"]  # ":15000" -> "41234:15000"
        while not self._closing.is_set():
            proc = self._proc
            if proc is None:
                return
            proc.wait()
            if self._closing.is_set() or self.reopened >= MAX_REOPENS:
                return
            self.reopened += 1
            try:
                self._open(again, READY_TIMEOUT_S)
            except (ProcessError, SyncTimeout) as exc:
                self.last_error = str(exc)
                if self._closing.wait(REOPEN_PAUSE_S):
                    return

    def _keep_errors(self, stream: IO[bytes]) -> None:
        with stream:
            while chunk := os.read(stream.fileno(), 65536):
                self.last_error = (self.last_error + chunk.decode(errors="replace"))[-_ERROR_TAIL:]

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout_s: float) -> int:
        assert proc.stdout is not None
        try:
            return read_until(proc.stdout, timeout_s, _forwarded_port)
        except OutputClosed:
            err = proc.stderr.read().decode(errors="replace")[-_ERROR_TAIL:] if proc.stderr else ""
            raise ProcessError(f"port-forward to {self.what} ended before it was ready "
                               f"(exit code {proc.wait(timeout=STOP_TIMEOUT_S)}): {err.strip()}") from None
        except OutputTimeout as exc:
            raise SyncTimeout(f"port-forward to {self.what}: kubectl printed no 'Forwarding from' line "
                              f"within {timeout_s:g}s (output so far: {exc.output[-500:]!r})") from None


def _close(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _forwarded_port(output: bytes) -> int | None:
    """The local port of the first complete "Forwarding from 127.0.0.1:PORT" line, if printed yet."""
    for line in output.split(b"\n")[:-1]:
        port = parse_forwarding_line(line.decode(errors="replace"))
        if port is not None:
            return port
    return None


def _drain(stream: IO[bytes] | None) -> None:
    """Read and drop a stream until EOF (the process ended), then close it."""
    if stream is None:
        return
    with stream:
        while os.read(stream.fileno(), 65536):
            pass
