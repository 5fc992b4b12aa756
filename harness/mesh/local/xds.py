"""The ADS server: serves per-node snapshots to Envoy and knows what each node has ACKed.

This is the *serve* layer of go-control-plane's generate / cache / serve split. It never
translates: it gets ``Snapshot`` values through ``set_snapshot`` and streams them as
state-of-the-world ``DiscoveryResponse`` messages. The protocol rules it follows were each
learnt the hard way (reference/envoy-lab.md section 2.1):

* push in istiod's order CDS, EDS, LDS, RDS, and make-before-break: when the clusters change,
  hold LDS/RDS until CDS and EDS are ACKed, so no route ever points at a cluster still warming;
* resend a type when Envoy changes the names it asks for, even at the same version, or a new
  cluster never finishes warming (its CDS ACK never comes);
* answer EDS for every requested cluster, with an empty ClusterLoadAssignment if the snapshot
  has none, for the same reason;
* a request carrying an old nonce is only a subscription update, never an ACK or a NACK.

All methods run on the event loop that serves gRPC; none is thread-safe. ``ControlPlane`` is
the thread-safe, blocking face of this class.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

import grpc
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from harness.errors import ConfigRejected, SyncTimeout
from harness.mesh.local import typeurls
from harness.mesh.local.snapshot import Snapshot

# CDS and LDS are subscribed as wildcards (every resource); EDS and RDS by name.
_WILDCARD_TYPES = frozenset({typeurls.CLUSTER, typeurls.LISTENER})
# Types that must be ACKed at the new version before LDS/RDS may follow (make-before-break).
_CLUSTER_TYPES = (typeurls.CLUSTER, typeurls.ENDPOINT)


class RequestKind(Enum):
    """What a DiscoveryRequest means, judged by its nonce."""

    SUBSCRIBE = "subscribe"  # no nonce: the first request of a type on this stream
    ACK = "ack"  # answers our latest response of its type and accepts it
    NACK = "nack"  # answers our latest response and rejects it (``error_detail`` set)
    STALE = "stale"  # answers an older response: only its resource names count


@dataclass(frozen=True)
class ResponseEvent:
    """One DiscoveryResponse as sent to ``node_id``; ``names`` are the resources it carries."""

    node_id: str
    type_url: str
    version: str
    nonce: str
    names: frozenset[str]
    response: discovery_pb2.DiscoveryResponse = field(repr=False, compare=False)


@dataclass(frozen=True)
class RequestEvent:
    """One DiscoveryRequest from ``node_id``, classified; ``answered`` is the response it ACKs/NACKs."""

    node_id: str
    kind: RequestKind
    request: discovery_pb2.DiscoveryRequest = field(repr=False, compare=False)
    answered: ResponseEvent | None = None

    @property
    def type_url(self) -> str:
        return str(self.request.type_url)

    @property
    def detail(self) -> str | None:
        """Envoy's ``error_detail.message`` for a NACK, else None."""
        return str(self.request.error_detail.message) if self.kind is RequestKind.NACK else None


@dataclass(frozen=True)
class Callbacks:
    """Optional observation hooks (go-control-plane ``CallbackFuncs``), not a class to subclass.

    They are invoked synchronously on the server's event loop, in wire order, and must not block.
    An exception from a hook is a harness bug and ends that stream.
    """

    on_stream_open: Callable[[str], None] | None = None
    on_request: Callable[[RequestEvent], None] | None = None
    on_response: Callable[[ResponseEvent], None] | None = None
    on_stream_closed: Callable[[str], None] | None = None


@dataclass(frozen=True)
class TypeStatus:
    """What one node has of one type: last sent, last ACKed (with the names it held), last NACK."""

    sent_version: str | None = None
    sent_nonce: str | None = None
    acked_version: str | None = None
    acked_names: frozenset[str] = frozenset()
    nack_version: str | None = None
    nack_detail: str | None = None


