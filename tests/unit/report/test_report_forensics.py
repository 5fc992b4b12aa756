"""Failure forensics in words: routes as `routes` shows them, clusters by their policies, the log tails."""

from __future__ import annotations

import io

from rich.console import Console

from harness.mesh.forensics import gather
from harness.report.forensics import forensics_lines, render_forensics
from tests.unit.mesh.test_mesh_forensics import SPLIT, V1, V2, V3, config_dump


def test_forensics_lines_say_routes_clusters_and_log_tails() -> None:
    dump = config_dump(SPLIT, [V1, V2, V3])
    dump["configs"][0]["dynamic_active_clusters"][0]["cluster"]["outlier_detection"] = {"consecutive_5xx": 1}
    found = gather("client", "reviews", 9080, dump, ['{"response_code": 503, "response_flags": "UH"}'], [])
    lines = forensics_lines(found)
    assert lines == [
        "what client's proxy held for reviews when the check failed (from its config_dump):",
        "  routes:",
        "    route config 9080 (version 7), reviews.default.svc.cluster.local:9080 #0: prefix / -> reviews v1 90%, "
        "reviews v2 10%; mirror 100% to reviews v3",
        "  clusters:",
        f"    {V1} (reviews v1): EDS, ROUND_ROBIN, outlier_detection {{\"consecutive_5xx\":1}}",
        f"    {V2} (reviews v2): EDS, ROUND_ROBIN",
        f"    {V3} (reviews v3): EDS, ROUND_ROBIN",
        "  last 1 lines of its access log:",
        "    response_code=503 response_flags=UH",
        "  no app received a request of the check",
    ]


def test_forensics_lines_for_a_host_the_proxy_has_no_route_for() -> None:
    lines = forensics_lines(gather("client", "nowhere", 9080, config_dump(SPLIT, []), [], []))
    assert lines[1:4] == ["  no route for nowhere", "  no cluster the routes name", "  its access log is empty"]


def test_render_forensics_titles_each_failed_check() -> None:
    out = io.StringIO()
    found = gather("client", "reviews", 9080, config_dump(SPLIT, [V1]), [], [])
    render_forensics([("canary :: split", found)], Console(file=out, width=300, color_system=None))
    text = out.getvalue()
    assert "where to look for canary :: split" in text and "-> reviews v1 90%, reviews v2 10%" in text


def test_pytest_failure_text_ends_with_where_to_look() -> None:
    from harness.pytest_plugin import describe_result
    from harness.result import CheckResult, Verdict

    found = gather("client", "reviews", 9080, config_dump(SPLIT, [V1]), [], [])
    text = describe_result(CheckResult("canary", "split", "case.yaml", 9, "fail", Verdict("fail", ()), 0, 0, 1.0,
                                       forensics=found))
    assert text.splitlines()[1] == "  what client's proxy held for reviews when the check failed (from its config_dump):"
    assert "-> reviews v1 90%, reviews v2 10%" in text
