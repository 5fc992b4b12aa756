"""Istio ``HTTPMatchRequest`` -> Envoy ``RouteMatch``, and the per-proxy filters that have no Envoy field.

Follows ``route.go:TranslateRouteMatch`` (reference section 2.3). The subtle parts:

- ``headers`` and ``withoutHeaders`` matchers are sorted by name together; ``:method``,
  ``:authority`` and ``:scheme`` matchers come after them, unsorted, in that order.
- ``{}`` or ``regex: "*"`` becomes ``present_match`` (``*`` is not RE2; Istio PR #20629).
- ``withoutHeaders`` inverts the matcher and, unless it became a present match, treats a missing
  header as ""; so ``{regex: ".*"}`` matches nothing and ``{regex: "*"}`` means "header absent".
- ``case_sensitive`` is set on every route that has a match block, ``!ignoreUriCase``.
- ``port``, ``sourceLabels``, ``sourceNamespace`` and ``gateways`` are decided at generation time
  for the proxy being configured (``sourceMatchHTTP``), never at run time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from harness.istio.model import HTTPMatchRequest, StringMatch
from harness.istio.semantics import MESH_GATEWAY, resolve_gateway_name
from harness.mesh.local.translate.inputs import Resource

CATCH_ALL_REGEX = ".*"


def translate_match(match: HTTPMatchRequest | None) -> Resource:
    """The Envoy RouteMatch for one Istio match block (None: a rule without ``match``, prefix ``/``)."""
    out: Resource = {"prefix": "/"}
    if match is None:
        return out
    headers = [_header(name, sm) for name, sm in match.headers.items()]
    headers += [_without_header(name, sm) for name, sm in match.without_headers.items()]
    headers.sort(key=lambda h: str(h["name"]))
    for pseudo, sm in ((":method", match.method), (":authority", match.authority), (":scheme", match.scheme)):
        if sm is not None:
            headers.append(_header(pseudo, sm))
    if match.uri is not None:
        out = _path(match.uri)
    out["case_sensitive"] = not match.ignore_uri_case
    if headers:
        out["headers"] = headers
    if match.query_params:
        # istiod iterates a Go map here, so its order is random; ours is by name, for stable goldens.
        out["query_parameters"] = [_header(name, match.query_params[name]) for name in sorted(match.query_params)]
    return out


def is_catch_all(route_match: Resource) -> bool:
    """``IsCatchAllRoute``: prefix ``/`` or regex ``.*`` with no header or query matchers; later rules never match."""
    path_is_all = route_match.get("prefix") == "/" or route_match.get("safe_regex", {}).get("regex") == CATCH_ALL_REGEX
    return path_is_all and not route_match.get("headers") and not route_match.get("query_parameters")


def applies_to_proxy(
    match: HTTPMatchRequest | None,
    listener_port: int,
    labels: Mapping[str, str],
    namespace: str,
    gateways: Collection[str] = (MESH_GATEWAY,),
    vs_namespace: str = "",
) -> bool:
    """Whether a match block is emitted for this proxy on this port (``TranslateRoute`` + ``sourceMatchHTTP``).

    ``gateways``: the proxy's gateway names, resolved (``mesh`` for a sidecar, ``ns/name`` for a gateway);
    the match's own ``gateways`` are resolved in ``vs_namespace``.
    """
    if match is None:
        return True
    if match.port is not None and match.port != 0 and match.port != listener_port:
        return False
    if match.gateways:
        return any(resolve_gateway_name(g, vs_namespace) in gateways for g in match.gateways)
    if any(labels.get(k) != v for k, v in match.source_labels.items()):
        return False
    return not match.source_namespace or match.source_namespace == namespace


def _path(uri: StringMatch) -> Resource:
    if uri.exact is not None:
        return {"path": uri.exact}
    if uri.prefix is not None:
        return {"prefix": uri.prefix}
    if uri.regex is not None:
        return {"safe_regex": {"regex": uri.regex}}
    return {"prefix": "/"}


def _is_present_match(sm: StringMatch) -> bool:
    """``canBeConvertedToPresentMatch``: nothing set, or the non-RE2 ``regex: "*"``."""
    return (sm.exact is None and sm.prefix is None and sm.regex is None) or sm.regex == "*"


def string_match(sm: StringMatch) -> Resource:
    """``util.ConvertToEnvoyMatch`` (only called when ``sm`` is not a present match)."""
    if sm.exact is not None:
        return {"exact": sm.exact}
    if sm.prefix is not None:
        return {"prefix": sm.prefix}
    return {"safe_regex": {"regex": sm.regex}}


def _header(name: str, sm: StringMatch) -> Resource:
    """A HeaderMatcher or a QueryParameterMatcher: both are ``{name, present_match | string_match}``."""
    if _is_present_match(sm):
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": string_match(sm)}


def _without_header(name: str, sm: StringMatch) -> Resource:
    out = _header(name, sm)
    out["invert_match"] = True
    if not _is_present_match(sm):
        # treat_missing_header_as_empty conflicts with present_match, so istiod sets it only here.
        out["treat_missing_header_as_empty"] = True
    return out
