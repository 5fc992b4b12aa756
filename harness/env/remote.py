"""``--mesh-attach NAME``: run cases on an environment started with ``mesh-harness up``.

``AttachedMesh`` implements the Mesh interface by calling the environment daemon's API
(``daemon.py``), so ``mesh-harness run`` and pytest reuse a mesh that is already running instead
of starting their own. The environment belongs to the user, so an attached run never changes
what it runs and leaves its config as it found it:

* ``deploy(topology)`` only checks that the environment already runs exactly that topology; a
  different one is a ``MeshError`` naming both (it never restarts the user's apps);
* ``apply``/``revert`` behave as on ``LocalMesh``: a case's objects go on top of what the
  environment holds (the daemon keeps the applied set), and ``revert`` makes the set from before
  the ``apply`` the applied set again, waiting for every proxy's ACK;
* ``listener_address(client, port)`` is the client sidecar's listener for a service port, from the
  daemon's status: ``mesh-harness load`` sends Locust's traffic there, straight to the sidecar;
* ``close()`` only detaches (closes the HTTP client); the environment keeps running.

The comparison of topologies (``topology_differences``) and the option check are pure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, Self

from harness.env import state
from harness.env.client import EnvClient
from harness.errors import CaseError, MeshError
from harness.istio.model import IstioObject
from harness.mesh.base import MeshInfo, Observation, ReceivedRequest, SendSpec, SyncToken
from harness.topology import Client, Service, ServicePort, Topology


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class AttachedMesh:
    """The Mesh interface over a running environment's API; ``attach`` it by name."""

    def __init__(self, client: EnvClient) -> None:
        self._client = client
        self._name = client.state.name
        self._info, self._topology = client.attach()
        self._closed = False

    @classmethod
    def attach(cls, name: str, *, on_stale: Callable[[str], None] = _stderr) -> AttachedMesh:
        """Attach to the running environment ``name``; ``EnvNotRunning`` says how to start one."""
        client = EnvClient(state.live_state(name, on_stale=on_stale))
        try:
            return cls(client)
        except BaseException:
            client.__exit__(None, None, None)
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> MeshInfo:
        return self._info

    def deploy(self, topology: Topology) -> None:
        """Succeeds only if the environment runs exactly ``topology``; never redeploys it."""
        differences = topology_differences(topology, self._topology)
        if differences:
            raise MeshError(
                f"environment {self._name!r} runs other services than this case needs: {'; '.join(differences)}. "
                "An attached run never redeploys the environment; run this case without --mesh-attach, or start "
                "an environment for it with: mesh-harness up --name NAME --services FILE"
            )

    def apply(self, objects: Sequence[IstioObject]) -> SyncToken:
        return self._open().apply_objects(objects)

    def revert(self, token: SyncToken) -> None:
        self._open().install(token.previous)

    def send(self, spec: SendSpec) -> list[Observation]:
        return self._open().send_spec(spec)

    def proxy_stats(self, workload: str) -> dict[str, int]:
        return self._open().proxy_stats(workload)

    def listener_address(self, client: str, port: int) -> str | None:
        """``ip:port`` where ``client``'s sidecar listens for service port ``port``; None when none does."""
        return client_listener(self._open().status(), client, port)

    def app_log(self, service: str, version: str | None = None, *, since: float = 0.0) -> list[ReceivedRequest]:
        return self._open().app_log(service, version, since=since)

    def drain(self, timeout_s: float = 10.0) -> None:
        self._open().drain(timeout_s)

    def close(self) -> None:
        """Detach: the environment keeps running (stop it with ``mesh-harness down``). Idempotent."""
        if not self._closed:
            self._closed = True
            self._client.__exit__(None, None, None)

    def _open(self) -> EnvClient:
        if self._closed:
            raise MeshError(f"detached from environment {self._name!r}; attach again to use it")
        return self._client


def check_attach_options(name: str, *, mesh: str, envoy_binary: str | None, istio_version: str | None) -> None:
    """``--mesh-attach`` uses the environment's own local mesh: options that choose another are bad input."""
    given = [flag for flag, value in (("--mesh " + mesh, mesh != "local"), ("--envoy-binary", envoy_binary),
                                      ("--istio-version", istio_version)) if value]
    if given:
        raise CaseError(f"--mesh-attach {name}: the environment runs its own local mesh (its Envoy and Istio version "
                        f"were chosen by `mesh-harness up`); drop {', '.join(given)}")


def client_listener(status: dict[str, Any], client: str, port: int) -> str | None:
    """From the daemon's ``/status``: ``client``'s sidecar listener for service port ``port``, or None (pure)."""
    rows = (c["listeners"] for c in status["clients"] if c["client"] == client)
    listeners: dict[str, str | None] = next(rows, {})
    found = listeners.get(str(port))
    return None if found is None else str(found)


def topology_differences(wanted: Topology, running: Topology) -> list[str]:
    """How the environment's topology differs from the one wanted, one phrase per difference (pure)."""
    out = _named_differences("service", wanted.services, running.services)
    out += _named_differences("client", wanted.clients, running.clients)
    if wanted.gateway != running.gateway:
        out.append(f"ingress gateway {'wanted' if wanted.gateway else 'not wanted'} "
                   f"(the environment {'runs' if running.gateway else 'does not run'} one)")
    if not out and wanted != running:
        out.append("services or clients in another order")
    return out


def _named_differences(what: str, wanted: Sequence[Service | Client], running: Sequence[Service | Client]) -> list[str]:
    have = {x.name: x for x in running}
    want = {x.name: x for x in wanted}
    out = [f"{what} {n} is needed, the environment has none" for n in want if n not in have]
    out += [f"{what} {n} runs in the environment, the case has none" for n in have if n not in want]
    for n in (n for n in want if n in have):
        for f in fields(want[n]):
            mine, theirs = getattr(want[n], f.name), getattr(have[n], f.name)
            if mine != theirs:
                out.append(f"{what} {n}: {f.name} {_show(mine)} needed, {_show(theirs)} in the environment")
    return out


def _show(value: Any) -> str:
    """Tuples of pairs as ``{k: v}``, other tuples as ``[a, b]``, ports as ``http 9080``, the rest as it prints."""
    if isinstance(value, ServicePort):
        return f"{value.name} {value.number}"
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value) + "}"
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
