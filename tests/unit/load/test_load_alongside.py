"""``run_locust(alongside=)``: what runs beside the Locust processes (the worker pods of ``load --mesh kind``)
starts after they have started and ends when they are done, also when the master fails; a run whose
workers are all elsewhere may name a host this machine does not send to."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.errors import MeshError, ProcessError
from harness.loadspec import LoadSpec
from harness.locust import run
from harness.locust.locust_cli import Distribution
from harness.locust.wire import LoadPlan, plan_for_url

PLAN: LoadPlan = plan_for_url("http://reviews:9080/")
SPEC = LoadSpec(duration_s=1.0)


def test_load_alongside_runs_while_the_master_runs_and_ends_when_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    def start(command: list[str], workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
        events.append("master started")
        log_path.write_text("no workers came\n")
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(1)"])  # a master that gives up

    @contextmanager
    def pods() -> Iterator[None]:
        events.append("pods up")
        try:
            yield
        finally:
            events.append("pods deleted")

    monkeypatch.setattr(run, "start_locust", start)
    with pytest.raises(ProcessError, match="Locust master exited with code 1; its log ends:\nno workers came"):
        run.run_locust(PLAN, "http://reviews:9080", SPEC, distribution=Distribution(remote_workers=2, bind_host="172.18.0.1",
                                                                                     port=5557), alongside=pods)
    assert events == ["master started", "pods up", "pods deleted"]


def test_load_only_a_run_without_senders_here_takes_a_host_off_loopback() -> None:
    for distribution in (Distribution(), Distribution(local_workers=1, remote_workers=1)):
        with pytest.raises(MeshError, match=r"load runs send to loopback addresses only \(127.0.0.0/8; got http://reviews:9080\)"):
            run.run_locust(PLAN, "http://reviews:9080", SPEC, distribution=distribution)
