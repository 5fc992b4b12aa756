"""Istio ``redirect`` and ``directResponse`` -> a route answered by Envoy itself (``route.go:ApplyRedirect``,
``ApplyDirectResponse``; reference istio-semantics.md section 2.6).

- ``uri`` -> ``path_redirect`` (always set, "" keeps the path), or from 1.31 ``prefixRewrite`` ->
  ``prefix_rewrite`` instead; ``authority`` -> ``host_redirect``; ``scheme`` -> ``scheme_redirect``.
- ``port: N`` -> ``port_redirect``; ``derivePort: FROM_REQUEST_PORT`` -> the listener port (routes are
  built per listener port); ``FROM_PROTOCOL_DEFAULT`` -> none. The port is dropped when it is the
  scheme's default (80 for http, 443 for https; a sidecar is never TLS, so no scheme means http).
- ``redirectCode`` 0/301, 302, 303, 307, 308 -> the matching enum. Any other code (304, say, which
  validation lets through) gives istiod a route **without any action**, which Envoy rejects; the
  local mesh reproduces that, so such a case fails with Envoy's NACK as it would on real Istio.
- ``directResponse`` -> ``direct_response {status, body inline_string | inline_bytes}``.
"""

from __future__ import annotations

from harness.istio.model import HTTPDirectResponse, HTTPRedirect
from harness.mesh.local.translate.inputs import Resource

RESPONSE_CODES = {
    0: "MOVED_PERMANENTLY",
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}
DEFAULT_PORTS = {"http": 80, "https": 443}
SIDECAR_SCHEME = "http"
"""A sidecar listener never terminates TLS (``RouteOptions.IsTLS`` is false), so its implied scheme is http."""


def translate_redirect(redirect: HTTPRedirect, listener_port: int, *, prefix_rewrite: bool) -> Resource | None:
    """The route's ``redirect`` action, or None for a redirect code istiod does not map (no action at all).

    ``prefix_rewrite`` says whether this Istio release knows ``HTTPRedirect.prefixRewrite`` (1.31+).
    """
    code = RESPONSE_CODES.get(redirect.redirect_code or 0)
    if code is None:
        return None
    out: Resource = {"host_redirect": redirect.authority} if redirect.authority else {}
    if prefix_rewrite and redirect.prefix_rewrite:
        out["prefix_rewrite"] = redirect.prefix_rewrite
    else:
        out["path_redirect"] = redirect.uri or ""
    if redirect.scheme:
        out["scheme_redirect"] = redirect.scheme
    port = _port(redirect, listener_port)
    if port:
        out["port_redirect"] = port
    out["response_code"] = code
    return out


def translate_direct_response(response: HTTPDirectResponse) -> Resource:
    """The route's ``direct_response`` action; a ``bytes`` body stays base64, as proto JSON spells bytes."""
    out: Resource = {"status": response.status}
    body = response.body
    if body is not None and body.string is not None:
        out["body"] = {"inline_string": body.string}
    elif body is not None and body.bytes is not None:
        out["body"] = {"inline_bytes": body.bytes}
    return out


def _port(redirect: HTTPRedirect, listener_port: int) -> int:
    """``port_redirect``, 0 for none."""
    if redirect.port is not None:
        port = redirect.port
    elif redirect.derive_port == "FROM_REQUEST_PORT":
        port = listener_port
    else:
        return 0
    if DEFAULT_PORTS.get(redirect.scheme or SIDECAR_SCHEME) == port:
        return 0
    return port
