"""``mesh-harness run``/``load --mesh-attach NAME`` and ``pytest --mesh-attach NAME``: shipped cases on an environment started with ``up``.

The environment is the user's: the run must leave it running, with the config the user applied
before, and must refuse (not redeploy) a case that needs other services. The environment lives in
a temp ``MESH_HARNESS_HOME`` and is brought down in a ``finally``; every pid it reported must be gone.
The load run is short (8 s, 4 users); its split is judged at alpha 1e-6 with the wider tolerance of
``load_runs.JUDGED`` (so a loaded machine still sends enough) and its gates leave about 10x room
(see ``test_load.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness import paths
from harness.cli import EXIT_FAILED, EXIT_OK, main
from harness.env import state
from harness.env.client import EnvClient
from tests.integration.load_runs import JUDGED
from tests.integration.test_env_cli import DESTINATION_RULE, assert_gone, env_pids, virtual_service

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
NAME = "attach"
PYTEST_TIMEOUT_S = 120.0  # about 10 s when idle
ALL_TO_V2 = virtual_service("[{destination: {host: reviews, subset: v2}}]")


def served_versions(client: EnvClient, count: int) -> dict[str | None, int]:
    out: dict[str | None, int] = {}
    for o in client.send({"url": "http://reviews:9080/", "count": count, "concurrency": 4}):
        out[o.version] = out.get(o.version, 0) + 1
    return out


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_env_attach_run_load_and_pytest_leave_environment_running_with_its_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(paths.HOME_VARIABLE, str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(ROOT)
    user_config = tmp_path / "all-to-v2.yaml"
    user_config.write_text(f"{DESTINATION_RULE}---\n{ALL_TO_V2}")
    pids: dict[str, int] = {}
    try:
        assert main(["up", "--name", NAME]) == EXIT_OK, capsys.readouterr().err
        pids = env_pids(NAME)
        assert main(["apply", str(user_config), "--name", NAME]) == EXIT_OK, capsys.readouterr().err
        with EnvClient(state.live_state(NAME, on_stale=pytest.fail)) as client:
            before = client.status()
        capsys.readouterr()

        # canary.yaml replaces the user's VirtualService/reviews with its own splits while it runs
        code = main(["run", "--mesh-attach", NAME, "cases/canary.yaml"])
        out, err = capsys.readouterr()
        assert code == EXIT_OK, out + err
        assert "local mesh: Envoy" in out

        # Locust through the environment's client sidecar; the command's own Locust process is gone after
        children = _children()
        code = main(["load", "--mesh-attach", NAME, "cases/load-canary.yaml", *JUDGED, "--users", "4"])
        out, err = capsys.readouterr()
        assert code == EXIT_OK, out + err
        assert "load run passed" in out
        assert _children() <= children

        # pytest, as CI would run it against a developer's environment
        tests = subprocess.run([sys.executable, "-m", "pytest", "cases/canary.yaml::canary-90-10", "--mesh-attach", NAME, "-q",
                                "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=PYTEST_TIMEOUT_S)
        assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr

        code = main(["run", "--mesh-attach", NAME, "cases/three-way-split.yaml"])
        out, err = capsys.readouterr()
        assert code == EXIT_FAILED, out + err
        assert "never redeploys" in out.replace("\n", " ")

        with EnvClient(state.live_state(NAME, on_stale=pytest.fail)) as client:
            after = client.status()
            assert after["objects"] == before["objects"]
            assert after["config_version"] > before["config_version"]
            assert {s["state"] for s in after["sync"]} == {"SYNCED"}
            # The user's route is back: every request to v2 (routing is deterministic at weight 100).
            assert served_versions(client, 40) == {"v2": 40}
        assert env_pids(NAME) == pids  # nothing was restarted
    finally:
        main(["down", "--name", NAME])
    assert_gone(pids)
    assert not state.env_dir(NAME).exists()
