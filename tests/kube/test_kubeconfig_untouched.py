"""The harness never writes the user's kubeconfig (issue 8), over the kind and cluster meshes' whole lifecycle.

These are recorded-response tests: the kind mesh is never run end to end here (no Docker, kind or
cluster on this machine). What runs is the harness's real code path, ``session.open_kube_mesh``
through ``KubeMesh.close``, with:

* a fake runner for kind, docker and istioctl (``FakeRunner`` of test_kube_commands.py) that acts
  as kind does on ``create cluster`` / ``export kubeconfig``: it writes the file named by
  ``--kubeconfig``, and only that file;
* the real kubernetes client loading the real kubeconfig file (so the file and context the
  harness asks for are the ones read), answered from tests/kube/recordings;
* a stand-in ``kubectl`` on PATH, spawned for real by the pod port-forwards, which records its
  argv and prints kubectl's "Forwarding from" line for the recorded pod answers.

$HOME and $KUBECONFIG point at a temp dir holding a user kubeconfig whose bytes and mtime are
recorded before the run. After create, Istio install, deploy, apply, revert and close (cluster
delete), that file must be byte-identical with the same mtime, nothing may be created under
$HOME/.kube, every kind/kubectl/istioctl command that can touch a kubeconfig must name the
harness's own (``--kubeconfig``), and kubectl keeps its discovery cache out of ~/.kube
(``--cache-dir``). For ``--mesh cluster`` the user's kubeconfig is read (the named context, never
the current one) and never written, and no command would switch or edit a context.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from harness.istio.load import load_objects
from harness.mesh.kube import image, session
from harness.mesh.kube.image import ImageSpec
from harness.mesh.kube.mesh import KubeMesh
from harness.mesh.kube.session import KubeOptions, open_kube_mesh
from harness.mesh.kube.versions import DEFAULT_ISTIO_VERSION
from harness.topology import DEFAULT_TOPOLOGY
from harness.yamlsource import load_documents
from tests.kube.recorded import SUBSETS, RecordedApiServer, RecordedProxy, recording
from tests.kube.test_kube_commands import FakeRunner

USER_KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: staging
clusters:
  - name: prod
    cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
  - name: staging
    cluster: {server: "https://127.0.0.1:7443", insecure-skip-tls-verify: true}
users:
  - name: me
    user: {token: user-token-0123}
contexts:
  - name: prod
    context: {cluster: prod, user: me}
  - name: staging
    context: {cluster: staging, user: me}
"""

KIND_KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: kind-mesh-harness
clusters:
  - name: kind-mesh-harness
    cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
  - name: kind-mesh-harness
    user: {token: kind-token-4567}
contexts:
  - name: kind-mesh-harness
    context: {cluster: kind-mesh-harness, user: kind-mesh-harness}
