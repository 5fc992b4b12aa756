"""Calls to a running environment's daemon API (see ``daemon.py`` for the endpoints).

Each call is bounded in time; the daemon's errors come back as the harness exceptions it raised
(``wire.decode_error``), and a daemon that does not answer is a ``MeshError`` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from harness.env import wire
from harness.env.manifests import Manifest
from harness.env.state import EnvState
from harness.errors import HarnessError, MeshError
from harness.istio.model import IstioObject
from harness.loopback import loopback_client
from harness.mesh.base import MeshInfo, Observation, ReceivedRequest, SendSpec, SyncToken
from harness.mesh.echo_client import bounded_request, observation_from_json
from harness.topology import Topology

CALL_TIMEOUT_S = 60.0  # an apply waits for ACKs (10 s) and may roll back (10 s more)
SEND_MARGIN_S = 60.0  # on top of a batch's own deadline


class EnvClient:
    def __init__(self, state: EnvState) -> None:
        self.state = state
        self._http = loopback_client(f"http://127.0.0.1:{state.api_port}",
                                       headers={"Authorization": f"Bearer {state.token}"}, timeout=CALL_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, timeout: float = CALL_TIMEOUT_S, **kwargs: Any) -> dict[str, Any]:
        what = f"environment {self.state.name!r} (daemon pid {self.state.pid}, API port {self.state.api_port})"

        def unreachable(exc: httpx.TransportError) -> HarnessError:
            return MeshError(f"{what}: API unreachable ({exc}); if it died, `mesh-harness down --name "
                             f"{self.state.name}` cleans up")

        response = bounded_request(self._http, method, path, timeout=timeout, unreachable=unreachable,
                                   no_answer=f"{what}: no answer to {method} {path} within {timeout:g}s", **kwargs)
        try:
            body = orjson.loads(response.content)  # a /send answer is a batch of Observations: twice json's speed
        except ValueError as exc:
            raise MeshError(f"{what}: {method} {path} answered {response.status_code} without JSON") from exc
        if response.status_code != 200:
            raise wire.decode_error(body)
        return dict(body)

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def apply(self, manifests: Sequence[Manifest]) -> dict[str, Any]:
        return self._call("POST", "/apply", json={"manifests": [vars(m) for m in manifests]})

    def delete(self, manifests: Sequence[Manifest]) -> dict[str, Any]:
        return self._call("POST", "/delete", json={"manifests": [vars(m) for m in manifests]})

    def send_spec(self, spec: SendSpec) -> list[Observation]:
        return self.send(wire.encode_send_spec(spec))

    def send(self, request: dict[str, Any]) -> list[Observation]:
        timeout = float(request.get("deadline_s", 120.0)) + SEND_MARGIN_S
        body = self._call("POST", "/send", json=request, timeout=timeout)
        return [observation_from_json(o) for o in body["observations"]]

    def route_configs(self, client: str = "client") -> list[dict[str, Any]]:
        return list(self._call("GET", "/routes", params={"client": client})["route_configs"])

    def app_log(self, service: str | None, version: str | None, since: float) -> list[ReceivedRequest]:
        params = {k: v for k, v in (("service", service), ("version", version)) if v is not None}
        body = self._call("GET", "/logs/app", params={**params, "since": repr(since)})
        return [wire.decode_received(r) for r in body["records"]]

    def access_log(self, client: str, skip: int) -> tuple[list[dict[str, Any]], int]:
        """Entries after the first ``skip``, and the number of entries so far (the next ``skip``)."""
        body = self._call("GET", "/logs/envoy", params={"client": client, "skip": skip})
        return list(body["entries"]), int(body["count"])

    def attach(self) -> tuple[MeshInfo, Topology]:
        body = self._call("GET", "/mesh")
        return MeshInfo(**body["mesh"]), wire.decode_topology(body["topology"])

    def apply_objects(self, objects: Sequence[IstioObject]) -> SyncToken:
        body = self._call("POST", "/mesh/apply", json={"objects": [wire.encode_object(o) for o in objects]})
        return SyncToken(int(body["version"]), tuple(wire.decode_object(o) for o in body["previous"]))

    def install(self, objects: Sequence[IstioObject]) -> int:
        """Make ``objects`` exactly the environment's applied set; the config version every proxy ACKed."""
        return int(self._call("POST", "/mesh/revert", json={"objects": [wire.encode_object(o) for o in objects]})["version"])

    def proxy_stats(self, workload: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("GET", "/mesh/stats", params={"workload": workload})["stats"].items()}

    def drain(self, timeout_s: float) -> None:
        self._call("POST", "/mesh/drain", json={"timeout_s": timeout_s}, timeout=timeout_s + SEND_MARGIN_S)

    def down(self) -> None:
        self._call("POST", "/down", timeout=10.0)
