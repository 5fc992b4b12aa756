"""Locust's command lines for one process, a master and its workers (no process started)."""

from __future__ import annotations

from pathlib import Path

from harness.loadspec import LoadSpec
from harness.locust.locust_cli import (
    NO_OUTPUTS,
    LocustOutputs,
    RunFiles,
    master_command,
    single_command,
    worker_command,
)

FILES = RunFiles(Path("/t/plan.json"), Path("/t/records.jsonl"), Path("/t/workers.json"))
SPEC = LoadSpec(users=8, duration_s=10.0)


def _value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_load_cli_one_process_stops_itself_with_run_time() -> None:
    command = single_command(FILES, "http://127.0.0.1:15001", SPEC, LocustOutputs(csv_prefix="out/c", html=None))
    assert _value(command, "-t") == "10s" and _value(command, "-u") == "8" and _value(command, "--exit-code-on-error") == "0"
    assert _value(command, "--mesh-records") == "/t/records.jsonl" and _value(command, "--csv").endswith("out/c")
    assert "--master" not in command and "--html" not in command


def test_load_cli_master_waits_for_its_workers_and_stops_the_run_itself() -> None:
    command = master_command(FILES, "http://127.0.0.1:15001", SPEC, NO_OUTPUTS, bind_host="127.0.0.1", port=5557,
                             workers=3, wait_for_workers_s=30.0)
    assert "-t" not in command  # Locust's -t quits without waiting for the workers' last records (relay.py)
    assert _value(command, "--mesh-run-time") == "10" and _value(command, "--expect-workers") == "3"
    assert _value(command, "--master-bind-host") == "127.0.0.1" and _value(command, "--master-bind-port") == "5557"
    assert _value(command, "--expect-workers-max-wait") == "30" and _value(command, "--mesh-workers") == "/t/workers.json"
    assert _value(command, "--host") == "http://127.0.0.1:15001" and "--headless" in command


def test_load_cli_worker_connects_to_its_master_by_name() -> None:
    command = worker_command("127.0.0.1", 5557, "worker-2")
    assert "--worker" in command and _value(command, "--master-port") == "5557"
    assert _value(command, "--master-host") == "127.0.0.1" and _value(command, "--mesh-worker-name") == "worker-2"
    assert "--headless" not in command and "--mesh-records" not in command  # records go to the master
