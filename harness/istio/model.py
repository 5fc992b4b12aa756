"""Typed, frozen model of the Istio networking API subset the harness reads.

Field names mirror ``networking.istio.io`` (v1 / v1beta1 / v1alpha3 share one schema) in
snake_case, with the proto-JSON camelCase name as alias, so a path in an error message can be
pasted into the YAML. Unset optional fields are ``None``; lists and maps are empty tuples and dicts.
Proto ``oneof`` groups allow at most one member. Everything else (weights summing above 0,
percent ranges, route xor redirect...) is istiod's validation and lives in ``validate.py``, so that
a user sees every problem at once rather than the first one pydantic trips on.

Build objects from YAML with ``harness.istio.load``; build them in Python with keyword arguments
(lists are accepted for tuples, numbers as seconds for durations).
"""

from __future__ import annotations

import re
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from harness.istio.duration import ACCEPTED_FORMS, parse_duration

#: Set in the validation context by the loader: values come from YAML, so a duration must be a string.
FROM_YAML = "from_yaml"


def proto_json_name(field_name: str) -> str:
    """The proto-JSON name of a snake_case field, as protoc derives it.

    ``consecutive_5xx_errors`` -> ``consecutive5xxErrors`` (pydantic's ``to_camel`` would give
    ``consecutive5XxErrors``); a trailing ``_`` (``from_``, a Python keyword) is dropped.
    """
    first, *rest = field_name.rstrip("_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _to_duration(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a duration string; use {ACCEPTED_FORMS}")
    if info.context and info.context.get(FROM_YAML):
        raise ValueError(f"expected a duration string, not a bare number; use {ACCEPTED_FORMS}")
    return float(value)


Duration = Annotated[float, BeforeValidator(_to_duration)]
"""Seconds, parsed from a Go duration string ("1s", "0.5s", "500ms", "1h30m", "100us")."""


_GO_INT = re.compile(r"[+-]?[0-9]+")


def is_http_status(token: str) -> bool:
    """A ``retryOn`` part that istiod reads as a status code: Go's ``strconv.Atoi`` succeeds and
    ``http.StatusText(code) != ""`` (a registered code). Shared by validation and translation."""
    if not _GO_INT.fullmatch(token):
        return False
    try:
        HTTPStatus(int(token))
    except ValueError:
        return False
    return True


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=proto_json_name,
        populate_by_name=True,
    )

    #: Proto ``oneof`` groups (snake_case field names): at most one member may be set.
    _oneofs: ClassVar[tuple[tuple[str, ...], ...]] = ()

    @model_validator(mode="after")
    def _check_oneofs(self) -> _Model:
        for group in self._oneofs:
            chosen = [name for name in group if getattr(self, name) is not None]
            if len(chosen) > 1:
                names = ", ".join(proto_json_name(n) for n in group)
                got = ", ".join(proto_json_name(n) for n in chosen)
                raise ValueError(f"only one of {names} may be set (got {got}); keep one")
        return self


# --- shared -----------------------------------------------------------------------------------


class Percent(_Model):
    """A percentage as a double, 0-100 (validated in ``validate.py``)."""

    value: float = 0.0


class StringMatch(_Model):
    """Exact, prefix or RE2 regex match; ``{}`` (none set) means "present" for headers."""

    _oneofs = (("exact", "prefix", "regex"),)

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class PortSelector(_Model):
    number: int


class Destination(_Model):
    """A service (short name or FQDN, resolved in the object's namespace), subset and port."""

    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(_Model):
    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: tuple[str, ...] = ()


class Headers(_Model):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


# --- VirtualService ---------------------------------------------------------------------------


class HTTPRouteDestination(_Model):
    destination: Destination
    weight: int = 0
    headers: Headers | None = None


