"""Read a translator golden's ``input.yaml`` into a ``TranslateInput`` (test data only).

Shape of ``input.yaml``::

    about: what policy this golden pins           # required, one line
    istio_version: "1.30"                         # optional, default "1.30"
    config_version: 7                             # optional, default 1
    access_log_path: /tmp/access.log              # optional
    client: {name: client, namespace: default, labels: {app: client, version: v1}}   # optional
    gateway: true                                 # optional: the ingress gateway's config, not the client's
    services:                                     # optional, default: reviews v1/v2 on http 9080, grpc 7070
      - {name: reviews, namespace: default, versions: [v1, v2], replicas: {v1: 2}, ports: {http: 9080, grpc: 7070}}
      - {name: api, versions: [v1], ports: {http: 80}, external: true}   # an app behind a ServiceEntry
    objects: [...]                                # Istio objects, as in a manifest

Endpoints are made up deterministically: every instance of every service port gets the next
port from 20000 on, labelled ``app: <service>, version: <v>``, named ``<service>-<v>-<i>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.istio.load import load_objects
from harness.mesh.local.translate import Endpoint, EnvoyResources, TranslateInput, translate, translate_gateway
from harness.topology import DEFAULT_TOPOLOGY, INGRESS_GATEWAY, Client, Service, ServicePort, Topology
from harness.yamlsource import load_file

GOLDEN_DIR = Path(__file__).parent / "translate"
FIRST_ENDPOINT_PORT = 20000


def golden_cases() -> list[Path]:
    """Every golden directory, sorted by name."""
    return sorted(p for p in GOLDEN_DIR.iterdir() if (p / "input.yaml").is_file())


def load_golden_input(case: Path) -> TranslateInput:
    (doc,) = load_file(case / "input.yaml")
    spec: dict[str, Any] = doc.value
    topology = _topology(spec)
    objects = load_objects(doc.sub(("objects", i)) for i in range(len(spec.get("objects", []))))
    return TranslateInput(
        topology=topology,
        client=INGRESS_GATEWAY if spec.get("gateway") else topology.clients[0],
        endpoints=make_endpoints(topology),
        objects=objects,
        config_version=int(spec.get("config_version", 1)),
        access_log_path=spec.get("access_log_path"),
        istio_version=str(spec.get("istio_version", "1.30")),
    )


def translate_golden(inp: TranslateInput) -> EnvoyResources:
    """The gateway's config for a ``gateway: true`` golden, else the client sidecar's."""
    return (translate_gateway if inp.client == INGRESS_GATEWAY else translate)(inp)


def make_endpoints(topology: Topology) -> dict[tuple[str, int], list[Endpoint]]:
    """One made-up endpoint per instance and service port, on consecutive ports from 20000."""
    out: dict[tuple[str, int], list[Endpoint]] = {}
    next_port = FIRST_ENDPOINT_PORT
    for service in topology.services:
        for port in service.ports:
            eps = out.setdefault((service.name, port.number), [])
            for version in service.versions:
                for i in range(service.replica_count(version)):
                    labels = {"app": service.name, "version": version}
                    eps.append(Endpoint("127.0.0.1", next_port, labels, f"{service.name}-{version}-{i}"))
                    next_port += 1
    return out


def _topology(spec: dict[str, Any]) -> Topology:
    fields = dict(spec.get("client", {}))
    if "labels" in fields:
        fields["labels"] = tuple(fields["labels"].items())
    client = Client(**fields)
    if "services" not in spec:
        return Topology(services=DEFAULT_TOPOLOGY.services, clients=(client,))
    services = tuple(
        Service(
            name=s["name"],
            namespace=s.get("namespace", "default"),
            versions=tuple(s.get("versions", ("v1", "v2"))),
            replicas=tuple(s.get("replicas", {}).items()),
            ports=tuple(ServicePort(n, p) for n, p in s.get("ports", {"http": 9080, "grpc": 7070}).items()),
            external=s.get("external", False),
        )
        for s in spec["services"]
    )
    return Topology(services=services, clients=(client,))
