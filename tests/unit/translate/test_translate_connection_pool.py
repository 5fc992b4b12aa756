"""connectionPool -> breakers, timeouts, keepalive and HTTP protocol options, as istiod 1.30 sets them."""

from __future__ import annotations

from typing import Any

import pytest

from harness.istio.model import ConnectionPoolSettings, RetryBudget
from harness.mesh.local.translate import names
from harness.mesh.local.translate.connection_pool import (
    UNLIMITED,
    translate_connection_pool,
)
from harness.topology import ServicePort

HTTP = ServicePort("http", 9080)
GRPC = ServicePort("grpc", 7070)
H1: dict[str, Any] = {"http_protocol_options": {}}


def pool(spec: dict[str, Any]) -> ConnectionPoolSettings:
    return ConnectionPoolSettings.model_validate(spec)


def options(out: dict[str, Any]) -> dict[str, Any] | None:
    """The HttpProtocolOptions without ``@type`` (None when the cluster has none)."""
    typed = out.get("typed_extension_protocol_options")
    if typed is None:
        return None
    assert list(typed) == [names.HTTP_PROTOCOL_OPTIONS]
    return {k: v for k, v in typed[names.HTTP_PROTOCOL_OPTIONS].items() if k != "@type"}


def test_translate_connection_pool_defaults_without_a_pool() -> None:
    out = translate_connection_pool(None, None, HTTP, track_remaining=True)
    assert out == {
        "connect_timeout": "10s",
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": UNLIMITED,
                    "max_pending_requests": UNLIMITED,
                    "max_requests": UNLIMITED,
                    "max_retries": UNLIMITED,
                    "track_remaining": True,
                }
            ]
        },
    }
    assert options(translate_connection_pool(None, None, GRPC, track_remaining=False)) == {
        "explicit_http_config": {"http2_protocol_options": {}}
    }


@pytest.mark.parametrize("value", [0, 1, 7])
def test_translate_connection_pool_only_positive_limits_override(value: int) -> None:
    spec = {
        "tcp": {"maxConnections": value},
        "http": {"http1MaxPendingRequests": value, "http2MaxRequests": value, "maxRetries": value},
    }
    (threshold,) = translate_connection_pool(pool(spec), None, HTTP, False)["circuit_breakers"]["thresholds"]
    want = value if value > 0 else UNLIMITED
    assert [threshold[k] for k in ("max_connections", "max_pending_requests", "max_requests", "max_retries")] == [
        want
    ] * 4


def test_translate_connection_pool_retry_budget_defaults_and_values() -> None:
    def budget(spec: dict[str, Any]) -> Any:
        out = translate_connection_pool(None, RetryBudget.model_validate(spec), HTTP, False)
        return out["circuit_breakers"]["thresholds"][0]["retry_budget"]

    assert budget({}) == {"budget_percent": {"value": 20.0}, "min_retry_concurrency": 3}
    zero = {"budget_percent": {"value": 0}, "min_retry_concurrency": 3}
    assert budget({"percent": 0, "minRetryConcurrency": 0}) == zero
    assert budget({"percent": 12.5, "minRetryConcurrency": 9}) == {
        "budget_percent": {"value": 12.5},
        "min_retry_concurrency": 9,
    }


def test_translate_connection_pool_connect_timeout_and_keepalive_in_whole_seconds() -> None:
    spec = {"tcp": {"connectTimeout": "250ms", "tcpKeepalive": {"time": "90.9s"}}}
    out = translate_connection_pool(pool(spec), None, HTTP, False)
    assert out["connect_timeout"] == "0.25s"
    assert out["upstream_connection_options"] == {"tcp_keepalive": {"keepalive_time": 90}}
    empty = translate_connection_pool(pool({"tcp": {"tcpKeepalive": {}}}), None, HTTP, False)
    assert empty["upstream_connection_options"] == {"tcp_keepalive": {}}  # SO_KEEPALIVE with OS defaults


def test_translate_connection_pool_common_options_and_the_required_protocol() -> None:
    spec = {
        "http": {"maxRequestsPerConnection": 1},
        "tcp": {"idleTimeout": "1m", "maxConnectionDuration": "10s"},
    }
    common = {"idle_timeout": "60s", "max_requests_per_connection": 1, "max_connection_duration": "10s"}
    assert options(translate_connection_pool(pool(spec), None, HTTP, False)) == {
        "common_http_protocol_options": common,
        "explicit_http_config": H1,
    }
    http_idle = {"http": {"idleTimeout": "5s"}, "tcp": {"idleTimeout": "1m"}}
    got = options(translate_connection_pool(pool(http_idle), None, HTTP, False))
    assert got is not None and got["common_http_protocol_options"] == {"idle_timeout": "5s"}


def test_translate_connection_pool_max_concurrent_streams_only_on_h2() -> None:
    spec = pool({"http": {"maxConcurrentStreams": 8}})
    assert options(translate_connection_pool(spec, None, HTTP, False)) == {
        "common_http_protocol_options": {},
        "explicit_http_config": H1,
    }
    assert options(translate_connection_pool(spec, None, GRPC, False)) == {
        "common_http_protocol_options": {},
        "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 8}},
    }


@pytest.mark.parametrize(
    ("http", "port", "want"),
    [
        ({"h2UpgradePolicy": "UPGRADE"}, HTTP, {"explicit_http_config": {"http2_protocol_options": {}}}),
        ({"h2UpgradePolicy": "DO_NOT_UPGRADE"}, HTTP, None),
        ({"h2UpgradePolicy": "DEFAULT"}, HTTP, None),
        ({"h2UpgradePolicy": "DO_NOT_UPGRADE"}, GRPC, {"explicit_http_config": {"http2_protocol_options": {}}}),
        (
            {"useClientProtocol": True},
            GRPC,
            {"use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}},
        ),
        (
            {"useClientProtocol": True},
            HTTP,
            {"use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}},
        ),
    ],
)
def test_translate_connection_pool_upstream_protocol(http: dict[str, Any], port: ServicePort, want: Any) -> None:
    assert options(translate_connection_pool(pool({"http": http}), None, port, False)) == want