class HTTPMatchRequest(_Model):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: int | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: tuple[str, ...] = ()
    query_params: dict[str, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: bool | None = None
    without_headers: dict[str, StringMatch] = Field(default_factory=dict)
    source_namespace: str | None = None
    stat_prefix: str | None = None


class HTTPRedirect(_Model):
    _oneofs = (("port", "derive_port"),)

    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirect_code: int | None = None
    prefix_rewrite: str | None = None


class HTTPBody(_Model):
    """Direct-response body: ``string``, or ``bytes`` (base64 text, as in proto JSON)."""

    _oneofs = (("string", "bytes"),)

    string: str | None = None
    bytes: str | None = None


class HTTPDirectResponse(_Model):
    status: int
    body: HTTPBody | None = None


class RegexRewrite(_Model):
    match: str | None = None
    rewrite: str | None = None


class HTTPRewrite(_Model):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class Delegate(_Model):
    name: str | None = None
    namespace: str | None = None


class HTTPRetry(_Model):
    attempts: int | None = None
    per_try_timeout: Duration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None


class Delay(_Model):
    _oneofs = (("fixed_delay", "exponential_delay"),)

    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None
    percent: int | None = None  # deprecated integer percent


class Abort(_Model):
    _oneofs = (("http_status", "grpc_status", "http2_error"),)

    http_status: int | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None


class HTTPFaultInjection(_Model):
    delay: Delay | None = None
    abort: Abort | None = None


class HTTPMirrorPolicy(_Model):
    destination: Destination
    percentage: Percent | None = None


class CorsPolicy(_Model):
    allow_origin: tuple[str, ...] = ()  # deprecated: exact origins
    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: Duration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None


class HTTPRoute(_Model):
    name: str | None = None
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    mirror_percentage: Percent | None = None
    mirror_percent: int | None = None  # deprecated integer percent
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


class VirtualServiceSpec(_Model):
    """``tls`` and ``tcp`` routes stay raw dicts: the local mesh refuses them, kube passes them on."""

    hosts: tuple[str, ...]
    gateways: tuple[str, ...] = ()
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[dict[str, Any], ...] = ()
    tcp: tuple[dict[str, Any], ...] = ()
    export_to: tuple[str, ...] = ()


# --- DestinationRule --------------------------------------------------------------------------


class TcpKeepalive(_Model):
    probes: int | None = None
    time: Duration | None = None
    interval: Duration | None = None


class TCPSettings(_Model):
    max_connections: int | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


class ConnectionKeepalive(_Model):
    interval: Duration | None = None
    timeout: Duration | None = None


class HTTPSettings(_Model):
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: int | None = None
    http2_keep_alive: ConnectionKeepalive | None = None


class ConnectionPoolSettings(_Model):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(_Model):
    consecutive_errors: int | None = None  # deprecated, ignored by istiod
    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: int | None = None
    consecutive_gateway_errors: int | None = None
    consecutive_5xx_errors: int | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None
    outlier_detection_http_error_codes: tuple[int, ...] = ()


class RingHash(_Model):
    minimum_ring_size: int | None = None


class MagLev(_Model):
    table_size: int | None = None


class HTTPCookieAttribute(_Model):
    name: str
    value: str | None = None


class HTTPCookie(_Model):
    name: str
    path: str | None = None
    ttl: Duration | None = None
    attributes: tuple[HTTPCookieAttribute, ...] = ()


class ConsistentHashLB(_Model):
    _oneofs = (
        ("http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name"),
        ("ring_hash", "maglev"),
    )

    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: int | None = None  # deprecated, use ring_hash


class Distribute(_Model):
    from_: str | None = None
    to: dict[str, int] = Field(default_factory=dict)


class Failover(_Model):
    from_: str | None = None
    to: str | None = None


class LocalityLoadBalancerSetting(_Model):
    distribute: tuple[Distribute, ...] = ()
    failover: tuple[Failover, ...] = ()
    failover_priority: tuple[str, ...] = ()
    enabled: bool | None = None


class ZoneAwareLoadBalancerSetting(_Model):
    enabled: bool | None = None
    failover: tuple[Failover, ...] = ()
    failover_priority: tuple[str, ...] = ()
    min_cluster_size: int | None = None


class WarmupConfiguration(_Model):
    duration: Duration
    minimum_percent: float | None = None
    aggression: float | None = None


class LoadBalancerSettings(_Model):
    _oneofs = (("simple", "consistent_hash"),)

    simple: (
        Literal["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"] | None
    ) = None
    consistent_hash: ConsistentHashLB | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    zone_aware_lb_setting: ZoneAwareLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None  # deprecated, use warmup
    warmup: WarmupConfiguration | None = None


class ClientTLSSettings(_Model):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: tuple[str, ...] = ()
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None


class PortTrafficPolicy(_Model):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TunnelSettings(_Model):
    protocol: str | None = None
    target_host: str
    target_port: int


class ProxyProtocol(_Model):
    version: Literal["V1", "V2"] | None = None


class RetryBudget(_Model):
    percent: float | None = None
    min_retry_concurrency: int | None = None
    budget_interval: Duration | None = None


class TrafficPolicy(_Model):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] = ()
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


