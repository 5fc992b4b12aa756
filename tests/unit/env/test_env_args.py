"""Argument parsing of the environment commands, and the errors that need no running mesh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import EXIT_INVALID, EXIT_MESH, EXIT_OK, _parser, main
from harness.env import state
from harness.env.commands import parse_headers
from harness.errors import CaseError


def test_env_args_every_command_takes_name_with_default() -> None:
    parser = _parser()
    for argv in (["up"], ["apply", "f.yaml"], ["delete", "f.yaml"], ["send", "http://reviews:9080/"], ["status"],
                 ["routes", "reviews"], ["logs"], ["down"]):
        assert parser.parse_args(argv).env == "default"
        assert parser.parse_args([*argv, "--name", "b"]).env == "b"


def test_env_args_send_curl_like_options() -> None:
    args = _parser().parse_args(["send", "http://reviews:9080/x", "-H", "a: 1", "-H", "b:2", "-n", "200", "-c", "8",
                                 "-X", "POST"])
    assert (args.url, args.headers, args.count, args.concurrency, args.method) == (
        "http://reviews:9080/x", ["a: 1", "b:2"], 200, 8, "POST")


def test_env_args_send_count_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["send", "http://reviews:9080/", "-n", "0"])
    assert "must be at least 1 (got 0)" in capsys.readouterr().err


def test_env_args_up_logs_and_apply() -> None:
    parser = _parser()
    up = parser.parse_args(["up", "--services", "s.yaml", "--mesh", "local"])
    assert (up.services, up.mesh, up.envoy_binary) == ("s.yaml", "local", None)
    logs = parser.parse_args(["logs", "reviews/v2", "--envoy", "-f", "--for", "2"])
    assert (logs.target, logs.envoy, logs.follow, logs.follow_for) == ("reviews/v2", True, True, 2.0)
    assert parser.parse_args(["apply", "a.yaml", "b.yaml"]).files == ["a.yaml", "b.yaml"]


def test_env_headers_parse_like_curl() -> None:
    assert parse_headers(["end-user: jason", "x:  a:b "]) == [("end-user", "jason"), ("x", "a:b")]
    with pytest.raises(CaseError, match="-H: expected 'Name: value', got 'oops'"):
        parse_headers(["oops"])


def test_env_missing_environment_exit_and_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MESH_HARNESS_HOME", str(tmp_path))
    assert main(["status", "--name", "nope"]) == EXIT_MESH
    assert "no environment 'nope' is running; start one with: mesh-harness up --name nope" in capsys.readouterr().err
    assert main(["down", "--name", "nope"]) == EXIT_OK
    assert "environment 'nope' is not running" in capsys.readouterr().out


def test_env_up_refuses_a_bad_services_file_before_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MESH_HARNESS_HOME", str(tmp_path / "home"))
    bad = tmp_path / "services.yaml"
    bad.write_text("services:\n  reviews:\n    versions: [v1]\n    replicas: {v9: 2}\n")
    assert main(["up", "--services", str(bad)]) == EXIT_INVALID
    assert f"{bad}:4: services.reviews.replicas.v9: not one of this service's versions (v1), got \"v9\"" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


def test_env_apply_refuses_invalid_yaml_before_contacting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MESH_HARNESS_HOME", str(tmp_path))
    bad = tmp_path / "vs.yaml"
    bad.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
                   "spec:\n  hosts: [reviews]\n  http:\n    - route:\n        - destination: {host: reviews}\n"
                   "          wieght: 5\n")
    assert main(["apply", str(bad)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "nothing was applied" in err
    assert f"{bad}:9: VirtualService/r: spec.http[0].route[0].wieght: unknown field; did you mean weight?" in err


def test_env_down_of_a_dead_daemon_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MESH_HARNESS_HOME", str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    path = state.make_env_dir(state.env_dir("gone"))
    state.write_state(path, state.EnvState("gone", proc.pid, 1, "t", "local", 0.0))
    assert main(["down", "--name", "gone"]) == EXIT_OK
    assert f"environment 'gone' was stale (daemon pid {proc.pid} is gone); cleaned up {path}" in capsys.readouterr().out
    assert not path.exists()
