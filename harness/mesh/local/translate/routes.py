"""One VirtualService rule (or a host without any) -> Envoy routes, as ``route.go`` builds them.

Reference istio-semantics.md sections 2.2-2.12:

- A rule with N match blocks gives N routes with the same action; a rule without ``match`` gives
  one ``prefix: /`` route. Once a catch-all route is emitted, every later rule is dropped.
- Match blocks that do not apply to this sidecar or port are not emitted at all.
- The action is ``redirect``, else ``direct_response``, else ``route``: one destination ->
  ``cluster`` (its weight ignored); several -> ``weighted_clusters`` in VS order without the
  weight-0 ones and without ``total_weight`` (weights are relative).
- ``timeout`` and the deprecated ``max_grpc_timeout`` are the VS timeout, or ``0s`` (disabled).
- Policies each have their module: ``headers``, ``rewrites``, ``redirects``, ``retries``,
  ``mirrors``, ``faults``, ``cors``. Faults and CORS go in ``typed_per_filter_config``.
- Header operations: the rule's first; a single destination's are appended to the same lists and
  its authority is used only when the rule set none (neither ``rewrite.authority`` nor a
  ``:authority``/``host`` header); a weighted destination's go on its ``ClusterWeight``.
- A host without a VirtualService gets one route named ``default`` to ``outbound|P||fqdn``.

Every route also carries the config-version response header, which is the only part of the
output that changes with the config version besides the xDS version itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from harness.istio.model import (
    Destination,
    HTTPMatchRequest,
    HTTPRoute,
    HTTPRouteDestination,
    VirtualService,
)
from harness.istio.semantics import MESH_GATEWAY, resolve_host
from harness.mesh.local.translate import names
from harness.mesh.local.translate.cors import translate_cors
from harness.mesh.local.translate.faults import translate_fault
from harness.mesh.local.translate.headers import (
    NO_MUTATIONS,
    HeaderMutations,
    translate_headers,
)
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.lb import (
    default_route_hash_policies,
    destination_hash,
    route_hash_policies,
)
from harness.mesh.local.translate.matches import (
    applies_to_proxy,
    is_catch_all,
    translate_match,
)
from harness.mesh.local.translate.mirrors import translate_mirrors
from harness.mesh.local.translate.redirects import (
    translate_direct_response,
    translate_redirect,
)
from harness.mesh.local.translate.retries import default_retry_policy, translate_retries
from harness.mesh.local.translate.rewrites import translate_rewrite
from harness.mesh.local.translate.traffic_policy import DestinationRules
from harness.mesh.local.translate.units import envoy_duration
from harness.mesh.local.translate.versions import Behaviour
from harness.sample_apps.echo.fields import CONFIG_VERSION_HEADER
from harness.topology import Client

NO_TIMEOUT = "0s"


@dataclass(frozen=True)
class RouteContext:
    """What every route on one listener of one sidecar shares."""

    client: Client
    listener_port: int
    behaviour: Behaviour
    config_version: int
    destination_rules: DestinationRules
    """The DRs this sidecar applies, for the consistent-hash ``hash_policy`` of each route."""
    gateways: frozenset[str] = frozenset({MESH_GATEWAY})
    """The proxy's gateway names (``mesh`` for a sidecar, ``ns/name`` on a gateway): per-match ``gateways``."""
    only_ports: Mapping[str, int] = dataclass_field(default_factory=dict)
    """FQDN -> its only port, for services with one port, on gateways (see ``_cluster``); empty on sidecars."""

    def version_header(self) -> list[Resource]:
        """``response_headers_to_add`` entry stamping the config version on every response."""
        header = {"key": CONFIG_VERSION_HEADER, "value": str(self.config_version)}
        return [{"header": header, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]


def default_route(fqdn: str, ctx: RouteContext) -> Resource:
    """``BuildDefaultHTTPOutboundRoute``: the only route of a host that no VirtualService claims.

    Its retry policy keeps the previous_hosts predicate even with a consistent hash (istiod passes
    ``false`` for the hash there), unlike a VirtualService route to a single hashed destination.
    """
    action: Resource = {
        "cluster": names.outbound_cluster(ctx.listener_port, None, fqdn),
        "timeout": NO_TIMEOUT,
        "max_grpc_timeout": NO_TIMEOUT,
        "retry_policy": default_retry_policy(ctx.behaviour),
    }
    hash_policies = default_route_hash_policies(fqdn, ctx.listener_port, ctx.destination_rules)
    if hash_policies:
        action["hash_policy"] = hash_policies
    return {
        "name": names.DEFAULT_ROUTE,
        "match": translate_match(None),
        "route": action,
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
            if not applies_to_proxy(match, ctx.listener_port, labels, ctx.client.namespace, ctx.gateways,
                                    vs.metadata.namespace):
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
    """``translateRoute``: match, action, header mutations, decorator and per-filter configs of one route."""
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
    rule_headers = translate_headers(rule.headers)
    destination_headers = NO_MUTATIONS
    cluster: str | None = None
    if rule.redirect is not None:
        redirect = translate_redirect(
            rule.redirect, ctx.listener_port, prefix_rewrite=ctx.behaviour.redirect_prefix_rewrite
        )
        if redirect is not None:  # else no action at all, as istiod leaves it (see redirects.py)
            out["redirect"] = redirect
    elif rule.direct_response is not None:
        out["direct_response"] = translate_direct_response(rule.direct_response)
    else:
        out["route"], destination_headers = _route_action(vs, rule, rule_headers.authority, ctx)
        cluster = out["route"].get("cluster")
    out.update(_merged_header_fields(rule_headers, destination_headers))
    out["response_headers_to_add"] = out.get("response_headers_to_add", []) + ctx.version_header()
    out["decorator"] = {"operation": _operation(out["match"], cluster, vs.metadata.name, ctx)}
    per_filter: Resource = {}
    if rule.fault is not None:
        per_filter[names.FILTER_FAULT] = translate_fault(rule.fault)
    if rule.cors_policy is not None:
        per_filter[names.FILTER_CORS] = translate_cors(rule.cors_policy)
    if per_filter:
        out["typed_per_filter_config"] = per_filter
    return out


def _route_action(
    vs: VirtualService, rule: HTTPRoute, header_authority: str, ctx: RouteContext
) -> tuple[Resource, HeaderMutations]:
    """``applyHTTPRouteDestination``: the RouteAction, and the single destination's header mutations
    (which go on the route itself; a weighted destination's stay on its ClusterWeight)."""
    timeout = envoy_duration(rule.timeout) if rule.timeout is not None else NO_TIMEOUT
    action: Resource = {"timeout": timeout, "max_grpc_timeout": timeout}
    authority = header_authority
    if rule.rewrite is not None:
        action.update(translate_rewrite(rule.rewrite))
        authority = rule.rewrite.authority or authority
    if authority:
        action["host_rewrite_literal"] = authority

    def cluster_of(dest: Destination) -> str:
        return _cluster(dest, vs, ctx)

    mirrors = translate_mirrors(rule, cluster_of, ctx.behaviour)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    destination_headers = NO_MUTATIONS
    if len(rule.route) == 1:
        action["cluster"] = cluster_of(rule.route[0].destination)
        destination_headers = translate_headers(rule.route[0].headers)
        if destination_headers.authority and "host_rewrite_literal" not in action:
            action["host_rewrite_literal"] = destination_headers.authority
    else:
        action["weighted_clusters"] = {
            "clusters": [_cluster_weight(d, cluster_of(d.destination)) for d in rule.route if d.weight != 0]
        }
    hash_policies = route_hash_policies(rule.route, vs.metadata.namespace, ctx.destination_rules)
    if hash_policies:
        action["hash_policy"] = hash_policies
    # A single destination with a DR consistentHash starts from the retry default without previous_hosts
    # (route.go: consistentHash = LookupHash(route[0]) != nil; ConvertPolicy(policy, consistentHash)). That is
    # the consistentHash block, hash key or not (ringHash/maglev alone make no hash_policy), and only from
    # 1.23: 1.22's ConvertPolicy(policy) has no such variant.
    consistent_hash = (
        ctx.behaviour.consistent_hash_retry
        and len(rule.route) == 1
        and destination_hash(rule.route[0], vs.metadata.namespace, ctx.destination_rules) is not None
    )
    retry_policy = translate_retries(rule.retries, ctx.behaviour, consistent_hash=consistent_hash)
    if retry_policy is not None:
        action["retry_policy"] = retry_policy
    return action, destination_headers


def _cluster_weight(dest: HTTPRouteDestination, cluster: str) -> Resource:
    """``processWeightedDestination``: name, weight, and the destination's own header mutations."""
    mutations = translate_headers(dest.headers)
    out: Resource = {"name": cluster, "weight": dest.weight, **mutations.fields()}
    if mutations.authority:
        out["host_rewrite_literal"] = mutations.authority
    return out


def _merged_header_fields(rule: HeaderMutations, destination: HeaderMutations) -> dict[str, list[Resource] | list[str]]:
    """The route's header lists: the rule's entries, then the single destination's (``processDestination``)."""
    merged = rule.fields()
    for field, values in destination.fields().items():
        merged[field] = [*merged.get(field, []), *values]
    return merged


def _cluster(dest: Destination, vs: VirtualService, ctx: RouteContext) -> str:
    """``GetDestinationCluster``: host resolved in the VS namespace; port = ``destination.port``, else the
    service's only port, else the listener port. (On sidecars istiod sees the service restricted to the
    listener port, so the middle rule yields the listener port too: ``ctx.only_ports`` is empty there.)"""
    fqdn = resolve_host(dest.host, vs.metadata.namespace)
    port = dest.port.number if dest.port is not None else ctx.only_ports.get(fqdn, ctx.listener_port)
    return names.outbound_cluster(port, dest.subset, fqdn)


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
