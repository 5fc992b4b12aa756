"""The route table Envoy actually holds, in words: for ``mesh-harness routes SERVICE`` and failure forensics.

Reads the ``RoutesConfigDump`` part of a sidecar's ``/config_dump`` (Envoy's own JSON, not our
translator's output: what was ACKed is what is shown) and turns each route of the virtual hosts
that serve SERVICE into one row: which requests it matches, what it does with them, and the
policies attached (timeout, retries, faults, mirrors, rewrites). Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.mesh.forensics import serves
from harness.mesh.local.translate import names

Json = Mapping[str, Any]
_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}
_STRING_MATCHES = ("exact", "prefix", "suffix", "contains")


@dataclass(frozen=True)
class RouteRow:
    """One Envoy route: its route config (the port), virtual host, position, and what it does."""

    route_config: str
    version: str
    virtual_host: str
    index: int
    name: str
    match: str
    action: str
    policies: tuple[str, ...]


def route_configs(config_dump: Json) -> list[Json]:
    """The dynamic route configurations (with ``version_info``) in a whole ``/config_dump``."""
    out: list[Json] = []
    for section in config_dump.get("configs", []):
        if str(section.get("@type", "")).endswith(".RoutesConfigDump"):
            out.extend(section.get("dynamic_route_configs", []))
    return out


def service_routes(configs: Sequence[Json], service: str) -> list[RouteRow]:
    """Rows for every route of every virtual host whose domains name ``service`` (short name or FQDN)."""
    rows: list[RouteRow] = []
    for entry in sorted(configs, key=lambda e: str(e.get("route_config", {}).get("name", ""))):
        config = entry.get("route_config", {})
        for vhost in config.get("virtual_hosts", []):
            if not serves(vhost, service):
                continue
            for i, route in enumerate(vhost.get("routes", [])):
                rows.append(RouteRow(
                    route_config=str(config.get("name", "")), version=str(entry.get("version_info", "")),
                    virtual_host=str(vhost.get("name", "")), index=i, name=str(route.get("name", "")),
                    match=describe_match(route.get("match", {})), action=describe_action(route),
                    policies=tuple(describe_policies(route)),
                ))
    return rows


def known_hosts(configs: Sequence[Json]) -> list[str]:
    """The first domain of every virtual host except the catch-all, for "no such service" messages."""
    hosts = {str(v["domains"][0]) for e in configs for v in e.get("route_config", {}).get("virtual_hosts", [])
             if v.get("domains") and v["domains"][0] != "*"}
    return sorted(hosts)


def describe_match(match: Json) -> str:
    """``prefix /api, header end-user exact "jason", query v regex "^2"`` (Envoy field by field)."""
    parts = []
    for key in ("prefix", "path", "path_separated_prefix"):
        if key in match:
            parts.append(f"{key.replace('_', ' ')} {match[key]}")
    if "safe_regex" in match:
        parts.append(f'path regex "{match["safe_regex"].get("regex", "")}"')
    if match.get("case_sensitive") is False:
        parts.append("ignoring case")
    for header in match.get("headers", []):
        parts.append(f"header {header.get('name')} {_header_condition(header)}")
    for query in match.get("query_parameters", []):
        condition = _string_match(query["string_match"]) if "string_match" in query else "present"
        parts.append(f"query {query.get('name')} {condition}")
    return ", ".join(parts) or "everything"


def _header_condition(header: Json) -> str:
    if "string_match" in header:
        text = _string_match(header["string_match"])
    elif "present_match" in header:
        text = "present" if header["present_match"] else "absent"
    else:
        text = "present"
    return f"not {text}" if header.get("invert_match") else text


def _string_match(m: Json) -> str:
    for key in _STRING_MATCHES:
        if key in m:
            text = f'{key} "{m[key]}"'
            return f"{text} ignoring case" if m.get("ignore_case") else text
    if "safe_regex" in m:
        return f'regex "{m["safe_regex"].get("regex", "")}"'
    return str(dict(m))


def describe_action(route: Json) -> str:
    """``reviews v1 90%, reviews v2 10%``, ``respond 502``, ``redirect to https://…``."""
    if "direct_response" in route:
        return f"respond {route['direct_response'].get('status')}"
    if "redirect" in route:
        r = route["redirect"]
        target = f"{r.get('scheme_redirect', '')}{'://' if 'scheme_redirect' in r else ''}{r.get('host_redirect', '')}"
        target += str(r.get("path_redirect", r.get("prefix_rewrite", "")))
        return f"redirect {r.get('response_code', 'MOVED_PERMANENTLY')} to {target or '(same URL)'}"
    action = route.get("route", {})
    if "weighted_clusters" in action:
        clusters = action["weighted_clusters"].get("clusters", [])
        total = sum(int(c.get("weight", 0)) for c in clusters) or 1
        return ", ".join(f"{short_cluster(str(c['name']))} {100 * int(c.get('weight', 0)) / total:g}%" for c in clusters)
    if "cluster" in action:
        return short_cluster(str(action["cluster"]))
    return "(no action)"


def short_cluster(name: str) -> str:
    """``outbound|9080|v1|reviews.default.svc.cluster.local`` -> ``reviews v1``; other names as they are."""
    parsed = names.parse_outbound_cluster(name)
    if parsed is None:
        return name
    _, subset, fqdn = parsed
    host = fqdn.split(".")[0]
    return f"{host} {subset}" if subset else f"{host} (all versions)"


def describe_policies(route: Json) -> Iterator[str]:
    action = route.get("route", {})
    timeout = action.get("timeout")
    if timeout not in (None, "0s"):
        yield f"timeout {timeout}"
    retry = action.get("retry_policy")
    if retry:
        per_try = f", {retry['per_try_timeout']} per try" if "per_try_timeout" in retry else ""
        yield f"retries {retry.get('num_retries', 1)} on {retry.get('retry_on', '')}{per_try}"
    for key in ("prefix_rewrite", "host_rewrite_literal"):
        if key in action:
            yield f"{key.replace('_', ' ')} {action[key]}"
    if "regex_rewrite" in action:
        rewrite = action["regex_rewrite"]
        yield f'regex rewrite "{rewrite.get("pattern", {}).get("regex", "")}" -> "{rewrite.get("substitution", "")}"'
    for mirror in action.get("request_mirror_policies", []):
        fraction = mirror.get("runtime_fraction", {}).get("default_value")
        yield f"mirror {percent(fraction) if fraction else '100%'} to {short_cluster(str(mirror.get('cluster')))}"
    fault = route.get("typed_per_filter_config", {}).get(names.FILTER_FAULT)
    if fault:
        yield from _faults(fault)


def _faults(fault: Json) -> Iterator[str]:
    delay = fault.get("delay")
    if delay:
        yield f"fault delay {delay.get('fixed_delay')} for {percent(delay.get('percentage', {}))}"
    abort = fault.get("abort")
    if abort:
        code = abort.get("http_status", abort.get("grpc_status"))
        yield f"fault abort {code} for {percent(abort.get('percentage', {}))}"


def percent(fraction: Json) -> str:
    """Envoy's FractionalPercent (``{numerator, denominator}``, HUNDRED when omitted) as ``12.5%``."""
    denominator = _DENOMINATORS.get(str(fraction.get("denominator", "HUNDRED")), 100)
    return f"{100 * int(fraction.get('numerator', 0)) / denominator:g}%"
