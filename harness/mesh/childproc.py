"""Small pieces every child process of the harness needs: read its first output with a deadline, and stop it.

Used by the echo apps (their ready line) and by kubectl port-forwards (their "Forwarding from" line);
the callers turn the two ways of not getting there (time ran out, the child closed its output) into
messages that name the child.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol, TypeVar

_T = TypeVar("_T")
PR_SET_PDEATHSIG = 1


class OutputTimeout(Exception):
    """The child printed nothing that ``found`` accepts before the deadline; ``output`` is what it printed."""

    def __init__(self, output: bytes) -> None:
        super().__init__(output)
        self.output = output


class OutputClosed(OutputTimeout):
    """The child closed its output (it exited, usually) before printing what was awaited."""


def read_until(stream: IO[bytes], timeout_s: float, found: Callable[[bytes], _T | None]) -> _T:
    """Read ``stream`` until ``found(everything read so far)`` returns a value, for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while (value := found(buf)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OutputTimeout(buf)
            if not sel.select(left):
                continue
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                raise OutputClosed(buf)
            buf += chunk
    return value


def python_module(module: str) -> list[str]:
    """The argv prefix that runs ``module`` of the installed package in a child Python: ``python -P -m``.

    Without ``-P``, ``python -m`` puts the working directory first on ``sys.path``, and run from a
    checkout after ``pip install .`` the checkout's own ``harness/`` (which has no ``sample_apps``:
    setuptools maps that folder in) hides the installed package; so would any folder named ``harness``
    wherever a user runs the tool."""
    return [sys.executable, "-P", "-m", module]


class Stoppable(Protocol):
    """What ``stop`` needs of a child: ``subprocess.Popen`` or the local mesh's forked echo instances."""

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


def stop(proc: Stoppable, timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; the process is reaped. No-op once it exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def die_with_parent() -> tuple[list[str], Callable[[], None] | None]:
    """How to make the child receive SIGKILL when its parent dies: a command prefix or a ``preexec_fn``.

    Linux only. util-linux ``setpriv --pdeathsig`` is preferred: it keeps ``fork()`` out of this
    process (with a ``preexec_fn`` Python must fork, and gRPC's fork handlers then log a warning
    while the control plane runs). Without setpriv, a ``preexec_fn`` calls ``prctl`` itself, with
    libc resolved here, in the parent; if the parent already died by then, the child kills itself.
    """
    if not sys.platform.startswith("linux"):
        return [], None
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--"], None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_pdeathsig() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return [], set_pdeathsig


def log_tail(path: Path, lines: int, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a child's log (from at most its last ``max_bytes``), headed by its path."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - max_bytes))
            tail = log.read().decode(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"(no log at {path})"
    return f"last {len(tail)} lines of {path}:\n" + "\n".join(tail)


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists (one we may not signal counts: it exists, and is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
