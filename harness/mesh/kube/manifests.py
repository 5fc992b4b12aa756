"""Kubernetes manifests for a topology, rendered as plain dicts (pure; validated against the real schemas in tests/kube).

* a Namespace per topology namespace, labelled for injection (``istio-injection: enabled``, or
  ``istio.io/rev`` for a revision) when the harness creates it;
* one Deployment per app *instance* (``reviews-v1-0``, replicas 1) with ``app``/``version`` labels,
  selecting its pod by the instance label alone (a selector is immutable, the other labels vary by case):
  instance names then match the local mesh's (``Topology.instances()``), and per-instance knobs
  (one bad replica among good ones, for outlier cases) can be given to exactly one pod;
* one Service per service with its named ports (``http``, ``grpc``: Istio picks the protocol by name);
* one Deployment per client workload, with its labels (``sourceLabels`` match on them) and the
  ``proxy.istio.io/config`` annotation that makes its sidecar keep outbound cluster stats
  (Istio's default stats matcher drops them: istio-semantics.md 4.4) and capture DNS
  (``ISTIO_META_DNS_CAPTURE``: the sidecar's agent answers a ServiceEntry host such as
  ``api.example.com`` with the address istiod allocates for it, ``PILOT_ENABLE_IP_AUTOALLOCATE`` being
  on by default; without it the name does not resolve in the pod). With a known ingress gateway
  address, the client's sidecar lets traffic to it pass (``excludeOutboundIPRanges``): ``via: gateway``
  arrives at the gateway as from outside the mesh, with the case's Host, which the client's own
  sidecar would otherwise answer with its REGISTRY_ONLY 502;
* an external app (``Service.external``) without a sidecar, outside the mesh; its Service gives
  the case's ServiceEntry endpoints an address (``external.py``).

Injection is asked for on the pod (``sidecar.istio.io/inject: "true"``, plus ``istio.io/rev``), not by
toggling namespaces, so pods in a pre-existing namespace get their sidecar too. Every object carries
``mesh-harness.io/run: <run id>`` so that cleanup deletes exactly what this run made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.topology import Client, Service, Topology

RUN_LABEL = "mesh-harness.io/run"
INSTANCE_LABEL = "mesh-harness.io/instance"
HTTP_TARGET_PORT = 8080
GRPC_TARGET_PORT = 7070
CONTROL_PORT = 18081
"""The echo app's control port: loopback only, reached through a pod port-forward, never through the mesh."""
STATS_PREFIXES = ("cluster.outbound", "http.outbound", "listener.0.0.0.0")
"""What the client sidecar keeps besides Istio's defaults: per-cluster stats (retries, overflow,
outlier), per-listener HTTP stats (faults, no_route), and the in-flight gauges ``drain`` reads."""


@dataclass(frozen=True)
class RenderOptions:
    """What besides the topology decides the manifests."""

    image: str
    run_id: str
    namespace_prefix: str | None = None
    revision: str | None = None
    gateway_ip: str | None = None
    """The ingress gateway Service's ClusterIP, when the cluster has one (``via: gateway`` sends there)."""

    def namespace(self, name: str) -> str:
        """The real namespace of a topology namespace: ``<prefix>-<name>`` with a prefix, else ``name``."""
        return f"{self.namespace_prefix}-{name}" if self.namespace_prefix else name


def namespaces(topology: Topology) -> list[str]:
    """Every topology namespace, sorted."""
    return sorted({s.namespace for s in topology.services} | {c.namespace for c in topology.clients})


def render_namespace(name: str, opts: RenderOptions) -> dict[str, Any]:
    labels = {RUN_LABEL: opts.run_id}
    labels.update({"istio.io/rev": opts.revision} if opts.revision else {"istio-injection": "enabled"})
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": opts.namespace(name), "labels": labels}}