"""

# Records its argv (one line, tab-separated), then says what kubectl port-forward says and waits to be stopped.
FAKE_KUBECTL = """\
#!/bin/sh
{ for a in "$0" "$@"; do printf '%s\\t' "$a"; done; printf '\\n'; } >> "$MH_TEST_KUBECTL_LOG"
for a in "$@"; do last="$a"; done
echo "Forwarding from 127.0.0.1:$MH_TEST_FORWARD_PORT -> ${last#:}"
exec sleep 120
"""

OLD_MTIME_NS = 1_600_000_000 * 10**9  # set on the user's file first, so that any write or touch would move it
KUBECTL_CONFIG_EDITS = {"config", "use-context", "set-context", "set-cluster", "set-credentials", "delete-context"}
KIND_WITHOUT_KUBECONFIG = {("get", "clusters"), ("load", "docker-image")}
"""kind subcommands that read and write no kubeconfig (they list node containers / copy an image into them /
print kind's version)."""

CANARY = SUBSETS + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}, weight: 90}, {destination: {host: reviews, subset: v2}, weight: 10}]}]
"""


@dataclass(frozen=True)
class UserHome:
    home: Path
    kubeconfig: Path
    content: bytes
    mtime_ns: int
    kubectl_log: Path
    bin_dir: Path

    def assert_untouched(self) -> None:
        after = self.kubeconfig.stat()
        assert self.kubeconfig.read_bytes() == self.content, "the user's kubeconfig was rewritten"
        assert after.st_mtime_ns == self.mtime_ns, f"the user's kubeconfig was touched (mtime {after.st_mtime_ns})"
        created = sorted(str(p.relative_to(self.home)) for p in (self.home / ".kube").rglob("*") if p != self.kubeconfig)
        assert not created, f"created under $HOME/.kube: {created}"
        assert os.environ["KUBECONFIG"] == str(self.kubeconfig)

    def kubectl_commands(self) -> list[list[str]]:
        text = self.kubectl_log.read_text() if self.kubectl_log.exists() else ""
        return [line.rstrip("\t").split("\t") for line in text.splitlines()]


class KindRunner(FakeRunner):
    """The fake runner, plus what kind itself writes: the file named by ``--kubeconfig`` on create/export."""

    def __call__(self, argv: list[str], *, what: str, timeout_s: float, **kwargs: Any) -> str:
        out = super().__call__(argv, what=what, timeout_s=timeout_s, **kwargs)
        if Path(argv[0]).name == "kind" and argv[1:3] in (["create", "cluster"], ["export", "kubeconfig"]):
            target = Path(flag(argv, "--kubeconfig"))  # kind without --kubeconfig would write the user's file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(KIND_KUBECONFIG)
        return out


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"expected one {name} in {argv}"
    return argv[argv.index(name) + 1]


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserHome:
    home = tmp_path / "home"
    config = home / ".kube" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(USER_KUBECONFIG)
    os.utime(config, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "kind"):  # found on PATH, never run: the fake runner answers for them
        (bin_dir / name).write_text("#!/bin/sh\nexit 99\n")
    (bin_dir / "kubectl").write_text(FAKE_KUBECTL)
    for tool in bin_dir.iterdir():
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MH_TEST_KUBECTL_LOG", str(log))
    for variable in ("MESH_HARNESS_CACHE", "XDG_CACHE_HOME", "KUBECACHEDIR", "PYTEST_XDIST_WORKER"):
        monkeypatch.delenv(variable, raising=False)
    # what the kubernetes client computed from $KUBECONFIG when it was first imported, for this test's $KUBECONFIG
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    # the run's namespaces are the recordings' ``default`` (per-run prefixes are pinned in test_kube_commands.py)
    monkeypatch.setattr(session, "run_namespace_prefix", lambda mesh, run_id: None)
    # every wait bounded by seconds, not the real mesh's minutes, should a recording not match
    monkeypatch.setattr(session, "KubeMesh", functools.partial(KubeMesh, sync_timeout_s=5.0, rollout_timeout_s=5.0,
                                                                poll_s=0.05))
    # istioctl is cached: nothing is downloaded
    istioctl = home / ".cache" / "mesh-harness" / f"istioctl-{DEFAULT_ISTIO_VERSION}" / "istioctl"
    istioctl.parent.mkdir(parents=True)
    istioctl.write_text("#!/bin/sh\nexit 99\n")
    return UserHome(home, config, config.read_bytes(), config.stat().st_mtime_ns, log, bin_dir)


@dataclass
class Loaded:
    """What the kubernetes client was asked to load, and the API server it ended up pointing at."""

    config_file: str | None
    context: str | None
    persist_config: bool
    host: str


def lifecycle(opts: KubeOptions, run: FakeRunner, user: UserHome, monkeypatch: pytest.MonkeyPatch,
              images: Sequence[ImageSpec] = (), refs: list[str] | None = None) -> tuple[list[Loaded], Path]:
    """open -> deploy -> apply -> app_log -> revert -> close, against recordings; the kubeconfigs loaded and the work dir.
    ``images`` are built beside the echo image; their references as the mesh names them go to ``refs``."""
    server = RecordedApiServer()
    forwards_before = len(user.kubectl_commands())
    loaded: list[Loaded] = []
    real_client: Callable[..., Any] = kubernetes.config.new_client_from_config

    def recorded_client(config_file: str | None = None, context: str | None = None, persist_config: bool = True,
                        **kwargs: Any) -> Any:
        client = real_client(config_file=config_file, context=context, persist_config=persist_config, **kwargs)
        loaded.append(Loaded(config_file, context, persist_config, str(client.configuration.host)))
        client.rest_client = server
        return client

    monkeypatch.setattr(kubernetes.config, "new_client_from_config", recorded_client)

    def dump() -> str:
        text = json.dumps(recording("config_dump.json"))
        return text.replace("__VERSION__", str(server.sentinel_version("default"))).replace("__NAMESPACE__", "default")

    with RecordedProxy(dump).serving() as port:
        monkeypatch.setenv("MH_TEST_FORWARD_PORT", str(port))
        mesh = open_kube_mesh(opts, run=run, images=images)
        if refs is not None:
            refs += [mesh.image(spec.name) for spec in images]
        try:
            mesh.deploy(DEFAULT_TOPOLOGY)
            token = mesh.apply(load_objects(load_documents(CANARY, "canary.yaml")))
            assert mesh.app_log("reviews", "v1")  # opens the app pods' port-forwards too
            mesh.revert(token)
        finally:
            mesh.close()
    workdirs = {Path(flag(c, "--cache-dir")).parent for c in user.kubectl_commands()[forwards_before:]}
    assert len(workdirs) == 1, workdirs
    return loaded, workdirs.pop()


def tool_commands(run: FakeRunner, user: UserHome) -> dict[str, list[list[str]]]:
    """Every command line issued, by tool name (kind, docker and istioctl from the runner; kubectl from its log)."""
    by_tool: dict[str, list[list[str]]] = {}
    for argv in [*run.commands, *user.kubectl_commands()]:
        by_tool.setdefault(Path(argv[0]).name, []).append(argv)
    return by_tool


def assert_no_context_edits(commands: dict[str, list[list[str]]]) -> None:
    for argv in commands.get("kubectl", []):
        assert not KUBECTL_CONFIG_EDITS & set(argv), f"kubectl would edit a kubeconfig: {argv}"
    for argv in commands.get("istioctl", []):
        assert argv[1] == "install", argv  # the one istioctl command; it reads the kubeconfig it is given


@pytest.mark.parametrize("reuse", [False, True], ids=["new cluster, deleted at close", "kept cluster, reused"])
def test_kind_mesh_lifecycle_leaves_the_users_kubeconfig_alone(user_home: UserHome, monkeypatch: pytest.MonkeyPatch,
                                                               reuse: bool) -> None:
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)  # two runs here, not two workers of one
    run = KindRunner()
    harness_kubeconfig = user_home.home / ".cache" / "mesh-harness" / "kind" / "mesh-harness" / "kubeconfig"
    opts = KubeOptions("kind", istio_revision="canary")  # no istiod-canary in the recordings: Istio gets installed
    workdirs: list[Path] = []
    if reuse:
        workdirs.append(lifecycle(KubeOptions("kind", istio_revision="canary", keep_cluster=True), run, user_home,
                                  monkeypatch)[1])
        run.answers[f"{user_home.bin_dir / 'kind'} get clusters"] = "mesh-harness\n"  # the kept cluster is listed now
    loaded, workdir = lifecycle(opts, run, user_home, monkeypatch)
    workdirs.append(workdir)

    user_home.assert_untouched()
    commands = tool_commands(run, user_home)
    verbs = {tuple(argv[1:3]) for argv in commands["kind"]}
    lifecycle_verbs = {("create", "cluster"), ("load", "docker-image")} | (
        {("export", "kubeconfig")} if reuse else {("delete", "cluster")})
    assert lifecycle_verbs <= verbs, verbs
    assert commands["istioctl"] and commands["kubectl"]
    for tool in ("kind", "kubectl", "istioctl"):
        for argv in commands[tool]:
            if tool == "kind" and (tuple(argv[1:3]) in KIND_WITHOUT_KUBECONFIG or argv[1:] == ["version"]):
                assert "--kubeconfig" not in argv
                continue
            assert flag(argv, "--kubeconfig") == str(harness_kubeconfig), f"{tool} not on the harness's kubeconfig: {argv}"
            if tool != "kind":
                assert flag(argv, "--context") == "kind-mesh-harness", argv
    for argv in commands["kubectl"]:
        assert Path(flag(argv, "--cache-dir")).parent in workdirs, argv  # the run's own, not ~/.kube/cache
    assert_no_context_edits(commands)
    assert all(load == Loaded(str(harness_kubeconfig), "kind-mesh-harness", False, "https://127.0.0.1:6443")
               for load in loaded) and loaded
    assert not any(w.exists() for w in workdirs), f"a run's work dir (kubectl cache) was left behind: {workdirs}"
    assert harness_kubeconfig.exists() == reuse  # a deleted cluster takes its kubeconfig with it; a kept one keeps it


def test_cluster_mesh_reads_the_named_context_and_never_writes(user_home: UserHome,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRunner()
    opts = KubeOptions("cluster", context="prod", image_registry="registry.example/team")
    loaded, workdir = lifecycle(opts, run, user_home, monkeypatch)

    user_home.assert_untouched()
    # the default kubeconfig ($KUBECONFIG), context prod (6443), not the current context staging (7443)
    assert [(x.config_file, x.context, x.persist_config, x.host) for x in loaded] == [
        (None, "prod", False, "https://127.0.0.1:6443")]
    commands = tool_commands(run, user_home)
    assert set(commands) == {"docker", "kubectl"}, "--mesh cluster runs no kind and no istioctl"
    push = next(argv for argv in commands["docker"] if argv[1] == "push")
    assert push[-1].endswith("-amd64")  # built for the nodes' platform (recordings/nodes.json)
    assert len(commands["kubectl"]) >= 3
    for argv in commands["kubectl"]:
        assert flag(argv, "--context") == "prod", argv  # never the current context
        assert "--kubeconfig" not in argv  # the user's default, read by kubectl, as given
        assert Path(flag(argv, "--cache-dir")).is_relative_to(workdir), argv
        assert argv[-5:-2] == ["port-forward", "--address", "127.0.0.1"] and re.fullmatch(r"pod/[a-z0-9-]+", argv[-2]), argv
    assert_no_context_edits(commands)
    assert not workdir.exists()


def test_kind_mesh_builds_and_loads_a_callers_image_beside_the_echo_image(user_home: UserHome,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The Locust worker image of ``load --mesh kind``: built from its own Dockerfile, loaded into the cluster
    after the echo image, and named by the mesh; an image nobody built is refused by name."""
    from harness.locust.kube import load_image

    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)
    run = KindRunner()
    spec = load_image("2.47.0")
    refs: list[str] = []
    lifecycle(KubeOptions("kind", istio_revision="canary"), run, user_home, monkeypatch, images=(spec,), refs=refs)
    want = image.image_ref(image.image_tag(spec=spec), spec=spec)
    assert refs == [want]
    inspected = [argv[-1] for argv in run.commands if argv[1:3] == ["image", "inspect"]]  # found: not rebuilt
    assert inspected[-1] == want and inspected[-2].startswith("mesh-harness-echo:")
    loads = [argv[3] for argv in run.commands if argv[1:3] == ["load", "docker-image"]]
    assert loads[-2:] == [loads[-2], want] and loads[-2].startswith("mesh-harness-echo:")
