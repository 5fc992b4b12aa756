"""One istiod (``pilot-discovery discovery``) process without Kubernetes, and reads from its debug API.

istiod reads Istio objects from a directory it watches (``--configDir``, an empty ``--registries=``)
and serves xDS in plain gRPC on 127.0.0.1. The settings (``ISTIOD_ENV`` and the flags in ``start``)
keep it to what upstream Envoy and a loopback machine can take:

- ``PILOT_ENABLE_ALPN_FILTER=false``, ``PILOT_ENABLE_METADATA_EXCHANGE=false``: istiod would add the
  ``istio.alpn`` and ``istio.metadata_exchange`` filters, which only istio-proxy's Envoy build has;
  upstream Envoy rejects them. They serve mTLS ALPN and telemetry, no traffic policy.
- ``ENABLE_CA_SERVER=false``, no ``--secureGRPCAddr``: no certificates, no TLS xDS port.
- ``PILOT_DEBOUNCE_AFTER=10ms`` (default 100 ms): a case's config reaches the sidecars in tens of
  milliseconds instead of hundreds; what is pushed is the same.
- ``PILOT_ENABLE_EDS_DEBOUNCE=true`` (istiod's default, stated so that nobody turns it off for speed):
  with ``false`` an endpoints-only update skips the debounce and is pushed at once, beside the
  debounced push (``pilot/pkg/xds/discovery.go`` L412-418), and in the default build every push builds a
  push context from the one current when it started and installs it (``Push`` -> ``initPushContext`` ->
  ``Env.SetPushContext``, L300, L542). Two at once: the one that ends last wins even if it started from
  the older context, so the config changes of the other are lost until those kinds change again (an
  unchanged kind's index is copied from the old context: ``push_context.go`` ``updateContext``), and a
  proxy's queued push merged with it takes its context (``PushRequest.Merge``: "the other push context is
  presumed to be later"). Under load, or after istiod was stopped a while (file reload, ServiceEntry
  endpoints and config push at once), a sync then never completed: the sidecars ACKed push ``N+2``,
  built from ``N-1``, without the sentinels that ``/debug/configz`` held, and ``/debug/adsz?push=true``
  re-sent that same context. Debounced, istiod runs one push at a time.

Ports are chosen by the kernel (``127.0.0.1:0``) and read back from istiod's own log lines, so
several meshes can run side by side. The gRPC port opens only once istiod's caches synced: its line
is the readiness signal (``/ready`` needs a Kubernetes client and answers 503 forever here).
Like Envoy, istiod gets ``PR_SET_PDEATHSIG``: if the harness dies, so does istiod.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from harness.errors import ProcessError, SyncTimeout
from harness.loopback import loopback_client
from harness.mesh.childproc import die_with_parent, log_tail, stop
from harness.waits import wait_until

ISTIOD_ENV = {
    "POD_NAMESPACE": "istio-system",
    "ENABLE_CA_SERVER": "false",
    "PILOT_ENABLE_ALPN_FILTER": "false",
    "PILOT_ENABLE_METADATA_EXCHANGE": "false",
    "PILOT_DEBOUNCE_AFTER": "10ms",
    "PILOT_DEBOUNCE_MAX": "500ms",
    "PILOT_ENABLE_EDS_DEBOUNCE": "true",  # never false: see the module docstring
}
START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 5.0
_HTTP_TIMEOUT_S = 5.0
_POLL_S = 0.01
_LOG_READ_BYTES = 64 * 1024
_GRPC_LINE = re.compile(rb"starting gRPC discovery service at (127\.0\.0\.1:\d+)")
_HTTP_LINE = re.compile(rb"starting HTTP service at (127\.0\.0\.1:\d+)")
_PUSH_LINE = re.compile(r"XDS: Pushing .*Version:(\S+)")
RELOAD_TRIGGERED = "Triggering reload of file configuration"
"""istiod's log line when its folder watcher saw a change (after its debounce delay)."""
RELOAD_FAILED = "unable to reload file configuration"
"""istiod's log line when a file in its config directory is invalid: it keeps its previous state."""


