"""``load --mesh kind|cluster``: the worker image holds what the locustfiles import, the worker Deployment is
valid for every pinned Kubernetes and sends as the client through its own sidecar, the ``--dry-run`` plan is
pinned, and the live run is refused naming ``--dry-run``. None of this has run on a cluster (README)."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from harness.case import Case, load_case_file
from harness.cases_discovery import bundled_cases_dir
from harness.cli import main
from harness.errors import CaseError, MeshError, SyncTimeout
from harness.loadspec import LoadSpec
from harness.locust.command import LoadOptions
from harness.locust.kube import (
    WORKERS_NAME,
    Workers,
    kind_gateway,
    kind_gateway_command,
    load_image,
    render_workers,
)
from harness.locust.kube_command import KubeFlags, kube_load_from, load_on_kube
from harness.locust.kube_plan import KIND_GATEWAY, KubeLoad, load_kube_plan
from harness.mesh.kube import image
from harness.mesh.kube.api import resource_path
from harness.mesh.kube.manifests import INSTANCE_LABEL, RenderOptions, render_client
from harness.mesh.kube.plan import Plan
from harness.mesh.kube.session import KubeOptions
from harness.mesh.kube.versions import KIND_NODE_IMAGES
from harness.topology import DEFAULT_TOPOLOGY
from tests.kube.istio_crds import istio_problems

CACHE = Path("/cache")
KIND = KubeOptions("kind")
CLUSTER = KubeOptions("cluster", context="staging", image_registry="ghcr.io/me")
LOAD = KubeLoad(workers=3, master_port=5557, locust_version="2.47.0")
CLIENT = DEFAULT_TOPOLOGY.clients[0]
RENDER = RenderOptions(image="mesh-harness-echo:0123456789ab", run_id="r1", gateway_ip="10.96.0.9")
WORKERS = Workers(replicas=4, master_host="172.18.0.1", master_port=5557, url="http://reviews:9080", protocol="http",
                  image="mesh-harness-load:0123456789ab")


def canary() -> Case:
    return load_case_file(bundled_cases_dir() / "load-canary.yaml")[0]


def grpc_case() -> Case:
    return load_case_file(bundled_cases_dir() / "grpc.yaml")[0]


def lines(plan: Plan) -> list[str]:
    return [f"{s.action} {s.summary}" for s in plan.steps]


def test_kube_load_worker_deployment_sends_as_the_client_through_its_own_sidecar() -> None:
    got = render_workers(CLIENT, WORKERS, RENDER)
    client = render_client(CLIENT, RENDER)
    pod = got["spec"]["template"]
    assert got["metadata"]["name"] == WORKERS_NAME and got["spec"]["replicas"] == 4
    # the client's labels (sourceLabels match the workers as they match the client), its sidecar settings...
    assert {k: v for k, v in pod["metadata"]["labels"].items() if k != INSTANCE_LABEL} == \
           {k: v for k, v in client["spec"]["template"]["metadata"]["labels"].items() if k != INSTANCE_LABEL}
    assert pod["metadata"]["annotations"]["proxy.istio.io/config"] == \
           client["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"]
    # ...but a selector of its own: the client Deployment must not adopt the worker pods, nor they its pod
    assert got["spec"]["selector"] == {"matchLabels": {INSTANCE_LABEL: WORKERS_NAME}} != client["spec"]["selector"]
    # the sidecar lets the master's address (and the gateway's, as for the client) pass REGISTRY_ONLY
    assert pod["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeOutboundIPRanges"] == \
           "10.96.0.9/32,172.18.0.1/32"
    container, = pod["spec"]["containers"]
    assert container["image"] == "mesh-harness-load:0123456789ab"
    assert container["args"] == ["-f", "/app/harness/locust/locustfile.py", "--exit-code-on-error", "0", "--worker",
                                 "--master-host", "172.18.0.1", "--master-port", "5557",
                                 "--mesh-worker-name", "$(POD_NAME)", "--mesh-own-host", "http://reviews:9080"]
    assert container["env"] == [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    without_gateway = render_workers(CLIENT, WORKERS, RenderOptions(image="i:1", run_id="r1"))
    assert without_gateway["spec"]["template"]["metadata"]["annotations"][
        "traffic.sidecar.istio.io/excludeOutboundIPRanges"] == "172.18.0.1/32"
    ipv6 = render_workers(CLIENT, replace(WORKERS, master_host="fd00::5"), RenderOptions(image="i:1", run_id="r1"))
    assert ipv6["spec"]["template"]["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeOutboundIPRanges"] \
        == "fd00::5/128"


@pytest.mark.parametrize("kubernetes", sorted(KIND_NODE_IMAGES))
def test_kube_load_worker_deployment_valid_for_pinned_kubernetes(kubernetes: str) -> None:
    grpc = Workers(1, "10.0.0.5", 6000, "http://reviews:7070", "grpc", "ghcr.io/me/mesh-harness-load:0123456789ab")
    for workers in (WORKERS, grpc):
        kubernetes_validate.validate(render_workers(CLIENT, workers, RENDER), f"{kubernetes}.0", strict=True)


def test_kube_load_image_entrypoint_runs_the_locust_the_args_expect() -> None:
    """The Deployment's args follow ``python -m locust`` (``render_workers`` drops exactly that from the command)."""
    text = image.dockerfile_path(load_image("2.47.0")).read_text()
    assert 'ENTRYPOINT ["python", "-m", "locust"]' in text and "WORKDIR /app" in text
    assert '"locust==${LOCUST_VERSION}"' in text and "USER 1000:1000" in text


