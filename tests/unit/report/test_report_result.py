"""The result document's codec (``harness.result``): a run decodes to what was encoded, older documents still
read, malformed ones are refused with every problem; and the result records stay below the runner and reports.

What schema 2 documents gained without a bump, so a reader finds it missing in older ones (this list replaces
the changelog once kept in a docstring), and what such a document decodes to:

* per check ``traffic`` (versions, statuses, flags and latency quantiles of the judged responses): None;
* per expectation ``bounds_s`` (the bounds of latency expectations, for plots): empty;
* per check ``case_apply_s`` and ``case_revert_s`` (its case's deploy + apply and revert seconds): None;
* per check ``forensics`` (the client proxy's routes and clusters for the host, and log tails): None;
* ``mesh.timer_tick_s`` (the proxies' timer tick): 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest

from harness.errors import ValidationError
from harness.expect import version
from harness.mesh.fake import FAKE_INFO, FakeMesh, Reply
from harness.mesh.forensics import gather
from harness.result import RENAMED, SCHEMA_VERSION, CheckResult, RunResult, Verdict, decode, encode, nearest_rank
from harness.runner import run_case
from harness.settings import StatSettings
from harness.stats.fractions import FractionDesign
from harness.verdict import FractionJudge
from tests.unit.front.front_builders import exact_split, make_case, make_case_text, make_check, make_samples
from tests.unit.front.test_front_report import results_of_every_kind
from tests.unit.mesh.test_mesh_forensics import SPLIT, V1, V2, config_dump


def representative_run() -> RunResult:
    """pass, fail with a counterexample, inconclusive, error; an inconclusive split with its intervals;
    latency quantile and aggregate evidence; forensics of a failed check."""
    split = FractionDesign.plan({"v1": 0.9, "v2": 0.1})
    judge = FractionJudge(version({"v1": 0.9, "v2": 0.1}), split)
    judge.add(make_samples(exact_split(split.budget, {"v1": 0.825, "v2": 0.175})))
    inconclusive_split = CheckResult("demo", "split", "case.yaml", 9, "inconclusive", Verdict("inconclusive", (judge.evidence(),)),
                                     split.budget, 3, 1.25, case_apply_s=0.5, case_revert_s=0.25)
    text = make_case_text(make_check("new kinds", '{latency: {p99: {below: 1s}}, stats: {upstream_rq_retry: {at_least: 1}}, '
                                                  "same_instance: true, attempts: 1}"))
    mesh = FakeMesh(lambda spec, rng: Reply(latency_s=0.01 + rng.random() / 100, stats={"cluster.x.upstream_rq_retry": 1}))
    quantiles = run_case(mesh, make_case(text), StatSettings())
    forensics = gather("client", "reviews", 9080, config_dump(SPLIT, [V1, V2]), ['{"response_code": 503}'], [])
    failed = next(r for r in results_of_every_kind() if r.outcome == "fail" and r.verdict and r.verdict.evidence[0].counterexample)
    return RunResult(FAKE_INFO, StatSettings(relative_delta=0.5, max_requests=4000), 12.3456789, (
        *results_of_every_kind(), inconclusive_split, *quantiles, replace(failed, forensics=forensics)))


def through_json(document: dict[str, Any]) -> Any:
    return json.loads(json.dumps(document))


def test_result_decode_of_encode_is_the_run() -> None:
    run = representative_run()
    assert {c.outcome for c in run.checks} == {"pass", "fail", "inconclusive", "error"}
    assert any(c.forensics for c in run.checks) and any(c.traffic and c.traffic.latency for c in run.checks)
    kinds = {e.kind for c in run.checks if c.verdict for e in c.verdict.evidence}
    assert kinds == {"fraction", "every", "quantile", "aggregate"}
    assert decode(through_json(encode(run)), "r.json") == run
    assert decode(through_json(encode(RunResult(None, StatSettings(), 0.0, ()))), "empty.json") == RunResult(
        None, StatSettings(), 0.0, ())


def test_result_keys_are_field_names_but_the_renamed_ones() -> None:
    check = encode(representative_run())["checks"][0]
    assert {"requests", "stale_responses", "expectations"} <= set(check) and "stale" not in check
    expectation = check["expectations"][0]
    assert {"requests", "interval"} <= set(expectation) and not {"n", "intervals"} & set(expectation)
    assert RENAMED == {"stale": "stale_responses", "n": "requests", "intervals": "interval"}


def test_result_an_older_schema_2_document_still_reads() -> None:
    """Written before the keys of the module docstring's list existed."""
    old = {
        "schema_version": 2, "mesh": {"kind": "local", "istio_version": "1.28", "envoy_version": "1.36.4"},
        "settings": {"alpha": 1e-6, "delta": 0.05, "relative_delta": None, "power": 0.999, "leak": 0.05, "max_requests": None},
        "seconds": 3.5, "summary": {"pass": 1, "fail": 0, "inconclusive": 0, "error": 1},
        "checks": [
            {"case": "demo", "check": "all v1", "file": "cases/demo.yaml", "line": 7, "outcome": "pass", "requests": 135,
             "stale_responses": 0, "seconds": 0.5, "error": None,
             "expectations": [{"expectation": "every version = v1", "field": "version", "kind": "every", "outcome": "pass",
                               "requests": 135, "counts": {"v1": 135}, "expected": {"v1": 1.0}, "observed": {"v1": 1.0},
                               "interval": {}, "level": None, "alpha": 0.0, "power": 0.999, "delta": {}, "leak": 0.05,
                               "rule": "pass: 135 of 135", "counterexample": None, "summary": None}]},
            {"case": "demo", "check": "broken", "file": "cases/demo.yaml", "line": 9, "outcome": "error", "requests": 0,
             "stale_responses": 0, "seconds": 0.1, "error": "RDS still at 0", "expectations": []},
        ],
    }
    run = decode(old, "old.json")
    assert run.mesh is not None and (run.mesh.istio_version, run.mesh.timer_tick_s) == ("1.28", 0.0)
    passed, errored = run.checks
    assert (passed.traffic, passed.forensics, passed.case_apply_s, passed.case_revert_s) == (None, None, None, None)
    assert passed.verdict is not None and passed.verdict.evidence[0].bounds_s == {} and passed.verdict.outcome == "pass"
    assert (errored.verdict, errored.error) == (None, "RDS still at 0")
    assert run.summary == {"pass": 1, "fail": 0, "inconclusive": 0, "error": 1}


