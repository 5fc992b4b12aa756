"""What the broken-variant and policy tests share: the shipped cases, loading a case or one check, running it
against deliberately wrong config exactly as ``mesh-harness run`` would (same runner, same settings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.case import Case, Check, load_case_file
from harness.istio.model import IstioObject
from harness.mesh.local.mesh import LocalMesh
from harness.result import CheckResult
from harness.runner import run_check
from harness.settings import StatSettings
from harness.topology import Topology

CASES = Path(__file__).resolve().parents[2] / "cases"
SUBSETS = (CASES / "manifests" / "reviews-subsets.yaml").read_text()
SETTINGS = StatSettings()  # the defaults of `mesh-harness run` and the pytest plugin


@dataclass(frozen=True)
class Variant:
    """A wrong config for one shipped check; ``fails`` is an expectation field it must fail on."""

    file: str
    case: str
    check: str
    config: str
    fails: str
    why: str


def load_case(file: str, name: str) -> Case:
    return next(c for c in load_case_file(CASES / file) if c.name == name)


def load_check(file: str, case_name: str, check_name: str) -> tuple[Case, Check]:
    case = next(c for c in load_case_file(CASES / file) if c.name == case_name)
    return case, next(c for c in case.checks if c.name == check_name)


def run_broken(mesh: LocalMesh, case: Case, check: Check, objects: list[IstioObject]) -> CheckResult:
    """Deploy the case's topology, apply ``objects`` in place of its config, run ``check``."""
    mesh.deploy(case.topology)
    token = mesh.apply(objects)
    result = run_check(mesh, case, check, SETTINGS, token.version, deadline_s=60.0)
    assert result.error is None, result.error
    return result


def run_broken_case(
    mesh: LocalMesh, case: Case, objects: Sequence[IstioObject], topology: Topology | None = None
) -> list[CheckResult]:
    """Deploy the case's topology (or ``topology``), apply ``objects`` in place of its config, and
    run every check of the case in order, as ``run_case`` does (later checks may rely on what
    earlier ones did: an ejection)."""
    mesh.deploy(topology or case.topology)
    token = mesh.apply(objects)
    results = [run_check(mesh, case, check, SETTINGS, token.version, deadline_s=60.0) for check in case.checks]
    for result in results:
        assert result.error is None, result.error
    return results


def failed_fields(result: CheckResult) -> set[str]:
    assert result.verdict is not None
    return {e.field for e in result.verdict.evidence if e.outcome == "fail"}


def reviews_vs(rules: str) -> str:
    """The subsets DestinationRule plus a VirtualService for reviews whose ``http`` is ``rules`` (flow YAML)."""
    return SUBSETS + reviews_routes(rules)


def reviews_routes(rules: str) -> str:
    """A VirtualService for reviews whose ``http`` is ``rules`` (flow YAML), as a document to append."""
    return f"""
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec: {{hosts: [reviews], http: {rules}}}
"""


def destination_rule(traffic_policy: str) -> str:
    """A DestinationRule for reviews with ``traffic_policy`` (flow-style YAML)."""
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy: {traffic_policy}
"""
