"""Installing Istio with istioctl: the IstioOperator overlay and the command lines (pure), and the run.

The minimal profile (istiod) plus what the harness reads and what the cases need:

* Envoy's JSON access log on each proxy's stdout (``accessLogEncoding: JSON``; Istio's default JSON
  format has the ``request_id``, ``response_code``, ``response_flags`` and ``upstream_host`` keys the
  access-log join reads);
* ``outboundTrafficPolicy`` as the capability table says the kind mesh runs (REGISTRY_ONLY, the mode
  both local planes run: an unknown host gets the ``block_all`` 502 everywhere, not a passthrough);
* the ingress gateway, labelled and named as istioctl's default profile makes it (``istio:
  ingressgateway``, Service ``istio-ingressgateway``, port 80 to the pod's 8080), with a ClusterIP
  Service: a kind cluster has no load balancer, and the harness sends to it from inside the cluster.

The stats matcher and DNS capture are not set mesh-wide: the client pods ask for them
(``manifests.py``), which also works on a cluster the harness did not install. A ``revision``
installs a second control plane beside the first (canary upgrade; pods pick it with ``istio.io/rev``)
and no second gateway: the first install's gateway stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.mesh.capabilities import MESHES
from harness.mesh.kube.commands import Runner
from harness.progress import Observer, ignore, step
from harness.topology import INGRESS_GATEWAY

INSTALL_TIMEOUT_S = 900.0
READINESS_TIMEOUT = "600s"
ISTIO_NAMESPACE = INGRESS_GATEWAY.namespace
GATEWAY_SERVICE = INGRESS_GATEWAY.name
GATEWAY_LABELS = dict(INGRESS_GATEWAY.labels)
"""istioctl's ingress gateway pods: ``app: istio-ingressgateway``, ``istio: ingressgateway``."""


def istiod_name(revision: str | None) -> str:
    """The istiod Deployment (and Service) of a revision: ``istiod`` or ``istiod-<revision>``."""
    return f"istiod-{revision}" if revision else "istiod"


def install_overlay(revision: str | None = None) -> dict[str, Any]:
    """The IstioOperator that ``istioctl install -f`` takes (pure)."""
    spec: dict[str, Any] = {
        "profile": "minimal",
        "meshConfig": {"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON",
                       "outboundTrafficPolicy": {"mode": MESHES["kind"].outbound_policy}},
    }
    if revision:
        spec["revision"] = revision
    else:
        spec["components"] = {"ingressGateways": [{"name": GATEWAY_SERVICE, "enabled": True}]}
        spec["values"] = {"gateways": {GATEWAY_SERVICE: {"type": "ClusterIP"}}}
    return {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": spec}


def install_command(istioctl: str, overlay_path: Path, kubeconfig: Path, context: str) -> list[str]:
    return [istioctl, "install", "--skip-confirmation", "-f", str(overlay_path), "--kubeconfig", str(kubeconfig),
            "--context", context, "--readiness-timeout", READINESS_TIMEOUT]


def install_istio(run: Runner, istioctl: str, workdir: Path, kubeconfig: Path, context: str,
                  revision: str | None = None, observer: Observer = ignore) -> None:
    """Write the overlay to ``workdir`` and run ``istioctl install``; it waits for istiod to be ready
    (minutes: ``observer`` is told of the step and its elapsed time)."""
    overlay_path = workdir / f"istio-overlay{'-' + revision if revision else ''}.json"
    overlay_path.write_text(json.dumps(install_overlay(revision), indent=1))
    with step(observer, "Istio install", f"istioctl install ({istiod_name(revision)})"):
        run(install_command(istioctl, overlay_path, kubeconfig, context),
            what=f"installing Istio ({istiod_name(revision)})", timeout_s=INSTALL_TIMEOUT_S)


def istiod_image_version(image: str) -> str:
    """``docker.io/istio/pilot:1.30.3`` -> ``1.30.3`` (pure): which Istio a running istiod is."""
    tail = image.rsplit("/", 1)[-1]
    return tail.split(":", 1)[1].split("@", 1)[0] if ":" in tail else ""
