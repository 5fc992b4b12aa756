"""Behaviour knobs of the echo app: parsing and per-request resolution (pure, no I/O).

Every knob is documented here, where it is parsed (Istio's echo ``endpoint/http.go`` does the
same). A knob can be given three ways; the first one present wins:

1. a request header (``x-echo-status: 503``),
2. a query parameter with the same name minus ``x-echo-`` (``?status=503``; HTTP only),
3. the instance default, a start flag (``--status 503``).

Knobs:

``status``       ``503`` or ``500:0.3,200:0.7``: the HTTP status to answer with, or several codes
                 with probabilities that sum to 1, drawn independently per request. Codes 200-599.
                 HTTP only (a gRPC call carrying it is refused: use ``grpc-status``).
``delay``        ``250ms`` or ``1.5s`` (a unit is required; at most ``MAX_DELAY_S``): sleep before
                 answering.
``fail-first``   ``N`` or ``N:CODE`` (CODE 200-599, default 503): the first N requests carrying the
                 same ``x-request-id`` fail with CODE (gRPC: UNAVAILABLE); later ones are answered
                 normally. Counted per instance: with several replicas each instance counts on its
                 own, so a retry that moves to another instance sees a fresh count. A request
                 without ``x-request-id`` cannot be counted and is refused.
``grpc-status``  ``UNAVAILABLE``/``unavailable`` or ``14``: the gRPC status to answer with. gRPC only.

A bad value is refused (HTTP 400 / gRPC INVALID_ARGUMENT) with a message naming the knob, the
value and the valid forms (``KnobError``).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from harness.sample_apps.echo import fields

MAX_DELAY_S = 600.0
"""Longest delay a knob may ask for; a longer one is almost always a unit mistake (``250s``)."""

STATUS_FORMS = "a code 200-599 ('503') or codes with probabilities summing to 1 ('500:0.3,200:0.7')"
DELAY_FORMS = f"a duration with unit ms or s ('250ms', '1.5s'), at most {MAX_DELAY_S:g}s"
FAIL_FIRST_FORMS = "a count N ('2') or N:CODE with CODE 200-599 ('2:500')"
GRPC_STATUS_FORMS = "a gRPC status name ('UNAVAILABLE') or number 0-16 ('14')"

DEFAULT_FAIL_CODE = 503

T = TypeVar("T")


class KnobError(ValueError):
    """A knob the app cannot honour. Never leaves the echo app: it becomes a 400 or INVALID_ARGUMENT."""

    def __init__(self, knob: str, message: str) -> None:
        self.knob = knob
        super().__init__(message)

    @classmethod
    def bad_value(cls, knob: str, value: str, forms: str) -> KnobError:
        return cls(knob, f"bad value for echo knob {knob!r}: {value!r}; expected {forms}")

    @classmethod
    def wrong_protocol(cls, knob: str, value: str, protocol: str, instead: str) -> KnobError:
        return cls(knob, f"echo knob {knob!r} ({value!r}) does not apply to {protocol}; use {instead!r}")


@dataclass(frozen=True)
class StatusSpec:
    """HTTP status codes with probabilities; ``choose`` draws one per request."""

    codes: tuple[int, ...]
    cumulative: tuple[float, ...]

    def choose(self, rng: random.Random) -> int:
        if len(self.codes) == 1:
            return self.codes[0]
        u = rng.random()
        for code, edge in zip(self.codes, self.cumulative, strict=True):
            if u < edge:
                return code
        return self.codes[-1]


@dataclass(frozen=True)
class FailFirst:
    """Fail the first ``count`` requests of each request id with HTTP ``code``."""

    count: int
    code: int = DEFAULT_FAIL_CODE


def _http_code(text: str, knob: str, value: str, forms: str) -> int:
    if not text.strip().isdigit():
        raise KnobError.bad_value(knob, value, forms)
    code = int(text)
    if not 200 <= code <= 599:
        raise KnobError.bad_value(knob, value, forms)
    return code


def parse_status(value: str) -> StatusSpec:
    """``503`` or ``500:0.3,200:0.7`` -> StatusSpec (probabilities must sum to 1 within 1e-9)."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 1 and ":" not in parts[0]:
        return StatusSpec((_http_code(parts[0], "status", value, STATUS_FORMS),), (1.0,))
    codes: list[int] = []
    probs: list[float] = []
    for part in parts:
        code_text, sep, prob_text = part.partition(":")
        if not sep:
            raise KnobError.bad_value("status", value, STATUS_FORMS)
        codes.append(_http_code(code_text, "status", value, STATUS_FORMS))
        try:
            prob = float(prob_text)
        except ValueError:
            raise KnobError.bad_value("status", value, STATUS_FORMS) from None
        if not (math.isfinite(prob) and 0.0 <= prob <= 1.0):
            raise KnobError.bad_value("status", value, STATUS_FORMS)
        probs.append(prob)
    if abs(math.fsum(probs) - 1.0) > 1e-9:
        raise KnobError.bad_value("status", value, STATUS_FORMS + f" (these sum to {math.fsum(probs):g})")
    cumulative = tuple(math.fsum(probs[: i + 1]) for i in range(len(probs)))
    return StatusSpec(tuple(codes), cumulative)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*$")


def parse_delay(value: str) -> float:
    """``250ms`` / ``1.5s`` -> seconds."""
    m = _DURATION.match(value)
    if not m:
        raise KnobError.bad_value("delay", value, DELAY_FORMS)
    seconds = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    if seconds > MAX_DELAY_S:
        raise KnobError.bad_value("delay", value, DELAY_FORMS)
    return seconds


