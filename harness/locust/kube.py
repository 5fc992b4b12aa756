"""Load on ``--mesh kind|cluster``: Locust workers as pods with sidecars, the master where the user runs the command. Pure.

What runs where:

* the **worker pods**: one Deployment (``WORKERS_NAME``) of the load image (``load_image``: Python,
  the same Locust release as this machine's, the locustfiles and what they import), with the
  load client's labels (``app: client``, so ``sourceLabels`` match it as they match the client)
  and its sidecar settings, but an instance label of its own (the client Deployment's selector must
  not take the workers' pods). Each pod runs a Locust worker that sends to the case's service URL
  as a pod calls it (``--mesh-own-host http://reviews:9080``): DNS, the ClusterIP, iptables, its own
  sidecar, where the client-side routing happens, as for ForwardEcho from the client pod;
* the **master**, on the user's machine: ``locust --master`` as for ``--master --expect-workers N``,
  judging every worker's records, relayed over Locust's own connection (``relay.py``);
* **how the pods reach the master**: on kind, the master binds the kind Docker network's gateway
  address (``docker network inspect kind``), which the nodes, and so the pods, route to the host
  (Linux Docker; Docker Desktop has no such address on the host). On ``--mesh cluster`` only the
  user knows an address of this machine that the pods can reach: ``--master-host-for-pods ADDR``,
  else the run is refused. The worker pods' sidecars let traffic to that address pass
  (``excludeOutboundIPRanges``): the mesh's REGISTRY_ONLY policy would drop it otherwise.

No restamping (``wire.restamped``): the workers send through the same mesh, under the same applied
config version, as the master expects; istiod adds no config version header, so every record counts
as of the case's version (``thresholds.judge_check``). Pod names are worker names (downward API), so a
lost pod is named in the report and fails the run, as a lost local worker does.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

from harness.errors import CaseError, MeshError, ProcessError
from harness.locust.locust_cli import GRPC_LOCUSTFILE, LOCUSTFILE, worker_command
from harness.mesh.kube.image import ImageSpec
from harness.mesh.kube.manifests import INSTANCE_LABEL, RenderOptions, render_client
from harness.topology import Client

WORKERS_NAME = "mesh-harness-load-workers"
"""The worker Deployment, and the instance label of its pods."""
APP_DIR = PurePosixPath("/app")
"""Where the load image holds the ``harness`` package (its Dockerfile copies it there)."""
KIND_NETWORK = "kind"
LOAD_IMAGE_NAME = "mesh-harness-load"


def locust_version() -> str:
    """The Locust release installed here: the master's, which the worker image installs too."""
    try:
        return metadata.version("locust")
    except metadata.PackageNotFoundError as exc:
        raise ProcessError("Locust is not installed; install it with `pip install 'mesh-harness[load]'`") from exc


def load_image(version: str) -> ImageSpec:
    """The worker pods' image for Locust ``version`` (the tag changes with it)."""
    return ImageSpec(LOAD_IMAGE_NAME, "harness/locust/Dockerfile",
                     ("harness/__init__.py", "harness/sample_apps/**/*.py", "harness/locust/__init__.py",
                      "harness/locust/locustfile.py", "harness/locust/grpc_locustfile.py", "harness/locust/relay.py",
                      "harness/locust/wire.py"),
                     (("LOCUST_VERSION", version),))


@dataclass(frozen=True)
class Workers:
    """The worker pods of one load run."""

    replicas: int
    master_host: str
    """The master's address as the pods reach it (an IP: the sidecar lets exactly it pass)."""
    master_port: int
    url: str
    """The case's service URL as a pod calls it (``http://reviews:9080``)."""
    protocol: str
    image: str


def render_workers(client: Client, workers: Workers, opts: RenderOptions) -> dict[str, Any]:
    """The worker Deployment: the client's labels, sidecar and namespace; Locust workers of the master."""
    deployment = render_client(replace(client, name=WORKERS_NAME), opts)
    locustfile = GRPC_LOCUSTFILE if workers.protocol == "grpc" else LOCUSTFILE
    command = worker_command(workers.master_host, workers.master_port, "$(POD_NAME)",
                             locustfile=APP_DIR / "harness" / "locust" / locustfile.name, own_host=workers.url)
    assert command[:3] == [sys.executable, "-m", "locust"], command  # the image's ENTRYPOINT is `python -m locust`
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    excluded = [r for r in annotations.get("traffic.sidecar.istio.io/excludeOutboundIPRanges", "").split(",") if r]
    prefix = 128 if ":" in workers.master_host else 32  # exactly the master's address, IPv6 or IPv4
    annotations["traffic.sidecar.istio.io/excludeOutboundIPRanges"] = ",".join([*excluded, f"{workers.master_host}/{prefix}"])
    template["spec"]["containers"] = [{
        "name": "locust-worker",
        "image": workers.image,
        "imagePullPolicy": "IfNotPresent",
        "args": command[3:],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }]
    deployment["spec"]["replicas"] = workers.replicas
    assert deployment["spec"]["selector"]["matchLabels"] == {INSTANCE_LABEL: WORKERS_NAME}
    return deployment


def service_url(authority: str) -> str:
    """What a worker pod sends to: the case's service host and port (``reviews:9080``) as Locust's host
    (``http://``, for gRPC too: ``grpc_locustfile`` takes the host and port from it)."""
    return f"http://{authority}"


def kind_gateway_command(docker: str) -> list[str]:
    """The kind Docker network's gateway addresses (IPv4 and IPv6), separated by spaces."""
    return [docker, "network", "inspect", KIND_NETWORK, "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"]


def kind_gateway(output: str) -> str:
    """The IPv4 gateway in ``kind_gateway_command``'s output: the host as kind's nodes and pods reach it."""
    for line in output.split():
        try:
            if ipaddress.ip_address(line).version == 4:
                return line
        except ValueError:
            continue
    raise MeshError(f"the {KIND_NETWORK!r} Docker network has no IPv4 gateway (docker network inspect said "
                    f"{output.strip()!r}); give the master's address with --master-host-for-pods ADDR")


def master_host_for_pods(mesh: str, given: str | None) -> str | None:
    """The address the worker pods connect to when the user gave one (checked), None on kind to discover it;
    CaseError on ``--mesh cluster`` without one."""
    if given is not None:
        try:
            ipaddress.ip_address(given)
        except ValueError:
            raise CaseError(f"--master-host-for-pods must be an IP address the pods can reach (got {given!r}): "
                            "the worker pods' sidecars let exactly that address pass") from None
        return given
    if mesh == "cluster":
        raise CaseError("load --mesh cluster needs --master-host-for-pods ADDR: an IP address of this machine that "
                        "the cluster's pods can reach, where the Locust master listens for its worker pods")
    return None

