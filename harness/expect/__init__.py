"""The ``expect`` vocabulary: one small constructor per key, each building what a judge needs.

Public API (the modules behind it each hold one family of keys):

* ``base``: ``Expectation`` (a per-request property, every request or a split), ``Sample``.
* ``response``: ``version``, ``status``, ``grpc_status``, ``flags``, ``header``.
* ``upstream``: ``upstream`` (path, host, method the app received; its headers are ``header(..., upstream=True)``).
* ``latency``: ``latency_range``, ``latency_split``, ``latency_quantile``.
* ``applog``: ``attempts``, ``mirror``, ``received_none`` (joined to app logs by request id).
* ``aggregate``: ``StatsExpectation``, ``SameInstanceExpectation``, ``InstancesExpectation``, ``NoClaim``
  (``expect: none``).
* ``where``: ``Where`` (an every-response expectation on the responses that match a filter).
* ``schema``: ``ExpectModel`` and ``WhereModel`` (the YAML schema), ``parse_expectations`` and
  ``parse_where``, and what a send must ask the mesh for (``needs_of``, ``captured_headers``).
"""

from harness.expect.aggregate import (
    InstancesExpectation,
    NoClaim,
    SameInstanceExpectation,
    StatsExpectation,
)
from harness.expect.applog import attempts, mirror, received_none
from harness.expect.base import (
    ABSENT,
    NO_RESPONSE,
    NO_VERSION,
    Expectation,
    Need,
    Sample,
)
from harness.expect.latency import (
    QuantileExpectation,
    latency_quantile,
    latency_range,
    latency_split,
)
from harness.expect.response import flags, grpc_status, header, status, version
from harness.expect.schema import (
    AnyExpectation,
    ExpectModel,
    WhereModel,
    captured_headers,
    is_statistical,
    needs_of,
    parse_expectations,
    parse_where,
    with_timer_tick,
)
from harness.expect.upstream import upstream
from harness.expect.where import Where

__all__ = [
    "ABSENT",
    "NO_RESPONSE",
    "NO_VERSION",
    "AnyExpectation",
    "ExpectModel",
    "Expectation",
    "InstancesExpectation",
    "Need",
    "NoClaim",
    "QuantileExpectation",
    "SameInstanceExpectation",
    "Sample",
    "StatsExpectation",
    "Where",
    "WhereModel",
    "attempts",
    "captured_headers",
    "flags",
    "grpc_status",
    "header",
    "is_statistical",
    "latency_quantile",
    "latency_range",
    "latency_split",
    "mirror",
    "needs_of",
    "parse_expectations",
    "parse_where",
    "received_none",
    "status",
    "upstream",
    "version",
    "with_timer_tick",
]
