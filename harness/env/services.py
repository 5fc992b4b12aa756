"""``mesh-harness up --services FILE``: which services, versions, replicas, ports, knobs and clients.

The file holds exactly a case's ``services:`` (and optional ``clients:``) sections, parsed and
checked by the case loader's own model and rules, so what works in a case works here::

    services:
      reviews:
        versions: [v1, v2]
        replicas: {v1: 2}
        ports: [{name: http, number: 9080}]
        knobs: {v2: {status: "503"}}

Pure: parses a loaded YAML document; every issue is reported at once, with its line.
"""

from __future__ import annotations

from pathlib import Path

import pydantic

from harness.errors import Issue, ValidationError
from harness.schema_issues import as_tuples, pydantic_issues
from harness.topology import Topology
from harness.topologyspec import ClientModel, ServiceModel, load_topology, validate_topology
from harness.yamlsource import Document, load_file


class ServicesFileModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")
    services: dict[str, ServiceModel]
    clients: tuple[ClientModel, ...] | None = None


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
    if not model.services:
        raise ValidationError([Issue("no services; add one, e.g. reviews: {versions: [v1, v2]}", doc.file,
                                     doc.line_of(("services",)), path="services")])
    topology = load_topology(model.services, model.clients)
    issues = validate_topology(topology, doc, None)
    if issues:
        raise ValidationError(issues)
    return topology
