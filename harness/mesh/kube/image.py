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


def package_root() -> Path:
    """The directory that holds the ``harness`` package: the docker build context."""
    return Path(harness.__file__).resolve().parent.parent


def dockerfile_path() -> Path:
    return Path(harness.__file__).resolve().parent / "sample_apps" / "echo" / "Dockerfile"


def source_hash(root: Path) -> str:
    """sha256 over what the image copies (the echo app's files, path and content), the base and the
    Dockerfile; first 12 hex digits."""
    digest = hashlib.sha256(ECHO_BASE_IMAGE.encode())
    files = [root / "harness" / "__init__.py", *(root / "harness" / "sample_apps").rglob("*.py")]
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update(dockerfile_path().read_bytes())
    return digest.hexdigest()[:12]


def image_tag(root: Path, platform: str | None = None) -> str:
    """The source hash, and the CPU when the image is built for a given platform (``0123456789ab-arm64``)."""
    return source_hash(root) + (f"-{platform.rsplit('/', 1)[-1]}" if platform else "")


def image_ref(tag: str, registry: str | None = None) -> str:
    name = f"{registry.rstrip('/')}/{IMAGE_NAME}" if registry else IMAGE_NAME
    return f"{name}:{tag}"


def build_command(docker: str, image: str, root: Path, platform: str | None = None) -> list[str]:
    """``platform`` (``linux/arm64``): the nodes' own, for a cluster whose nodes may not be this machine's CPU."""
    return [docker, "build", "--file", str(dockerfile_path()), "--tag", image,
            *(["--platform", platform] if platform else []), "--build-arg", f"BASE={ECHO_BASE_IMAGE}", str(root)]


def inspect_command(docker: str, image: str) -> list[str]:
    return [docker, "image", "inspect", "--format", "{{.Id}}", image]


def push_command(docker: str, image: str) -> list[str]:
    return [docker, "push", image]


def ensure_image(run: Runner, docker: str, registry: str | None = None, observer: Observer = ignore, *,
                 platform: str | None = None) -> str:
    """Build the echo image unless this exact tag exists locally; push it when a registry is given
    (``observer`` is told of the build and the push with their elapsed time). The tag names the
    platform when one is given, so that an image built for another CPU is never taken."""
    root = package_root()
    image = image_ref(image_tag(root, platform), registry)
    try:
        run(inspect_command(docker, image), what=f"looking for image {image}", timeout_s=_QUERY_TIMEOUT_S)
    except ProcessError:
        with step(observer, "image build", f"docker build -t {image}"):
            run(build_command(docker, image, root, platform), what=f"building the echo image {image}", timeout_s=BUILD_TIMEOUT_S)
    if registry:
        with step(observer, "image push", f"docker push {image}"):
            run(push_command(docker, image), what=f"pushing {image}", timeout_s=PUSH_TIMEOUT_S)
    return image
