"""Every field the local mesh does not translate is refused with its path; supported ones are not."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import Issue, UnsupportedError
from harness.istio.model import DestinationRule, IstioObject, Source, VirtualService
from harness.mesh.local.translate import TranslateInput, translate, unsupported_issues
from harness.mesh.local.translate.support import DELEGATE_NOT_YET
from harness.mesh.local.translate.versions import behaviour_for
from harness.topology import DEFAULT_TOPOLOGY

NOT_YET = "not supported by the local mesh yet; run with --mesh kind"
ROUTE = [{"destination": {"host": "reviews"}}]


def vs(spec: dict[str, Any]) -> VirtualService:
    return VirtualService.model_validate(
        {
            "apiVersion": "networking.istio.io/v1",
            "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], **spec},
        }
    )


def dr(spec: dict[str, Any]) -> DestinationRule:
    return DestinationRule.model_validate(
        {"apiVersion": "networking.istio.io/v1", "metadata": {"name": "reviews"}, "spec": {"host": "reviews", **spec}}
    )


def paths(obj: IstioObject) -> list[str | None]:
    return [i.path for i in unsupported_issues([obj])]


def test_translate_support_refuses_delegate() -> None:
    (issue,) = unsupported_issues([vs({"http": [{"delegate": {"name": "d"}}]})])
    assert issue.path == "spec.http[0].delegate"
    assert issue.message == DELEGATE_NOT_YET
    assert "--mesh kind" in issue.message


def test_translate_support_accepts_every_route_policy() -> None:
    obj = vs(
        {
            "http": [
                {
                    "route": [{"destination": {"host": "reviews"}, "headers": {"request": {"set": {"a": "b"}}}}],
                    "fault": {"abort": {"httpStatus": 503}},
                    "retries": {"attempts": 3},
                    "mirror": {"host": "reviews"},
                    "mirrorPercentage": {"value": 5},
                    "rewrite": {"uri": "/x"},
                    "corsPolicy": {"allowMethods": ["GET"]},
                    "headers": {"response": {"remove": ["a"]}},
                },
                {"route": ROUTE, "mirrors": [{"destination": {"host": "reviews"}}], "mirrorPercent": 5},
                {"redirect": {"uri": "/x"}},
                {"directResponse": {"status": 200}},
            ]
        }
    )
    assert paths(obj) == []


def test_translate_support_refuses_redirect_prefix_rewrite_before_1_31() -> None:
    obj = vs({"http": [{"redirect": {"prefixRewrite": "/new"}}]})
    assert unsupported_issues([obj], behaviour_for("1.31")) == []
    assert paths(obj) == []  # without a release, only release-independent checks run
    (issue,) = unsupported_issues([obj], behaviour_for("1.30"))
    assert issue.path == "spec.http[0].redirect.prefixRewrite"
    assert issue.message == (
        "exists only from Istio 1.31 on, and this mesh emulates an older release; "
        "use uri, or emulate Istio 1.31 or later (--istio-version)"
    )


def test_translate_support_refuses_vs_level_fields() -> None:
    obj = vs(
        {
            "hosts": ["*.example.com"],
            "gateways": ["mesh", "my-gw"],
            "tcp": [{"route": []}],
            "http": [
                {
                    "match": [{"gateways": ["my-gw"], "headers": {"@request.auth.claims.sub": {"exact": "x"}}}],
                    "route": [{"destination": {"host": "reviews"}}],
                }
            ],
        }
    )
    assert paths(obj) == [
        "spec.tcp",
        "spec.hosts[0]",  # a wildcard host, refused on sidecars (the VS binds to mesh too)
        "spec.http[0].match[0].headers.@request.auth.claims.sub",
    ]


def test_translate_support_accepts_traffic_policies_but_not_tunnel_or_proxy_protocol() -> None:
    translated = {
        "tls": {"mode": "DISABLE"},
        "connectionPool": {"tcp": {"maxConnections": 1}},
        "outlierDetection": {"consecutive5xxErrors": 1},
        "loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": {"enabled": True}},
        "retryBudget": {"percent": 10},
        "portLevelSettings": [{"port": {"number": 9080}, "connectionPool": {"http": {"maxRetries": 1}}}],
    }
    obj = dr(
        {
            "trafficPolicy": {**translated, "proxyProtocol": {"version": "V1"}},
            "subsets": [{"name": "v1", "trafficPolicy": {"tunnel": {"targetHost": "h", "targetPort": 1}}}],
            "workloadSelector": {"matchLabels": {"app": "client"}},
            "exportTo": ["."],
        }
    )
    assert paths(obj) == [
        "spec.workloadSelector",
        "spec.trafficPolicy.proxyProtocol",
        "spec.subsets[0].trafficPolicy.tunnel",
    ]
    assert paths(dr({"trafficPolicy": translated, "subsets": [{"name": "v1", "trafficPolicy": translated}]})) == []


def test_translate_support_refuses_what_the_local_mesh_cannot_reproduce_with_the_reason() -> None:
    no_local = {
        "loadBalancer": {
            "simple": "PASSTHROUGH",
            "localityLbSetting": {"distribute": [{"from": "a/*", "to": {"b/*": 100}}], "failover": [{"from": "a"}],
                                  "failoverPriority": ["topology.kubernetes.io/zone"]},
        }
    }
    not_in_1_30 = {
        "loadBalancer": {"zoneAwareLbSetting": {"enabled": True}},
        "connectionPool": {"http": {"http2KeepAlive": {"interval": "1s"}}},
        "outlierDetection": {"outlierDetectionHttpErrorCodes": [500]},
    }
    obj = dr({"trafficPolicy": {**no_local, "portLevelSettings": [{"port": {"number": 9080}, **not_in_1_30}]}})
    issues = unsupported_issues([obj])
    lb = "spec.trafficPolicy.loadBalancer"
    port = "spec.trafficPolicy.portLevelSettings[0]"
    assert [i.path for i in issues] == [
        f"{lb}.simple",
        f"{lb}.localityLbSetting.distribute",
        f"{lb}.localityLbSetting.failover",
        f"{lb}.localityLbSetting.failoverPriority",
        f"{port}.loadBalancer.zoneAwareLbSetting",
        f"{port}.connectionPool.http.http2KeepAlive",
        f"{port}.outlierDetection.outlierDetectionHttpErrorCodes",
    ]
    assert issues[0].message == (
        "PASSTHROUGH sends to the original destination address, which the local mesh does not have (no "
        "iptables); run with --mesh kind"
    )
    assert issues[1].message == (
        "not reproduced by the local mesh: every local endpoint shares one locality, so only 'enabled' (a no-op "
        "there) is supported; run with --mesh kind"
    )
    assert {i.message for i in issues[4:]} == {NOT_YET}


def test_translate_support_accepts_what_is_translated() -> None:
    obj = vs(
        {
            "gateways": ["mesh"],
            "exportTo": ["."],
            "http": [
                {
                    "name": "r",
                    "timeout": "1s",
                    "match": [{"uri": {"prefix": "/"}, "headers": {"a": {}}, "sourceLabels": {"app": "x"}, "port": 80}],
                    "route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 100}],
                }
            ],
        }
    )
    assert (
        unsupported_issues([obj, dr({"subsets": [{"name": "v1"}], "trafficPolicy": {"tls": {"mode": "DISABLE"}}})])
        == []
    )


def test_translate_support_issue_names_file_line_object_and_fix() -> None:
    obj = vs({"http": [{"route": ROUTE}], "tcp": [{"route": []}]}).model_copy(
        update={"source": Source(file="cases/f.yaml", line=12)}
    )
    (issue,) = unsupported_issues([obj])
    assert issue == Issue(NOT_YET, file="cases/f.yaml", line=12, obj="VirtualService/reviews", path="spec.tcp")
    assert str(issue) == f"cases/f.yaml:12: VirtualService/reviews: spec.tcp: {NOT_YET}"


def test_translate_refuses_unsupported_input_with_every_issue() -> None:
    objects = [vs({"http": [{"delegate": {"name": "d"}}, {"redirect": {"prefixRewrite": "/p"}}], "tls": [{}]})]
    inp = TranslateInput(DEFAULT_TOPOLOGY, DEFAULT_TOPOLOGY.clients[0], {}, objects, 1, istio_version="1.30")
    with pytest.raises(UnsupportedError) as info:
        translate(inp)
    assert [i.path for i in info.value.issues] == [
        "spec.tls",
        "spec.http[0].delegate",
        "spec.http[1].redirect.prefixRewrite",
    ]
