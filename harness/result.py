"""A run's result: one typed record per check, and the one codec of the JSON result document.

The judges and the runner write these records (``Evidence`` per expectation, ``Verdict``, ``Traffic``,
``CheckResult``, ``RunResult``); the terminal table, the HTML and Markdown reports and the upgrade gate
read them, whether the run was just made or decoded from a stored document. This module sits below
``runner`` and ``report`` and imports neither, so the writer and the readers share it without reaching
into each other. Pure, and free of scipy: ``mesh-harness send`` and the gate's option parsing import it, and
scipy takes seconds to import on a busy machine.

``encode(run)`` makes the JSON document and ``decode(document, source)`` reads it back:
``decode(encode(run), ...) == run``. A key is its field's name except where ``RENAMED`` says otherwise.
Bump ``SCHEMA_VERSION`` on any change a reader could trip over (a renamed or re-typed key); a key added
without a bump is optional when read (``tests/unit/report/test_report_result.py`` lists those keys and
what a document without them decodes to).

The traffic record is the behaviour fingerprint the upgrade gate compares. A verdict alone would hide
changes (a check on ``status`` says nothing of which version answered, and an every-request judge stops
counting at its first counterexample), so every check also records, over all the responses it judged:

* the distribution of versions, statuses and Envoy response flags;
* the categories of each of its per-request expectations on other fields (attempts, mirror copies,
  what the upstream saw...), keyed by the expectation's description;
* the latencies: quantiles for the gate, a histogram for the HTML report.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from harness.errors import Issue, ValidationError
from harness.expect import AnyExpectation, Expectation, Sample
from harness.mesh.base import MeshInfo, Observation
from harness.mesh.forensics import Forensics
from harness.settings import StatSettings

CheckOutcome = Literal["pass", "fail", "inconclusive", "error"]
VerdictOutcome = Literal["pass", "fail", "inconclusive"]
EvidenceKind = Literal["fraction", "every", "quantile", "aggregate"]
OUTCOMES: tuple[CheckOutcome, ...] = ("pass", "fail", "inconclusive", "error")


@dataclass(frozen=True)
class Counterexample:
    """The first request that broke an every-request expectation. ``index`` is its position
    (from 1) among the check's counted responses, across batches; ``request_id`` joins it to app
    logs; ``got`` is what it had (its category, or more: ``below 200ms (153ms)``)."""

    index: int
    request_id: str
    got: str
    status: int
    error: str | None


@dataclass(frozen=True)
class Evidence:
    """What one expectation saw and concluded; everything a report prints about it.

    ``summary`` is the observed-vs-expected text for kinds whose numbers are not fractions
    (quantiles, aggregates); ``counts`` then holds their raw numbers (stat deltas per counter,
    responses per instance).
    """

    expectation: str
    field: str
    kind: EvidenceKind
    outcome: VerdictOutcome
    n: int
    counts: Mapping[str, int]
    expected: Mapping[str, float]
    observed: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]
    level: float | None
    rule: str
    alpha: float
    power: float
    delta: Mapping[str, float] = dataclasses.field(default_factory=dict)
    leak: float | None = None
    counterexample: Counterexample | None = None
    summary: str | None = None
    bounds_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Latency expectations: their bounds in seconds (``at_least``, ``below``), for plots."""


@dataclass(frozen=True)
class Verdict:
    outcome: VerdictOutcome
    evidence: tuple[Evidence, ...]

    @property
    def requests(self) -> int:
        return max((e.n for e in self.evidence), default=0)


LATENCY_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
"""The latency quantiles reports show of measured traffic: the result document's, the gate's (it compares
some of them), ``mesh-harness send``'s (which adds the maximum)."""

BINS_PER_DECADE = 20
"""Latency histogram bins are log-spaced on one fixed grid (edges 10^(k/20) s, 12% wide), so two runs' histograms line up."""


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The empirical q-quantile of sorted values by the nearest-rank rule: the value at rank ceil(q n) (q=1 is the
    maximum). What reports show of measured latencies; the judges' quantile tests live in ``harness.stats``."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Latency:
    """The judged responses' latencies: ``LATENCY_QUANTILES`` and the maximum, and the histogram on the fixed grid."""

    quantiles_s: Mapping[str, float]
    max_s: float
    histogram: tuple[tuple[float, float, int], ...]
    """(low_s, high_s, count) of the non-empty bins, fastest first."""

    @classmethod
    def of(cls, latencies_s: Iterable[float]) -> Latency | None:
        """None without latencies."""
        ordered = sorted(latencies_s)
        if not ordered:
            return None
        bins: Counter[int] = Counter(_bin(v) for v in ordered)
        return cls({name: nearest_rank(ordered, q) for name, q in LATENCY_QUANTILES.items()}, ordered[-1],
                   tuple((_edge(k), _edge(k + 1), bins[k]) for k in sorted(bins)))


