"""The pytest plugin, run inside pytester: collection of case YAML, ids, collection errors, and
checks judged on the fake mesh that a conftest supplies through ``pytest_mesh_harness_make_mesh``."""

from __future__ import annotations

import json

import pytest

from tests.unit.front.front_builders import SUBSETS, make_case_text, make_check

pytest_plugins = ["pytester"]

CASE = make_case_text(
    make_check("split follows the weights", "{version: {v1: 0.9, v2: 0.1}}"),
    make_check("every answer is 200", "{status: 200}"),
    name="canary",
)

FAKE_CONFTEST = """
from harness.mesh.fake import FakeMesh, draw

def pytest_mesh_harness_make_mesh(config):
    return FakeMesh(draw({versions}), seed=5)
"""


# Other installed plugins are kept out of the inner runs: pytester drops what each run imports, and
# re-importing hypothesis every run costs seconds. Blocking a plugin that is not installed is harmless.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def write_cases(pytester: pytest.Pytester, text: str = CASE) -> None:
    pytester.mkdir("cases")
    pytester.mkdir("cases/manifests")
    (pytester.path / "cases" / "canary.yaml").write_text(text)
    (pytester.path / "cases" / "manifests" / "subsets.yaml").write_text(
        "\n".join(line[4:] for line in SUBSETS.splitlines()).replace("- apiVersion", "apiVersion", 1)
    )


def test_plugin_items_are_file_case_check_and_manifests_are_not_collected(pytester: pytest.Pytester) -> None:
    write_cases(pytester)
    result = run(pytester, "--collect-only", "-q")
    result.assert_outcomes()
    assert result.outlines[:2] == [
        "cases/canary.yaml::canary::split follows the weights",
        "cases/canary.yaml::canary::every answer is 200",
    ]
    assert "subsets.yaml" not in result.stdout.str()


def test_plugin_broken_case_is_a_collection_error_without_traceback(pytester: pytest.Pytester) -> None:
    write_cases(pytester, 'name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/", concurency: 2}\n    expect: {status: 200}\n')
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting cases/canary.yaml*",
        "invalid case file:",
        "cases/canary.yaml:4: case a: checks[0].send.concurency: unknown field; did you mean concurrency?",
    ])
    assert "Traceback" not in result.stdout.str() and "harness/case.py" not in result.stdout.str()


def test_plugin_runs_checks_on_the_supplied_mesh(pytester: pytest.Pytester) -> None:
    # Seeded (5): deterministic. For any seed, P(a correct mesh fails this check) <= alpha = 1e-6.
    write_cases(pytester)
    pytester.makeconftest(FAKE_CONFTEST.format(versions='{"v1": 0.9, "v2": 0.1}'))
    result = run(pytester, "--mesh-json", "result.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["mesh-harness: 2/2 checks passed on the local mesh (Envoy *), * requests"])
    doc = json.loads((pytester.path / "result.json").read_text())
    assert [c["outcome"] for c in doc["checks"]] == ["pass", "pass"]
    assert doc["mesh"] == {"kind": "local", "istio_version": "fake", "envoy_version": "fake", "timer_tick_s": 0.0}


def test_plugin_failed_check_shows_the_numbers(pytester: pytest.Pytester) -> None:
    # A 50/50 mesh passes a 90/10 check with probability < 1e-18 (exact; see test_runner_broken_split_fails).
    write_cases(pytester)
    pytester.makeconftest(FAKE_CONFTEST.format(versions='{"v1": 0.5, "v2": 0.5}'))
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        '*cases/canary.yaml:10: check "split follows the weights" of case canary: fail',
        "  version v1=0.9, v2=0.1: fail after * requests",
        "    observed (expected): v1 0.* (0.9), v2 0.* (0.1)",
        "    rule: fail: the * interval of v1, v2 lies outside expected +/- 0.05 (n=*)",
    ])
    assert "Traceback" not in result.stdout.str()


