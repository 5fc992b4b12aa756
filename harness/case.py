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
fix), so that nothing runs, and nothing is applied, from a case that has a mistake in it. What depends
on more than the file (istiod's warnings, what the chosen mesh cannot serve) is pre-flight's
(``harness.session.preflight``), which every entry point runs on the loaded cases before it applies any.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.errors import CaseSyntaxError, Issue, ValidationError
from harness.expect import (
    AnyExpectation,
    ExpectModel,
    NoClaim,
    WhereModel,
    is_statistical,
    needs_of,
    parse_expectations,
    parse_where,
)
from harness.expect.base import show_seconds
from harness.expect.schema import DurationText, Located
from harness.istio.load import load_manifest, load_object
from harness.istio.model import Gateway, IstioObject
from harness.istio.validate import validate_objects
from harness.loadspec import LoadModel, LoadSpec, load_spec
from harness.mesh.base import SendSpec
from harness.sample_apps.echo import fields
from harness.schema_issues import as_tuples, pydantic_issues, show
from harness.settings import StatOverrides
from harness.topology import Topology
from harness.topologyspec import ClientModel, ServiceModel, load_topology, validate_topology
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
    timeout: DurationText = Field(30.0, description='Per-request timeout, e.g. "5s".')
    from_: str = Field("client", alias="from", description="The client workload that sends (its sidecar routes).")
    via: Literal["sidecar", "gateway"] = Field(
        "sidecar",
        description='"gateway": send to the ingress gateway (as from outside the mesh) instead of through the '
        "client's sidecar; the URL's host (http://bookinfo.example.com/) is the Host the Gateway's servers match.",
    )
    grpc_method: str = Field("/echo.Echo/Call", description="Full gRPC method name for protocol grpc.")
    count: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None,
        description="Send exactly this many requests in one batch (e.g. 10 concurrent callers for a circuit breaker). "
        "Only every-response and aggregate expectations then (no fractions or quantiles): they need their own request plan.",
    )
    headers_cycle: dict[str, Annotated[tuple[str, ...], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="Header values cycled over the requests (request i gets value i mod n), e.g. {x-user: [a, b, c, d]}: "
        "many hash keys for instances: {at_least: 2} under consistent hashing.",
    )


#: Longest ``wait`` a check may ask for: policy times in cases are seconds, and a run must stay short.
MAX_WAIT_S = 60.0


#: ``expect: none``: the check sends ``send.count`` requests and claims nothing about them.
NO_CLAIM = "none"


def _expect_or_none(value: Any) -> Any:
    """``expect: none`` (traffic without a claim) is None here; a YAML null or another word is a mistake."""
    if value == NO_CLAIM:
        return None
    if value is None or isinstance(value, str):
        raise ValueError("expected a mapping of expectations such as {version: v2}, "
                         "or none to send traffic without a claim (warm-up)")
    return value



class CheckModel(_Model):
    name: str = Field(description="Names the check in reports and pytest ids.")
    about: str | None = None
    send: SendModel
    expect: Annotated[ExpectModel | None, BeforeValidator(_expect_or_none)] = Field(
        description='What must come out, or none: traffic without a claim (warm-up), exactly send.count requests.'
    )
    expect_where: tuple[WhereModel, ...] = Field(
        (),
        description='Expectations on the responses that match a filter, e.g. [{where: {status: 503}, expect: {flags: UO}}]: '
        "every matching response has them, and at least one response must match.",
    )
    wait: DurationText | None = Field(
        None,
        description=f'Policy time: wait this long after the previous check before sending, e.g. "2s" to outlast an outlier '
        f"baseEjectionTime (at most {MAX_WAIT_S:g}s). Never needed for config: apply waits for every proxy's ACK.",
    )
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


class OutboundTrafficPolicyModel(_Model):
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] = Field(
        description="REGISTRY_ONLY: a host outside the registry gets 502 (block_all); ALLOW_ANY: it passes through.")


class MeshConfigModel(_Model):
    outbound_traffic_policy: OutboundTrafficPolicyModel = Field(
        alias="outboundTrafficPolicy", description="The outbound traffic policy this case's checks depend on.")


