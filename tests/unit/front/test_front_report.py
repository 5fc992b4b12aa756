"""The result document and the terminal table, for every outcome kind (deterministic fake-mesh runs)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from harness.errors import SyncTimeout
from harness.expect import version
from harness.mesh.fake import FAKE_INFO, FakeMesh, draw
from harness.report.table import level_percent, render_table
from harness.result import SCHEMA_VERSION, CheckResult, RunResult, Verdict, encode, write_result
from harness.runner import run_case
from harness.settings import StatSettings
from harness.stats.fractions import FractionDesign
from harness.verdict import FractionJudge
from tests.unit.front.front_builders import exact_split, make_case, make_case_text, make_check, make_samples

SETTINGS = StatSettings()


def results_of_every_kind() -> list[CheckResult]:
    """pass, fail (fraction and every-response), inconclusive and error, from seeded fake meshes."""
    text = make_case_text(
        make_check("split", "{version: {v1: 0.9, v2: 0.1}, status: 200}"),
        make_check("all v2", "{version: v2}"),
    )
    case = make_case(text)
    passed = run_case(FakeMesh(draw({"v1": 0.9, "v2": 0.1}), seed=3), case, SETTINGS)[0]
    failed = run_case(FakeMesh(draw({"v1": 0.5, "v2": 0.5}), seed=3), case, SETTINGS)
    inconclusive = CheckResult("demo", "undecided", "case.yaml", 9, "inconclusive", Verdict("inconclusive", ()), 0, 0, 0.1)
    errored = run_case(FakeMesh(fail_apply=SyncTimeout("node client.default: RDS still at 0, want 1 after 5s")), case, SETTINGS)[0]
    return [passed, *failed, inconclusive, errored]


def test_report_result_document_has_every_field() -> None:
    results = results_of_every_kind()
    doc = encode(RunResult(FAKE_INFO, SETTINGS, 1.23456, tuple(results)))
    assert json.loads(json.dumps(doc)) == doc
    assert doc["schema_version"] == SCHEMA_VERSION == 2
    assert doc["mesh"] == {"kind": "local", "istio_version": "fake", "envoy_version": "fake", "timer_tick_s": 0.0}
    assert doc["settings"]["alpha"] == 1e-6 and doc["seconds"] == 1.23456
    assert doc["summary"] == {"pass": 1, "fail": 2, "inconclusive": 1, "error": 1}
    split = doc["checks"][0]
    assert (split["case"], split["check"], split["file"], split["line"], split["outcome"]) == ("demo", "split", "case.yaml", 10, "pass")
    assert split["requests"] > 0 and split["stale_responses"] == 0 and split["error"] is None
    fraction, every = split["expectations"]
    assert fraction["kind"] == "fraction" and fraction["expected"] == {"v1": 0.9, "v2": 0.1, "other": 0.0}
    assert set(fraction["observed"]) == {"v1", "v2"} and set(fraction["interval"]) == {"v1", "v2", "other"}
    assert fraction["alpha"] == 1e-6 and fraction["delta"]["v2"] == 0.05 and fraction["power"] == 0.999
    assert 0 < fraction["level"] < 1 and fraction["rule"].startswith("pass:")
    assert every["kind"] == "every" and every["expected"] == {"200": 1.0} and every["leak"] == 0.05
    failed_every = doc["checks"][2]["expectations"][0]
    assert failed_every["outcome"] == "fail" and failed_every["counterexample"]["got"] == "v1"
    assert doc["checks"][4]["error"] == "node client.default: RDS still at 0, want 1 after 5s"
    assert doc["checks"][4]["expectations"] == []


def test_report_write_result_round_trips(tmp_path: Path) -> None:
    run = RunResult(None, SETTINGS, 0.0, tuple(results_of_every_kind()))
    write_result(tmp_path / "r.json", run)
    doc = encode(run)
    assert json.loads((tmp_path / "r.json").read_text()) == doc and doc["mesh"] is None


def test_report_table_renders_every_outcome_kind() -> None:
    out = io.StringIO()
    render_table(results_of_every_kind(), Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    for word in ("pass", "fail", "inconclusive", "error", "split", "all v2", "RDS still at 0", "(0.1)"):
        assert word in text, word
    assert text.rstrip().endswith("1 pass, 2 fail, 1 inconclusive, 1 error")


def test_report_table_with_no_results() -> None:
    out = io.StringIO()
    render_table([], Console(file=out, width=120, color_system=None))
    assert out.getvalue().rstrip().endswith("no checks ran")


def test_report_levels_never_round_to_100_percent() -> None:
    assert [level_percent(x) for x in (0.99975, 0.9999999938, 0.95, 1.0)] == ["99.975%", "99.99999938%", "95%", "100%"]


def test_report_shows_quantile_and_aggregate_numbers() -> None:
    from harness.mesh.fake import Reply

    text = make_case_text(make_check("new kinds", '{latency: {p99: {below: 1s}}, stats: {upstream_rq_retry: {at_least: 1}}, '
                                                  "same_instance: true}"))
    mesh = FakeMesh(lambda spec, rng: Reply(latency_s=0.01, stats={"cluster.x.upstream_rq_retry": 1}))
    results = run_case(mesh, make_case(text), SETTINGS)
    out = io.StringIO()
    render_table(results, Console(file=out, width=250, color_system=None))
    table = out.getvalue()
    for words in ("p99 10ms; 0 of", "delta ", "(want >= 1): cluster.x.upstream_rq_retry +", "reviews-v1-0 x"):
        assert words in table, words
    doc = encode(RunResult(FAKE_INFO, SETTINGS, 0.0, tuple(results)))
    kinds = [(e["kind"], e["outcome"], e["summary"] is not None) for e in doc["checks"][0]["expectations"]]
    assert kinds == [("quantile", "pass", True), ("aggregate", "pass", True), ("aggregate", "pass", True)]


def test_report_table_shows_both_intervals_of_an_inconclusive_split() -> None:
    # v2 at 0.175 against 0.1 +/- 0.05 when the budget runs out: its pass interval lies above the band, yet the
    # wider fail interval reaches into it. The table must not print the pass interval next to "none outside".
    design = FractionDesign.plan({"v1": 0.9, "v2": 0.1})
    judge = FractionJudge(version({"v1": 0.9, "v2": 0.1}), design)
    judge.add(make_samples(exact_split(design.budget, {"v1": 0.825, "v2": 0.175})))
    evidence = judge.evidence()
    assert evidence.outcome == "inconclusive"
    result = CheckResult("demo", "split", "case.yaml", 9, "inconclusive", Verdict("inconclusive", (evidence,)),
                         design.budget, 0, 1.0)
    out = io.StringIO()
    render_table([result], Console(file=out, width=400, color_system=None))
    text = " ".join(out.getvalue().split())
    assert "none outside" not in text
    assert "v2 = 0.175, 0.025 above its band [0.050, 0.150]" in text
    assert "pass needs its 99.975% interval" in text and "fail needs its 99.99999938% interval" in text
