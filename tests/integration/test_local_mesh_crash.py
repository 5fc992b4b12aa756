"""A process of the local mesh killed mid-run: the check errors with a clear message, the next deploy heals.

Each test SIGKILLs one process of the session mesh (an app instance, the client's app, the client's
Envoy sidecar, the ingress gateway), runs a shipped every-response check through ``harness.runner.run_check`` as
``mesh-harness run`` does, and expects outcome ``error`` naming the process, its pid and exit code
-9. ``revert`` must still work with the process dead (``run_case`` reverts after every case), and
``deploy`` of the same topology must start it again so that the same check passes. The checks are
every-response checks on a deterministic route: no statistics, so no chance of a false failure.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.case import Case, load_case_file
from harness.errors import ProcessError
from harness.mesh.base import SendSpec
from harness.mesh.local.mesh import GATEWAY, ZYGOTE, LocalMesh, ProcessExit
from harness.runner import run_check
from harness.settings import StatSettings
from harness.topology import DEFAULT_TOPOLOGY

pytestmark = pytest.mark.envoy

CASES = Path(__file__).resolve().parents[2] / "cases"
SETTINGS = StatSettings()
DEATH_TIMEOUT_S = 5.0  # SIGKILL takes effect in microseconds; this only bounds the wait
CHECK_DEADLINE_S = 30.0


def shipped(file: str) -> Case:
    """The first case of a shipped file; its first check expects the same answer from every response."""
    return load_case_file(CASES / file)[0]


def kill(mesh: LocalMesh, process: str) -> int:
    """SIGKILL the mesh's ``process`` (an inventory name) and wait until ``health`` reports it; its pid."""
    pid = mesh.inventory().pids[process]
    os.kill(pid, signal.SIGKILL)
    wait_dead(mesh)
    return pid


def wait_dead(mesh: LocalMesh) -> list[ProcessExit]:
    deadline = time.monotonic() + DEATH_TIMEOUT_S
    while not (dead := mesh.health()):
        assert time.monotonic() < deadline, f"no process of the mesh reported dead {DEATH_TIMEOUT_S:g}s after SIGKILL"
        time.sleep(0.01)
    return dead


@pytest.mark.parametrize(
    ("file", "process", "expected"),
    [
        ("header-route.yaml", "reviews-v2-0", "app reviews-v2-0 (pid {pid}) exited with code -9"),
        ("header-route.yaml", "client", "client app client-0 (pid {pid}) exited with code -9"),
        ("header-route.yaml", "sidecar-client", "sidecar of client (Envoy pid {pid}) exited with code -9"),
        ("ingress-gateway.yaml", GATEWAY, "ingress gateway (Envoy pid {pid}) exited with code -9"),
    ],
    ids=["app-instance", "client-app", "client-sidecar", "ingress-gateway"],
)
def test_killed_process_errors_the_check_and_deploy_restarts_it(
    clean_mesh: LocalMesh, file: str, process: str, expected: str
) -> None:
    case = shipped(file)
    check = case.checks[0]
    clean_mesh.deploy(case.topology)
    token = clean_mesh.apply(case.objects)
    pid = kill(clean_mesh, process)

    result = run_check(clean_mesh, case, check, SETTINGS, token.version, deadline_s=CHECK_DEADLINE_S)
    assert result.outcome == "error"
    assert result.error is not None and expected.format(pid=pid) in result.error, result.error
    assert "the next deploy restarts" in result.error

    started = time.monotonic()
    clean_mesh.revert(token)  # run_case reverts after the checks: a dead sidecar must not make it wait for an ACK
    assert time.monotonic() - started < 5.0

    clean_mesh.deploy(case.topology)
    assert clean_mesh.health() == []
    token = clean_mesh.apply(case.objects)  # the gateway starts again here: the case's Gateway asks for it
    assert clean_mesh.inventory().pids[process] != pid
    try:
        again = run_check(clean_mesh, case, check, SETTINGS, token.version, deadline_s=CHECK_DEADLINE_S)
    finally:
        clean_mesh.revert(token)
    assert again.outcome == "pass", again.error


def test_a_killed_zygote_errors_the_check_and_deploy_starts_another_that_forks_the_next_apps(
    clean_mesh: LocalMesh,
) -> None:
    """The apps the dead zygote forked run on until the deploy, which restarts them from the new one: their
    exit codes could no longer be known (one killed meanwhile is reported with code 255)."""
    case = shipped("header-route.yaml")
    clean_mesh.deploy(case.topology)
    token = clean_mesh.apply(case.objects)
    zygote = kill(clean_mesh, ZYGOTE)
    result = run_check(clean_mesh, case, case.checks[0], SETTINGS, token.version, deadline_s=CHECK_DEADLINE_S)
    clean_mesh.revert(token)
    assert result.outcome == "error"
    assert result.error is not None and f"echo-app zygote (starts the apps) (pid {zygote}) exited with code -9" in result.error
    assert "the next deploy restarts" in result.error

    app = clean_mesh.inventory().pids["reviews-v2-0"]
    os.kill(app, signal.SIGKILL)  # so that the deploy must fork one; its code is lost with the zygote (255)
    deadline = time.monotonic() + DEATH_TIMEOUT_S
    while "app reviews-v2-0" not in {d.name for d in clean_mesh.health()}:
        assert time.monotonic() < deadline, f"reviews-v2-0 not reported dead {DEATH_TIMEOUT_S:g}s after SIGKILL"
        time.sleep(0.01)
    clean_mesh.deploy(case.topology)
    assert clean_mesh.health() == []
    pids = clean_mesh.inventory().pids
    assert pids[ZYGOTE] != zygote and pids["reviews-v2-0"] != app
    assert {psutil.Process(pids[p]).ppid() for p in ("reviews-v1-0", "reviews-v2-0", "client")} == {pids[ZYGOTE]}
    token = clean_mesh.apply(case.objects)
    try:
        again = run_check(clean_mesh, case, case.checks[0], SETTINGS, token.version, deadline_s=CHECK_DEADLINE_S)
    finally:
        clean_mesh.revert(token)
    assert again.outcome == "pass", again.error



def test_instance_killed_during_a_batch_fails_the_send(clean_mesh: LocalMesh) -> None:
    """Whenever the kill lands (before, during or after the paced batch), the send raises ProcessError:
    a batch that Envoy's retries made look fine still ran on a mesh missing an endpoint."""
    clean_mesh.deploy(DEFAULT_TOPOLOGY)
    pid = clean_mesh.inventory().pids["reviews-v1-0"]
    killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(ProcessError, match=rf"app reviews-v1-0 \(pid {pid}\) exited with code -9"):
            clean_mesh.send(SendSpec(url="http://reviews:9080/", count=100, rate=100.0, deadline_s=10.0))
    finally:
        killer.join()
    clean_mesh.deploy(DEFAULT_TOPOLOGY)
    batch = clean_mesh.send(SendSpec(url="http://reviews:9080/", count=20, deadline_s=10.0))
    assert {o.status for o in batch} == {200}
