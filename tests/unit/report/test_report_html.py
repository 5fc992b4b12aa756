"""The HTML report and the Markdown gate summary, from fake-mesh runs and hand-made documents."""

from __future__ import annotations

import re
from pathlib import Path

from harness.cli import EXIT_OK, main
from harness.mesh.fake import FAKE_INFO, FakeMesh, draw
from harness.report.gate import diff_results
from harness.report.html import gate_html, run_html
from harness.report.markdown import gate_markdown
from harness.result import RunResult
from harness.runner import run_case
from harness.settings import StatSettings
from tests.unit.front.front_builders import make_case, make_case_text, make_check, write_cases
from tests.unit.report.report_builders import make_doc, make_entry

SETTINGS = StatSettings()
CASE = make_case(make_case_text(
    make_check("split", "{version: {v1: 0.9, v2: 0.1}}"),
    make_check("all v1", "{version: v1}"),
    make_check("fast", "{latency: {p99: {below: 1s}}}"),
))


def _run(versions: dict[str | None, float]) -> RunResult:
    # seeded: the same results every time
    return RunResult(FAKE_INFO, SETTINGS, 1.0, tuple(run_case(FakeMesh(draw(versions), seed=5), CASE, SETTINGS)))


def test_html_run_report_is_self_contained_with_a_plot_per_statistical_check_and_the_counterexample() -> None:
    doc = _run({"v1": 0.5, "v2": 0.5})
    page = run_html(doc)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "the report must not load anything from elsewhere"
    # split (fraction) + fast (quantile) + the latency histogram of the check with a latency bound
    assert page.count('src="data:image/png;base64,') == 3
    verdict = doc.checks[1].verdict
    counterexample = verdict.evidence[0].counterexample if verdict else None
    assert counterexample is not None and counterexample.request_id in page
    assert "fail: the" in page and "demo / split" in page


def test_html_escapes_names() -> None:
    doc = make_doc(make_entry("<script>alert(1)</script>"))
    page = run_html(doc)
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_html_gate_report_puts_changed_checks_first_with_both_runs() -> None:
    before = make_doc(make_entry("steady"), make_entry("moved", version={"v1": 135}), istio="1.23")
    after = make_doc(make_entry("steady"), make_entry("moved", version={"v2": 135}))
    page = gate_html(diff_results(before, after))
    assert "baseline: Istio 1.23, Envoy 1.38.3" in page and "candidate: Istio 1.30, Envoy 1.38.3" in page
    assert page.index("demo / moved") < page.index("demo / steady")
    assert page.count('src="data:image/png;base64,') == 1  # the version distribution, side by side


def test_markdown_summary_lists_only_the_differences_and_the_method() -> None:
    before = make_doc(make_entry("steady"), make_entry("a|b", version={"v1": 135}), istio="1.23")
    after = make_doc(make_entry("steady"), make_entry("a|b", outcome="fail", version={"v2": 135}))
    text = gate_markdown(diff_results(before, after))
    assert text.startswith("## mesh-harness gate: 1 of 2 checks differ: 1 regression\n")
    assert "- baseline: local mesh, Istio 1.23, Envoy 1.38.3" in text
    rows = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(rows) == 1 and "demo / a\\|b" in rows[0] and "outcome pass → fail" in rows[0]
    assert "steady" not in text and "Bonferroni over 1 test:" in text


def test_markdown_summary_without_differences() -> None:
    doc = make_doc(make_entry("steady"))
    assert gate_markdown(diff_results(doc, doc)).startswith("## mesh-harness gate: no differences in 1 check\n")


def test_html_run_option_writes_the_report(tmp_path: Path) -> None:
    case = write_cases(tmp_path, "split.yaml", make_case_text(make_check("split", "{version: {v1: 0.9, v2: 0.1}}")))
    out = tmp_path / "run.html"
    code = main(["run", str(case), "--html", str(out)], mesh_factory=lambda _args: FakeMesh(draw({"v1": 0.9, "v2": 0.1}), seed=2))
    assert code == EXIT_OK and "demo / split" in out.read_text()
