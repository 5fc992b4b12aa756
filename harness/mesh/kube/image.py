"""The echo image: its tag, and the docker build / kind load / docker push command lines (pure), and the build.

The image is built from this installed harness (``harness/sample_apps/echo/Dockerfile``, context =
the directory that holds the ``harness`` package), so the pods run the same echo app as the local
mesh. Its tag is a hash of the harness sources: a changed app gets a new tag, and an unchanged one
is not rebuilt (``docker image inspect`` finds it). For ``--mesh cluster`` the image is pushed to
``--image-registry``; kind gets it with ``kind load docker-image`` and never pulls it
(``imagePullPolicy: IfNotPresent`` with a tag that is not ``latest``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import harness
from harness.errors import ProcessError
from harness.mesh.kube.commands import Runner
from harness.mesh.kube.versions import ECHO_BASE_IMAGE
from harness.progress import Observer, ignore, step

IMAGE_NAME = "mesh-harness-echo"
BUILD_TIMEOUT_S = 900.0
PUSH_TIMEOUT_S = 600.0
_QUERY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ImageSpec:
    """An image built from this installed harness: its name, its Dockerfile and the sources it copies
    (globs under the package root), which with ``build_args`` make its tag. ``ECHO`` is the apps' image;
    the Locust worker pods of ``load --mesh kind`` have one of their own (``harness.load.kube``)."""

    name: str
    dockerfile: str
    sources: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...] = ()


ECHO = ImageSpec(IMAGE_NAME, "harness/sample_apps/echo/Dockerfile", ("harness/__init__.py", "harness/sample_apps/**/*.py"))


def package_root() -> Path:
    """The directory that holds the ``harness`` package: the docker build context."""
    return Path(harness.__file__).resolve().parent.parent


def dockerfile_path(spec: ImageSpec = ECHO) -> Path:
    return package_root() / spec.dockerfile


def source_hash(root: Path, spec: ImageSpec = ECHO) -> str:
    """sha256 over what the image copies (its files, path and content), the base, the Dockerfile and
    the other build arguments; first 12 hex digits."""
    digest = hashlib.sha256(ECHO_BASE_IMAGE.encode())
    files = {path for pattern in spec.sources for path in root.glob(pattern)}
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update((root / spec.dockerfile).read_bytes())
    for name, value in spec.build_args:
        digest.update(f"{name}={value}".encode())
    return digest.hexdigest()[:12]


def image_tag(root: Path, platform: str | None = None, spec: ImageSpec = ECHO) -> str:
    """The source hash, and the CPU when the image is built for a given platform (``0123456789ab-arm64``)."""
    return source_hash(root, spec) + (f"-{platform.rsplit('/', 1)[-1]}" if platform else "")


def image_ref(tag: str, registry: str | None = None, spec: ImageSpec = ECHO) -> str:
    name = f"{registry.rstrip('/')}/{spec.name}" if registry else spec.name
    return f"{name}:{tag}"


def build_command(docker: str, image: str, root: Path, platform: str | None = None, spec: ImageSpec = ECHO) -> list[str]:
    """``platform`` (``linux/arm64``): the nodes' own, for a cluster whose nodes may not be this machine's CPU."""
    args = [("BASE", ECHO_BASE_IMAGE), *spec.build_args]
    return [docker, "build", "--file", str(root / spec.dockerfile), "--tag", image,
            *(["--platform", platform] if platform else []),
            *(arg for name, value in args for arg in ("--build-arg", f"{name}={value}")), str(root)]


def inspect_command(docker: str, image: str) -> list[str]:
    return [docker, "image", "inspect", "--format", "{{.Id}}", image]


def push_command(docker: str, image: str) -> list[str]:
    return [docker, "push", image]


def ensure_image(run: Runner, docker: str, registry: str | None = None, observer: Observer = ignore, *,
                 platform: str | None = None, spec: ImageSpec = ECHO) -> str:
    """Build the ``spec`` image (default: the echo image) unless this exact tag exists locally; push it when a registry is given
    (``observer`` is told of the build and the push with their elapsed time). The tag names the
    platform when one is given, so that an image built for another CPU is never taken."""
    root = package_root()
    image = image_ref(image_tag(root, platform, spec), registry, spec)
    try:
        run(inspect_command(docker, image), what=f"looking for image {image}", timeout_s=_QUERY_TIMEOUT_S)
    except ProcessError:
        with step(observer, "image build", f"docker build -t {image}"):
            run(build_command(docker, image, root, platform, spec), what=f"building the image {image}",
                timeout_s=BUILD_TIMEOUT_S)
    if registry:
        with step(observer, "image push", f"docker push {image}"):
            run(push_command(docker, image), what=f"pushing {image}", timeout_s=PUSH_TIMEOUT_S)
    return image