def _copied(dockerfile: str, context: Path) -> set[str]:
    """Module paths (relative to the build context) the Dockerfile's COPY lines bring into the image."""
    out: set[str] = set()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                path = context / source
                out |= {str(p.relative_to(context)) for p in path.rglob("*.py")} if path.is_dir() else {source}
    return out


def _modules(name: str) -> list[tuple[str, Path]]:
    """What importing ``name`` runs: each package's __init__, then the module (a name may go on to an attribute,
    ``harness.sample_apps.echo.fields.CONFIG_VERSION_HEADER``); as (path in a build context, installed file).
    Only packages are imported to find them: a locustfile patches the standard library with gevent."""
    parts = name.split(".")
    found: list[tuple[str, Path]] = []
    for i in range(1, len(parts) + 1):
        spec = importlib.util.find_spec(".".join(parts[:i]))
        if spec is None or spec.origin is None:
            break
        path = "/".join(parts[:i])
        is_package = spec.submodule_search_locations is not None
        found.append((f"{path}/__init__.py" if is_package else f"{path}.py", Path(spec.origin)))
        if not is_package:
            break
    return found


class _RunTimeOnly(ast.NodeTransformer):
    """Drops ``if TYPE_CHECKING:`` blocks: a type checker reads them, an image never runs them."""

    def visit_If(self, node: ast.If) -> ast.AST | None:
        return None if ast.unparse(node.test) == "TYPE_CHECKING" else self.generic_visit(node)


def _harness_imports(path: Path) -> set[str]:
    tree = _RunTimeOnly().visit(ast.parse(path.read_text()))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    names |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
              for a in n.names}  # `from harness.locust import locustfile`
    return {n for n in names if n.split(".")[0] == "harness"}


def test_kube_load_image_copies_what_the_locustfiles_import() -> None:
    """Every harness module the locustfiles reach (transitively, packages' __init__ included) is in the image's
    build context, and the image's tag covers exactly the files it copies."""
    spec = load_image("2.47.0")
    with image.staged_context(spec) as context:
        copied = _copied(image.dockerfile_path(spec).read_text(), context)
    seen: set[str] = set()
    todo = ["harness.locust.locustfile", "harness.locust.grpc_locustfile"]
    while todo:
        for module, installed in _modules(todo.pop()):
            if module not in seen:
                seen.add(module)
                assert module in copied, f"{module} is imported by the locustfiles but not copied into the load image"
                todo += _harness_imports(installed)
    assert {"harness/locust/wire.py", "harness/sample_apps/echo/fields.py"} <= seen  # the walk follows imports
    assert "harness/locust/run.py" not in copied  # the harness side of load (scipy, the mesh) stays out
    assert {str(p) for p in image.source_files(spec)} == copied


def test_kube_load_image_tag_follows_the_locust_release_and_the_echo_tag_does_not_move() -> None:
    assert image.image_tag(spec=load_image("2.47.0")) != image.image_tag(spec=load_image("2.48.0"))
    assert image.image_ref("t", "ghcr.io/me/", load_image("2.47.0")) == "ghcr.io/me/mesh-harness-load:t"
    assert image.build_command("docker", "i:1", Path("/ctx"), spec=load_image("2.47.0"))[-3:] == [
        "--build-arg", "LOCUST_VERSION=2.47.0", "/ctx"]
    assert image.source_hash() == image.source_hash(image.ECHO)  # the echo image's tag: as before


