"""Every command line the kind and cluster meshes would run, and the cluster lifecycle, with a fake runner."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from harness.errors import CaseError, MeshError, ProcessError
from harness.mesh.kube import image
from harness.mesh.kube.istio_install import install_command, install_istio, install_overlay, istiod_image_version
from harness.mesh.kube.kindcluster import (
    KindCluster,
    KindSpec,
    config_hash,
    inotify_hint,
    kind_config,
    parse_kind_version,
)
from harness.mesh.kube.portforward import parse_forwarding_line, port_forward_command
from harness.mesh.kube.session import KubeOptions, check_prerequisites, run_namespace_prefix
from harness.mesh.kube.tools import ToolMissing
from harness.mesh.kube.versions import DEFAULT_KUBERNETES, KIND_NODE_IMAGES, node_image
from harness.progress import Event, StepDone, StepStarted

KIND_VERSION_OUTPUT = "kind v0.33.0 go1.25.1 linux/amd64\n"


class FakeRunner:
    """Records command lines; answers from ``answers`` (first matching prefix), ProcessError for ``fail``."""

    def __init__(self, answers: dict[str, str] | None = None, fail: tuple[str, ...] = ()) -> None:
        self.commands: list[list[str]] = []
        self.answers = answers or {}
        self.fail = fail

    def __call__(self, argv: list[str], *, what: str, timeout_s: float, **kwargs: Any) -> str:
        assert timeout_s > 0 and what
        self.commands.append(list(argv))
        line = " ".join(argv)
        if any(line.startswith(f) for f in self.fail):
            raise ProcessError(f"{what}: `{line}` exited with 1:\nERROR: failed")
        default = KIND_VERSION_OUTPUT if argv[1:] == ["version"] and argv[0].endswith("kind") else ""
        return next((out for prefix, out in self.answers.items() if line.startswith(prefix)), default)


def test_kube_kind_config_pins_the_node_image() -> None:
    config = kind_config(KindSpec())
    assert config == {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": "mesh-harness",
                      "nodes": [{"role": "control-plane", "image": KIND_NODE_IMAGES[DEFAULT_KUBERNETES]}]}
    assert all("@sha256:" in image and image.startswith(f"kindest/node:v{minor}.") for minor, image in KIND_NODE_IMAGES.items())
    assert config_hash(config) != config_hash(kind_config(KindSpec(kubernetes="1.34")))
    with pytest.raises(CaseError, match="no pinned kind node image for Kubernetes '1.20'; pinned: 1.34, 1.35"):
        node_image("1.20")


def test_kube_kind_cluster_created_then_deleted(tmp_path: Path) -> None:
    run = FakeRunner()
    cluster = KindCluster(KindSpec(), kind="/bin/kind", state_dir=tmp_path, run=run)
    cluster.up()
    kubeconfig = str(tmp_path / "mesh-harness" / "kubeconfig")
    assert run.commands == [["/bin/kind", "version"], ["/bin/kind", "get", "clusters"],
                            ["/bin/kind", "create", "cluster", "--name", "mesh-harness", "--config",
                             str(tmp_path / "mesh-harness" / "kind-config.json"), "--kubeconfig", kubeconfig, "--wait", "300s"]]
    assert json.loads((tmp_path / "mesh-harness" / "kind-config.json").read_text()) == kind_config(KindSpec())
    assert cluster.context == "kind-mesh-harness"
    cluster.load_image("mesh-harness-echo:abc")
    cluster.close()
    cluster.close()
    assert run.commands[3:] == [["/bin/kind", "load", "docker-image", "mesh-harness-echo:abc", "--name", "mesh-harness"],
                                ["/bin/kind", "delete", "cluster", "--name", "mesh-harness", "--kubeconfig", kubeconfig]]


def test_kube_kind_cluster_reused_kept_and_never_taken_over(tmp_path: Path) -> None:
    KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=FakeRunner(), token="run-a").up()  # the stamp
    run = FakeRunner({"kind get clusters": "other\nmesh-harness\n"})
    reused = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=run, token="run-b")
    reused.up()
    reused.close()  # not created by this run: never deleted
    assert [c[1] for c in run.commands] == ["version", "get", "export"]
    with pytest.raises(MeshError, match="exists but was made with another config; delete it with `kind delete cluster --name mesh-harness`"):
        KindCluster(KindSpec(kubernetes="1.34"), kind="kind", state_dir=tmp_path, run=run).up()
    with pytest.raises(MeshError, match="exists but was not made by mesh-harness"):
        KindCluster(KindSpec(), kind="kind", state_dir=tmp_path / "elsewhere", run=run).up()
    kept = KindCluster(KindSpec(name="k"), kind="kind", state_dir=tmp_path, run=(run := FakeRunner()), keep=True)
    kept.up()
    kept.close()
    assert [c[1] for c in run.commands] == ["version", "get", "create"]


def test_kube_kind_create_failure_hints_inotify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert inotify_hint({"max_user_watches": 8192, "max_user_instances": 128}) == (
        "inotify limits are below what kind needs for Istio's pods; raise them with "
        "`sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512`")
    assert inotify_hint({"max_user_watches": 524288, "max_user_instances": 8192}) is None
    assert inotify_hint({}) is None
    monkeypatch.setattr("harness.mesh.kube.kindcluster.read_inotify_limits", lambda: {"max_user_instances": 128})
    with pytest.raises(ProcessError, match="ERROR: failed\ninotify limits .* fs.inotify.max_user_instances=512"):
        KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=FakeRunner(fail=("kind create",))).up()


def test_kube_istioctl_install(tmp_path: Path) -> None:
    assert install_overlay() == {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": {
        "profile": "minimal",
        "meshConfig": {"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON",
                       "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
        "components": {"ingressGateways": [{"name": "istio-ingressgateway", "enabled": True}]},
        "values": {"gateways": {"istio-ingressgateway": {"type": "ClusterIP"}}}}}
    canary = install_overlay("canary")["spec"]
    assert canary["revision"] == "canary" and "components" not in canary  # the first install's gateway stays
    run = FakeRunner()
    install_istio(run, "/c/istioctl", tmp_path, tmp_path / "kc", "kind-mesh-harness", "canary")
    overlay = tmp_path / "istio-overlay-canary.json"
    assert run.commands == [install_command("/c/istioctl", overlay, tmp_path / "kc", "kind-mesh-harness")] == [[
        "/c/istioctl", "install", "--skip-confirmation", "-f", str(overlay), "--kubeconfig", str(tmp_path / "kc"),
        "--context", "kind-mesh-harness", "--readiness-timeout", "600s"]]
    assert json.loads(overlay.read_text()) == install_overlay("canary")
    assert istiod_image_version("docker.io/istio/pilot:1.30.3") == "1.30.3"
    assert istiod_image_version("gcr.io/istio-release/pilot:1.30.3-distroless@sha256:ab") == "1.30.3-distroless"
    assert istiod_image_version("pilot") == ""


class ContextRecorder(FakeRunner):
    """A FakeRunner that lists the build context's files while ``docker build`` runs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context_files: set[str] = set()

    def __call__(self, argv: list[str], *, what: str, timeout_s: float, **kwargs: Any) -> str:
        if argv[1] == "build":
            context = Path(argv[-1])
            self.context_files = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
        return super().__call__(argv, what=what, timeout_s=timeout_s, **kwargs)


