"""The one change the harness makes to what istiod generates for a gateway: it keeps its caller's ``x-request-id``.

A gateway's connection manager has ``use_remote_address``, so every caller is external and Envoy
would replace the id; the harness joins each request to the gateway's access log by the id its
caller sent (the builtin plane's gateway keeps it the same way). Nothing a policy does depends on
the id's value. An EnvoyFilter, as a cluster operator would write it; shared by the local istiod
plane and the kube mesh.
"""

from __future__ import annotations

from typing import Any

from harness.topology import INGRESS_GATEWAY


def gateway_keeps_request_ids(namespace: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The EnvoyFilter for the ingress gateway's pods (``istio: ingressgateway``), in the gateway's own or
    the root namespace."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, **({"labels": labels} if labels else {})}
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": meta,
        "spec": {
            "workloadSelector": {"labels": dict(INGRESS_GATEWAY.labels)},
            "configPatches": [{
                "applyTo": "NETWORK_FILTER",
                "match": {"context": "GATEWAY", "listener": {"filterChain": {"filter": {
                    "name": "envoy.filters.network.http_connection_manager"}}}},
                "patch": {"operation": "MERGE", "value": {"typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                             ".HttpConnectionManager",
                    "preserve_external_request_id": True}}},
            }],
        },
    }


def keeps_request_ids(config_dump: dict[str, Any]) -> bool:
    """Whether a gateway's config_dump (JSON) shows the EnvoyFilter applied to one of its connection managers."""
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return node.get("preserve_external_request_id") is True or any(walk(v) for v in node.values())
        return isinstance(node, list) and any(walk(v) for v in node)

    return walk(config_dump.get("configs", []))