def test_kube_load_master_address_on_kind_is_the_networks_ipv4_gateway() -> None:
    assert kind_gateway_command("docker") == ["docker", "network", "inspect", "kind", "--format",
                                              "{{range .IPAM.Config}}{{.Gateway}} {{end}}"]
    assert kind_gateway("fc00:f853:ccd:e793::1 172.18.0.1 ") == "172.18.0.1"
    with pytest.raises(MeshError, match=re.escape("the 'kind' Docker network has no IPv4 gateway (docker network "
                                                  "inspect said 'fc00::1'); give the master's address with "
                                                  "--master-host-for-pods ADDR")):
        kind_gateway("fc00::1\n")


def test_kube_load_dry_run_plan_on_kind_is_pinned() -> None:
    got = lines(load_kube_plan(KIND, canary(), canary().load or LoadSpec(), LOAD, cache_dir=CACHE))
    spec = load_image("2.47.0")
    load_ref = image.image_ref(image.image_tag(spec=spec), spec=spec)
    echo_ref = image.image_ref(image.image_tag())
    at = got.index(f"run docker image inspect --format {{{{.Id}}}} {echo_ref}")
    assert got[at + 2] == f"run docker image inspect --format {{{{.Id}}}} {load_ref}"  # as open_kube_mesh(images=)
    assert got[at + 3].startswith(f"run docker build --file <build context>/harness/locust/Dockerfile --tag {load_ref}")
    assert got[at + 4:at + 8] == [
        f"run kind load docker-image {echo_ref} --name mesh-harness",
        f"run kind load docker-image {load_ref} --name mesh-harness",
        "wait GET Service istio-system/istio-ingressgateway: the ingress gateway's ClusterIP",
        # found before anything is deployed, as the live run does: a missing kind network fails first
        "run docker network inspect kind --format {{range .IPAM.Config}}{{.Gateway}} {{end}}"]
    tail = got[got.index("wait config version 2: the sentinels in the config_dump of client (bounded)") + 1:]
    assert tail[0] == "write <work dir>/plan.json"
    assert tail[1].startswith("run ") and tail[1].endswith("   (here, in the background: it ends the run)")
    for part in ("--master --master-bind-host <IPv4 gateway of the kind network> --master-bind-port 5557 "
                 "--expect-workers 3 --expect-workers-max-wait 300 --mesh-run-time 10",
                 "--host http://reviews:9080", "-u 8 -r 8", "harness/locust/locustfile.py"):
        assert part in tail[1]
    assert tail[2:] == [
        f"apply Deployment default/{WORKERS_NAME}",
        f"wait 3 pods of Deployment default/{WORKERS_NAME} running with their sidecars, and 3 workers connected to "
        "the master (at most 300s)",
        "wait the master's exit: 10s of load, then every worker's last records (at most 70s); a pod whose last "
        "records never came is named lost and fails the run",
        f"delete Deployment default/{WORKERS_NAME} (also on Ctrl-C or a failed wait)",
        "delete DestinationRule default/reviews (revert)", "delete VirtualService default/reviews (revert)",
        "apply ServiceEntry default/mesh-harness-sync", "apply VirtualService default/mesh-harness-sync",
        "apply DestinationRule default/mesh-harness-sync",
        "wait config version 3: the sentinels in the config_dump of client (bounded)",
        "delete the run's objects (label mesh-harness.io/run=dry-run) and the namespaces it made (of default, those "
        "that were missing); then the port-forwards",
        "run kind delete cluster --name mesh-harness --kubeconfig /cache/kind/mesh-harness/kubeconfig"]


def test_kube_load_dry_run_hands_the_workers_the_applied_config_version() -> None:
    plan = load_kube_plan(KIND, canary(), canary().load or LoadSpec(), LOAD, cache_dir=CACHE)
    written, = [s.body for s in plan.steps if s.action == "write" and s.summary == "<work dir>/plan.json"]
    assert written is not None and written["config_version"] == "2"  # the sentinels' version after the apply
    workers, = [o for o in plan.objects() if o["metadata"]["name"] == WORKERS_NAME]
    args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--master-host") + 1] == KIND_GATEWAY and "--mesh-config-version" not in args


