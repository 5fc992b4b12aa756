"""The YAML of ``expect``: its schema (pydantic, documented for editors) and its parsing into expectations.

One key per property, in the vocabulary of ``Observation`` and the echo app. A single value means
every request; a mapping of fractions means a random split, judged statistically::

    expect:
      version: {v1: 0.9, v2: 0.1}        # split between versions
      status: 503                         # every response; [200, 503]: every one of them, each at least once
      grpc_status: UNAVAILABLE            # or 14, or {OK: 0.5, UNAVAILABLE: 0.5}
      flags: FI                           # Envoy response flags; "DI,FI"; {FI: 0.5, "-": 0.5} ("-": none)
      headers: {x-envoy-overloaded: "true", x-envoy-upstream-service-time: null}   # null: absent
      upstream: {path: /new/path, host: reviews, headers: {x-custom: "1"}}          # what the app received
      body: {contains: "no healthy upstream"}   # or {matches: "a regex"}: the response body
      latency: {at_least: 2s}             # or {below: 1s}, {fraction_at_least: {...}}, {p99: {below: 1s}}
      attempts: 3                         # copies the target service received per request; or {1: 0.5, 2: 0.5}
      mirror: {service: reviews, version: v2, fraction: 1.0}
      received: none                      # no app received any request; or 0.7: the share that reached an app
      stats: {upstream_rq_retry: {at_least: 1}}   # client sidecar counter deltas over the check
      same_instance: true                 # every response from one instance
      instances: {at_least: 2}            # distinct instances that answered; {exclude: [reviews-v1-1]}: gets nothing

A check's ``expect_where`` restricts every-response keys to the responses that match a filter
written in the same vocabulary (``harness.expect.where``)::

    expect_where:
      - where: {status: 503}              # every 503 ...
        expect: {flags: UO, headers: {x-envoy-overloaded: "true"}}
      - where: {flags: "-"}               # every response Envoy did not flag ...
        expect: {status: 200}

Parsing returns every problem with its path under ``expect`` (or the ``expect_where`` entry) for
the case loader to place.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from harness.expect import aggregate, applog, latency, response, upstream
from harness.expect.base import Expectation, show_seconds
from harness.expect.where import Where
from harness.istio.model import Duration
from harness.schema_issues import show
from harness.topology import Topology

AnyExpectation = (
    Expectation
    | latency.QuantileExpectation
    | aggregate.StatsExpectation
    | aggregate.SameInstanceExpectation
    | aggregate.InstancesExpectation
    | aggregate.NoClaim
    | Where
)
PathKey = tuple[str | int, ...]
#: A parsed expectation with its path under ``expect`` (so that later checks can point at it).
Located = tuple[PathKey, AnyExpectation]
#: A problem with its path under ``expect`` (empty: the whole block) and the message.
Problem = tuple[PathKey, str]


#: A duration as written in YAML ("200ms", "1.5s"), seconds once parsed; the JSON schema says string.
DurationText = Annotated[Duration, WithJsonSchema({"type": "string", "examples": ["200ms", "1.5s"]})]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _one_or_fractions(kinds: tuple[type, ...], example: str, *, lists: bool = False) -> Any:
    """A before-validator giving one clear message for "a single value, or a mapping of fractions"
    (with ``lists``: or a list of values)."""

    def is_kind(value: Any) -> bool:
        return isinstance(value, kinds) and not isinstance(value, bool)

    def check(value: Any) -> Any:
        ok_map = isinstance(value, dict) and all(
            is_kind(k) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in value.items()
        )
        ok_list = lists and isinstance(value, list | tuple) and all(is_kind(v) for v in value)
        if value is None or is_kind(value) or ok_map or ok_list:
            return value
        raise ValueError(f"expected {example}")

    return BeforeValidator(check)


def _header_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | bool):
        return value
    raise ValueError('expected a header value: a string (exact), true (present with any value) or null (absent)')


HeaderValue = Annotated[str | int | bool | None, BeforeValidator(_header_value)]
HEADER_VALUES = 'Values: a string (exact value), true (present, any value), null (absent).'


def _received_value(value: Any) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if value is None or value == "none" or (is_number and 0.0 <= value <= 1.0):
        return value
    raise ValueError("expected none (no app received any request) or the share of requests that reached an app, "
                     "between 0 and 1 (e.g. 0.7)")


class UpstreamModel(_Model):
    """What the app received, on every request (from its echo; the runner asks for echoes)."""

    path: str | None = Field(None, description="Path with query as the app received it, e.g. /new/path?key=value (after rewrites).")
    host: str | None = Field(None, description='Host/authority the app received, e.g. "reviews:9080" or a rewritten authority.')
    method: str | None = Field(None, description="HTTP method the app received.")
    headers: dict[str, HeaderValue] = Field(default_factory=dict, description=f"Request headers the app received. {HEADER_VALUES}")


class BodyModel(_Model):
    """The response body, as text (its first 4 KiB; the runner keeps bodies only for checks that read them)."""

    contains: str | None = Field(None, description='Text every body contains, e.g. "no healthy upstream" (Envoy\'s 503 UH reply).')
    matches: str | None = Field(
        None, description='A regular expression (Python re) found somewhere in every body, e.g. "upstream connect error.*reset".'
    )


class FractionAtLeastModel(_Model):
    bound: DurationText = Field(description='Latency threshold, e.g. "200ms".')
    expected: float = Field(description="Share of requests taking at least bound, strictly between 0 and 1 (e.g. 0.5 for a 50% delay).")


class QuantileBoundModel(_Model):
    below: DurationText | None = Field(None, description='The quantile is below this duration, e.g. "1s".')
    at_least: DurationText | None = Field(None, description='The quantile is at least this duration, e.g. "200ms".')


_QUANTILE = "Latency quantile against a bound: {below: 1s} or {at_least: 200ms}; judged distribution-free with the check's alpha."


class LatencyModel(_Model):
    """Response time as the caller measured it. Upper bounds are fragile on loaded machines: keep them generous."""

    at_least: DurationText | None = Field(None, description='Every request took at least this long (a fault delay is a safe lower bound), e.g. "2s".')
    below: DurationText | None = Field(None, description='Every request took less than this (fragile on loaded machines; be generous), e.g. "5s".')
    fraction_at_least: FractionAtLeastModel | None = Field(
        None, description="A random share of requests took at least bound: {bound: 200ms, expected: 0.5}; judged statistically."
    )
    p50: QuantileBoundModel | None = Field(None, description=_QUANTILE)
    p90: QuantileBoundModel | None = Field(None, description=_QUANTILE)
    p95: QuantileBoundModel | None = Field(None, description=_QUANTILE)
    p99: QuantileBoundModel | None = Field(None, description=_QUANTILE)
    p999: QuantileBoundModel | None = Field(None, alias="p99.9", description=_QUANTILE)
    timers: int | None = Field(
        None, description="How many Envoy timers a lower bound adds up (3 for three per-try timeouts; default 1): each may "
                          "end one tick of the proxy's clock and 1ms of its event loop early, so the bound allows that many.",
    )


BOUNDABLE_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}
"""The latency quantiles a check may bound (the ``latency:`` keys of ``LatencyModel``); wider than what reports show
of every check's traffic (``harness.result.LATENCY_QUANTILES``), since a case states what its policy is about."""


