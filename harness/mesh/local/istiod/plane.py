"""The istiod control plane: real istiod translates the case's objects and configures the sidecars.

Each sync writes istiod's config directory: the topology as ServiceEntries, WorkloadEntries and
Sidecars (``registry.py``) in one file, each case object in a file of its own (so that istiod's
refusal names the object), and last the sentinels of this config version
(``harness/mesh/sentinels.py``: a VirtualService route and a DestinationRule subset named ``v<N>``,
which the kube mesh uses the same way). Each file is written under a temp name outside the folder
and renamed into it, files of objects that went are emptied (never removed: istiod's re-read of the
folder fails on an entry that vanishes under it) before the sentinels are written, so istiod never
reads a half file and any reload that has the sentinels has every object of their version. The sync is done when
every live proxy's own config_dump holds both sentinels, no cluster or listener is warming, each
service's cluster holds exactly the running instances, and no proxy rejected anything on the way.

There is no config-version stamp on routes (as on a cluster): readiness has to be exact instead.
Two ways to be refused, each restoring the previous objects as the next version before raising:
istiod's own validation (it logs ``unable to reload file configuration`` and keeps its old state:
``ValidationError`` naming the object), and an Envoy NACK (its ``update_rejected`` counters grow:
``ConfigRejected`` with istiod's record of Envoy's message from ``/debug/syncz``).
"""

from __future__ import annotations

import itertools
import os
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import ConfigRejected, Issue, MeshError, ProcessError, SyncTimeout, ValidationError
from harness.istio.model import IstioObject
from harness.mesh import sentinels
from harness.mesh.local.envoy import EnvoyProcess
from harness.mesh.local.istiod.build import IstiodBuild
from harness.mesh.local.istiod.process import RELOAD_FAILED, RELOAD_TRIGGERED, IstiodProcess
from harness.mesh.local.istiod.registry import (
    ROOT_NAMESPACE,
    Proxy,
    case_objects,
    mesh_config,
    registry_objects,
)
from harness.mesh.local.plane import Instance, PlaneName, ProxyNode, Wanted
from harness.mesh.local.xds import TypeStatus
from harness.topology import INGRESS_GATEWAY, Client
from harness.waits import wait_until

SYNC_LABELS = {"mesh-harness.io/sync": "true"}
_POLL_S = 0.005
_PROBE_S = 0.2
_NACK_DETAIL_TIMEOUT_S = 2.0  # istiod records a NACK a moment after Envoy counts it
REGISTRY_FILE = "registry.yaml"
SYNC_FILE = "sync.yaml"
_TYPE_NAMES = {"Cluster": "CDS", "Listener": "LDS", "RouteConfiguration": "RDS", "ClusterLoadAssignment": "EDS"}
_UUID_LENGTH = 36
_LOG_LINE_START = re.compile(r"^\d{4}-\d\d-\d\dT")
_PARSE_FAILED = re.compile(r"Failed to parse (?P<file>\S+\.yaml): (?P<reason>.*)$")


@dataclass(frozen=True)
class _Rendered:
    """One version of istiod's config directory, and whose endpoints every proxy must hold once it is in force."""

    files: Mapping[str, str]
    """File name -> YAML; the sentinels' file (``SYNC_FILE``) is written last."""
    owners: Mapping[str, IstioObject]
    """File name -> the case object it holds."""
    version: int
    endpoints: Mapping[str, frozenset[str]]
    """Cluster name -> ``address:port`` of every endpoint it must have."""


