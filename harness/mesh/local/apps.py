"""Echo app processes of the local mesh, and the client for their control port.

``AppProcess.start`` spawns ``python -m harness.sample_apps.echo`` with its stdin kept open (the
app exits when stdin reaches EOF, so it never outlives us), waits a bounded time for its one
ready line, and exposes the ports it bound. ``ControlClient`` speaks to the control port (never
routed through the mesh): ForwardEcho batches, the request log, health. httpx is fine here: these
are a few control calls; the traffic itself is generated inside the app with aiohttp.

Every failure becomes a ``MeshError`` naming the instance: ``ProcessError`` when the process
died or did not come up, ``SyncTimeout`` when a control call ran out of time.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from harness.errors import (
    CaseError,
    Issue,
    MeshError,
    ProcessError,
    SyncTimeout,
    UnsupportedError,
)
from harness.mesh.base import Echo, Observation, ReceivedRequest, SendSpec
from harness.mesh.childproc import OutputClosed, OutputTimeout, read_until, stop
from harness.sample_apps.echo import knobs

KNOB_FLAGS = (knobs.STATUS.name, knobs.DELAY.name, knobs.FAIL_FIRST.name, knobs.GRPC_STATUS.name)
"""Knob names accepted in ``AppProcess.start(defaults=...)``; each becomes the flag ``--<name>``."""

STOP_TIMEOUT_S = 5.0
_STDERR_TAIL_BYTES = 4000
_CONTROL_TIMEOUT_S = 10.0
_FORWARD_MARGIN_S = 30.0  # on top of the batch deadline: time to encode and ship up to a million records
_MAX_LOG_PAGES = 10_000  # bound on GET /log pages in one read (10k entries each)


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

    def __init__(self, instance: str, proc: subprocess.Popen[bytes], ports: Mapping[str, int], stderr_path: Path):
        self.instance = instance
        self._proc = proc
        self._ports = dict(ports)
        self._stderr_path = stderr_path
        self.control = ControlClient(self.control_port, instance)

    @classmethod
    def start(cls, service: str, version: str, instance: str, *, defaults: Mapping[str, str] | None = None,
              workdir: Path, ready_timeout: float = 10.0) -> AppProcess:
        """Spawn the app and wait up to ``ready_timeout`` seconds for its ready line.

        ``defaults`` maps knob names (``KNOB_FLAGS``) to instance-default values, e.g.
        ``{"status": "503", "delay": "100ms"}``. The app's stderr goes to ``workdir/<instance>.stderr.log``.
        """
        flags = _check_defaults(instance, defaults or {})
        Path(workdir).mkdir(parents=True, exist_ok=True)
        stderr_path = Path(workdir) / f"{instance}.stderr.log"
        cmd = [sys.executable, "-m", "harness.sample_apps.echo", "--service", service, "--version", version,
               "--instance", instance, "--http-port", "0", "--grpc-port", "0", "--control-port", "0", *flags]
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
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


def _read_ready_line(proc: subprocess.Popen[bytes], instance: str, stderr_path: Path, timeout: float) -> dict[str, Any]:
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


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass  # the app is already gone; the pipe close is all we wanted
    if proc.stdout is not None and not proc.stdout.closed:
        proc.stdout.close()
    stop(proc, STOP_TIMEOUT_S)


def spec_to_json(spec: SendSpec, connect_to: str | None, capture_headers: Sequence[str] = (),
                 source_ip: str | None = None) -> dict[str, Any]:
    """The /forward body for a SendSpec (pure). ``http2`` is refused: the echo app sends HTTP/1.1 or gRPC."""
    if spec.protocol not in ("http", "grpc"):
        raise UnsupportedError([Issue(f"protocol {spec.protocol!r} is not supported by the local mesh's "
                                      "ForwardEcho (http or grpc); run with --mesh kind", path="send.protocol")])
    return {
        "url": spec.url,
        "connect_to": connect_to,
        "method": spec.method,
        "headers": [[k, v] for k, v in spec.headers],
        "body": base64.b64encode(spec.body).decode(),
        "count": spec.count,
        "concurrency": spec.concurrency,
        "rate": spec.rate,
        "protocol": spec.protocol,
        "new_connection": spec.new_connection,
        "timeout_s": spec.timeout_s,
        "deadline_s": spec.deadline_s,
        "include_echo": spec.include_echo,
        "grpc_method": spec.grpc_method,
        "capture_headers": list(capture_headers),
        **({"capture_body": spec.capture_body} if spec.capture_body else {}),  # absent = no body kept
        **({"source_ip": source_ip} if source_ip else {}),  # the address to send from; absent = the OS's choice
    }


def observation_from_record(record: Mapping[str, Any]) -> Observation:
    """One /forward record -> Observation (pure)."""
    echo = record.get("echo")
    return Observation(
        index=record["index"],
        request_id=record["request_id"],
        status=record["status"],
        latency_s=record["latency_s"],
        service=record.get("service"),
        version=record.get("version"),
        instance=record.get("instance"),
        config_version=record.get("config_version"),
        grpc_status=record.get("grpc_status"),
        error=record.get("error"),
        headers=record.get("headers", {}),
        echo=None if echo is None else Echo(echo["method"], echo["path"], echo["host"], echo["protocol"],
                                            echo["headers"]),
        body=record.get("body"),
    )


class ControlClient:
    """Calls to one echo instance's control port (127.0.0.1 only, proxies ignored)."""

    def __init__(self, port: int, instance: str | None = None) -> None:
        self.port = port
        self.instance = instance or f"on control port {port}"
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=_CONTROL_TIMEOUT_S)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, what: str, *, timeout: float = _CONTROL_TIMEOUT_S,
              **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise SyncTimeout(f"echo app {self.instance}: {what} got no answer within {timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise ProcessError(f"echo app {self.instance}: {what} failed, control port {self.port} unreachable "
                               f"(did the process die?): {exc}") from exc
        if resp.status_code != 200:
            raise MeshError(f"echo app {self.instance}: {what} answered {resp.status_code}: {resp.text[:2000]}")
        return resp.json()

    def healthz(self) -> dict[str, Any]:
        return dict(self._call("GET", "/healthz", "health check"))

    def forward(self, spec: SendSpec, connect_to: str | None, capture_headers: Sequence[str] = (),
                source_ip: str | None = None) -> list[Observation]:
        """Run one ForwardEcho batch from this instance; one Observation per request, in order."""
        body = spec_to_json(spec, connect_to, capture_headers, source_ip)
        data = self._call("POST", "/forward", f"ForwardEcho of {spec.count} to {spec.url}", json=body,
                          timeout=spec.deadline_s + _FORWARD_MARGIN_S)
        return [observation_from_record(r) for r in data["records"]]

    def log(self, since: int = 0, *, after: float | None = None) -> list[ReceivedRequest]:
        """Every logged request with seq > ``since`` (and, with ``after``, received after that time);
        MeshError if the ring buffer evicted some unread."""
        out: list[ReceivedRequest] = []
        window = {} if after is None else {"after": repr(after)}
        for _ in range(_MAX_LOG_PAGES):
            page = self._call("GET", "/log", "reading the request log", params={"since": since, **window})
            if page["dropped"]:
                raise MeshError(f"echo app {self.instance}: request log overflowed, {page['dropped']} entries after "
                                f"seq {since} were evicted before they were read; clear the log between checks "
                                "or raise --log-capacity")
            if not page["entries"]:
                return out
            ident = (page["service"], page["version"], page["instance"])
            out.extend(ReceivedRequest(e["request_id"], *ident, e["method"], e["path"], e["host"], e["headers"],
                                       e["time"]) for e in page["entries"])
            since = page["next"]
        raise MeshError(f"echo app {self.instance}: request log still had entries after {_MAX_LOG_PAGES} pages")

    def clear_log(self) -> None:
        self._call("POST", "/log/clear", "clearing the request log")
