"""The shipped cases' checks catch a wrong mesh: each is run against a deliberately broken config.

A check that passes a correct mesh proves little on its own; here each statistical case gets a
config far from the one it describes (70/30 where 90/10 is expected, ...), and its own check, run
through ``harness.runner.run_check`` exactly as ``mesh-harness run`` does, must not pass. Each test
computes, with ``harness.stats``, the probability that the broken variant is passed anyway, for
the very design the runner plans for that check, and asserts it is below 1e-6: that bound is what
keeps these tests from flaking. Where the computation is exact (two categories) it also bounds
P(not fail), and the test then asserts the verdict is ``fail``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from harness.case import Case
from harness.istio.model import IstioObject
from harness.mesh.local.mesh import LocalMesh
from harness.result import CheckResult
from harness.runner import run_check
from harness.stats import operating_characteristics
from harness.verdict import FractionJudge, make_judges
from tests.integration.broken import SETTINGS, SUBSETS, load_case

pytestmark = pytest.mark.envoy

FALSE_PASS_BOUND = 1e-6

MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``


def split_config(weights: Mapping[str, int], subsets: tuple[str, ...] = ("v1", "v2")) -> str:
    """A DestinationRule with ``subsets`` and a VirtualService splitting reviews by ``weights``."""
    subset_list = ", ".join(f"{{name: {s}, labels: {{version: {s}}}}}" for s in subsets)
    routes = ", ".join(f"{{destination: {{host: reviews, subset: {s}}}, weight: {w}}}" for s, w in weights.items())
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec: {{host: reviews, subsets: [{subset_list}]}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http: [{{route: [{routes}]}}]
"""


def p_pass_and_not_fail(case: Case, true: Mapping[str, float]) -> tuple[float, float, bool]:
    """(P(pass), P(not fail), exact?) of the case's first check if the mesh splits by ``true``.

    The check's verdict passes only if its fraction judge passes, so that judge's P(pass) bounds
    the check's. ``exact`` is False for three or more categories: both numbers are then upper bounds.
    """
    check = case.checks[0]
    judges = make_judges(check.expectations, check.overrides.over(SETTINGS))
    design = next(j.design for j in judges if isinstance(j, FractionJudge))
    p_pass, _p_fail, p_inconclusive = operating_characteristics(design, true)
    exact = sum(1 for p in true.values() if p > 0) <= 2
    return p_pass, min(1.0, p_pass + p_inconclusive), exact


def run_broken(mesh: LocalMesh, case: Case, objects: list[IstioObject]) -> CheckResult:
    """Deploy the case's topology, apply ``objects`` in place of its config, run its first check."""
    mesh.deploy(case.topology)
    token = mesh.apply(objects)
    result = run_check(mesh, case, case.checks[0], SETTINGS, token.version, deadline_s=60.0)
    assert result.error is None, result.error
    return result


@pytest.mark.parametrize(
    ("file", "name", "weights", "subsets"),
    [
        # canary 90/10 judged against 70/30: P(pass) = 1.9e-19, P(not fail) = 1.9e-19 (exact).
        ("canary.yaml", "canary-90-10", {"v1": 70, "v2": 30}, ("v1", "v2")),
        # 1:1 judged against 80/20: P(pass) = 2.7e-69, P(not fail) = 2.7e-69 (exact).
        ("canary.yaml", "even-split", {"v1": 80, "v2": 20}, ("v1", "v2")),
        # default route (no VirtualService) expects 50/50; a VS sends 80/20: as above (exact).
        ("default-route.yaml", "no-virtual-service", {"v1": 80, "v2": 20}, ("v1", "v2")),
        # 60/30/10 judged against 40/40/20: P(pass) <= 6.2e-28 (Bonferroni bound; P(fail) has no useful bound).
        ("three-way-split.yaml", "three-way-split", {"v1": 40, "v2": 40, "v3": 20}, ("v1", "v2", "v3")),
    ],
    ids=["canary-90-10-as-70-30", "even-split-as-80-20", "default-route-as-80-20", "three-way-as-40-40-20"],
)
def test_broken_split_is_not_passed(
    clean_mesh: LocalMesh,
    make_objects: MakeObjects,
    file: str,
    name: str,
    weights: dict[str, int],
    subsets: tuple[str, ...],
) -> None:
    case = load_case(file, name)
    total = sum(weights.values())
    p_pass, p_not_fail, exact = p_pass_and_not_fail(case, {k: w / total for k, w in weights.items()})
    assert p_pass < FALSE_PASS_BOUND, f"the broken variant would pass with probability {p_pass:.3g}"

    outcome = run_broken(clean_mesh, case, make_objects(split_config(weights, subsets))).outcome

    assert outcome != "pass"
    if exact:
        assert p_not_fail < FALSE_PASS_BOUND
        assert outcome == "fail"


def test_broken_header_route_fails_at_the_first_counterexample(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """rui's /v1/login request goes to v1 instead of v2: deterministic, the very first response fails it."""
    case = load_case("header-route.yaml", "header-route")
    assert case.checks[0].name == "rui on /v1/login reaches v2"
    broken = SUBSETS + """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - match: [{uri: {exact: /v1/login}, headers: {user: {exact: rui}}}]
      route: [{destination: {host: reviews, subset: v1}}]
    - route: [{destination: {host: reviews, subset: v1}}]
"""

    result = run_broken(clean_mesh, case, make_objects(broken))

    assert result.outcome == "fail"
    assert result.verdict is not None
    version = next(e for e in result.verdict.evidence if e.field == "version")
    assert version.counterexample is not None and version.counterexample.got == "v1"
    assert version.n == 1, f"judged {version.n} responses; the first one already broke 'every version v2'"
