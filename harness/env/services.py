"""``mesh-harness up --services FILE``: which services, versions, replicas and app knobs to run.

The file uses a case's ``services:`` schema (``harness.case.ServiceModel``: versions, replicas),
plus two fields that a hand-driven mesh needs and a case does not: ``ports`` (name -> number,
the name carries the protocol as in Kubernetes) and ``knobs`` (echo-app defaults keyed by a
version or an instance name)::

    services:
      reviews:
        versions: [v1, v2]
        replicas: {v1: 2}
        ports: {http: 9080, grpc: 7070}
        knobs: {v2: {status: "503"}, reviews-v1-1: {delay: 200ms}}

Pure: parses a loaded YAML document; every issue is reported at once, with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pydantic
from pydantic import Field

from harness.case import ServiceModel
from harness.errors import Issue, ValidationError
from harness.mesh.local.apps import KNOB_FLAGS
from harness.sample_apps.echo import knobs
from harness.schema_issues import as_tuples, pydantic_issues, show
from harness.topology import DEFAULT_PORTS, Client, Service, ServicePort, Topology
from harness.yamlsource import Document, format_path, load_file

Port = Annotated[int, Field(ge=1, le=65535)]


class EnvServiceModel(ServiceModel):
    ports: dict[str, Port] = Field(default_factory=lambda: {p.name: p.number for p in DEFAULT_PORTS})
    knobs: dict[str, dict[str, str]] = Field(default_factory=dict)


class ServicesFileModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    services: dict[str, EnvServiceModel]


def load_services_file(path: str | Path) -> Topology:
    """The topology described by a services file (one YAML document)."""
    docs = [d for d in load_file(path) if d.value is not None]
    if len(docs) != 1:
        raise ValidationError([Issue(f"expected one YAML document with 'services:', got {len(docs)}", str(path))])
    return topology_from_document(docs[0])


def topology_from_document(doc: Document) -> Topology:
    try:
        model = ServicesFileModel.model_validate(as_tuples(doc.value), strict=True)
    except pydantic.ValidationError as exc:
        raise ValidationError(pydantic_issues(exc, ServicesFileModel, doc, None)) from None
    issues: list[Issue] = []
    services = []
    for name, s in sorted(model.services.items()):
        services.append(_service(name, s))
        issues += _knob_issues(services[-1], doc, s)
    if not services:
        issues.append(Issue("no services; add at least one, e.g. reviews: {versions: [v1, v2]}", doc.file, doc.line,
                            path="services"))
    if issues:
        raise ValidationError(issues)
    return Topology(services=tuple(services), clients=(Client(),))


def _service(name: str, s: EnvServiceModel) -> Service:
    return Service(
        name,
        versions=s.versions,
        replicas=tuple(sorted(s.replicas.items())),
        ports=tuple(ServicePort(port_name, number) for port_name, number in s.ports.items()),
        knobs=tuple((key, tuple(sorted(values.items()))) for key, values in sorted(s.knobs.items())),
    )


def _knob_issues(service: Service, doc: Document, s: EnvServiceModel) -> list[Issue]:
    """Knobs must be keyed by a version or an instance of this service, and be knobs the app knows."""
    issues = []
    instances = {f"{service.name}-{v}-{i}" for v in service.versions for i in range(service.replica_count(v))}
    for key, values in s.knobs.items():
        at = ("services", service.name, "knobs", key)
        if key not in service.versions and key not in instances:
            issues.append(Issue(f"expected a version ({', '.join(service.versions)}) or an instance name "
                                f"({', '.join(sorted(instances))}), got {show(key)}", doc.file, doc.line_of(at),
                                path=format_path(at)))
        for knob in values:
            if knob not in KNOB_FLAGS:
                issues.append(Issue(f"unknown knob (got {show(knob)}); known knobs: {', '.join(KNOB_FLAGS)}",
                                    doc.file, doc.line_of((*at, knob)), path=format_path((*at, knob))))
        get = values.get
        try:
            knobs.Knobs.from_flags(get("status"), get("delay"), get("fail-first"), get("grpc-status"))
        except knobs.KnobError as exc:
            issues.append(Issue(str(exc), doc.file, doc.line_of((*at, exc.knob)), path=format_path((*at, exc.knob))))
    for version in s.replicas:
        if version not in service.versions:
            at = ("services", service.name, "replicas", version)
            issues.append(Issue(f"not one of this service's versions ({', '.join(service.versions)}), got "
                                f"{show(version)}", doc.file, doc.line_of(at), path=format_path(at)))
    return issues
