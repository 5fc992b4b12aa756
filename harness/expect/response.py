"""Properties of the response the caller got: ``version``, ``status``, ``grpc_status``, ``flags``, ``headers``, ``body``.

Each constructor takes what the case author wrote (one value for "every response", a mapping of
fractions for a split) and returns an ``Expectation``; Istio's checkers read the same way
(``status(200)``, ``version({"v1": 0.9, "v2": 0.1})``). Values are checked by ``harness.expect.schema``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.expect.base import (
    ABSENT,
    NO_RESPONSE,
    NO_VERSION,
    Classifier,
    Expectation,
    Need,
    Sample,
    answered,
)

#: gRPC status names by number (grpc.StatusCode, without importing grpc into judging).
GRPC_STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)

#: Envoy's response flags (``%RESPONSE_FLAGS%``, Envoy 1.38), short form.
ENVOY_FLAGS = (
    "DC", "DF", "DI", "DO", "DPE", "DR", "DT", "FI", "IH", "LH", "LR", "NC", "NFCF", "NR", "OM", "RFCF",
    "RL", "RLSE", "SI", "UAEX", "UC", "UDO", "UF", "UH", "UMSDR", "UO", "UPE", "UR", "URX", "UT",
)

#: Category of a response that carries no Envoy response flag.
NO_FLAG = "-"
#: Category of a response that carries no echo (Envoy answered itself, so no app saw the request).
NO_ECHO = "(no echo)"
#: Category of a request whose response carried no gRPC status (an HTTP reply).
NO_GRPC_STATUS = "none"


@dataclass(frozen=True)
class Version(Classifier):
    def category(self, sample: Sample) -> str:
        """A request that got no response at all is not "Envoy answered": ``version: none`` must not pass on it."""
        if not answered(sample.obs):
            return NO_RESPONSE
        return sample.obs.version or NO_VERSION


@dataclass(frozen=True)
class Status(Classifier):
    def category(self, sample: Sample) -> str:
        return str(sample.obs.status) if answered(sample.obs) else NO_RESPONSE


@dataclass(frozen=True)
class GrpcStatus(Classifier):
    def category(self, sample: Sample) -> str:
        code = sample.obs.grpc_status
        if code is None:
            return NO_GRPC_STATUS if answered(sample.obs) else NO_RESPONSE
        return GRPC_STATUS_NAMES[code] if 0 <= code < len(GRPC_STATUS_NAMES) else str(code)


@dataclass(frozen=True)
class Flags(Classifier):
    def category(self, sample: Sample) -> str:
        return flags_category(sample.obs.flags)


@dataclass(frozen=True)
class Header(Classifier):
    """A header's value (``present``: only whether it is there) on the response, or with
    ``upstream`` on the request as the app received it (its echo; ``(no echo)`` when no app answered)."""

    name: str
    present: bool = False
    upstream: bool = False

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset({"echo"}) if self.upstream else frozenset()

    def category(self, sample: Sample) -> str:
        obs = sample.obs
        if not answered(obs):
            return NO_RESPONSE
        if self.upstream and obs.echo is None:
            return NO_ECHO
        value = (obs.echo.headers if self.upstream and obs.echo else obs.headers).get(self.name)
        if value is None:
            return ABSENT
        return "present" if self.present else value


#: How much of each response body a body check reads: Envoy's local replies and the echo app's
#: answers are far smaller, and the bound keeps a check's records small (10,000 requests: at most
#: 40 MB) whatever an app returns.
BODY_BYTES = 4 * 1024
#: Category of a request whose observation carries no body (an HTTP body is kept only when asked for).
NO_BODY = "(no body)"


@dataclass(frozen=True)
class Body(Classifier):
    """Whether the response body (its first ``BODY_BYTES``) contains ``text``, or with ``regex``
    whether ``text`` matches somewhere in it (Python ``re.search``)."""

    text: str
    regex: bool = False

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset({"body"})

    @property
    def shown(self) -> str:
        return f"/{self.text}/" if self.regex else repr(self.text)

    @property
    def wanted(self) -> str:
        return f"{'matches' if self.regex else 'contains'} {self.shown}"

    def category(self, sample: Sample) -> str:
        body = sample.obs.body
        if not answered(sample.obs):
            return NO_RESPONSE
        if body is None:
            return NO_BODY
        found = re.search(self.text, body) is not None if self.regex else self.text in body
        return self.wanted if found else f"does not {'match' if self.regex else 'contain'} {self.shown}"

    def detail(self, sample: Sample) -> str:
        """The category and the body's start, which is what a reader needs to see why it did not match."""
        body = sample.obs.body
        shown = "" if body is None else f" (body {body[:120]!r}{'...' if len(body) > 120 else ''})"
        return self.category(sample) + shown