class IstiodPlane:
    """pilot-discovery (``build``) as the control plane of a local mesh."""

    name: PlaneName = "istiod"
    access_log_on_stdout = True

    def __init__(self, build: IstiodBuild, sync_timeout_s: float) -> None:
        self.build = build
        self._sync_timeout_s = sync_timeout_s
        self._istiod: IstiodProcess | None = None
        self._config_dir: Path | None = None
        self._block = ""
        self._proxies: dict[str, Proxy] = {}
        self._good_objects: tuple[IstioObject, ...] = ()  # the case objects of the last config every live proxy ran

    @property
    def istiod(self) -> IstiodProcess:
        if self._istiod is None:
            raise MeshError("istiod is not running; call start() first")
        return self._istiod

    @property
    def xds_port(self) -> int:
        return self.istiod.grpc_port

    @property
    def istio_version(self) -> str:
        return f"istiod {self.build.label}"

    def pids(self) -> Mapping[str, int]:
        return {"istiod": self.istiod.pid}

    @property
    def proxy_istio_version(self) -> str:
        """What the proxies report as ISTIO_VERSION: the build's Istio release (``1.31-dev+eed52ebb66ad`` -> ``1.31``)."""
        return re.sub(r"-dev.*$", "", self.build.label.split("+")[0]) if self.build.label else "latest"

    def start(self, workdir: Path) -> None:
        root = workdir / "istiod"
        self._config_dir = root / "config"
        self._config_dir.mkdir(parents=True)
        mesh_file = root / "mesh.yaml"
        mesh_file.write_text(yaml.safe_dump(mesh_config(), sort_keys=False))
        self._block = free_loopback_block()
        self._istiod = IstiodProcess(self.build.binary, self._config_dir, mesh_file, root / "istiod.log")
        self._istiod.start()
        self._wait_watching()

    def _wait_watching(self) -> None:
        """Return once istiod's folder watcher sees changes: it may start after the xDS port opens, and a
        file written before it would never be read. A probe file (not YAML: istiod does not parse it) is
        touched until istiod logs a reload."""
        assert self._config_dir is not None
        probe = self._config_dir / ".watch-probe"
        attempts = itertools.count()
        mark, next_touch = 0, time.monotonic()

        def reacted() -> bool:
            nonlocal mark, next_touch
            if time.monotonic() >= next_touch:  # touched again every _PROBE_S until istiod logs a reload
                mark, next_touch = self.istiod.log_size(), time.monotonic() + _PROBE_S
                probe.write_text(str(next(attempts)))
            return RELOAD_TRIGGERED in self.istiod.log_since(mark)

        wait_until(reacted, self._sync_timeout_s, _POLL_S, message=lambda: (
            f"istiod did not react to a change in {self._config_dir} within {self._sync_timeout_s:g}s\n"
            f"{self.istiod.log_tail(10)}"))

    def node(self, proxy: str, client: Client) -> ProxyNode:
        known = self._proxies.get(proxy)
        if known is None or (known.namespace, known.labels) != (client.namespace, client.labels):
            known = Proxy(proxy, self._address(proxy), client.namespace, client.labels,
                          router=proxy == INGRESS_GATEWAY.name)
            self._proxies[proxy] = known
        return ProxyNode(known.node_id, known.metadata(self.proxy_istio_version))

    def check(self, wanted: Wanted) -> None:
        """istiod validates on its own when it reads the file (``sync``); the refusals that concern the
        local mesh as a whole are made before anything starts, by the CLI and the plugin (``refusals.py``)."""

    def sync(self, wanted: Wanted) -> None:
        rendered = self._render(wanted, wanted.objects, wanted.version)
        mark = self.istiod.log_size()
        rejected = {name: _rejections(wanted.proxies[name]) for name in wanted.live}
        self._write(rendered)
        try:
            self._wait(wanted, rendered, mark, rejected)
        except (ConfigRejected, ValidationError):
            previous = self._render(wanted, self._good_objects, wanted.version + 1)
            self._write(previous)
            self._wait(wanted, previous, self.istiod.log_size(), {n: _rejections(wanted.proxies[n]) for n in wanted.live})
            raise
        self._good_objects = wanted.objects

    def expected_listeners(self, proxy: str) -> frozenset[str] | None:
        return None

    def status(self, proxy: str) -> Mapping[str, TypeStatus]:
        """From istiod's ``/debug/syncz``: per xDS type the push version sent and ACKed, and the last NACK.
        A nonce is istiod's push version (``2026-12-06T21:04:09Z/6``) followed by a 36-character UUID."""
        node = self._proxies[proxy].node_id
        pod_id = node.split("~")[2]
        for entry in self.istiod.syncz():
            if entry.get("proxy") == pod_id:
                out = {}
                for url, r in entry.get("resources", {}).items():
                    sent, acked, error = _push_version(r.get("sent")), _push_version(r.get("acked")), r.get("lastError")
                    out[url] = TypeStatus(sent_version=sent, sent_nonce=r.get("sent") or None, acked_version=acked,
                                          nack_version=sent if error else None, nack_detail=error or None)
                return out
        return {}

    def node_id(self, proxy: str) -> str:
        return self._proxies[proxy].node_id

    def close(self) -> None:
        if self._istiod is not None:
            self._istiod.stop()

    # --- internals -----------------------------------------------------------------------------

    def _address(self, proxy: str) -> str:
        if proxy == INGRESS_GATEWAY.name:
            return f"{self._block}.2"
        used = {p.address for p in self._proxies.values()}
        return next(f"{self._block}.{host}" for host in range(10, 250) if f"{self._block}.{host}" not in used)

    def _render(self, wanted: Wanted, objects: Iterable[IstioObject], version: int) -> _Rendered:
        apps = wanted.instances
        clients = [self._proxies[name] for name in wanted.proxies if name != INGRESS_GATEWAY.name]
        gateway = self._proxies.get(INGRESS_GATEWAY.name) or Proxy(
            INGRESS_GATEWAY.name, self._address(INGRESS_GATEWAY.name), INGRESS_GATEWAY.namespace,
            INGRESS_GATEWAY.labels, router=True)
        objects = list(objects)
        files = {REGISTRY_FILE: yaml.safe_dump_all(registry_objects(wanted.topology, apps, clients), sort_keys=False)}
        owners: dict[str, IstioObject] = {}
        for obj, manifest in zip(objects, case_objects(objects, wanted.topology, apps, gateway), strict=True):
            name = _file_name(obj)
            files[name] = yaml.safe_dump(manifest, sort_keys=False)
            owners[name] = obj
        docs = [sentinels.sentinel_service_entry(ROOT_NAMESPACE, version, SYNC_LABELS, export_to=("*",))]
        gateways: tuple[str, ...] = ()
        if INGRESS_GATEWAY.name in wanted.proxies:
            docs.append(sentinels.sentinel_gateway(ROOT_NAMESPACE, version, dict(INGRESS_GATEWAY.labels),
                                                   gateway.address))
            gateways = (f"{ROOT_NAMESPACE}/{sentinels.SYNC_NAME}",)
        docs += sentinels.sentinels(ROOT_NAMESPACE, version, SYNC_LABELS, export_to=("*",), gateways=gateways)
        files[SYNC_FILE] = yaml.safe_dump_all(docs, sort_keys=False)
        return _Rendered(files, owners, version, _service_endpoints(wanted, apps))

    def _write(self, rendered: _Rendered) -> None:
        """Changed files first, the sentinels last; each replaced whole by a rename from outside the watched
        folder, and none ever removed: a file of an object that went is emptied (istiod skips empty files).

        Why: istiod re-reads the folder with ``filepath.Walk`` (``pkg/kube/krt/files/files.go``, ``readOnce``),
        which gives up the whole reload, keeping the old config until the next change, when an entry it listed
        is gone by the time it looks at it. A temp file renamed or a file removed mid-walk did that in the soak
        of 2026-12-07 (``lstat .../.sync.yaml.tmp: no such file or directory``), and the harness took the failed
        reload for istiod refusing the case."""
        directory = self._config_dir
        assert directory is not None
        staging = directory.parent  # the same file system (the rename is atomic), outside istiod's watch
        files = dict(rendered.files)
        files.update({p.name: "" for p in directory.glob("*.yaml") if p.name not in files and p.stat().st_size})
        for name, text in sorted(files.items(), key=lambda item: item[0] == SYNC_FILE):
            target = directory / name
            if name != SYNC_FILE and target.is_file() and target.read_text() == text:
                continue
            temp = staging / f".{name}.tmp"
            temp.write_text(text)
            os.replace(temp, target)

    def _wait(self, wanted: Wanted, rendered: _Rendered, mark: int, rejected: Mapping[str, int]) -> None:
        """Until every live proxy runs ``rendered`` (module docstring); raise on a refusal or at the bound."""
        pending = list(wanted.live)
        seen: dict[str, str] = {}

        def in_force() -> bool:
            self._raise_if_refused(wanted, rendered, mark, rejected)
            for name in list(pending):
                state = _proxy_state(wanted.proxies[name], rendered)
                if state is None:
                    pending.remove(name)
                else:
                    seen[name] = state
            return not pending

        def timed_out() -> str:
            waiting = "; ".join(f"{name}: {seen.get(name, 'no answer')}" for name in pending)
            return (f"istiod: config version {rendered.version} not in force after {self._sync_timeout_s:g}s "
                    f"({waiting}); {self._pushes_acked(pending)}\n{self.istiod.log_tail(10)}")

        wait_until(in_force, self._sync_timeout_s, _POLL_S, message=timed_out)
        self._raise_if_refused(wanted, rendered, mark, rejected)  # a NACK of the same push

    def _pushes_acked(self, proxies: Iterable[str]) -> str:
        """istiod's last push and the push each of ``proxies`` last ACKed, per xDS type (``/debug/syncz``):
        when every proxy ACKed istiod's last push and still lacks a sentinel that ``/debug/configz`` holds,
        istiod pushed from an old push context (as it did with ``PILOT_ENABLE_EDS_DEBOUNCE=false``:
        ``process.py``); when they did not, the push has not reached them."""
        try:
            acked = {name: sorted({f"{_TYPE_NAMES.get(url.rsplit('.', 1)[-1], url)} {s.acked_version or 'none'}"
                                   for url, s in self.status(name).items()}) for name in proxies}
        except ProcessError as exc:
            acked_text = f"istiod's /debug/syncz did not answer ({str(exc).splitlines()[0]})"
        else:
            acked_text = "; ".join(f"{name} ACKed {', '.join(types) or 'nothing'}" for name, types in acked.items())
        return f"istiod's last push: {self.istiod.last_push_version() or 'none logged'}; {acked_text}"

    def _raise_if_refused(self, wanted: Wanted, rendered: _Rendered, mark: int, rejected: Mapping[str, int]) -> None:
        code = self.istiod.exit_code
        if code is not None:
            raise ProcessError(f"istiod exited with code {code}\n{self.istiod.log_tail()}")
        logged = self.istiod.log_since(mark)
        if RELOAD_FAILED in logged:
            raise ValidationError(_reload_issues(logged, rendered.owners))
        for name, before in rejected.items():
            if _rejections(wanted.proxies[name]) > before:
                type_name, detail = self._nack_detail(name)
                raise ConfigRejected(self._proxies[name].node_id, type_name, str(rendered.version), detail)

    def _nack_detail(self, proxy: str) -> tuple[str, str]:
        """Envoy's message for its last NACK, as istiod recorded it (``/debug/syncz``), polled briefly:
        istiod may read the NACK a moment after Envoy counted it."""
        def recorded() -> tuple[str, str] | None:
            for url, status in self.status(proxy).items():
                if status.nack_detail:
                    return _TYPE_NAMES.get(url.rsplit(".", 1)[-1], url), status.nack_detail
            return None

        try:
            return wait_until(recorded, _NACK_DETAIL_TIMEOUT_S, _POLL_S, message="istiod's record of the NACK")
        except SyncTimeout:
            return "config", "Envoy counted a rejected update (update_rejected), istiod recorded no message"


