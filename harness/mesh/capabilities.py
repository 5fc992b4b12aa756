"""What each mesh serves: one table, and the refusals of a case on a mesh (pure).

A case runs on a mesh only when the mesh can reproduce everything the case depends on. What it
cannot is refused before anything starts, with the reason and where to run it instead, never sent
and judged against a mesh that would answer something else (DESIGN.md, "refuse, never ignore").

| feature | local, builtin | local, istiod | kind | cluster |
|---|---|---|---|---|
| Istio fields the loopback machine reproduces (``translate.unsupported_issues``) | refused when not | refused when not | all | all |
| service ports that are not HTTP-like (``translate.topology_issues``) | refused | served | served | served |
| ingress gateway (``via: gateway``, Gateway objects) | served | served | installed by the harness | the cluster's own (``istio: ingressgateway``) |
| external apps and ServiceEntry hosts | served | served | served (no sidecar, endpoints translated, DNS capture) | same |
| ``meshConfig.outboundTrafficPolicy`` a case depends on | REGISTRY_ONLY | REGISTRY_ONLY | REGISTRY_ONLY (installed) | unknown: refused |

Both local planes run REGISTRY_ONLY because the machine has no original-destination passthrough
(no iptables): the builtin translator's catch-all is istiod's ``block_all`` 502, and the istiod plane
runs istiod with that mode (``local/istiod/registry.py: mesh_config``). The kind mesh installs the same
mode (``kube/istio_install.py``), so an unknown host gets the same 502 on all three. On ``--mesh
cluster`` the harness installs nothing and cannot promise a mode.

The local planes' field refusals live with the translator (``local/refusals.py``); this table calls
them, imported only for a local mesh (``mesh/kube`` never imports ``mesh/local``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.errors import Issue

if TYPE_CHECKING:
    from harness.case import Case

MeshName = Literal["local-builtin", "local-istiod", "kind", "cluster"]
OutboundPolicy = Literal["REGISTRY_ONLY", "ALLOW_ANY"]
REGISTRY_ONLY: OutboundPolicy = "REGISTRY_ONLY"


@dataclass(frozen=True)
class Capabilities:
    """What one mesh serves."""

    name: MeshName
    flags: str
    """The command-line options that choose this mesh, as messages show them."""
    field_refusals: Literal["builtin", "istiod"] | None
    """Which local plane's field refusals apply (None: real Istio on Kubernetes serves every field it accepts)."""
    outbound_policy: OutboundPolicy | None
    """The ``meshConfig.outboundTrafficPolicy.mode`` this mesh runs; None when the harness cannot know it."""
    why_policy: str
    """Why it runs that mode (or why it cannot say), for a refusal's message."""
    gateway: str
    """Where its ingress gateway comes from (every mesh serves ``via: gateway``)."""


MESHES: dict[MeshName, Capabilities] = {
    "local-builtin": Capabilities(
        "local-builtin", "--mesh local", "builtin", REGISTRY_ONLY,
        "the local mesh has no original-destination passthrough (no iptables)", "an Envoy the harness starts"),
    "local-istiod": Capabilities(
        "local-istiod", "--mesh local --control-plane istiod", "istiod", REGISTRY_ONLY,
        "the local mesh has no original-destination passthrough (no iptables)", "an Envoy the harness starts"),
    "kind": Capabilities(
        "kind", "--mesh kind", None, REGISTRY_ONLY,
        "the harness installs Istio so, to answer as the local mesh does", "installed by the harness (istioctl)"),
    "cluster": Capabilities(
        "cluster", "--mesh cluster", None, None,
        "the harness does not install Istio on --mesh cluster, so it cannot promise a mode",
        "the cluster's own, labelled istio: ingressgateway in istio-system"),
}
"""The capability contract: one row per mesh (see the module docstring's table)."""


def mesh_name(mesh: str, control_plane: str = "builtin") -> MeshName:
    """The table's key for the ``--mesh`` and ``--control-plane`` options."""
    if mesh == "local":
        return "local-istiod" if control_plane == "istiod" else "local-builtin"
    if mesh in ("kind", "cluster"):
        return mesh  # type: ignore[return-value]  # narrowed by the test above
    raise ValueError(f"unknown mesh {mesh!r}")


def case_refusals(case: Case, mesh: MeshName) -> list[Issue]:
    """Why ``mesh`` cannot serve ``case`` (empty: it can), each naming the case's file and what to do."""
    caps = MESHES[mesh]
    issues: list[Issue] = []
    if caps.field_refusals is not None:
        from harness.mesh.local.refusals import local_refusals

        issues += local_refusals(case.objects, case.topology, caps.field_refusals)
    wanted = case.outbound_policy
    if wanted is not None and wanted != caps.outbound_policy:
        where = " or ".join(c.flags for c in MESHES.values() if c.outbound_policy == wanted)
        fix = (f"run it with {where}" if where else
               f"no mesh of the harness promises {wanted}: drop meshConfig if the case does not depend on it")
        runs = f"runs {caps.outbound_policy}" if caps.outbound_policy else "cannot say which mode it runs"
        issues.append(Issue(
            f"the case depends on outboundTrafficPolicy {wanted}, and {caps.flags} {runs}: {caps.why_policy}; {fix}",
            file=case.file, line=case.line, obj=f"case {case.name}", path="meshConfig.outboundTrafficPolicy.mode"))
    return issues