class MirrorModel(_Model):
    """Copies a mirror target received, counted by request id in its app log after the traffic drained."""

    service: str = Field(description="The mirror target service.")
    version: str | None = Field(None, description="Only copies received by this version (the mirror's subset).")
    fraction: float = Field(
        1.0, description="Share of requests mirrored: 1.0 every request, 0.0 none (both exact), else judged statistically."
    )
    host: str | None = Field(
        None, description='Host every copy carried: "reviews:9080" (Istio >= 1.28) or "reviews-shadow:9080" (<= 1.27).'
    )


class CountBoundsModel(_Model):
    at_least: Annotated[int, Field(ge=0)] | None = Field(None, description="The delta is at least this.")
    at_most: Annotated[int, Field(ge=0)] | None = Field(None, description="The delta is at most this.")
    equal: Annotated[int, Field(ge=0)] | None = Field(None, description="The delta is exactly this.")


class InstancesModel(_Model):
    at_least: Annotated[int, Field(ge=1)] | None = Field(None, description="At least this many distinct instances answered.")
    at_most: Annotated[int, Field(ge=1)] | None = Field(None, description="At most this many distinct instances answered.")
    exclude: tuple[str, ...] = Field(
        (), description="Instances that must get nothing: none of them answered or received (app log) any request, "
        "e.g. [reviews-v1-1] for an ejected replica. Names are <service>-<version>-<replica>."
    )


