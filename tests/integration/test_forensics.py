"""Failure forensics end to end: a broken variant fails, and the terminal, the JSON and the HTML report show the
route the client's real Envoy held for the host (from its config_dump, read before the revert) and the log tails,
on the builtin control plane and on real istiod."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.istiod import istiod_build

pytestmark = pytest.mark.envoy

CLI = Path(sys.executable).with_name("mesh-harness")
SUBSETS = Path(__file__).resolve().parents[2] / "cases" / "manifests" / "reviews-subsets.yaml"
# Broken variant: the VirtualService sends everything to v1 while the case claims v2 (a wrong subset name).
CASE = f"""\
name: all-to-v2
config:
  - file: {SUBSETS}
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {{name: reviews}}
    spec:
      hosts: [reviews]
      http: [{{route: [{{destination: {{host: reviews, subset: v1}}}}], timeout: 3s}}]
checks:
  - name: every response from v2
    send: {{url: "http://reviews:9080/"}}
    expect: {{version: v2}}
"""


def run_broken(tmp_path: Path, *extra: str) -> tuple[str, dict[str, object], str]:
    case = tmp_path / "broken.yaml"
    case.write_text(CASE)
    html, result = tmp_path / "report.html", tmp_path / "result.json"
    done = subprocess.run([str(CLI), "run", str(case), "--html", str(html), "--json", str(result), *extra],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    (check,) = json.loads(result.read_text())["checks"]
    return done.stdout, check, html.read_text()


@pytest.mark.parametrize("plane", ["builtin", "istiod"])
def test_a_failed_check_shows_where_to_look(tmp_path: Path, plane: str) -> None:
    extra = ("--control-plane", "istiod", "--istiod-binary", str(istiod_build().binary)) if plane == "istiod" else ()
    out, check, html = run_broken(tmp_path, *extra)
    forensics = check["forensics"]
    assert check["outcome"] == "fail" and forensics["proxy"] == "client" and forensics["host"] == "reviews"
    # The route Envoy held: to v1 only, with the case's timeout; its cluster; the log tails of that traffic.
    (config,) = forensics["route_configs"]
    assert config["route_config"]["name"] == "9080"
    assert "outbound|9080|v1|reviews.default.svc.cluster.local" in [c["name"] for c in forensics["clusters"]]
    assert all("upstream_cluster=outbound|9080|v1|reviews" in line for line in forensics["access_log"])
    assert forensics["access_log"] and all(line.startswith("reviews-v1-") for line in forensics["app_log"])
    assert "where to look for all-to-v2 :: every response from v2" in out
    assert "prefix / -> reviews v1; timeout 3s" in out
    assert "where to look</h3>" in html and "-&gt; reviews v1; timeout 3s" in html
    assert len(html) < 2_000_000 and len(json.dumps(forensics)) < 50_000  # bounded