def test_kube_echo_image_built_once_and_pushed_for_a_registry() -> None:
    tag = image.source_hash()
    built = ContextRecorder(fail=("docker image inspect",))
    ref = image.ensure_image(built, "docker")
    assert ref == f"mesh-harness-echo:{tag}" and len(tag) == 12
    context = Path(built.commands[1][-1])
    assert built.commands[1] == ["docker", "build", "--file", f"{context}/harness/sample_apps/echo/Dockerfile",
                                "--tag", ref, "--build-arg", "BASE=python:3.11-slim", str(context)]
    # a temporary context, in the layout the Dockerfile's COPY lines name, whatever the install; removed after
    assert built.context_files == {str(p) for p in image.source_files()} | {"harness/sample_apps/echo/Dockerfile"}
    assert {"harness/__init__.py", "harness/sample_apps/echo/__main__.py"} <= built.context_files
    assert not context.exists()
    cached = FakeRunner()
    assert image.ensure_image(cached, "docker", "registry.example/team/") == f"registry.example/team/mesh-harness-echo:{tag}"
    assert [c[1] for c in cached.commands] == ["image", "push"]


def test_kube_long_steps_are_reported_with_their_name_and_elapsed_time(tmp_path: Path) -> None:
    # cluster create, Istio install, image build, image push and image load: each a StepStarted then a StepDone.
    seen: list[Event] = []
    run = FakeRunner(fail=("docker image inspect",))
    cluster = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=run, observer=seen.append)
    cluster.up()
    install_istio(run, "istioctl", tmp_path, cluster.kubeconfig, cluster.context, observer=seen.append)
    ref = image.ensure_image(run, "docker", "registry.example", observer=seen.append)
    cluster.load_image(ref)
    assert [e.name for e in seen if isinstance(e, StepStarted)] == [
        "cluster create", "Istio install", "image build", "image push", "image load"]
    assert [type(e) for e in seen] == [StepStarted, StepDone] * 5
    assert all(e.ok and e.seconds >= 0 for e in seen if isinstance(e, StepDone))
    assert seen[0] == StepStarted("cluster create", "kind create cluster --name mesh-harness")
    reused = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=FakeRunner({"kind get clusters": "mesh-harness"}),
                         observer=(again := []).append)
    reused.up()
    assert again == []  # reusing a cluster is quick: no step


