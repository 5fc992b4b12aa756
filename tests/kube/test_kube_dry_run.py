"""``mesh-harness run --mesh kind|cluster --dry-run``: the plan is pinned, follows what KubeMesh really issues,
and every object in it is valid for the API server: Kubernetes objects against the schemas of each pinned
Kubernetes version, Istio objects against Istio's own CRD schemas (``istio_crds.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from harness.case import Case, load_case_file
from harness.cases_discovery import bundled_cases_dir, case_files
from harness.cli import main
from harness.mesh.kube.api import resource_path
from harness.mesh.kube.plan import Plan, kube_plan, render_plan
from harness.mesh.kube.session import KubeOptions
from harness.mesh.kube.versions import KIND_NODE_IMAGES
from tests.kube.istio_crds import istio_problems

CACHE = Path("/cache")
KIND = KubeOptions("kind")
CLUSTER = KubeOptions("cluster", context="staging", image_registry="ghcr.io/me")
BUNDLED: list[Case] = [case for path in case_files([bundled_cases_dir()]) for case in load_case_file(path)]


def lines(plan: Plan) -> list[str]:
    return [f"{s.action} {s.summary}" for s in plan.steps]


def test_kube_dry_run_plan_of_the_gateway_case_on_kind_is_pinned() -> None:
    case, = load_case_file(bundled_cases_dir() / "ingress-gateway.yaml")
    got = lines(kube_plan(KIND, [case], cache_dir=CACHE))
    state = "/cache/kind/mesh-harness"
    assert got[:5] == ["run docker version --format {{.Server.Version}}", "run kind get clusters",
                       f"write {state}/kind-config.json",
                       f"run kind create cluster --name mesh-harness --config {state}/kind-config.json "
                       f"--kubeconfig {state}/kubeconfig --wait 300s",
                       "wait GET Nodes and Deployment istio-system/istiod: a Ready node, istiod ready if it runs, "
                       "which Istio it is, the nodes' platform"]
    assert got[7] == (f"run /cache/istioctl-1.30.3/istioctl install --skip-confirmation -f <work dir>/istio-overlay.json "
                      f"--kubeconfig {state}/kubeconfig --context kind-mesh-harness --readiness-timeout 600s")
    assert got[9].startswith("run docker build --file <build context>/harness/sample_apps/echo/Dockerfile "
                             "--tag mesh-harness-echo:")  # a live build stages that context from the installed harness
    assert got[10].startswith("run kind load docker-image mesh-harness-echo:")
    applies = [line.removeprefix("apply ") for line in got if line.startswith("apply")]
    sentinels = ["ServiceEntry default/mesh-harness-sync", "Gateway default/mesh-harness-sync",
                 "VirtualService default/mesh-harness-sync", "DestinationRule default/mesh-harness-sync"]
    assert applies == [
        "Namespace default", "EnvoyFilter istio-system/mesh-harness-gateway-request-id-dry-run",
        "Service default/reviews",
        "Deployment default/reviews-v1-0", "Deployment default/reviews-v2-0", "Deployment default/client",
        *sentinels,
        "DestinationRule default/reviews", "Gateway default/bookinfo-gateway", "VirtualService default/bookinfo",
        "VirtualService default/reviews",
        *sentinels * 2]
    assert "forward kubectl --kubeconfig /cache/kind/mesh-harness/kubeconfig --context kind-mesh-harness --cache-dir " \
           "<work dir>/kubectl-cache --namespace istio-system port-forward --address 127.0.0.1 " \
           "pod/<pod of istio-ingressgateway> :15000" in got
    assert [line for line in got if line.startswith("delete") and "(revert)" in line] == [
        "delete DestinationRule default/reviews (revert)", "delete Gateway default/bookinfo-gateway (revert)",
        "delete VirtualService default/bookinfo (revert)", "delete VirtualService default/reviews (revert)"]
    assert got[-1] == f"run kind delete cluster --name mesh-harness --kubeconfig {state}/kubeconfig"
    assert lines(kube_plan(KubeOptions("kind", keep_cluster=True), [case], cache_dir=CACHE))[-1].startswith("delete the run")


def test_kube_dry_run_on_cluster_refuses_up_front_and_installs_nothing() -> None:
    cases = load_case_file(bundled_cases_dir() / "ports-and-hosts.yaml")
    got = lines(kube_plan(CLUSTER, cases, cache_dir=CACHE))
    assert got[0] == (f"refuse case virtual-service-host-without-service ({cases[0].file}): the case depends "
                      "on outboundTrafficPolicy REGISTRY_ONLY, and --mesh cluster cannot say which mode it runs: the "
                      "harness does not install Istio on --mesh cluster, so it cannot promise a mode; run it with "
                      "--mesh local or --mesh local --control-plane istiod or --mesh kind")
    assert not any("kind" in line.split()[1:2] or "istioctl" in line for line in got)
    assert any(line.startswith("run docker push ghcr.io/me/mesh-harness-echo:") and line.endswith("-<arch of the nodes>")
               for line in got)
    assert any("--platform linux/<arch of the nodes>" in line for line in got)
    assert "apply Namespace mh-dry-run-default" in got
    assert not any("virtual-service-host-without-service" in line for line in got[1:])
    assert not any(line.startswith("refuse") for line in lines(kube_plan(KIND, cases, cache_dir=CACHE)))


def test_kube_dry_run_plan_follows_what_kube_mesh_issues() -> None:
    """The plan's API writes for a case are the paths the recorded KubeMesh run patches, in the same order."""
    from tests.kube.test_kube_mesh_recorded import recorded_mesh

    case, = load_case_file(bundled_cases_dir() / "canary.yaml")[:1]
    planned = kube_plan(KIND, [case], cache_dir=CACHE).objects()
    with recorded_mesh() as harness:
        harness.mesh.deploy(case.topology)
        harness.mesh.revert(harness.mesh.apply(case.objects))
        patched = [c.removeprefix("PATCH ") for c in harness.server.calls if c.startswith("PATCH")]
    assert [resource_path(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in planned] == patched


@pytest.mark.parametrize("opts", [KIND, CLUSTER], ids=["kind", "cluster"])
def test_kube_every_object_of_every_bundled_case_is_valid_for_istio_and_kubernetes(opts: KubeOptions) -> None:
    objects = kube_plan(opts, BUNDLED, cache_dir=CACHE).objects()
    istio = [o for o in objects if o["apiVersion"].startswith("networking.istio.io/")]
    assert {o["kind"] for o in istio} == {"VirtualService", "DestinationRule", "ServiceEntry", "Gateway", "EnvoyFilter"}
    problems = {f"{o['kind']}/{o['metadata']['name']}": istio_problems(o) for o in istio}
    assert {k: v for k, v in problems.items() if v} == {}
    unique = {json.dumps(o, sort_keys=True): o for o in objects if o not in istio}
    for kubernetes in sorted(KIND_NODE_IMAGES):
        for manifest in unique.values():
            kubernetes_validate.validate(manifest, f"{kubernetes}.0", strict=True)


def test_kube_istio_schema_check_can_fail() -> None:
    entry = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "x"},
             "spec": {"hosts": ["a.example"], "resolution": "STATICK", "prots": [], "ports": [{"number": "80"}]}}
    got = istio_problems(entry)
    assert any("STATICK" in p for p in got) and "spec.prots: unknown field" in got
    assert any(p.startswith("spec.ports.0.number") for p in got)
    assert istio_problems({"apiVersion": "networking.istio.io/v1", "kind": "Sidecarr"}) == [
        "no CRD serves networking.istio.io/v1 Sidecarr"]


