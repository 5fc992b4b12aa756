"""Every field the local mesh does not translate is refused with its path; supported ones are not."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import Issue, UnsupportedError
from harness.istio.model import DestinationRule, IstioObject, Source, VirtualService
from harness.mesh.local.translate import TranslateInput, translate, unsupported_issues
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


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"fault": {"abort": {"httpStatus": 503}}}, "spec.http[0].fault"),
        ({"retries": {"attempts": 3}}, "spec.http[0].retries"),
        ({"mirror": {"host": "reviews"}}, "spec.http[0].mirror"),
        ({"mirrors": [{"destination": {"host": "reviews"}}]}, "spec.http[0].mirrors"),
        ({"mirrorPercentage": {"value": 5}}, "spec.http[0].mirrorPercentage"),
        ({"mirrorPercent": 5}, "spec.http[0].mirrorPercent"),
        ({"rewrite": {"uri": "/x"}}, "spec.http[0].rewrite"),
        ({"corsPolicy": {"allowMethods": ["GET"]}}, "spec.http[0].corsPolicy"),
        ({"headers": {"request": {"set": {"a": "b"}}}}, "spec.http[0].headers"),
        ({"delegate": {"name": "d"}}, "spec.http[0].delegate"),
    ],
)
def test_translate_support_refuses_route_fields(rule: dict[str, Any], path: str) -> None:
    assert paths(vs({"http": [{"route": ROUTE, **rule}]})) == [path]


def test_translate_support_refuses_redirect_and_direct_response() -> None:
    got = paths(vs({"http": [{"redirect": {"uri": "/x"}}, {"directResponse": {"status": 200}}]}))
    assert got == ["spec.http[0].redirect", "spec.http[1].directResponse"]


def test_translate_support_refuses_vs_level_fields() -> None:
    obj = vs(
        {
            "hosts": ["*.example.com"],
            "gateways": ["mesh", "my-gw"],
            "tcp": [{"route": []}],
            "http": [
                {
                    "match": [{"gateways": ["my-gw"], "headers": {"@request.auth.claims.sub": {"exact": "x"}}}],
                    "route": [{"destination": {"host": "reviews"}, "headers": {"response": {"remove": ["a"]}}}],
                }
            ],
        }
    )
    assert paths(obj) == [
        "spec.tcp",
        "spec.hosts[0]",
        "spec.gateways[1]",
        "spec.http[0].route[0].headers",
        "spec.http[0].match[0].gateways[0]",
        "spec.http[0].match[0].headers.@request.auth.claims.sub",
    ]


def test_translate_support_refuses_traffic_policies_but_not_tls() -> None:
    obj = dr(
        {
            "trafficPolicy": {
                "tls": {"mode": "DISABLE"},
                "connectionPool": {"tcp": {"maxConnections": 1}},
                "outlierDetection": {"consecutive5xxErrors": 1},
                "loadBalancer": {"simple": "ROUND_ROBIN"},
                "portLevelSettings": [{"port": {"number": 9080}}],
            },
            "subsets": [{"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"connectionPool": {}}}],
            "workloadSelector": {"matchLabels": {"app": "client"}},
            "exportTo": ["."],
        }
    )
    assert paths(obj) == [
        "spec.workloadSelector",
        "spec.trafficPolicy.loadBalancer",
        "spec.trafficPolicy.connectionPool",
        "spec.trafficPolicy.outlierDetection",
        "spec.trafficPolicy.portLevelSettings",
        "spec.subsets[0].trafficPolicy.connectionPool",
    ]


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
    obj = vs({"http": [{"route": ROUTE, "fault": {"abort": {"httpStatus": 503}}}]}).model_copy(
        update={"source": Source(file="cases/f.yaml", line=12)}
    )
    (issue,) = unsupported_issues([obj])
    assert issue == Issue(
        NOT_YET, file="cases/f.yaml", line=12, obj="VirtualService/reviews", path="spec.http[0].fault"
    )
    assert str(issue) == f"cases/f.yaml:12: VirtualService/reviews: spec.http[0].fault: {NOT_YET}"


def test_translate_refuses_unsupported_input_with_every_issue() -> None:
    objects = [vs({"http": [{"route": ROUTE, "fault": {}, "retries": {"attempts": 1}}]})]
    inp = TranslateInput(DEFAULT_TOPOLOGY, DEFAULT_TOPOLOGY.clients[0], {}, objects, 1)
    with pytest.raises(UnsupportedError) as info:
        translate(inp)
    assert [i.path for i in info.value.issues] == ["spec.http[0].retries", "spec.http[0].fault"]
