"""LDS: one outbound HTTP listener per service port, shaped like istiod's ``0.0.0.0_<port>``.

istiod builds these with ``bind_to_port: false`` behind iptables; the local mesh has no iptables,
so each listener binds 127.0.0.1 port 0 and the mesh reads the ephemeral port back from the admin
API. Nothing here may depend on the config version: a changed listener is drained and rebound by
Envoy, which would move that ephemeral port.

The HCM keeps istiod's settings (``listener_builder.go:buildHTTPConnectionManager``, reference
section 1.2) and its filter order with the Istio-only filters taken out: fault -> cors -> router.
The empty fault and CORS filters are there so that per-route ``typed_per_filter_config`` can act.
From 1.23 the HCM also passes ``100 Continue`` through (``proxy_100_continue``).
"""

from __future__ import annotations

from harness.mesh.local.translate import names
from harness.mesh.local.translate.clusters import ads_config_source
from harness.mesh.local.translate.inputs import Resource
from harness.sample_apps.echo.fields import CONFIG_VERSION_HEADER

ACCESS_LOG_FORMAT = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "authority": "%REQ(:AUTHORITY)%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "route_name": "%ROUTE_NAME%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_host": "%UPSTREAM_HOST%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "duration": "%DURATION%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "attempt_count": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "grpc_status": "%GRPC_STATUS%",
    "config_version": f"%RESP({CONFIG_VERSION_HEADER.upper()})%",
}
"""One JSON object per request: enough to explain a response (flags, attempts, which config served it)."""


def translate_listener(port: int, access_log_path: str | None, proxy_100_continue: bool = False) -> Resource:
    """The listener for service port ``port``; identical for every config version. ``proxy_100_continue``:
    the release passes ``100 Continue`` through (``Behaviour.proxy_100_continue``, 1.23+)."""
    return {
        "name": names.listener(port),
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "traffic_direction": "OUTBOUND",
        "filter_chains": [
            {"filters": [{"name": names.FILTER_HCM, "typed_config": _connection_manager(port, access_log_path, proxy_100_continue)}]}
        ],
    }


def _connection_manager(port: int, access_log_path: str | None, proxy_100_continue: bool) -> Resource:
    hcm: Resource = {
        "@type": names.TYPE_HCM,
        "stat_prefix": names.hcm_stat_prefix(port),
        "codec_type": "AUTO",
        "rds": {"route_config_name": names.route_config(port), "config_source": ads_config_source()},
        "http_filters": [
            {"name": names.FILTER_FAULT, "typed_config": {"@type": names.TYPE_FAULT}},
            {"name": names.FILTER_CORS, "typed_config": {"@type": names.TYPE_CORS}},
            {"name": names.FILTER_ROUTER, "typed_config": {"@type": names.TYPE_ROUTER}},
        ],
        "use_remote_address": False,
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "stream_idle_timeout": "0s",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "request_id_extension": {
            "typed_config": {"@type": names.TYPE_UUID_REQUEST_ID, "use_request_id_for_trace_sampling": True}
        },
        "server_header_transformation": "OVERWRITE",
    }
    if proxy_100_continue:
        hcm["proxy_100_continue"] = True
    if access_log_path is not None:
        hcm["access_log"] = [
            {
                "name": names.ACCESS_LOG_FILE,
                "typed_config": {
                    "@type": names.TYPE_FILE_ACCESS_LOG,
                    "path": access_log_path,
                    "log_format": {"json_format": dict(ACCESS_LOG_FORMAT)},
                },
            }
        ]
    return hcm
