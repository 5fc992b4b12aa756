"""The capability contract (pure): every bundled case against every mesh's row, and each row against what its
mesh really configures (the local planes' translator and istiod mesh config, the kind install overlay)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.case import Case, load_case_file
from harness.cases_discovery import bundled_cases_dir, case_files
from harness.mesh.capabilities import MESHES, MeshName, case_refusals, mesh_name
from harness.mesh.kube.istio_install import install_overlay
from harness.mesh.local.istiod.registry import mesh_config
from harness.mesh.local.translate import TranslateInput, translate
from harness.mesh.local.translate.names import BLOCK_ALL
from harness.topology import DEFAULT_TOPOLOGY

BUNDLED = [case for path in case_files([bundled_cases_dir()]) for case in load_case_file(path)]
NEEDS_REGISTRY_ONLY = {"virtual-service-host-without-service"}
"""The bundled cases that depend on a mesh-wide setting (``meshConfig`` in the case)."""


@pytest.mark.parametrize("mesh", sorted(MESHES))
def test_every_bundled_case_is_served_or_refused_with_its_reason(mesh: MeshName) -> None:
    """Refused on a mesh exactly when the table says so; each refusal names the case's file and a way out."""
    refused: dict[str, list[str]] = {}
    for case in BUNDLED:
        issues = case_refusals(case, mesh)
        if issues:
            refused[case.name] = [str(i) for i in issues]
    expected = set() if MESHES[mesh].outbound_policy == "REGISTRY_ONLY" else NEEDS_REGISTRY_ONLY
    assert set(refused) == expected
    for name in expected:
        text, = refused[name]
        assert text.startswith("cases/ports-and-hosts.yaml:") or "ports-and-hosts.yaml:" in text
        assert "outboundTrafficPolicy REGISTRY_ONLY" in text
        assert "run it with --mesh local or --mesh local --control-plane istiod or --mesh kind" in text
    assert {c.outbound_policy for c in BUNDLED if c.name in NEEDS_REGISTRY_ONLY} == {"REGISTRY_ONLY"}


def test_a_case_that_needs_allow_any_is_refused_where_the_mesh_runs_registry_only() -> None:
    case = replace(BUNDLED[0], outbound_policy="ALLOW_ANY")
    refused = {mesh: [str(i) for i in case_refusals(case, mesh)] for mesh in MESHES}
    assert all(len(issues) == 1 for issues in refused.values())
    assert ("--mesh kind runs REGISTRY_ONLY: the harness installs Istio so, to answer as the local mesh does; "
            "no mesh of the harness promises ALLOW_ANY: drop meshConfig if the case does not depend on it"
            ) in refused["kind"][0]
    assert "--mesh cluster cannot say which mode it runs" in refused["cluster"][0]


def test_the_local_rows_keep_the_translators_refusals() -> None:
    tcp = load_case_file(bundled_cases_dir() / "canary.yaml")[0]
    services = tuple(replace(s, ports=(replace(s.ports[0], name="tcp-web"),)) for s in tcp.topology.services)
    case: Case = replace(tcp, topology=replace(tcp.topology, services=services))
    assert [m for m in MESHES if case_refusals(case, m)] == ["local-builtin"]


def test_each_row_says_what_its_mesh_runs() -> None:
    assert install_overlay()["spec"]["meshConfig"]["outboundTrafficPolicy"]["mode"] == MESHES["kind"].outbound_policy
    assert mesh_config()["outboundTrafficPolicy"]["mode"] == MESHES["local-istiod"].outbound_policy
    routes = translate(TranslateInput(DEFAULT_TOPOLOGY, DEFAULT_TOPOLOGY.clients[0], {}, [], 1)).routes
    catch_all = [v["name"] for r in routes for v in r["virtual_hosts"] if v["domains"] == ["*"]]
    assert catch_all and set(catch_all) == {BLOCK_ALL}  # istiod's REGISTRY_ONLY catch-all, a direct 502
    assert MESHES["local-builtin"].outbound_policy == "REGISTRY_ONLY"


def test_mesh_names_from_the_options() -> None:
    assert [mesh_name("local"), mesh_name("local", "istiod"), mesh_name("kind"), mesh_name("cluster")] == [
        "local-builtin", "local-istiod", "kind", "cluster"]
    with pytest.raises(ValueError, match="unknown mesh"):
        mesh_name("minikube")
