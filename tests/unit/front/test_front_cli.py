"""``mesh-harness`` in-process: exit codes, messages on stderr without tracebacks, explain and schema.

Traffic comes from the fake mesh through ``main(..., mesh_factory=...)``; every run is seeded.
"""

from __future__ import annotations

import json
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from harness.case import case_json_schema
from harness.cli import EXIT_FAILED, EXIT_INVALID, EXIT_MESH, EXIT_OK, EXIT_TERMINATED, main
from harness.errors import ProcessError
from harness.interrupts import sigterm_as_interrupt
from harness.mesh.base import SendSpec
from harness.mesh.fake import FakeMesh, Handler, Reply, draw
from harness.result import SCHEMA_VERSION
from harness.session import MeshOptions
from tests.unit.front.front_builders import make_case_text, make_check, write_cases

SHIPPED = Path(__file__).resolve().parents[3] / "cases"


def fake(handler: Handler, made: list[FakeMesh] | None = None) -> Callable[[MeshOptions], FakeMesh]:
    def factory(options: MeshOptions) -> FakeMesh:
        mesh = FakeMesh(handler, seed=11)
        if made is not None:
            made.append(mesh)
        return mesh

    return factory


@pytest.fixture
def split_case(tmp_path: Path) -> Path:
    text = make_case_text(
        make_check("split", "{version: {v1: 0.9, v2: 0.1}}"),
        make_check("all ok", "{status: 200}"),
        name="canary",
    )
    return write_cases(tmp_path, "canary.yaml", text)


def test_cli_run_passes_on_a_correct_mesh_and_writes_json(
    split_case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seeded (11): deterministic. For any seed, P(this correct mesh fails) <= alpha = 1e-6 (design guarantee).
    made: list[FakeMesh] = []
    out = tmp_path / "result.json"
    code = main(["run", str(split_case), "--json", str(out)], mesh_factory=fake(draw({"v1": 0.9, "v2": 0.1}), made))
    printed = capsys.readouterr()
    assert code == EXIT_OK, printed
    assert "local mesh: Envoy fake, emulating Istio fake" in printed.out and "2 pass" in printed.out
    doc = json.loads(out.read_text())
    assert [c["outcome"] for c in doc["checks"]] == ["pass", "pass"] and doc["schema_version"] == SCHEMA_VERSION == 2
    assert made[0].closed and len(made[0].reverted) == 1


def test_cli_run_fails_on_a_broken_mesh(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A 70/30 mesh passes a 90/10 check with probability < 1e-18 (exact, test_runner_broken_split_fails).
    code = main(["run", str(split_case)], mesh_factory=fake(draw({"v1": 0.7, "v2": 0.3})))
    assert code == EXIT_FAILED
    assert "1 pass, 1 fail" in capsys.readouterr().out


def test_cli_run_k_selects_checks_and_no_match_is_invalid(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made: list[FakeMesh] = []
    assert main(["run", str(split_case), "-k", "ALL OK"], mesh_factory=fake(draw(), made)) == EXIT_OK
    assert {s.url for s in made[0].sent} == {"http://reviews:9080/"} and len(made[0].sent) == 1
    assert main(["run", str(split_case), "-k", "nothing"], mesh_factory=fake(draw(), made)) == EXIT_INVALID
    assert len(made) == 1  # refused before a mesh is made
    assert "no checks matched -k 'nothing'; nothing was run" in capsys.readouterr().err


def test_cli_run_mesh_that_cannot_start_exits_3(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(options: MeshOptions) -> FakeMesh:
        raise ProcessError("envoy exited with code 1: bind: address in use")

    assert main(["run", str(split_case)], mesh_factory=broken) == EXIT_MESH
    err = capsys.readouterr().err
    assert "mesh error" in err and "envoy exited with code 1: bind: address in use" in err
    assert "Traceback" not in err


def test_cli_run_invalid_case_applies_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made: list[FakeMesh] = []
    (tmp_path / "bad.yaml").write_text('name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {}\n')
    assert main(["run", str(tmp_path)], mesh_factory=fake(draw(), made)) == EXIT_INVALID
    assert made == []
    assert "checks[0].expect: nothing to check" in capsys.readouterr().err


def test_cli_validate_shipped_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SHIPPED)]) == EXIT_OK
    assert capsys.readouterr().out.strip().endswith("checks: valid")


def test_cli_validate_broken_case_exits_2_with_the_issue_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: a\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/", concurency: 4}\n    expect: {status: 200}\n')
    assert main(["validate", str(bad)]) == EXIT_INVALID
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.splitlines() == [
        "invalid input (nothing was applied)",
        f"{bad}:4: case a: checks[0].send.concurency: unknown field; did you mean concurrency?",
    ]


def test_cli_validate_runs_istio_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ("  - apiVersion: networking.istio.io/v1\n    kind: VirtualService\n    metadata: {name: reviews}\n"
              "    spec:\n      hosts: [reviews]\n      http:\n        - route:\n"
              "            - {destination: {host: reviews}, weight: -5}\n")
    path = tmp_path / "negative.yaml"
    path.write_text(make_case_text(make_check("c", "{status: 200}"), config=config))
    assert main(["validate", str(path)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert f"{path}:10: VirtualService/reviews: spec.http[0].route[0].weight: must not be negative (got -5)" in err
    assert "Traceback" not in err


def test_cli_validate_missing_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "no/such/dir"]) == EXIT_INVALID
    assert "no/such/dir: no such file or directory" in capsys.readouterr().err


def test_cli_explain_names_routes_and_clusters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(SHIPPED / "canary.yaml")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "case canary-90-10" in out
    assert "outbound|9080|v1|reviews.default.svc.cluster.local" in out
    assert "outbound|9080|v2|reviews.default.svc.cluster.local" in out
    assert "route config '9080'" in out


def test_cli_explain_json_and_unknown_case_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(SHIPPED / "canary.yaml"), "--name", "even-split", "--json"]) == EXIT_OK
    resources = json.loads(capsys.readouterr().out)
    assert set(resources) == {"clusters", "endpoints", "listeners", "routes"}
    assert main(["explain", str(SHIPPED / "canary.yaml"), "--name", "nope"]) == EXIT_INVALID
    assert "no case named 'nope' (cases in this file: canary-90-10, even-split)" in capsys.readouterr().err


