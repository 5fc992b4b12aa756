"""Cases: Istio config plus the traffic to send and what must come out, loaded once from YAML.

A case file holds one or more YAML documents, each a case::

    name: canary-90-10
    services: {reviews: {versions: [v1, v2]}}      # optional; the default topology otherwise
    config:                                         # inline Istio objects, or {file: path} (relative to the case)
      - {apiVersion: networking.istio.io/v1, kind: VirtualService, ...}
    checks:
      - name: split follows the weights
        send: {url: "http://reviews:9080/"}
        expect: {version: {v1: 0.9, v2: 0.1}}

Everything is parsed and validated here, with every issue reported at once (file, line, field path,
fix), so that nothing runs, and nothing is applied, from a case that has a mistake in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.errors import CaseSyntaxError, Issue, ValidationError
from harness.expectations import Expectation, parse_expectations
from harness.istio.load import load_manifest, load_object
from harness.istio.model import Duration, IstioObject
from harness.mesh.base import SendSpec
from harness.schema_issues import as_tuples, pydantic_issues
from harness.settings import StatOverrides
from harness.topology import DEFAULT_TOPOLOGY, Client, Service, Topology
from harness.yamlsource import Document, format_path, load_file

# --- the YAML schema -------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SendModel(_Model):
    """How to send: the vocabulary of ``send``. ``url`` names the service as a pod would."""

    url: str = Field(description='Target as a pod would call it, e.g. "http://reviews:9080/path?x=1".')
    method: str = Field("GET", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    body: str = Field("", description="Request body (text).")
    concurrency: Annotated[int, Field(ge=1, le=256)] = Field(16, description="Requests in flight at once.")
    rate: Annotated[float, Field(gt=0)] | None = Field(None, description="Requests per second (default: as fast as possible).")
    protocol: Literal["http", "grpc"] = Field("http", description="Wire protocol from the client.")
    new_connection: bool = Field(False, description="Open a new connection per request instead of keep-alive.")
    timeout: Duration = Field(30.0, description='Per-request timeout, e.g. "5s".')
    from_: str = Field("client", alias="from", description="The client workload that sends (its sidecar routes).")
    grpc_method: str = Field("/echo.Echo/Call", description="Full gRPC method name for protocol grpc.")


def _one_or_fractions(kind: type, example: str) -> Any:
    """A before-validator giving one clear message for "a single value, or a mapping of fractions"."""

    def check(value: Any) -> Any:
        ok_single = isinstance(value, kind) and not isinstance(value, bool)
        ok_map = isinstance(value, dict) and all(
            isinstance(k, kind) and not isinstance(k, bool) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in value.items()
        )
        if value is None or ok_single or ok_map:
            return value
        raise ValueError(f"expected {example}")

    return BeforeValidator(check)


class ExpectModel(_Model):
    """What must come out. A single value means "every response"; a mapping means fractions."""

    version: Annotated[str | dict[str, float] | None, _one_or_fractions(str, 'a version ("v2") or fractions ({v1: 0.9, v2: 0.1})')] = Field(
        None, description='Which version answered: "v2" (all), or fractions {v1: 0.9, v2: 0.1}; "none" = Envoy answered.'
    )
    status: Annotated[int | dict[int, float] | None, _one_or_fractions(int, "a status code (200) or fractions ({200: 0.5, 503: 0.5})")] = Field(
        None, description="HTTP status: 200 (all), or fractions {200: 0.5, 503: 0.5}."
    )


class CheckModel(_Model):
    name: str = Field(description="Names the check in reports and pytest ids.")
    about: str | None = None
    send: SendModel
    expect: ExpectModel
    delta: Annotated[float, Field(gt=0, lt=1)] | None = Field(None, description="Absolute tolerance on each fraction (default 0.05).")
    relative_delta: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="Tolerance as a share of each expected fraction, for small fractions (e.g. 0.5 of a 1% abort)."
    )
    alpha: Annotated[float, Field(gt=0, lt=0.5)] | None = Field(None, description="Chance a correct mesh fails (default 1e-6).")
    power: Annotated[float, Field(gt=0.5, lt=1)] | None = Field(None, description="Chance a deviation of delta is caught (default 0.999).")
    max_requests: Annotated[int, Field(ge=1)] | None = Field(None, description="Cap on requests for this check.")
    leak: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description='For "every response" expectations: smallest share of exceptions to catch (default 0.05).'
    )


class ServiceModel(_Model):
    versions: tuple[str, ...] = ("v1", "v2")
    replicas: dict[str, Annotated[int, Field(ge=1, le=8)]] = Field(default_factory=dict)


class CaseModel(_Model):
    name: str
    about: str | None = None
    services: dict[str, ServiceModel] | None = None
    config: tuple[dict[str, Any], ...] = ()
    checks: tuple[CheckModel, ...]


# --- the parsed case -------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    line: int
    send: SendSpec
    expectations: tuple[Expectation, ...]
    overrides: StatOverrides


@dataclass(frozen=True)
class Case:
    name: str
    about: str | None
    file: str
    line: int
    topology: Topology
    objects: tuple[IstioObject, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)


def load_case_file(path: str | Path) -> list[Case]:
    """Every case in a YAML file; raises ``CaseError`` with every issue of every case at once."""
    docs = load_file(path)
    if not docs:
        raise CaseSyntaxError(f"{path}: empty file; a case needs name, config and checks (see README, 'Writing cases')")
    cases: list[Case] = []
    issues: list[Issue] = []
    for doc in docs:
        try:
            cases.append(load_case(doc))
        except ValidationError as exc:
            issues.extend(exc.issues)
    names = [c.name for c in cases]
    for case in cases:
        if names.count(case.name) > 1:
            issues.append(Issue(f"case name used twice in one file (got {case.name!r}); give each case its own name", case.file, case.line, path="name"))
            names.remove(case.name)
    if issues:
        raise ValidationError(issues)
    return cases


def load_case(doc: Document) -> Case:
    """One case from one YAML document."""
    if not isinstance(doc.value, dict):
        raise ValidationError([Issue("expected a case (a mapping with name, config and checks)", doc.file, doc.line)])
    try:
        model = CaseModel.model_validate(as_tuples(doc.value), strict=True)
    except pydantic.ValidationError as exc:
        name = doc.value.get("name")
        raise ValidationError(pydantic_issues(exc, CaseModel, doc, f"case {name}" if isinstance(name, str) else None)) from None
    issues: list[Issue] = []
    ref = f"case {model.name}"
    if not model.checks:
        issues.append(Issue("a case needs at least one check (send + expect)", doc.file, doc.line_of(("checks",)), ref, "checks"))
    objects = _load_config(model, doc, ref, issues)
    checks = tuple(_load_check(i, c, doc, ref, issues) for i, c in enumerate(model.checks))
    names = [c.name for c in model.checks]
    for i, name in enumerate(names):
        if name in names[:i]:
            issues.append(Issue(f"check name used twice (got {name!r}); give each check its own name", doc.file, doc.line_of(("checks", i, "name")), ref, f"checks[{i}].name"))
    case = Case(model.name, model.about, doc.file, doc.line, _topology(model), tuple(objects), checks)
    issues.extend(topology_issues(case))
    if issues:
        raise ValidationError(issues)
    return case


def _load_config(model: CaseModel, doc: Document, ref: str, issues: list[Issue]) -> list[IstioObject]:
    objects: list[IstioObject] = []
    for i, entry in enumerate(model.config):
        path = ("config", i)
        try:
            if set(entry) == {"file"}:
                objects.extend(_load_referenced(entry["file"], doc, path, ref))
            else:
                objects.append(load_object(doc.sub(path)))
        except ValidationError as exc:
            issues.extend(exc.issues)
    return objects


def _load_referenced(target: Any, doc: Document, path: tuple[str | int, ...], ref: str) -> list[IstioObject]:
    where = Issue("", doc.file, doc.line_of((*path, "file")), ref, format_path((*path, "file")))
    if not isinstance(target, str) or not target:
        raise ValidationError([_with(where, f"expected a path to a YAML manifest, got {target!r}")])
    manifest = Path(doc.file).parent / target
    if not manifest.is_file():
        raise ValidationError([_with(where, f"no such file {str(manifest)!r}; paths are relative to the case file")])
    return load_manifest(manifest)


def _load_check(index: int, check: CheckModel, doc: Document, ref: str, issues: list[Issue]) -> Check:
    path = ("checks", index)
    line = doc.line_of(path)
    send = check.send
    parts = urlsplit(send.url)
    if parts.scheme not in ("http", "grpc") or not parts.hostname:
        issues.append(Issue(f'expected a URL like "http://reviews:9080/path" (got {send.url!r})', doc.file, doc.line_of((*path, "send", "url")), ref, format_path((*path, "send", "url"))))
    expectations, problems = parse_expectations(check.expect)
    for field_name, message in problems:
        p = (*path, "expect", field_name) if field_name else (*path, "expect")
        issues.append(Issue(message, doc.file, doc.line_of(p), ref, format_path(p)))
    spec = SendSpec(
        url=send.url,
        method=send.method.upper(),
        headers=tuple(send.headers.items()),
        body=send.body.encode(),
        concurrency=send.concurrency,
        rate=send.rate,
        protocol=send.protocol,
        new_connection=send.new_connection,
        timeout_s=send.timeout,
        client=send.from_,
        grpc_method=send.grpc_method,
    )
    overrides = StatOverrides(
        alpha=check.alpha, delta=check.delta, relative_delta=check.relative_delta, power=check.power,
        max_requests=check.max_requests, leak=check.leak,
    )
    return Check(check.name, line, spec, tuple(expectations), overrides)


def _topology(model: CaseModel) -> Topology:
    if model.services is None:
        return DEFAULT_TOPOLOGY
    services = tuple(
        Service(name, versions=s.versions, replicas=tuple(sorted(s.replicas.items())))
        for name, s in sorted(model.services.items())
    )
    return Topology(services=services, clients=(Client(),))


def _with(issue: Issue, message: str) -> Issue:
    return Issue(message, issue.file, issue.line, issue.obj, issue.path)


def topology_issues(case: Case) -> list[Issue]:
    """Checks whose traffic names a service or client the case's topology does not run."""
    issues: list[Issue] = []
    for i, check in enumerate(case.checks):
        host = urlsplit(check.send.url).hostname or ""
        short = host.split(".")[0]
        if case.topology.service(short) is None:
            known = ", ".join(s.name for s in case.topology.services)
            issues.append(Issue(f"no service {short!r} in this case's topology (services: {known}); add it under services:", case.file, check.line, f"case {case.name}", f"checks[{i}].send.url"))
        if case.topology.client(check.send.client) is None:
            issues.append(Issue(f"no client workload {check.send.client!r}; the topology has 'client'", case.file, check.line, f"case {case.name}", f"checks[{i}].send.from"))
    return issues


def case_json_schema() -> dict[str, Any]:
    """JSON Schema of a case document, for editors (``mesh-harness schema > case.schema.json``).

    Istio objects under ``config`` are left open here: their schema is Istio's own CRD schema.
    """
    schema = CaseModel.model_json_schema(by_alias=True)
    schema["title"] = "mesh-harness case"
    return schema
