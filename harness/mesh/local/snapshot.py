"""An immutable, versioned bundle of Envoy resources for one node, able to check itself.

This is the *cache* layer of go-control-plane's generate / cache / serve split: the translator
generates JSON-shaped dicts, ``Snapshot.from_dicts`` turns them into packed protos once, and the
xDS server only ever serves snapshots. ``consistent()`` catches a translator that references a
route or endpoint set it did not produce, before Envoy would sit warming forever on it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

# Every proto module whose type can appear as an "@type" inside an Any of the served resources
# must be imported, or ParseDict cannot resolve it. Imported for that side effect only.
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401
from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.network.dns_resolver.cares.v3 import cares_dns_resolver_pb2  # noqa: F401
from envoy.extensions.request_id.uuid.v3 import uuid_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message

from harness.errors import MeshError
from harness.mesh.local import typeurls

# type URL -> (message class, the field that names a resource of that type)
_KINDS: Mapping[str, tuple[type[Message], str]] = MappingProxyType(
    {
        typeurls.CLUSTER: (cluster_pb2.Cluster, "name"),
        typeurls.ENDPOINT: (endpoint_pb2.ClusterLoadAssignment, "cluster_name"),
        typeurls.LISTENER: (listener_pb2.Listener, "name"),
        typeurls.ROUTE: (route_pb2.RouteConfiguration, "name"),
    }
)

JsonDict = Mapping[str, Any]
_M = TypeVar("_M", bound=Message)
_UNKNOWN_TYPE_HINT = "; import the proto module of that '@type' in harness/mesh/local/snapshot.py"


class ResourceDicts(Protocol):
    """What the translator produces (``EnvoyResources``): Envoy v3 JSON dicts per resource kind."""

    @property
    def clusters(self) -> Sequence[JsonDict]: ...

    @property
    def endpoints(self) -> Sequence[JsonDict]: ...

    @property
    def listeners(self) -> Sequence[JsonDict]: ...

    @property
    def routes(self) -> Sequence[JsonDict]: ...


@dataclass(frozen=True)
class Snapshot:
    """Resources by type URL, then by name, all at one ``version``.

    The mappings are read-only views; the packed ``Any`` messages are shared with every stream
    that serves the snapshot and must not be altered. Every type of ``typeurls.PUSH_ORDER`` is
    present (possibly empty), so "no listeners" is served as an empty LDS response, not withheld.
    """

    version: str
    resources: Mapping[str, Mapping[str, any_pb2.Any]]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.resources) - set(_KINDS))
        if unknown:
            raise MeshError(f"harness bug: snapshot {self.version}: unknown resource types {unknown}")
        frozen = {tu: MappingProxyType(dict(self.resources.get(tu, {}))) for tu in typeurls.PUSH_ORDER}
        object.__setattr__(self, "resources", MappingProxyType(frozen))

    @classmethod
    def from_dicts(
        cls,
        version: str,
        *,
        clusters: Iterable[JsonDict] = (),
        endpoints: Iterable[JsonDict] = (),
        listeners: Iterable[JsonDict] = (),
        routes: Iterable[JsonDict] = (),
    ) -> Snapshot:
        """Parse Envoy v3 JSON dicts into packed protos; a dict Envoy's schema rejects is a harness bug."""
        given = {
            typeurls.CLUSTER: clusters,
            typeurls.ENDPOINT: endpoints,
            typeurls.LISTENER: listeners,
            typeurls.ROUTE: routes,
        }
        return cls(version, {tu: _pack_all(tu, dicts) for tu, dicts in given.items()})

    @classmethod
    def from_resources(cls, version: str, resources: ResourceDicts) -> Snapshot:
        """``from_dicts`` for a translator result (anything with the four tuples)."""
        return cls.from_dicts(
            version,
            clusters=resources.clusters,
            endpoints=resources.endpoints,
            listeners=resources.listeners,
            routes=resources.routes,
        )

    def with_version(self, version: str) -> Snapshot:
        """The same resources under another version (to re-push a previous config as a new one)."""
        return Snapshot(version, self.resources)

    @cached_property
    def eds_names(self) -> frozenset[str]:
        """Names of the ClusterLoadAssignments the EDS clusters of this snapshot ask for."""
        names = set()
        for packed in self.resources[typeurls.CLUSTER].values():
            cluster = _unpack(packed, cluster_pb2.Cluster)
            if cluster.WhichOneof("cluster_discovery_type") == "type" and cluster.type == cluster_pb2.Cluster.EDS:
                names.add(cluster.eds_cluster_config.service_name or cluster.name)
        return frozenset(names)

    @cached_property
    def rds_names(self) -> frozenset[str]:
        """Names of the RouteConfigurations that the listeners' HTTP connection managers load over RDS."""
        names = set()
        for packed in self.resources[typeurls.LISTENER].values():
            listener = _unpack(packed, listener_pb2.Listener)
            chains = [*listener.filter_chains]
            if listener.HasField("default_filter_chain"):
                chains.append(listener.default_filter_chain)
            for chain in chains:
                for net_filter in chain.filters:
                    if net_filter.typed_config.type_url != typeurls.HTTP_CONNECTION_MANAGER:
                        continue
                    hcm = _unpack(net_filter.typed_config, hcm_pb2.HttpConnectionManager)
                    if hcm.WhichOneof("route_specifier") == "rds":
                        names.add(hcm.rds.route_config_name)
        return frozenset(names)

    def consistent(self) -> None:
        """Raise ``MeshError`` unless every EDS cluster has endpoints and every RDS name a route config.

        The wording follows go-control-plane's ``Snapshot.Consistent``.
        """
        problems = []
        for type_url, wanted in ((typeurls.ENDPOINT, self.eds_names), (typeurls.ROUTE, self.rds_names)):
            missing = sorted(wanted - set(self.resources[type_url]))
            if missing:
                problems.append(
                    f"inconsistent {typeurls.type_name(type_url)} reference: missing resources {missing}"
                )
        if problems:
            raise MeshError(f"harness bug: snapshot {self.version}: " + "; ".join(problems))


