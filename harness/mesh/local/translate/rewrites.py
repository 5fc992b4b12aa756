"""Istio ``rewrite`` -> route-action path and host rewrites (``route.go:applyHTTPRouteDestination``;
reference istio-semantics.md section 2.6).

``uriRegexRewrite`` -> ``regex_rewrite`` (RE2, whole-path substitution); else ``uri`` ->
``prefix_rewrite`` (the matched prefix, or the whole path for an exact match, is replaced; the query
string is kept). ``authority`` is returned apart: it overrides an authority set through headers,
and the caller turns the winner into ``host_rewrite_literal``.
"""

from __future__ import annotations

from harness.istio.model import HTTPRewrite
from harness.mesh.local.translate.inputs import Resource


def translate_rewrite(rewrite: HTTPRewrite) -> Resource:
    """The RouteAction fields for the path part of ``rewrite`` (empty when it only sets ``authority``)."""
    regex = rewrite.uri_regex_rewrite
    if regex is not None:
        return {"regex_rewrite": {"pattern": {"regex": regex.match or ""}, "substitution": regex.rewrite or ""}}
    if rewrite.uri:
        return {"prefix_rewrite": rewrite.uri}
    return {}
