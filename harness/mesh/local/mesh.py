"""LocalMesh: the embedded mesh. Runs the apps and Envoys; a control plane (``plane.py``) configures them.

Each client workload gets an echo app (its ForwardEcho is where traffic starts) and a real Envoy
as its sidecar, configured over ADS by the control plane: the builtin translator
(``builtin_plane.py``) or real istiod (``istiod/plane.py``). Service instances are echo apps on
127.0.0.1; a case's URL (``http://reviews:9080/``) is sent to the client's sidecar listener for
port 9080 with the Host header kept, which is what iptables and the outbound listener do in a pod.

Config versions only grow: every push (deploy, apply, revert, NACK rollback) gets the next one
(the builtin plane stamps it on every route, so traffic served by an older config is
recognisable). A version is used up once it was pushed, even when the push timed out: the xDS
server sends a (version, names) pair only once, so reusing a number would leave a node on stale content.

What only Envoy knows about a request (response flags, the endpoint it chose) comes from the
client sidecar's access log, joined to the batch by ``x-request-id`` (``harness/mesh/accesslog.py``). Whether
anything is still in flight comes from the sidecars' ``*_rq_active`` gauges (``drain``).

The ingress gateway (``INGRESS_GATEWAY``) is one more Envoy and xDS node, with no app, started when
the topology asks for it or a Gateway object is applied, and kept until ``close``. A check with
``via="gateway"`` is sent by the client's app straight to the gateway's listener for the URL's port,
and joined to the gateway's access log. External apps (``Service.external``) are app processes like
any other; only the translator treats them differently (ServiceEntry endpoints).

A process that dies (an app instance, a client's app, a sidecar, the gateway) is reported by
``health``. ``send`` checks it before and after every batch, and when a batch fails, so a crash
fails the check with a ``ProcessError`` naming the process, its exit code and log tail instead of
a connection error or skewed traffic. Pushes leave dead sidecars out of the ACK wait (there is no
one to answer; ``revert`` after a crashed check must still work), and the next ``deploy`` treats
every dead process as not running and starts it again, so the next case runs on a whole mesh.
"""

from __future__ import annotations

import atexit
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, urlsplit

from harness.errors import ConfigRejected, MeshError, ProcessError, SyncTimeout, ValidationError
from harness.istio.model import Gateway, IstioObject
from harness.mesh.accesslog import AccessLogReader, BatchJoin, read_all
from harness.mesh.base import (
    MeshInfo,
    Observation,
    ReceivedRequest,
    SendSpec,
    SyncToken,
    coarse_clock_tick_s,
)
from harness.mesh.cleanup import run_all
from harness.mesh.local.apps import AppProcess
from harness.mesh.local.builtin_plane import BuiltinPlane
from harness.mesh.local.envoy import ACCESS_LOG_FLUSH_MS, XDS_CLUSTER, EnvoyProcess
from harness.mesh.local.envoy_binary import envoy_version, find_envoy
from harness.mesh.local.launcher import AppLauncher
from harness.mesh.local.plane import Instance, Plane, PlaneName, Wanted
from harness.mesh.local.translate import DEFAULT_ISTIO_VERSION
from harness.mesh.local.workdir import make_workdir
from harness.mesh.local.xds import TypeStatus
from harness.topology import INGRESS_GATEWAY, Client, Topology
from harness.waits import wait_until

