"""istioctl download: checksum-verified, cached, with clear errors. The real download cannot run here (no
internet): it is driven through httpx.MockTransport serving a tarball made in the test."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import httpx
import pytest

from harness.errors import MeshError
from harness.mesh.kube.tools import ensure_istioctl, istioctl_platform, istioctl_url

URL = "https://github.com/istio/istio/releases/download/1.30.3/istioctl-1.30.3-linux-amd64.tar.gz"


def tarball(binary: bytes = b"#!istioctl\n", name: str = "istioctl") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(binary)
        tar.addfile(info, io.BytesIO(binary))
    return out.getvalue()


def transport(archive: bytes, checksum: str | None = None, status: int = 200) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if status != 200:
            return httpx.Response(status)
        if str(request.url).endswith(".sha256"):
            digest = checksum or hashlib.sha256(archive).hexdigest()
            return httpx.Response(200, text=f"{digest}  istioctl-1.30.3-linux-amd64.tar.gz\n")
        return httpx.Response(200, content=archive)

    return httpx.MockTransport(handle), seen


def test_kube_istioctl_url_and_platforms() -> None:
    assert istioctl_url("1.30.3", "linux-amd64") == URL
    assert istioctl_platform("Linux", "x86_64") == "linux-amd64"
    assert istioctl_platform("Darwin", "arm64") == "osx-arm64"
    with pytest.raises(MeshError, match="no istioctl release for windows/x86_64"):
        istioctl_platform("Windows", "x86_64")


def test_kube_istioctl_downloaded_verified_and_cached(tmp_path: Path) -> None:
    mock, seen = transport(tarball())
    path = ensure_istioctl("1.30.3", tmp_path, transport=mock, platform_name="linux-amd64")
    assert path == tmp_path / "istioctl-1.30.3" / "istioctl"
    assert path.read_bytes() == b"#!istioctl\n" and path.stat().st_mode & 0o111
    assert seen == [URL, URL + ".sha256"]
    again, seen_again = transport(b"")
    assert ensure_istioctl("1.30.3", tmp_path, transport=again, platform_name="linux-amd64") == path
    assert seen_again == []


def test_kube_istioctl_checksum_mismatch_installs_nothing(tmp_path: Path) -> None:
    mock, _ = transport(tarball(), checksum="0" * 64)
    with pytest.raises(MeshError, match=r"checksum mismatch, the published .sha256 says 0{64}, the download hashes to"):
        ensure_istioctl("1.30.3", tmp_path, transport=mock, platform_name="linux-amd64")
    assert not (tmp_path / "istioctl-1.30.3").exists()


def test_kube_istioctl_download_errors(tmp_path: Path) -> None:
    mock, _ = transport(b"", status=404)
    with pytest.raises(MeshError, match=r"could not download .*istioctl-9.9.9-linux-amd64.tar.gz: HTTP 404; is the Istio version right"):
        ensure_istioctl("9.9.9", tmp_path, transport=mock, platform_name="linux-amd64")
    mock, _ = transport(tarball(name="README.md"))
    with pytest.raises(MeshError, match="the archive has no istioctl binary"):
        ensure_istioctl("1.30.3", tmp_path, transport=mock, platform_name="linux-amd64")
    mock, _ = transport(b"not a tarball")
    with pytest.raises(MeshError, match="not a gzip tar archive"):
        ensure_istioctl("1.30.3", tmp_path, transport=mock, platform_name="linux-amd64")
    mock, _ = transport(tarball(), checksum="nonsense")
    with pytest.raises(MeshError, match=r"\.sha256: expected '<64 hex digits>  <file>'"):
        ensure_istioctl("1.30.3", tmp_path, transport=mock, platform_name="linux-amd64")
