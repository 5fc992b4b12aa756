"""The route-level cases (faults, timeouts, retries, mirror, rewrites, gRPC) catch a wrong mesh.

Each shipped case's check is run, through ``harness.runner.run_check`` exactly as ``mesh-harness
run`` runs it, against a deliberately wrong config (retries disabled, a mirror to the wrong
version, an abort at 20% where 50% is expected, ...), and must not pass.

* Deterministic checks (``DETERMINISTIC``): the wrong config changes *every* request, so the first
  response is already a counterexample and the verdict is ``fail`` with certainty. Each entry says
  why in its ``why``; the test also asserts that the failing expectation is the one named.
* Checks of "every request" against a percentage policy (``PARTIAL``): the wrong config changes
  each request with probability ``p``, independently (Envoy draws per request); the check passes
  only if none of its ``n`` requests is changed: P(pass) = (1 - p)^n, computed for the check's own
  plan and asserted below 1e-6.
* Fractional checks (``test_broken_split_*``): P(pass) of the check's own sequential design under
  the wrong fractions, computed exactly with ``harness.stats`` (two categories) and asserted below
  1e-6; since P(not fail) is exact too, the verdict must be ``fail``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from harness.istio.model import IstioObject
from harness.mesh.local.mesh import LocalMesh
from harness.stats import operating_characteristics
from harness.verdict import EveryJudge, FractionJudge, make_judges
from tests.integration.broken import SETTINGS, Variant, failed_fields, load_check, reviews_vs, run_broken

pytestmark = pytest.mark.envoy


def variant_id(v: Variant) -> str:
    return f"{v.case}:{v.fails}"

FALSE_PASS_BOUND = 1e-6

MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``


V1 = "[{destination: {host: reviews, subset: v1}}]"
V2 = "[{destination: {host: reviews, subset: v2}}]"


DETERMINISTIC = [
    Variant("faults.yaml", "fault-for-jason-only", "another user is not",
            reviews_vs(f"[{{fault: {{abort: {{httpStatus: 418, percentage: {{value: 100}}}}}}, route: {V1}}}]"),
            "status", "the abort applies to every user (no match): every response is 418, not 200"),
    Variant("faults.yaml", "fault-abort-without-percentage", "nothing is aborted",
            reviews_vs(f"[{{fault: {{abort: {{httpStatus: 418, percentage: {{value: 100}}}}}}, route: {V1}}}]"),
            "status", "the old-tutorial reading 'no percentage = 100%': every response is 418"),
    Variant("timeouts.yaml", "route-timeout", "slow answers become 504 at the timeout",
            reviews_vs(f"[{{route: {V1}}}]"),
            "status", "no timeout (disabled, not 15s): the 3s answer arrives with 200, so every response breaks 504"),
    Variant("retries.yaml", "retry-5xx", "two failures are retried into a success",
            reviews_vs(f"[{{retries: {{attempts: 1, retryOn: 5xx}}, route: {V1}}}]"),
            "attempts", "one retry for two failures: every request reaches the app twice and ends in 503"),
    Variant("retries.yaml", "default-retry-skips-503", "the 503 reaches the caller after one attempt",
            reviews_vs(f"[{{retries: {{attempts: 2, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,503'}}, route: {V1}}}]"),
            "attempts", "the Istio <= 1.23 default (503 retriable): every first 503 is retried into a 200 on attempt 2"),
    Variant("retries.yaml", "retries-disabled", "the 500 reaches the caller after one attempt",
            reviews_vs(f"[{{retries: {{attempts: 3, retryOn: 5xx}}, route: {V1}}}]"),
            "attempts", "retries on: every first 500 is retried into a 200 on attempt 2"),
    Variant("retries.yaml", "retry-on-status-code", "a 503 is retried into a success",
            reviews_vs(f"[{{retries: {{attempts: 2, retryOn: '500'}}, route: {V1}}}]"),
            "attempts", "the wrong status code is retriable: every 503 reaches the caller after one attempt"),
    Variant("retries.yaml", "per-try-timeout", "every attempt times out and is retried",
            reviews_vs(f"[{{retries: {{attempts: 2, retryOn: 5xx}}, route: {V1}}}]"),
            "status", "no per-try timeout and no route timeout: the first attempt waits out the app's 3s and is a 200"),
    Variant("mirror.yaml", "mirror-to-v2", "v1 answers and v2 gets every copy",
            reviews_vs(f"[{{route: {V1}, mirror: {{host: reviews, subset: v1}}}}]"),
            "mirror", "the mirror goes to v1: v2 receives no copy of any request"),
    Variant("mirror.yaml", "mirror-to-v1", "v2 answers and v1 gets every copy",
            reviews_vs(f"[{{route: {V2}, mirror: {{host: reviews, subset: v2}}}}]"),
            "mirror", "the mirror goes to the serving version v2: v1 receives no copy of any request"),
    Variant("mirror.yaml", "mirror-zero", "v2 gets no copies",
            reviews_vs(f"[{{route: {V1}, mirror: {{host: reviews, subset: v2}}}}]"),
            "mirror", "no mirrorPercentage means 100%: v2 receives a copy of every request"),
    Variant("mirror.yaml", "mirrors-to-two-targets", "v2 gets a copy of every request",
            reviews_vs(f"[{{route: {V1}, mirrors: [{{destination: {{host: ratings}}}}]}}]"),
            "mirror", "only ratings is mirrored to: v2 receives no copy of any request"),
    Variant("mirror.yaml", "mirrors-to-two-targets", "ratings gets a copy of every request, Host unchanged",
            reviews_vs(f"[{{route: {V1}, mirrors: [{{destination: {{host: reviews, subset: v2}}}}]}}]"),
            "mirror", "only v2 is mirrored to: ratings receives no copy of any request"),
    Variant("rewrites.yaml", "uri-rewrite", "the app receives the rewritten path",
            reviews_vs(f"[{{match: [{{uri: {{prefix: /old}}}}], route: {V1}}}]"),
            "upstream.path", "no rewrite: every request reaches the app as /old/page?key=value"),
    Variant("rewrites.yaml", "authority-rewrite", "the app receives the rewritten authority",
            reviews_vs(f"[{{headers: {{request: {{set: {{x-authority: ratings.example}}}}}}, route: {V1}}}]"),
            "upstream.host", "the authority is set as an ordinary header: every request keeps Host reviews:9080"),
    Variant("rewrites.yaml", "redirect", "301 with the new location",
            reviews_vs(f"[{{match: [{{uri: {{exact: /moved}}}}], redirect: {{uri: /new/other}}}}, {{route: {V1}}}]"),
            "headers.location", "the redirect names another path: every Location is .../new/other?key=value"),
    Variant("rewrites.yaml", "redirect-scheme-host-and-port", "FROM_REQUEST_PORT keeps port 9080",
            reviews_vs("[{match: [{uri: {exact: /keep-port}}], redirect: {uri: /new, scheme: https, "
                       "authority: www.example.com, derivePort: FROM_PROTOCOL_DEFAULT, redirectCode: 308}}, "
                       f"{{route: {V1}}}]"),
            "headers.location", "the scheme's default port: every Location is https://www.example.com/new?key=value"),
    Variant("rewrites.yaml", "redirect-scheme-host-and-port", "FROM_PROTOCOL_DEFAULT names no port",
            reviews_vs("[{match: [{uri: {exact: /default-port}}], redirect: {uri: /new, scheme: https, "
                       "authority: www.example.com, derivePort: FROM_REQUEST_PORT, redirectCode: 302}}, "
                       f"{{route: {V1}}}]"),
            "headers.location", "the request's port kept: every Location is https://www.example.com:9080/new?key=value"),
    Variant("rewrites.yaml", "direct-response", "Envoy answers 418 itself",
            reviews_vs(f"[{{route: {V1}}}]"),
            "received", "a route instead of the direct response: v1 answers and receives every request"),
    Variant("rewrites.yaml", "request-headers", "the app sees the set and added headers, and not the removed one",
            reviews_vs("[{headers: {request: {add: {x-route-set: route}}}, route: [{destination: {host: reviews, subset: v1}, "
                       "headers: {request: {add: {x-dest-add: dest}}}}]}]"),
            "upstream.headers.x-route-set", "add instead of set keeps the caller's value (and x-secret is not removed)"),
    Variant("rewrites.yaml", "response-headers", "the caller sees the set header and not the removed one",
            reviews_vs(f"[{{headers: {{request: {{set: {{x-policy: reviews-v1}}}}}}, route: {V1}}}]"),
            "headers.x-policy", "the header is set on the request, not the response: no response carries it"),
    Variant("rewrites.yaml", "cors-preflight", "the preflight is allowed",
            reviews_vs(f"[{{corsPolicy: {{allowOrigins: [{{exact: 'https://other.example'}}], allowMethods: [GET, POST]}}, route: {V1}}}]"),
            "headers.access-control-allow-origin",
            "the origin is not allowed: Envoy forwards every preflight to the app, without allow headers"),
    Variant("grpc.yaml", "grpc-route-by-method", "a pkg.Ratings method reaches v2",
            reviews_vs(f"[{{match: [{{uri: {{exact: /pkg.Ratings}}}}], route: {V2}}}, {{route: {V1}}}]"),
            "version", "an exact match on the service name matches no method path: every call reaches v1"),
    Variant("grpc.yaml", "grpc-fault-abort", "every call is UNAVAILABLE and no app sees it",
            reviews_vs(f"[{{fault: {{abort: {{grpcStatus: INTERNAL, percentage: {{value: 100}}}}}}, route: {V1}}}]"),
            "grpc_status", "the abort carries INTERNAL: every call ends INTERNAL, not UNAVAILABLE"),
    Variant("grpc.yaml", "grpc-retry-on-unavailable", "the second attempt succeeds",
            reviews_vs(f"[{{retries: {{attempts: 2, retryOn: 5xx}}, route: {V1}}}]"),
            "grpc_status", "retryOn 5xx never sees a 5xx (gRPC errors are HTTP 200): every call ends UNAVAILABLE"),
    Variant("grpc.yaml", "grpc-no-retry-without-policy", "the failure is not retried",
            reviews_vs(f"[{{route: {V1}}}]"),
            "grpc_status", "istiod's default policy retries unavailable: every call succeeds on attempt 2"),
    Variant("grpc.yaml", "grpc-default-retry-on-unavailable", "the default policy retries the failed attempt",
            reviews_vs(f"[{{retries: {{attempts: 0}}, route: {V1}}}]"),
            "grpc_status", "retries disabled: every call ends UNAVAILABLE after one attempt"),
]


@pytest.mark.parametrize("variant", DETERMINISTIC, ids=[variant_id(v) for v in DETERMINISTIC])
def test_broken_variant_fails_with_certainty(clean_mesh: LocalMesh, make_objects: MakeObjects, variant: Variant) -> None:
    """The wrong config changes every request (``variant.why``): the first response is a counterexample."""
    case, check = load_check(variant.file, variant.case, variant.check)

    result = run_broken(clean_mesh, case, check, make_objects(variant.config))

    assert result.outcome == "fail", variant.why
    assert variant.fails in failed_fields(result), variant.why


def test_mirror_host_check_catches_the_shadow_suffix_of_istio_1_27(make_objects: MakeObjects) -> None:
    """The same case on a mesh emulating Istio 1.27, whose mirror policies let Envoy append ``-shadow``
    to the Host: every copy reaches v2 as ``reviews-shadow:9080``, so the check's ``host: reviews:9080``
    fails at the first request. Its own short-lived mesh: the session mesh emulates 1.30."""
    case, check = load_check("mirror.yaml", "mirror-to-v2", "v1 answers and v2 gets every copy")
    with LocalMesh(istio_version="1.27") as old_mesh:
        result = run_broken(old_mesh, case, check, list(case.objects))

    assert result.outcome == "fail"
    assert result.verdict is not None
    mirror = next(e for e in result.verdict.evidence if e.field == "mirror")
    assert mirror.counterexample is not None and mirror.counterexample.got == "mirrored with host reviews-shadow:9080"


def test_fault_delay_outside_timeout_catches_a_timeout_that_covers_the_delay(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """A mesh whose route timeout counted the fault delay would answer 504 UT after 0.2s. Envoy cannot
    be configured to do that, so the same answer is produced with the 0.3s delay moved into the app
    (no fault, ``x-echo-delay: 300ms`` on the check's traffic): every request then times out, and the
    check's ``status: 200`` fails at the first response."""
    case, check = load_check("timeouts.yaml", "fault-delay-outside-timeout", "delayed requests are not timed out")
    slow_app = replace(check, send=replace(check.send, headers=(("x-echo-delay", "300ms"),)))

    result = run_broken(clean_mesh, case, slow_app, make_objects(reviews_vs(f"[{{timeout: 0.2s, route: {V1}}}]")))

    assert result.outcome == "fail"
    assert {"status", "flags"} <= failed_fields(result)


PARTIAL = [
    # abort at 50% instead of 100%: a request escapes the abort with probability 0.5, P(pass) = 0.5^135 = 2.2e-41
    Variant("faults.yaml", "fault-abort-100", "every request gets 418 from Envoy and no app sees it",
            reviews_vs(f"[{{fault: {{abort: {{httpStatus: 418, percentage: {{value: 50}}}}}}, route: {V1}}}]"),
            "status", "half the requests are not aborted"),
    # delay at 50% instead of 100%: a request has no DI flag with probability 0.5, P(pass) = 0.5^135 = 2.2e-41
    Variant("faults.yaml", "fault-delay-100", "every request takes at least the delay and is then served",
            reviews_vs(f"[{{fault: {{delay: {{fixedDelay: 200ms, percentage: {{value: 50}}}}}}, route: {V1}}}]"),
            "flags", "half the requests are not delayed"),
]


@pytest.mark.parametrize("variant", PARTIAL, ids=[variant_id(v) for v in PARTIAL])
def test_broken_percentage_is_caught_by_an_every_request_check(
    clean_mesh: LocalMesh, make_objects: MakeObjects, variant: Variant
) -> None:
    """The policy applies to 50% instead of 100%: P(pass) = 0.5^n for the check's n requests (2.2e-41 at n = 135)."""
    case, check = load_check(variant.file, variant.case, variant.check)
    judges = make_judges(check.expectations, check.overrides.over(SETTINGS), count=None)
    n = next(j.target for j in judges if isinstance(j, EveryJudge))
    p_pass = 0.5**n
    assert p_pass < FALSE_PASS_BOUND, f"the broken variant would pass with probability {p_pass:.3g}"

    result = run_broken(clean_mesh, case, check, make_objects(variant.config))

    assert result.outcome == "fail", variant.why
    assert variant.fails in failed_fields(result), variant.why


@pytest.mark.parametrize(
    ("file", "case_name", "check_name", "config", "true"),
    [
        # abort 20% judged against the expected 50/50 status split: P(pass) = 2.7e-69, P(inconclusive) = 2.2e-87 (exact).
        ("faults.yaml", "fault-abort-50", "half the responses are aborted with 503",
         reviews_vs(f"[{{fault: {{abort: {{httpStatus: 503, percentage: {{value: 20}}}}}}, route: {V1}}}]"),
         {"200": 0.8, "503": 0.2}),
        # mirrorPercentage 20 judged against the expected 50%: P(pass) = 4.8e-69, P(inconclusive) = 1.2e-87 (exact).
        ("mirror.yaml", "mirror-half", "v2 gets a copy of half the requests",
         reviews_vs(f"[{{route: {V1}, mirror: {{host: reviews, subset: v2}}, mirrorPercentage: {{value: 20}}}}]"),
         {"mirrored": 0.2, "not mirrored": 0.8}),
        # gRPC 50/50 judged against the expected 80/20: P(pass) = 1.8e-41, P(inconclusive) = 1.0e-58 (exact).
        ("grpc.yaml", "grpc-weighted-split", "calls split 80/20",
         reviews_vs("[{route: [{destination: {host: reviews, subset: v1}, weight: 50}, "
                    "{destination: {host: reviews, subset: v2}, weight: 50}]}]"),
         {"v1": 0.5, "v2": 0.5}),
    ],
    ids=["abort-50-as-20", "mirror-50-as-20", "grpc-80-20-as-50-50"],
)
def test_broken_split_is_failed(
    clean_mesh: LocalMesh, make_objects: MakeObjects, file: str, case_name: str, check_name: str, config: str,
    true: dict[str, float],
) -> None:
    """The wrong fractions are 0.3 away from the expected ones (six times the default delta of 0.05):
    the check's own design passes them, or leaves them undecided, with a probability computed exactly
    (two categories) and asserted below 1e-6 here, so the verdict must be ``fail``."""
    case, check = load_check(file, case_name, check_name)
    judges = make_judges(check.expectations, check.overrides.over(SETTINGS))
    design = next(j.design for j in judges if isinstance(j, FractionJudge))
    p_pass, _p_fail, p_inconclusive = operating_characteristics(design, true)
    assert p_pass + p_inconclusive < FALSE_PASS_BOUND, f"P(pass) {p_pass:.3g}, P(inconclusive) {p_inconclusive:.3g}"

    result = run_broken(clean_mesh, case, check, make_objects(config))

    assert result.outcome == "fail"
