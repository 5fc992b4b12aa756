"""What the local mesh refuses up front, before anything starts (pure): one list for the CLI and the plugin.

Both control planes share the loopback machine's limits (``translate.unsupported_issues``: no TLS, no
inbound sidecars, ...). Ports that are not HTTP-like only the builtin translator refuses; real istiod
gives them the TCP or sniffing listeners a cluster would.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import Issue
from harness.istio.model import IstioObject
from harness.mesh.local.plane import PlaneName
from harness.mesh.local.translate import topology_issues, unsupported_issues
from harness.topology import Topology


def local_refusals(objects: Sequence[IstioObject], topology: Topology, control_plane: PlaneName) -> list[Issue]:
    issues = unsupported_issues(objects)
    if control_plane == "builtin":
        issues += topology_issues(topology)
    return issues