class CaseModel(_Model):
    name: str
    about: str | None = None
    services: dict[str, ServiceModel] | None = None
    clients: tuple[ClientModel, ...] | None = Field(None, description="Caller workloads, each with its own sidecar (default: one named client).")
    mesh_config: MeshConfigModel | None = Field(
        None, alias="meshConfig", description="Mesh-wide settings (Istio MeshConfig) this case depends on; a mesh that runs other "
                          "settings refuses the case up front.")
    config: tuple[dict[str, Any], ...] = ()
    checks: tuple[CheckModel, ...]
    load: LoadModel | None = Field(None, description="How `mesh-harness load` runs this case under Locust, and its gates.")


# --- the parsed case -------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One check: traffic and expectations. ``count`` fixes the number of requests (one batch);
    ``headers_cycle`` gives request ``i`` the ``i mod n``-th value of each header; ``wait_s`` is
    policy time to let pass before the traffic (an ejection running out), never a config-sync wait."""

    name: str
    line: int
    send: SendSpec
    expectations: tuple[AnyExpectation, ...]
    overrides: StatOverrides
    count: int | None = None
    headers_cycle: tuple[tuple[str, tuple[str, ...]], ...] = ()
    wait_s: float = 0.0


@dataclass(frozen=True)
class Case:
    name: str
    about: str | None
    file: str
    line: int
    topology: Topology
    objects: tuple[IstioObject, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)
    load: LoadSpec | None = None
    outbound_policy: Literal["REGISTRY_ONLY", "ALLOW_ANY"] | None = None
    """``meshConfig.outboundTrafficPolicy.mode`` the case depends on (None: it works under either)."""


def load_case_file(path: str | Path) -> list[Case]:
    """Every case in a YAML file; raises ``CaseError`` with every issue of every case at once, in line order."""
    docs = [d for d in load_file(path) if d.value is not None]  # empty documents (a stray ---) are skipped
    if not docs:
        raise CaseSyntaxError(f"{path}: empty file; a case needs a name and checks (see README, 'Writing cases')")
    cases: list[Case] = []
    issues: list[Issue] = []
    for doc in docs:
        try:
            cases.append(load_case(doc))
        except ValidationError as exc:
            issues.extend(exc.issues)
    first_line: dict[str, int] = {}
    for case in cases:
        if case.name in first_line:
            issues.append(Issue(
                f"case name used twice in one file (got {case.name!r}, first at line {first_line[case.name]}); "
                "give each case its own name", case.file, case.line, f"case {case.name}", "name",
            ))
        first_line.setdefault(case.name, case.line)
    if issues:
        raise ValidationError(sorted(issues, key=lambda i: i.line or 0))
    return cases


def load_case(doc: Document) -> Case:
    """One case from one YAML document.

    Schema errors (unknown fields, wrong types) do not hide the rest: the checks that are well
    formed are still checked for bad URLs, fractions and duplicate names, the valid ``send`` and
    ``expect`` of a malformed check against the topology (unknown service, client or version), and
    the config's objects against istiod's rules, so one run shows all.
    """
    if not isinstance(doc.value, dict):
        raise ValidationError([Issue(
            f"expected a case (a mapping with name, config and checks), got {show(doc.value)}; "
            "start the document with 'name:'", doc.file, doc.line,
        )])
    if "apiVersion" in doc.value and "kind" in doc.value and "checks" not in doc.value:
        raise ValidationError([Issue(
            f"this is a Kubernetes manifest ({show(doc.value['kind'])}), not a case; name a case file, and reference "
            f"the manifest from its config: [{{file: {Path(doc.file).name}}}]", doc.file, doc.line,
        )])
    name = doc.value.get("name")
    ref = f"case {name}" if isinstance(name, str) else None
    issues: list[Issue] = []
    try:
        model = CaseModel.model_validate(as_tuples(doc.value), strict=True)
    except pydantic.ValidationError as exc:
        issues.extend(pydantic_issues(exc, CaseModel, doc, ref))
        config = doc.value.get("config")
        objects = []
        if isinstance(config, list) and all(isinstance(entry, dict) for entry in config):
            objects = _load_config(config, doc, ref, issues)
        topology = _well_formed_topology(doc)
        for index, check in _well_formed_checks(doc):
            _load_check(index, check, doc, ref, topology, issues)
        for index, entry in _malformed_checks(doc):
            _malformed_check_problems(index, entry, doc, ref, topology, issues)
        issues.extend(_duplicate_check_names(doc, ref))
        issues.extend(validate_objects(objects).errors)
        raise ValidationError(issues) from None
    ref = f"case {model.name}"
    if not model.checks:
        issues.append(Issue("a case needs at least one check (send + expect)", doc.file, doc.line_of(("checks",)), ref, "checks"))
    objects = _load_config(model.config, doc, ref, issues)
    topology = load_topology(model.services, model.clients)
    if any(c.send.via == "gateway" for c in model.checks) or any(isinstance(o, Gateway) for o in objects):
        topology = replace(topology, gateway=True)
    issues.extend(validate_topology(topology, doc, ref))
    checks = tuple(_load_check(i, c, doc, ref, topology, issues) for i, c in enumerate(model.checks))
    issues.extend(_duplicate_check_names(doc, ref))
    load = None if model.load is None else load_spec(model.load, doc, ref, [c.name for c in model.checks], issues)
    if issues:  # istiod's rules too, which pre-flight applies to a case that loaded (harness.session)
        raise ValidationError([*issues, *validate_objects(objects).errors])
    policy = model.mesh_config.outbound_traffic_policy.mode if model.mesh_config else None
    return Case(model.name, model.about, doc.file, doc.line, topology, tuple(objects), checks, load, policy)


_M = TypeVar("_M", bound=BaseModel)


def _well_formed_checks(doc: Document) -> list[tuple[int, CheckModel]]:
    """The checks of a case that failed schema validation which are valid on their own."""
    raw = doc.value.get("checks")
    if not isinstance(raw, list):
        return []
    return [(index, check) for index, entry in enumerate(raw) if (check := _valid(CheckModel, entry)) is not None]


def _malformed_checks(doc: Document) -> list[tuple[int, dict[str, Any]]]:
    """The checks (mappings) of a case that failed schema validation which are not valid on their own."""
    raw = doc.value.get("checks")
    if not isinstance(raw, list):
        return []
    return [(i, entry) for i, entry in enumerate(raw) if isinstance(entry, dict) and _valid(CheckModel, entry) is None]


def _valid(model: type[_M], value: Any) -> _M | None:
    """``value`` as ``model``, or None when it is not valid (its issues are reported by the enclosing validation)."""
    try:
        return model.model_validate(as_tuples(value), strict=True)
    except pydantic.ValidationError:
        return None


def _malformed_check_problems(index: int, entry: dict[str, Any], doc: Document, ref: str | None,
                              topology: Topology | None, issues: list[Issue]) -> None:
    """Topology problems in the valid parts of a malformed check: a misspelt field elsewhere in it must not hide
    an unknown service, client or version until it is fixed."""
    if topology is None:
        return
    path = ("checks", index)

    def problem(message: str, *at: str | int) -> None:
        issues.append(Issue(message, doc.file, doc.line_of((*path, *at)), ref, format_path((*path, *at))))

    send = _valid(SendModel, entry.get("send"))
    if send is not None:
        _send_topology_problems(send, topology, problem)
    expect = _valid(ExpectModel, entry.get("expect"))
    if expect is not None:
        _check_versions(expect.version, topology, problem)


def _well_formed_topology(doc: Document) -> Topology | None:
    """The topology of a case that failed schema validation, if its ``services`` are valid on their own."""
    try:
        services = _SERVICES.validate_python(as_tuples(doc.value.get("services")), strict=True)
        clients = _CLIENTS.validate_python(as_tuples(doc.value.get("clients")), strict=True)
    except pydantic.ValidationError:
        return None  # already reported by the case's own validation
    return load_topology(services, clients)


def _duplicate_check_names(doc: Document, ref: str | None) -> list[Issue]:
    raw = doc.value.get("checks")
    names = [c.get("name") if isinstance(c, dict) else None for c in raw] if isinstance(raw, list) else []
    issues = []
    for i, name in enumerate(names):
        if isinstance(name, str) and name in names[:i]:
            first = doc.line_of(("checks", names.index(name), "name"))
            issues.append(Issue(
                f"check name used twice (got {name!r}, first at line {first}); give each check its own name",
                doc.file, doc.line_of(("checks", i, "name")), ref, f"checks[{i}].name",
            ))
    return issues


def _load_config(config: Sequence[dict[str, Any]], doc: Document, ref: str | None, issues: list[Issue]) -> list[IstioObject]:
    objects: list[IstioObject] = []
    for i, entry in enumerate(config):
        path = ("config", i)
        try:
            if set(entry) == {"file"}:
                objects.extend(_load_referenced(entry["file"], doc, path, ref))
            else:
                objects.append(load_object(doc.sub(path)))
        except ValidationError as exc:
            issues.extend(exc.issues)
    return objects


def _load_referenced(target: Any, doc: Document, path: tuple[str | int, ...], ref: str | None) -> list[IstioObject]:
    where = Issue("", doc.file, doc.line_of((*path, "file")), ref, format_path((*path, "file")))
    if not isinstance(target, str) or not target:
        raise ValidationError([_with(where, f"expected a path to a YAML manifest, got {show(target)}")])
    manifest = Path(doc.file).parent / target
    if manifest.is_dir():
        raise ValidationError([_with(where, f"{str(manifest)!r} is a directory; name one YAML manifest in it "
                                            "(one config entry per file)")])
    if not manifest.is_file():
        raise ValidationError([_with(where, f"no such file {str(manifest)!r}; paths are relative to the case file")])
    return load_manifest(manifest)


def _load_check(
    index: int, check: CheckModel, doc: Document, ref: str | None, topology: Topology | None, issues: list[Issue]
) -> Check:
    """A parsed check; its problems go to ``issues``. ``topology`` is None when the case's own
    schema is broken, and then the URL's service and the client are not looked up."""
    path = ("checks", index)
    send = check.send

    def problem(message: str, *at: str | int) -> None:
        issues.append(Issue(message, doc.file, doc.line_of((*path, *at)), ref, format_path((*path, *at))))

    target = _send_topology_problems(send, topology, problem)
    for field_name, names in (("headers", send.headers), ("headers_cycle", send.headers_cycle)):
        for name in names:
            if not _HEADER_NAME.fullmatch(name):
                problem(f"not a valid HTTP header name (got {show(name)}); use letters, digits and '-', e.g. x-user",
                        "send", field_name, name)
    if check.expect is None:
        located = _no_claim(check, problem)
    else:
        if topology is not None:
            _check_versions(check.expect.version, topology, problem)
        located, problems = parse_expectations(check.expect, target=target, topology=topology)
        for at, message in problems:
            problem(message, "expect", *at)
        located = [(("expect", *at), e) for at, e in located]
    for i, entry in enumerate(check.expect_where):
        where_located, problems = parse_where(entry, target=target, topology=topology)
        for at, message in problems:
            problem(message, "expect_where", i, *at)
        located += [(("expect_where", i, *at), e) for at, e in where_located]
    if check.wait is not None and not 0.0 < check.wait <= MAX_WAIT_S:
        problem(f"must be above 0s and at most {MAX_WAIT_S:g}s (got {show_seconds(check.wait)}); wait is for policy time "
                "such as an ejection running out, never for config (apply already waits for the ACKs)", "wait")
    expectations = tuple(e for _, e in located)
    if send.count is not None:
        for at, e in located:
            if is_statistical(e):
                problem(f"a split or quantile is judged statistically with its own request plan, but send.count fixes "
                        f"the requests at {send.count}; remove count, or expect one value for every response", *at)
    if "app_log" in needs_of(expectations):
        for name in send.headers:
            if name.lower() == fields.REQUEST_ID_HEADER:
                problem("attempts, mirror, received and instances.exclude join app logs by request id, so each "
                        "request needs its own; remove this header", "send", "headers", name)
    if send.protocol == "grpc":
        for at, e in located:
            if "body" in e.needs:
                problem("a gRPC response's body is a protobuf message, not text; check grpc_status (or headers) "
                        "instead, or send with protocol http", *at)
    for name in send.headers_cycle:
        if name.lower() in (h.lower() for h in send.headers):
            problem("this header is also in send.headers; give it in one of them", "send", "headers_cycle", name)
        elif name.lower() in ("host", fields.REQUEST_ID_HEADER):
            problem("cannot vary per request: each request gets its own request id, and the Host is the URL's "
                    "(or one fixed value in send.headers)", "send", "headers_cycle", name)
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
        via=send.via,
    )
    overrides = StatOverrides(
        alpha=check.alpha, delta=check.delta, relative_delta=check.relative_delta, power=check.power,
        max_requests=check.max_requests, leak=check.leak,
    )
    return Check(check.name, doc.line_of(path), spec, expectations, overrides, send.count, tuple(send.headers_cycle.items()),
                 check.wait or 0.0)