class AdsStream:
    """The protocol state of one ADS stream: pure, no I/O, so every rule is testable in isolation.

    ``on_request`` classifies a request and updates the subscription; ``pending`` returns the
    responses owed for a snapshot, in push order. A (version, requested names) pair is sent once
    per type; a change of either sends again.
    """

    def __init__(self, node_id: str, nonces: Iterator[str]) -> None:
        self.node_id = node_id
        self._nonces = nonces
        self._names: dict[str, tuple[str, ...]] = {}
        self._sent: dict[str, tuple[ResponseEvent, tuple[str, ...], Mapping[str, any_pb2.Any]]] = {}
        self._acked: dict[str, tuple[ResponseEvent, Mapping[str, any_pb2.Any]]] = {}

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> RequestEvent:
        type_url = str(request.type_url)
        self._names[type_url] = tuple(sorted(set(request.resource_names)))
        sent = self._sent.get(type_url)
        if not request.response_nonce:
            return RequestEvent(self.node_id, RequestKind.SUBSCRIBE, request)
        if sent is None or request.response_nonce != sent[0].nonce:
            return RequestEvent(self.node_id, RequestKind.STALE, request)
        if request.HasField("error_detail"):
            return RequestEvent(self.node_id, RequestKind.NACK, request, sent[0])
        self._acked[type_url] = (sent[0], sent[2])
        return RequestEvent(self.node_id, RequestKind.ACK, request, sent[0])

    def pending(self, snapshot: Snapshot | None) -> list[ResponseEvent]:
        """Responses to send now (and record as sent), in CDS, EDS, LDS, RDS order."""
        if snapshot is None:
            return []
        out = []
        for type_url in typeurls.PUSH_ORDER:
            names = self._subscription(type_url)
            if names is None:
                continue
            if type_url not in _CLUSTER_TYPES and not self._clusters_settled(snapshot):
                continue
            sent = self._sent.get(type_url)
            if sent is not None and (sent[0].version, sent[1]) == (snapshot.version, names):
                continue
            resources = _select(type_url, snapshot.resources[type_url], names)
            event = self._respond(type_url, snapshot.version, resources)
            self._sent[type_url] = (event, names, resources)
            out.append(event)
        return out

    def _subscription(self, type_url: str) -> tuple[str, ...] | None:
        """``()`` for a wildcard subscription, the sorted names otherwise, None if not subscribed."""
        if type_url not in self._names:
            return None
        names = self._names[type_url]
        if type_url in _WILDCARD_TYPES:
            return () if not names or "*" in names else names
        return names or None  # an empty EDS/RDS list unsubscribes; Envoy would not ACK an answer

    def _clusters_settled(self, snapshot: Snapshot) -> bool:
        """True unless the snapshot changes the clusters and CDS/EDS have not ACKed it yet."""
        acked_cds = self._acked.get(typeurls.CLUSTER)
        if (acked_cds[1] if acked_cds else {}) == snapshot.resources[typeurls.CLUSTER]:
            return True
        for type_url in _CLUSTER_TYPES:
            acked = self._acked.get(type_url)
            subscribed = type_url == typeurls.CLUSTER or self._subscription(type_url) is not None
            if subscribed and (acked is None or acked[0].version != snapshot.version):
                return False
        return True

    def _respond(self, type_url: str, version: str, resources: Mapping[str, any_pb2.Any]) -> ResponseEvent:
        nonce = next(self._nonces)
        response = discovery_pb2.DiscoveryResponse(
            version_info=version,
            type_url=type_url,
            nonce=nonce,
            resources=[resources[name] for name in sorted(resources)],
        )
        return ResponseEvent(self.node_id, type_url, version, nonce, frozenset(resources), response)


def _select(type_url: str, available: Mapping[str, any_pb2.Any], names: tuple[str, ...]) -> Mapping[str, any_pb2.Any]:
    if not names:
        return available
    if type_url != typeurls.ENDPOINT:
        return {name: available[name] for name in names if name in available}
    return {name: available.get(name) or _empty_assignment(name) for name in names}


def _empty_assignment(cluster_name: str) -> any_pb2.Any:
    """What istiod sends for a cluster without endpoints: without it the cluster never warms."""
    packed = any_pb2.Any()
    packed.Pack(endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name))
    return packed


