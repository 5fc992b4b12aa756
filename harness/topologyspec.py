"""The ``services:`` and ``clients:`` blocks of a case (and of ``mesh-harness up --services``).

Their pydantic schema (checked with the rest of the document, same messages), the ``Topology`` they
describe (``load_topology``) and the rules across fields (``validate_topology``). Both the case
loader and the environment's services file read these blocks, so they are public here rather than
private to the case. Kept apart from ``harness.topology``, the pure data every mesh imports, so
that the meshes do not import pydantic, the YAML source maps or the echo app's knob parsers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import Issue
from harness.sample_apps.echo import knobs
from harness.schema_issues import show
from harness.topology import DEFAULT_NAMESPACE, DEFAULT_TOPOLOGY, Client, Service, ServicePort, Topology
from harness.yamlsource import Document, format_path


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class PortModel(_Model):
    name: str = Field(description='Port name; it carries the protocol as in Kubernetes: "http", "http2", "grpc", "grpc-web".')
    number: Annotated[int, Field(ge=1, le=65535)] = Field(description="Service port number, e.g. 80.")


class ServiceModel(_Model):
    versions: tuple[str, ...] = Field(("v1", "v2"), description="Versions, each labelled version: <name>.")
    external: bool = Field(
        False,
        description="An app outside the mesh, reached through a ServiceEntry whose host's first label is its name "
        "(api.example.com for a service api); it has no cluster or virtual host of its own.",
    )
    replicas: dict[str, Annotated[int, Field(ge=1, le=8)]] = Field(default_factory=dict, description="Instances per version (default 1).")
    ports: tuple[PortModel, ...] | None = Field(None, description="Service ports (default: http 9080 and grpc 7070).")
    knobs: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Echo-app defaults keyed by a version or an instance name: {v2: {status: "500"}, reviews-v1-1: {delay: 500ms}}. '
        "Knobs: status, delay, fail-first, grpc-status (see the echo app's README).",
    )


class ClientModel(_Model):
    name: str = Field(description="Workload name; send.from names it.")
    labels: dict[str, str] = Field(default_factory=dict, description="Pod labels (sourceLabels matching); default app: <name>.")
    namespace: str = Field(DEFAULT_NAMESPACE, description="Namespace of the workload.")


#: Echo-app knobs a case may set per version or instance, and how each is parsed (the app's own parsers).
_KNOBS = {k.name: k.parse for k in (knobs.STATUS, knobs.DELAY, knobs.FAIL_FIRST, knobs.GRPC_STATUS)}


def load_topology(services: dict[str, ServiceModel] | None, clients: tuple[ClientModel, ...] | None) -> Topology:
    """The topology the validated blocks describe; an absent block takes ``DEFAULT_TOPOLOGY``'s."""
    base = DEFAULT_TOPOLOGY
    return Topology(
        services=base.services if services is None else tuple(
            Service(
                name,
                versions=s.versions,
                replicas=tuple(sorted(s.replicas.items())),
                ports=base.services[0].ports if s.ports is None else tuple(ServicePort(p.name, p.number) for p in s.ports),
                knobs=tuple((key, tuple(sorted(values.items()))) for key, values in sorted(s.knobs.items())),
                external=s.external,
            )
            for name, s in sorted(services.items())
        ),
        clients=base.clients if clients is None else tuple(
            Client(c.name, labels=tuple(sorted((c.labels or {"app": c.name}).items())), namespace=c.namespace) for c in clients
        ),
    )


def validate_topology(topology: Topology, doc: Document, ref: str | None) -> list[Issue]:
    """Replicas and knobs name this service's versions or instances; knob values parse; names are unique.

    The rules that span fields, which the pydantic models cannot state; every issue carries its line
    in ``doc`` and ``ref`` (the case, or None for a services file)."""
    issues: list[Issue] = []

    def problem(message: str, *at: str | int) -> None:
        issues.append(Issue(message, doc.file, doc.line_of(at), ref, format_path(at)))

    instances = topology.instances()
    for service in topology.services:
        own = sorted(i for i, (svc, _) in instances.items() if svc == service.name)
        for version, _ in service.replicas:
            if version not in service.versions:
                problem(f"not one of this service's versions ({', '.join(service.versions)}), got {show(version)}",
                        "services", service.name, "replicas", version)
        numbers = [p.number for p in service.ports]
        for i, number in enumerate(numbers):
            if number in numbers[:i]:
                problem(f"port number used twice (got {number}); give each port its own number", "services", service.name, "ports", i, "number")
        for key, values in service.knobs:
            at = ("services", service.name, "knobs", key)
            if key not in service.versions and key not in own:
                problem(f"expected a version ({', '.join(service.versions)}) or an instance name ({', '.join(own)}), got {show(key)}", *at)
            for knob, value in values:
                parse = _KNOBS.get(knob)
                if parse is None:
                    problem(f"unknown knob (got {show(knob)}); known knobs: {', '.join(_KNOBS)}", *at, knob)
                    continue
                try:
                    parse(value)
                except knobs.KnobError as exc:
                    problem(str(exc), *at, knob)
    names = [c.name for c in topology.clients]
    for i, name in enumerate(names):
        if name in names[:i] or topology.service(name) is not None:
            problem(f"workload name used twice (got {name!r}); give each client and service its own name", "clients", i, "name")
    return issues
