"""What a ForwardEcho request asks for, validated; and what every protocol's sender shares.

``ForwardRequest.from_json`` checks the /forward body and reports every problem at once
(answered as 400). ``Sender`` is the seam between the batch executor (``forward.py``) and one
protocol (``forward_http.py``, ``forward_grpc.py``).

A record is a JSON object with keys ``index, request_id, status, latency_s`` always, and
``service, version, instance, config_version, grpc_status, error, headers, echo`` when known;
``body`` (the first ``capture_body`` bytes of an HTTP response body, as text) when asked for.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from harness.sample_apps.echo import fields

MAX_COUNT = 1_000_000
MAX_CONCURRENCY = 4096
MAX_DEADLINE_S = 3600.0
MAX_CAPTURE_BODY = 1 << 20

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2: methods and header names
_BAD_IN_VALUE = re.compile(r"[\x00\r\n]")
_BAD_IN_PATH = re.compile(r"[^\x21-\x7e]")  # outside printable ASCII (a range up to U+10FFFF compiles 80x slower)
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
"""Request headers ForwardEcho sets itself (from ``body``); a caller's own would contradict the body."""

Record = dict[str, Any]
HeaderCycle = tuple[tuple[str, tuple[str, ...]], ...]
"""Headers whose value changes from request to request: (name, its values) pairs."""
ForwardProtocol = Literal["http", "grpc"]
PROTOCOLS: tuple[ForwardProtocol, ...] = ("http", "grpc")


