"""Real istiod for the local mesh: ``pilot-discovery`` built from the ``istio.io/istio`` Go module, cached per version.

``--control-plane istiod`` runs Istio's own translation instead of the builtin one, so it needs a
``pilot-discovery`` binary. Istio publishes none outside container images, so it is built here
from the Go module (``go mod download``, patch, ``go build``): minutes the first time, then taken
from ``$MESH_HARNESS_HOME/istiod/<version>/`` (``pilot-discovery`` plus ``build.json``, what was built
and how). A build happens in a temporary sibling directory that is renamed into place once
complete, so an interrupted or failed build never leaves a half-built entry (as for the Envoy
wheels in ``envoy_wheels.py``).

The patches in ``patches/`` make istiod run without a Kubernetes API server, as the local mesh runs
it; each one is applied only to the versions that have the code it fixes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.errors import CaseError, MeshError, ProcessError
from harness.paths import home
from harness.progress import Observer, Steps, ignore

MODULE = "istio.io/istio"
MAIN_PACKAGE = "./pilot/cmd/pilot-discovery"
BINARY = "pilot-discovery"
BUILD_INFO = "build.json"
CACHE_SUBDIR = "istiod"
PATCHES_DIR = Path(__file__).parent / "patches"

# The newest Istio the Go module proxy reachable from where this was written serves (master, 1.31-dev,
# of 2026-08-27): that proxy refuses Istio's release tags (403 "This module version is not available").
# With the public proxy, pass `--istio-version 1.30.3` (Istio's tags have no "v"; Go resolves one to
# the pseudo-version of its commit).
DEFAULT_ISTIOD_VERSION = "v0.0.0-20260827124520-eed52ebb66ad"
KNOWN_SERVED = (DEFAULT_ISTIOD_VERSION, "v0.0.0-20260826214018-9739e10eb9d7", "v0.0.0-20260423205519-b01690e6db7d")
"""Versions that module proxy was seen serving; named when a version cannot be downloaded."""

DOWNLOAD_TIMEOUT_S = 15 * 60.0
"""Resolving and downloading the module (~60 MB unpacked) over a slow proxy."""
BUILD_TIMEOUT_S = 30 * 60.0
"""The first build also downloads ~230 dependency modules and compiles for several minutes on 2 cores."""
QUICK_TIMEOUT_S = 60.0
"""``go version``, ``git apply``, ``pilot-discovery version``: seconds, unless something hangs."""
ERROR_TAIL_LINES = 20

_TAG = re.compile(r"^1\.\d{1,3}\.\d{1,3}(-(alpha|beta|rc)\.\d{1,3})?$")
_COMMIT = re.compile(r"^[0-9a-f]{12,40}$")
_PSEUDO = re.compile(r"^v\d+\.\d+\.\d+-(?:[0-9A-Za-z]+\.)*\d{14}-(?P<commit>[0-9a-f]{12})$")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
StepHook = Callable[[str, str], None]
"""Told each step as it starts: its name (resolve, download, patch, compile) and what it does."""


@dataclass(frozen=True)
class IstiodBuild:
    """A ``pilot-discovery`` binary and what it is."""

    binary: Path
    requested: str
    """The version spelling asked for, or "custom" for ``--istiod-binary``."""
    module_version: str
    """The resolved Go module version ("" for a custom binary)."""
    label: str
    """Stamped as Istio's build version, e.g. "1.31-dev+eed52ebb66ad" (a custom binary: its ``version -s``, or "unknown")."""
    patches: tuple[str, ...]
    """Names of the patches applied (``nil-multicluster``)."""


