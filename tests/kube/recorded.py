"""Replays of recorded Kubernetes API and Envoy admin answers (recordings/), for the KubeMesh logic tests.

``RecordedApiServer`` stands in for the kubernetes client's REST layer (``ApiClient.rest_client``):
every call goes through the real client (serialisation, auth headers, error mapping) and is
answered from recordings, with what a server does on apply (echo the object) and delete (it is
gone). ``RecordedProxy`` is a local HTTP server answering as a client pod's echo control port and
sidecar admin port do, from recordings; the fake port-forwarder points every forward at it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes.client import ApiClient, Configuration
from kubernetes.client.rest import RESTResponse

from harness.mesh.kube.api import KubeApi

RECORDINGS = Path(__file__).parent / "recordings"
#: The DestinationRule every shipped case uses (one subset per version of reviews), for configs that build on it.
SUBSETS = (Path(__file__).resolve().parents[2] / "cases" / "manifests" / "reviews-subsets.yaml").read_text()


def recording(name: str) -> Any:
    text = (RECORDINGS / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


class _Answer:
    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}.get(status, "")
        self.data = body
        self.headers = {"content-type": content_type}


class RecordedApiServer:
    """Answers the client's requests; ``calls`` lists ``METHOD path`` in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.applied: dict[str, dict[str, Any]] = {}  # path -> last applied body
        self.deleted: set[str] = set()
        self.pods = "pods_running.json"
        self.deny: set[str] = set()  # object names whose apply the validating webhook denies
        self.log_queries: list[dict[str, list[str]]] = []  # the query of each pod log read

    def api(self) -> KubeApi:
        client = ApiClient(Configuration(host="https://127.0.0.1:6443"))
        client.rest_client = self
        return KubeApi(client)

    def close(self) -> None:
        self.calls.append("close")

    def request(self, method: str, url: str, headers: dict[str, str] | None = None, body: Any = None,
                post_params: Any = None, _request_timeout: Any = None) -> RESTResponse:
        parts = urlsplit(url)
        self.calls.append(f"{method} {parts.path}")
        answer = self._answer(method, parts.path, parse_qs(parts.query), body)
        response = RESTResponse(answer)
        response.read()
        return response

    def _answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> _Answer:
        if method == "PATCH":
            assert query == {"fieldManager": ["mesh-harness"], "force": ["true"]}, query
            if body["metadata"]["name"] in self.deny:
                return _json(400, recording("webhook_denied.json"))
            self.applied[path] = body
            self.deleted.discard(path)
            answer = {**body, "metadata": {**body["metadata"], "resourceVersion": str(len(self.calls))}}
            if body["kind"] == "Service":  # the API server allocates the ClusterIP
                answer["spec"] = {**body["spec"], "clusterIP": f"10.96.0.{10 + len(self.applied)}"}
            return _json(200, answer)
        if method == "DELETE":
            self.deleted.add(path)
            self.applied.pop(path, None)
            return _json(200, recording("status_success.json"))
        if path.endswith("/log"):
            self.log_queries.append(query)
            return _Answer(200, recording("istio_proxy_log.txt").encode(), "text/plain")
        if path == "/api/v1/namespaces/istio-system/pods":
            return _json(200, recording("pods_gateway.json"))
        selector = query.get("labelSelector", [""])[0]
        if "!=" in selector:  # another run's objects: a crashed run's VirtualService, nothing else
            other = recording("virtualservice_other_run.json")
            return _json(200, {"kind": "List", "apiVersion": "v1", "items": [other] if "virtualservices" in path else []})
        lists = {"/nodes": "nodes.json", "/pods": self.pods, "/deployments": "deployments_listed.json", "/services": "services_listed.json",
                 "/events": "events_warning.json"}
        for suffix, name in lists.items():
            if path.endswith(suffix):
                return _json(200, recording(name))
        if path == "/apis/apps/v1/namespaces/istio-system/deployments/istiod":
            return _json(200, recording("istiod_deployment.json"))
        if path in self.applied:
            return _json(200, self.applied[path])
        if path.startswith("/apis/") and path.endswith("s") and "/namespaces/" in path and path.count("/") == 6:
            return _json(200, {"kind": "List", "apiVersion": "v1", "items": []})  # an empty Istio kind list
        return _json(404, recording("namespace_not_found.json"))

    def sentinel_version(self, namespace: str) -> int:
        """The version the VirtualService sentinel of ``namespace`` carries now (0 before the first)."""
        vs = self.applied.get(f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/mesh-harness-sync")
        return int(vs["spec"]["http"][0]["name"][1:]) if vs else 0


def _json(status: int, body: Any) -> _Answer:
    return _Answer(status, json.dumps(body).encode())


class RecordedProxy:
    """The control port of the echo app and the admin port of its sidecar, from recordings, on one local port."""

    def __init__(self, config_dump: Callable[[], str]) -> None:
        self.config_dump = config_dump
        self.paths: list[str] = []
        self.posted: list[dict[str, Any]] = []
        self.dump_name = "config_dump.json"
        self.stats_name = "stats.json"

    @contextmanager
    def serving(self) -> Iterator[int]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, body: Any) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                proxy.paths.append(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/config_dump":
                    self._send(proxy.config_dump())
                elif parts.path == "/clusters":
                    self._send(recording("clusters.json"))
                elif parts.path == "/stats":
                    self._send(recording(proxy.stats_name))
                elif parts.path == "/server_info":
                    self._send(recording("server_info.json"))
                elif parts.path == "/log":
                    page = recording("app_log_page.json")
                    if query.get("since", ["0"])[0] != "0":
                        page["entries"] = []
                    self._send(page)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                proxy.posted.append(json.loads(self.rfile.read(int(self.headers.get("content-length", "0")))))
                proxy.paths.append(self.path)
                self._send(recording("forward_records.json"))

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
