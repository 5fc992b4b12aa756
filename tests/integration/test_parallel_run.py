"""``run --jobs 2`` with real Envoy: two local meshes judge cases at the same time, each case whole on one,
and the run reports them in the cases' order.

The pool test makes the two jobs overlap for certain (a barrier in the first case of each: bounded, no
sleep-and-hope) and checks that they ran on two meshes of their own (different Envoy processes). The CLI
test is the command a user types. The checks are the shipped ones, at ``ALPHA`` each: a correct mesh fails
the pool test's 5 checks with probability at most 5 x ALPHA = 5e-7, the CLI test's 6 at most 6e-7.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.case import Case, load_case_file
from harness.errors import MeshError
from harness.mesh.base import Mesh
from harness.mesh.local.mesh import LocalMesh
from harness.parallel import MeshPool
from harness.result import CheckResult
from harness.runner import run_case
from harness.settings import StatSettings
from tests.integration.test_local_mesh import REPO_ROOT

pytestmark = pytest.mark.envoy

ALPHA = 1e-7
BARRIER_TIMEOUT_S = 120.0  # both meshes start and deploy before it: generous on a loaded 2-core machine
RUN_TIMEOUT_S = 300.0


def shipped(file: str, name: str) -> Case:
    return next(c for c in load_case_file(REPO_ROOT / "cases" / file) if c.name == name)


def test_two_jobs_judge_cases_at_once_each_on_a_mesh_of_its_own() -> None:
    cases = [shipped("canary.yaml", "canary-90-10"), shipped("header-route.yaml", "header-route")]
    both_running = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
    envoy_of: dict[str, int] = {}

    def run_one(mesh: Mesh, case: Case) -> list[CheckResult]:
        mesh.deploy(case.topology)
        assert isinstance(mesh, LocalMesh)
        envoy_of[case.name] = mesh.inventory().pids["sidecar-client"]
        both_running.wait()  # each job holds a case, on its own mesh, at the same time
        return run_case(mesh, case, StatSettings(alpha=ALPHA))

    with MeshPool(LocalMesh, 2) as pool:
        results = pool.run(cases, run_one)
    assert [(r.case, r.outcome) for r in results] == [
        ("canary-90-10", "pass"), *[("header-route", "pass")] * (len(results) - 1)], [r.error for r in results]
    assert envoy_of["canary-90-10"] != envoy_of["header-route"]


def test_cli_run_with_two_jobs_passes_and_reports_in_file_order(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cli = Path(sys.executable).with_name("mesh-harness")
    done = subprocess.run([str(cli), "run", "-j", "2", "--alpha", str(ALPHA), "--json", str(out),
                           "cases/canary.yaml", "cases/header-route.yaml"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "local mesh: Envoy" in done.stdout and "; 2 meshes at once" in done.stdout
    cases = [c["case"] for c in json.loads(out.read_text())["checks"]]
    assert cases == [c.name for f in ("canary.yaml", "header-route.yaml") for c in load_case_file(REPO_ROOT / "cases" / f)
                     for _ in c.checks]


def test_a_closed_mesh_refuses_deploy_and_apply() -> None:
    """What a job meets after the main thread closed its mesh (Ctrl-C): an error, and nothing started."""
    mesh = LocalMesh().start()
    mesh.close()
    case = shipped("canary.yaml", "canary-90-10")
    with pytest.raises(MeshError, match="deploy: the local mesh is closed"):
        mesh.deploy(case.topology)
    with pytest.raises(MeshError, match="apply: the local mesh is closed"):
        mesh.apply(case.objects)