SYNC_TIMEOUT_S = 60.0
"""How long an apply or revert may take until every proxy runs it before it fails as not synced. It bounds
a hang (a lost update, a proxy that never answers), not a normal sync (milliseconds): on a 2-core machine
at load average 10, istiod once took over 10 s to get a revert to the sidecars (soak of 2026-12-07)."""
READY_TIMEOUT_S = 60.0
"""How long an app, an Envoy or a listener may take to come up before the start is reported as failed. It
bounds a hang, not a normal start (a second or two): ten meshes started side by side on a loaded 2-core
machine once took over 15 s for one echo app's ready line (``test_interrupts`` in the soak of 2026-12-07)."""
ACCESS_LOG_TIMEOUT_S = 5.0
"""How long after a batch its access log lines may take to appear (Envoy flushes every 2 ms)."""
DEFAULT_SOURCE_IP = "127.0.0.1"
_LOG_POLL_S = ACCESS_LOG_FLUSH_MS / 2000
_DRAIN_POLL_S = 0.01
_IN_FLIGHT_FILTER = r"(upstream|downstream)_rq_active$"
_LISTENER_POLL_S = 0.01
GATEWAY = INGRESS_GATEWAY.name
"""The gateway's workload name, for ``proxy_stats``, ``access_log``, ``sidecar`` and the inventory."""
ZYGOTE = "echo-zygote"
"""The inventory's name for the process that forks every echo app (``launcher.AppLauncher``)."""
_CLOSE_LOCK_WAIT_S = 10.0
"""How long ``close`` waits for a deploy or apply of another thread to finish (longer than one takes on a
loaded machine; past it, close goes on, and the stuck call fails on the stopped processes)."""
_ENVOY_TAIL_LINES = 20
#: How much of the end of an access log ``access_log_tail`` reads (a JSON line is under 1 KiB).
_TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class ProcessExit:
    """A process of the mesh that is no longer running, as ``LocalMesh.health`` reports it.

    ``name`` says what it was for (``app reviews-v1-0``, ``client app client-0``, ``sidecar of
    client``, ``ingress gateway``); ``envoy`` whether it was an Envoy; ``log_tail`` ends its log.
    """

    name: str
    pid: int
    exit_code: int
    log_tail: str
    envoy: bool = False

    def __str__(self) -> str:
        who = f"{self.name} (Envoy pid {self.pid})" if self.envoy else f"{self.name} (pid {self.pid})"
        return f"{who} exited with code {self.exit_code}; {self.log_tail}"


@dataclass(frozen=True)
class LocalInventory:
    """What a running LocalMesh holds on this machine, so that leaks can be checked from outside.

    ``pids``: process name (app instance, ``<client>`` app, ``sidecar-<client>``, ``gateway``,
    ``echo-zygote`` that forks the apps, the control plane's processes) -> PID.
    ``ports``: ``<process>/<port name>`` -> a port bound on 127.0.0.1 (apps, sidecar and gateway
    listeners, the xDS server). ``workdir``: the temp dir removed by ``close()``.
    """

    pids: Mapping[str, int]
    ports: Mapping[str, int]
    workdir: Path