class Subset(_Model):
    """A named version of the host: endpoints whose labels include ``labels`` (none = all)."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class WorkloadSelector(_Model):
    match_labels: dict[str, str] = Field(default_factory=dict)


class DestinationRuleSpec(_Model):
    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    export_to: tuple[str, ...] = ()
    workload_selector: WorkloadSelector | None = None


# --- Gateway ----------------------------------------------------------------------------------


class Port(_Model):
    """A Gateway server port: the number the gateway listens on and the protocol it speaks there."""

    number: int
    protocol: str
    name: str | None = None
    target_port: int | None = None


class ServerTLSSettings(_Model):
    https_redirect: bool | None = None
    mode: (
        Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"] | None
    ) = None
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    ca_crl: str | None = None
    credential_name: str | None = None
    credential_names: tuple[str, ...] = ()
    tls_certificates: tuple[dict[str, Any], ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    verify_certificate_spki: tuple[str, ...] = ()
    verify_certificate_hash: tuple[str, ...] = ()
    min_protocol_version: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = None
    max_protocol_version: Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"] | None = None
    cipher_suites: tuple[str, ...] = ()


class Server(_Model):
    """One server of a Gateway: a port and the hosts (``[namespace/]host``) it exposes there."""

    port: Port
    bind: str | None = None
    hosts: tuple[str, ...] = ()
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


class GatewaySpec(_Model):
    servers: tuple[Server, ...] = ()
    selector: dict[str, str] = Field(default_factory=dict)


# --- ServiceEntry -----------------------------------------------------------------------------


class ServiceEntryPort(_Model):
    number: int
    protocol: str | None = None
    name: str
    target_port: int | None = None


class WorkloadEntry(_Model):
    """An endpoint of a ServiceEntry: an address (IP, or a hostname with DNS resolution)."""

    address: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


class ServiceEntrySpec(_Model):
    hosts: tuple[str, ...]
    addresses: tuple[str, ...] = ()
    ports: tuple[ServiceEntryPort, ...] = ()
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: tuple[WorkloadEntry, ...] = ()
    workload_selector: WorkloadSelector | None = None
    export_to: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()


# --- Kubernetes envelope ----------------------------------------------------------------------

#: Metadata keys the API server sets; accepted (``kubectl get -o yaml`` output) and ignored.
IGNORED_METADATA_KEYS = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "managedFields",
        "selfLink",
        "ownerReferences",
        "finalizers",
        "generateName",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)


def _to_datetime(value: Any) -> Any:
    """YAML gives a datetime for an unquoted timestamp and a str for a quoted one; accept both."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an RFC 3339 timestamp, e.g. 2024-05-01T12:00:00Z") from None
    return value


class ObjectMeta(_Model):
    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: Annotated[datetime | None, BeforeValidator(_to_datetime)] = None

    @model_validator(mode="before")
    @classmethod
    def _drop_server_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in IGNORED_METADATA_KEYS}
        return data


class Source(_Model):
    """Where an object was loaded from, for error messages.

    ``lines`` maps YAML field paths inside the object (``("spec", "http", 0, "timeout")``) to
    their line, so that checks run after loading (``validate.py``) can point at the field.
    """

    file: str
    line: int
    lines: dict[tuple[str | int, ...], int] = Field(default_factory=dict, repr=False)

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return self.line


class IstioObject(_Model):
    """One Istio resource. ``source`` is not part of its identity: equality and hash ignore it."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    source: Source | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """``(kind, namespace, name)``: unique within a mesh."""
        return (self.kind, self.metadata.namespace, self.metadata.name)

    @property
    def ref(self) -> str:
        """``VirtualService/reviews``, as error messages name the object."""
        return f"{self.kind}/{self.metadata.name}"

    def _identity(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields if name != "source"}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IstioObject):
            return NotImplemented
        return type(self) is type(other) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self.key)


class VirtualService(IstioObject):
    kind: Literal["VirtualService"] = "VirtualService"
    spec: VirtualServiceSpec


class DestinationRule(IstioObject):
    kind: Literal["DestinationRule"] = "DestinationRule"
    spec: DestinationRuleSpec


class Gateway(IstioObject):
    kind: Literal["Gateway"] = "Gateway"
    spec: GatewaySpec


class ServiceEntry(IstioObject):
    kind: Literal["ServiceEntry"] = "ServiceEntry"
    spec: ServiceEntrySpec


#: Kinds the loader builds, by ``kind``.
KINDS: dict[str, type[IstioObject]] = {
    "VirtualService": VirtualService,
    "DestinationRule": DestinationRule,
    "Gateway": Gateway,
    "ServiceEntry": ServiceEntry,
}

#: ``apiVersion`` values the loader accepts; the three share one schema.
API_VERSIONS = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")
