"""Load runs end to end: real Envoy, real apps, Locust in its own process.

The shipped load case runs through the CLI with its gates passing; a variant with an impossible
p99 bound (1us: a request through Envoy and a Python app takes more than a millisecond) must make
the command exit non-zero. The plain ``locust -f harness/locust/locustfile.py`` entry point is run
the way the README shows it. Gate margins: the shipped gates are about 10x what this 2-core
machine measures (p99 about 40 ms against 2 s, 500+ requests/s against 50), and the split is
judged with the pytest statistics (false failure at most 1e-6) and the tolerance of ``load_runs.JUDGED``.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.cli import EXIT_FAILED, EXIT_OK, main
from harness.locust.locust_cli import LOCUSTFILE
from harness.mesh.local.mesh import LocalMesh
from tests.integration.load_runs import JUDGED
from tests.istiod import istiod_build

pytestmark = pytest.mark.envoy

CASE = str(Path(__file__).parents[2] / "cases" / "load-canary.yaml")
#: The shipped case as shipped (8 users for 10 s, its gates), judged with ``load_runs.JUDGED``'s tolerance: at the
#: default delta its split needs 2,656 responses, which a loaded machine (390 requests/s) barely sends in 10 s.
DELTA = JUDGED[JUDGED.index("--delta") + 1]
PLAIN_RUN_TIMEOUT_S = 90.0
MIN_PLAIN_REQUESTS = 48  # the plain run makes hundreds a second unloaded; 48 keeps a both-versions miss below 1e-14


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_load_shipped_case_passes_its_gates_with_locust_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _children()
    started = time.monotonic()
    code = main(["load", CASE, "--delta", DELTA, "--csv", str(tmp_path / "canary"), "--html", str(tmp_path / "canary.html")])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert time.monotonic() - started < 60
    assert "load run passed" in out
    with open(tmp_path / "canary_stats.csv", newline="") as f:
        names = {row["Name"] for row in csv.DictReader(f)}
    assert {"split follows the weights: v1", "split follows the weights: v2"} <= names  # per-version rows
    assert (tmp_path / "canary.html").stat().st_size > 0
    assert _children() <= before  # Locust and the mesh are gone


def test_load_on_the_istiod_plane_passes_the_same_gates(capsys: pytest.CaptureFixture[str]) -> None:
    """Locust sends to the client sidecar's own address (istiod binds each proxy to a 127.A.B.x of its own)."""
    istiod_build()
    before = _children()
    code = main(["load", CASE, "--control-plane", "istiod", *JUDGED])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert "load run passed" in out and "istiod" not in out.split("load run passed")[1]
    assert _children() <= before  # Locust, istiod and the mesh are gone


def test_load_impossible_gate_makes_the_command_fail(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", CASE, "--duration", "2s", "--p99", "1us", "--min-rps", "1000000000"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED, out
    assert "load run failed" in out
    assert out.count("│ fail ") >= 2  # the p99 gate and the requests/s gate


def test_load_plain_locust_entry_point(local_mesh: LocalMesh, tmp_path: Path) -> None:
    """``locust -f harness/locust/locustfile.py --host <sidecar listener> --mesh-url ...``, as the README shows.

    Its summary table is read, not its CSV: Locust rewrites the CSV once a second, so on a 2 s run
    the file may miss the last second, while the summary is printed from the final stats."""
    port = local_mesh.inventory().ports["sidecar-client/9080"]
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "2", "-r", "2", "-t", "2s",
               "--host", f"http://127.0.0.1:{port}", "--mesh-url", "http://reviews:9080/", "--only-summary"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=PLAIN_RUN_TIMEOUT_S, check=False)
    output = done.stdout + done.stderr  # Locust prints its summary through its logger
    # Each message starts with what went wrong: a soak keeps only the first line of a failure.
    assert done.returncode == 0, f"locust exited {done.returncode}\n{output}"
    # Only the request-count table: the percentiles table after it has rows of the same shape, whose first
    # number is the median in ms (0 with a fast echo app, which once overwrote the counts here).
    counts = output.split("Response time percentiles", 1)[0]
    rows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^GET\s+http://reviews:9080/: (\w+)\s+(\d+)", counts, re.M)}
    # No VirtualService: each version has its own row, and with at least MIN_PLAIN_REQUESTS both answer
    # (P(no v1 or no v2) = 2^(1-n) < 1e-14); fewer in 2 s would be a broken run, not bad luck.
    assert rows.keys() <= {"v1", "v2"} and sum(rows.values()) >= MIN_PLAIN_REQUESTS, \
        f"count rows {rows}, want rows of v1 and v2 and at least {MIN_PLAIN_REQUESTS} requests\n{output}"
    assert rows.keys() == {"v1", "v2"} and min(rows.values()) > 0, f"count rows {rows}, want v1 and v2\n{output}"