class ExpectModel(_Model):
    """What must come out. A single value means "every response"; a mapping means fractions (judged statistically)."""

    version: Annotated[
        str | tuple[str, ...] | dict[str, float] | None,
        _one_or_fractions((str,), 'a version ("v2"), a list of versions ([v1, v2]) or fractions ({v1: 0.9, v2: 0.1})', lists=True),
    ] = Field(
        None, description='Which version answered: "v2" (all), [v1, v2] (every response from one of them, each at least once), '
        'or fractions {v1: 0.9, v2: 0.1}; "none" = Envoy answered.'
    )
    status: Annotated[
        int | tuple[int, ...] | dict[int, float] | None,
        _one_or_fractions((int,), "a status code (200), a list of them ([200, 503]) or fractions ({200: 0.5, 503: 0.5})", lists=True),
    ] = Field(
        None, description="HTTP status: 200 (all), [200, 503] (every response one of them, each at least once), "
        "or fractions {200: 0.5, 503: 0.5}."
    )
    grpc_status: Annotated[
        str | int | dict[str | int, float] | None,
        _one_or_fractions((str, int), "a gRPC status (UNAVAILABLE or 14) or fractions ({OK: 0.5, UNAVAILABLE: 0.5})"),
    ] = Field(None, description='gRPC status by name or number: "UNAVAILABLE", 14, or fractions {OK: 0.5, UNAVAILABLE: 0.5}; "none" = no gRPC status.')
    flags: Annotated[str | dict[str, float] | None, _one_or_fractions((str,), 'Envoy response flags ("UO", "DI,FI") or fractions ({FI: 0.5, "-": 0.5})')] = Field(
        None, description='Envoy response flags of each request: "UO", "DI,FI" (several, any order), "-" (none), or fractions {FI: 0.5, "-": 0.5}.'
    )
    headers: dict[str, HeaderValue] | None = Field(
        None, description=f"Response headers on every response, e.g. {{x-envoy-overloaded: \"true\", location: \"http://reviews/new\"}}. {HEADER_VALUES}"
    )
    upstream: UpstreamModel | None = Field(None, description="What the app received on every request: path, host, method, headers.")
    body: BodyModel | None = Field(
        None, description='The response body of every response: {contains: "no healthy upstream"} or {matches: "a regex"}.'
    )
    latency: LatencyModel | None = Field(
        None, description="Response time bounds: {at_least: 2s}, {below: 5s}, {fraction_at_least: {bound: 200ms, expected: 0.5}}, {p99: {below: 1s}}."
    )
    attempts: Annotated[int | dict[int, float] | None, _one_or_fractions((int,), "a number of attempts (3) or fractions ({1: 0.5, 2: 0.5})")] = Field(
        None, description="Copies of each request the target service received (1 = no retry): 3 (all), or fractions {1: 0.5, 2: 0.5}."
    )
    mirror: MirrorModel | tuple[MirrorModel, ...] | None = Field(
        None, description="Mirror copies: {service: reviews, version: v2, fraction: 1.0, host: ...}, or a list of such targets."
    )
    received: Annotated[Literal["none"] | float | None, BeforeValidator(_received_value)] = Field(
        None, description='"none": no app received any request (fault aborts, direct responses); or the share of requests '
        "that reached an app, e.g. 0.7 when a fault aborts 30% (1.0: every request; judged statistically in between)."
    )
    stats: dict[str, CountBoundsModel] | None = Field(
        None,
        description='Client sidecar counter deltas over the check: {"upstream_rq_retry": {at_least: 1}}. A name matches counters '
        'equal to it or ending in ".<name>"; names joined by "|" are summed.',
    )
    same_instance: bool | None = Field(None, description="true: every response came from one app instance (consistent hashing).")
    instances: InstancesModel | None = Field(
        None, description="Distinct instances that answered: {at_least: 2}. Presence only; the traffic must make it certain."
    )


