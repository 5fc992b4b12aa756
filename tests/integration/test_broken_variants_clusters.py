"""The shipped DestinationRule, source, port and host cases catch a wrong mesh.

Each case in ``circuit-breaker.yaml``, ``outlier.yaml``, ``load-balancing.yaml``,
``ports-and-hosts.yaml``, ``source-scoped.yaml`` and ``multiple-virtual-services.yaml`` is run
here against a deliberately wrong config (no breaker, no outlier detection, a round robin where a
hash was meant, the newer VirtualService winning, ...), through ``harness.runner.run_check``
exactly as ``mesh-harness run`` runs it: checks in order on one applied config, since later checks
of a case rely on what earlier ones did (an ejection).

None of these checks is statistical (they are every-response and aggregate checks on 100%
policies), so no miss probability needs computing: each test's docstring says why the wrong
config fails the check with certainty, and the test asserts ``fail`` (not just "not pass").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import pytest

from harness.istio.model import IstioObject
from harness.mesh.base import SyncToken
from harness.mesh.local.mesh import LocalMesh
from harness.result import CheckResult
from harness.topology import DEFAULT_TOPOLOGY, Client, Topology
from tests.integration.broken import SUBSETS, destination_rule, failed_fields, load_case, run_broken_case

pytestmark = pytest.mark.envoy


MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``


@pytest.fixture(scope="module", autouse=True)
def default_topology_afterwards(local_mesh: LocalMesh) -> Iterator[None]:
    """Put the session mesh back to the default topology once this module is done."""
    yield
    local_mesh.deploy(DEFAULT_TOPOLOGY)


@pytest.fixture
def mesh(local_mesh: LocalMesh, empty_config: SyncToken) -> Iterator[LocalMesh]:
    """The session mesh, with no config after each test. Unlike ``clean_mesh`` it leaves the
    topology to the next test, which deploys its case's own anyway: consecutive tests of one case
    file share their apps instead of restarting them twice per test."""
    yield local_mesh
    local_mesh.revert(empty_config)


def virtual_service(name: str, spec: str, metadata: str = "") -> str:
    """A VirtualService ``name`` with ``spec`` (flow-style YAML) and extra ``metadata`` fields."""
    return f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}{', ' + metadata if metadata else ''}}}
spec: {spec}
"""


def outcomes(results: Sequence[CheckResult]) -> dict[str, str]:
    return {r.check: r.outcome for r in results}


# --- circuit breakers ---------------------------------------------------------------------------


REFUSALS_JUDGED = {"flags where status=503", "headers.x-envoy-overloaded where status=503"}


