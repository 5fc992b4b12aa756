"""The blocking, thread-safe face of the xDS server, for the local mesh.

The grpc.aio server needs an event loop that keeps running while the mesh blocks on processes and
sockets, so ``ControlPlane`` owns a background thread with its own loop and hands every call over
to it. The mesh sees plain methods: ``push`` a translator result, ``wait_synced`` for the ACKs,
and after a NACK ``rollback`` to the last config each node ACKed in full.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from harness.errors import MeshError, SyncTimeout
from harness.mesh.local.snapshot import ResourceDicts, Snapshot
from harness.mesh.local.xds import Callbacks, TypeStatus, XdsServer

_T = TypeVar("_T")
_START_TIMEOUT_S = 10.0
_CALL_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_EXTRA_WAIT_S = 5.0  # slack for the loop to deliver a wait's own SyncTimeout before we give up on it


class ControlPlane:
    """An ADS server on 127.0.0.1 (a free port) in a background thread. Use as a context manager.

    Every method may be called from any thread, blocks until done, and is bounded in time.
    ``callbacks`` run on the server thread (see ``xds.Callbacks``).
    """

    def __init__(self, callbacks: Sequence[Callbacks] = ()) -> None:
        self._xds = XdsServer(callbacks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: grpc.aio.Server | None = None
        self._port: int | None = None
        self._closed = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The port Envoy's bootstrap points its ``xds_cluster`` at."""
        if self._port is None:
            raise MeshError("the control plane is not started; call start() first")
        return self._port

    def start(self) -> None:
        """Start serving; returns once the port is bound."""
        if self._closed:
            raise MeshError("cannot restart a control plane once it has been closed")
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="xds-control-plane", daemon=True)
        self._thread.start()
        self._port = self._call(self._serve(), _START_TIMEOUT_S, "the xDS server to bind 127.0.0.1")

    async def _serve(self) -> int:
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self._xds, self._server)
        port: int = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return port

    def push(self, node_id: str, resources: ResourceDicts, version: str | int) -> Snapshot:
        """Serve a translator result to ``node_id`` as ``version``; returns the snapshot served.

        An inconsistent result (a route or endpoint set referenced but not produced) is a harness
        bug and raises ``MeshError`` before anything is sent.
        """
        snapshot = Snapshot.from_resources(str(version), resources)
        snapshot.consistent()
        self.push_all({node_id: snapshot})
        return snapshot

    def push_all(self, snapshots: Mapping[str, Snapshot]) -> None:
        """Serve each node its snapshot; all are set in one step of the server loop."""
        batch = dict(snapshots)

        async def set_all() -> None:
            for node_id, snapshot in batch.items():
                self._xds.set_snapshot(node_id, snapshot)

        self._call(set_all(), _CALL_TIMEOUT_S, "the control plane to take new snapshots")

    def wait_synced(self, node_ids: Iterable[str], version: str | int, timeout: float) -> None:
        """Block until every node ACKed ``version`` of every type it needs.

        Raises ``ConfigRejected`` on a NACK of that version and ``SyncTimeout`` after ``timeout``.
        """
        wait = self._xds.wait_acked(list(node_ids), str(version), timeout)
        self._call(wait, timeout + _EXTRA_WAIT_S, f"the xDS ACK wait for version {version}")

    def last_acked(self, node_id: str) -> Snapshot | None:
        """The newest snapshot ``node_id`` ACKed in full, or None."""
        return self._call(_value(lambda: self._xds.last_acked_snapshot(node_id)), _CALL_TIMEOUT_S, "the control plane")

    def rollback(self, node_ids: Iterable[str], version: str | int) -> None:
        """Re-serve each node its last fully ACKed snapshot, relabelled ``version`` (after a NACK).

        The caller then ``wait_synced(node_ids, version, ...)``. A node that never ACKed anything
        has nothing to go back to: ``MeshError``.
        """
        nodes = list(node_ids)
        previous = {node_id: self.last_acked(node_id) for node_id in nodes}
        never = sorted(node_id for node_id, snapshot in previous.items() if snapshot is None)
        if never:
            raise MeshError(f"cannot roll back nodes {never}: they never ACKed a complete config")
        self.push_all({node_id: snapshot.with_version(str(version)) for node_id, snapshot in previous.items() if snapshot})

    def status(self, node_id: str) -> Mapping[str, TypeStatus]:
        """Per type URL: last sent, ACKed and NACKed by ``node_id``."""
        return self._call(_value(lambda: self._xds.status(node_id)), _CALL_TIMEOUT_S, "the control plane")

    def close(self) -> None:
        """Stop the server and its thread. Idempotent; open streams are cancelled quietly."""
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self._server is not None:
                self._call(self._server.stop(grace=None), _STOP_TIMEOUT_S, "the xDS server to stop")
            self._call(_cancel_other_tasks(), _STOP_TIMEOUT_S, "the xDS streams to end")
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_TIMEOUT_S)
            if thread.is_alive():
                raise MeshError(f"the control plane thread did not stop within {_STOP_TIMEOUT_S}s")
            loop.close()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float, what: str) -> _T:
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise MeshError("the control plane is not running; call start() first (and not after close())")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SyncTimeout(f"control plane: waited {timeout:.1f}s for {what}") from None


async def _value(get: Callable[[], _T]) -> _T:
    """Run ``get()`` on the server loop, where the server's state may be read safely."""
    return get()


async def _cancel_other_tasks() -> None:
    """Cancel what the server left (stream readers) and let them finish, so nothing logs at exit."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
