"""``upstream``: what the app received for each request (path, host, method, headers), from its echo.

The echo is the app's own account of the request it got, after every rewrite, header change and
authority change the route made; it rides back on each response when ``SendSpec.include_echo``
is set (the runner sets it when a check uses ``upstream``). A response that no app produced (a
fault abort, a redirect) has no echo: its category is ``(no echo)``. Headers the app received are
``response.header(name, value, upstream=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.expect.base import (
    NO_RESPONSE,
    Classifier,
    Expectation,
    Need,
    Sample,
    answered,
)
from harness.expect.response import NO_ECHO

EchoField = Literal["path", "host", "method"]


@dataclass(frozen=True)
class UpstreamField(Classifier):
    name: EchoField

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset({"echo"})

    def category(self, sample: Sample) -> str:
        if not answered(sample.obs):
            return NO_RESPONSE
        echo = sample.obs.echo
        return NO_ECHO if echo is None else str(getattr(echo, self.name))


def upstream(name: EchoField, value: str) -> Expectation:
    """Every request reached the app with this ``path`` (with its query), ``host`` or ``method``."""
    return Expectation(f"upstream.{name}", UpstreamField(name), every=value)