def istiod_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$MESH_HARNESS_HOME/istiod`` (default ``~/.cache/mesh-harness/istiod``)."""
    return home(environ) / CACHE_SUBDIR


def check_version(version: str) -> str:
    """``version`` if it is an Istio tag, a commit or a Go pseudo-version; it names a cache directory, so nothing else."""
    if _TAG.match(version) or _COMMIT.match(version) or _PSEUDO.match(version):
        return version
    raise CaseError(f"--istio-version {version!r}: expected an Istio release tag (1.30.3), a commit (12 to 40 hex "
                    f"digits) or a Go pseudo-version of {MODULE} ({DEFAULT_ISTIOD_VERSION})")


def locate_istiod(version: str | None = None, binary: str | None = None, environ: Mapping[str, str] = os.environ,
                  *, run: Runner = subprocess.run) -> IstiodBuild:
    """The istiod to run, without building: ``binary`` if given, else the cached build of ``version``
    (default ``DEFAULT_ISTIOD_VERSION``); raises saying which command builds it when it is not cached."""
    if binary is not None:
        return _custom(Path(binary), run)
    version = check_version(version or DEFAULT_ISTIOD_VERSION)
    found = _cached(istiod_cache_dir(environ) / version)
    if found is None:
        stale = (istiod_cache_dir(environ) / version / BINARY).exists()
        why = "was built with other patches than this mesh-harness applies" if stale else "is not built"
        raise MeshError(f"istiod {version} {why}; build it (several minutes the first time) with "
                        f"`{build_command_line(version)}`, or pass --istiod-binary PATH")
    return found


def build_command_line(version: str) -> str:
    flag = "" if version == DEFAULT_ISTIOD_VERSION else f" --istio-version {version}"
    return f"mesh-harness istiod build{flag}"


def build_istiod(version: str | None = None, *, cache: Path | None = None, run: Runner = subprocess.run,
                 progress: StepHook | None = None, force: bool = False) -> IstiodBuild:
    """Build ``pilot-discovery`` of ``version`` (default ``DEFAULT_ISTIOD_VERSION``) into ``cache``
    (default ``istiod_cache_dir()``), or return the cached build unless ``force``."""
    version = check_version(version or DEFAULT_ISTIOD_VERSION)
    cache = cache or istiod_cache_dir()
    entry = cache / version
    if not force and (found := _cached(entry)) is not None:
        return found
    step = progress or (lambda name, detail: None)
    started = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".build-{version}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        out = work / "entry"
        out.mkdir(parents=True)
        go_version = _go(run, ["version"], cache, QUICK_TIMEOUT_S, "ask go its version").stdout.strip()
        step("resolve", f"go list -m {MODULE}@{version}")
        module_version = _resolve(run, version, cache)
        step("download", f"go mod download {MODULE}@{module_version}, copied to a writable build directory")
        module_dir = _download(run, module_version, cache)
        src = work / "src"
        shutil.copytree(module_dir, src, symlinks=True)
        _make_writable(src)
        istio_version = _read_text(src / "VERSION") or "unknown"
        label = _label(version, module_version, istio_version)
        applied = tuple(p.stem for p in sorted(PATCHES_DIR.glob("*.patch")) if _apply_patch(p, src, run, step))
        step("compile", f"go build {MAIN_PACKAGE} as Istio {label} (the first build downloads ~230 modules "
                        "and compiles for several minutes)")
        _go(run, ["build", "-trimpath", "-buildvcs=false", "-ldflags", _ldflags(label, module_version),
                  "-o", str(out / BINARY), MAIN_PACKAGE], src, BUILD_TIMEOUT_S, f"build istiod {label}")
        info = {"requested": version, "module_version": module_version, "istio_version_file": istio_version,
                "label": label, "go_version": go_version, "patches": list(applied), "patch_set": patch_set(),
                "build_seconds": round(time.monotonic() - started, 1),
                "built_at": datetime.now(UTC).isoformat(timespec="seconds")}
        (out / BUILD_INFO).write_text(json.dumps(info, indent=1) + "\n")
        _move_into_place(out, entry, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return IstiodBuild(entry / BINARY, version, module_version, label, applied)


def module_source(version: str | None = None, *, cache: Path | None = None, run: Runner = subprocess.run) -> Path:
    """The ``istio.io/istio`` module of ``version`` (default ``DEFAULT_ISTIOD_VERSION``) in Go's module cache,
    downloaded as the build downloads it (read-only; ``mesh-harness istiod build`` leaves it there): its
    files, such as the CRD schemas, are istiod's own at that version. ProcessError without Go or the module."""
    version = check_version(version or DEFAULT_ISTIOD_VERSION)
    cache = cache or istiod_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return _download(run, _resolve(run, version, cache), cache)


