"""Cases on several local meshes at once: ``mesh-harness run --jobs N``.

Why: much of a suite's wall time is waiting, not work: policy waits (an ejection running out),
injected delays, each batch's round trips. One mesh leaves a good part of the machine idle through
those; N meshes, each complete (its own control plane, apps and sidecars, on ports the kernel
picks), take cases from one queue, so one case's wait overlaps another's traffic. A case still runs
whole on one mesh (deploy, apply, its checks in order, revert), so what it proves does not depend on
what runs beside it; results come back in the cases' order.

Threads, not processes: a job spends its time waiting on its mesh (sockets, sleeps), and the
observer (the progress display) stays one object; the pool hands it events from every job, so it
must be thread-safe (``ConsoleProgress`` is). With one job the cases run on the calling thread.

Order (``schedule``): the cases with the longest policy waits first, so that a wait overlaps other
cases' traffic instead of ending the run; then cases that share a topology together, in the order
their topologies first appear, since moving a mesh to another topology restarts apps; otherwise as
given. One job takes the same order (the suite's files switched topology 20 times for 13 topologies).

Stopping: leaving the pool (normally, on an error, on Ctrl-C in the main thread) stops the queue,
closes every mesh, which ends at once whatever a job was doing with it, and then joins the jobs.
A job's unexpected exception (a bug, not a check's error: those are results) is raised by ``run``
once the other jobs have stopped taking cases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from types import TracebackType
from typing import Self

from harness.case import Case
from harness.mesh.base import Mesh
from harness.result import CheckResult

JOIN_TIMEOUT_S = 5.0
"""How long leaving the pool waits for each job once its mesh is closed (a job then fails at its next call
on the mesh, within milliseconds; past this it is left behind as a daemon thread with nothing to drive)."""

RunOne = Callable[[Mesh, Case], list[CheckResult]]
"""Runs one case on one mesh (``runner.run_case`` with the run's settings)."""


def schedule(cases: Sequence[Case]) -> list[int]:
    """Indexes of ``cases`` in the order jobs take them: longest total policy wait first, then grouped by
    topology (in order of first appearance), stable (pure)."""
    group: dict[object, int] = {}
    for c in cases:
        group.setdefault(c.topology, len(group))
    return sorted(range(len(cases)), key=lambda i: (-sum(check.wait_s for check in cases[i].checks),
                                                    group[cases[i].topology]))


class MeshPool:
    """``jobs`` meshes opened with ``open_mesh`` (each its own), and ``run`` to run cases on them."""

    def __init__(self, open_mesh: Callable[[], AbstractContextManager[Mesh]], jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1 (got {jobs})")
        self._open_mesh = open_mesh
        self._jobs = jobs
        self._stack = ExitStack()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.meshes: list[Mesh] = []

    def __enter__(self) -> Self:
        """Open the meshes one after the other (a mesh's start is a fraction of a second; its deploys, the
        long part, run in the jobs); if one cannot start, those already open are closed."""
        with ExitStack() as opening:
            for _ in range(self._jobs):
                self.meshes.append(opening.enter_context(self._open_mesh()))
            self._stack = opening.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        try:
            self._stack.close()
        finally:
            for thread in self._threads:
                thread.join(JOIN_TIMEOUT_S)

    def sleep(self, seconds: float) -> None:
        """A check's policy wait (``run_case(sleep=...)``) that ends early when the pool stops, so that Ctrl-C
        does not wait for another job's ejection to run out."""
        self._stop.wait(seconds)

    def run(self, cases: Sequence[Case], run_one: RunOne) -> list[CheckResult]:
        """Every case run on one of the meshes; the results in the cases' order."""
        results: dict[int, list[CheckResult]] = {}
        if len(self.meshes) == 1:
            for index in schedule(cases):
                results[index] = run_one(self.meshes[0], cases[index])
            return [result for i in sorted(results) for result in results[i]]
        failures: list[BaseException] = []
        queue = iter(schedule(cases))
        take = threading.Lock()

        def job(mesh: Mesh) -> None:
            while not self._stop.is_set():
                with take:
                    index = next(queue, None)
                if index is None:
                    return
                try:
                    results[index] = run_one(mesh, cases[index])
                except BaseException as exc:  # a bug: stop the other jobs, ``run`` raises it
                    if not self._stop.is_set():
                        failures.append(exc)
                    self._stop.set()
                    return

        self._threads = [threading.Thread(target=job, args=(mesh,), name=f"mesh-harness job {n + 1}", daemon=True)
                         for n, mesh in enumerate(self.meshes)]
        for thread in self._threads:
            thread.start()
        for thread in self._threads:
            thread.join()  # interruptible: Ctrl-C raises here, and leaving the pool stops the jobs
        if failures:
            raise failures[0]
        return [result for i in sorted(results) for result in results[i]]
