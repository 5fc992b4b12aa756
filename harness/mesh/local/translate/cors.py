"""Istio ``corsPolicy`` -> the per-route ``envoy.filters.http.cors`` config (``route.go:TranslateCORSPolicy``;
reference istio-semantics.md section 2.11).

- ``allowOrigins`` (StringMatch list) -> ``allow_origin_string_match``; if there are none, the
  deprecated ``allowOrigin`` strings as exact matches.
- ``allowMethods``, ``allowHeaders``, ``exposeHeaders`` -> comma-joined strings (left out when
  empty: istiod sets "", the proto default, which is the same config).
- ``maxAge`` -> whole seconds as a string (``24h`` -> ``"86400"``, fractions truncated).
- ``allowCredentials`` -> the BoolValue only when set.
- ``filter_enabled`` 100% always; ``forward_not_matching_preflights`` true unless
  ``unmatchedPreflights: IGNORE``.
"""

from __future__ import annotations

from harness.istio.model import CorsPolicy
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.matches import string_match
from harness.mesh.local.translate.units import per_hundred

FULL = 100


def translate_cors(policy: CorsPolicy) -> Resource:
    """The ``CorsPolicy`` (with its ``@type``) for ``typed_per_filter_config["envoy.filters.http.cors"]``."""
    out: Resource = {
        "@type": names.TYPE_CORS_POLICY,
        "forward_not_matching_preflights": policy.unmatched_preflights != "IGNORE",
        "filter_enabled": {"default_value": per_hundred(FULL)},
    }
    for field, values in (
        ("allow_methods", policy.allow_methods),
        ("allow_headers", policy.allow_headers),
        ("expose_headers", policy.expose_headers),
    ):
        if values:
            out[field] = ",".join(values)
    if policy.allow_origins:
        out["allow_origin_string_match"] = [string_match(m) for m in policy.allow_origins]
    elif policy.allow_origin:
        out["allow_origin_string_match"] = [{"exact": origin} for origin in policy.allow_origin]
    if policy.allow_credentials is not None:
        out["allow_credentials"] = policy.allow_credentials
    if policy.max_age is not None:
        out["max_age"] = str(int(policy.max_age))
    return out
