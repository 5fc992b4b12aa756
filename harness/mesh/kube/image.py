"""The echo image: its tag, and the docker build / kind load / docker push command lines (pure), and the build.

The image is built from this installed harness, so the pods run the same echo app as the local mesh.
Its files are named by their paths in the build context, which are import paths
(``harness/sample_apps/echo/Dockerfile``): they are found through ``importlib.resources`` wherever the
packages are installed (a wheel in site-packages; an editable install, where ``harness.sample_apps`` is
the checkout's top-level ``sample_apps/``), and copied into a temporary build context for the build
only, so the Dockerfiles' ``COPY harness/...`` lines hold for every install. The tag is a hash of
those files: a changed app gets a new tag, and an unchanged one is not rebuilt (``docker image
inspect`` finds it). For ``--mesh cluster`` the image is pushed to ``--image-registry``; kind gets it
with ``kind load docker-image`` and never pulls it (``imagePullPolicy: IfNotPresent`` with a tag that
is not ``latest``).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

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
    """An image built from this installed harness: its name, its Dockerfile and the sources it copies,
    which with ``build_args`` make its tag. Both are paths in the build context (``sources`` may be
    globs) whose directories, up to the first glob, name an installed package: ``harness/sample_apps/**/*.py``
    is ``**/*.py`` in ``harness.sample_apps``. ``ECHO`` is the apps' image; the Locust worker pods of
    ``load --mesh kind`` have one of their own (``harness.locust.kube``)."""

    name: str
    dockerfile: str
    sources: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...] = ()


ECHO = ImageSpec(IMAGE_NAME, "harness/sample_apps/echo/Dockerfile", ("harness/__init__.py", "harness/sample_apps/**/*.py"))


def _package_dir(package: str) -> Path:
    """Where ``package`` is installed; a build needs real files (not a zip)."""
    found = resources.files(package)
    if not isinstance(found, Path):
        raise ProcessError(f"{package} is installed as {found}, not as files a docker build can copy; "
                           "install mesh-harness with pip")
    return found


def _in_package(context_path: str) -> tuple[str, str]:
    """``harness/sample_apps/**/*.py`` -> (``harness.sample_apps``, ``**/*.py``)."""
    parts = PurePosixPath(context_path).parts
    at = next(i for i, part in enumerate(parts) if i == len(parts) - 1 or set(part) & set("*?["))
    return ".".join(parts[:at]), "/".join(parts[at:])


def dockerfile_path(spec: ImageSpec = ECHO) -> Path:
    """The installed Dockerfile of ``spec``."""
    package, name = _in_package(spec.dockerfile)
    return _package_dir(package) / name


def source_files(spec: ImageSpec = ECHO) -> dict[PurePosixPath, Path]:
    """What the image copies: path in the build context -> installed file."""
    files: dict[PurePosixPath, Path] = {}
    for pattern in spec.sources:
        package, rest = _in_package(pattern)
        directory = _package_dir(package)
        prefix = PurePosixPath(*package.split("."))
        files |= {prefix / path.relative_to(directory).as_posix(): path
                  for path in directory.glob(rest) if path.is_file()}
    return files


def source_hash(spec: ImageSpec = ECHO) -> str:
    """sha256 over what the image copies (its files, path in the context and content), the base, the
    Dockerfile and the other build arguments; first 12 hex digits."""
    digest = hashlib.sha256(ECHO_BASE_IMAGE.encode())
    for context_path, path in sorted(source_files(spec).items()):
        digest.update(str(context_path).encode())
        digest.update(path.read_bytes())
    digest.update(dockerfile_path(spec).read_bytes())
    for name, value in spec.build_args:
        digest.update(f"{name}={value}".encode())
    return digest.hexdigest()[:12]


@contextmanager
def staged_context(spec: ImageSpec = ECHO) -> Iterator[Path]:
    """A temporary build context for ``spec``: its sources and Dockerfile copied to their paths in it
    (the layout the Dockerfile's ``COPY`` lines name); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"{spec.name}-context-") as tmp:
        root = Path(tmp)
        for context_path, path in {**source_files(spec), PurePosixPath(spec.dockerfile): dockerfile_path(spec)}.items():
            target = root / context_path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        yield root


def image_tag(platform: str | None = None, spec: ImageSpec = ECHO) -> str:
    """The source hash, and the CPU when the image is built for a given platform (``0123456789ab-arm64``)."""
    return source_hash(spec) + (f"-{platform.rsplit('/', 1)[-1]}" if platform else "")


def image_ref(tag: str, registry: str | None = None, spec: ImageSpec = ECHO) -> str:
    name = f"{registry.rstrip('/')}/{spec.name}" if registry else spec.name
    return f"{name}:{tag}"


def build_command(docker: str, image: str, context: Path, platform: str | None = None, spec: ImageSpec = ECHO) -> list[str]:
    """``context``: a ``staged_context``. ``platform`` (``linux/arm64``): the nodes' own, for a cluster
    whose nodes may not be this machine's CPU."""
    args = [("BASE", ECHO_BASE_IMAGE), *spec.build_args]
    return [docker, "build", "--file", str(context / spec.dockerfile), "--tag", image,
            *(["--platform", platform] if platform else []),
            *(arg for name, value in args for arg in ("--build-arg", f"{name}={value}")), str(context)]


def inspect_command(docker: str, image: str) -> list[str]:
    return [docker, "image", "inspect", "--format", "{{.Id}}", image]


def push_command(docker: str, image: str) -> list[str]:
    return [docker, "push", image]


def ensure_image(run: Runner, docker: str, registry: str | None = None, observer: Observer = ignore, *,
                 platform: str | None = None, spec: ImageSpec = ECHO) -> str:
    """Build the ``spec`` image (default: the echo image) unless this exact tag exists locally; push it when a registry is given
    (``observer`` is told of the build and the push with their elapsed time). The tag names the
    platform when one is given, so that an image built for another CPU is never taken."""
    image = image_ref(image_tag(platform, spec), registry, spec)
    try:
        run(inspect_command(docker, image), what=f"looking for image {image}", timeout_s=_QUERY_TIMEOUT_S)
    except ProcessError:
        with step(observer, "image build", f"docker build -t {image}"), staged_context(spec) as context:
            run(build_command(docker, image, context, platform, spec), what=f"building the image {image}",
                timeout_s=BUILD_TIMEOUT_S)
    if registry:
        with step(observer, "image push", f"docker push {image}"):
            run(push_command(docker, image), what=f"pushing {image}", timeout_s=PUSH_TIMEOUT_S)
    return image
