"""The ingress-gateway and ServiceEntry cases catch a wrong mesh.

Each shipped check is run, through ``harness.runner.run_check`` exactly as ``mesh-harness run``
runs it, against a deliberately wrong config, and must fail. Every variant is deterministic: the
wrong config changes *every* request (no percentage, no weighted choice), so the first response is
already a counterexample and the verdict is ``fail`` with certainty (probability of a false pass 0).
Each entry says why in its ``why``; the test also asserts that the failing expectation is the one named.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.istio.model import IstioObject
from harness.mesh.local.mesh import LocalMesh
from tests.integration.broken import SUBSETS, Variant, load_check, run_broken

pytestmark = pytest.mark.envoy


def variant_id(v: Variant) -> str:
    return f"{v.case}:{v.check}:{v.fails}"


MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``

GATEWAY = """
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [bookinfo.example.com]}]
"""


def bookinfo_vs(gateways: str, subset: str) -> str:
    return f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bookinfo}}
spec:
  hosts: [bookinfo.example.com]
  gateways: {gateways}
  http: [{{route: [{{destination: {{host: reviews, subset: {subset}, port: {{number: 9080}}}}}}]}}]
"""


def service_entry(resolution: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api}}
spec:
  hosts: [api.example.com]
  resolution: {resolution}
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1}}]
"""


def api_vs(rules: str) -> str:
    return f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api}}
spec: {{hosts: [api.example.com], http: {rules}}}
"""


API = "[{destination: {host: api.example.com}}]"


VARIANTS = [
    Variant("ingress-gateway.yaml", "ingress-gateway", "the gateway routes its host by the bound VirtualService",
            SUBSETS + GATEWAY + bookinfo_vs("[bookinfo-gateway]", "v1"),
            "version", "the bound VirtualService sends everything to v1: every response is v1, not v2"),
    Variant("ingress-gateway.yaml", "ingress-gateway", "the gateway routes its host by the bound VirtualService",
            SUBSETS + GATEWAY + bookinfo_vs("[mesh]", "v2"),
            "status", "the VirtualService binds to sidecars, not the gateway: the gateway has no route for the "
            "host, every request gets 404 NR"),
    Variant("ingress-gateway.yaml", "ingress-gateway", "sidecars ignore the gateway's VirtualService",
            SUBSETS + GATEWAY + bookinfo_vs("[bookinfo-gateway]", "v2").replace(
                "hosts: [bookinfo.example.com]\n  gateways: [bookinfo-gateway]", "hosts: [reviews]\n  gateways: [mesh]"),
            "version", "a mesh VirtualService for reviews to v2 (as if the gateway's bound to sidecars too): "
            "every pod request reaches v2"),
    Variant("service-entry.yaml", "service-entry-static", "a fault on the external host",
            service_entry("STATIC") + api_vs(f"[{{route: {API}}}]"),
            "status", "no fault: every request reaches the external app and gets 200"),
    Variant("service-entry.yaml", "service-entry-static", "the external host is reached through the sidecar",
            service_entry("STATIC") + api_vs(f"[{{fault: {{abort: {{httpStatus: 503, percentage: {{value: 100}}}}}}, "
                                             f"route: {API}}}]"),
            "status", "the fault applies to every request (no match): every response is 503"),
    Variant("service-entry.yaml", "service-entry-dns-retries", "retries apply to the external host",
            service_entry("DNS") + api_vs(f"[{{retries: {{attempts: 0}}, route: {API}}}]"),
            "attempts", "retries disabled: every request reaches the app once"),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant_id(v) for v in VARIANTS])
def test_broken_variant_fails_with_certainty(clean_mesh: LocalMesh, make_objects: MakeObjects, variant: Variant) -> None:
    """The wrong config changes every request (``variant.why``): the first response is a counterexample."""
    case, check = load_check(variant.file, variant.case, variant.check)

    result = run_broken(clean_mesh, case, check, make_objects(variant.config))

    assert result.outcome == "fail", variant.why
    assert result.verdict is not None
    assert variant.fails in {e.field for e in result.verdict.evidence if e.outcome == "fail"}, variant.why