def test_pending_overflow_without_a_breaker_fails(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """No connectionPool: every limit stays at 2^32-1, so nothing can overflow and the stats check
    ("at least 1 overflow") fails with certainty. Every request gets the app's 200, so the filter
    ``status: 503`` matches nothing, and its expectations fail rather than pass on no response."""
    case = load_case("circuit-breaker.yaml", "pending-overflow")
    (result,) = run_broken_case(mesh, case, make_objects(destination_rule("{}")))
    assert result.outcome == "fail"
    assert failed_fields(result) == {"stats", *REFUSALS_JUDGED}


def test_pending_overflow_catches_503s_that_are_not_refusals(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """No connectionPool, and the app itself answers 503 (knob ``status: 503``): every response is
    a 503 with no UO flag and no x-envoy-overloaded, which the ``where: {status: 503}`` entry
    fails at its first response; certain."""
    case = load_case("circuit-breaker.yaml", "pending-overflow")
    (reviews,) = case.topology.services
    failing_app = replace(case.topology, services=(replace(reviews, knobs=(("v1", (("delay", "300ms"), ("status", "503"))),)),))
    (result,) = run_broken_case(mesh, case, make_objects(destination_rule("{}")), topology=failing_app)
    assert result.outcome == "fail"
    assert failed_fields(result) >= {"stats", *REFUSALS_JUDGED}


@pytest.mark.parametrize(
    ("policy", "failing"),
    [
        # No limit at all: no request ever waits for a connection, so upstream_cx_overflow stays 0.
        ("{}", {"stats"}),
        # A pending limit of 1 too: 5 requests start together and each holds the only connection
        # 200 ms, so the third refused one is a 503 (status fails) and an overflow (stats fails).
        ("{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}", {"status", "stats"}),
    ],
    ids=["no-limit", "pending-limit-refuses"],
)
def test_max_connections_only_queues_catches_a_wrong_pool(
    mesh: LocalMesh, make_objects: MakeObjects, policy: str, failing: set[str]
) -> None:
    """Certain in both variants, for the reasons given with the parameters."""
    case = load_case("circuit-breaker.yaml", "max-connections-only-queues")
    (result,) = run_broken_case(mesh, case, make_objects(destination_rule(policy)))
    assert result.outcome == "fail"
    assert failed_fields(result) >= failing


def test_zero_means_unlimited_catches_literal_limits(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """What "0 = limit 0" would look like, as near as a DestinationRule can say it: limits of 1.
    10 requests start together and each is held 200 ms, so at most 2 are admitted: the others are
    503 (status fails) and overflows (stats fails). Certain."""
    case = load_case("circuit-breaker.yaml", "zero-means-unlimited")
    broken = destination_rule("{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}")
    (result,) = run_broken_case(mesh, case, make_objects(broken))
    assert result.outcome == "fail"
    assert failed_fields(result) >= {"status", "stats"}


# --- outlier detection --------------------------------------------------------------------------


def test_bad_replica_without_outlier_detection_is_not_ejected(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """No outlierDetection (and ROUND_ROBIN, so that the picks are certain): the cluster has no
    outlier detector, so no ejection is counted (check 1 fails), and the replicas are taken in
    turn, so the bad one answers every second request with 500 (check 2 fails at its second
    response at the latest)."""
    case = load_case("outlier.yaml", "bad-replica-is-ejected")
    results = run_broken_case(mesh, case, make_objects(destination_rule("{loadBalancer: {simple: ROUND_ROBIN}}")))
    assert outcomes(results) == dict.fromkeys(outcomes(results), "fail")
    assert failed_fields(results[0]) == {"stats"}
    assert "status" in failed_fields(results[1])


OUTLIER = "consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100"


@pytest.mark.parametrize(
    ("name", "broken_policy", "want"),
    [
        # Panic at 50%: the ejected only host keeps getting the traffic, so its 500s come back
        # instead of 503 UH (every field of the second check fails).
        ("only-host-ejected-no-healthy-upstream", f"{{outlierDetection: {{{OUTLIER}, minHealthPercent: 50}}}}",
         {"status", "flags", "version", "received"}),
        # No panic (minHealthPercent unset = 0): with the only host ejected Envoy answers 503 UH itself.
        ("min-health-percent-panics", f"{{outlierDetection: {{{OUTLIER}}}}}", {"status", "flags", "version"}),
    ],
    ids=["panic-where-none-is-meant", "no-panic-where-panic-is-meant"],
)
def test_panic_threshold_is_checked(
    mesh: LocalMesh, make_objects: MakeObjects, name: str, broken_policy: str, want: set[str]
) -> None:
    """The ejection itself still happens (check 1 passes: three 500s in a row from the only host,
    certain); the traffic after it is judged against the wrong panic threshold, which decides
    every request the same way, so check 2 fails at its first response."""
    case = load_case("outlier.yaml", name)
    ejection, after = run_broken_case(mesh, case, make_objects(destination_rule(broken_policy)))
    assert ejection.outcome == "pass"
    assert after.outcome == "fail"
    assert failed_fields(after) == want


def test_recovery_check_catches_an_ejection_that_outlasts_the_wait(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """baseEjectionTime 30s instead of 1s: the ejection itself still happens (check 1 passes,
    certain as in the case), but the ejected replica stays out far beyond the 4s wait and the 10
    requests after it, so only the other replica answers and ``instances >= 2`` fails; certain."""
    case = load_case("outlier.yaml", "ejected-host-returns-after-base-ejection-time")
    broken = destination_rule("{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: "
                              "{consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}")
    ejection, recovery = run_broken_case(mesh, case, make_objects(broken))
    assert ejection.outcome == "pass"
    assert recovery.outcome == "fail"
    assert failed_fields(recovery) == {"instances"}


# --- load balancing -----------------------------------------------------------------------------

ROUND_ROBIN = "{loadBalancer: {simple: ROUND_ROBIN}}"
HASH_SOURCE_IP = "{loadBalancer: {consistentHash: {useSourceIp: true}}}"


@pytest.mark.parametrize(
    "name", ["consistent-hash-header", "consistent-hash-cookie", "consistent-hash-query-parameter", "consistent-hash-source-ip"]
)
def test_affinity_checks_catch_a_round_robin(mesh: LocalMesh, make_objects: MakeObjects, name: str) -> None:
    """ROUND_ROBIN instead of the hash: two consecutive picks over 2 equal hosts go to both, so
    ``same_instance`` fails by the second response; certain. (A spread check, where a case has
    one, passes under a round robin, which is right: it is not what this variant breaks.)"""
    case = load_case("load-balancing.yaml", name)
    affinity = run_broken_case(mesh, case, make_objects(destination_rule(ROUND_ROBIN)))[0]
    assert affinity.outcome == "fail"
    assert failed_fields(affinity) == {"same_instance"}


@pytest.mark.parametrize("name", ["consistent-hash-header", "consistent-hash-cookie"])
def test_spread_checks_catch_a_hash_on_the_wrong_key(mesh: LocalMesh, make_objects: MakeObjects, name: str) -> None:
    """A hash on the source IP instead of the varied header: the one client has one address, so
    all 40 requests hash to one ring point and one instance; ``instances >= 2`` fails, certain."""
    case = load_case("load-balancing.yaml", name)
    spread = run_broken_case(mesh, case, make_objects(destination_rule(HASH_SOURCE_IP)))[1]
    assert spread.outcome == "fail"
    assert failed_fields(spread) == {"instances"}


def test_round_robin_check_catches_a_hash(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """A hash on x-user, which the check sends with one constant value: every request lands on
    one instance, so ``instances >= 2`` fails; certain."""
    case = load_case("load-balancing.yaml", "round-robin")
    (result,) = run_broken_case(mesh, case, make_objects(destination_rule("{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}")))
    assert result.outcome == "fail"
    assert failed_fields(result) == {"instances"}


# --- ports and hosts ----------------------------------------------------------------------------


def test_host_forms_catch_a_missing_domain(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """The case's own config, seen by a client in namespace ``other``: istiod gives such a sidecar
    no short-name domain for a service in ``default`` (only ``reviews.default``, ``.svc`` and the
    FQDNs), so requests to ``reviews`` and ``reviews:80`` hit the catch-all 502 and those two
    checks fail; the qualified forms still reach v2 and pass. Certain: no randomness in Host matching."""
    case = load_case("ports-and-hosts.yaml", "host-forms-on-port-80")
    elsewhere = Topology(services=case.topology.services, clients=(Client(namespace="other"),))
    results = run_broken_case(mesh, case, case.objects, topology=elsewhere)
    assert outcomes(results) == {
        "short name on port 80": "fail",
        "short name with the port": "fail",
        "name.namespace": "pass",
        "name.namespace.svc": "pass",
        "fully qualified name": "pass",
        "absolute fully qualified name": "pass",
        "the other port follows the same VirtualService": "fail",
    }


def test_extra_host_check_catches_a_host_that_does_not_match(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """The VirtualService host written as a short name (``reviews-alias``): istiod completes it to
    an FQDN that the sent Host (reviews.example.com) does not match, so on port 80 the request
    hits the catch-all 502 and the first check fails; certain."""
    case = load_case("ports-and-hosts.yaml", "virtual-service-host-without-service")
    broken = SUBSETS + virtual_service("reviews-alias", "{hosts: [reviews-alias], http: [{route: [{destination: {host: reviews, subset: v2}}]}]}")
    extra_host = run_broken_case(mesh, case, make_objects(broken))[0]
    assert extra_host.outcome == "fail"
    assert failed_fields(extra_host) == {"version", "status"}


# --- source-scoped rules and several VirtualServices --------------------------------------------


def test_source_labels_checks_catch_the_rule_on_the_wrong_client(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """sourceLabels {app: client} instead of {app: tester}: the tester falls through to v1 and the
    client gets v2, so both checks fail at their first response; certain."""
    case = load_case("source-scoped.yaml", "source-labels")
    broken = SUBSETS + virtual_service("reviews", """
  hosts: [reviews]
  http:
    - {match: [{sourceLabels: {app: client}}], route: [{destination: {host: reviews, subset: v2}}]}
    - route: [{destination: {host: reviews, subset: v1}}]""")
    results = run_broken_case(mesh, case, make_objects(broken))
    assert outcomes(results) == dict.fromkeys(outcomes(results), "fail")


def test_oldest_wins_check_catches_the_newer_one_winning(mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """The same two VirtualServices with their timestamps swapped: now the v1 one is older and
    wins, so every request reaches v1 and the check fails at its first response; certain."""
    case = load_case("multiple-virtual-services.yaml", "oldest-virtual-service-wins")
    broken = (
        SUBSETS
        + virtual_service("a-newer", "{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}",
                          'creationTimestamp: "2023-06-01T00:00:00Z"')
        + virtual_service("z-older", "{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v2}}]}]}",
                          'creationTimestamp: "2024-06-01T00:00:00Z"')
    )
    (result,) = run_broken_case(mesh, case, make_objects(broken))
    assert result.outcome == "fail"
    assert failed_fields(result) == {"version"}