class WhereModel(_Model):
    """One entry of a check's ``expect_where``: what every response matching ``where`` has."""

    where: ExpectModel = Field(
        description='Which responses: expect keys with one value each, all of which must hold, e.g. {status: 503} or {flags: "-"}. '
        "At least one response must match, or the expectation fails."
    )
    expect: ExpectModel = Field(
        description='What every matching response has: every-response expect keys, e.g. {flags: UO, headers: {x-envoy-overloaded: "true"}}.'
    )


# --- parsing ---------------------------------------------------------------------------------


def parse_expectations(
    model: ExpectModel, *, target: str | None, topology: Topology | None, require: bool = True
) -> tuple[list[Located], list[Problem]]:
    """Expectations from a parsed ``expect`` block, and the problems found, each with its path.

    ``target`` is the URL's service (what ``attempts`` counts); ``topology`` checks mirror
    targets (None when the case's own schema is broken: then they are not looked up). ``require``:
    an empty block is a problem (an ``expect_where`` filter says so in its own words).
    """
    out: list[Located] = []
    problems: list[Problem] = []
    for name, parse in _PARSERS.items():
        value = getattr(model, name)
        if value is not None:
            parse(value, _Sink((name,), out, problems, target, topology))
    if require and not out and not problems:
        problems.append(((), (
            "nothing to check; add an expectation such as version, status, flags or headers "
            "(e.g. version: v2, or version: {v1: 0.9, v2: 0.1})"
        )))
    return out, problems


def parse_where(model: WhereModel, *, target: str | None, topology: Topology | None) -> tuple[list[Located], list[Problem]]:
    """``Where`` expectations from one ``expect_where`` entry (paths start at ``where`` or ``expect``).

    Only every-response expectations can pick or be judged on a subset: a split, quantile or
    aggregate is about all of a check's responses, and its statistics would not hold on a subset.
    """
    condition, problems = _every_only(model.where, "where", target, topology, _FILTER_ONLY_EVERY)
    inner, inner_problems = _every_only(model.expect, "expect", target, topology, _WHERE_ONLY_EVERY)
    problems += inner_problems
    if not condition and not any(at[:1] == ("where",) for at, _ in problems):
        problems.append((("where",), 'expected a filter such as {status: 503} or {flags: "-"}'))
    if problems:
        return [], problems
    picks = tuple(e for _, e in condition)
    return [(at, Where(picks, e)) for at, e in inner], []


_FILTER_ONLY_EVERY = 'a filter picks responses by one value per key, e.g. status: 503 or flags: "-"'
_WHERE_ONLY_EVERY = ("only every-response expectations can be judged on the matching responses; "
                     "put splits, quantiles, stats, same_instance and instances under the check's expect")