def test_plugin_invalid_istio_config_is_a_collection_error(pytester: pytest.Pytester) -> None:
    config = ("  - apiVersion: networking.istio.io/v1\n    kind: VirtualService\n    metadata: {name: reviews}\n"
              "    spec:\n      hosts: [reviews]\n      http:\n        - route:\n"
              "            - {destination: {host: reviews}, weight: -5}\n")
    write_cases(pytester, make_case_text(make_check("c", "{status: 200}"), config=config))
    pytester.makeconftest(FAKE_CONFTEST.format(versions='{"v1": 1.0}'))
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "invalid case file:",
    ])
    assert (
        "\ncases/canary.yaml:10: VirtualService/reviews: spec.http[0].route[0].weight: must not be negative (got -5); "
        "weights are relative, e.g. 90 and 10\n"
    ) in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_plugin_lists_preflight_warnings_in_the_terminal_summary(pytester: pytest.Pytester) -> None:
    """Valid but doubtful input is reported as ``mesh-harness run`` prints it (before, the plugin dropped it);
    a summary section, not Python warnings, which ``filterwarnings = error`` would turn into failures."""
    write_cases(pytester, make_case_text(make_check("only v2", "{version: {v2: 1.0}}"), name="canary"))
    pytester.makeconftest(FAKE_CONFTEST.format(versions='{"v2": 1.0}'))
    result = run(pytester, "-W", "error")
    result.assert_outcomes(passed=1)
    lines = result.outlines
    assert "mesh-harness warnings" in lines[lines.index(next(line for line in lines if line.startswith("warning:"))) - 1]
    assert ("warning: cases/canary.yaml:10: checks[0].expect.version: {v2: 1} is a split, judged with a tolerance "
            "(delta), so a small share of responses with another version still passes; write `version: v2` to claim "
            "every response") in lines


def test_plugin_mesh_error_in_setup_fails_each_check_with_the_message(pytester: pytest.Pytester) -> None:
    write_cases(pytester)
    pytester.makeconftest(
        "from harness.errors import SyncTimeout\n"
        "from harness.mesh.fake import FakeMesh\n\n"
        "def pytest_mesh_harness_make_mesh(config):\n"
        "    return FakeMesh(fail_apply=SyncTimeout('node client.default: RDS still at version 0, want 1 after 5s'))\n"
    )
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["SyncTimeout: node client.default: RDS still at version 0, want 1 after 5s"] * 2)
    assert "Traceback" not in result.stdout.str()


def test_plugin_sigterm_unwinds_like_ctrl_c_so_the_mesh_is_closed(pytester: pytest.Pytester) -> None:
    """A CI timeout's SIGTERM must not leave the mesh's processes behind: the plugin turns it into an
    interrupt, so the session's mesh is closed (here: the fake mesh records close())."""
    marker = pytester.path / "closed"
    pytester.makeconftest(f"""
from harness.mesh.fake import FakeMesh, draw

class Recording(FakeMesh):
    def close(self):
        super().close()
        open({str(marker)!r}, "w").write("closed")

def pytest_mesh_harness_make_mesh(config):
    return Recording(draw({{"v1": 1.0}}), seed=1)
""")
    pytester.makepyfile(test_sigterm="""
import os, signal

def test_gets_terminated(mesh):
    os.kill(os.getpid(), signal.SIGTERM)
""")
    result = pytester.runpytest_subprocess(*QUIET)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert marker.read_text() == "closed"


SLOW_KUBE_CONFTEST = """
import time
from harness.mesh.fake import FakeMesh, draw

class SlowDeploy(FakeMesh):
    def deploy(self, topology):
        if topology not in self.deployed:  # as KubeMesh: the same topology again is a no-op
            time.sleep(2.5)  # the first pods pull the proxy image
        super().deploy(topology)

def pytest_mesh_harness_make_mesh(config):
    time.sleep(2.5)  # kind create, istioctl install, image build and load
    return SlowDeploy(draw({"v1": 0.9, "v2": 0.1}), seed=5)
"""


def test_plugin_real_istio_session_setup_is_not_counted_by_pytest_timeout(pytester: pytest.Pytester) -> None:
    """On --mesh kind, making the mesh and the first deploy happen before the first test's timer starts:
    with a 2 s timeout and 5 s of set-up, the checks (milliseconds each on the fake mesh) still pass;
    before, the first one timed out in its setup."""
    write_cases(pytester, make_case_text(make_check("one", "{status: 200}"), make_check("two", "{status: 200}"),
                                         name="quick"))
    pytester.makeconftest(SLOW_KUBE_CONFTEST)
    result = run(pytester, "--mesh", "kind", "-p", "timeout", "-o", "timeout=2")
    result.assert_outcomes(passed=2)
    assert "Timeout" not in result.stdout.str()


def test_plugin_xdist_controller_makes_no_mesh() -> None:
    """Under pytest-xdist the controller process runs no test; only the workers make (and share) the cluster."""
    from types import SimpleNamespace

    from harness.pytest_plugin import pytest_runtestloop

    asked: list[str] = []
    config = SimpleNamespace(getoption=lambda name: asked.append(name) or "kind",
                             option=SimpleNamespace(collectonly=False, dist="load"))
    class Untouchable(list[object]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            raise AssertionError("the controller looked for cases to set up")

    pytest_runtestloop(SimpleNamespace(config=config, items=Untouchable()))  # type: ignore[arg-type]
    assert asked == ["--mesh"]  # returned before looking at the items or the mesh