def parse_fail_first(value: str) -> FailFirst:
    """``N`` or ``N:CODE`` -> FailFirst."""
    count_text, sep, code_text = value.strip().partition(":")
    if not count_text.isdigit():
        raise KnobError.bad_value("fail-first", value, FAIL_FIRST_FORMS)
    code = _http_code(code_text, "fail-first", value, FAIL_FIRST_FORMS) if sep else DEFAULT_FAIL_CODE
    return FailFirst(int(count_text), code)


_GRPC_BY_NAME = {c.name: c for c in grpc.StatusCode}
_GRPC_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


def parse_grpc_status(value: str) -> grpc.StatusCode:
    """``UNAVAILABLE`` (any case) or ``14`` -> grpc.StatusCode."""
    text = value.strip()
    code = _GRPC_BY_NUMBER.get(int(text)) if text.isdigit() else _GRPC_BY_NAME.get(text.upper())
    if code is None:
        raise KnobError.bad_value("grpc-status", value, GRPC_STATUS_FORMS)
    return code


@dataclass(frozen=True)
class _Knob(Generic[T]):
    header: str  # request header, from fields.py
    parse: Callable[[str], T]

    @property
    def name(self) -> str:
        """The knob's name: its query parameter and, with ``--``, its start flag."""
        return self.header.removeprefix(fields.KNOB_PREFIX)

    def raw(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        value = headers.get(self.header)
        return query.get(self.name) if value is None else value


# Typed as the Knobs field each one fills (None = not set), so that _pick's default matches.
STATUS: _Knob[StatusSpec | None] = _Knob(fields.KNOB_STATUS, parse_status)
DELAY: _Knob[float] = _Knob(fields.KNOB_DELAY, parse_delay)
FAIL_FIRST: _Knob[FailFirst | None] = _Knob(fields.KNOB_FAIL_FIRST, parse_fail_first)
GRPC_STATUS: _Knob[grpc.StatusCode | None] = _Knob(fields.KNOB_GRPC_STATUS, parse_grpc_status)


@dataclass(frozen=True)
class Knobs:
    """The behaviour for one request (or, as start flags, an instance's defaults). None = not set."""

    status: StatusSpec | None = None
    delay_s: float = 0.0
    fail_first: FailFirst | None = None
    grpc_status: grpc.StatusCode | None = None

    @classmethod
    def from_flags(cls, status: str | None, delay: str | None, fail_first: str | None, grpc_status: str | None) -> Knobs:
        """Instance defaults from start flags (raises KnobError like a request would)."""
        return cls(
            status=parse_status(status) if status is not None else None,
            delay_s=parse_delay(delay) if delay is not None else 0.0,
            fail_first=parse_fail_first(fail_first) if fail_first is not None else None,
            grpc_status=parse_grpc_status(grpc_status) if grpc_status is not None else None,
        )


def _pick(knob: _Knob[T], headers: Mapping[str, str], query: Mapping[str, str], default: T) -> T:
    raw = knob.raw(headers, query)
    return default if raw is None else knob.parse(raw)


def resolve_http(headers: Mapping[str, str], query: Mapping[str, str], defaults: Knobs) -> Knobs:
    """Knobs for one HTTP request. ``headers`` must be case-insensitive or lower-cased."""
    if not query and not any(name.startswith(fields.KNOB_PREFIX) for name in headers):
        return defaults  # the common case, kept cheap: the echo app's throughput bounds every load check
    wrong = GRPC_STATUS.raw(headers, query)
    if wrong is not None:
        raise KnobError.wrong_protocol(GRPC_STATUS.name, wrong, "HTTP requests", STATUS.name)
    return Knobs(
        status=_pick(STATUS, headers, query, defaults.status),
        delay_s=_pick(DELAY, headers, query, defaults.delay_s),
        fail_first=_pick(FAIL_FIRST, headers, query, defaults.fail_first),
    )


def resolve_grpc(metadata: Mapping[str, str], defaults: Knobs) -> Knobs:
    """Knobs for one gRPC call, from its metadata (no query string in gRPC)."""
    wrong = STATUS.raw(metadata, {})
    if wrong is not None:
        raise KnobError.wrong_protocol(STATUS.name, wrong, "gRPC calls", GRPC_STATUS.name)
    return Knobs(
        delay_s=_pick(DELAY, metadata, {}, defaults.delay_s),
        fail_first=_pick(FAIL_FIRST, metadata, {}, defaults.fail_first),
        grpc_status=_pick(GRPC_STATUS, metadata, {}, defaults.grpc_status),
    )


class AttemptCounter:
    """How many requests this instance has seen per request id, for ``fail-first``.

    Bounded: it remembers the ``capacity`` most recently counted ids and forgets older ones (a
    forgotten id starts again from 1). Only requests that carry ``fail-first`` are counted.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._seen: dict[str, int] = {}

    def next_attempt(self, request_id: str) -> int:
        """Count one more request for ``request_id``; return its 1-based attempt number."""
        attempt = self._seen.pop(request_id, 0) + 1
        self._seen[request_id] = attempt  # re-insert: dicts keep insertion order, oldest first
        if len(self._seen) > self._capacity:
            del self._seen[next(iter(self._seen))]
        return attempt


def is_failing_attempt(knobs: Knobs, request_id: str | None, counter: AttemptCounter) -> bool:
    """Whether ``fail-first`` says this request must fail (counting it when the knob is set)."""
    if knobs.fail_first is None:
        return False
    if not request_id:
        raise KnobError(FAIL_FIRST.name, f"echo knob 'fail-first' needs an {fields.REQUEST_ID_HEADER} header to count "
                        "attempts; send one (Envoy adds it on every request through the mesh)")
    return counter.next_attempt(request_id) <= knobs.fail_first.count
