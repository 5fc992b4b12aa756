"""The interactive mesh end to end: ``mesh-harness up | apply | delete | send | status | routes | logs | down``.

Each test has its own ``MESH_HARNESS_HOME``, runs the CLI in-process (the daemon is a real detached
process with real Envoy and apps), ends with ``down`` in a ``finally``, and checks that every pid
the environment reported is gone afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import paths
from harness.cli import EXIT_INVALID, EXIT_MESH, EXIT_OK, main
from harness.env import state
from harness.env.client import EnvClient

pytestmark = pytest.mark.envoy

GONE_TIMEOUT_S = 15.0  # apps exit on stdin EOF, Envoy on its parent-death signal

DESTINATION_RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
"""


def virtual_service(route: str, match: str = "") -> str:
    return f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
    - {match}route: {route}
"""


CANARY = virtual_service("[{destination: {host: reviews, subset: v1}, weight: 90}, "
                         "{destination: {host: reviews, subset: v2}, weight: 10}]")


class Cli:
    """Runs ``mesh-harness`` in-process and returns (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main(list(argv))
        out, err = self._capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv(paths.HOME_VARIABLE, str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(capsys)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def env_pids(name: str) -> dict[str, int]:
    """Every process the running environment reported: its daemon, apps, client apps and sidecars."""
    current = state.live_state(name, on_stale=pytest.fail)
    with EnvClient(current) as client:
        status = client.status()
    pids = {"daemon": current.pid}
    pids.update({i["instance"]: i["pid"] for i in status["instances"]})
    for c in status["clients"]:
        pids.update({c["client"]: c["app_pid"], f"sidecar-{c['client']}": c["sidecar_pid"]})
    return pids


def assert_gone(pids: dict[str, int]) -> None:
    deadline = time.monotonic() + GONE_TIMEOUT_S
    left = dict(pids)
    while left and time.monotonic() < deadline:
        left = {name: pid for name, pid in left.items() if not state.process_gone(pid)}
        time.sleep(0.05)
    assert not left, f"still running {GONE_TIMEOUT_S:g}s after down: {left}"


@pytest.fixture
def down_at_end(cli: Cli) -> Iterator[list[str]]:
    """Names of environments started by the test; each is brought down at the end, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        main(["down", "--name", name])


def up(cli: Cli, names: list[str], name: str, *extra: str) -> tuple[str, dict[str, int]]:
    names.append(name)
    code, out, err = cli("up", "--name", name, *extra)
    assert code == EXIT_OK, err
    return out, env_pids(name)


def down(cli: Cli, name: str, pids: dict[str, int]) -> None:
    code, out, _ = cli("down", "--name", name)
    assert code == EXIT_OK and f"environment {name!r} stopped" in out
    assert_gone(pids)
    assert not state.env_dir(name).exists()


def counts(table: str, status: str) -> dict[str, int]:
    """``version -> count`` of the rows of ``send``'s table with this status."""
    return {v: int(n) for v, n in re.findall(rf"│ (\S+)\s+│ {status}\s+│\s+(\d+) │", table)}


def test_env_walkthrough_up_apply_send_status_routes_logs_delete_down(cli: Cli, tmp_path: Path,
                                                                       down_at_end: list[str]) -> None:
    out, pids = up(cli, down_at_end, "walk")
    port = re.search(r"curl -H 'Host: reviews' http://127\.0\.0\.1:(\d+)/", out)
    assert port, out
    direct = httpx.get(f"http://127.0.0.1:{port[1]}/", headers={"Host": "reviews"}, trust_env=False, timeout=10)
    assert direct.status_code == 200 and direct.headers["x-echo-service"] == "reviews"

    both = write(tmp_path, "canary.yaml", f"{DESTINATION_RULE}---\n{CANARY}")
    code, out, err = cli("apply", both, "--name", "walk")
    assert code == EXIT_OK, err
    assert "applied DestinationRule/reviews, VirtualService/reviews: config version 2 ACKed by every proxy" in out

    code, out, err = cli("send", "http://reviews:9080/", "-n", "200", "-c", "8", "--name", "walk")
    assert code == EXIT_OK, err
    split = counts(out, "200")
    assert set(split) == {"v1", "v2"} and sum(split.values()) == 200, out
    # v2 ~ Binomial(200, 0.1): P(v2 < 3 or v2 > 45) = 2.5e-7 on a correct mesh.
    assert 3 <= split["v2"] <= 45, out
    first = re.search(r"first request: x-request-id=(\S+)-0\b", out)
    assert first and "latency p50" in out, out
    batch = f"request_id={first[1]}-"  # ForwardEcho numbers the batch's request ids

    code, out, _ = cli("status", "--name", "walk")
    assert code == EXIT_OK
    assert "DestinationRule/reviews" in out and "VirtualService/reviews" in out and "sidecar-client" in out
    assert out.count("SYNCED") == 4 and "NACK" not in out and "STALE" not in out

    code, out, _ = cli("routes", "reviews", "--name", "walk")
    assert code == EXIT_OK and "reviews v1 90%, reviews v2 10%" in out and "prefix /" in out

    code, out, _ = cli("logs", "reviews/v2", "--name", "walk")
    v2_lines = [line for line in out.splitlines() if batch in line]
    assert code == EXIT_OK and len(v2_lines) == split["v2"]  # every batch request v2 answered, once
    assert all("reviews-v2-0" in line for line in v2_lines)
    code, out, _ = cli("logs", "--envoy", "--name", "walk")
    assert code == EXIT_OK and out.count("flags=") == 201  # the batch and the direct request
    started = time.monotonic()
    code, out, _ = cli("logs", "reviews", "-f", "--for", "0.6", "--name", "walk")
    assert code == EXIT_OK and out.count("request_id=") == 201 and time.monotonic() - started < 10

    code, out, err = cli("delete", write(tmp_path, "vs.yaml", CANARY), "--name", "walk")
    assert code == EXIT_OK and "deleted VirtualService/reviews: config version 3" in out, err
    code, out, _ = cli("status", "--name", "walk")
    assert "DestinationRule/reviews" in out and "VirtualService/reviews" not in out

    down(cli, "walk", pids)


def test_env_services_file_rejections_and_nack(cli: Cli, tmp_path: Path, down_at_end: list[str]) -> None:
    services = write(tmp_path, "services.yaml", "services:\n  reviews:\n    versions: [v1, v2]\n"
                                                "    replicas: {v1: 2}\n    knobs: {v2: {status: '503'}}\n")
    _, pids = up(cli, down_at_end, "err", "--services", services)
    assert {"reviews-v1-0", "reviews-v1-1", "reviews-v2-0"} <= set(pids)

    code, _, err = cli("up", "--name", "err")
    assert code == EXIT_MESH and "environment 'err' is already running" in err

    to_v2 = write(tmp_path, "v2.yaml", f"{DESTINATION_RULE}---\n"
                                       + virtual_service("[{destination: {host: reviews, subset: v2}}]"))
    assert cli("apply", to_v2, "--name", "err")[0] == EXIT_OK
    code, out, _ = cli("send", "http://reviews:9080/", "-n", "5", "--name", "err")
    assert counts(out, "503") == {"v2": 5}, out  # the knob: every v2 instance answers 503

    invalid = write(tmp_path, "bad.yaml", virtual_service("[{destination: {host: reviews}, wieght: 5}]"))
    code, _, err = cli("apply", invalid, "--name", "err")
    assert code == EXIT_INVALID and "unknown field; did you mean weight?" in err

    # Valid Istio that Envoy rejects: istiod gives a redirect code it does not map (304) a route with
    # no action at all, and so does the local mesh (translate/redirects.py).
    nack = write(tmp_path, "nack.yaml", virtual_service("[{destination: {host: reviews, subset: v1}}]").replace(
        "route: [{destination: {host: reviews, subset: v1}}]", "redirect: {uri: /x, redirectCode: 304}"))
    code, _, err = cli("apply", nack, "--name", "err")
    assert code == EXIT_MESH and "rejected RouteConfiguration" in err and 'field: "action", reason: is required' in err
    code, out, _ = cli("status", "--name", "err")
    assert "earlier NACK of version" in out and out.count("SYNCED") == 4

    code, _, err = cli("delete", write(tmp_path, "other.yaml", DESTINATION_RULE.replace("name: reviews}", "name: x}")),
                       "--name", "err")
    assert code == EXIT_INVALID and "DestinationRule/x: not applied in this environment" in err
    code, out, _ = cli("send", "http://reviews:9080/", "-n", "3", "--name", "err")
    assert counts(out, "503") == {"v2": 3}, out  # the NACKed and the refused changes left the config as it was

    down(cli, "err", pids)


def test_env_two_named_at_once_a_dead_one_cleaned_sigterm_closes(cli: Cli, down_at_end: list[str]) -> None:
    _, pids_a = up(cli, down_at_end, "a")
    _, pids_b = up(cli, down_at_end, "b")
    assert set(pids_a.values()).isdisjoint(pids_b.values())

    os.kill(pids_b["daemon"], signal.SIGKILL)
    assert_gone(pids_b)  # its Envoy and apps go with it
    code, _, err = cli("status", "--name", "b")
    assert code == EXIT_MESH
    assert f"environment 'b' was stale (its daemon, pid {pids_b['daemon']}, is gone)" in err
    assert "no environment 'b' is running; start one with: mesh-harness up --name b" in err
    assert not state.env_dir("b").exists()

    code, out, _ = cli("send", "http://reviews:9080/", "--name", "a")
    assert code == EXIT_OK and counts(out, "200").keys() <= {"v1", "v2"} and sum(counts(out, "200").values()) == 1

    os.kill(pids_a["daemon"], signal.SIGTERM)  # the daemon closes its mesh on SIGTERM, too
    assert_gone(pids_a)
    assert not (state.env_dir("a") / state.STATE_FILE).exists()
    assert "environment 'a' closed" in (state.env_dir("a") / state.LOG_FILE).read_text()
    code, out, _ = cli("down", "--name", "a")
    assert code == EXIT_OK and "environment 'a' is not running; removed" in out and not state.env_dir("a").exists()


def test_env_up_reports_the_daemons_own_error_and_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("up", "--name", "bad", "--envoy-binary", str(tmp_path / "no-envoy"))
    assert code == EXIT_MESH
    assert f"the Envoy binary from --envoy-binary ({tmp_path / 'no-envoy'}) is not an executable file" in err
    assert not state.env_dir("bad").exists()
