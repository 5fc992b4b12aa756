"""Which Locust processes the ``load`` flags ask for, and the one-line errors for flags that do not go together."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import EXIT_INVALID, main
from harness.locust.command import ProcessFlags, processes_from
from harness.locust.locust_cli import DEFAULT_MASTER_PORT, ONE_PROCESS, Distribution

CASE = str(Path(__file__).parents[3] / "cases" / "load-canary.yaml")


@pytest.mark.parametrize(("flags", "want"), [
    (ProcessFlags(), (ONE_PROCESS, None)),
    (ProcessFlags(workers=4), (Distribution(local_workers=4), None)),
    (ProcessFlags(master=True, expect_workers=2), (Distribution(0, 2, "*", DEFAULT_MASTER_PORT), None)),
    (ProcessFlags(master=True, expect_workers=2, workers=1, master_bind_host="10.0.0.5", master_port=6000),
     (Distribution(1, 2, "10.0.0.5", 6000), None)),
    (ProcessFlags(worker=True, master_host="10.0.0.5"), (ONE_PROCESS, ("10.0.0.5", DEFAULT_MASTER_PORT))),
    (ProcessFlags(worker=True, master_host="m", master_port=6000), (ONE_PROCESS, ("m", 6000))),
])
def test_load_processes_from_flags(flags: ProcessFlags, want: tuple[Distribution, tuple[str, int] | None]) -> None:
    assert processes_from(flags) == want


def test_load_processes_master_workers_reach_an_any_address_master_on_loopback() -> None:
    assert Distribution(1, 1, "*").local_master_host == "127.0.0.1"
    assert Distribution(1, 1, "10.0.0.5").local_master_host == "10.0.0.5"


@pytest.mark.parametrize(("argv", "message"), [
    (["--worker"], "--worker needs --master-host HOST (the machine running `mesh-harness load CASE --master`)"),
    (["--worker", "--master-host", "m", "--workers", "2", "--csv", "x"],
     "--worker only sends and its master judges: leave out --workers, --csv/--html (give them to the master)"),
    (["--master-host", "m"], "--master-host is for --worker: the master this machine's worker connects to"),
    (["--master"], "--master needs --expect-workers N: how many `mesh-harness load CASE --worker` to wait for"),
    (["--worker", "--master-host", "m", "--master-port", "70000"], "--master-port must be a TCP port, at most 65535 (got 70000)"),
    (["--expect-workers", "2", "--master-port", "6000"],
     "--expect-workers, --master-port only go with --master (workers on other machines)"),
])
def test_load_processes_flags_that_do_not_go_together(argv: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", CASE, *argv]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