def test_kube_a_failed_step_is_reported_as_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.mesh.kube.kindcluster.read_inotify_limits", lambda: {})
    seen: list[Event] = []
    with pytest.raises(ProcessError):
        KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=FakeRunner(fail=("kind create",)),
                    observer=seen.append).up()
    assert [type(e) for e in seen] == [StepStarted, StepDone] and isinstance(seen[1], StepDone) and not seen[1].ok


def test_kube_dockerfile_copies_what_the_echo_app_imports() -> None:
    """The image holds harness/sample_apps only: the echo app must not import other harness modules."""
    text = image.dockerfile_path().read_text()
    assert "COPY harness/sample_apps/ /app/harness/sample_apps/" in text and "python:3.11-slim" in text
    sources = [path for name, path in image.source_files().items() if name.parts[:2] == ("harness", "sample_apps")]
    assert len(sources) > 10
    for path in sources:
        for line in path.read_text().splitlines():
            if line.startswith(("from harness", "import harness")):
                assert line.startswith(("from harness.sample_apps", "import harness.sample_apps")), f"{path}: {line}"


def test_kube_port_forward_command_and_ready_line() -> None:
    assert port_forward_command("kubectl", Path("/k/kc"), "kind-x", "ns", "client-1", 15000) == [
        "kubectl", "--kubeconfig", "/k/kc", "--context", "kind-x", "--namespace", "ns", "port-forward",
        "--address", "127.0.0.1", "pod/client-1", ":15000"]
    assert port_forward_command("kubectl", None, None, "ns", "p", 1)[1:3] == ["--namespace", "ns"]
    assert parse_forwarding_line("Forwarding from 127.0.0.1:43121 -> 15000\n") == 43121
    assert parse_forwarding_line("Forwarding from [::1]:43121 -> 15000") is None
    assert parse_forwarding_line("Handling connection for 43121") is None


def _fake_tools(tmp_path: Path, names: list[str]) -> str:
    for name in names:
        tool = tmp_path / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return str(tmp_path)