def _push_version(nonce: str | None) -> str | None:
    return nonce[:-_UUID_LENGTH] if nonce and len(nonce) > _UUID_LENGTH else None


def _proxy_state(proxy: EnvoyProcess, rendered: _Rendered) -> str | None:
    """None when ``proxy`` runs ``rendered``; else what it still lacks (for the timeout message)."""
    try:
        state = sentinels.sync_state(proxy.config_dump(), ROOT_NAMESPACE, rendered.version)
    except ProcessError as exc:
        return f"admin not answering ({str(exc).splitlines()[0]})"
    if not state.synced:
        return f"sentinel v{rendered.version}: route {'yes' if state.has_route else 'no'}, " \
               f"cluster {'yes' if state.has_cluster else 'no'}"
    warming = {k: v for k, v in _stats(proxy, r"(warming_clusters|total_listeners_warming)$").items() if v}
    if warming:
        return f"warming: {warming}"
    hosts = _cluster_hosts(proxy, rendered.endpoints)
    wrong = {c: sorted(hosts.get(c, ())) for c, want in rendered.endpoints.items() if hosts.get(c, frozenset()) != want}
    if wrong:
        return f"endpoints not yet as deployed: {wrong}"
    return None


def _cluster_hosts(proxy: EnvoyProcess, clusters: Iterable[str]) -> dict[str, frozenset[str]]:
    wanted = set(clusters)
    if not wanted:
        return {}
    body = proxy.admin_json("/clusters?format=json")
    out: dict[str, frozenset[str]] = {}
    for status in body.get("cluster_statuses", []):
        if status.get("name") in wanted:
            out[status["name"]] = frozenset(
                f"{h['address']['socket_address']['address']}:{h['address']['socket_address']['port_value']}"
                for h in status.get("host_statuses", []) if "socket_address" in h.get("address", {}))
    return out


