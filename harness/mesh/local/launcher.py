"""The local mesh's echo-app launcher: one zygote interpreter that forks every echo instance.

Starting an instance as a fresh interpreter costs about 0.3 s of CPU (imports); the zygote
(``harness.sample_apps.echo.zygote``) pays that once and forks each instance in milliseconds. The
harness is not the instances' parent, so a ``ForkedApp`` stands in for ``subprocess.Popen``: it
waits on a pidfd (exit is seen even if the zygote died), signals through it (never a reused pid),
and takes the exit code from the zygote's report.

Nothing here outlives the harness: each instance exits when its stdin, held here, reaches EOF, and
the zygote exits when its socket does.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from harness.errors import ProcessError
from harness.mesh.childproc import log_tail, python_module, stop

#: The exit code of an instance whose zygote died before it could report the real one.
EXIT_UNKNOWN = 255
_STOP_TIMEOUT_S = 5.0
_EXIT_ON_EOF_S = 1.0
_LOG_TAIL_LINES = 20
_MAX_MESSAGE = 64 * 1024
REPORT_WAIT_S = 60.0
"""Once an instance's pidfd says it exited, how long the zygote's report of its exit code may take.
The zygote reaps at once, but on a loaded machine it may not run for seconds (the soak saw apps and
istiod stalled for more than 10 s); a zygote that died ends the wait at once (EOF on its socket)."""


class AppLauncher:
    """The zygote process and the socket to it. ``spawn`` is safe from several threads."""

    def __init__(self, stderr_path: Path) -> None:
        """Start the zygote; it imports the app meanwhile (``spawn`` waits for it)."""
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr_path = stderr_path
        try:
            with stderr_path.open("wb") as stderr:
                self._proc = subprocess.Popen(
                    [*python_module("harness.sample_apps.echo.zygote"), "--socket", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=[theirs.fileno()])
        except BaseException:
            self._sock.close()
            raise
        finally:
            theirs.close()
        self._lock = threading.Lock()  # one request and its reply at a time; guards _exits and _ready
        self._exits: dict[int, int] = {}
        self._ready = False
        self._gone = False

    @property
    def pid(self) -> int:
        return self._proc.pid

    def exit_code(self) -> int | None:
        """None while the zygote runs, else its exit code."""
        return self._proc.poll()

    def log_tail(self) -> str:
        return log_tail(self._stderr_path, _LOG_TAIL_LINES)

    def spawn(self, argv: list[str], stderr_path: Path, ready_timeout_s: float) -> ForkedApp:
        """Fork an instance running the echo app with ``argv``; its stderr goes to ``stderr_path``.

        Waits up to ``ready_timeout_s`` for the zygote itself to be ready (its first instance only)."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        try:
            with stderr_path.open("wb") as stderr, self._lock:
                if not self._ready:
                    self._read_until(lambda m: m.get("ready") is True, ready_timeout_s, "was not ready")
                    self._ready = True
                try:
                    socket.send_fds(self._sock, [json.dumps({"argv": argv}).encode()],
                                    [stdin_r, stdout_w, stderr.fileno()])
                except OSError as exc:  # it died: the socket's other end is closed
                    raise self._exited(f"could not take a request ({exc})") from None
                reply = self._read_until(lambda m: "pid" in m or "error" in m, ready_timeout_s, "did not fork")
            if "error" in reply:
                raise ProcessError(f"the echo-app zygote (pid {self.pid}) could not fork: {reply['error']}")
        except BaseException:
            os.close(stdin_w)
            os.close(stdout_r)
            raise
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        return ForkedApp(self, int(reply["pid"]), os.fdopen(stdin_w, "wb", buffering=0),
                         os.fdopen(stdout_r, "rb", buffering=0))

    def reported_exit(self, pid: int, wait_s: float) -> int:
        """The exit code the zygote reported for ``pid``, waiting up to ``wait_s`` for it; else EXIT_UNKNOWN."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            while True:
                self._drain(0.0)
                if pid in self._exits or self._gone:
                    return self._exits.get(pid, EXIT_UNKNOWN)
                left = deadline - time.monotonic()
                if left <= 0:
                    return EXIT_UNKNOWN
                self._drain(left)

    def close(self) -> None:
        """Let the zygote go (EOF on its socket), wait a moment for it to leave, then stop it; idempotent."""
        self._sock.close()
        try:
            self._proc.wait(timeout=_EXIT_ON_EOF_S)
        except subprocess.TimeoutExpired:
            stop(self._proc, _STOP_TIMEOUT_S)

    def _read_until(self, wanted: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            message = self._receive(max(0.0, left))
            if message is not None and wanted(message):
                return message
            if self._gone:
                raise self._exited(what)
            if message is None and left <= 0:
                raise ProcessError(f"the echo-app zygote (pid {self.pid}) {what} within {timeout_s:g}s; "
                                   f"its stderr:\n{self.log_tail()}")

    def _exited(self, what: str) -> ProcessError:
        try:
            code: int | None = self._proc.wait(timeout=_EXIT_ON_EOF_S)
        except subprocess.TimeoutExpired:
            code = None
        return ProcessError(f"the echo-app zygote (pid {self.pid}) exited (code {code}) and {what}; "
                            f"its stderr:\n{self.log_tail()}")

    def _drain(self, timeout_s: float) -> None:
        """Record exit reports that arrive within ``timeout_s`` (0: those already here)."""
        while self._receive(timeout_s) is not None:
            timeout_s = 0.0

    def _receive(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message other than an exit report (recorded instead), or None by the deadline or at EOF."""
        if self._gone or not _readable(self._sock.fileno(), timeout_s):
            return None
        data = self._sock.recv(_MAX_MESSAGE)
        if not data:
            self._gone = True
            return None
        message: dict[str, Any] = json.loads(data)
        if "exited" in message:
            self._exits[int(message["exited"])] = int(message["code"])
            return {}
        return message


class ForkedApp:
    """An instance forked by the zygote, seen through the part of ``subprocess.Popen`` the mesh uses."""

    def __init__(self, launcher: AppLauncher, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.returncode: int | None = None
        self._launcher = launcher
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None  # it exited, and was reaped, already: the zygote's report says how

    def poll(self) -> int | None:
        return self._wait(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._wait(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"echo instance pid {self.pid}", timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self._pidfd is not None and self.poll() is None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass  # it exited after poll(); the next poll() reports it

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _wait(self, timeout_s: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self._pidfd is not None:
            if not _readable(self._pidfd, timeout_s):
                return None
            os.close(self._pidfd)
            self._pidfd = None
        self.returncode = self._launcher.reported_exit(self.pid, REPORT_WAIT_S)
        return self.returncode


def _readable(fd: int, timeout_s: float | None) -> bool:
    """Whether ``fd`` turns readable within ``timeout_s`` (None: no limit); poll(), not select(), so any fd number works."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout_s is None else max(0, round(timeout_s * 1000))))
