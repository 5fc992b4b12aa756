"""Gateway and ServiceEntry: host intersection, refusals by path, istiod's validation, and the wiring.

The full translator output for both is pinned by the ``gateway-*`` and ``service-entry-*`` goldens;
these tests cover the rules around it.
"""

from __future__ import annotations

import pytest

from harness.errors import UnsupportedError
from harness.istio.load import load_objects
from harness.istio.model import IstioObject
from harness.istio.semantics import resolve_gateway_name
from harness.istio.validate import validate_objects
from harness.mesh.local.translate import TranslateInput, translate, translate_gateway, unsupported_issues
from harness.mesh.local.translate.gateway import _intersection, _subset_of
from harness.topology import INGRESS_GATEWAY, Service, ServicePort, Topology
from harness.yamlsource import load_documents

EXTERNAL = Topology(services=(Service("reviews"), Service("api", ("v1",), ports=(ServicePort("http", 80),), external=True)))


def objects(text: str) -> list[IstioObject]:
    return load_objects(load_documents(text, "case.yaml"))


def gateway(servers: str, selector: str = "{istio: ingressgateway}") -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec: {{selector: {selector}, servers: {servers}}}
"""


def service_entry(spec: str) -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: api}}\nspec: {spec}\n"


SE_OK = "{hosts: [api.example.com], resolution: STATIC, ports: [{number: 80, name: http, protocol: HTTP}], " \
        "endpoints: [{address: 127.0.0.1}]}"


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "*", True),
        ("a.example.com", "*.example.com", True),
        ("*.a.example.com", "*.example.com", True),
        ("*.example.com", "*.a.example.com", False),
        ("*", "a.example.com", False),
        ("example.com", "*.example.com", False),
        ("A.example.com", "a.EXAMPLE.com", True),
    ],
)
def test_translate_gateway_subset_of_truth_table(a: str, b: str, want: bool) -> None:
    assert _subset_of(a, b) is want


def test_translate_gateway_intersection_keeps_the_narrower_host_once() -> None:
    assert _intersection(["*"], ["a.example.com", "b.example.com"]) == ["a.example.com", "b.example.com"]
    assert _intersection(["*.example.com", "a.example.com"], ["*"]) == ["*.example.com", "a.example.com"]
    assert _intersection(["bookinfo.example.com"], ["other.example.com"]) == []


@pytest.mark.parametrize(
    ("name", "want"),
    [("mesh", "mesh"), ("gw", "default/gw"), ("istio-system/gw", "istio-system/gw"), ("gw.other.svc.cluster.local", "other/gw")],
)
def test_translate_gateway_resolves_gateway_names_like_istiod(name: str, want: str) -> None:
    assert resolve_gateway_name(name, "default") == want


def test_translate_gateway_refuses_what_it_does_not_build_by_path() -> None:
    servers = "[{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE}, bind: 1.2.3.4}]"
    assert [(i.path, i.message) for i in unsupported_issues(objects(gateway(servers)))] == [
        ("spec.servers[0].bind", "not supported by the local mesh yet; run with --mesh kind"),
        ("spec.servers[0].tls", "not supported by the local mesh yet; run with --mesh kind"),
        ("spec.servers[0].port.protocol",
         "HTTPS servers are not supported by the local mesh yet; run with --mesh kind (plain-text HTTP, HTTP2, GRPC only)"),
    ]


def test_translate_service_entry_refuses_non_local_endpoints_and_other_resolutions() -> None:
    spec = ("{hosts: [api.example.com], resolution: DNS_ROUND_ROBIN, location: MESH_INTERNAL, "
            "ports: [{number: 80, name: http, protocol: TCP}], endpoints: [{address: api.internal, weight: 2}]}")
    paths = [i.path for i in unsupported_issues(objects(service_entry(spec)))]
    assert paths == ["spec.location", "spec.resolution", "spec.ports[0].protocol", "spec.endpoints[0].address",
                     "spec.endpoints[0].weight"]


def test_translate_service_entry_host_needs_an_external_app_with_its_port() -> None:
    inp = TranslateInput(EXTERNAL, EXTERNAL.clients[0], {}, objects(service_entry(SE_OK.replace("api.", "web."))), 1)
    with pytest.raises(UnsupportedError) as refused:
        translate(inp)
    (issue,) = refused.value.issues
    assert issue.path == "spec.hosts[0]" and "no external app 'web'" in issue.message and "external: true" in issue.message

    inp = TranslateInput(EXTERNAL, EXTERNAL.clients[0], {}, objects(service_entry(SE_OK.replace("80", "8080"))), 1)
    with pytest.raises(UnsupportedError) as refused:
        translate(inp)
    assert [i.path for i in refused.value.issues] == ["spec.ports[0].number"]


def test_translate_gateway_selector_decides_which_gateways_apply() -> None:
    servers = "[{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]"
    for selector, listeners in (("{istio: ingressgateway}", ["0.0.0.0_80"]), ("{}", ["0.0.0.0_80"]),
                                ("{istio: egressgateway}", [])):
        inp = TranslateInput(EXTERNAL, INGRESS_GATEWAY, {}, objects(gateway(servers, selector)), 1)
        assert [listener["name"] for listener in translate_gateway(inp).listeners] == listeners, selector


def test_translate_gateway_vs_with_wildcard_host_is_for_gateways_only() -> None:
    vs = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
          "spec: {hosts: ['*'], gateways: [gw], http: [{route: [{destination: {host: reviews}}]}]}\n")
    assert unsupported_issues(objects(vs)) == []
    assert [i.path for i in unsupported_issues(objects(vs.replace("[gw]", "[gw, mesh]")))] == ["spec.hosts[0]"]


def test_validate_gateway_and_service_entry_like_istiod() -> None:
    bad = gateway("[{port: {number: 80, name: http, protocol: HTTPX}, hosts: []}, "
                  "{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['a/b/c']}]")
    bad += "---\n" + service_entry("{hosts: ['*'], resolution: STATIC, ports: [{number: 80, name: http}, "
                                   "{number: 80, name: http}], endpoints: [{address: not-an-ip}]}")
    errors = [(i.obj, i.path) for i in validate_objects(objects(bad)).errors]
    assert errors == [
        ("Gateway/gw", "spec.servers[0].hosts"),
        ("Gateway/gw", "spec.servers[0].port.protocol"),
        ("Gateway/gw", "spec.servers[1].hosts[0]"),
        ("Gateway/gw", "spec.servers[1].tls"),
        ("ServiceEntry/api", "spec.hosts[0]"),
        ("ServiceEntry/api", "spec.ports[1].number"),
        ("ServiceEntry/api", "spec.ports[1].name"),
        ("ServiceEntry/api", "spec.endpoints[0].address"),
    ]
    assert validate_objects(objects(service_entry(SE_OK))).errors == []