class AckTracker:
    """Per node and type: last sent, last ACKed, last NACK. Fed by the server's own callbacks.

    A new stream from a node starts its record afresh: a restarted Envoy with the same node id
    holds nothing yet, and a reconnecting one is sent everything again and re-ACKs it.
    """

    def __init__(self) -> None:
        self._status: dict[str, dict[str, TypeStatus]] = {}

    def callbacks(self) -> Callbacks:
        return Callbacks(on_stream_open=self.reset, on_request=self.record_request, on_response=self.record_response)

    def reset(self, node_id: str) -> None:
        self._status[node_id] = {}

    def record_response(self, event: ResponseEvent) -> None:
        self._update(event.node_id, event.type_url, sent_version=event.version, sent_nonce=event.nonce)

    def record_request(self, event: RequestEvent) -> None:
        answered = event.answered
        if answered is None:
            return
        if event.kind is RequestKind.ACK:
            self._update(event.node_id, event.type_url, acked_version=answered.version, acked_names=answered.names)
        elif event.kind is RequestKind.NACK:
            self._update(event.node_id, event.type_url, nack_version=answered.version, nack_detail=event.detail)

    def is_connected(self, node_id: str) -> bool:
        return node_id in self._status

    def status(self, node_id: str) -> Mapping[str, TypeStatus]:
        return MappingProxyType(dict(self._status.get(node_id, {})))

    def _update(self, node_id: str, type_url: str, **changes: Any) -> None:
        types = self._status.setdefault(node_id, {})
        current = types.get(type_url, TypeStatus())
        types[type_url] = TypeStatus(**{**current.__dict__, **changes})


class XdsServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    """State-of-the-world ADS over grpc.aio, serving one snapshot per node id.

    Node ids must be unique per Envoy. ``callbacks`` observe every request and response in wire
    order, after the built-in ACK tracker has recorded them.
    """

    def __init__(self, callbacks: Sequence[Callbacks] = ()) -> None:
        self._tracker = AckTracker()
        self._callbacks = (self._tracker.callbacks(), *callbacks)
        self._snapshots: dict[str, Snapshot] = {}
        self._last_acked: dict[str, Snapshot] = {}
        self._wakeups: dict[str, set[asyncio.Queue[object]]] = {}
        self._changed = asyncio.Event()
        counter = itertools.count(1)
        self._nonces = (str(n) for n in counter)

    def set_snapshot(self, node_id: str, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` to ``node_id`` from now on; connected streams push what changed."""
        self._snapshots[node_id] = snapshot
        for queue in self._wakeups.get(node_id, ()):
            queue.put_nowait(_SNAPSHOT_CHANGED)
        self._notify()

    def snapshot(self, node_id: str) -> Snapshot | None:
        return self._snapshots.get(node_id)

    def last_acked_snapshot(self, node_id: str) -> Snapshot | None:
        """The newest snapshot this node ACKed in full: what to re-push after a NACK."""
        return self._last_acked.get(node_id)

    def status(self, node_id: str) -> Mapping[str, TypeStatus]:
        """Per type URL: what was last sent to, ACKed and NACKed by ``node_id`` (empty if never seen)."""
        return self._tracker.status(node_id)

    async def wait_acked(self, node_ids: Iterable[str], version: str, timeout: float) -> None:
        """Return once every node ACKed every type its snapshot needs, at ``version``.

        Raises ``ConfigRejected`` as soon as a node NACKs ``version``, and ``SyncTimeout`` after
        ``timeout`` seconds naming each node and type still behind.
        """
        nodes = list(node_ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            behind = [problem for node in nodes for problem in self._behind(node, version)]
            if not behind:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SyncTimeout("; ".join(f"{problem} after {timeout:.1f}s" for problem in behind))
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    def _behind(self, node_id: str, version: str) -> list[str]:
        """Why ``node_id`` is not synced at ``version`` (empty if it is); raises on a NACK of it."""
        snapshot = self._snapshots.get(node_id)
        if snapshot is None or snapshot.version != version:
            have = "none" if snapshot is None else snapshot.version
            return [f"node {node_id}: the control plane holds snapshot version {have}, want {version}"]
        if not self._tracker.is_connected(node_id):
            return [f"node {node_id}: no Envoy with this node id has connected, want version {version}"]
        status = self._tracker.status(node_id)
        behind = []
        for type_url, needed in _needed(snapshot).items():
            have_type = status.get(type_url, TypeStatus())
            missing = sorted(needed - have_type.acked_names) if have_type.acked_version == version else []
            if have_type.acked_version == version and not missing:
                continue
            if have_type.nack_version == version:
                raise ConfigRejected(node_id, typeurls.type_name(type_url), version, have_type.nack_detail or "")
            without = f" without {missing}" if missing else ""
            behind.append(
                f"node {node_id}: {typeurls.type_name(type_url)} still at version "
                f"{have_type.acked_version or '(none)'}{without}, want {version}"
            )
        return behind

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _observe_request(self, event: RequestEvent) -> None:
        for callbacks in self._callbacks:
            if callbacks.on_request is not None:
                callbacks.on_request(event)
        snapshot = self._snapshots.get(event.node_id)
        if snapshot is not None and not self._behind_quietly(event.node_id, snapshot.version):
            self._last_acked[event.node_id] = snapshot
        self._notify()

    def _observe_response(self, event: ResponseEvent) -> None:
        for callbacks in self._callbacks:
            if callbacks.on_response is not None:
                callbacks.on_response(event)

    def _behind_quietly(self, node_id: str, version: str) -> bool:
        try:
            return bool(self._behind(node_id, version))
        except ConfigRejected:
            return True

    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterable[discovery_pb2.DiscoveryRequest], context: Any
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        """One Envoy's ADS stream: requests and snapshot changes in, responses out, in order."""
        inbox: asyncio.Queue[object] = asyncio.Queue()
        reader = asyncio.create_task(_read_into(request_iterator, inbox))
        stream: AdsStream | None = None
        try:
            while (item := await inbox.get()) is not _END_OF_STREAM:
                if isinstance(item, discovery_pb2.DiscoveryRequest):
                    if stream is None:
                        stream = await self._open(item, inbox, context)
                    self._observe_request(stream.on_request(item))
                if stream is not None:
                    for event in stream.pending(self._snapshots.get(stream.node_id)):
                        self._observe_response(event)
                        yield event.response
            await reader  # re-raises what ended the request stream, if anything did
        finally:
            reader.cancel()
            if stream is not None:
                self._wakeups[stream.node_id].discard(inbox)
                for callbacks in self._callbacks:
                    if callbacks.on_stream_closed is not None:
                        callbacks.on_stream_closed(stream.node_id)

    async def _open(self, first: discovery_pb2.DiscoveryRequest, inbox: asyncio.Queue[object], context: Any) -> AdsStream:
        node_id = str(first.node.id)
        if not node_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first DiscoveryRequest must carry node.id")
        self._wakeups.setdefault(node_id, set()).add(inbox)
        for callbacks in self._callbacks:
            if callbacks.on_stream_open is not None:
                callbacks.on_stream_open(node_id)
        return AdsStream(node_id, self._nonces)

    async def DeltaAggregatedResources(
        self, request_iterator: AsyncIterable[discovery_pb2.DeltaDiscoveryRequest], context: Any
    ) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "delta xDS is not served; use state-of-the-world ADS")


_SNAPSHOT_CHANGED = object()
_END_OF_STREAM = object()


async def _read_into(requests: AsyncIterable[discovery_pb2.DiscoveryRequest], inbox: asyncio.Queue[object]) -> None:
    try:
        async for request in requests:
            inbox.put_nowait(request)
    finally:
        inbox.put_nowait(_END_OF_STREAM)


def _needed(snapshot: Snapshot) -> dict[str, frozenset[str]]:
    """Types (and the names in them) a node must ACK to run ``snapshot``; EDS/RDS only if referenced."""
    needed = {
        typeurls.CLUSTER: frozenset(snapshot.resources[typeurls.CLUSTER]),
        typeurls.ENDPOINT: snapshot.eds_names,
        typeurls.LISTENER: frozenset(snapshot.resources[typeurls.LISTENER]),
        typeurls.ROUTE: snapshot.rds_names,
    }
    return {type_url: names for type_url, names in needed.items() if names or type_url in _WILDCARD_TYPES}
