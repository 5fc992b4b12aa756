"""The command-line tools and libraries the real-Istio meshes need, found or fetched with clear messages.

kind, kubectl and docker are used as users install them: found on PATH (a pinned download goes
stale and breaks on new Kubernetes, as pytest-kind's did). istioctl is version-bound to the Istio
it installs, so ``ensure_istioctl`` fetches the pinned release from Istio's archive into a cache
dir when no matching binary is cached, and checks it against the published ``.sha256`` before
unpacking. The HTTP transport is a parameter so that the download path is unit tested with
``httpx.MockTransport`` (this machine has no internet).
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import tarfile
from pathlib import Path
from types import ModuleType

import httpx

from harness.errors import MeshError
from harness.mesh.kube.versions import ISTIOCTL_URL

INSTALL_HINTS = {
    "docker": "install Docker (https://docs.docker.com/engine/install/) and make sure `docker info` works",
    "kind": "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), e.g. `go install sigs.k8s.io/kind@latest`",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/); it runs the pod port-forwards",
}
_DOWNLOAD_TIMEOUT_S = 120.0


class ToolMissing(MeshError):
    """A command-line tool the chosen mesh needs is not on PATH."""


def find_tool(name: str, *, needed_for: str, path: str | None = None) -> str:
    """The absolute path of ``name`` on PATH (or ``path``), else ToolMissing saying how to install it."""
    found = shutil.which(name, path=path)
    if found is None:
        hint = INSTALL_HINTS.get(name, f"install {name}")
        raise ToolMissing(f"{needed_for} needs `{name}`, which is not on PATH; {hint}, or run with --mesh local")
    return found


def kubernetes_client() -> ModuleType:
    """The ``kubernetes`` package, imported lazily: it is the optional extra ``kube``."""
    try:
        import kubernetes
    except ImportError as exc:
        raise MeshError("the kind and cluster meshes need the kubernetes client: "
                        "pip install 'mesh-harness[kube]'") from exc
    return kubernetes


def istioctl_platform(system: str | None = None, machine: str | None = None) -> str:
    """Istio's archive name for this OS and CPU: ``linux-amd64``, ``linux-arm64``, ``osx-arm64`` ..."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    os_name = {"linux": "linux", "darwin": "osx"}.get(system)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if os_name is None or arch is None:
        raise MeshError(f"no istioctl release for {system}/{machine}; put istioctl on PATH and pass --istioctl")
    return f"{os_name}-{arch}"


def istioctl_url(version: str, platform_name: str) -> str:
    return ISTIOCTL_URL.format(version=version, platform=platform_name)


def default_cache_dir() -> Path:
    """``$MESH_HARNESS_CACHE``, else ``$XDG_CACHE_HOME/mesh-harness``, else ``~/.cache/mesh-harness``."""
    explicit = os.environ.get("MESH_HARNESS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mesh-harness"


def ensure_istioctl(version: str, cache_dir: Path, *, transport: httpx.BaseTransport | None = None,
                    platform_name: str | None = None) -> Path:
    """``cache_dir/istioctl-<version>/istioctl``, downloaded and checksum-verified when absent."""
    target = cache_dir / f"istioctl-{version}" / "istioctl"
    if target.is_file():
        return target
    url = istioctl_url(version, platform_name or istioctl_platform())
    with httpx.Client(transport=transport, timeout=_DOWNLOAD_TIMEOUT_S, follow_redirects=True) as http:
        archive = _get(http, url).content
        published = _get(http, url + ".sha256").text
    expected = parse_sha256_file(published, url)
    actual = hashlib.sha256(archive).hexdigest()
    if actual != expected:
        raise MeshError(f"{url}: checksum mismatch, the published .sha256 says {expected}, the download hashes to "
                        f"{actual}; nothing was installed (retry, or put istioctl {version} on PATH)")
    binary = extract_istioctl(archive, url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)  # atomic: a concurrent run sees no binary or a whole one
    return target


def parse_sha256_file(text: str, url: str) -> str:
    """The hex digest of a ``sha256sum`` line (``<hex>  <file>``)."""
    digest = text.strip().split()[0].lower() if text.strip() else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise MeshError(f"{url}.sha256: expected '<64 hex digits>  <file>', got {text[:200]!r}")
    return digest


def extract_istioctl(archive: bytes, url: str) -> bytes:
    """The ``istioctl`` member of a release tarball."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and Path(m.name).name == "istioctl"), None)
            if member is None:
                raise MeshError(f"{url}: the archive has no istioctl binary")
            extracted = tar.extractfile(member)
            assert extracted is not None  # a regular file member always has content
            return extracted.read()
    except tarfile.TarError as exc:
        raise MeshError(f"{url}: not a gzip tar archive: {exc}") from exc


def _get(http: httpx.Client, url: str) -> httpx.Response:
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise MeshError(f"could not download {url}: {exc}; put istioctl on PATH or pass --istioctl") from exc
    if response.status_code != 200:
        raise MeshError(f"could not download {url}: HTTP {response.status_code}; is the Istio version right?")
    return response
