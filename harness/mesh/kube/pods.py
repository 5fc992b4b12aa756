"""Reading pods: ready or not, and one line on what a pod is doing (pure; KubeMesh and ``workload`` share them)."""

from __future__ import annotations

from typing import Any


def is_ready(pod: dict[str, Any]) -> bool:
    """Running, not being deleted, and condition Ready=True (the sidecar and the app both ready)."""
    if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions", []))


def pod_summary(pod: dict[str, Any]) -> str:
    """``name phase [container: waiting reason (message)]``."""
    status = pod.get("status", {})
    parts = [pod["metadata"]["name"], "deleting" if pod["metadata"].get("deletionTimestamp") else status.get("phase", "?")]
    for container in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
        waiting = container.get("state", {}).get("waiting")
        if waiting:
            parts.append(f"{container['name']}: {waiting.get('reason')} ({waiting.get('message', '')[:200]})")
    return " ".join(parts)
