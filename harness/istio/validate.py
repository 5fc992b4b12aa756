"""istiod's validation of VirtualService, DestinationRule, Gateway and ServiceEntry, on typed objects, all issues at once.

The rules follow istio/istio ``pkg/config/validation`` (``ValidateVirtualService``,
``validateHTTPRoute``, ``ValidateDestinationRule``, ``ValidateGateway``, ``ValidateServiceEntry``
and their helpers): what istiod's webhook
rejects is an error here, what it accepts with a warning is a warning. Warnings of our own:
DestinationRule ``tls`` is accepted but the local mesh does not exercise it;
route weights that add up to nearly but not exactly 100 (relative in Istio, percentages in old docs); and,
as ``istioctl analyze`` does, a subset that no DestinationRule of a case defines (503 NC at run time;
``undefined_subset_warnings``, for a whole case).
Regexes in route matches are compiled with RE2, the engine of both istiod (Go) and Envoy.
Paths are camelCase, as in the YAML, and lines come from the object's ``Source``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import re2

from harness.errors import Issue
from harness.istio.duration import format_duration
from harness.istio.model import (
    ConnectionPoolSettings,
    Destination,
    DestinationRule,
    Gateway,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRoute,
    IstioObject,
    LoadBalancerSettings,
    OutlierDetection,
    Percent,
    Server,
    ServiceEntry,
    StringMatch,
    TrafficPolicy,
    VirtualService,
    is_http_status,
)
from harness.istio.semantics import binds_to_sidecars, creation_order, resolve_host
from harness.yamlsource import PathKey, format_path

#: ``retryOn`` tokens istiod accepts besides HTTP status codes (``supportedRetryOnPolicies``).
RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "reset-before-request",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)

#: gRPC status names a fault ``abort.grpcStatus`` may use.
GRPC_STATUSES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LOOKS_LIKE_PERCENT = (50, 200)
"""Weights summing to this range but not to 100 look like percentages that miss (90 + 20); small sums
(1 + 1, 3 + 1) are plainly relative and get no warning."""
_MAX_REGEX = 1024
"""istiod refuses longer regexes (a stand-in for Envoy's RE2 program-size limit)."""
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the reason is in our message; RE2 would also print it on stderr
_DNS_LABEL = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?")
#: Port protocols istiod parses (``protocol.Parse``, case-insensitive); anything else is "Unsupported".
PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL", "TCP", "TLS", "UDP"})
_TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
_DIRECT_RESPONSE_WARN_BYTES = 100 * 1024
_DIRECT_RESPONSE_MAX_BYTES = 1024 * 1024
_MAGLEV_MAX_TABLE = 5000011
_NOT_EXERCISED = "accepted, but the local mesh does not exercise it; run with --mesh kind to test it"


@dataclass
class Findings:
    """What validation found: ``errors`` (istiod would reject the object) and ``warnings`` (accepted)."""

    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def validate_objects(objs: Iterable[IstioObject]) -> Findings:
    """Every error and warning istiod would report for ``objs``, plus duplicate objects."""
    objs = list(objs)
    findings = Findings()
    seen: set[tuple[str, str, str]] = set()
    for obj in objs:
        report = _Report(obj, findings)
        if obj.key in seen:
            report.error(("metadata", "name"), f"duplicate object (got a second {obj.ref} in namespace "
                         f"{obj.metadata.namespace}); give each object its own name")
        seen.add(obj.key)
        _metadata(obj, report)
        if isinstance(obj, VirtualService):
            _virtual_service(obj, report)
        elif isinstance(obj, DestinationRule):
            _destination_rule(obj, report)
        elif isinstance(obj, Gateway):
            _gateway(obj, report)
        elif isinstance(obj, ServiceEntry):
            _service_entry(obj, report)
    _shadowed_virtual_services(objs, findings)
    return findings


def _metadata(obj: IstioObject, report: _Report) -> None:
    """The Kubernetes API server refuses names that are not RFC 1123 (``kubectl apply`` fails before istiod sees them)."""
    name, namespace = obj.metadata.name, obj.metadata.namespace
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        report.error(("metadata", "name"), f"not a valid Kubernetes name (got {_q(name)}); use lower case letters, "
                     "digits, '-' and '.', e.g. reviews-canary")
    if not _DNS1123_LABEL.fullmatch(namespace):
        report.error(("metadata", "namespace"), f"not a valid namespace name (got {_q(namespace)}); use lower case "
                     "letters, digits and '-', e.g. default")


def undefined_subset_warnings(objs: Iterable[IstioObject]) -> list[Issue]:
    """Warnings for destinations whose subset no DestinationRule among ``objs`` defines: istiod accepts
    them, and sidecars answer 503 with flag NC, cluster not found (``istioctl analyze``: IST0101).

    Only meaningful for every object a mesh will hold (a whole case), not for one manifest of several."""
    objs = list(objs)
    findings = Findings()
    defined = {(resolve_host(dr.spec.host, dr.metadata.namespace), subset.name)
               for dr in objs if isinstance(dr, DestinationRule) for subset in dr.spec.subsets}
    for vs in (o for o in objs if isinstance(o, VirtualService)):
        for path, dest, effect in _subset_destinations(vs):
            if dest.subset is not None and (resolve_host(dest.host, vs.metadata.namespace), dest.subset) not in defined:
                _Report(vs, findings).warn((*path, "subset"), (
                    f"no DestinationRule for host {dest.host} defines subset {dest.subset} (istiod accepts it, but "
                    f"{effect}); add {{name: {dest.subset}, labels: {{version: {dest.subset}}}}} to the subsets of a "
                    f"DestinationRule with host: {dest.host}"))
    return findings.warnings


def _subset_destinations(vs: VirtualService) -> Iterable[tuple[PathKey, Destination, str]]:
    """Every destination of ``vs`` that may name a subset, with what a missing subset does to its traffic."""
    for i, route in enumerate(vs.spec.http):
        for j, dest in enumerate(route.route):
            yield ("spec", "http", i, "route", j, "destination"), dest.destination, \
                "requests routed here get 503 with flag NC (cluster not found)"
        if route.mirror is not None:
            yield ("spec", "http", i, "mirror"), route.mirror, "nothing is mirrored"
        for j, mirror in enumerate(route.mirrors):
            yield ("spec", "http", i, "mirrors", j, "destination"), mirror.destination, "nothing is mirrored"


def _shadowed_virtual_services(objs: Iterable[IstioObject], findings: Findings) -> None:
    """Sidecars take one VirtualService per host: the oldest (istiod sorts by creationTimestamp, then
    name, then namespace); a later one for the same host is dropped (#36621), which istiod only
    counts in a metric. We say it, as a warning on the ignored object."""
    owner: dict[str, VirtualService] = {}
    services = [o for o in objs if isinstance(o, VirtualService) and binds_to_sidecars(o)]
    for vs in sorted(services, key=creation_order):
        for i, host in enumerate(vs.spec.hosts):
            fqdn = resolve_host(host, vs.metadata.namespace)
            first = owner.setdefault(fqdn, vs)
            if first is not vs:
                _Report(vs, findings).warn(
                    ("spec", "hosts", i),
                    f"ignored by sidecars for host {host}: {first.ref} also claims it and is older "
                    "(istiod keeps the oldest VirtualService per host); merge the rules into one VirtualService",
                )


class _Report:
    """Adds issues about one object, located by field path."""

    def __init__(self, obj: IstioObject, findings: Findings) -> None:
        self._obj = obj
        self._findings = findings

    def error(self, path: PathKey, message: str) -> None:
        self._findings.errors.append(self._issue(path, message))

    def warn(self, path: PathKey, message: str) -> None:
        self._findings.warnings.append(self._issue(path, message))

    def _issue(self, path: PathKey, message: str) -> Issue:
        src = self._obj.source
        return Issue(
            message,
            file=src.file if src else None,
            line=src.line_of(path) if src else None,
            obj=self._obj.ref,
            path=format_path(path),
        )


# --- shared checks ----------------------------------------------------------------------------


def _q(text: str) -> str:
    """A string as YAML would show it, double-quoted (as the loader's messages do)."""
    return json.dumps(text, ensure_ascii=False)


def _duration(report: _Report, path: PathKey, seconds: float | None) -> None:
    """istiod ``ValidateDuration``: at least 1ms, whole milliseconds."""
    if seconds is None:
        return
    if seconds < 0.001:
        report.error(path, f"must be at least 1ms (got {format_duration(seconds)}); use e.g. 1ms, 500ms or 2s")
    elif round(seconds * 1e9) % 1_000_000 != 0:
        report.error(path, f"only millisecond precision is supported (got {format_duration(seconds)}); "
                     "round it to whole milliseconds")


def _percent(report: _Report, path: PathKey, percent: Percent | None) -> None:
    if percent is not None and not 0 <= percent.value <= 100:
        report.error((*path, "value"), f"must be between 0 and 100 (got {percent.value:g}); it is a percentage")


def _non_negative(report: _Report, path: PathKey, value: int | None) -> None:
    if value is not None and value < 0:
        report.error(path, f"must not be negative (got {value}); use 0 for the default")


def _port(report: _Report, path: PathKey, port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        report.error(path, f"must be a port between 1 and 65535 (got {port})")


def _http_status(report: _Report, path: PathKey, status: int) -> None:
    if not 200 <= status < 600:
        report.error(path, f"must be an HTTP status in [200, 600) (got {status})")


def _destination(report: _Report, path: PathKey, dest: Destination | None) -> None:
    if dest is None:
        return
    if not dest.host or dest.host == "*":
        report.error((*path, "host"), f"must name a service (got {_q(dest.host)}); e.g. reviews")
    elif not _is_host(dest.host, wildcard=True):
        report.error((*path, "host"), _bad_host(dest.host))
    if dest.subset is not None and not _DNS1123_LABEL.fullmatch(dest.subset):
        report.error((*path, "subset"), f"must be a DNS-1123 label (got {_q(dest.subset)}); "
                     "use lower case letters, digits and '-'")
    if dest.port is not None:
        _port(report, (*path, "port", "number"), dest.port.number)


def _export_to(report: _Report, export_to: tuple[str, ...], namespace: str, *, service_entry: bool = False,
               workload_selector: bool = False) -> None:
    """``validateExportTo``: no duplicates (``.`` counts as the object's namespace), each entry ``.``, ``*``
    or a DNS-1123 label (``~`` for a ServiceEntry alone), ``*`` and ``~`` alone; a DestinationRule with a
    workload selector exported to its own namespace only."""
    seen: set[str] = set()
    for i, entry in enumerate(export_to):
        key = namespace if entry == "." else entry
        at: PathKey = ("spec", "exportTo", i)
        if key in seen:
            report.error(at, f"duplicate entries in exportTo: . and current namespace {namespace}" if key != entry
                         else f"duplicate entries in exportTo for entry {_q(entry)}")
        elif entry == "~" and not service_entry:
            report.error(at, "exportTo ~ (none) is not allowed for Istio configuration objects")
        elif entry not in (".", "*", "~") and not _DNS1123_LABEL.fullmatch(entry):
            report.error(at, f"only ., *, or a valid DNS 1123 label is allowed as exportTo entry (got {_q(entry)})")
        else:
            seen.add(key)
    if workload_selector and seen:
        if namespace not in seen:
            report.error(("spec", "exportTo"), "destination rule with workload selector cannot have exportTo beyond "
                         "current namespace")
        elif len(seen) > 1:
            report.error(("spec", "exportTo"), "destination rule with workload selector cannot have multiple entries "
                         "in exportTo")
    if "*" in seen and len(export_to) > 1:
        report.error(("spec", "exportTo"), "cannot have both public (*) and non-public exportTo values for a resource")
    if "~" in seen and len(export_to) > 1:
        report.error(("spec", "exportTo"), "cannot export service entry to no one (~) and someone")


# --- VirtualService ---------------------------------------------------------------------------


def _virtual_service(vs: VirtualService, report: _Report) -> None:
    spec = vs.spec
    applies_to_mesh = not spec.gateways or "mesh" in spec.gateways
    seen_hosts: set[str] = set()
    for i, host in enumerate(spec.hosts):
        if host == "*" and applies_to_mesh:
            report.error(("spec", "hosts", i), "wildcard host * is not allowed for the mesh (got \"*\"); "
                         "name the service, e.g. reviews")
        elif not _is_host(host, wildcard=True):
            report.error(("spec", "hosts", i), _bad_host(host))
        elif host in seen_hosts:
            report.error(("spec", "hosts", i), f"duplicate host (got {_q(host)} twice); list each host once")
        seen_hosts.add(host)
    if not spec.http and not spec.tcp and not spec.tls:
        report.error(("spec",), "http, tcp or tls must be provided; add an http route")
    for i, route in enumerate(spec.http):
        _http_route(report, ("spec", "http", i), route)
    _export_to(report, spec.export_to, vs.metadata.namespace)


def _http_route(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    _route_actions(report, path, route)
    for i, match in enumerate(route.match):
        at = (*path, "match", i)
        for name, string_match in (("uri", match.uri), ("scheme", match.scheme), ("method", match.method),
                                   ("authority", match.authority)):
            _regex(report, (*at, name), string_match)
        for field_name, by_name in (("headers", match.headers), ("queryParams", match.query_params)):
            for key, string_match in by_name.items():
                _regex(report, (*at, field_name, key), string_match)
        _port(report, (*path, "match", i, "port"), match.port)
        ns = match.source_namespace
        if ns is not None and not _DNS1123_LABEL.fullmatch(ns):
            report.error((*path, "match", i, "sourceNamespace"), f"must be a namespace name (got {_q(ns)})")
    _route_destinations(report, path, route)
    _fault(report, (*path, "fault"), route.fault)
    _mirrors(report, path, route)
    _redirect(report, path, route)
    if route.direct_response is not None:
        _direct_response(report, (*path, "directResponse"), route.direct_response)
    _retries(report, path, route)
    _rewrite(report, path, route)
    _header_operations(report, path, route)
    _duration(report, (*path, "timeout"), route.timeout)
    if route.cors_policy is not None:
        _duration(report, (*path, "corsPolicy", "maxAge"), route.cors_policy.max_age)
        for i, origin in enumerate(route.cors_policy.allow_origins):
            if not (origin.exact or origin.prefix or origin.regex):
                report.error((*path, "corsPolicy", "allowOrigins", i), "must set exact, prefix or regex "
                             "(got an empty match); e.g. {exact: https://example.com}")


def _route_actions(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    """istiod ``validateHTTPRouteConflict``: one action per rule (route, redirect, directResponse, delegate)."""
    if route.delegate is not None:
        for name in [n for n, v in (("redirect", route.redirect), ("route", route.route)) if v]:
            report.error((*path, name), f"not allowed with delegate (got both); keep delegate or {name}")
        return
    actions = [name for name, value in (("route", route.route), ("redirect", route.redirect),
                                        ("directResponse", route.direct_response)) if value]
    if not actions:
        report.error(path, "needs route, redirect, directResponse or delegate (got none); "
                     "add a route with a destination")
    elif len(actions) > 1:
        report.error((*path, actions[1]), f"cannot be combined with {actions[0]} (got both); keep one")
    terminal = next((a for a in actions if a != "route"), None)
    if terminal is not None:
        for name in [n for n, v in (("fault", route.fault), ("rewrite", route.rewrite)) if v is not None]:
            report.error((*path, name), f"cannot be combined with {terminal} (got both); remove {name}")
    if route.mirror is not None and route.mirrors:
        report.error((*path, "mirrors"), "cannot be combined with mirror (got both); move mirror into mirrors")


def _regex(report: _Report, path: PathKey, match: StringMatch | None) -> None:
    """istiod ``validateStringMatchRegexp`` (not applied to ``withoutHeaders``, where ``regex: "*"`` means absent)."""
    if match is None or match.regex is None:
        return
    regex = match.regex
    if not regex:
        report.error((*path, "regex"), "must not be empty (got \"\"); for any value use regex: \".*\" or {}")
    elif len(regex) > _MAX_REGEX:
        report.error((*path, "regex"), f"is too long (got {len(regex)} characters, at most {_MAX_REGEX}); simplify it")
    else:
        try:
            re2.compile(regex, options=_RE2_OPTIONS)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            report.error((*path, "regex"), f"not a valid RE2 regex: {reason} (got {_q(regex)}); Istio and Envoy use "
                         "RE2 syntax (no lookaround, no backreferences): https://github.com/google/re2/wiki/Syntax")


def _bad_host(host: str) -> str:
    return (f"not a valid host (got {_q(host)}); name a service (reviews) or a DNS name (reviews.default.svc.cluster.local), "
            "without scheme, port or path")


def _route_destinations(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    total = 0
    for i, dest in enumerate(route.route):
        _destination(report, (*path, "route", i, "destination"), dest.destination)
        if dest.weight < 0:
            report.error((*path, "route", i, "weight"), f"must not be negative (got {dest.weight}); "
                         "weights are relative, e.g. 90 and 10")
        total += dest.weight
    if len(route.route) > 1 and total <= 0:
        report.error((*path, "route"), f"the weights of several destinations must sum to more than 0 (got {total}); "
                     "give at least one destination a positive weight")
    elif len(route.route) > 1 and total != 100 and _LOOKS_LIKE_PERCENT[0] <= total <= _LOOKS_LIKE_PERCENT[1]:
        shares = ", ".join(f"{d.weight / total:.1%}" for d in route.route)
        report.warn((*path, "route"), f"the weights add up to {total}, not 100: istiod takes them as relative, so the "
                    f"destinations get {shares}; make them add up to 100 if you meant percentages")


def _fault(report: _Report, path: PathKey, fault: HTTPFaultInjection | None) -> None:
    if fault is None:
        return
    if fault.abort is None and fault.delay is None:
        report.error(path, "needs an abort and/or a delay (got neither); add abort or delay")
    if (abort := fault.abort) is not None:
        _percent(report, (*path, "abort", "percentage"), abort.percentage)
        if abort.http_status is not None:
            _http_status(report, (*path, "abort", "httpStatus"), abort.http_status)
        elif abort.grpc_status is not None:
            if abort.grpc_status not in GRPC_STATUSES:
                report.error((*path, "abort", "grpcStatus"), f"unknown gRPC status (got {_q(abort.grpc_status)}); "
                             "use a name such as UNAVAILABLE or NOT_FOUND")
        elif abort.http2_error is not None:
            report.error((*path, "abort", "http2Error"), "HTTP/2 abort fault injection is not supported by Istio; "
                         "use httpStatus or grpcStatus")
        else:
            report.warn((*path, "abort"), "abort configured, but no error type is set; add httpStatus or grpcStatus")
    if (delay := fault.delay) is not None:
        _percent(report, (*path, "delay", "percentage"), delay.percentage)
        _duration(report, (*path, "delay", "fixedDelay"), delay.fixed_delay)
        if delay.exponential_delay is not None:
            report.error((*path, "delay", "exponentialDelay"), "not supported by Istio; use fixedDelay")


def _mirrors(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    _destination(report, (*path, "mirror"), route.mirror)
    _percent(report, (*path, "mirrorPercentage"), route.mirror_percentage)
    if route.mirror_percent is not None:
        if route.mirror_percent > 100:
            report.error((*path, "mirrorPercent"), f"must be at most 100 (got {route.mirror_percent})")
        report.warn((*path, "mirrorPercent"), "deprecated; use mirrorPercentage: {value: N}")
    for i, mirror in enumerate(route.mirrors):
        _destination(report, (*path, "mirrors", i, "destination"), mirror.destination)
        _percent(report, (*path, "mirrors", i, "percentage"), mirror.percentage)


def _redirect(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    redirect = route.redirect
    if redirect is None:
        return
    path = (*path, "redirect")
    if not (redirect.uri or redirect.authority or redirect.scheme or redirect.port is not None
            or redirect.derive_port is not None):
        report.error(path, "must set uri, authority, scheme or port (got none)")
    if redirect.redirect_code is not None and redirect.redirect_code != 0 and not 300 <= redirect.redirect_code <= 399:
        report.error((*path, "redirectCode"), f"must be a 3xx code (got {redirect.redirect_code}); e.g. 301 or 302")
    if redirect.scheme and redirect.scheme not in ("http", "https"):
        report.error((*path, "scheme"), f'must be "http" or "https" (got {_q(redirect.scheme)})')
    if redirect.port:
        _port(report, (*path, "port"), redirect.port)


def _direct_response(report: _Report, path: PathKey, response: HTTPDirectResponse) -> None:
    _http_status(report, (*path, "status"), response.status)
    body = response.body
    size = len((body.string or body.bytes or "").encode()) if body else 0
    if size > _DIRECT_RESPONSE_MAX_BYTES:
        report.error((*path, "body"), f"must be less than 1MB (got {size} bytes); shorten the body")
    elif size > _DIRECT_RESPONSE_WARN_BYTES:
        report.warn((*path, "body"), f"large direct responses may slow the control plane (got {size} bytes)")


def _retries(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    retries = route.retries
    if retries is None:
        return
    path = (*path, "retries")
    attempts = retries.attempts or 0
    if attempts < 0:
        report.error((*path, "attempts"), f"must not be negative (got {attempts}); use 0 to disable retries")
    if attempts == 0 and (retries.per_try_timeout is not None or retries.retry_on
                          or retries.retry_remote_localities is not None):
        report.error((*path, "attempts"), "retry policy configured while attempts is 0, which disables retries "
                     f"(got {attempts}); set attempts > 0 or remove the other retry fields")
    _duration(report, (*path, "perTryTimeout"), retries.per_try_timeout)
    _duration(report, (*path, "backoff"), retries.backoff)
    for token in retries.retry_on.split(",") if retries.retry_on else ():
        if token not in RETRY_ON and not is_http_status(token):
            report.error((*path, "retryOn"), f"not a valid retryOn policy (got {_q(token)}); "
                         "use e.g. 5xx,gateway-error,connect-failure or a status code such as 503")


def _rewrite(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    rewrite = route.rewrite
    if rewrite is None:
        return
    path = (*path, "rewrite")
    if rewrite.uri and rewrite.uri_regex_rewrite is not None:
        report.error(path, "set only one of uri and uriRegexRewrite (got both)")
    if not rewrite.uri and rewrite.uri_regex_rewrite is None and not rewrite.authority:
        report.error(path, "must set uri, uriRegexRewrite or authority (got none)")
    regex = rewrite.uri_regex_rewrite
    if regex is not None and not (regex.match and regex.rewrite):
        report.error((*path, "uriRegexRewrite"), "needs both match and rewrite (got one); set both")


def _header_operations(report: _Report, path: PathKey, route: HTTPRoute) -> None:
    """istiod ``validateHTTPRoute``'s header rules for a rule's own ``headers`` (not its destinations'):
    no ``:``-prefixed name but the authority in request set/add, no Host or ``:``-prefixed name in the
    other lists, and the authority set in one place only (``validateAuthorityRewrite``)."""
    headers = route.headers
    if headers is None:
        return
    request, response = headers.request, headers.response
    authority: list[PathKey] = [("rewrite", "authority")] if route.rewrite is not None and route.rewrite.authority else []
    for op in ("set", "add"):
        for name in getattr(request, op) if request is not None else {}:
            at = (*path, "headers", "request", op, name)
            if _is_authority(name):
                authority.append(("headers", "request", op, name))
            elif not name or name.startswith(":"):
                report.error(at, _header_name_problem(name))
    lists: list[tuple[str, str, Iterable[str]]] = [("request", "remove", request.remove if request else ())]
    if response is not None:
        lists += [("response", "set", response.set), ("response", "add", response.add), ("response", "remove", response.remove)]
    for direction, op, names in lists:
        for i, name in enumerate(names):
            if not name or name.startswith(":") or name.lower() == "host":
                key: str | int = i if op == "remove" else name
                report.error((*path, "headers", direction, op, key), _header_name_problem(name))
    if len(authority) > 1:
        places = " and ".join(".".join(str(p) for p in place) for place in authority)
        report.error((*path, *authority[-1]), f"the authority is set in more than one place ({places}); istiod "
                                              "refuses that: keep one")


def _is_authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def _header_name_problem(name: str) -> str:
    if not name:
        return "header name cannot be empty"
    if name.lower() == "host":
        return 'the Host header cannot be changed here; to set the authority use rewrite.authority or headers.request.set ":authority"'
    return f'header name cannot start with ":" (got {_q(name)}): pseudo-headers are Envoy\'s own; remove it'


# --- DestinationRule --------------------------------------------------------------------------


def _destination_rule(dr: DestinationRule, report: _Report) -> None:
    spec = dr.spec
    if not spec.host:
        report.error(("spec", "host"), "must name a service (got \"\"); e.g. reviews")
    elif not _is_host(spec.host, wildcard=True):
        report.error(("spec", "host"), _bad_host(spec.host))
    _traffic_policy(report, ("spec", "trafficPolicy"), spec.traffic_policy)
    names: set[str] = set()
    for i, subset in enumerate(spec.subsets):
        path = ("spec", "subsets", i)
        if subset.name in names:
            report.error((*path, "name"), f"duplicate subset name (got {_q(subset.name)} twice); "
                         "give each subset its own name")
        names.add(subset.name)
        if not _DNS1123_LABEL.fullmatch(subset.name):
            report.error((*path, "name"), f"must be a DNS-1123 label (got {_q(subset.name)}); "
                         "use lower case letters, digits and '-'")
        _traffic_policy(report, (*path, "trafficPolicy"), subset.traffic_policy)
    _export_to(report, spec.export_to, dr.metadata.namespace, workload_selector=spec.workload_selector is not None)
    if spec.workload_selector is not None and not spec.workload_selector.match_labels:
        report.warn(("spec", "workloadSelector"), "workload selector without labels selects every workload")


def _traffic_policy(report: _Report, path: PathKey, policy: TrafficPolicy | None) -> None:
    if policy is None:
        return
    if not any((policy.outlier_detection, policy.connection_pool, policy.load_balancer, policy.tls,
                policy.port_level_settings, policy.tunnel, policy.proxy_protocol, policy.retry_budget)):
        report.error(path, "must set at least one field (got an empty policy); remove it or add a setting")
    if policy.tunnel is not None and policy.proxy_protocol is not None:
        report.error((*path, "tunnel"), "cannot be combined with proxyProtocol (got both); keep one")
    _outlier(report, (*path, "outlierDetection"), policy.outlier_detection)
    _connection_pool(report, (*path, "connectionPool"), policy.connection_pool)
    _load_balancer(report, (*path, "loadBalancer"), policy.load_balancer)
    if policy.tls is not None:
        report.warn((*path, "tls"), _NOT_EXERCISED)
    for i, pls in enumerate(policy.port_level_settings):
        pls_path = (*path, "portLevelSettings", i)
        if pls.port is None:
            report.error(pls_path, "needs port (got none); add port: {number: 9080}")
        else:
            _port(report, (*pls_path, "port", "number"), pls.port.number)
        if not any((pls.outlier_detection, pls.connection_pool, pls.load_balancer, pls.tls)):
            report.error(pls_path, "must set at least one policy field (got only a port)")
        _outlier(report, (*pls_path, "outlierDetection"), pls.outlier_detection)
        _connection_pool(report, (*pls_path, "connectionPool"), pls.connection_pool)
        _load_balancer(report, (*pls_path, "loadBalancer"), pls.load_balancer)
        if pls.tls is not None:
            report.warn((*pls_path, "tls"), _NOT_EXERCISED)


def _outlier(report: _Report, path: PathKey, outlier: OutlierDetection | None) -> None:
    if outlier is None:
        return
    if outlier.consecutive_errors:
        report.warn((*path, "consecutiveErrors"), "deprecated and ignored by istiod; "
                    "use consecutive5xxErrors or consecutiveGatewayErrors")
    if not outlier.split_external_local_origin_errors and (outlier.consecutive_local_origin_failures or 0) > 0:
        report.error((*path, "consecutiveLocalOriginFailures"), "only applies with splitExternalLocalOriginErrors: "
                     "true (got false); set splitExternalLocalOriginErrors: true")
    _duration(report, (*path, "interval"), outlier.interval)
    _duration(report, (*path, "baseEjectionTime"), outlier.base_ejection_time)
    for name, value in (("maxEjectionPercent", outlier.max_ejection_percent),
                        ("minHealthPercent", outlier.min_health_percent)):
        if value is not None and not 0 <= value <= 100:
            report.error((*path, name), f"must be between 0 and 100 (got {value}); it is a percentage")


def _connection_pool(report: _Report, path: PathKey, pool: ConnectionPoolSettings | None) -> None:
    if pool is None:
        return
    if pool.http is None and pool.tcp is None:
        report.error(path, "must set tcp or http (got neither)")
    if (http := pool.http) is not None:
        for name, value in (("http1MaxPendingRequests", http.http1_max_pending_requests),
                            ("http2MaxRequests", http.http2_max_requests),
                            ("maxRequestsPerConnection", http.max_requests_per_connection),
                            ("maxRetries", http.max_retries),
                            ("maxConcurrentStreams", http.max_concurrent_streams)):
            _non_negative(report, (*path, "http", name), value)
        _duration(report, (*path, "http", "idleTimeout"), http.idle_timeout)
        if http.h2_upgrade_policy == "UPGRADE" and http.use_client_protocol:
            report.error((*path, "http", "useClientProtocol"), "must not be true when h2UpgradePolicy is UPGRADE "
                         "(got true); keep one of them")
    if (tcp := pool.tcp) is not None:
        _non_negative(report, (*path, "tcp", "maxConnections"), tcp.max_connections)
        _duration(report, (*path, "tcp", "connectTimeout"), tcp.connect_timeout)
        _duration(report, (*path, "tcp", "maxConnectionDuration"), tcp.max_connection_duration)
        if tcp.idle_timeout:  # 0s disables the idle timeout and is allowed
            _duration(report, (*path, "tcp", "idleTimeout"), tcp.idle_timeout)
        if tcp.tcp_keepalive is not None:
            _duration(report, (*path, "tcp", "tcpKeepalive", "time"), tcp.tcp_keepalive.time)
            _duration(report, (*path, "tcp", "tcpKeepalive", "interval"), tcp.tcp_keepalive.interval)


def _load_balancer(report: _Report, path: PathKey, lb: LoadBalancerSettings | None) -> None:
    if lb is None:
        return
    if (ch := lb.consistent_hash) is not None:
        ch_path = (*path, "consistentHash")
        if ch.minimum_ring_size:
            report.warn((*ch_path, "minimumRingSize"), "deprecated; use ringHash: {minimumRingSize: N}")
            if ch.ring_hash is not None or ch.maglev is not None:
                report.error((*ch_path, "minimumRingSize"), "cannot be combined with ringHash or maglev "
                             "(got both); keep one")
        if ch.maglev is not None:
            size = ch.maglev.table_size or 0
            if size == 0 or size >= _MAGLEV_MAX_TABLE or not _is_prime(size):
                report.error((*ch_path, "maglev", "tableSize"), f"must be a prime below {_MAGLEV_MAX_TABLE} "
                             f"(got {size}); e.g. 65537")
    _duration(report, (*path, "warmupDurationSecs"), lb.warmup_duration_secs)
    if (warm := lb.warmup) is not None:
        _duration(report, (*path, "warmup", "duration"), warm.duration)
        if warm.minimum_percent is not None and warm.minimum_percent > 100:
            report.error((*path, "warmup", "minimumPercent"), f"must be at most 100 (got {warm.minimum_percent:g})")
        if warm.aggression is not None and warm.aggression < 1:
            report.error((*path, "warmup", "aggression"), f"must be at least 1 (got {warm.aggression:g})")


def _is_prime(n: int) -> bool:
    """Envoy's primality test for maglev table sizes (odd trial division up to sqrt)."""
    if 0 < n < 4:
        return True
    if n % 2 == 0:
        return False
    return all(n % f for f in range(3, int(n**0.5) + 1, 2))


# --- Gateway ----------------------------------------------------------------------------------


def _gateway(gw: Gateway, report: _Report) -> None:
    """``ValidateGateway``: servers, their hosts (``[namespace/]host``), ports, protocols and TLS."""
    if not gw.spec.servers:
        report.error(("spec", "servers"), "a gateway must have at least one server; add one with port and hosts")
    seen_names: set[str] = set()
    for i, server in enumerate(gw.spec.servers):
        path: PathKey = ("spec", "servers", i)
        _server(report, path, server)
        if server.name:
            if server.name in seen_names:
                report.error((*path, "name"), f"server names must be unique (got {_q(server.name)} twice)")
            seen_names.add(server.name)


def _server(report: _Report, path: PathKey, server: Server) -> None:
    if not server.hosts:
        report.error((*path, "hosts"), "a server must expose at least one host; e.g. \"*\" or bookinfo.example.com")
    for i, host in enumerate(server.hosts):
        namespace, _, name = host.rpartition("/")
        if host.count("/") > 1 or (namespace and namespace not in ("*", ".", "~")
                                    and not _DNS1123_LABEL.fullmatch(namespace)):
            report.error((*path, "hosts", i), f"expected [namespace/]host (got {_q(host)}); "
                         "the namespace is *, . or a namespace name")
        elif not _is_host(name, wildcard=True):
            report.error((*path, "hosts", i), f"not a valid host name (got {_q(name)}); "
                         "use a DNS name, *.suffix or *")
    port = server.port
    _port(report, (*path, "port", "number"), port.number)
    protocol = port.protocol.upper()
    if protocol not in PROTOCOLS:
        report.error((*path, "port", "protocol"), f"unsupported protocol (got {_q(port.protocol)}); "
                     f"use one of {', '.join(sorted(PROTOCOLS))}")
    tls = server.tls
    if protocol in _TLS_PROTOCOLS and tls is None:
        report.error((*path, "tls"), f"a server on protocol {protocol} needs TLS settings; add tls.mode")
    if tls is not None and protocol not in _TLS_PROTOCOLS and tls.mode not in (None, "ISTIO_MUTUAL") \
            and not tls.https_redirect:
        report.error((*path, "tls"), f"a plain-text server (protocol {protocol}) cannot have TLS settings; "
                     "remove tls or use protocol HTTPS")


def _is_host(host: str, *, wildcard: bool) -> bool:
    """istiod ``ValidateWildcardDomain``/``ValidateFQDN``: dot-separated DNS labels, an optional leading ``*``."""
    if wildcard and host == "*":
        return True
    labels = host.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    return 0 < len(host) <= 255 and bool(labels) and all(_DNS_LABEL.fullmatch(label) for label in labels)


# --- ServiceEntry -----------------------------------------------------------------------------


def _service_entry(se: ServiceEntry, report: _Report) -> None:
    """``ValidateServiceEntry``: hosts, unique ports, and endpoints that fit the resolution."""
    spec = se.spec
    if not spec.hosts:
        report.error(("spec", "hosts"), "a service entry must have at least one host; e.g. api.example.com")
    for i, host in enumerate(spec.hosts):
        if host == "*" or not _is_host(host, wildcard=True):
            report.error(("spec", "hosts", i), f"not a valid host (got {_q(host)}); use a DNS name such as "
                         "api.example.com (a wildcard *.example.com is allowed, * alone is not)")
    for i, address in enumerate(spec.addresses):
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            report.error(("spec", "addresses", i), f"not an IP address or CIDR block (got {_q(address)})")
    if not spec.ports:
        report.error(("spec", "ports"), "a service entry must have at least one port; add {number, name, protocol}")
    numbers: set[int] = set()
    port_names: set[str] = set()
    for i, port in enumerate(spec.ports):
        path: PathKey = ("spec", "ports", i)
        _port(report, (*path, "number"), port.number)
        _port(report, (*path, "targetPort"), port.target_port)
        if port.number in numbers:
            report.error((*path, "number"), f"port number must be unique (got {port.number} twice)")
        if port.name in port_names:
            report.error((*path, "name"), f"port name must be unique (got {_q(port.name)} twice)")
        numbers.add(port.number)
        port_names.add(port.name)
        if port.protocol is not None and port.protocol.upper() not in PROTOCOLS:
            report.error((*path, "protocol"), f"unsupported protocol (got {_q(port.protocol)}); "
                         f"use one of {', '.join(sorted(PROTOCOLS))}")
    if spec.workload_selector is not None and spec.endpoints:
        report.error(("spec", "workloadSelector"), "only one of workloadSelector or endpoints may be set; keep one")
    resolution = spec.resolution or "NONE"
    if resolution == "STATIC" and not spec.endpoints and spec.workload_selector is None:
        report.error(("spec", "endpoints"), "resolution STATIC needs endpoints; add one with an IP address")
    if resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints) > 1:
        report.error(("spec", "endpoints"), f"resolution DNS_ROUND_ROBIN takes at most one endpoint "
                     f"(got {len(spec.endpoints)}); use DNS for several")
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not spec.endpoints:
        for i, host in enumerate(spec.hosts):
            if host.startswith("*"):
                report.error(("spec", "hosts", i), f"resolution {resolution} without endpoints resolves the host "
                             f"itself, which cannot be a wildcard (got {_q(host)})")
    for i, endpoint in enumerate(spec.endpoints):
        path = ("spec", "endpoints", i)
        address = endpoint.address or ""
        if resolution in ("NONE", "STATIC") and not _is_ip(address) and not address.startswith("unix://"):
            report.error((*path, "address"), f"resolution {resolution} needs an IP address (got {_q(address)}); "
                         "use resolution DNS for a host name")
        elif resolution in ("DNS", "DNS_ROUND_ROBIN") and not (_is_ip(address) or _is_host(address, wildcard=False)):
            report.error((*path, "address"), f"not an IP address or host name (got {_q(address)})")
        for name in endpoint.ports:
            if name not in port_names:
                report.error((*path, "ports", name), f"names no port of this service entry (ports: "
                             f"{', '.join(sorted(port_names)) or 'none'}); use one of its port names")
    _export_to(report, spec.export_to, se.metadata.namespace, service_entry=True)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
