"""A case's ServiceEntry endpoints, as they reach the external app on a cluster (pure).

A case writes its ServiceEntry as the local mesh runs it: the endpoint ``127.0.0.1`` stands for the
external app that serves the host (``Topology.external_app``: ``api.example.com`` -> ``api``). In a pod,
``127.0.0.1`` is the client pod itself, where nothing listens. On a cluster the external app runs
without a sidecar behind its own Service (``manifests.py``), so the endpoint becomes that Service:
its ClusterIP for ``resolution: STATIC`` (an IP is required there), its DNS name for ``resolution: DNS``
(Envoy resolves it through the cluster's DNS). The port stays the ServiceEntry's port, which is the
Service's port too (the case declares the app with it), and kube-proxy takes it to the pod.
Endpoints at any other address are the case author's and are kept as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.topology import CLUSTER_DOMAIN, Topology

LOOPBACK = "127.0.0.1"


def point_at_external_app(manifest: dict[str, Any], topology: Topology, namespace: str,
                          cluster_ips: Mapping[str, str]) -> dict[str, Any]:
    """``manifest`` (a ServiceEntry) with its loopback endpoints replaced by the external app's Service in
    ``namespace`` (``cluster_ips``: Service name -> ClusterIP there); other objects are returned unchanged."""
    spec = manifest.get("spec", {})
    hosts = spec.get("hosts", [])
    app = topology.external_app(hosts[0]) if manifest.get("kind") == "ServiceEntry" and hosts else None
    if app is None or app.name not in cluster_ips:
        return manifest
    address = (f"{app.name}.{namespace}.{CLUSTER_DOMAIN}" if spec.get("resolution") == "DNS"
               else cluster_ips[app.name])
    endpoints = [{**e, "address": address} if e.get("address") == LOOPBACK else e for e in spec.get("endpoints", [])]
    return {**manifest, "spec": {**spec, "endpoints": endpoints}}