_FLOOR_BIN = -100  # 10 microseconds: anything faster (or a clock glitch at 0) lands in the first bin


def _bin(seconds: float) -> int:
    if seconds <= 0:
        return _FLOOR_BIN
    return max(_FLOOR_BIN, math.floor(math.log10(seconds) * BINS_PER_DECADE))


def _edge(k: int) -> float:
    return float(f"{10 ** (k / BINS_PER_DECADE):.6g}")


DISTRIBUTIONS = ("version", "status", "flags")
"""The per-request categories every check records; an expectation on one of these fields adds nothing."""
_COVERED = {*DISTRIBUTIONS, "grpc_status"}

NO_RESPONSE = "no response"


@dataclass(frozen=True)
class Traffic:
    """The judged responses of one check: how many, category counts per distribution, and their latencies."""

    requests: int
    distributions: Mapping[str, Mapping[str, int]]
    latency: Latency | None


class TrafficTally:
    """Accumulates a check's judged samples batch by batch (the runner's side of ``Traffic``)."""

    def __init__(self, expectations: Sequence[AnyExpectation] = ()) -> None:
        self._extra = {e.describe(): e for e in expectations if isinstance(e, Expectation) and e.field not in _COVERED}
        self._counts: dict[str, Counter[str]] = {name: Counter() for name in [*DISTRIBUTIONS, *self._extra]}
        self._latencies: list[float] = []

    def add(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            for name in DISTRIBUTIONS:
                self._counts[name][category(sample.obs, name)] += 1
            for name, expectation in self._extra.items():
                self._counts[name][expectation.category(sample)] += 1
            self._latencies.append(sample.obs.latency_s)

    def freeze(self) -> Traffic:
        return Traffic(len(self._latencies), {k: dict(sorted(v.items())) for k, v in self._counts.items()},
                       Latency.of(self._latencies))


def category(obs: Observation, distribution: str) -> str:
    """``v1`` / ``none``; ``200`` / ``grpc 14`` / ``no response``; ``UF,URX`` / ``-``."""
    if distribution == "version":
        return obs.version or "none"
    if distribution == "status":
        if obs.grpc_status is not None:
            return f"grpc {obs.grpc_status}"
        return str(obs.status) if obs.status else NO_RESPONSE
    return ",".join(obs.flags) or "-"


@dataclass(frozen=True)
class CheckResult:
    """One check of one run. ``verdict`` is None exactly when the check could not run (``outcome`` error, with
    ``error`` saying why); otherwise its outcome is the check's (the document keeps one, ``decode`` relies on it)."""

    case: str
    check: str
    file: str
    line: int
    outcome: CheckOutcome
    verdict: Verdict | None
    requests: int
    stale: int
    """Responses re-sent because an older config stamped them."""
    seconds: float
    error: str | None = None
    traffic: Traffic | None = None
    """Versions, statuses, flags and latencies of the responses judged (the gate's fingerprint)."""
    case_apply_s: float | None = None
    """Seconds the case's deploy + apply took (ACK waits included); once per case, the same on each of its
    checks; None when the apply failed. With ``case_revert_s`` it is what a case costs besides its checks."""
    case_revert_s: float | None = None
    """Seconds the case's revert took (once per case, the same on each of its checks)."""
    forensics: Forensics | None = None
    """For a check that failed or was inconclusive: what the client's proxy held for the host then, and log tails."""

    def __post_init__(self) -> None:
        if (self.verdict is None) != (self.outcome == "error") or (self.verdict and self.verdict.outcome != self.outcome):
            raise ValueError(f"check {self.check!r}: outcome {self.outcome} with verdict "
                             f"{self.verdict and self.verdict.outcome}; an error has no verdict, any other outcome is its verdict's")


@dataclass(frozen=True)
class RunResult:
    """A run: the mesh it ran on (None when unknown), the settings that judged it, its seconds, its checks in order."""

    mesh: MeshInfo | None
    settings: StatSettings
    seconds: float
    checks: tuple[CheckResult, ...]

    @property
    def summary(self) -> dict[CheckOutcome, int]:
        return {k: sum(1 for c in self.checks if c.outcome == k) for k in OUTCOMES}


SCHEMA_VERSION = 2

RENAMED = {"stale": "stale_responses", "n": "requests", "intervals": "interval"}
"""Field name -> document key, where they differ. The keys are those of the first documents; renaming them now
would bump the schema and orphan every stored result for a reader's gain of nothing."""

Json = Mapping[str, Any]
_R = TypeVar("_R")


def encode(run: RunResult) -> dict[str, Any]:
    """The result document: JSON-ready (plain dicts, lists and numbers, unrounded so that it decodes to ``run``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "mesh": _plain(run.mesh),
        "settings": _plain(run.settings),
        "seconds": run.seconds,
        "summary": run.summary,
        "checks": [_check_json(c) for c in run.checks],
    }


def write_result(path: str | Path, run: RunResult) -> None:
    Path(path).write_text(json.dumps(encode(run), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def decode(document: Json, source: str) -> RunResult:
    """The run a result document holds; every problem with it raised at once (``ValidationError``, issues
    located in ``source``). ``summary`` is not read: it follows from the checks."""
    issues: list[Issue] = []
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        issues.append(Issue(f"this mesh-harness reads result schema {SCHEMA_VERSION} (got {version!r}); "
                            "run the suite again with this version to get a comparable result", file=source,
                            path="schema_version"))
    entries = document.get("checks")
    if not isinstance(entries, list):
        issues.append(Issue("expected a list of checks (is this a mesh-harness result document?)", file=source, path="checks"))
        raise ValidationError(issues)
    checks = []
    for i, entry in enumerate(entries):
        missing = [k for k in ("case", "check", "file", "line", "outcome") if not isinstance(entry, dict) or k not in entry]
        if missing:
            issues.append(Issue(f"missing {', '.join(missing)}", file=source, path=f"checks[{i}]"))
        elif entry["outcome"] not in OUTCOMES:
            issues.append(Issue(f"expected one of {', '.join(OUTCOMES)} (got {entry['outcome']!r})",
                                file=source, path=f"checks[{i}].outcome"))
        else:
            try:
                checks.append(_check_from(entry))
            except (KeyError, TypeError, ValueError) as exc:
                issues.append(Issue(f"not a check entry of a result document ({type(exc).__name__}: {exc})",
                                    file=source, path=f"checks[{i}]"))
    try:
        run = RunResult(_mesh_from(document["mesh"]) if document.get("mesh") else None,
                        StatSettings(**(document.get("settings") or {})), float(document.get("seconds", 0.0)), tuple(checks))
    except TypeError as exc:
        issues.append(Issue(f"not the mesh and settings of a result document ({exc})", file=source))
    if issues:
        raise ValidationError(issues)
    return run


def _check_json(r: CheckResult) -> dict[str, Any]:
    entry = _fields_json(r, skip=("verdict", "traffic"))
    entry["traffic"] = None if r.traffic is None else _traffic_json(r.traffic)
    entry["expectations"] = [_fields_json(e) for e in r.verdict.evidence] if r.verdict is not None else []
    return entry


def _check_from(entry: Json) -> CheckResult:
    evidence = tuple(_record_from(Evidence, e, intervals={k: (lo, hi) for k, (lo, hi) in e.get("interval", {}).items()},
                                  counterexample=Counterexample(**e["counterexample"]) if e.get("counterexample") else None)
                     for e in entry.get("expectations", []))
    outcome = entry["outcome"]
    traffic, forensics = entry.get("traffic"), entry.get("forensics")
    return _record_from(CheckResult, entry, verdict=None if outcome == "error" else Verdict(outcome, evidence),
                        traffic=None if traffic is None else _traffic_from(traffic),
                        forensics=None if forensics is None else _forensics_from(forensics))


def _traffic_json(t: Traffic) -> dict[str, Any]:
    """``latency`` is flat: ``{p50, p90, p99, max, histogram: [[low_s, high_s, count], ...]}``, as the first documents had it."""
    latency = None if t.latency is None else {**t.latency.quantiles_s, "max": t.latency.max_s,
                                              "histogram": _plain(t.latency.histogram)}
    return {"requests": t.requests, "distributions": _plain(t.distributions), "latency": latency}


def _traffic_from(raw: Json) -> Traffic:
    latency = raw.get("latency")
    return Traffic(raw["requests"], raw["distributions"], None if latency is None else Latency(
        {k: latency[k] for k in LATENCY_QUANTILES if k in latency}, latency["max"],
        tuple((low, high, count) for low, high, count in latency.get("histogram", []))))


def _forensics_from(raw: Json) -> Forensics:
    return Forensics(raw["proxy"], raw["host"], tuple(raw["route_configs"]), tuple(raw["clusters"]),
                     tuple(raw["access_log"]), tuple(raw["app_log"]), tuple(raw.get("truncated", ())))


def _mesh_from(raw: Json) -> MeshInfo:
    # documents written before MeshInfo had a timer tick; a report never judges with it
    return MeshInfo(**{"timer_tick_s": 0.0, **raw})


def _fields_json(record: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    return {RENAMED.get(f.name, f.name): _plain(getattr(record, f.name)) for f in fields(record) if f.name not in skip}


def _record_from(cls: type[_R], raw: Json, **typed: Any) -> _R:
    """``cls`` from its document entry: each field from its key (``RENAMED``), ``typed`` taking precedence; a key the
    entry lacks leaves the field's default (keys added without a schema bump)."""
    values = {f.name: raw[key] for f in fields(cls)  # type: ignore[arg-type]
              if (key := RENAMED.get(f.name, f.name)) in raw}
    return cls(**{**values, **typed})


def _plain(value: Any) -> Any:
    """A record as JSON values: dataclasses as objects (keys per ``RENAMED``), mappings as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields_json(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