def _resolve(run: Runner, version: str, cwd: Path) -> str:
    return str(_module_json(run, ["list", "-m", "-json", f"{MODULE}@{version}"], cwd)["Version"])


def _download(run: Runner, module_version: str, cwd: Path) -> Path:
    return Path(_module_json(run, ["mod", "download", "-json", f"{MODULE}@{module_version}"], cwd)["Dir"])


def build_command(version: str | None, *, force: bool, console: Console, observer: Observer = ignore) -> None:
    """``mesh-harness istiod build``: each step told to ``observer`` with its elapsed time (the CLI draws them as
    every long step of a run), then the binary, label and total time printed."""
    version = check_version(version or DEFAULT_ISTIOD_VERSION)
    started = time.monotonic()
    found = None if force else _cached(istiod_cache_dir() / version)
    if found is not None:
        console.print(f"istiod {found.label} is already built ({version}; --force rebuilds it):\n  {found.binary}",
                      highlight=False, soft_wrap=True)
        return
    steps = Steps(observer)
    try:
        build = build_istiod(version, progress=steps, force=force)
    except BaseException:
        steps.close(ok=False)
        raise
    steps.close()
    patches = ", ".join(build.patches) or "none (not needed by this version)"
    console.print(f"built istiod {build.label} ({MODULE}@{build.module_version}, patches: {patches}) in "
                  f"{time.monotonic() - started:.0f}s:\n  {build.binary}", highlight=False, soft_wrap=True)


def patch_set() -> str:
    """A digest of the patches this harness applies: a build made with other patches is built again."""
    digest = hashlib.sha256()
    for patch in sorted(PATCHES_DIR.glob("*.patch")):
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes())
    return digest.hexdigest()[:16]