def _no_claim(check: CheckModel, problem: Callable[..., None]) -> list[Located]:
    """``expect: none``: a check that only sends. Nothing sizes its traffic but ``send.count``, and a
    claim under ``expect_where`` would contradict it."""
    if check.send.count is None:
        problem("a check without a claim sends exactly send.count requests; add count, e.g. send: {url: ..., count: 20}",
                "send")
    if check.expect_where:
        problem("expect: none makes no claim, but expect_where does; write the claims under expect, or remove expect_where",
                "expect_where")
    return [(("expect",), NoClaim())]


#: An HTTP header name is an RFC 9110 token.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _send_topology_problems(send: SendModel, topology: Topology | None, problem: Callable[..., None]) -> str | None:
    """The service ``send`` targets (None when unusable), with a problem for an unknown service or client."""
    target = _target_service(send.url, topology, problem, via=send.via)
    if topology is not None and topology.client(send.from_) is None:
        known = ", ".join(c.name for c in topology.clients)
        problem(f"no client workload {send.from_!r} (clients: {known}); send from one of them", "send", "from")
    return target


def _check_versions(expected: str | tuple[str, ...] | dict[str, float] | None, topology: Topology, problem: Callable[..., None]) -> None:
    """``expect.version`` names versions some service of the topology has ("none": Envoy answered itself);
    a version no instance has can never answer, so the check could only fail."""
    names = [expected] if isinstance(expected, str) else list(expected or {})
    known = sorted({v for s in topology.services for v in s.versions})
    for name in names:
        if name != "none" and name not in known:
            problem(f"no service in this case's topology has version {name!r} (versions: {', '.join(known)}); "
                    "add it under services:", "expect", "version")