def _every_only(
    model: ExpectModel, side: str, target: str | None, topology: Topology | None, refusal: str
) -> tuple[list[tuple[PathKey, Expectation]], list[Problem]]:
    """One side of an ``expect_where`` entry: its every-response expectations, and the problems
    (refusing the other kinds), with paths prefixed by ``side``."""
    located, problems = parse_expectations(model, target=target, topology=topology, require=side == "expect")
    every: list[tuple[PathKey, Expectation]] = []
    out: list[Problem] = [((side, *at), message) for at, message in problems]
    for at, e in located:
        if isinstance(e, Expectation) and e.every is not None:
            every.append(((side, *at), e))
        else:
            out.append(((side, *at), f"{refusal} (got {e.describe()})"))
    return every, out


class _Sink:
    """Where one key's parser puts its expectations and problems, with the key's path."""

    def __init__(self, path: PathKey, out: list[Located], problems: list[Problem], target: str | None, topology: Topology | None) -> None:
        self.path = path
        self.out = out
        self.problems = problems
        self.target = target
        self.topology = topology

    def add(self, expectation: AnyExpectation, *sub: str | int) -> None:
        self.out.append(((*self.path, *sub), expectation))

    def problem(self, message: str, *sub: str | int) -> None:
        self.problems.append(((*self.path, *sub), message))


def _split_or_every(value: Any, sink: _Sink, make: Callable[[Any], Expectation]) -> None:
    if isinstance(value, tuple):
        values = [str(v) for v in value]
        twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if not values:
            sink.problem("expected at least one value, e.g. [200, 503]")
        elif twice is not None:
            sink.problem(f"{twice} is listed twice; list each value once")
        else:
            sink.add(make(values))
    elif isinstance(value, dict):
        fractions = {str(k): float(v) for k, v in value.items()}
        problem = fraction_problem(fractions)
        if problem:
            sink.problem(problem)
            return
        sink.add(make(fractions))
    else:
        sink.add(make(str(value)))


def _version(value: Any, sink: _Sink) -> None:
    _split_or_every(value, sink, response.version)


def _status(value: Any, sink: _Sink) -> None:
    _split_or_every(value, sink, response.status)