class IstiodProcess:
    """``pilot-discovery`` watching ``config_dir`` with mesh config ``mesh_config``; logs to ``log_path``."""

    def __init__(self, binary: Path, config_dir: Path, mesh_config: Path, log_path: Path) -> None:
        self.binary = binary
        self.config_dir = config_dir
        self.mesh_config = mesh_config
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self._http: httpx.Client | None = None
        self.grpc_address = ""
        self.http_address = ""

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ProcessError("istiod is not started")
        return self._process.pid

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def grpc_port(self) -> int:
        return int(self.grpc_address.rpartition(":")[2])

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Spawn istiod; returns once it serves xDS (its gRPC port is open), or raises ProcessError."""
        prefix, preexec = die_with_parent()
        command = [
            *prefix, os.fspath(self.binary), "discovery",
            "--registries=",
            f"--configDir={self.config_dir}",
            f"--meshConfig={self.mesh_config}",
            f"--networksConfig={self.config_dir.parent / 'no-mesh-networks'}",
            "--domain=cluster.local",
            "--clusterID=Kubernetes",
            "--httpAddr=127.0.0.1:0",
            "--grpcAddr=127.0.0.1:0",
            "--monitoringAddr=",
            "--secureGRPCAddr=",
            "--httpsAddr=",
            "--ctrlz_port=0",
            "--keepaliveMaxServerConnectionAge=876000h",
        ]  # fmt: skip
        env = {**_base_env(), **ISTIOD_ENV}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                             env=env, preexec_fn=preexec, close_fds=True)  # noqa: PLW1509
        except OSError as exc:
            self._log.close()
            raise ProcessError(f"could not start istiod ({self.binary}): {exc}") from exc
        self._wait_serving(timeout_s)
        self._http = loopback_client(f"http://{self.http_address}", timeout=_HTTP_TIMEOUT_S)

    def _wait_serving(self, timeout_s: float) -> None:
        """Until istiod logs both of its listening addresses; fails at once if it exits first. A
        timeout is a ``ProcessError`` (istiod could not start), after istiod is stopped."""
        def serving() -> bool:
            text = self.log_path.read_bytes()
            grpc, http = _GRPC_LINE.search(text), _HTTP_LINE.search(text)
            if grpc and http:
                self.grpc_address, self.http_address = grpc.group(1).decode(), http.group(1).decode()
                return True
            code = self.exit_code
            if code is not None:
                raise ProcessError(f"istiod exited with code {code} before it served xDS\n{self.log_tail()}")
            return False

        try:
            wait_until(serving, timeout_s, _POLL_S, message="istiod's xDS port")
        except SyncTimeout:
            self.stop()
            raise ProcessError(f"istiod did not open its xDS port within {timeout_s:g}s\n{self.log_tail()}") from None

    def debug(self, path: str) -> Any:
        """GET istiod's debug endpoint ``path`` (``/debug/syncz``, ``/debug/configz``) as JSON."""
        if self._http is None:
            raise ProcessError("istiod is not started")
        try:
            response = self._http.get(path)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProcessError(f"istiod {path} failed: {exc}\n{self.log_tail()}") from exc

    def syncz(self) -> list[dict[str, Any]]:
        """Per connected proxy: what istiod sent and what the proxy ACKed, per xDS type, and the last NACK."""
        body = self.debug("/debug/syncz")
        return body if isinstance(body, list) else []

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        """What istiod logged after byte ``offset`` (for a failed reload's reason)."""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read(_LOG_READ_BYTES).decode(errors="replace")

    def log_tail(self, n: int = 30) -> str:
        return log_tail(self.log_path, n)

    def last_push_version(self) -> str | None:
        """The version of the last push istiod logged (``XDS: Pushing ... Version:<version>``), from the
        last 64 KiB of its log; None if there is none there."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_READ_BYTES))
                pushes = _PUSH_LINE.findall(log.read().decode(errors="replace"))
        except FileNotFoundError:
            return None
        return pushes[-1] if pushes else None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a bound; idempotent."""
        if self._process is not None:
            stop(self._process, _STOP_TIMEOUT_S)
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _base_env() -> dict[str, str]:
    """The harness's environment without anything that points istiod at a Kubernetes cluster."""
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
