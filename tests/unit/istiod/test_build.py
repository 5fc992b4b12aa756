"""Building istiod into the cache, with a fake ``go`` (no network, no compiler) and the real ``git apply``.

The fake module is the pre-image of the shipped patch (its context and removed lines), read-only as
in GOMODCACHE; the fake ``go build`` records the source it would compile and writes a binary.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.cli import EXIT_INVALID, EXIT_MESH, EXIT_OK, main
from harness.errors import CaseError, MeshError, ProcessError
from harness.mesh.local.istiod import build as b
from harness.mesh.local.istiod.build import DEFAULT_ISTIOD_VERSION, IstiodBuild, build_istiod, locate_istiod
from harness.progress import StepDone, StepStarted

PATCH = b.PATCHES_DIR / "nil-multicluster.patch"
TARGET = "pilot/pkg/serviceregistry/serviceentry/controller.go"
NIL_GUARD = "if multiclusterController != nil {"


def pre_image(patch: Path) -> str:
    """The lines the patch expects to find: its context and removed lines."""
    diff = patch.read_text().split("\n@@", 1)[1].splitlines()[1:]
    return "".join(line[1:] + "\n" for line in diff if line[:1] in (" ", "-"))


class FakeGo:
    """Answers ``go version``, ``go list -m``, ``go mod download`` and ``go build``; runs ``git`` for real."""

    def __init__(self, module: Path, resolved: str = DEFAULT_ISTIOD_VERSION) -> None:
        self.module = module
        self.resolved = resolved
        self.calls: list[list[str]] = []
        self.compiled: str | None = None
        self.build_result = 0
        self.download_error = ""
        self.build_error: BaseException | None = None

    def __call__(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        assert "timeout" in kw, f"{argv} without a timeout"
        if argv[0] == "git":
            return subprocess.run(argv, **kw)  # noqa: S603 -- the real patch, on a temp tree
        self.calls.append(argv)
        sub = argv[1]
        if sub == "version":
            return self._done(argv, "go version go1.26.8 linux/amd64\n")
        if sub in ("list", "mod"):
            info: dict[str, str] = {"Path": "istio.io/istio", "Version": self.resolved}
            if self.download_error:
                info["Error"] = self.download_error
            elif sub == "mod":
                info["Dir"] = str(self.module)
            return self._done(argv, json.dumps(info), code=1 if self.download_error else 0)
        assert sub == "build" and kw["cwd"] != self.module
        if self.build_error:
            raise self.build_error
        self.compiled = (Path(kw["cwd"]) / TARGET).read_text()
        if self.build_result:
            lines = "".join(f"go: line {i}\n" for i in range(50))
            return self._done(argv, "", code=self.build_result, err=lines)
        out = Path(argv[argv.index("-o") + 1])
        out.write_text("#!/bin/sh\n")
        out.chmod(0o755)
        return self._done(argv, "")

    @staticmethod
    def _done(argv: list[str], out: str, code: int = 0, err: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, code, out, err)


def make_module(root: Path, controller: str, version_file: str = "1.31") -> Path:
    (root / TARGET).parent.mkdir(parents=True)
    (root / TARGET).write_text(controller)
    (root / "VERSION").write_text(version_file + "\n")
    for path in [*root.rglob("*"), root]:
        path.chmod(path.stat().st_mode & ~0o222)
    return root


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Path]:
    root = make_module(tmp_path / "mod", pre_image(PATCH))
    yield root
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) if cache.exists() else []


def test_build_patches_compiles_and_records_the_build(module: Path, cache: Path) -> None:
    go = FakeGo(module)
    steps: list[str] = []
    built = build_istiod(cache=cache, run=go, progress=lambda name, detail: steps.append(f"{name}: {detail}"))

    assert built == IstiodBuild(cache / DEFAULT_ISTIOD_VERSION / "pilot-discovery", DEFAULT_ISTIOD_VERSION,
                                DEFAULT_ISTIOD_VERSION, "1.31-dev+eed52ebb66ad", ("nil-multicluster",))
    assert go.compiled is not None and NIL_GUARD in go.compiled
    # every patch is shown; the fake module has no file watcher, so file-watch-delay is not needed there
    assert [s.split(":")[0] for s in steps] == ["resolve", "download", "patch", "patch", "compile"]
    assert "file-watch-delay.patch" in steps[2] and "nil-multicluster.patch" in steps[3] and TARGET in steps[3]
    build_cmd = go.calls[-1]
    assert build_cmd[:2] == ["go", "build"] and build_cmd[-1] == "./pilot/cmd/pilot-discovery"
    ldflags = build_cmd[build_cmd.index("-ldflags") + 1]
    assert "-X istio.io/istio/pkg/version.buildVersion=1.31-dev+eed52ebb66ad" in ldflags
    info = json.loads((cache / DEFAULT_ISTIOD_VERSION / "build.json").read_text())
    assert info["patches"] == ["nil-multicluster"] and info["istio_version_file"] == "1.31"
    assert info["patch_set"] == b.patch_set()
    assert info["go_version"].startswith("go version go1.26") and info["module_version"] == DEFAULT_ISTIOD_VERSION
    assert leftovers(cache) == []


def test_cached_build_runs_nothing_and_force_rebuilds(module: Path, cache: Path) -> None:
    first = build_istiod(cache=cache, run=FakeGo(module))
    idle = FakeGo(module)
    assert build_istiod(cache=cache, run=idle) == first and idle.calls == []
    again = FakeGo(module)
    assert build_istiod(cache=cache, run=again, force=True) == first
    assert [c[1] for c in again.calls] == ["version", "list", "mod", "build"]
    assert leftovers(cache) == []


def test_a_tag_is_its_own_label_and_resolves_to_a_pseudo_version(module: Path, cache: Path) -> None:
    go = FakeGo(module, resolved="v0.0.0-20260713165634-56df41f63e51")
    built = build_istiod("1.30.3", cache=cache, run=go)
    assert (built.requested, built.module_version, built.label) == (
        "1.30.3", "v0.0.0-20260713165634-56df41f63e51", "1.30.3")
    assert go.calls[1][-1] == "istio.io/istio@1.30.3"
    assert go.calls[2][-1] == "istio.io/istio@v0.0.0-20260713165634-56df41f63e51"
    assert built.binary == cache / "1.30.3" / "pilot-discovery"


@pytest.mark.parametrize("controller", ["package serviceentry\n// istiod 1.29: no such code\n", "patched"])
def test_patch_not_needed_when_the_code_is_absent_or_already_fixed(tmp_path: Path, cache: Path,
                                                                   controller: str) -> None:
    if controller == "patched":
        controller = pre_image(PATCH).replace(
            "\t\ts.inputs.Namespaces = multiclusterController.ConfigCluster().Namespaces()\n",
            "\t\tif multiclusterController != nil {\n\t\t\ts.inputs.Namespaces = multiclusterController"
            ".ConfigCluster().Namespaces()\n\t\t} else {\n\t\t\ts.inputs.Namespaces = krt.NewStaticCollection"
            '[*v1.Namespace](nil, nil, s.opts.WithName("inputs/Namespaces")...)\n\t\t}\n')
    go = FakeGo(make_module(tmp_path / "mod", controller))
    assert build_istiod(cache=cache, run=go).patches == ()
    assert go.compiled == controller


def test_patch_that_no_longer_fits_fails_naming_it(tmp_path: Path, cache: Path) -> None:
    changed = pre_image(PATCH).replace("\tif !workloadEntryController {", "\tif somethingElse {")
    with pytest.raises(ProcessError, match=r"nil-multicluster.patch does not apply .*controller.go"):
        build_istiod(cache=cache, run=FakeGo(make_module(tmp_path / "mod", changed)))
    assert list(cache.iterdir()) == []


def test_no_go_says_what_to_install(cache: Path) -> None:
    def no_go(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(argv[0])

    with pytest.raises(ProcessError, match=r"`go` was not found on PATH.*Go 1\.26 or newer.*--istiod-binary"):
        build_istiod(cache=cache, run=no_go)
    assert list(cache.iterdir()) == []


def test_download_error_shows_gos_message_and_the_served_versions(module: Path, cache: Path) -> None:
    go = FakeGo(module)
    go.download_error = "istio.io/istio@1.30.3: invalid version: 403 Forbidden"
    with pytest.raises(ProcessError) as caught:
        build_istiod("1.30.3", cache=cache, run=go)
    message = str(caught.value)
    assert "403 Forbidden" in message and "v0.0.0-20260826214018-9739e10eb9d7" in message
    assert "--istiod-binary" in message
    assert list(cache.iterdir()) == []


def test_build_failure_shows_the_last_lines_and_leaves_nothing(module: Path, cache: Path) -> None:
    go = FakeGo(module)
    go.build_result = 1
    with pytest.raises(ProcessError) as caught:
        build_istiod(cache=cache, run=go)
    message = str(caught.value)
    assert "go: line 49" in message and "go: line 30" in message and "go: line 29\n" not in message
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt(), subprocess.TimeoutExpired(["go"], 1800)])
def test_interrupted_or_timed_out_build_leaves_nothing(module: Path, cache: Path, error: BaseException) -> None:
    go = FakeGo(module)
    go.build_error = error
    with pytest.raises(KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else ProcessError):
        build_istiod(cache=cache, run=go)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("version", ["1.30.3", "1.31.0-beta.1", "eed52ebb66ad", "56df41f63e51" * 2,
                                     DEFAULT_ISTIOD_VERSION, "v1.31.0-rc.0.0.20260824154656-b943409680a7"])
def test_versions_accepted(version: str) -> None:
    assert b.check_version(version) == version


@pytest.mark.parametrize("version", ["../etc", "latest", "1.30", "master", "v0.0.0-x/../../y", "EED52EBB66AD", ""])
def test_versions_refused(version: str) -> None:
    with pytest.raises(CaseError, match="expected an Istio release tag"):
        b.check_version(version)


def test_locate_names_the_command_that_builds_it(tmp_path: Path) -> None:
    environ = {"MESH_HARNESS_HOME": str(tmp_path)}
    assert b.istiod_cache_dir(environ) == tmp_path / "istiod"
    with pytest.raises(MeshError, match=r"`mesh-harness istiod build`"):
        locate_istiod(environ=environ)
    with pytest.raises(MeshError, match=r"`mesh-harness istiod build --istio-version 1\.30\.3`"):
        locate_istiod("1.30.3", environ=environ)


def test_locate_finds_the_cached_build(module: Path, tmp_path: Path) -> None:
    built = build_istiod(cache=tmp_path / "istiod", run=FakeGo(module))
    assert locate_istiod(environ={"MESH_HARNESS_HOME": str(tmp_path)}) == built


def test_locate_custom_binary(tmp_path: Path) -> None:
    binary = tmp_path / "pilot-discovery"
    with pytest.raises(CaseError, match="does not exist"):
        locate_istiod(binary=str(binary))
    binary.write_text("#!/bin/sh\n")
    with pytest.raises(CaseError, match="is not executable"):
        locate_istiod(binary=str(binary))
    binary.chmod(0o755)

    def version(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        assert argv[1:] == ["version", "-s"] and "timeout" in kw
        return subprocess.CompletedProcess(argv, 0, "client version: 1.30.3\n", "")

    assert locate_istiod(binary=str(binary), run=version) == IstiodBuild(binary, "custom", "", "1.30.3", ())
    assert locate_istiod(binary=str(binary)).label == "unknown"  # a script that prints nothing


def test_cli_build_when_already_built_and_with_a_bad_version(module: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MESH_HARNESS_HOME", str(tmp_path))
    build_istiod(cache=tmp_path / "istiod", run=FakeGo(module))
    assert main(["istiod", "build"]) == EXIT_OK
    assert "istiod 1.31-dev+eed52ebb66ad is already built" in capsys.readouterr().out
    assert main(["istiod", "build", "--istio-version", "../x"]) == EXIT_INVALID
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["istiod", "build", "--istio-version", "1.30.3"]) == EXIT_MESH
    assert "`go` was not found" in capsys.readouterr().err
    assert not (tmp_path / "istiod" / "1.30.3").exists()


def test_cli_mesh_options_take_an_istiod_binary() -> None:
    from harness.cli import _parser

    assert _parser().parse_args(["run", "--istiod-binary", "/x/pilot-discovery"]).istiod_binary == "/x/pilot-discovery"


def test_the_patch_ships_with_a_reason_and_a_real_diff() -> None:
    text = PATCH.read_text()
    assert text.startswith("nil-multicluster: ") and "\n--- a/" + TARGET + "\n+++ b/" + TARGET + "\n" in text
    assert NIL_GUARD in text and os.access(PATCH, os.R_OK)


def test_a_build_made_with_other_patches_is_not_used(module: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_istiod(cache=cache, run=FakeGo(module))
    info_path = cache / DEFAULT_ISTIOD_VERSION / "build.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "patch_set": "0000000000000000"}))
    monkeypatch.setenv("MESH_HARNESS_HOME", str(cache.parent))
    monkeypatch.setattr(b, "istiod_cache_dir", lambda environ=None: cache)
    with pytest.raises(MeshError, match="was built with other patches than this mesh-harness applies"):
        b.locate_istiod()
    rebuilt = build_istiod(cache=cache, run=FakeGo(module))
    assert json.loads(info_path.read_text())["patch_set"] == b.patch_set() and rebuilt.binary.is_file()


@pytest.fixture
def go_faked(module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_command`` (and the CLI) build into a temporary home with the fake Go toolchain."""
    monkeypatch.setenv("MESH_HARNESS_HOME", str(tmp_path / "home"))
    real = build_istiod
    monkeypatch.setattr(b, "build_istiod", lambda version, progress, force: real(
        version, cache=tmp_path / "home" / "istiod", run=FakeGo(module), progress=progress, force=force))


@pytest.mark.usefixtures("go_faked")
def test_build_command_tells_each_step_and_its_elapsed_time_to_the_observer() -> None:
    # The same seam as a run's steps: StepStarted as a step begins, StepDone (with seconds) as the next begins.
    seen: list[object] = []
    b.build_command(None, force=False, console=Console(file=io.StringIO()), observer=seen.append)
    started = [e.name for e in seen if isinstance(e, StepStarted)]
    done = [e for e in seen if isinstance(e, StepDone)]
    assert started == ["resolve", "download", "patch", "patch", "compile"]
    assert [e.name for e in done] == started and all(e.ok and e.seconds >= 0 for e in done)
    assert [type(e) for e in seen] == [StepStarted, StepDone] * 5  # each step ends before the next starts


@pytest.mark.usefixtures("go_faked")
def test_cli_istiod_build_in_a_log_prints_each_step_as_a_run_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["istiod", "build"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1].rstrip(":") for line in lines if line.endswith("...")] == ["resolve", "download", "patch", "patch",
                                                                          "compile"]
    assert sum(1 for line in lines if "✓ compile (" in line) == 1
    assert lines[-2].startswith("built istiod 1.31-dev+eed52ebb66ad")
