"""connectionPool (and retryBudget) -> a cluster's breakers, timeouts and HTTP protocol options.

As istiod 1.30 builds them (``cluster_traffic_policy.go``: ``applyH2Upgrade``, ``applyConnectionPool``,
``applyRetryBudget``, ``applyTCPKeepalive``; ``cluster_builder.go``: ``setUpstreamProtocol``,
``setH2Options``, ``setUseDownstreamProtocol``, ``clusterWrapper.build``; reference section 3.4):

- Every cluster gets one circuit-breaker threshold with all four limits at 2^32-1; a DR value
  overrides a limit only when it is > 0, so 0 means "unlimited", never a literal zero.
- ``connect_timeout`` is ``tcp.connectTimeout``, else the mesh's 10s.
- ``tcp.tcpKeepalive`` -> ``upstream_connection_options.tcp_keepalive`` (whole seconds, as Go's
  ``Duration.Seconds``); the mesh sets no keepalive of its own.
- ``http.idleTimeout`` (else ``tcp.idleTimeout``), ``http.maxRequestsPerConnection`` and
  ``tcp.maxConnectionDuration`` -> ``HttpProtocolOptions.common_http_protocol_options``;
  ``http.maxConcurrentStreams`` only when the cluster already speaks h2.
- The upstream protocol: h2 for gRPC/HTTP2 ports and for ``h2UpgradePolicy: UPGRADE`` (unless
  ``useClientProtocol``); ``useClientProtocol`` replaces it with ``use_downstream_protocol_config``
  last, after ``maxConcurrentStreams`` was set, as istiod orders it. Options that set no protocol
  get ``explicit_http_config.http_protocol_options`` (HTTP/1.1), which Envoy requires.
"""

from __future__ import annotations

from harness.istio.model import ConnectionPoolSettings, RetryBudget
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.units import envoy_duration
from harness.topology import ServicePort

UNLIMITED = 4294967295
"""istiod's default for every circuit-breaker threshold (``math.MaxUint32``): effectively off."""

CONNECT_TIMEOUT_S = 10.0
"""The mesh default ``connectTimeout``."""

RETRY_BUDGET_PERCENT = 20.0
RETRY_BUDGET_MIN_CONCURRENCY = 3
"""istiod's ``applyRetryBudget`` defaults for an unset ``percent`` / ``minRetryConcurrency``."""

H2_PORT_PROTOCOLS = ("grpc", "http2")


def translate_connection_pool(
    pool: ConnectionPoolSettings | None, retry_budget: RetryBudget | None, port: ServicePort, track_remaining: bool
) -> Resource:
    """The cluster fields a connection pool decides: ``connect_timeout``, ``circuit_breakers`` and, when
    set, ``upstream_connection_options`` and ``typed_extension_protocol_options``."""
    pool = pool or ConnectionPoolSettings()
    out: Resource = {
        "connect_timeout": envoy_duration(
            pool.tcp.connect_timeout if pool.tcp and pool.tcp.connect_timeout is not None else CONNECT_TIMEOUT_S
        ),
        "circuit_breakers": {"thresholds": [_thresholds(pool, retry_budget, track_remaining)]},
    }
    keepalive = _tcp_keepalive(pool)
    if keepalive is not None:
        out["upstream_connection_options"] = {"tcp_keepalive": keepalive}
    options = _http_protocol_options(pool, port)
    if options is not None:
        out["typed_extension_protocol_options"] = {
            names.HTTP_PROTOCOL_OPTIONS: {"@type": names.TYPE_HTTP_PROTOCOL_OPTIONS, **options}
        }
    return out


def _thresholds(pool: ConnectionPoolSettings, retry_budget: RetryBudget | None, track_remaining: bool) -> Resource:
    http, tcp = pool.http, pool.tcp
    limits = {
        "max_connections": tcp.max_connections if tcp else None,
        "max_pending_requests": http.http1_max_pending_requests if http else None,
        "max_requests": http.http2_max_requests if http else None,
        "max_retries": http.max_retries if http else None,
    }
    out: Resource = {name: value if value and value > 0 else UNLIMITED for name, value in limits.items()}
    out["track_remaining"] = track_remaining
    if retry_budget is not None:
        out["retry_budget"] = {
            "budget_percent": {
                "value": retry_budget.percent if retry_budget.percent is not None else RETRY_BUDGET_PERCENT
            },
            "min_retry_concurrency": retry_budget.min_retry_concurrency or RETRY_BUDGET_MIN_CONCURRENCY,
        }
    return out


def _tcp_keepalive(pool: ConnectionPoolSettings) -> Resource | None:
    """``setKeepAliveSettings``: an empty ``tcp_keepalive`` (OS defaults) plus each field the DR sets."""
    keepalive = pool.tcp.tcp_keepalive if pool.tcp else None
    if keepalive is None:
        return None
    out: Resource = {}
    if keepalive.probes:
        out["keepalive_probes"] = keepalive.probes
    if keepalive.time is not None:
        out["keepalive_time"] = int(keepalive.time)
    if keepalive.interval is not None:
        out["keepalive_interval"] = int(keepalive.interval)
    return out


def _http_protocol_options(pool: ConnectionPoolSettings, port: ServicePort) -> Resource | None:
    """``HttpProtocolOptions`` without its ``@type``, or None when istiod would set none."""
    http, tcp = pool.http, pool.tcp
    out: Resource = {}
    upgrade = http is not None and not http.use_client_protocol and http.h2_upgrade_policy == "UPGRADE"
    if port.protocol in H2_PORT_PROTOCOLS or upgrade:
        out["explicit_http_config"] = {"http2_protocol_options": {}}
    common: Resource = {}
    idle = http.idle_timeout if http and http.idle_timeout is not None else (tcp.idle_timeout if tcp else None)
    if idle is not None:
        common["idle_timeout"] = envoy_duration(idle)
    if http and http.max_requests_per_connection:
        common["max_requests_per_connection"] = http.max_requests_per_connection
    if tcp and tcp.max_connection_duration is not None:
        common["max_connection_duration"] = envoy_duration(tcp.max_connection_duration)
    max_streams = http.max_concurrent_streams if http else None
    if common or max_streams:
        out["common_http_protocol_options"] = common
        if max_streams and "explicit_http_config" in out:
            out["explicit_http_config"]["http2_protocol_options"]["max_concurrent_streams"] = max_streams
    if http is not None and http.use_client_protocol:
        out.pop("explicit_http_config", None)
        out["use_downstream_protocol_config"] = {"http_protocol_options": {}, "http2_protocol_options": {}}
    if not out:
        return None
    if "explicit_http_config" not in out and "use_downstream_protocol_config" not in out:
        out["explicit_http_config"] = {"http_protocol_options": {}}
    return out
