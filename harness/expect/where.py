"""``expect_where``: an every-response expectation restricted to the responses that match a filter.

A mixed batch has no one value for every response, but each kind of response in it may: when a
circuit breaker admits some requests and refuses the rest, every 503 is Envoy's refusal (flag
``UO``, ``x-envoy-overloaded: "true"``) and every response without a flag is the app's 200. A
``Where`` says "every response matching ``condition`` has ``inner``"; the condition is written in
the ``expect`` vocabulary, one value per key (``{status: 503}``, ``{flags: "-"}``), all of which
must hold.

A condition that matches nothing would make such a claim true of no response at all, and a typo in
it (``status: 530``) would then pass silently. So at least one matching response is part of the
expectation: a check whose filter matched nothing fails and says so. Judging is in
``harness.verdict.WhereJudge``; this module is pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.expect.base import Expectation, Need, Sample


@dataclass(frozen=True)
class Where:
    """``inner`` (an every-response expectation) judged on the responses where every expectation in
    ``condition`` (each also every-response, used as a predicate) holds."""

    condition: tuple[Expectation, ...]
    inner: Expectation

    def __post_init__(self) -> None:
        if not self.condition or any(e.every is None for e in (*self.condition, self.inner)):
            raise ValueError("a Where needs a non-empty condition and every-response expectations only")

    @property
    def field(self) -> str:
        """``flags where status=503``: the inner key and the filter, as the report names it."""
        return f"{self.inner.field} where {self.condition_text}"

    @property
    def condition_text(self) -> str:
        return " and ".join(f"{e.field}={e.every}" for e in self.condition)

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset().union(self.inner.needs, *(e.needs for e in self.condition))

    def matches(self, sample: Sample) -> bool:
        return all(e.category(sample) == e.every for e in self.condition)

    def describe(self) -> str:
        return f"{self.inner.describe()} where {self.condition_text}"

