"""``mesh-harness up | apply | delete | send | status | routes | logs | down``: the interactive mesh.

``up`` spawns the daemon (``daemon.py``) in its own session, detached from the terminal, with
its output in the environment's ``daemon.log``, waits (bounded) for its state file, and prints
how to reach the mesh. Every other command finds the daemon through the state file
(``state.live_state``: a dead daemon's file is cleaned up, and a missing environment says how to
start one) and calls its API. Each function returns the exit code; errors are raised as harness
exceptions, which the CLI prints (2: bad input, nothing applied; 3: mesh error).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console

from harness.env import render, state, wire
from harness.env.client import EnvClient
from harness.env.manifests import load_manifests, read_manifests
from harness.errors import CaseError, MeshError, ProcessError, SyncTimeout
from harness.mesh.base import describe_istio
from harness.mesh.childproc import python_module
from harness.session import MeshOptions, as_flags
from harness.waits import wait_until

UP_TIMEOUT_S = 60.0  # interpreter, control plane, apps and Envoy start, first config ACKed: ~2 s when idle
DOWN_TIMEOUT_S = 30.0  # the daemon closes every app and Envoy (5 s stop bound each, in sequence at worst)
KILL_TIMEOUT_S = 10.0
FOLLOW_POLL_S = 0.5
FOLLOW_MAX_S = 24 * 3600.0
_POLL_S = 0.05
_LOG_TAIL_LINES = 30

_notices = Console(stderr=True)


def _notice(message: str) -> None:
    _notices.print(message, highlight=False, markup=False, soft_wrap=True)


def _client(name: str) -> EnvClient:
    return EnvClient(state.live_state(name, on_stale=_notice))


# --- up / down ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpOptions:
    name: str = state.DEFAULT_NAME
    services: str | None = None
    mesh: MeshOptions = field(default_factory=MeshOptions)
    """The local mesh the daemon runs (``--envoy-binary``, ``--istio-version``, ``--control-plane``, ...)."""
    timeout_s: float = UP_TIMEOUT_S


def up(options: UpOptions, console: Console) -> int:
    """Start an environment in the background and print how to reach it."""
    name = options.name
    path = state.env_dir(name)
    if options.services is not None:
        from harness.env.services import load_services_file

        load_services_file(options.services)  # bad input exits 2 here, before anything starts
    state.make_env_dir(path)
    with state.starting(path, name):
        existing = state.read_state(path)
        if existing is not None and state.is_daemon(existing.pid, name):
            raise MeshError(f"environment {name!r} is already running (daemon pid {existing.pid}); use it, or stop "
                            f"it with: mesh-harness down{_name_flag(name)}")
        if existing is not None:
            _notice(f"environment {name!r} was stale (its daemon, pid {existing.pid}, is gone); starting it afresh")
        for leftover in (state.STATE_FILE, state.ERROR_FILE):
            (path / leftover).unlink(missing_ok=True)
        pid = _spawn_daemon(options, path)
        try:
            current = _wait_ready(pid, path, name, options.timeout_s)
        except KeyboardInterrupt:  # Ctrl-C during start: nothing stays behind
            _stop_pid(pid)
            state.remove_env(path)
            raise
    with EnvClient(current) as client:
        status = client.status()
    info = status["mesh"]
    console.print(f"environment [bold]{name}[/]: {info['kind']} mesh, Envoy {info['envoy_version']}, "
                  f"{describe_istio(info['istio_version'])}; daemon pid {current.pid}, log {path / state.LOG_FILE}", highlight=False, soft_wrap=True)
    console.print(render.addresses_table(status))
    console.print(f"next: mesh-harness apply FILE{_name_flag(name)}; mesh-harness send http://reviews:9080/ -n 100"
                  f"{_name_flag(name)}; stop with: mesh-harness down{_name_flag(name)}", highlight=False, markup=False, soft_wrap=True)
    return 0


def _name_flag(name: str) -> str:
    return "" if name == state.DEFAULT_NAME else f" --name {name}"


def _spawn_daemon(options: UpOptions, path: Path) -> int:
    """Start the daemon in a new session (no controlling terminal), output to ``daemon.log``; its pid."""
    argv = [*python_module(state.DAEMON_MODULE), "--name", options.name, "--dir", str(path.resolve())]
    if options.services is not None:
        argv += ["--services", str(Path(options.services).resolve())]
    mesh = options.mesh
    resolved = replace(mesh, envoy_binary=mesh.envoy_binary and str(Path(mesh.envoy_binary).resolve()),
                       istiod_binary=mesh.istiod_binary and str(Path(mesh.istiod_binary).resolve()))
    argv += as_flags(resolved, "mesh")
    log = str(path / state.LOG_FILE)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # posix_spawn instead of Popen: the daemon outlives this command on purpose, and a Popen object
    # would warn about it. We reap it ourselves if it exits while we wait (state.process_gone).
    return os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions, setsid=True)


def _wait_ready(pid: int, path: Path, name: str, timeout: float) -> state.EnvState:
    """Poll until the daemon wrote its state file; its own error if it exits first; bounded by ``timeout``
    (then the daemon is stopped and its directory removed)."""
    def written() -> state.EnvState | None:
        current = state.read_state(path)
        if current is not None and current.pid == pid:
            return current
        if state.process_gone(pid):
            raise _startup_failure(path, name)
        return None

    try:
        return wait_until(written, timeout, _POLL_S, message="the daemon's state file")
    except SyncTimeout:
        _stop_pid(pid)
        tail = _log_tail(path)
        state.remove_env(path)
        raise SyncTimeout(f"environment {name!r}: the daemon (pid {pid}) did not report ready within {timeout:g}s; "
                          f"it was stopped. Its log:\n{tail}") from None


def _startup_failure(path: Path, name: str) -> Exception:
    """The daemon's own error (``error.json``) or, failing that, its log; the directory is removed."""
    tail = _log_tail(path)
    try:
        return wire.decode_error(json.loads((path / state.ERROR_FILE).read_text()))
    except (OSError, ValueError):
        return ProcessError(f"environment {name!r}: the daemon exited before it was ready. Its log:\n{tail}")
    finally:
        state.remove_env(path)