def test_cli_schema_prints_a_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == case_json_schema() and schema["title"] == "mesh-harness case"


def test_cli_restores_the_sigterm_handler(capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    main(["schema"])
    assert signal.getsignal(signal.SIGTERM) is before


def test_cli_stopped_by_sigterm_tells_a_caller_that_handles_sigterm_itself(split_case: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Under the pytest plugin (or a program embedding the CLI) a SIGTERM must reach the caller's handler
    too, after the run cleaned up: else a killed test session would go on to its next test."""
    told: list[int] = []
    made: list[FakeMesh] = []

    def terminate_on_first_request(spec: SendSpec, rng: random.Random) -> Reply:
        if not told:
            os.kill(os.getpid(), signal.SIGTERM)
        return Reply()

    before = signal.signal(signal.SIGTERM, lambda signum, frame: told.append(signum))
    try:
        code = main(["run", str(split_case)], mesh_factory=fake(terminate_on_first_request, made))
        assert signal.getsignal(signal.SIGTERM) is not sigterm_as_interrupt
    finally:
        signal.signal(signal.SIGTERM, before)
    assert (code, told) == (EXIT_TERMINATED, [signal.SIGTERM])
    assert made and all(m.closed for m in made)
    assert "interrupted; everything the harness started has been stopped" in capsys.readouterr().err


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_cli_run_prints_a_line_per_check_as_it_is_judged(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Not a terminal (pytest captures stdout): one line per step and check, then the table as before.
    code = main(["run", str(split_case)], mesh_factory=fake(draw({"v1": 0.9, "v2": 0.1})))
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    lines = out.splitlines()
    started = next(i for i, line in enumerate(lines) if line.endswith("mesh start: --mesh local ..."))
    assert "✓ mesh start (" in lines[started + 1]
    applied = next(i for i, line in enumerate(lines) if line.startswith("applied canary in "))
    split = next(i for i, line in enumerate(lines) if line.startswith("[1/2] canary :: split  PASS  n="))
    every = next(i for i, line in enumerate(lines) if line.startswith("[2/2] canary :: all ok  PASS  n=135  "))
    final = next(i for i, line in enumerate(lines) if line.startswith("2 checks in ") and line.endswith("s: 2 pass"))
    table = next(i for i, line in enumerate(lines) if "mesh-harness results" in line)
    assert started < applied < split < every < final < table


def test_cli_run_quiet_prints_only_the_first_line_and_the_table(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(split_case), "--quiet"], mesh_factory=fake(draw({"v1": 0.9, "v2": 0.1}))) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "local mesh: Envoy fake, emulating Istio fake"
    assert "mesh-harness results" in lines[1]
    assert not any("PASS" in line or "applied" in line or "mesh start" in line for line in lines)


def test_cli_run_jobs_opens_a_mesh_per_job_and_reports_in_the_cases_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every fake mesh answers 200: each check passes whatever mesh runs it (the pool's own tests pin who runs what).
    for name in "abc":
        write_cases(tmp_path, f"{name}.yaml", make_case_text(make_check("ok", "{status: 200}"), name=name))
    made: list[FakeMesh] = []
    out = tmp_path / "result.json"
    code = main(["run", str(tmp_path), "-j", "2", "--json", str(out)], mesh_factory=fake(draw(), made))
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    assert "mesh start: --mesh local, 2 meshes ..." in printed and "; 2 meshes at once" in printed
    assert [c["case"] for c in json.loads(out.read_text())["checks"]] == ["a", "b", "c"]
    assert len(made) == 2 and all(m.closed for m in made)
    assert sum(len(m.sent) for m in made) == 3


def test_cli_run_jobs_are_no_more_than_the_cases(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made: list[FakeMesh] = []
    assert main(["run", str(split_case), "--jobs", "4"], mesh_factory=fake(draw({"v1": 0.9, "v2": 0.1}), made)) == EXIT_OK
    assert len(made) == 1 and "meshes at once" not in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "where"), [(["--mesh", "kind"], "--mesh kind"),
                                              (["--mesh-attach", "dev"], "--mesh-attach dev")])
def test_cli_run_jobs_on_a_single_mesh_is_refused_before_anything_starts(
    split_case: Path, flags: list[str], where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made: list[FakeMesh] = []
    assert main(["run", str(split_case), "-j", "2", *flags], mesh_factory=fake(draw(), made)) == EXIT_INVALID
    err = capsys.readouterr().err
    assert not made and "nothing was applied" in err
    assert f"--jobs 2 runs cases on several local meshes at once, one started per job; {where} is a single mesh: " \
           "drop --jobs" in err


def test_cli_run_jobs_below_one_is_a_usage_error(split_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(split_case), "-j", "0"])
    assert info.value.code == 2 and "argument -j/--jobs: must be at least 1 (got 0)" in capsys.readouterr().err


@pytest.mark.parametrize(("case", "shown"), [
    ("faults.yaml", "fault abort 418 for 100%"),
    ("mirror.yaml", "mirror 100% to reviews v2"),
    ("retries.yaml", "retries 3 on 5xx"),
    ("timeouts.yaml", "; timeout "),
    ("circuit-breaker.yaml", 'circuit_breakers {"thresholds":[{"max_connections":1,"max_pending_requests":1}]}'),
    ("outlier.yaml", 'outlier_detection {"base_ejection_time":"30s","consecutive_5xx":3'),
])
def test_cli_explain_text_shows_the_policies_json_has(case: str, shown: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Text output used to name only matches and clusters; faults, timeouts, retries, mirrors and the clusters'
    # policies were in --json only.
    assert main(["explain", str(SHIPPED / case)]) == EXIT_OK
    assert shown in capsys.readouterr().out
