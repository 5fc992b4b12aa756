"""Envoy start-up and push-to-ACK latency through the harness's own control plane.

Measures, on this machine, with real Envoy (--concurrency 1) and the hand-made config of
tests/unit/xds/xds_builders.py routing to a local http.server upstream:

* spawn -> ready: ``EnvoyProcess.start()`` until admin ``/ready`` answers 200 (initial xDS included);
* push -> ACK as the mesh sees it: ``ControlPlane.push()`` until ``wait_synced()`` returns
  (every type re-sent at the new version and ACKed, plus two thread hops);
* RDS response -> ACK on the wire: the server's own timestamps of the RouteConfiguration
  response and of the request that ACKs it (the number envoy-lab.md section 2.1 reports);
* bare Envoy RSS: VmRSS of the last Envoy once it has served every push (the memory floor of a
  sidecar, for the local mesh's figure).

Each push changes only the route's ``x-route-version`` tag; after each, one request checks that
Envoy serves the new tag. Prints median / p95 / max in milliseconds. Nothing is asserted.

Run from the repository root:  python bench/xds_push_ack.py [--pushes 30] [--starts 3]
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_mesh import rss_mib  # noqa: E402
from harness.mesh.local import typeurls  # noqa: E402
from harness.mesh.local.controlplane import ControlPlane  # noqa: E402
from harness.mesh.local.envoy import EnvoyProcess  # noqa: E402
from harness.mesh.local.envoy_binary import envoy_version, find_envoy  # noqa: E402
from harness.mesh.local.xds import Callbacks, RequestEvent, RequestKind, ResponseEvent  # noqa: E402
from tests.unit.xds.xds_builders import LISTENER_NAME, ROUTE_VERSION_HEADER, make_resources  # noqa: E402

NODE = "bench.default"
TIMEOUT_S = 10.0


class RdsClock:
    """Server-side timestamps of each RDS response and of the ACK that answers it (by nonce)."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.acked: dict[str, float] = {}

    def callbacks(self) -> Callbacks:
        return Callbacks(on_request=self.on_request, on_response=self.on_response)

    def on_response(self, event: ResponseEvent) -> None:
        if event.type_url == typeurls.ROUTE:
            self.sent[event.nonce] = time.perf_counter()

    def on_request(self, event: RequestEvent) -> None:
        if event.kind is RequestKind.ACK and event.answered is not None and event.type_url == typeurls.ROUTE:
            self.acked[event.answered.nonce] = time.perf_counter()

    def latencies_ms(self) -> list[float]:
        return [(self.acked[nonce] - sent) * 1e3 for nonce, sent in self.sent.items() if nonce in self.acked]


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def summary(values_ms: list[float]) -> str:
    ordered = sorted(values_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):6.2f}  p95 {p95:6.2f}  max {ordered[-1]:6.2f} ms  (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()

    binary = find_envoy()
    print(f"Envoy {envoy_version(binary)} at {binary}")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    serving = threading.Thread(target=upstream.serve_forever, daemon=True)
    serving.start()
    clock = RdsClock()
    starts_ms, pushes_ms = [], []
    envoy_rss = 0.0
    try:
        with ControlPlane([clock.callbacks()]) as plane, tempfile.TemporaryDirectory() as tmp:
            for run in range(args.starts):
                node = f"{NODE}-{run}"
                envoy = EnvoyProcess(node, "bench", plane.port, Path(tmp) / node, binary=binary)
                plane.push(node, make_resources("0", {"v1": upstream.server_address[1]}), 0)
                begin = time.perf_counter()
                with envoy:
                    envoy.wait_ready(TIMEOUT_S)
                    starts_ms.append((time.perf_counter() - begin) * 1e3)
                    plane.wait_synced([node], 0, TIMEOUT_S)
                    if run == args.starts - 1:
                        pushes_ms = push_many(plane, envoy, node, upstream.server_address[1], args.pushes)
                        envoy_rss = rss_mib(envoy.pid)
    finally:
        upstream.shutdown()
        upstream.server_close()
    print(f"spawn -> ready          {summary(starts_ms)}")
    print(f"push -> wait_synced     {summary(pushes_ms)}")
    print(f"RDS response -> ACK     {summary(clock.latencies_ms()[-args.pushes :])}")
    print(f"bare Envoy RSS          {envoy_rss:.1f} MiB")


def push_many(plane: ControlPlane, envoy: EnvoyProcess, node: str, upstream_port: int, pushes: int) -> list[float]:
    latencies = []
    port = envoy.listener_ports()[LISTENER_NAME]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=TIMEOUT_S) as client:
        for version in range(1, pushes + 1):
            begin = time.perf_counter()
            plane.push(node, make_resources(str(version), {"v1": upstream_port}), version)
            plane.wait_synced([node], version, TIMEOUT_S)
            latencies.append((time.perf_counter() - begin) * 1e3)
            served = client.get("/").headers[ROUTE_VERSION_HEADER]
            if served != str(version):
                raise SystemExit(f"after ACK of version {version}, Envoy served route version {served}")
    return latencies


if __name__ == "__main__":
    main()