def _log_tail(path: Path) -> str:
    try:
        lines = (path / state.LOG_FILE).read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def down(name: str, console: Console) -> int:
    """Ask the daemon to close the mesh and exit; signals if it does not; remove the environment."""
    path = state.env_dir(name)
    current = state.read_state(path)
    if current is None or not state.is_daemon(current.pid, name):
        existed = path.exists()
        state.remove_env(path)
        what = f"was stale (daemon pid {current.pid} is gone); cleaned up {path}" if current else (
            f"is not running{'; removed ' + str(path) if existed else ''}")
        console.print(f"environment {name!r} {what}", highlight=False, soft_wrap=True)
        return 0
    try:
        with EnvClient(current) as client:
            client.down()
    except MeshError as exc:
        _notice(f"the daemon did not take the stop request ({exc}); sending SIGTERM")
    if not _wait_gone(current.pid, DOWN_TIMEOUT_S):
        _notice(f"the daemon (pid {current.pid}) still runs after {DOWN_TIMEOUT_S:g}s; signalling it")
        _stop_pid(current.pid)
    state.remove_env(path)
    console.print(f"environment {name!r} stopped (daemon pid {current.pid} and everything it started)", highlight=False, soft_wrap=True)
    return 0


def _wait_gone(pid: int, timeout: float) -> bool:
    try:
        return wait_until(lambda: state.process_gone(pid), timeout, _POLL_S, message=f"pid {pid} gone")
    except SyncTimeout:
        return False


def _stop_pid(pid: int) -> None:
    """SIGTERM (the daemon closes its mesh), then SIGKILL; raise if it still does not go."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, KILL_TIMEOUT_S):
            return
    raise ProcessError(f"the environment daemon (pid {pid}) survived SIGKILL for {KILL_TIMEOUT_S:g}s")


# --- config ------------------------------------------------------------------------------------


def apply(name: str, files: Sequence[str], console: Console) -> int:
    """Validate (exit 2, nothing applied), then apply and wait for every proxy's ACK."""
    manifests = read_manifests(files)
    for warning in load_manifests(manifests).warnings:
        console.print(f"[yellow]warning[/]: {warning}", highlight=False, soft_wrap=True)
    with _client(name) as client:
        result = client.apply(manifests)
    console.print(f"applied {', '.join(result['objects'])}: config version {result['version']} ACKed by every proxy",
                  highlight=False, soft_wrap=True)
    return 0


