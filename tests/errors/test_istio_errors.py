"""Pinned user-facing messages of the Istio loader and validator (file:line: Kind/name: path: message)."""

from __future__ import annotations

import pytest

from harness.errors import ValidationError
from harness.istio.load import load_objects
from harness.istio.validate import validate_objects
from harness.yamlsource import load_documents

HEAD = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n"


def load_errors(text: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_objects(load_documents(text, "case.yaml"))
    return [str(i) for i in info.value.issues]


def validation_messages(text: str) -> tuple[list[str], list[str]]:
    findings = validate_objects(load_objects(load_documents(text, "case.yaml")))
    return [str(i) for i in findings.errors], [str(i) for i in findings.warnings]


def test_error_unknown_field_suggests_closest() -> None:
    text = HEAD + "  http:\n  - route: [{destination: {host: reviews}}]\n    mirrorPercentge: {value: 50}\n"
    assert load_errors(text) == [
        "case.yaml:8: VirtualService/reviews: spec.http[0].mirrorPercentge: unknown field; did you mean mirrorPercentage?"
    ]


def test_error_unknown_field_without_close_match_lists_known() -> None:
    text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: r}\nzzz: 1\n"
    assert load_errors(text) == [
        "case.yaml:5: DestinationRule/r: zzz: unknown field; known fields here: apiVersion, kind, metadata, spec"
    ]


def test_error_wrong_type_says_what_was_expected() -> None:
    text = HEAD + "  http:\n  - route:\n    - destination: {host: reviews}\n      weight: ninety\n"
    assert load_errors(text) == [
        'case.yaml:9: VirtualService/reviews: spec.http[0].route[0].weight: expected an integer, got "ninety"'
    ]


def test_error_string_expected_suggests_quoting() -> None:
    text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n" \
           "spec:\n  host: r\n  subsets:\n  - name: v1\n    labels: {version: 1}\n"
    assert load_errors(text) == [
        'case.yaml:8: DestinationRule/r: spec.subsets[0].labels.version: expected a string, got 1; quote it: "1"'
    ]


def test_error_list_expected_shows_the_list_form() -> None:
    text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: reviews\n"
    assert load_errors(text) == [
        'case.yaml:5: VirtualService/r: spec.hosts: expected a list, got "reviews"; write a list, e.g. [reviews]'
    ]


def test_error_bad_duration_says_accepted_forms() -> None:
    text = HEAD + "  http:\n  - route: [{destination: {host: reviews}}]\n    timeout: 5x\n"
    assert load_errors(text) == [
        'case.yaml:8: VirtualService/reviews: spec.http[0].timeout: not a valid duration (got "5x"); '
        "use a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 1.5s, 1m30s"
    ]


def test_error_bare_number_duration() -> None:
    text = HEAD + "  http:\n  - route: [{destination: {host: reviews}}]\n    timeout: 5\n"
    assert load_errors(text) == [
        "case.yaml:8: VirtualService/reviews: spec.http[0].timeout: expected a duration string, not a bare number "
        "(got 5); use a number with a unit (ns, us, ms, s, m, h), e.g. 500ms, 1.5s, 1m30s"
    ]


def test_error_enum_suggests_closest() -> None:
    text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n" \
           "spec:\n  host: r\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBN}\n"
    assert load_errors(text) == [
        "case.yaml:7: DestinationRule/r: spec.trafficPolicy.loadBalancer.simple: expected one of UNSPECIFIED, "
        'LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST, got "ROUND_ROBN"; did you mean ROUND_ROBIN?'
    ]


def test_error_oneof() -> None:
    text = HEAD + "  http:\n  - match:\n    - uri: {exact: /a, prefix: /b}\n    route: [{destination: {host: r}}]\n"
    assert load_errors(text) == [
        "case.yaml:8: VirtualService/reviews: spec.http[0].match[0].uri: only one of exact, prefix, regex may be set "
        "(got exact, prefix); keep one"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {http: []}\n",
         "case.yaml:4: VirtualService/r: spec.hosts: required field is missing; add hosts (a list)"),
        ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {subsets: []}\n",
         "case.yaml:4: DestinationRule/r: spec.host: required field is missing; add host (a string)"),
        (HEAD + "  http:\n  - route: [{destination: {subset: v1}}]\n",
         "case.yaml:7: VirtualService/reviews: spec.http[0].route[0].destination.host: required field is missing; "
         "add host (a string)"),
    ],
    ids=["vs hosts", "dr host", "destination host"],
)
def test_error_missing_required_field(text: str, message: str) -> None:
    assert load_errors(text) == [message]