def body(text: str, *, regex: bool = False) -> Expectation:
    """Every response body contains ``text`` (``regex``: matches the pattern somewhere in it)."""
    classify = Body(text, regex)
    return Expectation("body", classify, every=classify.wanted)


def flags_category(flags: tuple[str, ...] | list[str]) -> str:
    """Flags as one category, sorted so that "FI,DI" and "DI,FI" are the same: ``DI,FI``, or ``-``."""
    return ",".join(sorted(flags)) if flags else NO_FLAG


def grpc_status_name(value: str | int) -> str | None:
    """``UNAVAILABLE``, ``unavailable`` or ``14`` -> ``UNAVAILABLE``; None when it is no gRPC status."""
    if isinstance(value, int):
        return GRPC_STATUS_NAMES[value] if 0 <= value < len(GRPC_STATUS_NAMES) else None
    name = value.strip().upper()
    if name.isdigit():
        return grpc_status_name(int(name))
    return name if name in GRPC_STATUS_NAMES else None


#: What a case wrote for one property: one value (every response), a list (every response one of
#: them, each at least once) or a mapping of fractions (a split).
Written = str | Sequence[str] | Mapping[str, float]


def _one_or_split(field: str, classify: Classifier, value: Written) -> Expectation:
    if isinstance(value, str):
        return Expectation(field, classify, every=value)
    if isinstance(value, Mapping):
        return Expectation(field, classify, fractions=dict(value))
    return Expectation(field, classify, one_of=tuple(value))


def version(value: Written) -> Expectation:
    """``version("v2")``: every response from v2; ``version({"v1": 0.9, "v2": 0.1})``: a split;
    ``version(["v1", "v2"])``: every response from one of them, and each answered; ``"none"``: Envoy answered itself."""
    return _one_or_split("version", Version(), value)


def status(value: Written) -> Expectation:
    """``status("503")``, ``status(["200", "503"])`` (every response one of them, each seen) or
    ``status({"200": 0.5, "503": 0.5})``."""
    return _one_or_split("status", Status(), value)


def grpc_status(value: str | Mapping[str, float]) -> Expectation:
    """``grpc_status("UNAVAILABLE")``; categories are status names (``none`` = no gRPC status)."""
    return _one_or_split("grpc_status", GrpcStatus(), value)


def flags(value: str | Mapping[str, float]) -> Expectation:
    """``flags("UO")``, ``flags("DI,FI")`` or ``flags({"FI": 0.5, "-": 0.5})`` (``-``: no flag)."""
    return _one_or_split("flags", Flags(), value)


def header(name: str, value: str | bool | None, *, upstream: bool = False) -> Expectation:
    """Every response has header ``name`` with ``value``; ``True``: with any value; ``None`` or
    ``False``: absent. With ``upstream``, the header of the request the app received."""
    name = name.lower()
    field = f"{'upstream.' if upstream else ''}headers.{name}"
    if value is True:
        return Expectation(field, Header(name, present=True, upstream=upstream), every="present")
    if value is None or value is False:
        return Expectation(field, Header(name, upstream=upstream), every=ABSENT)
    return Expectation(field, Header(name, upstream=upstream), every=value)