def test_kube_prerequisites_fail_fast_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match=r"--mesh kind needs `kind`, which is not on PATH; install kind \(https://kind"):
        check_prerequisites(KubeOptions("kind"), run=FakeRunner(), path=_fake_tools(tmp_path, ["docker", "kubectl"]))
    with pytest.raises(ToolMissing, match="--mesh kind needs `docker`, which is not on PATH"):
        check_prerequisites(KubeOptions("kind"), run=FakeRunner(), path=str(tmp_path / "empty"))
    path = _fake_tools(tmp_path, ["docker", "kubectl", "kind"])
    with pytest.raises(ToolMissing, match="needs a running Docker engine, and `docker version` got no answer"):
        check_prerequisites(KubeOptions("kind"), run=FakeRunner(fail=("/",)), path=path)
    tools = check_prerequisites(KubeOptions("kind"), run=FakeRunner(), path=path)
    assert tools.kind == os.path.join(path, "kind")
    with pytest.raises(CaseError, match="--mesh cluster needs --context NAME"):
        check_prerequisites(KubeOptions("cluster"), run=FakeRunner(), path=path)
    with pytest.raises(CaseError, match="--mesh cluster needs --image-registry REGISTRY"):
        check_prerequisites(KubeOptions("cluster", context="prod"), run=FakeRunner(), path=path)
    with pytest.raises(CaseError, match="--kubeconfig and --context are for --mesh cluster"):
        check_prerequisites(KubeOptions("kind", context="prod"), run=FakeRunner(), path=path)


def test_kube_namespaces_per_run_and_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert run_namespace_prefix("kind", "ab12") is None
    assert run_namespace_prefix("cluster", "ab12") == "mh-ab12"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert run_namespace_prefix("kind", "ab12") == "mh-gw1"
    assert run_namespace_prefix("cluster", "ab12") == "mh-gw1-ab12"


def test_kube_kind_version_is_checked(tmp_path: Path) -> None:
    old = FakeRunner({"kind version": "kind v0.20.0 go1.20.4 linux/amd64"})
    with pytest.raises(MeshError, match=r"kind v0.33.0 or newer is needed .* says 'kind v0.20.0 go1.20.4 linux/amd64'"):
        KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=old).up()
    assert old.commands == [["kind", "version"]]  # nothing created
    assert parse_kind_version("kind v0.33.1 go1.25 linux/arm64") == (0, 33, 1) and parse_kind_version("?") is None


def test_kube_kind_create_cut_short_is_deleted_at_close(tmp_path: Path) -> None:
    """Ctrl-C (or a failure) during ``kind create``: close deletes the half-made cluster, so that the next run
    does not meet a cluster without the harness's stamp."""

    class Interrupted(FakeRunner):
        def __call__(self, argv: list[str], **kwargs: Any) -> str:
            out = super().__call__(argv, **kwargs)
            if argv[1:3] == ["create", "cluster"]:
                raise KeyboardInterrupt
            return out

    run = Interrupted()
    cluster = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=run)
    with pytest.raises(KeyboardInterrupt):
        cluster.up()
    cluster.close()
    assert [c[1] for c in run.commands] == ["version", "get", "create", "delete"]
    assert not (tmp_path / "mesh-harness" / "config-hash").exists()


def test_kube_kind_cluster_shared_by_xdist_workers_is_created_once_and_deleted_by_the_last(tmp_path: Path) -> None:
    """Two workers of one run (one test-run id): the first creates, the second reuses; the creator finishing
    first deletes nothing while the other still holds the cluster; the last one out deletes it."""
    run = FakeRunner()
    first = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=run, token="run-1")
    first.up()
    run.answers["kind get clusters"] = "mesh-harness\n"
    second = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path, run=run, token="run-1")
    second.up()
    first.close()
    assert [c[1] for c in run.commands] == ["version", "get", "create", "version", "get", "export"]
    second.close()
    assert run.commands[-1][:3] == ["kind", "delete", "cluster"]
    other_run = FakeRunner({"kind get clusters": "mesh-harness\n"})
    kept = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path / "kept", run=FakeRunner(), keep=True)
    kept.up()
    kept.close()
    reused = KindCluster(KindSpec(), kind="kind", state_dir=tmp_path / "kept", run=other_run, token="run-2")
    reused.up()
    reused.close()
    assert "delete" not in [c[1] for c in other_run.commands]  # another run made it: never deleted
