"""One vocabulary for what the echo app says, shared by the app that writes it and the harness that reads it.

Istio's echo app re-parses ``Key=value`` text with regexes; we keep its idea of shared names but
send them as headers and JSON fields.
"""

# Response headers every echo reply carries: who answered.
SERVICE_HEADER = "x-echo-service"
VERSION_HEADER = "x-echo-version"
INSTANCE_HEADER = "x-echo-instance"

# Response header that the local mesh's routes stamp with the config version that served the request.
CONFIG_VERSION_HEADER = "x-mesh-harness-config-version"

# Request id header Envoy generates or propagates; the join key between callers and app logs.
REQUEST_ID_HEADER = "x-request-id"

# Per-request behaviour knobs, as request headers (or the same names as query parameters without the prefix).
KNOB_STATUS = "x-echo-status"  # "503" or "500:0.3,200:0.7": status codes with probabilities
KNOB_DELAY = "x-echo-delay"  # "250ms", "1.5s": sleep before answering
KNOB_FAIL_FIRST = "x-echo-fail-first"  # "N" or "N:CODE": fail the first N attempts of this request id
KNOB_GRPC_STATUS = "x-echo-grpc-status"  # "UNAVAILABLE" or "14": gRPC status to answer with

# Trace headers the app echoes back as response headers when present on the request.
TRACE_HEADERS = ("x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "b3")

# Knob query parameters are the knob header names without this prefix (``?status=503``).
KNOB_PREFIX = "x-echo-"