def test_kube_load_dry_run_on_cluster_with_grpc_and_the_given_master_address() -> None:
    case = grpc_case()
    plan = load_kube_plan(CLUSTER, case, case.load or LoadSpec(),
                          KubeLoad(2, 6000, "10.0.0.5", "2.47.0"), cache_dir=CACHE)
    got = lines(plan)
    assert not any("kind" in line.split()[1:2] or "docker network" in line for line in got)
    assert any(line.startswith("run docker push ghcr.io/me/mesh-harness-load:") and line.endswith("-<arch of the nodes>")
               for line in got)
    master, = [line for line in got if "--master-bind-host" in line]
    assert "--master-bind-host * --master-bind-port 6000 --expect-workers 2" in master
    assert "harness/locust/grpc_locustfile.py" in master and "--host http://reviews:7070" in master
    workers, = [o for o in plan.objects() if o["metadata"]["name"] == WORKERS_NAME]
    assert workers["metadata"]["namespace"] == "mh-dry-run-default"
    args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["-f", "/app/harness/locust/grpc_locustfile.py"] and args[-2:] == ["--mesh-own-host", "http://reviews:7070"]


@pytest.mark.parametrize("opts", [KIND, CLUSTER], ids=["kind", "cluster"])
def test_kube_load_every_object_of_the_plan_is_valid_for_istio_and_kubernetes(opts: KubeOptions) -> None:
    load = LOAD if opts.mesh == "kind" else KubeLoad(3, 5557, "10.0.0.5", "2.47.0")
    objects: list[dict[str, Any]] = []
    for case in (canary(), grpc_case()):
        objects += load_kube_plan(opts, case, case.load or LoadSpec(), load, cache_dir=CACHE).objects()
    assert WORKERS_NAME in {o["metadata"]["name"] for o in objects}
    istio = [o for o in objects if o["apiVersion"].startswith("networking.istio.io/")]
    assert {f"{o['kind']}/{o['metadata']['name']}": istio_problems(o) for o in istio if istio_problems(o)} == {}
    unique = {json.dumps(o, sort_keys=True): o for o in objects if o not in istio}
    for kubernetes in sorted(KIND_NODE_IMAGES):
        for manifest in unique.values():
            kubernetes_validate.validate(manifest, f"{kubernetes}.0", strict=True)


def test_kube_load_flags_refused_in_one_line_with_what_to_do() -> None:
    cases = [
        (KubeFlags("local", dry_run=True), "--dry-run plans a load run on real Istio: use it with --mesh kind or "
                                           "--mesh cluster"),
        (KubeFlags("local", master_host_for_pods="10.0.0.5"),
         "--master-host-for-pods is for --mesh kind|cluster, where the Locust workers are pods"),
        (KubeFlags("kind", stray=("--master", "--worker")),
         "on --mesh kind the Locust workers are pods the harness starts and the master runs here: leave out "
         "--master, --worker (--workers N sets the number of pods)"),
        (KubeFlags("cluster"), "load --mesh cluster needs --master-host-for-pods ADDR: an IP address of this machine "
                               "that the cluster's pods can reach, where the Locust master listens for its worker pods"),
        (KubeFlags("kind", master_host_for_pods="my-laptop"),
         "--master-host-for-pods must be an IP address the pods can reach (got 'my-laptop'): the worker pods' "
         "sidecars let exactly that address pass"),
        (KubeFlags("kind", master_port=70000), "--master-port must be a TCP port, at most 65535 (got 70000)"),
    ]
    for flags, message in cases:
        with pytest.raises(CaseError) as caught:
            kube_load_from(flags)
        assert str(caught.value) == message
    assert kube_load_from(KubeFlags("kind")) == KubeLoad(workers=1, master_port=5557, master_host_for_pods=None)