def _grpc_status(value: Any, sink: _Sink) -> None:
    names = [value] if not isinstance(value, dict) else list(value)
    bad = [n for n in names if response.grpc_status_name(n) is None and n != response.NO_GRPC_STATUS]
    if bad:
        close = difflib.get_close_matches(str(bad[0]).upper(), response.GRPC_STATUS_NAMES, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        sink.problem(f"unknown gRPC status (got {show(bad[0])}); use a name such as UNAVAILABLE or a number 0-16{hint}")
        return

    def canonical(n: str | int) -> str:
        return response.grpc_status_name(n) or response.NO_GRPC_STATUS

    _split_or_every({canonical(k): v for k, v in value.items()} if isinstance(value, dict) else canonical(value), sink, response.grpc_status)


def _flags(value: Any, sink: _Sink) -> None:
    names = [value] if not isinstance(value, dict) else list(value)
    normal: dict[str, str] = {}
    for written in names:
        parts = [p.strip() for p in written.split(",")] if written.strip() != response.NO_FLAG else []
        bad = next((p for p in parts if p not in response.ENVOY_FLAGS), None)
        if bad is not None:
            close = [f for f in response.ENVOY_FLAGS if sorted(f) == sorted(bad.upper())] or difflib.get_close_matches(
                bad.upper(), response.ENVOY_FLAGS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}?" if close else f"known flags: {', '.join(response.ENVOY_FLAGS)}"
            sink.problem(f'unknown Envoy response flag (got {show(bad)}); write flags as Envoy logs them (UO, NR, FI, "-" for none); {hint}')
            return
        normal[written] = response.flags_category(parts)
    _split_or_every({normal[k]: v for k, v in value.items()} if isinstance(value, dict) else normal[value], sink, response.flags)


def _headers(value: dict[str, Any], sink: _Sink, *, upstream_side: bool = False) -> None:
    for name, wanted in value.items():
        shown = str(wanted) if isinstance(wanted, int) and not isinstance(wanted, bool) else wanted
        sink.add(response.header(name, shown, upstream=upstream_side), name)


def _upstream(value: UpstreamModel, sink: _Sink) -> None:
    given = False
    for name in ("path", "host", "method"):
        wanted = getattr(value, name)
        if wanted is not None:
            sink.add(upstream.upstream(name, wanted), name)
            given = True
    if value.headers:
        _headers(value.headers, _Sink((*sink.path, "headers"), sink.out, sink.problems, sink.target, sink.topology), upstream_side=True)
    elif not given:
        sink.problem("nothing to check; add path, host, method or headers")


def _body(value: BodyModel, sink: _Sink) -> None:
    if (value.contains is None) == (value.matches is None):
        sink.problem('give exactly one of contains and matches, e.g. {contains: "no healthy upstream"}')
    elif value.contains is not None:
        if not value.contains:
            sink.problem("an empty text is in every body and checks nothing; give the text to look for", "contains")
        else:
            sink.add(response.body(value.contains))
    elif value.matches is not None:
        try:
            re.compile(value.matches)
        except re.error as exc:
            sink.problem(f"not a regular expression: {exc} (got {show(value.matches)}); "
                         "escape special characters with a backslash, or use contains for plain text", "matches")
        else:
            sink.add(response.body(value.matches, regex=True))


def _latency(value: LatencyModel, sink: _Sink) -> None:
    quantiles = {name: getattr(value, "p999" if name == "p99.9" else name) for name in BOUNDABLE_QUANTILES}
    if value.at_least is None and value.below is None and value.fraction_at_least is None and not any(quantiles.values()):
        sink.problem("nothing to check; add at_least, below, fraction_at_least or a quantile such as p99")
        return
    for name in ("at_least", "below"):
        if getattr(value, name) is not None and getattr(value, name) < 0:
            sink.problem(f"a latency bound cannot be negative (got {show_seconds(getattr(value, name))})", name)
            return
    timers = 1 if value.timers is None else value.timers
    if timers < 1:
        sink.problem(f"must be at least 1 (got {value.timers}): the number of Envoy timers the lower bound adds up, e.g. 3 for three per-try timeouts", "timers")
        return
    lower_bounds = value.at_least is not None or value.fraction_at_least is not None or any(b and b.at_least is not None for b in quantiles.values())
    if value.timers is not None and not lower_bounds:
        sink.problem("timers only applies to a lower bound; add at_least, fraction_at_least or a quantile's at_least, or remove timers", "timers")
        return
    if value.at_least is not None and value.below is not None and value.at_least >= value.below:
        sink.problem(f"at_least must be less than below (got at_least {show_seconds(value.at_least)}, below {show_seconds(value.below)})")
    elif value.at_least is not None or value.below is not None:
        sink.add(latency.latency_range(value.at_least, value.below, timers=timers))
    split = value.fraction_at_least
    if split is not None:
        if not 0.0 < split.expected < 1.0:
            sink.problem(f"must be strictly between 0 and 1 (got {split.expected:g}); "
                         "for every request write latency: {at_least: ...} or {below: ...}", "fraction_at_least", "expected")
        else:
            sink.add(latency.latency_split(split.bound, split.expected, timers=timers), "fraction_at_least")
    for name, bound in quantiles.items():
        if bound is None:
            continue
        if (bound.below is None) == (bound.at_least is None):
            sink.problem(f"give exactly one of below and at_least, e.g. {name}: {{below: 1s}}", name)
        else:
            sink.add(latency.latency_quantile(name, BOUNDABLE_QUANTILES[name], below=bound.below, at_least=bound.at_least, timers=timers), name)


def _attempts(value: Any, sink: _Sink) -> None:
    counts = list(value) if isinstance(value, dict) else [value]
    if any(c < 1 for c in counts):
        sink.problem(f"attempts count from 1 (got {min(counts)}); for requests that no app received write received: none")
        return
    if sink.target is None:
        return  # the URL is broken; reported at send.url
    if isinstance(value, dict):
        fractions = {str(k): float(v) for k, v in value.items()}
        problem = fraction_problem(fractions, example="{1: 0.5, 2: 0.5}")
        if problem:
            sink.problem(problem)
            return
        sink.add(applog.attempts(sink.target, {int(k): v for k, v in fractions.items()}))
    else:
        sink.add(applog.attempts(sink.target, value))


def _mirror(value: MirrorModel | tuple[MirrorModel, ...], sink: _Sink) -> None:
    targets = [((), value)] if isinstance(value, MirrorModel) else [((i,), m) for i, m in enumerate(value)]
    if not targets:
        sink.problem("expected a mirror target, e.g. {service: reviews, version: v2, fraction: 1.0}")
    for sub, m in targets:
        if not 0.0 <= m.fraction <= 1.0 or math.isnan(m.fraction):
            sink.problem(f"expected a fraction between 0 and 1 (got {m.fraction:g}); write 0.5 for 50%", *sub, "fraction")
            continue
        if sink.topology is not None and not _mirror_target_ok(m, sink, sub):
            continue
        field = "mirror" if not sub else f"mirror[{sub[0]}]"
        sink.add(applog.mirror(m.service, m.fraction, version=m.version, host=m.host, field=field), *sub)


def _mirror_target_ok(m: MirrorModel, sink: _Sink, sub: PathKey) -> bool:
    assert sink.topology is not None
    service = sink.topology.service(m.service)
    if service is None:
        known = ", ".join(s.name for s in sink.topology.services)
        sink.problem(f"no service {m.service!r} in this case's topology (services: {known}); add it under services:", *sub, "service")
        return False
    if m.version is not None and m.version not in service.versions:
        sink.problem(f"{m.service} has no version {m.version!r} (versions: {', '.join(service.versions)}); "
                     "add it under services:", *sub, "version")
        return False
    return True


def _received(value: str | float, sink: _Sink) -> None:
    sink.add(applog.received_none() if value == "none" else applog.received(float(value)))


def _stats(value: dict[str, CountBoundsModel], sink: _Sink) -> None:
    for key, bounds in value.items():
        names = tuple(n.strip() for n in key.split("|"))
        if not all(names):
            sink.problem(f'expected counter names joined by "|" (got {show(key)}), e.g. "upstream_rq_pending_overflow|upstream_rq_active_overflow"', key)
            continue
        if bounds.equal is not None and (bounds.at_least is not None or bounds.at_most is not None):
            sink.problem("equal cannot be combined with at_least or at_most", key)
            continue
        low = bounds.equal if bounds.equal is not None else bounds.at_least
        high = bounds.equal if bounds.equal is not None else bounds.at_most
        if low is None and high is None:
            sink.problem("give at_least, at_most or equal, e.g. {at_least: 1}", key)
        elif low is not None and high is not None and low > high:
            sink.problem(f"at_least must not exceed at_most (got {low} > {high})", key)
        else:
            sink.add(aggregate.StatsExpectation(names, low, high), key)


def _same_instance(value: bool, sink: _Sink) -> None:
    if not value:
        sink.problem("same_instance: false checks nothing; write true, or for a spread use instances: {at_least: 2}")
        return
    sink.add(aggregate.SameInstanceExpectation())


def _instances(value: InstancesModel, sink: _Sink) -> None:
    known = sink.topology.instances() if sink.topology is not None else None
    unknown = [(i, name) for i, name in enumerate(value.exclude) if known is not None and name not in known]
    for i, name in unknown:
        assert known is not None
        sink.problem(f"no instance {name!r} in this case's topology (instances: {', '.join(known)}); "
                     "name one as <service>-<version>-<replica>", "exclude", i)
    if value.at_least is None and value.at_most is None and not value.exclude:
        sink.problem("give at_least, at_most or exclude, e.g. {at_least: 2} or {exclude: [reviews-v1-1]}")
    elif value.at_least is not None and value.at_most is not None and value.at_least > value.at_most:
        sink.problem(f"at_least must not exceed at_most (got {value.at_least} > {value.at_most})")
    elif not unknown:
        sink.add(aggregate.InstancesExpectation(value.at_least, value.at_most, tuple(value.exclude)))


_PARSERS: Mapping[str, Callable[[Any, _Sink], None]] = {
    "version": _version,
    "status": _status,
    "grpc_status": _grpc_status,
    "flags": _flags,
    "headers": _headers,
    "upstream": _upstream,
    "body": _body,
    "latency": _latency,
    "attempts": _attempts,
    "mirror": _mirror,
    "received": _received,
    "stats": _stats,
    "same_instance": _same_instance,
    "instances": _instances,
}


def fraction_problem(fractions: Mapping[str, float], example: str = "{v1: 0.9, v2: 0.1}") -> str | None:
    """Why a mapping of fractions is unusable, or None."""
    if not fractions:
        return f"expected at least one category with its fraction, e.g. {example}"
    bad = {k: v for k, v in fractions.items() if not (0.0 <= v <= 1.0) or math.isnan(v)}
    if bad:
        k, v = next(iter(bad.items()))
        return f"each fraction must be between 0 and 1 (got {k}: {v:g}); write 0.9 for 90%"
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        return f"fractions must add up to 1 (got {total:g}); list every category, e.g. {example}"
    return None


def is_statistical(expectation: AnyExpectation) -> bool:
    """Whether judging it takes a sequential plan (a split or a quantile), so it cannot run on a fixed count."""
    return isinstance(expectation, latency.QuantileExpectation) or (isinstance(expectation, Expectation) and expectation.is_fraction)


def needs_of(expectations: Sequence[AnyExpectation]) -> frozenset[str]:
    """Everything the expectations need from the mesh besides responses (``echo``, ``app_log``, ``stats``)."""
    return frozenset().union(*(e.needs for e in expectations))


def captured_headers(expectations: Sequence[AnyExpectation]) -> tuple[str, ...]:
    """Response headers the expectations read, for ``SendSpec.capture_headers``: a sender keeps
    only ``x-envoy-*``, ``server`` and ``content-type`` unless asked (``location``, CORS headers)."""
    flat = [part for e in expectations for part in ((*e.condition, e.inner) if isinstance(e, Where) else (e,))]
    return tuple(sorted({
        e.classify.name for e in flat
        if isinstance(e, Expectation) and isinstance(e.classify, response.Header) and not e.classify.upstream
    }))


def with_timer_tick(expectations: Sequence[AnyExpectation], tick_s: float) -> tuple[AnyExpectation, ...]:
    """``expectations`` with every latency lower bound given the mesh's timer tick (``harness.expect.latency``);
    the others unchanged. Called where a check meets its mesh, since the tick is the mesh's."""
    return tuple(_with_tick(e, tick_s) for e in expectations)


def _with_tick(expectation: AnyExpectation, tick_s: float) -> AnyExpectation:
    if isinstance(expectation, latency.QuantileExpectation):
        return replace(expectation, tick_s=tick_s)
    if isinstance(expectation, Where):
        return replace(expectation, inner=_latency_with_tick(expectation.inner, tick_s))
    if isinstance(expectation, Expectation):
        return _latency_with_tick(expectation, tick_s)
    return expectation


def _latency_with_tick(expectation: Expectation, tick_s: float) -> Expectation:
    c = expectation.classify
    if not isinstance(c, latency.LatencyRange) or c.at_least is None:
        return expectation
    if expectation.fractions is None:
        return latency.latency_range(c.at_least, c.below, timers=c.timers, tick_s=tick_s)
    return latency.latency_split(c.at_least, expectation.fractions[c.label], timers=c.timers, tick_s=tick_s)
