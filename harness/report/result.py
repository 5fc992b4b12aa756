"""The JSON result of a run: the record the table, the HTML report and the upgrade gate read.

Bump ``SCHEMA_VERSION`` on any change a reader could trip over (renamed or re-typed field).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.mesh.base import MeshInfo
from harness.report.forensics import forensics_json
from harness.result import traffic_json
from harness.runner import CheckResult
from harness.settings import StatSettings

SCHEMA_VERSION = 2
"""2: expectation kinds ``quantile`` and ``aggregate``, and ``summary`` (their observed-vs-expected text).
Added since without a bump (readers treat them as optional): per check ``traffic`` (versions, statuses,
flags and latency quantiles of the judged responses, ``harness.result``), per expectation ``bounds_s``,
per check ``case_apply_s`` and ``case_revert_s`` (its case's deploy + apply and revert seconds, repeated on each
check of the case, null when the apply failed); per check ``forensics`` (null unless it failed or was inconclusive:
the client proxy's routes and clusters for the host and log tails, ``harness.mesh.forensics``)."""


def result_document(results: Sequence[CheckResult], mesh: MeshInfo | None, settings: StatSettings, seconds: float) -> dict[str, Any]:
    """A JSON-ready dict: run metadata, then one entry per check."""
    outcomes = [r.outcome for r in results]
    return {
        "schema_version": SCHEMA_VERSION,
        "mesh": asdict(mesh) if mesh else None,
        "settings": asdict(settings),
        "seconds": round(seconds, 3),
        "summary": {k: outcomes.count(k) for k in ("pass", "fail", "inconclusive", "error")},
        "checks": [_check(r) for r in results],
    }


def write_result(path: str | Path, document: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _check(r: CheckResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "case": r.case,
        "check": r.check,
        "file": r.file,
        "line": r.line,
        "outcome": r.outcome,
        "requests": r.requests,
        "stale_responses": r.stale,
        "seconds": round(r.seconds, 3),
        "case_apply_s": _rounded(r.case_apply_s),
        "case_revert_s": _rounded(r.case_revert_s),
        "error": r.error,
        "traffic": traffic_json(r.traffic) if r.traffic is not None else None,
        "forensics": forensics_json(r.forensics) if r.forensics is not None else None,
        "expectations": [],
    }
    if r.verdict is not None:
        for e in r.verdict.evidence:
            entry["expectations"].append({
                "expectation": e.expectation,
                "field": e.field,
                "kind": e.kind,
                "outcome": e.outcome,
                "requests": e.n,
                "counts": dict(e.counts),
                "expected": dict(e.expected),
                "observed": {k: round(v, 6) for k, v in e.observed.items()},
                "interval": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in e.intervals.items()},
                "level": e.level,
                "alpha": e.alpha,
                "power": e.power,
                "delta": dict(e.delta),
                "leak": e.leak,
                "rule": e.rule,
                "counterexample": asdict(e.counterexample) if e.counterexample else None,
                "summary": e.summary,
                "bounds_s": dict(e.bounds_s),
            })
    return entry


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
