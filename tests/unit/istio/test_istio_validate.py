"""istiod's validation rules: for each, an example that passes and one that fails with the right path."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from harness.istio.load import load_object, load_objects
from harness.istio.model import IstioObject
from harness.istio.validate import Findings, validate_objects
from harness.yamlsource import load_documents

ROUTE = "route: [{destination: {host: reviews, subset: v1}}]"


def vs_findings(http: str, extra: str = "") -> Findings:
    """Findings for a VirtualService ``reviews`` with one http rule given as YAML flow mapping."""
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n"
        f"spec:\n  hosts: [reviews]\n  http:\n  - {http}\n{extra}"
    )
    return validate_objects([load_object(load_documents(text, "vs.yaml")[0])])


def dr_findings(spec: dict[str, Any]) -> Findings:
    body = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews"},
            "spec": {"host": "reviews", **spec}}
    return validate_objects([load_object(load_documents(yaml.safe_dump(body), "dr.yaml")[0])])


def paths(issues: list[Any]) -> list[str]:
    return [i.path for i in issues]


# (name, passing http rule, failing http rule, path of the error, words in the message)
VS_RULES = [
    ("weight negative", "{route: [{destination: {host: reviews}, weight: 0}]}",
     "{route: [{destination: {host: reviews}, weight: -1}, {destination: {host: reviews}, weight: 5}]}",
     "spec.http[0].route[0].weight", "must not be negative"),
    ("weight sum zero", "{route: [{destination: {host: a}, weight: 1}, {destination: {host: b}, weight: 0}]}",
     "{route: [{destination: {host: a}, weight: 0}, {destination: {host: b}, weight: 0}]}",
     "spec.http[0].route", "sum to more than 0"),
    ("route and redirect", "{redirect: {uri: /x}}", f"{{{ROUTE}, redirect: {{uri: /x}}}}",
     "spec.http[0].redirect", "cannot be combined with route"),
    ("route and directResponse", "{directResponse: {status: 503}}", f"{{{ROUTE}, directResponse: {{status: 503}}}}",
     "spec.http[0].directResponse", "cannot be combined with route"),
    ("no action", "{delegate: {name: child}}", "{timeout: 1s}", "spec.http[0]", "needs route, redirect"),
    ("fault percentage", f"{{{ROUTE}, fault: {{abort: {{httpStatus: 503, percentage: {{value: 100}}}}}}}}",
     f"{{{ROUTE}, fault: {{abort: {{httpStatus: 503, percentage: {{value: 100.5}}}}}}}}",
     "spec.http[0].fault.abort.percentage.value", "between 0 and 100"),
    ("delay percentage", f"{{{ROUTE}, fault: {{delay: {{fixedDelay: 1s, percentage: {{value: 0}}}}}}}}",
     f"{{{ROUTE}, fault: {{delay: {{fixedDelay: 1s, percentage: {{value: -1}}}}}}}}",
     "spec.http[0].fault.delay.percentage.value", "between 0 and 100"),
    ("abort status low", f"{{{ROUTE}, fault: {{abort: {{httpStatus: 200}}}}}}",
     f"{{{ROUTE}, fault: {{abort: {{httpStatus: 199}}}}}}", "spec.http[0].fault.abort.httpStatus", "[200, 600)"),
    ("abort status high", f"{{{ROUTE}, fault: {{abort: {{httpStatus: 599}}}}}}",
     f"{{{ROUTE}, fault: {{abort: {{httpStatus: 600}}}}}}", "spec.http[0].fault.abort.httpStatus", "[200, 600)"),
    ("empty fault", f"{{{ROUTE}, fault: {{delay: {{fixedDelay: 1s}}}}}}", f"{{{ROUTE}, fault: {{}}}}",
     "spec.http[0].fault", "abort and/or a delay"),
    ("grpc status", f"{{{ROUTE}, fault: {{abort: {{grpcStatus: UNAVAILABLE}}}}}}",
     f"{{{ROUTE}, fault: {{abort: {{grpcStatus: UNAVAILBLE}}}}}}", "spec.http[0].fault.abort.grpcStatus",
     "unknown gRPC status"),
    ("mirrorPercentage", f"{{{ROUTE}, mirror: {{host: reviews, subset: v2}}, mirrorPercentage: {{value: 100}}}}",
     f"{{{ROUTE}, mirror: {{host: reviews, subset: v2}}, mirrorPercentage: {{value: 150}}}}",
     "spec.http[0].mirrorPercentage.value", "between 0 and 100"),
    ("mirrors percentage", f"{{{ROUTE}, mirrors: [{{destination: {{host: r}}, percentage: {{value: 0}}}}]}}",
     f"{{{ROUTE}, mirrors: [{{destination: {{host: r}}, percentage: {{value: 101}}}}]}}",
     "spec.http[0].mirrors[0].percentage.value", "between 0 and 100"),
    ("mirror and mirrors", f"{{{ROUTE}, mirror: {{host: r}}}}",
     f"{{{ROUTE}, mirror: {{host: r}}, mirrors: [{{destination: {{host: r}}}}]}}",
     "spec.http[0].mirrors", "cannot be combined with mirror"),
    ("timeout below 1ms", f"{{{ROUTE}, timeout: 1ms}}", f"{{{ROUTE}, timeout: 0s}}",
     "spec.http[0].timeout", "at least 1ms"),
    ("timeout precision", f"{{{ROUTE}, timeout: 1.5s}}", f"{{{ROUTE}, timeout: 1500100us}}",
     "spec.http[0].timeout", "millisecond precision"),
    ("fixed delay below 1ms", f"{{{ROUTE}, fault: {{delay: {{fixedDelay: 5ms}}}}}}",
     f"{{{ROUTE}, fault: {{delay: {{fixedDelay: 100us}}}}}}", "spec.http[0].fault.delay.fixedDelay", "at least 1ms"),
    ("retries negative", f"{{{ROUTE}, retries: {{attempts: 0}}}}", f"{{{ROUTE}, retries: {{attempts: -1}}}}",
     "spec.http[0].retries.attempts", "must not be negative"),
    ("retries disabled but configured", f"{{{ROUTE}, retries: {{attempts: 2, perTryTimeout: 1s}}}}",
     f"{{{ROUTE}, retries: {{attempts: 0, perTryTimeout: 1s}}}}", "spec.http[0].retries.attempts",
     "attempts is 0"),
    ("retryOn token", f"{{{ROUTE}, retries: {{attempts: 2, retryOn: '5xx,503,reset'}}}}",
     f"{{{ROUTE}, retries: {{attempts: 2, retryOn: '5xx,bogus'}}}}", "spec.http[0].retries.retryOn",
     "not a valid retryOn policy"),
    ("redirect code", "{redirect: {uri: /x, redirectCode: 302}}", "{redirect: {uri: /x, redirectCode: 200}}",
     "spec.http[0].redirect.redirectCode", "3xx"),
    ("redirect empty", "{redirect: {authority: example.com}}", "{redirect: {redirectCode: 301}}",
     "spec.http[0].redirect", "must set uri, authority"),
    ("direct response status", "{directResponse: {status: 404}}", "{directResponse: {status: 100}}",
     "spec.http[0].directResponse.status", "[200, 600)"),
    ("redirect with fault", "{redirect: {uri: /x}}", "{redirect: {uri: /x}, fault: {abort: {httpStatus: 500}}}",
     "spec.http[0].fault", "cannot be combined with redirect"),
    ("rewrite empty", f"{{{ROUTE}, rewrite: {{authority: a}}}}", f"{{{ROUTE}, rewrite: {{}}}}",
     "spec.http[0].rewrite", "must set uri"),
    ("match port", f"{{match: [{{port: 9080}}], {ROUTE}}}", f"{{match: [{{port: 70000}}], {ROUTE}}}",
     "spec.http[0].match[0].port", "between 1 and 65535"),
    ("destination subset name", "{route: [{destination: {host: r, subset: v1-beta}}]}",
     "{route: [{destination: {host: r, subset: V1_beta}}]}", "spec.http[0].route[0].destination.subset",
     "DNS-1123 label"),
    # istiod's header rules for a rule's own headers (found by the builtin-vs-istiod differential test)
    ("authority set twice", f"{{{ROUTE}, rewrite: {{authority: a}}, headers: {{request: {{set: {{x-a: b}}}}}}}}",
     f"{{{ROUTE}, rewrite: {{authority: a}}, headers: {{request: {{set: {{Host: b}}}}}}}}",
     "spec.http[0].headers.request.set.Host", "set in more than one place (rewrite.authority and"),
    ("authority set and added", f"{{{ROUTE}, headers: {{request: {{set: {{':authority': a}}}}}}}}",
     f"{{{ROUTE}, headers: {{request: {{set: {{':authority': a}}, add: {{host: b}}}}}}}}",
     "spec.http[0].headers.request.add.host", "set in more than one place"),
    ("pseudo-header set", f"{{{ROUTE}, headers: {{request: {{set: {{':authority': a}}}}}}}}",
     f"{{{ROUTE}, headers: {{request: {{set: {{':path': /x}}}}}}}}",
     "spec.http[0].headers.request.set.:path", 'cannot start with ":"'),
    ("host removed", f"{{{ROUTE}, headers: {{request: {{remove: [x-a]}}}}}}",
     f"{{{ROUTE}, headers: {{request: {{remove: [x-a, HOST]}}}}}}",
     "spec.http[0].headers.request.remove[1]", "Host header cannot be changed here"),
    ("response host set", f"{{{ROUTE}, headers: {{response: {{set: {{x-a: b}}}}}}}}",
     f"{{{ROUTE}, headers: {{response: {{set: {{host: b}}}}}}}}",
     "spec.http[0].headers.response.set.host", "Host header cannot be changed here"),
]


@pytest.mark.parametrize(("name", "good", "bad", "path", "words"), VS_RULES, ids=[r[0] for r in VS_RULES])
def test_validate_virtual_service_rule(name: str, good: str, bad: str, path: str, words: str) -> None:
    assert vs_findings(good).errors == []
    errors = vs_findings(bad).errors
    assert path in paths(errors), [str(e) for e in errors]
    assert any(words in e.message for e in errors if e.path == path), [str(e) for e in errors]


def test_validate_regexes_are_compiled_with_re2_as_istiod_does() -> None:
    assert paths(vs_findings(f"{{match: [{{uri: {{regex: '(unclosed'}}}}], {ROUTE}}}").errors) == ["spec.http[0].match[0].uri.regex"]
    assert vs_findings(f"{{match: [{{withoutHeaders: {{x: {{regex: '*'}}}}}}], {ROUTE}}}").errors == []


def test_validate_virtual_service_hosts() -> None:
    bad = validate_objects([load_object(load_documents(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
        "spec: {hosts: ['*', r, r]}\n", "vs.yaml")[0])])
    assert paths(bad.errors) == ["spec.hosts[0]", "spec.hosts[2]", "spec"]


# (name, passing spec, failing spec, path of the error, words in the message)
DR_RULES = [
    ("duplicate subsets", {"subsets": [{"name": "v1"}, {"name": "v2"}]},
     {"subsets": [{"name": "v1"}, {"name": "v1"}]}, "spec.subsets[1].name", "duplicate subset name"),
    ("subset name", {"subsets": [{"name": "canary-1"}]}, {"subsets": [{"name": "Canary"}]},
     "spec.subsets[0].name", "DNS-1123 label"),
    ("empty policy", {"trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}, {"trafficPolicy": {}},
     "spec.trafficPolicy", "at least one field"),
    ("max ejection percent", {"trafficPolicy": {"outlierDetection": {"maxEjectionPercent": 100}}},
     {"trafficPolicy": {"outlierDetection": {"maxEjectionPercent": 101}}},
     "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "between 0 and 100"),
    ("outlier interval", {"trafficPolicy": {"outlierDetection": {"interval": "10s"}}},
     {"trafficPolicy": {"outlierDetection": {"interval": "0s"}}},
     "spec.trafficPolicy.outlierDetection.interval", "at least 1ms"),
    ("local origin without split",
     {"trafficPolicy": {"outlierDetection": {"splitExternalLocalOriginErrors": True,
                                             "consecutiveLocalOriginFailures": 2}}},
     {"trafficPolicy": {"outlierDetection": {"consecutiveLocalOriginFailures": 2}}},
     "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures", "splitExternalLocalOriginErrors"),
    ("pool negative", {"trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 0}}}},
     {"trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": -1}}}},
     "spec.trafficPolicy.connectionPool.tcp.maxConnections", "must not be negative"),
    ("pool empty", {"trafficPolicy": {"connectionPool": {"http": {"maxRetries": 1}}}},
     {"trafficPolicy": {"connectionPool": {}}}, "spec.trafficPolicy.connectionPool", "tcp or http"),
    ("upgrade with client protocol",
     {"trafficPolicy": {"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE"}}}},
     {"trafficPolicy": {"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE", "useClientProtocol": True}}}},
     "spec.trafficPolicy.connectionPool.http.useClientProtocol", "UPGRADE"),
    ("maglev table", {"trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": True,
                                                                          "maglev": {"tableSize": 65537}}}}},
     {"trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 65536}}}}},
     "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", "prime"),
    ("port level port", {"trafficPolicy": {"portLevelSettings": [{"port": {"number": 9080},
                                                                   "loadBalancer": {"simple": "RANDOM"}}]}},
     {"trafficPolicy": {"portLevelSettings": [{"loadBalancer": {"simple": "RANDOM"}}]}},
     "spec.trafficPolicy.portLevelSettings[0]", "needs port"),
    ("subset policy", {"subsets": [{"name": "v1", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 1}}}}]},
     {"subsets": [{"name": "v1", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": -5}}}}]},
     "spec.subsets[0].trafficPolicy.connectionPool.tcp.maxConnections", "must not be negative"),
]


@pytest.mark.parametrize(("name", "good", "bad", "path", "words"), DR_RULES, ids=[r[0] for r in DR_RULES])
def test_validate_destination_rule_rule(name: str, good: dict[str, Any], bad: dict[str, Any], path: str,
                                        words: str) -> None:
    assert dr_findings(good).errors == []
    errors = dr_findings(bad).errors
    assert path in paths(errors), [str(e) for e in errors]
    assert any(words in e.message for e in errors if e.path == path), [str(e) for e in errors]


def test_validate_subset_without_labels_is_fine() -> None:
    assert dr_findings({"subsets": [{"name": "all"}]}) == Findings()


@pytest.mark.parametrize(
    ("findings", "path"),
    [
        (dr_findings({"trafficPolicy": {"outlierDetection": {"consecutiveErrors": 5}}}),
         "spec.trafficPolicy.outlierDetection.consecutiveErrors"),
        (dr_findings({"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}), "spec.trafficPolicy.tls"),
        (vs_findings(f"{{{ROUTE}, mirror: {{host: r}}, mirrorPercent: 50}}"), "spec.http[0].mirrorPercent"),
    ],
    ids=["consecutiveErrors", "dr tls", "mirrorPercent"],
)
def test_validate_warnings_are_accepted(findings: Findings, path: str) -> None:
    assert findings.errors == []
    assert paths(findings.warnings) == [path]


@pytest.mark.parametrize("export_to", [["."], ["*"], ["team"], [".", "team"], ["default", "team"]])
def test_validate_export_to_is_translated_so_accepted_without_a_warning(export_to: list[str]) -> None:
    assert dr_findings({"exportTo": export_to}) == Findings()
    assert vs_findings(ROUTE.join("{}"), extra=f"  exportTo: {export_to}\n") == Findings()


@pytest.mark.parametrize(
    ("export_to", "path", "words"),
    [
        (["default", "."], "spec.exportTo[1]", "duplicate entries in exportTo: . and current namespace default"),
        (["team", "team"], "spec.exportTo[1]", "duplicate entries in exportTo for entry"),
        (["~"], "spec.exportTo[0]", "exportTo ~ (none) is not allowed"),
        (["Team_1"], "spec.exportTo[0]", "valid DNS 1123 label"),
        (["*", "team"], "spec.exportTo", "cannot have both public (*) and non-public"),
    ],
)
def test_validate_export_to_errors_as_istiod(export_to: list[str], path: str, words: str) -> None:
    """``validateExportTo`` (pkg/config/validation/validation.go, istiod 1.30.3)."""
    findings = dr_findings({"exportTo": export_to})
    assert paths(findings.errors) == [path]
    assert words in findings.errors[0].message


def test_validate_collects_everything_and_flags_duplicate_objects() -> None:
    text = (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
        "spec: {host: r, subsets: [{name: a}, {name: a}], trafficPolicy: {tls: {mode: SIMPLE}}}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
        "spec: {host: r, trafficPolicy: {outlierDetection: {maxEjectionPercent: 200}}}\n"
    )
    findings = validate_objects(load_objects(load_documents(text, "dup.yaml")))
    assert paths(findings.errors) == [
        "spec.subsets[1].name",
        "metadata.name",
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
    ]
    assert [e.line for e in findings.errors] == [4, 8, 9]
    assert paths(findings.warnings) == ["spec.trafficPolicy.tls"]


def test_validate_warns_on_a_virtual_service_shadowed_by_an_older_one_for_the_same_host() -> None:
    def vs(name: str, stamp: str, host: str) -> IstioObject:
        return load_object(load_documents(f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, creationTimestamp: "{stamp}"}}
spec:
  hosts: [{host}]
  http: [{{route: [{{destination: {{host: reviews}}}}]}}]
""", "vs.yaml")[0])

    older, newer = vs("b-old", "2026-01-01T00:00:00Z", "reviews"), vs("a-new", "2026-02-01T00:00:00Z", "reviews.default.svc.cluster.local")
    findings = validate_objects([newer, older])
    assert findings.errors == []
    assert [(w.obj, w.path, w.message) for w in findings.warnings] == [(
        "VirtualService/a-new", "spec.hosts[0]",
        "ignored by sidecars for host reviews.default.svc.cluster.local: VirtualService/b-old also claims it "
        "and is older (istiod keeps the oldest VirtualService per host); merge the rules into one VirtualService",
    )]
    assert validate_objects([older, vs("c", "2026-03-01T00:00:00Z", "ratings")]).warnings == []