def _service_endpoints(wanted: Wanted, apps: Mapping[str, Instance]) -> dict[str, frozenset[str]]:
    """The default (subset-less) cluster of every mesh service port -> the instances it must hold."""
    out: dict[str, frozenset[str]] = {}
    for service in wanted.topology.services:
        if service.external:
            continue
        for port in service.ports:
            real = {f"127.0.0.1:{apps[i].grpc_port if port.protocol == 'grpc' else apps[i].http_port}"
                    for i, inst in wanted.instances.items() if inst.service == service.name and i in apps}
            out[f"outbound|{port.number}||{service.fqdn}"] = frozenset(real)
    return out


def _rejections(proxy: EnvoyProcess) -> int:
    try:
        return sum(_stats(proxy, r"update_rejected$").values())
    except ProcessError:
        return 0


def _stats(proxy: EnvoyProcess, regex: str) -> dict[str, int]:
    from urllib.parse import quote

    body = proxy.admin_json(f"/stats?format=json&filter={quote(regex)}")
    return {e["name"]: e["value"] for e in body.get("stats", []) if isinstance(e.get("value"), int)}


def _reload_issues(logged: str, owners: Mapping[str, IstioObject]) -> list[Issue]:
    """istiod's reason for refusing the config, placed at the object whose file it names.

    istiod logs ``Failed to parse <file>: <reason>`` and then ``unable to reload file configuration``.
    """
    lines = logged.splitlines()
    for index, line in enumerate(lines):
        found = _PARSE_FAILED.search(line)
        if found is None:
            continue
        # "configuration is invalid: 2 errors occurred:" is followed by one "\t* <error>" line each
        details = [d.strip().removeprefix("* ") for d in itertools.takewhile(
            lambda d: not _LOG_LINE_START.match(d), lines[index + 1:]) if d.strip()]
        reason = "; ".join([found.group("reason").strip().rstrip(":"), *details])
        obj = owners.get(Path(found.group("file")).name)
        if obj is not None:
            source = obj.source
            return [Issue(f"istiod refused it: {reason}; nothing was applied", file=source.file if source else None,
                          line=source.line if source else None, obj=obj.ref)]
        return [Issue(f"istiod refused the harness's own {Path(found.group('file')).name}: {reason}; this is a harness bug")]
    reason = next(line for line in logged.splitlines() if RELOAD_FAILED in line).split(RELOAD_FAILED, 1)[1]
    return [Issue(f"istiod refused the config:{reason}; nothing was applied")]


def _file_name(obj: IstioObject) -> str:
    """A file of its own per case object: ``case.<kind>.<namespace>.<name>.yaml`` (unique: kinds and
    namespaces have no dots)."""
    return f"case.{obj.kind}.{obj.metadata.namespace}.{obj.metadata.name}.yaml"


def free_loopback_block(rng: random.Random | None = None) -> str:
    """A ``127.A.B`` /24 with no listening TCP socket in it (from ``/proc/net/tcp``), for this mesh's proxies.

    Random, so that meshes side by side (pytest-xdist, two ``up`` environments) each get their own.
    """
    rng = rng or random.Random()
    taken = _listening_prefixes()
    for _ in range(1000):
        block = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}"
        if block not in taken:
            return block
    raise MeshError("no free 127.A.B.0/24 block for the istiod plane's proxies")


def _listening_prefixes() -> set[str]:
    """``127.A.B`` of every listening IPv4 TCP socket (state 0A) on this machine."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    out = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            addr = bytes.fromhex(fields[1].split(":")[0])[::-1]
            out.add(".".join(str(b) for b in addr[:3]))
    return out

