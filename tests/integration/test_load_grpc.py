"""gRPC under load: ``MeshGrpcUser`` makes the shipped gRPC cases' calls through the real client sidecar.

End to end (real Envoy, echo apps, Locust): the 80/20 split of gRPC calls is judged over the
records of two workers with the pytest statistics (false failure or inconclusive at most 1e-6;
``--delta 0.1``, whose fixed-n test needs 1,143 calls, which 8 s give at 143 calls/s: this loaded
machine measured 600 to 1,250),
with a Locust row per check and version of type grpc; calls routed by method reach their
version; an injected abort is recorded as gRPC status UNAVAILABLE (a recorder that lost the
status would fail that check), counted as Locust failures, and not passed off as success.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harness.cli import EXIT_OK, main
from tests.integration.load_runs import children, outcome

pytestmark = pytest.mark.envoy

CASES = str(Path(__file__).parents[2] / "cases" / "grpc.yaml")


def test_load_grpc_split_over_two_workers_with_rows_per_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = children()
    code = main(["load", CASES, "--name", "grpc-weighted-split", "--duration", "8s", "--delta", "0.1", "--users", "8",
                 "--workers", "2",
                 "--csv", str(tmp_path / "grpc")])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert outcome(out, "calls split 80/20") == "pass", out
    with open(tmp_path / "grpc_stats.csv", newline="") as f:
        rows = {(row["Type"], row["Name"]) for row in csv.DictReader(f)}
    assert {("grpc", "calls split 80/20: v1"), ("grpc", "calls split 80/20: v2")} <= rows
    assert children() <= before


def test_load_grpc_calls_route_by_method(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", CASES, "--name", "grpc-route-by-method", "--duration", "4s", "--users", "4"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert outcome(out, "a pkg.Ratings method reaches v2") == "pass", out
    assert outcome(out, "another service's method reaches v1") == "pass", out
    assert "every grpc_status = OK" in out


def test_load_grpc_abort_is_recorded_as_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", CASES, "--name", "grpc-fault-abort", "--duration", "3s", "--users", "4"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    check = "every call is UNAVAILABLE and no app sees it"
    assert outcome(out, check) == "pass", out
    assert "│ every grpc_status = UNAVAILABLE │ pass" in out
    row = next(line for line in out.splitlines() if line.startswith(f"│ {check} │ none "))
    requests, share, failures = (cell.strip() for cell in row.split("│")[3:6])
    assert int(requests) > 0 and requests == failures and share == "1.000"  # Envoy answered, every call failed