def delete(name: str, files: Sequence[str], console: Console) -> int:
    """Remove the objects the files name (by kind, namespace, name) and wait for every proxy's ACK."""
    manifests = read_manifests(files)
    load_manifests(manifests)
    with _client(name) as client:
        result = client.delete(manifests)
    console.print(f"deleted {', '.join(result['objects'])}: config version {result['version']} ACKed by every proxy",
                  highlight=False, soft_wrap=True)
    return 0


# --- traffic and inspection --------------------------------------------------------------------


@dataclass(frozen=True)
class SendOptions:
    url: str
    headers: tuple[str, ...] = ()
    count: int = 1
    concurrency: int = 1
    method: str = "GET"
    client: str = "client"


def send(name: str, options: SendOptions, console: Console) -> int:
    """A quick ForwardEcho batch from the in-mesh client; a per-version/status table and the first trace ids."""
    request = {"url": options.url, "method": options.method.upper(), "headers": parse_headers(options.headers),
               "count": options.count, "concurrency": min(options.concurrency, options.count)}
    with _client(name) as client:
        observations = client.send(request)
    summary = render.summarize(observations)
    console.print(render.send_table(summary, options.url))
    if summary.latency_s:
        console.print(render.latency_line(summary), highlight=False, soft_wrap=True)
    console.print("first request: " + ", ".join(f"{k}={v}" for k, v in summary.trace), highlight=False, soft_wrap=True)
    return 0


def parse_headers(values: Sequence[str]) -> list[tuple[str, str]]:
    """``-H 'K: V'`` values, as curl takes them; a value without a colon is bad input."""
    out = []
    for value in values:
        key, sep, rest = value.partition(":")
        if not sep or not key.strip():
            raise CaseError(f"-H: expected 'Name: value', got {value!r}")
        out.append((key.strip(), rest.strip()))
    return out


def status(name: str, console: Console) -> int:
    with _client(name) as client:
        body = client.status()
    console.print(render.instances_table(body))
    console.print(render.objects_table(body))
    console.print(render.sync_table(body["sync"]))
    return 0


def routes(name: str, service: str, console: Console, client_name: str = "client") -> int:
    """The route table ``client_name``'s Envoy holds for ``service``, read from its config_dump."""
    from harness.report.routes import (  # imports the translator's names
        known_hosts,
        service_routes,
    )

    with _client(name) as client:
        configs = client.route_configs(client_name)
    rows = service_routes(configs, service)
    if not rows:
        raise MeshError(f"{client_name}'s Envoy has no route for {service!r} (hosts it routes: "
                        f"{', '.join(known_hosts(configs)) or 'none'})")
    console.print(render.routes_table(rows, service, client_name))
    return 0


@dataclass(frozen=True)
class LogsOptions:
    target: str | None = None
    envoy: bool = False
    follow: bool = False
    follow_for_s: float = FOLLOW_MAX_S
    client: str = "client"


def logs(name: str, options: LogsOptions, console: Console) -> int:
    """App request logs (``SERVICE[/VERSION]``, default all) or the client sidecar's access log (``--envoy``).

    ``-f`` polls every ``FOLLOW_POLL_S`` until Ctrl-C, ``follow_for_s`` or the environment stops.
    """
    service, _, version = (options.target or "").partition("/")
    if options.envoy and options.target:
        raise CaseError("logs --envoy shows the client sidecar's access log; give no SERVICE with it")
    deadline = time.monotonic() + (options.follow_for_s if options.follow else 0.0)
    since, skip = 0.0, 0
    with _client(name) as client:
        try:
            while True:
                if options.envoy:
                    entries, skip = client.access_log(options.client, skip)
                    lines = [render.access_log_line(e) for e in entries]
                else:
                    records = client.app_log(service or None, version or None, since)
                    since = max([since, *(r.time for r in records)])
                    lines = [render.app_log_line(r) for r in records]
                for line in lines:
                    console.print(line, highlight=False, markup=False, soft_wrap=True)
                if time.monotonic() >= deadline:
                    return 0
                time.sleep(min(FOLLOW_POLL_S, max(0.0, deadline - time.monotonic())))
        except KeyboardInterrupt:
            return 0