def test_kube_load_cli_prints_the_plan_without_docker_and_the_live_run_fails_fast(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker, kind, kubectl or istioctl
    case = str(bundled_cases_dir() / "load-canary.yaml")
    assert main(["load", case, "--mesh", "kind", "--dry-run", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert f"apply    Deployment default/{WORKERS_NAME}" in out and "replicas: 2" in out
    assert main(["load", case, "--mesh", "kind"]) == 3  # the live run: fails fast, before anything is created
    assert "--mesh kind needs `docker`, which is not on PATH" in capsys.readouterr().err.replace("\n", " ")
    assert main(["load", case, "--mesh", "cluster", "--dry-run", "--master-host-for-pods", "10.0.0.5"]) == 2
    assert "--mesh cluster needs --context NAME" in capsys.readouterr().err.replace("\n", " ")


def test_kube_load_workers_deployed_awaited_and_deleted_through_kube_mesh() -> None:
    """On the recorded API server: the worker Deployment is applied, its two pods awaited (the app pods of the
    topology are not taken for them), and deleted when the block ends; the pods' names are the worker names."""
    from tests.kube.test_kube_mesh_recorded import recorded_mesh

    with recorded_mesh() as harness:
        harness.mesh.deploy(canary().topology)
        harness.server.pods = "pods_load_workers.json"
        deployment = render_workers(CLIENT, replace(WORKERS, replicas=2), harness.mesh.render_options)
        path = "/apis/apps/v1/namespaces/default/deployments/mesh-harness-load-workers"
        before = len(harness.server.calls)
        with harness.mesh.workload(deployment) as pods:
            assert pods == ["mesh-harness-load-workers-5d4f7b9c8-4jx2m", "mesh-harness-load-workers-5d4f7b9c8-q8w6t"]
            assert harness.server.applied[path]["spec"]["replicas"] == 2
            assert f"DELETE {path}" not in harness.server.calls
        calls = harness.server.calls[before:]
        assert calls[0] == f"PATCH {path}" and calls[-1] == f"DELETE {path}"
        assert "GET /api/v1/namespaces/default/pods" in calls
        assert deployment["spec"]["template"]["metadata"]["labels"]["mesh-harness.io/run"] == "rec00001"
        with pytest.raises(MeshError, match=re.escape("no image 'mesh-harness-load' was built for this run (built: none)")):
            harness.mesh.image("mesh-harness-load")


def test_kube_load_workers_deleted_on_ctrl_c_and_when_their_pods_never_start() -> None:
    from tests.kube.test_kube_mesh_recorded import recorded_mesh

    path = "DELETE /apis/apps/v1/namespaces/default/deployments/mesh-harness-load-workers"
    with recorded_mesh() as harness:
        harness.mesh.deploy(canary().topology)
        harness.server.pods = "pods_load_workers.json"
        deployment = render_workers(CLIENT, replace(WORKERS, replicas=2), harness.mesh.render_options)
        with pytest.raises(KeyboardInterrupt), harness.mesh.workload(deployment):
            raise KeyboardInterrupt
        assert harness.server.calls[-1] == path
        harness.server.pods = "pods_load_worker_image_missing.json"
        with pytest.raises(SyncTimeout) as caught, harness.mesh.workload(deployment):
            pytest.fail("the block must not run when the pods are not ready")
        assert str(caught.value) == (
            "Deployment default/mesh-harness-load-workers: pods not ready after 0.5s: mesh-harness-load-workers-"
            "5d4f7b9c8-q8w6t Running locust-worker: ImagePullBackOff (Back-off pulling image "
            "\"mesh-harness-load:0123456789ab\"); it was deleted")
        assert harness.server.calls[-1] == path
        harness.server.pods = "pods_running.json"  # no worker pod created at all
        with pytest.raises(SyncTimeout, match="2 of 2 pods not created yet"), harness.mesh.workload(deployment):
            pytest.fail("unreachable")


IMAGES = {"mesh-harness-load": "mesh-harness-load:0123456789ab"}


class FakeLocust:
    """Stands in for ``run_locust`` (no pods can connect here): runs ``alongside`` (the worker pods) as the
    real one does, and answers with the records and ledger that two pods' relays would have given."""

    def __init__(self, server: Any, finished: tuple[bool, bool] = (True, True)) -> None:
        self.server = server
        self.finished = finished
        self.seen: dict[str, Any] = {}

    def __call__(self, plan: Any, host: str, spec: LoadSpec, outputs: Any, progress: Any, *, distribution: Any,
                 alongside: Any) -> Any:
        from harness.locust.run import LocustRun
        from harness.locust.wire import WorkerShare
        from tests.unit.load.load_builders import canary_pattern, make_records

        self.seen.update(plan=plan, host=host, distribution=distribution, calls_before=len(self.server.calls))
        self.server.pods = "pods_load_workers.json"  # the worker pods exist only while the block runs
        try:
            with alongside() as pods:
                self.seen.update(pods=pods, calls_inside=list(self.server.calls))
        finally:
            self.server.pods = "pods_running.json"
        records = make_records(canary_pattern(3000), config_version=None)  # istiod adds no version header
        return LocustRun(records, tuple(WorkerShare(pod, 1500, done) for pod, done in zip(pods, self.finished, strict=True)))


@pytest.mark.parametrize("finished", [(True, True), (True, False)], ids=["both pods delivered", "a pod lost"])
def test_kube_load_live_run_on_the_recorded_mesh(monkeypatch: pytest.MonkeyPatch, finished: tuple[bool, bool]) -> None:
    """``load --mesh kind`` without --dry-run, through KubeMesh on the recorded API server, Locust stood in for:
    the case applied, the master bound to the kind gateway and told to expect the pods, the worker Deployment
    applied and deleted while the master runs, then the revert; judged as a distributed run; a lost pod fails it."""
    import io

    from rich.console import Console

    from tests.kube.test_kube_mesh_recorded import recorded_mesh

    with recorded_mesh(IMAGES) as harness:
        fake = FakeLocust(harness.server, finished)
        monkeypatch.setattr("harness.locust.kube_run.run_locust", fake)
        out = io.StringIO()
        code = load_on_kube(LoadOptions(str(bundled_cases_dir() / "load-canary.yaml")), KIND,
                            KubeFlags("kind", workers=2), Console(file=out, width=200), cache_dir=CACHE,
                            open_mesh=lambda opts, spec: contextlib.nullcontext(harness.mesh),
                            master_address=lambda: "172.18.0.1")
        calls = harness.server.calls
    from harness.locust.locust_cli import Distribution

    assert fake.seen["host"] == "http://reviews:9080" and fake.seen["plan"].config_version == "2"
    assert fake.seen["distribution"] == Distribution(remote_workers=2, bind_host="172.18.0.1", port=5557)
    assert fake.seen["pods"] == ["mesh-harness-load-workers-5d4f7b9c8-4jx2m", "mesh-harness-load-workers-5d4f7b9c8-q8w6t"]
    workers = f"/apis/apps/v1/namespaces/default/deployments/{WORKERS_NAME}"
    vs = "/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews"
    # the case is applied before the pods start, the pods deleted before the case is reverted
    assert calls.index(f"PATCH {vs}") < calls.index(f"PATCH {workers}") < calls.index(f"DELETE {workers}") \
        < calls.index(f"DELETE {vs}")
    assert f"DELETE {workers}" not in fake.seen["calls_inside"]
    applied = harness.server.applied.get(workers) or {}
    assert applied == {}  # deleted: nothing of the workers is left
    # the --dry-run plan's API writes are the ones this run made, in the same order
    planned = load_kube_plan(KIND, canary(), canary().load or LoadSpec(), KubeLoad(2, 5557, None, "2.47.0"),
                             cache_dir=CACHE).objects()
    assert [resource_path(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in planned] == [c.removeprefix("PATCH ") for c in calls if c.startswith("PATCH")]
    text = out.getvalue()
    if all(finished):
        assert code == 0 and "load run passed" in text
    else:
        assert code == 1 and "lost worker mesh-harness-load-workers-5d4f7b9c8-q8w6t (1500 records delivered)" in text


def test_kube_load_live_run_on_cluster_binds_every_interface_and_sends_pods_to_the_given_address(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from harness.locust.locust_cli import Distribution
    from tests.kube.test_kube_mesh_recorded import recorded_mesh

    with recorded_mesh(IMAGES) as harness:
        fake = FakeLocust(harness.server)
        monkeypatch.setattr("harness.locust.kube_run.run_locust", fake)
        code = load_on_kube(LoadOptions(str(bundled_cases_dir() / "load-canary.yaml")), CLUSTER,
                            KubeFlags("cluster", workers=2, master_host_for_pods="10.0.0.5"),
                            Console(file=io.StringIO()), cache_dir=CACHE,
                            open_mesh=lambda opts, spec: contextlib.nullcontext(harness.mesh),
                            master_address=lambda: pytest.fail("the given address is used, nothing is discovered"))
        left = [path for path in harness.server.applied if path.endswith(WORKERS_NAME)]
    assert code == 0 and left == []  # deleted at the end
    assert fake.seen["distribution"] == Distribution(remote_workers=2, bind_host="*", port=5557)
    patched = [c for c in fake.seen["calls_inside"] if c.startswith("PATCH") and c.endswith(WORKERS_NAME)]
    assert len(patched) == 1


def test_kube_load_kind_gateway_is_read_from_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.locust import kube_command

    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\nexit 0\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    seen: list[list[str]] = []

    def run(argv: list[str], *, what: str, timeout_s: float) -> str:
        seen.append(argv)
        assert "where the worker pods reach the Locust master" in what and timeout_s > 0
        return "fc00:f853:ccd:e793::1 172.18.0.1 \n"

    monkeypatch.setattr(kube_command, "run_command", run)
    assert kube_command._kind_gateway() == "172.18.0.1"
    assert seen == [kind_gateway_command(str(docker))]