def render_service(service: Service, opts: RenderOptions) -> dict[str, Any]:
    ports = [{"name": p.name, "port": p.number, "protocol": "TCP", "targetPort": "grpc" if p.protocol == "grpc" else "http"}
             for p in service.ports]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service.name, "namespace": opts.namespace(service.namespace),
                     "labels": {"app": service.name, RUN_LABEL: opts.run_id}},
        "spec": {"selector": {"app": service.name}, "ports": ports},
    }


def render_instance(service: Service, version: str, instance: str, opts: RenderOptions) -> dict[str, Any]:
    """The Deployment of one app instance, with its echo defaults as start flags."""
    labels = {"app": service.name, "version": version, INSTANCE_LABEL: instance}
    flags = [arg for name, value in sorted(service.instance_knobs(version, instance).items())
             for arg in (f"--{name}", value)]
    return _deployment(instance, opts.namespace(service.namespace), labels, service.name, version, instance, flags,
                       None if service.external else {"holdApplicationUntilProxyStarts": True}, opts)


def render_client(client: Client, opts: RenderOptions) -> dict[str, Any]:
    """The Deployment of a client workload: the echo app whose ForwardEcho starts the traffic."""
    labels = {**dict(client.labels), INSTANCE_LABEL: client.name}
    version = labels.get("version", "v1")
    proxy = {"holdApplicationUntilProxyStarts": True, "proxyStatsMatcher": {"inclusionPrefixes": list(STATS_PREFIXES)},
             "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}
    deployment = _deployment(client.name, opts.namespace(client.namespace), labels, client.name, version, client.name,
                             [], proxy, opts)
    if opts.gateway_ip:
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        annotations["traffic.sidecar.istio.io/excludeOutboundIPRanges"] = f"{opts.gateway_ip}/32"
    return deployment


def render_topology(topology: Topology, opts: RenderOptions) -> list[dict[str, Any]]:
    """Services, app instances and clients of ``topology`` (namespaces apart: see ``render_namespace``)."""
    out: list[dict[str, Any]] = [render_service(s, opts) for s in topology.services]
    for name, (service_name, version) in sorted(topology.instances().items()):
        service = topology.service(service_name)
        assert service is not None, service_name  # instances() is built from the services
        out.append(render_instance(service, version, name, opts))
    out += [render_client(c, opts) for c in topology.clients]
    return out


def _deployment(name: str, namespace: str, labels: dict[str, str], service: str, version: str, instance: str,
                flags: list[str], proxy_config: dict[str, Any] | None, opts: RenderOptions) -> dict[str, Any]:
    """``proxy_config`` None: a pod outside the mesh (no sidecar injected)."""
    pod_labels = {**labels, RUN_LABEL: opts.run_id, "sidecar.istio.io/inject": "false" if proxy_config is None else "true"}
    if opts.revision and proxy_config is not None:
        pod_labels["istio.io/rev"] = opts.revision
    args = ["--service", service, "--version", version, "--instance", instance, "--bind", "0.0.0.0",
            "--http-port", str(HTTP_TARGET_PORT), "--grpc-port", str(GRPC_TARGET_PORT),
            "--control-port", str(CONTROL_PORT), *flags]
    probe = ["python", "-c", f"import socket; socket.create_connection(('127.0.0.1', {CONTROL_PORT}), 1).close()"]
    container = {
        "name": "echo",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        # The app exits when stdin reaches EOF (so that a local instance never outlives the harness);
        # in a pod stdin is kept open instead.
        "stdin": True,
        "ports": [{"name": "http", "containerPort": HTTP_TARGET_PORT, "protocol": "TCP"},
                  {"name": "grpc", "containerPort": GRPC_TARGET_PORT, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": probe}, "periodSeconds": 2, "failureThreshold": 30},
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, RUN_LABEL: opts.run_id}},
        "spec": {
            "replicas": 1,
            # The instance label alone: it names the Deployment, so it never changes between cases, and
            # ``spec.selector`` is immutable (a client declared with other labels would be a 422).
            "selector": {"matchLabels": {INSTANCE_LABEL: instance}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {} if proxy_config is None else
                             {"proxy.istio.io/config": json.dumps(proxy_config, sort_keys=True)}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
            },
        },
    }
