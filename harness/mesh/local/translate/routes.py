"""One VirtualService rule (or a host without any) -> Envoy routes, as ``route.go`` builds them.

Reference istio-semantics.md sections 2.2-2.8 and 2.12:

- A rule with N match blocks gives N routes with the same action; a rule without ``match`` gives
  one ``prefix: /`` route. Once a catch-all route is emitted, every later rule is dropped.
- Match blocks that do not apply to this sidecar or port are not emitted at all.
- One destination -> ``cluster`` (its weight ignored); several -> ``weighted_clusters`` in VS
  order without the weight-0 ones and without ``total_weight`` (weights are relative).
- ``timeout`` and the deprecated ``max_grpc_timeout`` are the VS timeout, or ``0s`` (disabled).
- Without ``retries`` the route gets istiod's default retry policy.
- A host without a VirtualService gets one route named ``default`` to ``outbound|P||fqdn``.

Every route also carries the config-version response header, which is the only part of the
output that changes with the config version besides the xDS version itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.istio.model import Destination, HTTPMatchRequest, HTTPRoute, VirtualService
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.matches import (
    applies_to_proxy,
    is_catch_all,
    translate_match,
)
from harness.mesh.local.translate.versions import Behaviour
from harness.sample_apps.echo.fields import CONFIG_VERSION_HEADER
from harness.topology import Client

NO_TIMEOUT = "0s"
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


@dataclass(frozen=True)
class RouteContext:
    """What every route on one listener of one sidecar shares."""

    client: Client
    listener_port: int
    behaviour: Behaviour
    config_version: int

    def version_header(self) -> list[Resource]:
        """``response_headers_to_add`` entry stamping the config version on every response."""
        header = {"key": CONFIG_VERSION_HEADER, "value": str(self.config_version)}
        return [{"header": header, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]


def envoy_duration(seconds: float) -> str:
    """Seconds as a protobuf JSON duration: 0.5 -> ``"0.5s"``, 2.0 -> ``"2s"`` (nanosecond precision)."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def default_retry_policy(behaviour: Behaviour) -> Resource:
    """istiod's retry policy for routes without ``retries`` (``retry.go``, reference section 2.8).

    503 is retried only up to Istio 1.23; gRPC UNAVAILABLE/CANCELLED are retried in every release.
    """
    policy: Resource = {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "retry_host_predicate": [
            {"name": names.RETRY_PREVIOUS_HOSTS, "typed_config": {"@type": names.TYPE_PREVIOUS_HOSTS}}
        ],
        "host_selection_retry_max_attempts": 5,
    }
    if behaviour.retry_on_503:
        policy["retriable_status_codes"] = [503]
    return policy


def default_route(fqdn: str, ctx: RouteContext) -> Resource:
    """``BuildDefaultHTTPOutboundRoute``: the only route of a host that no VirtualService claims."""
    return {
        "name": names.DEFAULT_ROUTE,
        "match": translate_match(None),
        "route": {
            "cluster": names.outbound_cluster(ctx.listener_port, None, fqdn),
            "timeout": NO_TIMEOUT,
            "max_grpc_timeout": NO_TIMEOUT,
            "retry_policy": default_retry_policy(ctx.behaviour),
        },
        "decorator": {"operation": names.route_operation(fqdn, ctx.listener_port, "/*")},
        "response_headers_to_add": ctx.version_header(),
    }


def translate_virtual_service(vs: VirtualService, ctx: RouteContext) -> list[Resource]:
    """``BuildHTTPRoutesForVirtualService`` for one sidecar and port; empty when no match block applies."""
    out: list[Resource] = []
    labels = dict(ctx.client.labels)
    for rule in vs.spec.http:
        blocks: Sequence[HTTPMatchRequest | None] = rule.match or (None,)
        catch_all = not rule.match  # a rule without match is a catch-all even if nothing was emitted
        for match in blocks:
            if not applies_to_proxy(match, ctx.listener_port, labels, ctx.client.namespace):
                continue
            route = _route(vs, rule, match, ctx)
            out.append(route)
            if is_catch_all(route["match"]):
                catch_all = True
                break
        if catch_all:
            break
    return out


def _route(vs: VirtualService, rule: HTTPRoute, match: HTTPMatchRequest | None, ctx: RouteContext) -> Resource:
    """``TranslateRoute`` for the fields the local mesh supports (``support.py`` refuses the rest)."""
    name = rule.name or ""
    if match is not None and match.name:
        name = f"{name}.{match.name}"
    out: Resource = {
        "match": translate_match(match),
        "metadata": {
            "filter_metadata": {
                "istio": {"config": names.config_path(vs.kind, vs.metadata.namespace, vs.metadata.name)}
            }
        },
    }
    if name:
        out["name"] = name
    if match is not None and match.stat_prefix:
        out["stat_prefix"] = match.stat_prefix
    timeout = envoy_duration(rule.timeout) if rule.timeout is not None else NO_TIMEOUT
    action: Resource = {"timeout": timeout, "max_grpc_timeout": timeout}
    if len(rule.route) == 1:
        action["cluster"] = _cluster(rule.route[0].destination, vs, ctx.listener_port)
    else:
        action["weighted_clusters"] = {
            "clusters": [
                {"name": _cluster(d.destination, vs, ctx.listener_port), "weight": d.weight}
                for d in rule.route
                if d.weight != 0
            ]
        }
    # ``retries`` is refused by support.py until it is translated; then retry.ConvertPolicy goes here.
    action["retry_policy"] = default_retry_policy(ctx.behaviour)
    out["route"] = action
    out["decorator"] = {"operation": _operation(out["match"], action.get("cluster"), vs.metadata.name, ctx)}
    out["response_headers_to_add"] = ctx.version_header()
    return out


def _cluster(dest: Destination, vs: VirtualService, listener_port: int) -> str:
    """``GetDestinationCluster``: host resolved in the VS namespace; port = ``destination.port``, else the
    listener port. (istiod's middle rule, "the service's only port", sees the service as restricted to
    the listener port on sidecars, so it yields the listener port too.)"""
    port = dest.port.number if dest.port is not None else listener_port
    return names.outbound_cluster(port, dest.subset, names.resolve_host(dest.host, vs.metadata.namespace))


def _operation(route_match: Resource, cluster: str | None, vs_name: str, ctx: RouteContext) -> str:
    """``GetRouteOperation``: ``<fqdn>:<port><path>`` for one cluster, ``<vs name>:<listener port><path>`` otherwise."""
    if "path" in route_match:
        path = str(route_match["path"])
    elif "safe_regex" in route_match:
        path = str(route_match["safe_regex"]["regex"])
    else:
        path = f"{route_match['prefix']}*"
    parsed = names.parse_outbound_cluster(cluster) if cluster else None
    if parsed is not None:
        port, _, fqdn = parsed
        return names.route_operation(fqdn, port, path)
    return names.route_operation(vs_name, ctx.listener_port, path)