class ForwardSpecError(ValueError):
    """The /forward request body is invalid; the message lists every problem (answered as 400)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid /forward request: " + "; ".join(problems))


@dataclass(frozen=True)
class ForwardRequest:
    """A validated /forward request. Field meanings are in the README (``POST /forward``)."""

    url: str
    connect_to: str | None
    source_ip: str | None
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    count: int
    concurrency: int
    rate: float | None
    protocol: ForwardProtocol
    new_connection: bool
    timeout_s: float
    deadline_s: float
    include_echo: bool
    grpc_method: str
    capture_headers: frozenset[str]
    capture_body: int = 0
    headers_cycle: HeaderCycle = ()

    @property
    def authority(self) -> str:
        """The URL's host[:port], exactly as written: the Host header / gRPC authority."""
        return urllib.parse.urlsplit(self.url).netloc

    @property
    def target(self) -> str:
        """Where to open the TCP connection: ``connect_to``, else the URL's authority."""
        return self.connect_to or self.authority

    @property
    def path_and_query(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForwardRequest:
        problems: list[str] = []
        known = {
            "url", "connect_to", "source_ip", "method", "headers", "body", "count", "concurrency", "rate", "protocol",
            "new_connection", "timeout_s", "deadline_s", "include_echo", "grpc_method", "capture_headers",
            "capture_body", "headers_cycle",
        }
        problems += [f"unknown field {k!r} (known: {', '.join(sorted(known))})" for k in data if k not in known]

        def get(name: str, kind: type | tuple[type, ...], default: Any, what: str) -> Any:
            value = data.get(name, default)
            if value is default:
                return value
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
                problems.append(f"{name}: expected {what}, got {value!r}")
                return default
            return value

        url = get("url", str, None, "a URL string like 'http://reviews:9080/path'")
        if url is None:
            problems.append("url: required, e.g. 'http://reviews:9080/path'")
            url = "http://invalid/"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "grpc") or not parts.netloc:
            problems.append(f"url: expected http://HOST[:PORT]/PATH (or grpc://HOST:PORT), got {url!r}")
        elif _BAD_IN_PATH.search(url):
            problems.append(f"url: spaces, control and non-ASCII characters must be percent-encoded, got {url!r}")
        elif not _has_valid_port(parts):
            problems.append(f"url: expected a port 1..65535 after the host, got {url!r}")
        connect_to = get("connect_to", str, None, "'HOST:PORT' or null")
        if connect_to is not None:
            host, sep, port = connect_to.rpartition(":")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                problems.append(f"connect_to: expected 'HOST:PORT' like '127.0.0.1:15001' or null, got {connect_to!r}")
        source_ip = get("source_ip", str, None, "a loopback address like '127.0.0.2' or null")
        if source_ip is not None and not _is_loopback(source_ip):
            problems.append(f"source_ip: expected a loopback address like '127.0.0.2' (traffic stays on this machine), got {source_ip!r}")
        method = get("method", str, "GET", "an HTTP method string")
        if not _TOKEN.fullmatch(method):
            problems.append(f"method: expected an HTTP method like 'GET' (letters, digits, no spaces), got {method!r}")
            method = "GET"
        raw_headers = get("headers", list, [], "a list of [name, value] pairs")
        headers: list[tuple[str, str]] = []
        for i, pair in enumerate(raw_headers):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                problems.append(f"headers[{i}]: expected a [name, value] pair of strings, got {pair!r}")
            elif (problem := _header_problem(pair[0], pair[1])) is not None:
                problems.append(f"headers[{i}]: {problem}")
            else:
                headers.append((pair[0], pair[1]))
        raw_cycle = get("headers_cycle", list, [], "a list of [name, [value, ...]] pairs")
        cycle: list[tuple[str, tuple[str, ...]]] = []
        given = {name.lower() for name, _ in headers}
        for i, pair in enumerate(raw_cycle):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], list)
                    and pair[1] and all(isinstance(v, str) for v in pair[1])):
                problems.append(f"headers_cycle[{i}]: expected a [name, [value, ...]] pair (at least one value), "
                                f"got {pair!r}")
                continue
            name, values = pair[0], tuple(pair[1])
            problem = next((p for p in (_header_problem(name, v) for v in values) if p is not None), None)
            if name.lower() in given:
                problem = f"{name!r} is also in 'headers'; give it in one of them"
            elif name.lower() in (fields.REQUEST_ID_HEADER, "host"):
                problem = f"{name!r} cannot vary per request (ForwardEcho gives each request its own request id, " \
                          "and the Host is the URL's, or a fixed one in 'headers')"
            if problem is not None:
                problems.append(f"headers_cycle[{i}]: {problem}")
            else:
                given.add(name.lower())
                cycle.append((name, values))
        body_b64 = get("body", str, "", "base64 text")
        try:
            body = base64.b64decode(body_b64, validate=True)
        except binascii.Error:
            problems.append("body: expected base64 text")
            body = b""
        count = get("count", int, 1, f"an integer 1..{MAX_COUNT}")
        if not 1 <= count <= MAX_COUNT:
            problems.append(f"count: expected an integer 1..{MAX_COUNT}, got {count}")
        concurrency = get("concurrency", int, 16, f"an integer 1..{MAX_CONCURRENCY}")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            problems.append(f"concurrency: expected an integer 1..{MAX_CONCURRENCY}, got {concurrency}")
        rate = get("rate", (int, float), None, "requests per second > 0, or null")
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            problems.append(f"rate: expected requests per second > 0, or null, got {rate}")
        protocol = get("protocol", str, "http", "'http' or 'grpc'")
        if protocol not in PROTOCOLS:
            problems.append(f"protocol: expected one of {list(PROTOCOLS)}, got {protocol!r}")
        if protocol == "grpc" and source_ip is not None:
            problems.append("source_ip: only HTTP traffic can choose its source address; leave it out for gRPC")
        timeout_s = get("timeout_s", (int, float), 30.0, "seconds > 0")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            problems.append(f"timeout_s: expected seconds > 0, got {timeout_s}")
        deadline_s = get("deadline_s", (int, float), 120.0, f"seconds in (0, {MAX_DEADLINE_S:g}]")
        if not (math.isfinite(deadline_s) and 0 < deadline_s <= MAX_DEADLINE_S):
            problems.append(f"deadline_s: expected seconds in (0, {MAX_DEADLINE_S:g}], got {deadline_s}")
        grpc_method = get("grpc_method", str, "/echo.Echo/Call", "'/package.Service/Method'")
        if not grpc_method.startswith("/"):
            problems.append(f"grpc_method: expected '/package.Service/Method', got {grpc_method!r}")
        capture = get("capture_headers", list, [], "a list of header names")
        if not all(isinstance(h, str) for h in capture):
            problems.append(f"capture_headers: expected a list of header names, got {capture!r}")
            capture = []
        capture_body = get("capture_body", int, 0, f"bytes of each response body to keep, 0..{MAX_CAPTURE_BODY}")
        if not 0 <= capture_body <= MAX_CAPTURE_BODY:
            problems.append(f"capture_body: expected bytes of each response body to keep, 0..{MAX_CAPTURE_BODY}, "
                            f"got {capture_body}")
        new_connection = get("new_connection", bool, False, "true or false")
        include_echo = get("include_echo", bool, False, "true or false")
        if problems:
            raise ForwardSpecError(problems)
        return cls(
            url=url, connect_to=connect_to, source_ip=source_ip, method=method.upper(), headers=tuple(headers), body=body,
            count=count, concurrency=concurrency, rate=None if rate is None else float(rate), protocol=protocol,
            new_connection=new_connection, timeout_s=float(timeout_s), deadline_s=float(deadline_s),
            include_echo=include_echo, grpc_method=grpc_method,
            capture_headers=frozenset(h.lower() for h in capture), capture_body=capture_body,
            headers_cycle=tuple(cycle),
        )