class LocalMesh:
    """The local mesh. ``start()`` it (or use it as a context manager), ``deploy`` a topology, then
    ``apply``/``send``/``revert``; ``close()`` stops every process and removes the work dir."""

    def __init__(
        self,
        *,
        envoy_binary: str | None = None,
        istio_version: str = DEFAULT_ISTIO_VERSION,
        sync_timeout_s: float = SYNC_TIMEOUT_S,
        envoy_log_level: str = "warning",
        distinct_source_ips: bool = False,
        control_plane: PlaneName = "builtin",
        istiod_binary: str | None = None,
        istiod_version: str | None = None,
    ) -> None:
        """``distinct_source_ips``: client ``i`` of the topology sends from 127.0.0.(1+i) instead of
        127.0.0.1, so that ``useSourceIp`` hashing can tell clients apart (see ``source_ip``).
        ``control_plane``: ``builtin`` (our translator, emulating ``istio_version``) or ``istiod`` (the
        build of ``istiod_version`` cached by ``mesh-harness istiod build``, or ``istiod_binary``)."""
        self._binary = find_envoy(envoy_binary)
        self._plane: Plane = _make_plane(control_plane, istio_version, sync_timeout_s, istiod_binary, istiod_version)
        self._sync_timeout_s = sync_timeout_s
        self._log_level = envoy_log_level
        self._lock = threading.Lock()
        self._workdir: Path | None = None
        self._plane_started = False
        self._launcher: AppLauncher | None = None
        self._dead_launchers: list[AppLauncher] = []  # zygotes that died; closed with the mesh
        self._topology: Topology | None = None
        self._apps: dict[str, AppProcess] = {}  # instance name -> process
        self._labels: dict[str, tuple[str, str]] = {}  # instance name -> (service, version)
        self._knobs: dict[str, dict[str, str]] = {}  # instance name -> the echo defaults it runs with
        self._clients: dict[str, AppProcess] = {}  # client workload -> its app
        self._sidecars: dict[str, EnvoyProcess] = {}  # client workload (or GATEWAY) -> its Envoy
        self._access_logs: dict[str, AccessLogReader] = {}  # client workload (or GATEWAY) -> its Envoy's log
        self._distinct_source_ips = distinct_source_ips
        self._listeners: dict[str, dict[int, tuple[str, int]]] = {}  # client (or GATEWAY) -> port -> bound (ip, port)
        self._listener_names: dict[str, frozenset[str] | None] = {}  # client (or GATEWAY) -> listeners last pushed
        self._objects: dict[tuple[str, str, str], IstioObject] = {}
        self._version = 0
        self._closed = False
        self._envoy_version: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        atexit.register(self.close)  # before anything exists, so that an interrupt from here on cleans up
        try:
            self._workdir = make_workdir()
            self._launcher = AppLauncher(self._workdir / "echo-zygote.stderr.log")  # imports while the plane starts
            self._plane_started = True
            self._plane.start(self._workdir)
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every sidecar, app and the control plane; remove the work dir. Idempotent.

        May be called from another thread than the one driving the mesh (``run --jobs``: the main thread
        closes the meshes of every job on Ctrl-C). It waits (bounded) for a deploy or apply in progress,
        so that no process starts after the ones it stops; a later deploy or apply is refused."""
        if self._closed:
            return
        held = self._lock.acquire(timeout=_CLOSE_LOCK_WAIT_S)
        try:
            self._close()
        finally:
            if held:
                self._lock.release()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        processes: list[AppProcess | EnvoyProcess] = [*self._sidecars.values(), *self._clients.values(),
                                                      *self._apps.values()]
        stops: list[Callable[[], None]] = [p.stop for p in processes]
        if self._plane_started:
            stops.append(self._plane.close)
        try:
            run_all(stops)  # one stuck process must not keep the others (or the work dir) alive
            # After the apps, so that the zygote reports their exits until then.
            run_all(launcher.close for launcher in [*self._dead_launchers, *([self._launcher] if self._launcher else [])])
        finally:
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)

    def info(self) -> MeshInfo:
        if self._envoy_version is None:
            self._envoy_version = envoy_version(self._binary)
        return MeshInfo(kind="local", istio_version=self._plane.istio_version, envoy_version=self._envoy_version,
                        timer_tick_s=coarse_clock_tick_s())

    @property
    def control_plane(self) -> PlaneName:
        """``builtin`` or ``istiod``: what configures this mesh's Envoys."""
        return self._plane.name

    @property
    def config_version(self) -> int:
        """The newest config version pushed to the sidecars (0 before the first deploy)."""
        return self._version

    def inventory(self) -> LocalInventory:
        """The processes, ports and work dir this mesh holds now (see ``LocalInventory``)."""
        pids = {name: app.pid for name, app in [*self._apps.items(), *self._clients.items()]}
        ports: dict[str, int] = {}
        for name, app in [*self._apps.items(), *self._clients.items()]:
            ports.update({f"{name}/http": app.http_port, f"{name}/grpc": app.grpc_port,
                          f"{name}/control": app.control_port})
        for client, sidecar in self._sidecars.items():
            process = GATEWAY if client == GATEWAY else f"sidecar-{client}"
            pids[process] = sidecar.pid
            ports.update({f"{process}/{port}": bound for port, (_ip, bound) in self._listeners.get(client, {}).items()})
        if self._launcher is not None:
            pids[ZYGOTE] = self._launcher.pid
        if self._plane_started:
            ports["xds"] = self._plane.xds_port
            pids.update(self._plane.pids())
        return LocalInventory(pids=pids, ports=ports, workdir=self.workdir)

    @property
    def workdir(self) -> Path:
        if self._workdir is None or self._closed:
            raise MeshError("the local mesh is not running; call start() first")
        return self._workdir

    # --- Mesh interface ------------------------------------------------------------------------

    def deploy(self, topology: Topology) -> None:
        """Run exactly the apps and sidecars of ``topology``; unchanged instances keep running.

        An instance whose echo defaults (``Service.knobs``) changed is restarted: the new process
        starts first, and the old one stops once the sidecars ACKed endpoints without it. A process
        that died counts as not running: it is started again (a sidecar gets the current config and
        ACKs it), even when ``topology`` is the one deployed. So is a dead echo zygote, and with it
        every app it forked.
        """
        with self._lock:
            self._refuse_if_closed("deploy")
            if topology == self._topology and not self.health():
                return
            wanted = topology.instances()
            # Instances that go are taken out of the endpoints first and stopped only after the
            # sidecars ACKed config without them, so no request is routed to a stopped app.
            leaving: list[AppProcess | EnvoyProcess] = []
            # The apps of a zygote that died run on, but nothing could report how they end: they are
            # restarted from the one that replaces it.
            orphaned = self._replace_dead_launcher()
            for name in [n for n in self._apps if n not in wanted or self._knobs[n] != _knobs_of(topology, n)
                         or orphaned or not self._apps[n].is_running()]:
                leaving.append(self._apps.pop(name))
                self._labels.pop(name)
                self._knobs.pop(name)
            # A client whose definition changed is restarted: its namespace is in the sidecar's
            # node id and its labels in the app's identity, both fixed when they start. A dead
            # client app or sidecar is restarted alone.
            current = self._topology
            for name in list(self._clients):
                changed = current is None or topology.client(name) != current.client(name)
                if changed or orphaned or not self._clients[name].is_running():
                    leaving.append(self._clients.pop(name))
                if changed or self._sidecars[name].exit_code is not None:
                    leaving.append(self._drop_proxy(name))
            if GATEWAY in self._sidecars and self._sidecars[GATEWAY].exit_code is not None:
                leaving.append(self._drop_proxy(GATEWAY))  # _push starts another when one is wanted
            try:
                to_start = {n: sv for n, sv in wanted.items() if n not in self._apps}
                self._start_processes(topology, to_start, [c for c in topology.clients if c.name not in self._clients],
                                      [c for c in topology.clients if c.name not in self._sidecars])
                self._topology = topology
                self._push(self._objects, topology_changed=True)
            finally:
                run_all(p.stop for p in leaving)

    def apply(self, objects: Sequence[IstioObject]) -> SyncToken:
        """Add or replace objects; returns once every sidecar ACKed. Nothing is pushed if translation
        refuses the objects (UnsupportedError), and a NACK rolls every sidecar back before raising."""
        with self._lock:
            self._refuse_if_closed("apply")
            previous = dict(self._objects)
            merged = dict(previous)
            for obj in objects:
                merged[obj.key] = obj
            self._push(merged)
            return SyncToken(self._version, tuple(previous.values()))

    def revert(self, token: SyncToken) -> None:
        with self._lock:
            self._refuse_if_closed("revert")
            self._push({o.key: o for o in token.previous})

    def send(self, spec: SendSpec) -> list[Observation]:
        """One batch from ``spec.client``; ProcessError if a process of the mesh is dead before or after it."""
        client = self._clients.get(spec.client)
        if client is None:
            raise MeshError(f"no client workload {spec.client!r} in the mesh (clients: {', '.join(self._clients)})")
        parts = urlsplit(spec.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        proxy = GATEWAY if spec.via == "gateway" else spec.client
        if proxy == GATEWAY and GATEWAY not in self._sidecars:
            raise MeshError(f"{spec.url}: send via gateway, but no ingress gateway runs; apply a Gateway "
                            "(selector: {istio: ingressgateway}) or deploy a topology with gateway=True")
        bound = self._listeners.get(proxy, {}).get(port)
        if bound is None:
            ports = ", ".join(str(p) for p in sorted(self._listeners.get(proxy, {}))) or "none"
            if proxy == GATEWAY:
                raise MeshError(f"{spec.url}: the ingress gateway has no listener on port {port} (its ports: {ports}); "
                                "a Gateway selecting it (istio: ingressgateway) needs a server on that port")
            raise MeshError(f"{spec.url}: no service in the mesh listens on port {port} (service ports: {ports})")
        source_ip = self.source_ip(spec.client)
        self._raise_if_dead(f"{spec.url}: not sent, a process of the mesh has exited")
        try:
            mark = (self._access_logs[proxy].count_lines(), self._requests_counted(proxy))
            records = client.control.forward_records(
                spec, connect_to=f"{bound[0]}:{bound[1]}", capture_headers=spec.capture_headers,
                source_ip=None if source_ip == DEFAULT_SOURCE_IP else source_ip)
            joined = self._join_access_log(proxy, records, mark)
        except MeshError as exc:
            self._raise_if_dead(f"{spec.url}: the batch failed, a process of the mesh exited during the check", exc)
            raise
        # Even a batch that looks fine (Envoy retried on the other endpoints) ran on a smaller mesh.
        self._raise_if_dead(f"{spec.url}: a process of the mesh exited during the check")
        return joined

    def health(self) -> list[ProcessExit]:
        """Every process of the mesh that has exited (empty when all run): apps, client apps,
        sidecars, the gateway. Cheap (a non-blocking wait per process), so send calls it freely."""
        dead: list[ProcessExit] = []
        for kind, apps in (("app", self._apps), ("client app", self._clients)):
            for app in apps.values():
                code = app.exit_code
                if code is not None:
                    dead.append(ProcessExit(f"{kind} {app.instance}", app.pid, code, app.log_tail()))
        for name, proxy in self._sidecars.items():
            code = proxy.exit_code
            if code is not None:
                what = "ingress gateway" if name == GATEWAY else f"sidecar of {name}"
                dead.append(ProcessExit(what, proxy.pid, code, proxy.log_tail(_ENVOY_TAIL_LINES), envoy=True))
        if self._launcher is not None and (code := self._launcher.exit_code()) is not None:
            dead.append(ProcessExit("echo-app zygote (starts the apps)", self._launcher.pid, code,
                                    self._launcher.log_tail()))
        return dead

    def source_ip(self, client: str) -> str:
        """The loopback address ``client`` sends from (see ``source_address``)."""
        if self._topology is None or self._topology.client(client) is None:
            raise MeshError(f"no client workload {client!r} in the mesh (clients: {', '.join(self._clients)})")
        return source_address(self._topology, client, distinct=self._distinct_source_ips)

    def proxy_stats(self, workload: str) -> dict[str, int]:
        return self._sidecar(workload).stats()

    def drain(self, timeout_s: float = 10.0) -> None:
        """Poll every sidecar's ``cluster.*.upstream_rq_active`` (mirror copies included) and
        ``http.*.downstream_rq_active`` gauges until all are 0; SyncTimeout names those that are not."""
        self._raise_if_dead("drain: a process of the mesh has exited")
        active: dict[str, int] = {}

        def idle() -> bool:
            active.clear()
            active.update({
                f"{workload}: {name}": value
                for workload, sidecar in list(self._sidecars.items())
                for name, value in in_flight(_admin_stats(sidecar, _IN_FLIGHT_FILTER)).items()
            })
            return not active

        wait_until(idle, timeout_s, _DRAIN_POLL_S, message=lambda: (
            f"drain: requests still in flight after {timeout_s:g}s: "
            + ", ".join(f"{name} = {value}" for name, value in sorted(active.items()))))

    def access_log(self, workload: str) -> list[dict[str, Any]]:
        """Every line the workload's sidecar logged so far, decoded (field names: translate/listeners.py)."""
        return read_all(self._sidecar(workload).access_log_path)

    def config_dump(self, workload: str) -> dict[str, Any]:
        """The workload's sidecar ``/config_dump`` (failure forensics: the routes and clusters it holds)."""
        return self._sidecar(workload).config_dump()

    def access_log_tail(self, workload: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the workload's sidecar access log (read from the file's end only)."""
        path = self._sidecar(workload).access_log_path
        if not path.is_file():
            return []
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            return log.read().decode(errors="replace").splitlines()[-lines:]

    def clusters(self, workload: str) -> dict[str, Any]:
        """The sidecar's admin ``/clusters?format=json``: per host health flags (outlier ejection), stats."""
        return self._sidecar(workload).admin_json("/clusters?format=json")

    @property
    def topology(self) -> Topology | None:
        """The topology deployed now (None before the first deploy)."""
        return self._topology

    def sidecar(self, workload: str) -> EnvoyProcess:
        """The workload's Envoy: admin address, config dump, stats (for diagnostics such as ``routes``)."""
        return self._sidecar(workload)

    def xds_status(self, workload: str) -> Mapping[str, TypeStatus]:
        """Per xDS type: what the control plane sent the workload's sidecar, and what it ACKed or NACKed."""
        if not self._plane_started:
            raise MeshError("the local mesh is not running; call start() first")
        return self._plane.status(workload)

    def node_id(self, workload: str) -> str:
        """The xDS node id of the workload's sidecar (or of the gateway), as its control plane knows it."""
        return self._plane.node_id(workload)

    def listener_address(self, workload: str, port: int) -> str | None:
        """``ip:port`` of ``workload``'s listener for service port ``port`` (the gateway: server port), if it has one.
        Builtin: 127.0.0.1 and a port of the kernel's choosing; istiod: the proxy's own address and ``port``."""
        bound = self._listeners.get(workload, {}).get(port)
        return None if bound is None else f"{bound[0]}:{bound[1]}"

    def app_log(self, service: str, version: str | None = None, *, since: float = 0.0) -> list[ReceivedRequest]:
        """The apps share this machine's clock, so ``since`` is exact: each app skips older entries itself."""
        records: list[ReceivedRequest] = []
        for name, (svc, ver) in sorted(self._labels.items()):
            if svc == service and version in (None, ver):
                records.extend(self._apps[name].control.log(after=since or None))
        return sorted(records, key=lambda r: r.time)

    # --- internals -----------------------------------------------------------------------------

    def _refuse_if_closed(self, what: str) -> None:
        if self._closed:
            raise MeshError(f"{what}: the local mesh is closed (the run is ending); nothing was started or pushed")

    def _raise_if_dead(self, context: str, cause: BaseException | None = None) -> None:
        """ProcessError naming every dead process (see ``health``), if there is one; ``cause`` is chained."""
        dead = self.health()
        if dead:
            lines = "\n".join(str(d) for d in dead)
            raise ProcessError(f"{context}: {lines}\n(the next deploy restarts what exited)") from cause

    def _drop_proxy(self, name: str) -> EnvoyProcess:
        """Forget a sidecar (or the gateway) and what was read from it; the caller stops it."""
        self._listeners.pop(name, None)
        self._listener_names.pop(name, None)
        self._access_logs.pop(name)
        return self._sidecars.pop(name)

    def _sidecar(self, workload: str) -> EnvoyProcess:
        sidecar = self._sidecars.get(workload)
        if sidecar is None:
            raise MeshError(f"no sidecar for workload {workload!r} (workloads: {', '.join(self._sidecars)})")
        return sidecar

    def _join_access_log(self, client: str, records: list[dict[str, Any]], mark: tuple[int, int]) -> list[Observation]:
        """The batch's Observations (from the echo app's ``records``), with ``flags``/``upstream_host``
        from the access log of ``client``'s sidecar (or of the gateway).

        Waits (bounded) for the line of every request that got a response. When some got none,
        it also waits until the log grew by as many lines as Envoy counted requests during the
        batch (``mark``: lines and count before it), so the line of a request that reached Envoy
        but was cut off is there too, if it exists. Deltas, not totals: the counters of listeners
        removed by a topology change vanish, their lines do not.
        """
        join = BatchJoin(records)
        reader = self._access_logs[client]
        lines_before, counted_before = mark
        counted = lines_before + self._requests_counted(client) - counted_before if join.has_unanswered else 0

        def joined() -> bool:
            join.add(reader.take(join.wants()))
            return join.missing == 0 and reader.lines >= counted

        wait_until(joined, ACCESS_LOG_TIMEOUT_S, _LOG_POLL_S, message=lambda: (
            f"proxy of {client}: {join.missing} of {len(records)} answered requests have no access log "
            f"line after {ACCESS_LOG_TIMEOUT_S:g}s (e.g. request ids {join.missing_ids()}); by Envoy's request "
            f"counter the log should have {counted or 'n/a'} lines, it has {reader.lines} ({reader.path})"))
        return join.joined()

    def _requests_counted(self, client: str) -> int:
        """Envoy's count of downstream requests on the client's listeners (one log line each): every
        HTTP connection manager but the admin API's."""
        stats = _admin_stats(self._sidecars[client], r"^http\..*downstream_rq_total$")
        return sum(value for name, value in stats.items() if name != "http.admin.downstream_rq_total")

    def _new_gateway(self) -> EnvoyProcess:
        """The ingress gateway's Envoy (no app), not started yet."""
        return self._new_envoy(GATEWAY, INGRESS_GATEWAY, self.workdir / GATEWAY)

    def _new_envoy(self, name: str, client: Client, workdir: Path) -> EnvoyProcess:
        node = self._plane.node(name, client)
        return EnvoyProcess(node_id=node.node_id, cluster=name, xds_port=self._plane.xds_port, workdir=workdir,
                            binary=self._binary, log_level=self._log_level, metadata=node.metadata,
                            access_log_on_stdout=self._plane.access_log_on_stdout)

    def _replace_dead_launcher(self) -> bool:
        """Start another zygote if the current one died (a kill, the OOM killer); True if it did, and
        ``deploy`` then restarts the apps the dead one forked. The dead one's log stays in the work dir."""
        if self._launcher is not None:
            if self._launcher.exit_code() is None:
                return False
            self._dead_launchers.append(self._launcher)
            self._launcher = None  # if the start below fails, the next deploy tries again
        self._launcher = AppLauncher(self.workdir / f"echo-zygote-{len(self._dead_launchers) + 1}.stderr.log")
        return True

    def _start_processes(self, topology: Topology, apps: dict[str, tuple[str, str]], clients: Sequence[Client],
                         sidecars: Sequence[Client]) -> None:
        """Start the sidecars of ``sidecars``, then app instances and the apps of ``clients`` in parallel.

        A sidecar goes first: Envoy's own start and its xDS connection (most of a bare Envoy's
        start) then overlap the zygote's imports, and its first config follows in ``_push``."""
        workdir = self.workdir
        for client in sidecars:
            sidecar_dir = workdir / f"sidecar-{client.name}"
            sidecar_dir.mkdir(exist_ok=True)  # a client that left and came back reuses it
            sidecar = self._new_envoy(client.name, client, sidecar_dir)
            self._sidecars[client.name] = sidecar
            self._access_logs[client.name] = AccessLogReader(sidecar.access_log_path)
            sidecar.start()  # it turns ready once its first config is ACKed (see _push)
        jobs = {name: (svc, ver) for name, (svc, ver) in apps.items()}
        jobs.update({f"{c.name}-0": (c.name, dict(c.labels).get("version", "v1")) for c in clients})
        knobs = {name: _knobs_of(topology, name) for name in apps}
        futures: dict[str, Future[AppProcess]] = {}
        failure: BaseException | None = None
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
                for name, (svc, ver) in jobs.items():
                    futures[name] = pool.submit(AppProcess.start, svc, ver, name, defaults=knobs.get(name),
                                                workdir=workdir, ready_timeout=READY_TIMEOUT_S, launcher=self._launcher)
        except BaseException as exc:  # noqa: BLE001 (Ctrl-C or SIGTERM: raised below, once what started is recorded)
            failure = exc
        # Leaving the pool waited for every start, also on an interrupt, so each app that came up is
        # recorded below and stopped by close(); a start is bounded by READY_TIMEOUT_S.
        started: dict[str, AppProcess] = {}
        for name, future in futures.items():
            try:
                started[name] = future.result(timeout=READY_TIMEOUT_S)
            except BaseException as exc:  # noqa: BLE001 (keep the first failure, raised below)
                failure = failure or exc
        for name, proc in started.items():
            service, version = jobs[name]
            if name in apps:
                self._apps[name] = proc
                self._labels[name] = (service, version)
                self._knobs[name] = knobs[name]
            else:
                self._clients[service] = proc
        if failure is not None:
            raise failure

    def _push(self, objects: dict[tuple[str, str, str], IstioObject], *, topology_changed: bool = False) -> None:
        """Have the control plane configure every proxy as the next version; wait until they run it.

        Listeners depend on the services, ServiceEntry ports and Gateway servers, not on the
        config version, so their bound addresses are read back from Envoy's admin API after a
        deploy and whenever a proxy's set of listeners may have changed.
        """
        assert self._topology is not None
        version = self._version + 1
        wants_gateway = self._topology.gateway or any(isinstance(o, Gateway) for o in objects.values())
        proxies = dict(self._sidecars)
        # A dead proxy cannot ACK; the next deploy restarts it with the config of its day.
        dead = {name for name, proxy in proxies.items() if proxy.exit_code is not None}
        if wants_gateway and GATEWAY not in proxies:
            proxies[GATEWAY] = self._new_gateway()
        wanted = Wanted(topology=self._topology, objects=tuple(objects.values()), instances=self._instances(),
                        proxies=proxies, live=tuple(n for n in proxies if n not in dead), version=version)
        self._plane.check(wanted)  # may raise: nothing pushed, nothing started
        if GATEWAY in proxies and GATEWAY not in self._sidecars:
            self._sidecars[GATEWAY] = gateway = proxies[GATEWAY]
            self._access_logs[GATEWAY] = AccessLogReader(gateway.access_log_path)
            gateway.start()  # it turns ready once its first config is ACKed
        self._version = version  # used up from here on, whatever the outcome (module docstring)
        try:
            self._plane.sync(wanted)
        except SyncTimeout as exc:
            self._raise_if_dead(f"config version {version} not ACKed, a process of the mesh exited", exc)
            raise
        except (ConfigRejected, ValidationError):
            self._version = version + 1  # the previous config, restored under the next version
            raise
        self._objects = dict(objects)
        for name in wanted.live:
            listeners = self._plane.expected_listeners(name)
            if topology_changed or listeners is None or self._listener_names.get(name) != listeners:
                self._sidecars[name].wait_ready(READY_TIMEOUT_S)
                self._listeners[name] = self._wait_listeners(name, listeners)
                self._listener_names[name] = listeners

    def _wait_listeners(self, name: str, listeners: frozenset[str] | None) -> dict[int, tuple[str, int]]:
        """Bound addresses of ``listeners`` (by service port), once Envoy shows every one of them bound
        and none warming; ``None``: every listener the proxy has then."""
        proxy = self._sidecars[name]
        bound: dict[str, tuple[str, int]] = {}
        warming: dict[str, int] = {}

        def bound_and_warm() -> bool:
            bound.clear()
            bound.update(proxy.listener_addresses())
            warming.clear()
            warming.update(_admin_stats(proxy, r"^listener_manager\.total_listeners_warming$"))
            return (listeners is None or listeners <= set(bound)) and not any(warming.values())

        wait_until(bound_and_warm, READY_TIMEOUT_S, _LISTENER_POLL_S, message=lambda: (
            f"{name}: listeners {', '.join(sorted(listeners or ['(any)']))} not all bound and warm after "
            f"{READY_TIMEOUT_S:g}s (bound: {', '.join(sorted(bound)) or 'none'}; warming: {warming})"))
        return _by_service_port({n: a for n, a in bound.items() if listeners is None or n in listeners})

    def _client(self, name: str) -> Client:
        assert self._topology is not None
        client = self._topology.client(name)
        assert client is not None, name
        return client

    def _instances(self) -> dict[str, Instance]:
        return {name: Instance(svc, ver, self._apps[name].http_port, self._apps[name].grpc_port)
                for name, (svc, ver) in sorted(self._labels.items())}

def _knobs_of(topology: Topology, instance: str) -> dict[str, str]:
    """The echo defaults ``topology`` gives ``instance`` (``Service.instance_knobs``)."""
    service_name, version = topology.instances()[instance]
    service = topology.service(service_name)
    assert service is not None, service_name
    return service.instance_knobs(version, instance)


def source_address(topology: Topology, client: str, *, distinct: bool) -> str:
    """The loopback address a client sends from (pure): its ``Client.source_ip`` when that is set to
    another address than 127.0.0.1; else 127.0.0.(1+index in the topology) when ``distinct``, so
    that ``useSourceIp`` hashing tells clients apart; else 127.0.0.1."""
    index, found = next((i, c) for i, c in enumerate(topology.clients) if c.name == client)
    if found.source_ip != DEFAULT_SOURCE_IP or not distinct:
        return found.source_ip
    return f"127.0.0.{1 + index}"


def in_flight(stats: Mapping[str, int]) -> dict[str, int]:
    """The nonzero request gauges of a sidecar's stats: ``cluster.<name>.upstream_rq_active`` (pure).

    Also ``http.<prefix>.downstream_rq_active``: a request held by a fault delay has no upstream
    request yet. Left out: the xDS stream (always one active request) and the admin listener
    (which serves the stats read itself).
    """
    ignored = (f"cluster.{XDS_CLUSTER}.upstream_rq_active", "http.admin.downstream_rq_active")
    return {
        name: value
        for name, value in stats.items()
        if value and name.endswith(("upstream_rq_active", "downstream_rq_active")) and name not in ignored
        and name.startswith(("cluster.", "http."))
    }


def _admin_stats(sidecar: EnvoyProcess, regex: str) -> dict[str, int]:
    """Counters and gauges whose name matches ``regex``: a filtered read costs far less than ``stats()``."""
    body = sidecar.admin_json(f"/stats?format=json&filter={quote(regex)}")
    return {e["name"]: e["value"] for e in body.get("stats", []) if isinstance(e.get("value"), int)}


def _by_service_port(listeners: dict[str, tuple[str, int]]) -> dict[int, tuple[str, int]]:
    """Listener name (``0.0.0.0_9080``, istiod's ``127.3.4.10_9080``) -> bound address, re-keyed by the
    service port; the wildcard address is reached on 127.0.0.1."""
    out: dict[int, tuple[str, int]] = {}
    for name, (ip, bound) in listeners.items():
        address, _, port = name.rpartition("_")
        if port.isdigit() and address.count(".") == 3:
            out[int(port)] = ("127.0.0.1" if ip == "0.0.0.0" else ip, bound)
    return out


def _make_plane(name: PlaneName, istio_version: str, sync_timeout_s: float, istiod_binary: str | None,
                istiod_version: str | None) -> Plane:
    """The control plane ``name``; istiod's build is located (not built) here, so a missing one fails fast."""
    if name == "builtin":
        return BuiltinPlane(istio_version, sync_timeout_s)
    if name == "istiod":
        from harness.mesh.local.istiod.build import locate_istiod
        from harness.mesh.local.istiod.plane import IstiodPlane

        return IstiodPlane(locate_istiod(istiod_version, istiod_binary), sync_timeout_s)
    raise MeshError(f"unknown control plane {name!r}; expected builtin or istiod")