def test_error_unsupported_kind_lists_supported() -> None:
    text = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: sc}\nspec: {}\n"
    assert load_errors(text) == [
        'case.yaml:2: Sidecar/sc: kind: unsupported kind (got "Sidecar"); '
        "the harness supports VirtualService, DestinationRule, Gateway, ServiceEntry"
    ]


def test_error_unsupported_api_version_lists_supported() -> None:
    text = "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r]}\n"
    assert load_errors(text) == [
        'case.yaml:1: VirtualService/r: apiVersion: unsupported apiVersion (got "networking.istio.io/v2"); '
        "use one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3"
    ]


def test_error_validation_messages() -> None:
    text = HEAD + (
        "  http:\n"
        "  - route:\n"
        "    - {destination: {host: reviews, subset: v1}, weight: -5}\n"
        "    - {destination: {host: reviews, subset: v2}, weight: 0}\n"
        "    redirect: {uri: /new}\n"
        "  - route: [{destination: {host: reviews}}]\n"
        "    mirror: {host: reviews, subset: v2}\n"
        "    mirrorPercentage: {value: 150}\n"
        "    fault: {abort: {httpStatus: 700, percentage: {value: 101}}}\n"
        "    retries: {attempts: -1}\n"
        "    timeout: 0.5ms\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n"
        "spec:\n  host: reviews\n  subsets: [{name: v1}, {name: v1}]\n"
    )
    errors, warnings = validation_messages(text)
    assert errors == [
        "case.yaml:10: VirtualService/reviews: spec.http[0].redirect: cannot be combined with route (got both); keep one",
        "case.yaml:8: VirtualService/reviews: spec.http[0].route[0].weight: must not be negative (got -5); "
        "weights are relative, e.g. 90 and 10",
        "case.yaml:7: VirtualService/reviews: spec.http[0].route: the weights of several destinations must sum to more "
        "than 0 (got -5); give at least one destination a positive weight",
        "case.yaml:14: VirtualService/reviews: spec.http[1].fault.abort.percentage.value: must be between 0 and 100 "
        "(got 101); it is a percentage",
        "case.yaml:14: VirtualService/reviews: spec.http[1].fault.abort.httpStatus: must be an HTTP status in "
        "[200, 600) (got 700)",
        "case.yaml:13: VirtualService/reviews: spec.http[1].mirrorPercentage.value: must be between 0 and 100 "
        "(got 150); it is a percentage",
        "case.yaml:15: VirtualService/reviews: spec.http[1].retries.attempts: must not be negative (got -1); "
        "use 0 to disable retries",
        "case.yaml:16: VirtualService/reviews: spec.http[1].timeout: must be at least 1ms (got 0.0005s); "
        "use e.g. 1ms, 500ms or 2s",
        'case.yaml:23: DestinationRule/reviews: spec.subsets[1].name: duplicate subset name (got "v1" twice); '
        "give each subset its own name",
    ]
    assert warnings == []


def test_error_validation_warnings() -> None:
    text = HEAD + (
        "  exportTo: ['.']\n"
        "  http:\n"
        "  - route: [{destination: {host: reviews}}]\n"
        "    mirror: {host: reviews, subset: v2}\n"
        "    mirrorPercent: 20\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\n"
        "spec:\n  host: reviews\n  trafficPolicy:\n"
        "    tls: {mode: ISTIO_MUTUAL}\n    outlierDetection: {consecutiveErrors: 5}\n"
    )
    errors, warnings = validation_messages(text)
    assert errors == []
    not_exercised = "accepted, but the local mesh does not exercise it; run with --mesh kind to test it"
    assert warnings == [
        "case.yaml:10: VirtualService/reviews: spec.http[0].mirrorPercent: deprecated; use mirrorPercentage: {value: N}",
        "case.yaml:19: DestinationRule/reviews: spec.trafficPolicy.outlierDetection.consecutiveErrors: deprecated and "
        "ignored by istiod; use consecutive5xxErrors or consecutiveGatewayErrors",
        f"case.yaml:18: DestinationRule/reviews: spec.trafficPolicy.tls: {not_exercised}",
    ]