def cycled_headers(cycle: HeaderCycle, index: int) -> list[tuple[str, str]]:
    """Request ``index``'s value of each cycled header: the ``index mod n``-th of its n values. The one rule
    for ForwardEcho, the harness's ``SendSpec`` and Locust's load requests alike."""
    return [(name, values[index % len(values)]) for name, values in cycle]


def _header_problem(name: str, value: str) -> str | None:
    """Why a request header cannot be sent as given, or None."""
    if not _TOKEN.fullmatch(name):
        return f"expected a header name (letters, digits, '-', no spaces or ':'), got {name!r}"
    if name.lower() in FRAMING_HEADERS:
        return f"{name!r} is set by ForwardEcho from 'body'; remove the header"
    if _BAD_IN_VALUE.search(value) or not value.isascii():
        return f"the value of {name!r} must be ASCII without CR, LF or NUL, got {value!r}"
    return None


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _has_valid_port(parts: urllib.parse.SplitResult) -> bool:
    try:
        return parts.port != 0
    except ValueError:  # not a number, or out of range
        return False


def is_selected_header(name: str, capture: frozenset[str]) -> bool:
    """Response headers kept in a record: every ``x-envoy-*``, ``server``, ``content-type``, and ``capture``."""
    return name.startswith("x-envoy-") or name in ("server", "content-type") or name in capture


class HeaderSelector:
    """``select(headers)``: the headers ``is_selected_header`` keeps, in their order (pure).

    Why a class: the responses of a batch carry the same header names in the same order, so the
    names to keep are worked out once per distinct tuple of names (at most ``MAX_NAME_SETS`` kept;
    past that they are worked out every time) instead of testing every header of every response.
    """

    MAX_NAME_SETS = 64

    __slots__ = ("_capture", "_kept")

    def __init__(self, capture: frozenset[str]) -> None:
        self._capture = capture
        self._kept: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, headers: Mapping[str, str]) -> dict[str, str]:
        names = tuple(headers)
        kept = self._kept.get(names)
        if kept is None:
            kept = tuple(name for name in names if is_selected_header(name, self._capture))
            if len(self._kept) < self.MAX_NAME_SETS:
                self._kept[names] = kept
        return {name: headers[name] for name in kept}


class Sender(AbstractAsyncContextManager["Sender"]):
    """One protocol's way to send request ``index`` of a batch and describe what came back.

    ``send`` never raises for a failed request: failures are records with ``status`` 0 and ``error``.
    """

    async def send(self, index: int) -> Record:
        raise NotImplementedError


class RequestIds:
    """Fresh ``x-request-id`` values for one batch: ``<random 96-bit hex>-<index>``.

    Why not uuid4: ``str(uuid.uuid4())`` costs about 3.5 us, 30x this, on every request of a batch.
    Unique within a batch by the index; across batches and instances the random prefix makes a
    collision among n batches as likely as 2**-97 * n**2 (about 1e-17 for a million batches).
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(12).hex() + "-"

    def __call__(self, index: int) -> str:
        return f"{self._prefix}{index}"