def _target_service(url: str, topology: Topology | None, problem: Callable[..., None], via: str = "sidecar") -> str | None:
    """The service the URL names (its host's first label), or None with a problem when it is not usable.

    Through the gateway the host is whatever the Gateway exposes (bookinfo.example.com), so a host
    that names no service is no problem there: the target is just unknown (None)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "grpc") or not parts.hostname:
        problem(f'expected a URL like "http://reviews:9080/path" (got {show(url)})', "send", "url")
        return None
    name = parts.hostname.split(".")[0]
    if topology is not None and topology.service(name) is None:
        if via == "gateway":
            return None
        known = ", ".join(s.name for s in topology.services)
        problem(f"no service {name!r} in this case's topology (services: {known}); add it under services:", "send", "url")
        return None
    return name


_SERVICES = pydantic.TypeAdapter(dict[str, ServiceModel] | None)
_CLIENTS = pydantic.TypeAdapter(tuple[ClientModel, ...] | None)


def _with(issue: Issue, message: str) -> Issue:
    return Issue(message, issue.file, issue.line, issue.obj, issue.path)


def case_json_schema() -> dict[str, Any]:
    """JSON Schema of a case document, for editors (``mesh-harness schema > case.schema.json``).

    Istio objects under ``config`` are left open here: their schema is Istio's own CRD schema.
    """
    schema = CaseModel.model_json_schema(by_alias=True)
    schema["title"] = "mesh-harness case"
    # ``expect: none`` is None once validated; in YAML it is the word, never null.
    expect = schema["$defs"]["CheckModel"]["properties"]["expect"]
    expect["anyOf"] = [{"const": NO_CLAIM} if s == {"type": "null"} else s for s in expect["anyOf"]]
    return schema
