"""Shared builders for the load tests: cases from YAML text, and records in a chosen version pattern."""

from __future__ import annotations

from collections.abc import Sequence

from harness.case import Case, load_case
from harness.locust.wire import Record
from harness.yamlsource import load_documents

CANARY = """\
name: canary
config:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http:
        - route:
            - {destination: {host: reviews, subset: v1}, weight: 90}
            - {destination: {host: reviews, subset: v2}, weight: 10}
checks:
  - name: split
    send: {url: "http://reviews:9080/a?x=1", headers: {x-user: jason}, headers_cycle: {x-key: [a, b]}}
    expect: {version: {v1: 0.9, v2: 0.1}, status: 200, headers: {location: null}}
"""


def make_case(text: str = CANARY, file: str = "load.yaml") -> Case:
    return load_case(load_documents(text, file)[0])


def make_records(versions: Sequence[str | None], *, check: int = 0, status: int = 200, config_version: str | None = "7",
                 latency_s: float = 0.01) -> list[Record]:
    """One record per entry (None: Envoy answered itself), sent 1 ms apart."""
    return [
        Record(check=check, started=1000.0 + i / 1000, latency_s=latency_s, status=status if v else 503,
               request_id=f"r{i}", service="reviews" if v else None, version=v, instance=f"reviews-{v}-0" if v else None,
               config_version=config_version)
        for i, v in enumerate(versions)
    ]


def canary_pattern(n: int) -> list[str | None]:
    """Exactly 90/10 in every block of ten: v2 at every tenth request."""
    return ["v2" if i % 10 == 9 else "v1" for i in range(n)]