def _pack_all(type_url: str, dicts: Iterable[JsonDict]) -> dict[str, any_pb2.Any]:
    name_field = _KINDS[type_url][1]
    kind = typeurls.type_name(type_url)
    packed: dict[str, any_pb2.Any] = {}
    for index, body in enumerate(dicts):
        label = f"{kind} #{index} {body.get(name_field)!r}"
        try:
            name, any_msg = _parsed(type_url, json.dumps(body, sort_keys=True))
        except json_format.ParseError as exc:
            hint = _UNKNOWN_TYPE_HINT if "Can not find message descriptor" in str(exc) else ""
            raise MeshError(f"harness bug: {label} is not valid Envoy config: {str(exc).rstrip('.')}{hint}") from exc
        if not name:
            raise MeshError(f"harness bug: {label} has no {name_field}")
        if name in packed:
            raise MeshError(f"harness bug: {kind} {name!r} appears twice in one snapshot")
        packed[name] = any_msg
    return packed


@functools.lru_cache(maxsize=4096)
def _parsed(type_url: str, body: str) -> tuple[str, any_pb2.Any]:
    """The name and packed proto of one resource, from its canonical JSON.

    Most resources are the same from one push to the next (a case changes a route, not the
    clusters and listeners), and protobuf's ``ParseDict`` is pure Python: parsing each resource
    again was a third of a push's CPU. The packed result is shared, like every snapshot's
    resources, and never altered.
    """
    message_cls, name_field = _KINDS[type_url]
    message = json_format.ParseDict(json.loads(body), message_cls())
    any_msg = any_pb2.Any()
    any_msg.Pack(message)
    return getattr(message, name_field), any_msg


def _unpack(packed: any_pb2.Any, message_cls: type[_M]) -> _M:
    message: _M = message_cls()
    if not packed.Unpack(message):
        raise MeshError(f"harness bug: expected {message_cls.DESCRIPTOR.full_name}, got {packed.type_url}")
    return message
