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
    """One running port-forward to ``pod``:``remote_port``; ``local_port`` once started."""

    def __init__(self, command: list[str], what: str) -> None:
        self._command = command
        self.what = what
        self.local_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> PortForward:
        self._proc = subprocess.Popen(self._command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, start_new_session=True)
        try:
            self.local_port = self._wait_ready(timeout_s)
        except BaseException:
            self.close()
            raise
        # kubectl prints a line per connection from now on; an unread pipe would fill and stall it.
        threading.Thread(target=_drain, args=(self._proc.stdout,), name=f"port-forward {self.what}", daemon=True).start()
        return self

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """SIGTERM, bounded wait, SIGKILL. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop(proc, STOP_TIMEOUT_S)
        if proc.stderr is not None:
            proc.stderr.close()  # stdout is closed by its drain thread at EOF, or here if it never started
        if proc.stdout is not None and not self.local_port:
            proc.stdout.close()

    def _wait_ready(self, timeout_s: float) -> int:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            return read_until(proc.stdout, timeout_s, _forwarded_port)
        except OutputClosed:
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            raise ProcessError(f"port-forward to {self.what} ended before it was ready "
                               f"(exit code {proc.wait(timeout=STOP_TIMEOUT_S)}): {err.strip()}") from None
        except OutputTimeout as exc:
            raise SyncTimeout(f"port-forward to {self.what}: kubectl printed no 'Forwarding from' line "
                              f"within {timeout_s:g}s (output so far: {exc.output[-500:]!r})") from None


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
