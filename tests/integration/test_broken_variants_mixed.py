"""The cases of ``mixed-responses.yaml`` catch a wrong mesh: each new kind of claim (a status set in
which each value occurs, the share that reached an app, a local reply's body, an excluded replica)
fails on real Envoy when the config is wrong.

Every wrong config here decides each request the same way or takes the replicas in a fixed turn
(ROUND_ROBIN), so each failure is certain; the docstrings say why, and the tests assert ``fail``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.istio.model import IstioObject
from harness.mesh.base import SyncToken
from harness.mesh.local.mesh import LocalMesh
from harness.topology import DEFAULT_TOPOLOGY
from tests.integration.broken import (
    destination_rule,
    failed_fields,
    load_case,
    reviews_routes,
    reviews_vs,
    run_broken_case,
)

pytestmark = pytest.mark.envoy

FILE = "mixed-responses.yaml"
MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``


@pytest.fixture
def mesh(local_mesh: LocalMesh, empty_config: SyncToken) -> Iterator[LocalMesh]:
    """The session mesh; after the test: no config, and the default topology again."""
    yield local_mesh
    local_mesh.revert(empty_config)
    local_mesh.deploy(DEFAULT_TOPOLOGY)


def test_a_full_abort_fails_the_status_set_the_filter_and_the_share(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """Every request aborted (100%, not 30%): no 200 ever occurs, so ``status: [200, 503]`` fails
    after its 135 responses and the ``status: 200`` filter matched none of them; no request reaches
    the app, so ``received: 0.7`` sees 0 of n and its interval is far below 0.65 at the first look."""
    case = load_case(FILE, "fault-abort-30")
    broken = reviews_vs('[{fault: {abort: {httpStatus: 503, percentage: {value: 100}}}, '
                        'route: [{destination: {host: reviews, subset: v1}}]}]')
    statuses, received = run_broken_case(mesh, case, make_objects(broken))
    assert (statuses.outcome, received.outcome) == ("fail", "fail")
    assert failed_fields(statuses) == {"status", "version where status=200", "flags where status=200"}
    assert statuses.verdict is not None
    assert statuses.verdict.evidence[0].rule == (
        "fail: status 200 never occurred in 135 responses, want each of 200, 503 at least once")
    assert failed_fields(received) == {"received"}


def test_a_subset_with_instances_fails_the_body_claims(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """The route goes to v1, which has an instance: every response is the echo app's JSON, never
    Envoy's "no healthy upstream", so both body claims fail at the first response."""
    case = load_case(FILE, "subset-without-instances")
    broken = reviews_vs("[{route: [{destination: {host: reviews, subset: v1}}]}]")
    local_reply, whole_body = run_broken_case(mesh, case, make_objects(broken))
    assert failed_fields(local_reply) == {"status", "flags", "body", "received"}
    assert failed_fields(whole_body) == {"body"}
    assert whole_body.verdict is not None
    counterexample = whole_body.verdict.evidence[0].counterexample
    assert counterexample is not None and counterexample.index == 1
    assert counterexample.got.startswith("does not match /^no healthy upstream$/ (body '{")


def test_exclude_catches_a_replica_that_is_never_ejected(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """No outlier detection: the bad replica stays in the round robin, so it answers the first or
    the second request of the check (with its 500): the status claim and the exclusion both fail."""
    case = load_case(FILE, "ejected-replica-gets-nothing")
    warm_up, after = run_broken_case(mesh, case, make_objects(destination_rule("{loadBalancer: {simple: ROUND_ROBIN}}")))
    assert (warm_up.outcome, after.outcome) == ("pass", "fail")
    assert failed_fields(after) == {"status", "instances"}
    assert after.verdict is not None
    counterexample = after.verdict.evidence[1].counterexample
    assert counterexample is not None and counterexample.got == "reviews-v1-1 (answered)"


def test_exclude_catches_a_replica_that_received_a_retried_request(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """No outlier detection, but retries on 5xx: each request the round robin gives the bad replica
    gets its 500 and is retried on the other one (istiod's previous_hosts predicate), so every
    caller sees 200 and the status claim holds, yet the bad replica received a request: only its
    app log shows it, and the exclusion fails on it."""
    case = load_case(FILE, "ejected-replica-gets-nothing")
    broken = destination_rule("{loadBalancer: {simple: ROUND_ROBIN}}") + reviews_routes(
        "[{route: [{destination: {host: reviews}}], retries: {attempts: 2, retryOn: 5xx}}]")
    warm_up, after = run_broken_case(mesh, case, make_objects(broken))
    assert (warm_up.outcome, after.outcome) == ("pass", "fail")
    assert failed_fields(after) == {"instances"}
    assert after.verdict is not None
    counterexample = after.verdict.evidence[1].counterexample
    assert counterexample is not None and counterexample.got == "reviews-v1-1 (received)"


def test_one_version_only_fails_the_version_list(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """Every request routed to v1: v2 never answers, so ``version: [v1, v2]`` fails after 135."""
    case = load_case(FILE, "every-version-answers")
    (result,) = run_broken_case(mesh, case, make_objects(reviews_vs("[{route: [{destination: {host: reviews, subset: v1}}]}]")))
    assert failed_fields(result) == {"version"}
