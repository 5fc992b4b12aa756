"""EDS: which instances each cluster sends to.

istiod filters subset endpoints in the control plane: a subset cluster gets the instances whose
labels contain every subset label (``subsetLabels.SubsetOf(ep.Labels)``, reference section 1.1).
A subset that selects nothing gets an empty ClusterLoadAssignment, which Envoy answers with
503 UH; it must still be sent, or the cluster never finishes warming.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.mesh.local.translate.inputs import Endpoint, Resource


def selects(subset_labels: Mapping[str, str], endpoint_labels: Mapping[str, str]) -> bool:
    """True when every subset label is on the endpoint with the same value (empty selects all)."""
    return all(endpoint_labels.get(k) == v for k, v in subset_labels.items())


def translate_load_assignment(
    cluster: str, endpoints: Sequence[Endpoint], subset_labels: Mapping[str, str]
) -> Resource:
    """The ClusterLoadAssignment for ``cluster``: the selected endpoints, in a stable order."""
    chosen = sorted(
        (e for e in endpoints if selects(subset_labels, e.labels)), key=lambda e: (e.instance, e.address, e.port)
    )
    lb_endpoints = [
        {
            "endpoint": {
                "address": {"socket_address": {"address": e.address, "port_value": e.port}},
                "hostname": e.instance,
            }
        }
        for e in chosen
    ]
    out: Resource = {"cluster_name": cluster, "endpoints": []}
    if lb_endpoints:
        out["endpoints"] = [{"lb_endpoints": lb_endpoints}]
    return out
