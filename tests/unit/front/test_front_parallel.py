"""``MeshPool`` (``run --jobs``): every case on one of the meshes, results in the cases' order, a bug raised
once the other jobs stopped, every mesh closed and every job joined when the pool is left.

Fake meshes and a scripted ``run_one``: no traffic. Jobs are made to overlap with barriers (bounded waits), never
by sleeping and hoping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from harness.case import Case
from harness.mesh.base import Mesh
from harness.mesh.fake import FakeMesh
from harness.parallel import MeshPool, schedule
from harness.result import CheckResult
from tests.unit.front.front_builders import make_case, make_case_text, make_check

BARRIER_TIMEOUT_S = 30.0  # bounded: a job that never comes fails the test instead of hanging it


def case(name: str, *, wait: str | None = None) -> Case:
    extra = f"wait: {wait}\n" if wait else ""
    return make_case(make_case_text(make_check("c", "{status: 200}", extra=extra), name=name))


def result(mesh: Mesh, c: Case) -> list[CheckResult]:
    """A stand-in for a case's results: one per check, naming the case (what ``run`` must keep in order)."""
    return [CheckResult(case=c.name, check=check.name, file=c.file, line=check.line, outcome="error", verdict=None,
                        requests=0, stale=0, seconds=0.0, error="scripted") for check in c.checks]


def opener(made: list[FakeMesh], *, fail_at: int | None = None) -> Callable[[], FakeMesh]:
    def open_mesh() -> FakeMesh:
        if fail_at is not None and len(made) == fail_at:
            raise RuntimeError("mesh could not start")
        made.append(FakeMesh())
        return made[-1]

    return open_mesh


def test_schedule_puts_the_longest_policy_waits_first_and_keeps_the_rest_in_order() -> None:
    cases = [case("a"), case("b", wait="1s"), case("c"), case("d", wait="4s")]
    assert [cases[i].name for i in schedule(cases)] == ["d", "b", "a", "c"]


def test_schedule_runs_cases_sharing_a_topology_together_in_order_of_first_appearance() -> None:
    def on(name: str, replicas: int, wait: str | None = None) -> Case:
        extra = f"wait: {wait}\n" if wait else ""
        services = f"services:\n  reviews:\n    versions: [v1]\n    replicas: {{v1: {replicas}}}\n"
        return make_case(services + make_case_text(make_check("c", "{status: 200}", extra=extra), name=name))

    cases = [on("a", 1), on("b", 2), on("c", 1), on("d", 3), on("e", 2), on("f", 3, wait="1s")]
    assert [cases[i].name for i in schedule(cases)] == ["f", "a", "c", "b", "e", "d"]


def test_two_jobs_run_at_once_on_their_own_meshes_and_results_keep_the_cases_order() -> None:
    cases = [case(name) for name in "abcdef"]
    both_running = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
    ran_on: dict[str, int] = {}
    made: list[FakeMesh] = []

    def run_one(mesh: Mesh, c: Case) -> list[CheckResult]:
        if c.name in ("a", "b"):  # the first case of each job: both must be running at the same time
            both_running.wait()
        ran_on[c.name] = id(mesh)
        return result(mesh, c)

    with MeshPool(opener(made), 2) as pool:
        results = pool.run(cases, run_one)
    assert [r.case for r in results] == list("abcdef")
    assert ran_on["a"] != ran_on["b"] and set(ran_on.values()) == {id(m) for m in made}
    assert len(made) == 2 and all(m.closed for m in made)


def test_one_job_runs_every_case_in_schedule_order_on_the_calling_thread_and_results_keep_the_cases_order() -> None:
    cases = [case("a"), case("b", wait="1s"), case("c")]
    seen: list[tuple[str, threading.Thread]] = []

    def run_one(mesh: Mesh, c: Case) -> list[CheckResult]:
        seen.append((c.name, threading.current_thread()))
        return result(mesh, c)

    made: list[FakeMesh] = []
    with MeshPool(opener(made), 1) as pool:
        results = pool.run(cases, run_one)
    assert [r.case for r in results] == ["a", "b", "c"]
    assert seen == [(name, threading.current_thread()) for name in "bac"] and len(made) == 1 and made[0].closed


def test_a_bug_in_one_job_stops_the_others_taking_cases_and_is_raised() -> None:
    cases = [case(name) for name in "abcdefgh"]
    both_running = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)
    ran: list[str] = []
    made: list[FakeMesh] = []
    pool = MeshPool(opener(made), 2)

    def run_one(mesh: Mesh, c: Case) -> list[CheckResult]:
        if c.name in ("a", "b"):
            both_running.wait()
        if c.name == "a":
            raise ZeroDivisionError("a bug in the harness")
        if c.name == "b":  # finish only once the pool is stopping (its private event: no sleep-and-hope)
            assert pool._stop.wait(BARRIER_TIMEOUT_S)
        ran.append(c.name)
        return result(mesh, c)

    with pytest.raises(ZeroDivisionError, match="a bug in the harness"), pool:
        pool.run(cases, run_one)
    assert ran == ["b"]  # the other job finished its case in hand and took no other
    assert all(m.closed for m in made)


def test_leaving_the_pool_closes_every_mesh_then_joins_the_jobs() -> None:
    """As on Ctrl-C in the main thread: the jobs are still inside a case; closing the meshes ends them."""
    cases = [case("a"), case("b")]
    inside = threading.Barrier(3, timeout=BARRIER_TIMEOUT_S)
    made: list[FakeMesh] = []
    ended: list[str] = []

    def run_one(mesh: Mesh, c: Case) -> list[CheckResult]:
        inside.wait()
        while not mesh.closed:  # type: ignore[attr-defined]  # the fake's flag; a real mesh fails its next call
            threading.Event().wait(0.001)
        ended.append(c.name)
        return result(mesh, c)

    pool = MeshPool(opener(made), 2)
    with pool:
        runner = threading.Thread(target=pool.run, args=(cases, run_one))
        runner.start()
        inside.wait()  # both jobs are in a case now
    runner.join(BARRIER_TIMEOUT_S)
    assert all(m.closed for m in made) and sorted(ended) == ["a", "b"] and not runner.is_alive()


def test_a_policy_wait_ends_when_the_pool_stops() -> None:
    """Ctrl-C must not wait for another job's ``wait: 4s`` (an ejection running out) to end."""
    cases = [case("a", wait="4s"), case("b", wait="4s")]
    inside = threading.Barrier(3, timeout=BARRIER_TIMEOUT_S)
    made: list[FakeMesh] = []
    pool = MeshPool(opener(made), 2)

    def run_one(mesh: Mesh, c: Case) -> list[CheckResult]:
        inside.wait()
        pool.sleep(600.0)  # far beyond the join below: only the pool's stop can end it in time
        return result(mesh, c)

    with pool:
        runner = threading.Thread(target=pool.run, args=(cases, run_one))
        runner.start()
        inside.wait()
    runner.join(BARRIER_TIMEOUT_S)
    assert not runner.is_alive()


def test_a_mesh_that_cannot_start_closes_those_already_open() -> None:
    made: list[FakeMesh] = []
    with pytest.raises(RuntimeError, match="mesh could not start"), MeshPool(opener(made, fail_at=1), 2):
        pass
    assert len(made) == 1 and made[0].closed


def test_jobs_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MeshPool(opener([]), 0)