def _cached(entry: Path) -> IstiodBuild | None:
    """The complete build in ``entry`` (its binary and ``build.json``) made with today's patches, or None."""
    binary = entry / BINARY
    try:
        info: dict[str, Any] = json.loads((entry / BUILD_INFO).read_text())
        if info.get("patch_set") != patch_set():
            return None
        found = IstiodBuild(binary, str(info["requested"]), str(info["module_version"]), str(info["label"]),
                            tuple(str(p) for p in info["patches"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _is_executable(binary) else None


def _custom(binary: Path, run: Runner) -> IstiodBuild:
    if not _is_executable(binary):
        what = "is not executable" if binary.is_file() else "does not exist"
        raise CaseError(f"--istiod-binary {binary}: {what}; give a pilot-discovery binary, or leave the option out "
                        f"to use the build of `{build_command_line(DEFAULT_ISTIOD_VERSION)}`")
    try:
        done = run([str(binary), "version", "-s"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                   timeout=QUICK_TIMEOUT_S)
        lines = done.stdout.strip().splitlines() if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        lines = []
    # pilot-discovery prints "client version: 1.30.3"
    label = lines[0].removeprefix("client version:").strip() if lines else ""
    return IstiodBuild(binary, "custom", "", label or "unknown", ())


def _go(run: Runner, args: Sequence[str], cwd: Path, timeout_s: float, what: str,
        *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``go args...`` in ``cwd``; a missing go, a timeout or (with ``check``) a failure raised as ``ProcessError``
    with go's last lines."""
    try:
        done = run(["go", *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise ProcessError("`go` was not found on PATH: building istiod needs Go 1.26 or newer (https://go.dev/dl/); "
                           "or pass --istiod-binary PATH to use an existing pilot-discovery build") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(f"could not {what}: `go {args[0]}` did not finish within {timeout_s:g}s") from exc
    if check and done.returncode != 0:
        raise ProcessError(f"could not {what}: `go {args[0]}` exited {done.returncode}; its last lines:\n"
                           + _tail(done.stderr or done.stdout))
    return done


def _module_json(run: Runner, args: Sequence[str], cwd: Path) -> dict[str, Any]:
    """What ``go list -m -json`` / ``go mod download -json`` says about the module; its error raised with
    the versions known to be served and the way around building."""
    done = _go(run, args, cwd, DOWNLOAD_TIMEOUT_S, f"resolve {args[-1]}", check=False)
    try:
        info: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    except ValueError:
        info = {}
    error = info.get("Error") or (done.stderr.strip() if done.returncode != 0 else "")
    if error or not info.get("Version") or (args[0] == "mod" and not info.get("Dir")):
        raise ProcessError(f"could not download {args[-1]} with `go {' '.join(args)}`:\n{error or _tail(done.stdout)}\n"
                           f"This module proxy may not serve Istio's release tags; versions seen served: "
                           f"{', '.join(KNOWN_SERVED)}. Or pass --istiod-binary PATH to use an existing build")
    return info


def _apply_patch(patch: Path, src: Path, run: Runner, step: StepHook) -> bool:
    """Apply ``patch`` to the module in ``src`` if that version has the code it fixes: True if applied,
    False when not needed (the lines it changes are absent, or already changed)."""
    text = patch.read_text()
    summary, diff = text.splitlines()[0].partition(": ")[2], text[text.index("\n--- a/"):]
    files = re.findall(r"^\+\+\+ b/(\S+)", diff, re.M)
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    step("patch", f"{patch.name}: {summary} ({', '.join(files)})")
    if _git_apply(run, patch, src, "--check"):
        if not _git_apply(run, patch, src):
            raise ProcessError(f"could not apply {patch.name} to {src}")
        return True
    if _git_apply(run, patch, src, "--reverse", "--check"):
        return False  # this version already has the fix
    sources = "".join(_read_text(src / f) for f in files)
    if not all(line in sources for line in removed):
        return False  # this version has no such code (istiod 1.29 and older)
    raise ProcessError(f"{patch.name} does not apply to this version of {MODULE}: the code it changes in "
                       f"{', '.join(files)} differs; the patch needs updating for it")


def _git_apply(run: Runner, patch: Path, src: Path, *flags: str) -> bool:
    # GIT_CEILING_DIRECTORIES: the cache may sit inside a git work tree, whose root git apply would patch relative to
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(src.parent)}
    try:
        done = run(["git", "apply", *flags, str(patch)], cwd=src, env=env, stdin=subprocess.DEVNULL,
                   capture_output=True, text=True, timeout=QUICK_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise ProcessError(f"`git` was not found on PATH: it applies {patch.name} to the istiod sources") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(f"`git apply {patch.name}` did not finish within {QUICK_TIMEOUT_S:g}s") from exc
    return done.returncode == 0


def _label(requested: str, module_version: str, istio_version: str) -> str:
    """The tag itself for a release tag, else "<VERSION file>-dev+<commit>" (``1.31-dev+eed52ebb66ad``)."""
    if _TAG.match(requested):
        return requested
    pseudo = _PSEUDO.match(module_version)
    return f"{istio_version}-dev+{pseudo['commit'] if pseudo else module_version}"


def _ldflags(label: str, module_version: str) -> str:
    """Strip the symbol tables (a third of the size) and stamp what ``pilot-discovery version`` prints."""
    flags = ["-s", "-w", f"-X istio.io/istio/pkg/version.buildVersion={label}"]
    if pseudo := _PSEUDO.match(module_version):
        flags.append(f"-X istio.io/istio/pkg/version.buildGitRevision={pseudo['commit']}")
    return " ".join(flags)


def _move_into_place(out: Path, entry: Path, work: Path) -> None:
    """Rename the finished build to ``entry``; an entry there already (``--force``) is moved aside first,
    and one that another build finished meanwhile is kept."""
    if entry.exists():
        entry.rename(work / "replaced")
    try:
        out.rename(entry)
    except OSError:
        if _cached(entry) is None:  # not another process finishing the same build first
            raise


def _make_writable(root: Path) -> None:
    """The module cache is read-only; the copy is patched and later removed."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-ERROR_TAIL_LINES:])


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
