"""Istio ``Headers`` (request/response set, add, remove) -> Envoy header mutations.

Follows ``route.go:TranslateHeadersOperations`` (reference istio-semantics.md section 2.5):

- ``set`` -> ``OVERWRITE_IF_EXISTS_OR_ADD``, ``add`` -> ``APPEND_IF_EXISTS_OR_ADD``; each map sorted by
  key on its own, the ``set`` entries before the ``add`` entries.
- Pseudo-headers (``:...``) and ``host`` are dropped from every list, since Envoy cannot mutate them;
  but a request ``:authority``/``host`` in ``set`` or ``add`` becomes the authority to rewrite to
  (``host_rewrite_literal``), ``set`` winning over ``add``. Response authority is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.istio.model import HeaderOperations, Headers
from harness.mesh.local.translate.inputs import Resource

OVERWRITE = "OVERWRITE_IF_EXISTS_OR_ADD"
APPEND = "APPEND_IF_EXISTS_OR_ADD"


@dataclass(frozen=True)
class HeaderMutations:
    """The four Envoy lists of one Istio ``Headers`` block, plus the request authority it sets ("" for none)."""

    request_headers_to_add: tuple[Resource, ...] = ()
    request_headers_to_remove: tuple[str, ...] = ()
    response_headers_to_add: tuple[Resource, ...] = ()
    response_headers_to_remove: tuple[str, ...] = ()
    authority: str = ""

    def fields(self) -> dict[str, list[Resource] | list[str]]:
        """The non-empty lists by their Envoy field name (the same on a Route and a ClusterWeight)."""
        lists: dict[str, list[Resource] | list[str]] = {
            "request_headers_to_add": list(self.request_headers_to_add),
            "request_headers_to_remove": list(self.request_headers_to_remove),
            "response_headers_to_add": list(self.response_headers_to_add),
            "response_headers_to_remove": list(self.response_headers_to_remove),
        }
        return {name: value for name, value in lists.items() if value}


NO_MUTATIONS = HeaderMutations()


def translate_headers(headers: Headers | None) -> HeaderMutations:
    """``TranslateHeadersOperations`` for a rule's or a destination's ``headers`` (None: nothing to do)."""
    if headers is None:
        return NO_MUTATIONS
    request = headers.request or HeaderOperations()
    response = headers.response or HeaderOperations()
    set_authority = _authority(request.set)
    return HeaderMutations(
        request_headers_to_add=_to_add(request.set, OVERWRITE) + _to_add(request.add, APPEND),
        request_headers_to_remove=_mutable(request.remove),
        response_headers_to_add=_to_add(response.set, OVERWRITE) + _to_add(response.add, APPEND),
        response_headers_to_remove=_mutable(response.remove),
        authority=set_authority or _authority(request.add),
    )


def is_internal(name: str) -> bool:
    """``isInternalHeader``: pseudo-headers and ``host``, which Envoy will not mutate through these lists."""
    return name.startswith(":") or name.lower() == "host"


def _to_add(headers: Mapping[str, str], action: str) -> tuple[Resource, ...]:
    return tuple(
        {"header": {"key": key, "value": headers[key]}, "append_action": action}
        for key in sorted(headers)
        if not is_internal(key)
    )


def _mutable(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if not is_internal(n))


def _authority(headers: Mapping[str, str]) -> str:
    """The value of ``:authority`` or ``host`` (any case); with several, the last one wins (validation rejects that)."""
    found = ""
    for key, value in headers.items():
        if key.lower() in (":authority", "host"):
            found = value
    return found
