"""The local mesh with real istiod as its control plane (``--control-plane istiod``), end to end.

Every shipped case passes on istiod's own translation; istiod's refusals and Envoy's NACKs restore the
previous config; two client sidecars never share a listener; status reads istiod's syncz. Needs the
istiod build that ``mesh-harness istiod build`` caches (CI makes it first: tests/istiod.py).

Statistics: the shipped cases' checks carry their own alpha (1e-6 each, see the README's flake budget);
every other assertion here is about every response (deterministic routes), so none can fail by chance.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.case import Case, load_case_file
from harness.cases_discovery import bundled_cases_dir, case_files
from harness.errors import ConfigRejected, ValidationError
from harness.mesh.base import Observation, SendSpec
from harness.mesh.local.mesh import LocalMesh
from harness.runner import run_case
from harness.settings import StatSettings
from harness.topology import DEFAULT_TOPOLOGY, Client, Topology
from tests.integration.broken import reviews_vs
from tests.integration.conftest import MakeObjects
from tests.istiod import istiod_build

pytestmark = pytest.mark.envoy

SHIPPED: list[Case] = [case for path in case_files([bundled_cases_dir()]) for case in load_case_file(path)]


@pytest.fixture(scope="module")
def istiod_mesh() -> Iterator[LocalMesh]:
    istiod_build()
    with LocalMesh(control_plane="istiod") as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        yield mesh


@pytest.fixture
def clean_istiod(istiod_mesh: LocalMesh) -> Iterator[LocalMesh]:
    empty = istiod_mesh.apply([])
    yield istiod_mesh
    istiod_mesh.revert(empty)
    istiod_mesh.deploy(DEFAULT_TOPOLOGY)


@pytest.mark.parametrize("case", SHIPPED, ids=[c.name for c in SHIPPED])
def test_shipped_case_passes_on_istiod(istiod_mesh: LocalMesh, case: Case) -> None:
    results = run_case(istiod_mesh, case, StatSettings())
    failed = [f"{r.check}: {r.outcome} {r.error or r.verdict}" for r in results if r.outcome != "pass"]
    assert results and not failed, "\n".join(failed)


def test_nack_reports_envoys_message_and_the_previous_config_keeps_serving(
    clean_istiod: LocalMesh, make_objects: MakeObjects
) -> None:
    mesh = clean_istiod
    mesh.apply(make_objects(route_to("v1")))
    # Valid Istio that Envoy refuses: istiod gives a redirect code it cannot map (304) a route without an action.
    with pytest.raises(ConfigRejected) as rejected:
        mesh.apply(make_objects(reviews_vs("[{redirect: {uri: /x, redirectCode: 304}}]")))

    assert rejected.value.type_name == "RDS"
    assert 'field: "action", reason: is required' in rejected.value.detail
    assert versions(send(mesh, "client", 100)) == {"v1": 100}
    mesh.apply(make_objects(route_to("v2")))
    assert versions(send(mesh, "client", 100)) == {"v2": 100}


def test_istiods_own_validation_names_the_object_and_nothing_is_applied(
    clean_istiod: LocalMesh, make_objects: MakeObjects
) -> None:
    mesh = clean_istiod
    mesh.apply(make_objects(route_to("v1")))
    # mesh.apply does not run the harness's validator (the CLI and plugin do): istiod's own refuses it.
    with pytest.raises(ValidationError) as refused:
        mesh.apply(make_objects(route_to("v2", retries="{attempts: 2, retryOn: nonsense}")))

    message = str(refused.value)
    assert "VirtualService/reviews: istiod refused it" in message and '"nonsense" is not a valid retryOn' in message
    assert message.startswith("<test>:")  # the object's own file and line
    assert versions(send(mesh, "client", 100)) == {"v1": 100}


def test_two_clients_with_different_routes_never_share_a_listener(
    clean_istiod: LocalMesh, make_objects: MakeObjects
) -> None:
    """With INTERCEPTION_MODE=NONE istiod binds 127.0.0.1:<port> and SO_REUSEPORT would let two sidecars
    share it silently: each client's sidecar must hold its own address, and its own routes, under load."""
    mesh = clean_istiod
    mesh.deploy(Topology(clients=(Client("client", labels=(("app", "client"),)),
                                  Client("tester", labels=(("app", "tester"),)))))
    mesh.apply(make_objects(SOURCE_SCOPED))
    addresses = {name: mesh.listener_address(name, 9080) for name in ("client", "tester")}
    assert None not in addresses.values() and len(set(addresses.values())) == 2, addresses

    results: dict[str, list[Observation]] = {}

    def batch(client: str) -> None:
        results[client] = send(mesh, client, 400, concurrency=16)

    threads = [threading.Thread(target=batch, args=(name,)) for name in ("client", "tester")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert versions(results["client"]) == {"v1": 400}
    assert versions(results["tester"]) == {"v2": 400}


def test_status_reads_istiods_sync_state_per_xds_type(clean_istiod: LocalMesh, make_objects: MakeObjects) -> None:
    mesh = clean_istiod
    mesh.apply(make_objects(route_to("v1")))
    status = mesh.xds_status("client")
    short = {url.rsplit(".", 1)[-1]: s for url, s in status.items()}
    assert {"Cluster", "Listener", "RouteConfiguration", "ClusterLoadAssignment"} <= set(short)
    for name, s in short.items():
        assert s.sent_version and s.sent_version == s.acked_version, (name, s)
    assert mesh.node_id("client").startswith("sidecar~127.") and mesh.node_id("client").endswith(
        "~client-0.default~default.svc.cluster.local")


def test_istiod_makes_one_push_at_a_time(clean_istiod: LocalMesh, make_objects: MakeObjects) -> None:
    """Reproduces what made a sync never complete (a soak at load 9 to 13: "config version 60 not in force
    after 60s ... route no, cluster yes"; the 12 s SIGSTOP stall test at load 13): with
    ``PILOT_ENABLE_EDS_DEBOUNCE=false`` each sync's endpoints-only updates were pushed at once, beside the
    debounced push, and each push installs a push context built from the one current when it started,
    so when the older one ended last istiod's context went back and the other's config was never pushed
    (``process.py``). Which of two overlapping pushes ends last is the Go scheduler's choice, so that loss
    cannot be forced from outside; the overlap can be seen every time: each ``XDS: Pushing`` line must
    follow its debounce's ``Push debounce stable`` line, and push versions must rise. With the setting
    off, every sync here logged pushes that bypassed the debounce."""
    mesh = clean_istiod
    log = mesh.workdir / "istiod" / "istiod.log"
    mark = log.stat().st_size
    for version in ("v1", "v2", "v1"):
        mesh.apply(make_objects(route_to(version)))
    with log.open("rb") as text:
        text.seek(mark)
        lines = text.read().decode(errors="replace")
    found = PUSH_LINE.findall(lines)
    debounced = [index for index, (stable, _) in enumerate(found) if stable]
    assert debounced, "istiod logged no debounced push for three syncs"
    pushes = found[debounced[0]:]  # (a push whose debounce line came before the mark is not looked at)
    bypassed = [version for (_, version), (before, _) in zip(pushes[1:], pushes[:-1], strict=True) if version and not before]
    assert not bypassed, f"pushes that did not wait for istiod's debounce (so could overlap another): {bypassed}"
    numbers = [int(version) for _, version in pushes if version]
    assert numbers == sorted(numbers), f"istiod's pushes ended out of order: {numbers}"


def test_istiod_is_a_child_of_the_mesh_and_goes_with_it(make_objects: MakeObjects, tmp_path: Path) -> None:
    istiod_build()
    with LocalMesh(control_plane="istiod") as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        inventory = mesh.inventory()
        pid = inventory.pids["istiod"]
        assert Path(f"/proc/{pid}").exists()
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not inventory.workdir.exists()


# --- helpers -----------------------------------------------------------------------------------------

def route_to(version: str, **extra: str) -> str:
    """Subsets plus a VirtualService sending everything to ``version`` (``extra``: more fields of the rule)."""
    fields = "".join(f", {key}: {value}" for key, value in extra.items())
    return reviews_vs(f"[{{route: [{{destination: {{host: reviews, subset: {version}}}}}]{fields}}}]")


PUSH_LINE = re.compile(r"(Push debounce stable)|XDS: Pushing .*Version:\S+/(\d+)")
"""istiod's log line when its debounce starts a push, and the one of every push (its version's number)."""
SOURCE_SCOPED = reviews_vs("[{match: [{sourceLabels: {app: tester}}], route: [{destination: {host: reviews, subset: v2}}]},"
                           " {route: [{destination: {host: reviews, subset: v1}}]}]")


def send(mesh: LocalMesh, client: str, count: int, concurrency: int = 8) -> list[Observation]:
    return mesh.send(SendSpec(url="http://reviews:9080/", count=count, concurrency=concurrency, client=client))


def versions(observations: list[Observation]) -> dict[str | None, int]:
    bad = [o for o in observations if o.status != 200]
    assert not bad, bad[:3]
    return dict(Counter(o.version for o in observations))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False
