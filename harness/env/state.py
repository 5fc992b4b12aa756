"""Where a running environment is recorded, and how a dead one is recognised.

One directory per user and environment name: ``$MESH_HARNESS_HOME/envs/<name>/`` (default
``~/.cache/mesh-harness/envs/<name>/``, mode 0700). It holds the daemon's log and, once the mesh is
up, ``state.json`` (mode 0600: it carries the API token) with the daemon's pid and API port. The
daemon writes the state file last, atomically, so its presence means "ready".

A state file whose daemon is gone (killed, machine rebooted) is *stale*: the daemon's children
die with it (Envoy by parent-death signal, the apps when their stdin closes), so cleaning up is
removing the directory. A pid is only taken as our daemon if its command line says so, so a
reused pid is not mistaken for a live environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import CaseError, MeshError
from harness.paths import home

DEFAULT_NAME = "default"
STATE_FILE = "state.json"
LOG_FILE = "daemon.log"
ERROR_FILE = "error.json"  # the daemon's startup error (wire.encode_error), for `up` to raise
DAEMON_MODULE = "harness.env.daemon"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


class EnvNotRunning(MeshError):
    """No live environment of that name; the message says how to start one."""


@dataclass(frozen=True)
class EnvState:
    """What ``state.json`` records about a running environment."""

    name: str
    pid: int
    api_port: int
    token: str
    mesh: str
    started: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, where: Path) -> EnvState:
        try:
            raw: Any = json.loads(text)
            return cls(name=str(raw["name"]), pid=int(raw["pid"]), api_port=int(raw["api_port"]),
                       token=str(raw["token"]), mesh=str(raw["mesh"]), started=float(raw["started"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise MeshError(f"{where}: unreadable state file ({exc}); remove it with: mesh-harness down --name "
                            f"{where.parent.name}") from exc


def check_name(name: str) -> str:
    """An environment name becomes a directory name: letters, digits, ``_ . -``, at most 63."""
    if not _NAME.fullmatch(name):
        raise CaseError(f"--name: expected letters, digits, '_', '.' or '-' (at most 63, not starting with "
                        f"a symbol), got {name!r}")
    return name


def env_dir(name: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    return home(environ) / "envs" / check_name(name)


def make_env_dir(path: Path) -> Path:
    """Create the environment's directory, private to this user (the state file holds a token)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@contextmanager
def starting(path: Path, name: str) -> Iterator[None]:
    """Held by ``up`` while it starts environment ``name``: a second ``up`` of the same name fails
    at once instead of starting a second daemon. A lock on the directory dies with its holder."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MeshError(f"environment {name!r} is being started by another `mesh-harness up`; wait for it, "
                            "or pick another --name") from None
        yield
    finally:
        os.close(fd)


def write_state(path: Path, state: EnvState) -> None:
    """Write ``state.json`` atomically with mode 0600 (readers never see half a file)."""
    tmp = path / f".{STATE_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(state.to_json())
    os.replace(tmp, path / STATE_FILE)


def read_state(path: Path) -> EnvState | None:
    """The recorded state, or None when there is no state file (never started, or not ready yet)."""
    try:
        text = (path / STATE_FILE).read_text()
    except FileNotFoundError:
        return None
    return EnvState.from_json(text, path / STATE_FILE)


def is_daemon(pid: int, name: str, cmdline: Callable[[int], list[str] | None] | None = None) -> bool:
    """Is ``pid`` alive and the daemon of environment ``name``? (pids are reused after a process dies)."""
    argv = (cmdline or proc_cmdline)(pid)
    if argv is None:
        return False
    return DAEMON_MODULE in argv and "--name" in argv and name in argv


def proc_cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None if there is none (a zombie counts as dead)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if status.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_gone(pid: int) -> bool:
    """Has ``pid`` exited? Reaps it if it is our child (``up`` run in-process leaves the daemon as one)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return proc_cmdline(pid) is None
    return done == pid


def remove_env(path: Path) -> None:
    """Remove an environment's directory (state file and log)."""
    shutil.rmtree(path, ignore_errors=True)


def live_state(name: str, *, on_stale: Callable[[str], None]) -> EnvState:
    """The state of the running environment ``name``; a stale one is removed (``on_stale`` says so).

    Raises ``EnvNotRunning`` with the command that starts one.
    """
    path = env_dir(name)
    state = read_state(path)
    if state is not None and is_daemon(state.pid, name):
        return state
    if state is not None:
        remove_env(path)
        on_stale(f"environment {name!r} was stale (its daemon, pid {state.pid}, is gone); cleaned up {path}")
    raise EnvNotRunning(f"no environment {name!r} is running; start one with: mesh-harness up"
                        + ("" if name == DEFAULT_NAME else f" --name {name}"))
