"""The Kubernetes API calls the harness makes, as plain dicts, through the ``kubernetes`` client's ApiClient.

One generic path for every kind (core, apps, Istio CRDs): server-side apply (``PATCH`` with
``application/apply-patch+yaml``, field manager ``mesh-harness``, ``force``), get, list by label,
delete, pod logs. The client's typed APIs would need one class per group and turn Istio objects
into dicts anyway; the generic path keeps the objects as the YAML the user wrote. Auth, TLS and
the kubeconfig are the client's (``new_client_from_config(config_file, context)``), so a kubeconfig
and context are only ever the ones the harness was given.

``ApiException`` never leaves this module: it becomes ``ApiError`` (a ``MeshError``) carrying the
status and the API server's message (an admission webhook's denial reads as istiod wrote it).
Tests replace ``ApiClient.rest_client`` with a replay of recorded responses (tests/kube/recordings).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from harness.errors import MeshError
from harness.mesh.kube.tools import kubernetes_client

FIELD_MANAGER = "mesh-harness"
REQUEST_TIMEOUT_S = 30.0

# (apiVersion group, kind) -> (plural, namespaced). The version comes from the object.
_RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "Namespace"): ("namespaces", False),
    ("", "Node"): ("nodes", False),
    ("", "Service"): ("services", True),
    ("", "Pod"): ("pods", True),
    ("", "Event"): ("events", True),
    ("apps", "Deployment"): ("deployments", True),
    ("networking.istio.io", "VirtualService"): ("virtualservices", True),
    ("networking.istio.io", "DestinationRule"): ("destinationrules", True),
    ("networking.istio.io", "ServiceEntry"): ("serviceentries", True),
    ("networking.istio.io", "Gateway"): ("gateways", True),
    ("networking.istio.io", "EnvoyFilter"): ("envoyfilters", True),
}


class ApiError(MeshError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (0: no answer), ``reason`` the server's message."""

    def __init__(self, what: str, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{what}: {reason} (HTTP {status})" if status else f"{what}: {reason}")


def resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    """``/apis/apps/v1/namespaces/ns/deployments/name`` (pure); MeshError for a kind the harness does not manage."""
    group, _, version = api_version.rpartition("/")
    known = _RESOURCES.get((group, kind))
    if known is None:
        raise MeshError(f"the kube mesh does not manage {kind} ({api_version}); "
                        f"it manages {', '.join(sorted(k for _, k in _RESOURCES))}")
    plural, namespaced = known
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespaced:
        if not namespace:
            raise MeshError(f"{kind}/{name}: a namespace is required")
        base += f"/namespaces/{quote(namespace, safe='')}"
    path = f"{base}/{plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{ns}{meta.get('name')}"


class KubeApi:
    """Calls to one cluster. ``close()`` releases the client's connection pool."""

    def __init__(self, api_client: Any) -> None:
        self._client = api_client

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None, context: str | None) -> KubeApi:
        """A client for ``context`` of ``kubeconfig`` (None: the client's defaults, which only ``--mesh cluster`` uses)."""
        kubernetes = kubernetes_client()
        try:
            client = kubernetes.config.new_client_from_config(config_file=kubeconfig, context=context,
                                                              persist_config=False)
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise MeshError(f"cannot load kubeconfig {kubeconfig or '(default)'} context {context or '(current)'}: "
                            f"{exc}") from exc
        return cls(client)

    @property
    def host(self) -> str:
        return str(self._client.configuration.host)

    def close(self) -> None:
        self._client.close()

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` (create or update; fields this manager stopped setting are removed)."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self._json("PATCH", path, f"applying {describe(obj)}",
                          query={"fieldManager": FIELD_MANAGER, "force": "true"}, body=obj,
                          content_type="application/apply-patch+yaml")

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._json("GET", resource_path(api_version, kind, namespace, name), f"reading {kind}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        body = self._json("GET", resource_path(api_version, kind, namespace), f"listing {kind} in {namespace or 'all'}",
                          query=query)
        return list(body.get("items", []))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            self._json("DELETE", resource_path(api_version, kind, namespace, name), f"deleting {kind}/{name}",
                       body={"propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pod_log(self, namespace: str, pod: str, container: str, *, since_time: str | None = None,
                tail_lines: int | None = None) -> str:
        """The container's log with RFC 3339 timestamps (``since_time`` has second precision)."""
        query = {"container": container, "timestamps": "true"}
        if since_time:
            query["sinceTime"] = since_time
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        path = resource_path("v1", "Pod", namespace, pod) + "/log"
        return self._raw("GET", path, f"reading the {container} log of pod {namespace}/{pod}", query=query).decode(
            errors="replace")

    def _json(self, method: str, path: str, what: str, *, query: dict[str, str] | None = None,
              body: Any = None, content_type: str = "application/json") -> dict[str, Any]:
        data = self._raw(method, path, what, query=query, body=body, content_type=content_type)
        try:
            decoded = json.loads(data) if data else {}
        except ValueError as exc:
            raise ApiError(what, 0, f"the API server answered with something that is not JSON: {data[:200]!r}") from exc
        if not isinstance(decoded, dict):
            raise ApiError(what, 0, f"expected a JSON object, got {type(decoded).__name__}")
        return decoded

    def _raw(self, method: str, path: str, what: str, *, query: dict[str, str] | None = None, body: Any = None,
             content_type: str = "application/json") -> bytes:
        kubernetes = kubernetes_client()
        import urllib3  # a dependency of the kubernetes client, so importable once it is

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            _, url, headers, body, _ = self._client.param_serialize(
                method=method, resource_path=path, query_params=list((query or {}).items()), header_params=headers,
                body=body, auth_settings=["BearerToken"])
            response = self._client.call_api(method, url, header_params=headers, body=body,
                                             _request_timeout=REQUEST_TIMEOUT_S)
            data: bytes = response.read()
        except kubernetes.client.ApiException as exc:
            raise ApiError(what, int(exc.status or 0), _reason(exc.body) or str(exc.reason)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # the cluster is unreachable
            raise ApiError(what, 0, f"no answer from the API server at {self.host}: {exc}") from exc
        if not 200 <= response.status <= 299:
            raise ApiError(what, response.status, _reason(data) or str(response.reason))
        return data


def _reason(body: str | bytes | None) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, else the body itself (shortened)."""
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        decoded = json.loads(text)
    except ValueError:
        return text[:2000]
    return str(decoded.get("message", text))[:2000] if isinstance(decoded, dict) else text[:2000]