def test_result_decode_refuses_a_document_that_is_not_a_result_with_every_problem() -> None:
    good = encode(RunResult(FAKE_INFO, StatSettings(), 1.0, tuple(results_of_every_kind())))["checks"][0]
    bad = {"schema_version": 1, "checks": [{"case": "a", "check": "b"}, {**good, "outcome": "passed"},
                                           {**good, "traffic": {"requests": 3}}]}
    with pytest.raises(ValidationError) as caught:
        decode(bad, "old.json")
    assert [str(i) for i in caught.value.issues] == [
        "old.json: schema_version: this mesh-harness reads result schema 2 (got 1); "
        "run the suite again with this version to get a comparable result",
        "old.json: checks[0]: missing file, line, outcome",
        "old.json: checks[1].outcome: expected one of pass, fail, inconclusive, error (got 'passed')",
        "old.json: checks[2]: not a check entry of a result document (KeyError: 'distributions')",
    ]
    with pytest.raises(ValidationError, match="expected a list of checks"):
        decode({"schema_version": SCHEMA_VERSION}, "x.json")


def test_result_an_error_has_no_verdict_and_any_other_outcome_is_its_verdicts() -> None:
    with pytest.raises(ValueError, match="an error has no verdict"):
        CheckResult("demo", "a", "case.yaml", 1, "error", Verdict("pass", ()), 0, 0, 0.0)
    with pytest.raises(ValueError, match="an error has no verdict"):
        CheckResult("demo", "a", "case.yaml", 1, "fail", Verdict("pass", ()), 0, 0, 0.0)


def test_result_nearest_rank_quantiles() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert [nearest_rank(ordered, q) for q in (0.5, 0.9, 0.99, 1.0)] == [50.0, 90.0, 99.0, 100.0]
    assert nearest_rank([3.0], 0.5) == 3.0 and nearest_rank([1.0, 2.0], 0.0) == 1.0


def test_result_imports_no_scipy() -> None:
    """``mesh-harness send`` and the gate's option parsing import the result records; scipy would cost them seconds."""
    probe = "import sys, harness.result; print('scipy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"