def test_kube_dry_run_cli_prints_the_plan_and_exits_0_without_docker(capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker, kind, kubectl or istioctl
    case = str(bundled_cases_dir() / "service-entry.yaml")
    assert main(["run", "--mesh", "kind", "--dry-run", case]) == 0
    out = capsys.readouterr().out
    assert "apply    ServiceEntry default/api" in out and "address: <ClusterIP of Service default/api>" in out
    assert "address: api.default.svc.cluster.local" in out  # resolution: DNS
    assert main(["run", "--mesh", "kind", "--kubernetes-version", "1.34", "--dry-run", case]) == 0
    assert "image: kindest/node:v1.34." in capsys.readouterr().out
    assert main(["run", "--mesh", "kind", "--kubernetes-version", "1.20", "--dry-run", case]) == 2
    assert "--kubernetes-version: no pinned kind node image for Kubernetes '1.20'" in capsys.readouterr().err
    assert main(["run", "--mesh", "cluster", "--dry-run", case]) == 2  # --context and --image-registry are needed
    assert main(["run", "--dry-run", case]) == 2
    assert "--dry-run plans a run on real Istio" in capsys.readouterr().err
    assert render_plan(Plan()) == ""


def test_kube_dry_run_piped_into_head_ends_quietly() -> None:
    case = str(bundled_cases_dir() / "canary.yaml")
    done = subprocess.run(f"{sys.executable} -m harness.cli run --mesh kind --dry-run {case} | head -n 1",
                          shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.startswith("  1. run      docker version")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
