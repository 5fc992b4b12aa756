"""The two control planes of the local mesh side by side: builtin (our translator + ADS) and real istiod.

Measures, in one run on this machine, with real Envoy and the echo apps, each plane next to the other:

* start: ``LocalMesh(control_plane=X).start()`` + ``deploy(DEFAULT_TOPOLOGY)`` until the sidecar runs the
  topology, ``--starts`` rounds per plane, the planes interleaved (which goes first alternates), each
  in a fresh mesh; split into the plane's own start (istiod: spawn -> its gRPC port open, and from its
  log: spawn -> first log line -> "starting gRPC discovery service"), the apps' and sidecar's start,
  and the first sync;
* apply -> synced: for every shipped case (``--cases``), on one mesh per plane, ``deploy(case.topology)``
  (not timed), then ``mesh.apply(case.objects)`` and ``mesh.revert(token)``, each timed until it
  returns; median / p95 / max per plane and the ratio istiod / builtin. For istiod each sync is
  split with istiod's own log timestamps (same wall clock): the file written -> "Triggering reload of
  file configuration" (fsnotify + the file watcher's debounce) -> "Push debounce stable" -> the last
  "PUSH" line before the sync returned -> the sync returned (Envoy applies and ACKs, the harness sees
  the sentinels in each config_dump) -> apply returned (listeners read back);
* cold suite: ``mesh-harness run --control-plane X --json F <cases>`` in a subprocess, wall time,
  ``--suite-runs`` times per plane (alternating), with the process tree's RSS sampled every 0.25 s
  (the CLI process, istiod, every Envoy);
* memory: RSS of istiod (VmRSS; VmHWM = its peak), of the sidecar Envoys, and of the harness process,
  which hosts the builtin plane: the apply loop runs in a fresh interpreter per plane, whose RSS after
  deploy minus its RSS just before ``start()`` is the builtin plane's cost (the same delta is taken on
  the istiod plane, where the harness only renders files and polls Envoy); and the cold suites' process
  trees sampled.

Records load average at start and end and the git commit. Prints a compact table; writes
``--out``/control_planes.json and control_planes.md. Nothing is asserted: performance claims live in
bench/ only.

Run from the repository root (about 7 minutes on two cores):
    python bench/control_planes.py [--starts 5] [--suite-runs 1] [--cases cases/] [--out bench/results]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.local_mesh import vm_rss_mib  # noqa: E402
from harness.case import Case, load_case_file  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.mesh.local.builtin_plane import BuiltinPlane  # noqa: E402
from harness.mesh.local.istiod.build import locate_istiod  # noqa: E402
from harness.mesh.local.istiod.plane import IstiodPlane  # noqa: E402
from harness.mesh.local.istiod.process import IstiodProcess  # noqa: E402
from harness.mesh.local.mesh import LocalMesh  # noqa: E402
from harness.topology import DEFAULT_TOPOLOGY  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PLANES = ("builtin", "istiod")
MESH_HARNESS = str(Path(sys.executable).with_name("mesh-harness"))
#: Bound on one cold suite run (about 90 s each here).
SUITE_TIMEOUT_S = 600.0
SAMPLE_S = 0.25
#: The issue's targets.
APPLY_TARGET_MS = 100.0
SUITE_RATIO_TARGET = 1.5
_LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z)\t")


# --- timing spans: wrap a few methods of the mesh's classes, for this process only ----------------


@dataclass
class Spans:
    """(name, wall start, wall end) of every call of the wrapped methods; ``time.time()``, the clock of
    istiod's log timestamps."""

    records: list[tuple[str, float, float]] = field(default_factory=list)
    _undo: list[tuple[Any, str, Any]] = field(default_factory=list)

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        records = self.records

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                records.append((name, began, time.time()))

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()

    def within(self, name: str, lo: float, hi: float) -> list[tuple[float, float]]:
        return [(b, e) for n, b, e in self.records if n == name and lo <= b <= hi]

    def ms(self, name: str, lo: float, hi: float) -> float:
        return sum(e - b for b, e in self.within(name, lo, hi)) * 1e3


@contextmanager
def spans() -> Iterator[Spans]:
    found = Spans()
    found.wrap(LocalMesh, "_start_processes", "processes")
    found.wrap(BuiltinPlane, "check", "check")  # the builtin translation
    found.wrap(BuiltinPlane, "sync", "sync")
    found.wrap(IstiodPlane, "sync", "sync")
    found.wrap(IstiodPlane, "_write", "write")
    found.wrap(IstiodProcess, "start", "istiod start")
    try:
        yield found
    finally:
        found.restore()


# --- numbers ----------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 2), "p95": round(pct(values, 0.95), 2),
            "max": round(max(values), 2)}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def vm_hwm_mib(pid: int) -> float | None:
    """Peak RSS (``VmHWM``) of a live process, MiB."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")), None)


def envoy_rss(mesh: LocalMesh) -> dict[str, float]:
    pids = mesh.inventory().pids
    out = {}
    for name, pid in pids.items():
        if name.startswith("sidecar-") or name == "gateway" or name.startswith("istio-ingress"):
            rss = vm_rss_mib(pid)
            if rss is not None:
                out[name] = round(rss, 1)
    return out


def self_rss_mib() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


# --- istiod's log -----------------------------------------------------------------------------


def log_events(text: str) -> list[tuple[float, str]]:
    out = []
    for line in text.splitlines():
        found = _LOG_TS.match(line)
        if found:
            when = datetime.datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
            out.append((when, line[found.end():]))
    return out


def first_after(events: list[tuple[float, str]], since: float, needle: str, until: float = float("inf")) -> float | None:
    return next((t for t, msg in events if since <= t <= until and needle in msg), None)


def istiod_phases(events: list[tuple[float, str]], began: float, write: float, synced: float,
                  returned: float) -> dict[str, float] | None:
    """One istiod sync split at its log lines, in ms; None when a line is missing (e.g. a refused file)."""
    reload = first_after(events, write, "Triggering reload of file configuration", synced)
    stable = first_after(events, reload, "Push debounce stable", synced) if reload else None
    pushes = [t for t, msg in events if stable is not None and stable <= t <= synced and "PUSH" in msg]
    if reload is None or stable is None or not pushes:
        return None
    return {"before write (render, counters)": (write - began) * 1e3,
            "write -> reload (fsnotify + file debounce)": (reload - write) * 1e3,
            "reload -> push debounce stable": (stable - reload) * 1e3,
            "debounce stable -> last xDS push": (pushes[-1] - stable) * 1e3,
            "last push -> sync returned (Envoy ACK, config_dump poll)": (synced - pushes[-1]) * 1e3,
            "sync returned -> apply returned (listeners read back)": (returned - synced) * 1e3}


# --- 1. start ---------------------------------------------------------------------------------


def one_start(plane: str, found: Spans) -> dict[str, Any]:
    began_wall, began = time.time(), time.perf_counter()
    mesh = LocalMesh(control_plane=plane)  # type: ignore[arg-type]
    try:
        mesh.start()
        started = time.perf_counter()
        mesh.deploy(DEFAULT_TOPOLOGY)
        ready = time.perf_counter()
        end_wall = time.time()
        row: dict[str, Any] = {"start_ms": (started - began) * 1e3, "deploy_ms": (ready - started) * 1e3,
                               "total_ms": (ready - began) * 1e3,
                               "processes_ms": found.ms("processes", began_wall, end_wall),
                               "first_sync_ms": found.ms("sync", began_wall, end_wall)}
        if plane == "istiod":
            istiod = mesh._plane.istiod  # type: ignore[attr-defined]
            (spawn, serving), = found.within("istiod start", began_wall, end_wall)
            events = log_events(istiod.log_path.read_text(errors="replace"))
            grpc = first_after(events, 0.0, "starting gRPC discovery service")
            row["istiod_spawn_to_serving_ms"] = (serving - spawn) * 1e3
            if events and grpc is not None:
                row["istiod_spawn_to_first_log_ms"] = (events[0][0] - spawn) * 1e3
                row["istiod_first_log_to_grpc_ms"] = (grpc - events[0][0]) * 1e3
            row["istiod_rss_mib"] = vm_rss_mib(istiod.pid)
        row["envoy_rss_mib"] = envoy_rss(mesh)
        return row
    finally:
        mesh.close()


def measure_starts(rounds: int, warmup: int, found: Spans) -> dict[str, list[dict[str, Any]]]:
    """``warmup`` rounds first (not kept: the first start of each pays for a cold page cache), then ``rounds``."""
    for r in range(warmup):
        for plane in PLANES:
            print(f"  warm-up start {r + 1}/{warmup}: {plane}", file=sys.stderr, flush=True)
            one_start(plane, found)
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in PLANES}
    for r in range(rounds):
        for plane in (PLANES if r % 2 == 0 else PLANES[::-1]):
            print(f"  start round {r + 1}/{rounds}: {plane}", file=sys.stderr, flush=True)
            out[plane].append(one_start(plane, found))
    return out


# --- 2. apply / revert per case, and memory --------------------------------------------------


def shipped_cases(paths: Sequence[str]) -> list[Case]:
    files: list[Path] = []
    for p in paths:
        path = ROOT / p
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return [case for f in files for case in load_case_file(f)]


def measure_applies(plane: str, cases: Sequence[Case], found: Spans) -> dict[str, Any]:
    rss_before = self_rss_mib()
    mesh = LocalMesh(control_plane=plane).start()  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    try:
        mesh.deploy(DEFAULT_TOPOLOGY)
        pids = mesh.inventory().pids
        memory: dict[str, Any] = {"this_process_before_start_mib": round(rss_before, 1),
                                  "this_process_after_deploy_mib": round(self_rss_mib(), 1),
                                  "envoy_after_deploy_mib": envoy_rss(mesh)}
        if "istiod" in pids:
            memory["istiod_after_deploy_mib"] = vm_rss_mib(pids["istiod"])
        envoy_peak, istiod_peak = 0.0, 0.0
        for case in cases:  # bounded: one apply and one revert per case
            row: dict[str, Any] = {"case": case.name}
            began = time.perf_counter()
            mesh.deploy(case.topology)
            row["deploy_ms"] = (time.perf_counter() - began) * 1e3
            wall0, began = time.time(), time.perf_counter()
            try:
                token = mesh.apply(case.objects)
            except HarnessError as exc:
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                rows.append(row)
                continue
            row["apply_ms"] = (time.perf_counter() - began) * 1e3
            wall1, began = time.time(), time.perf_counter()
            mesh.revert(token)
            row["revert_ms"] = (time.perf_counter() - began) * 1e3
            wall2 = time.time()
            row["walls"] = (wall0, wall1, wall2)
            row["translate_ms"] = [found.ms("check", wall0, wall1), found.ms("check", wall1, wall2)]
            row["sync_ms"] = [found.ms("sync", wall0, wall1), found.ms("sync", wall1, wall2)]
            envoys = envoy_rss(mesh)
            envoy_peak = max(envoy_peak, max(envoys.values(), default=0.0))
            if "istiod" in pids:
                istiod_peak = max(istiod_peak, vm_rss_mib(pids["istiod"]) or 0.0)
            rows.append(row)
        mesh.deploy(DEFAULT_TOPOLOGY)
        memory["this_process_after_cases_mib"] = round(self_rss_mib(), 1)
        memory["envoy_after_cases_mib"] = envoy_rss(mesh)
        memory["envoy_max_seen_mib"] = round(envoy_peak, 1)
        if "istiod" in pids:
            memory["istiod_after_cases_mib"] = vm_rss_mib(pids["istiod"])
            memory["istiod_max_seen_mib"] = round(istiod_peak, 1)
            memory["istiod_vmhwm_mib"] = vm_hwm_mib(pids["istiod"])
            log_text = mesh._plane.istiod.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
            add_istiod_phases(rows, found, log_events(log_text))
    finally:
        mesh.close()
    for row in rows:
        row.pop("walls", None)
    return {"rows": rows, "memory": memory}


def applies_in_child(plane: str, cases: Sequence[str]) -> dict[str, Any]:
    """``measure_applies`` in a fresh interpreter, so that its RSS before ``start()`` is a clean baseline."""
    with tempfile.TemporaryDirectory(prefix="bench-planes-") as tmp:
        out = Path(tmp) / "applies.json"
        cmd = [sys.executable, __file__, "--applies-child", plane, "--child-out", str(out), "--cases", *cases]
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise SystemExit(f"the apply/revert loop on {plane} did not finish within {SUITE_TIMEOUT_S:g}s: "
                             f"{' '.join(cmd)}") from exc
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"the apply/revert loop on {plane} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        found: dict[str, Any] = json.loads(out.read_text())
    return found


def add_istiod_phases(rows: list[dict[str, Any]], found: Spans, events: list[tuple[float, str]]) -> None:
    for row in rows:
        if "walls" not in row:
            continue
        wall0, wall1, wall2 = row["walls"]
        phases: list[dict[str, float] | None] = []
        for lo, hi in ((wall0, wall1), (wall1, wall2)):
            writes, syncs = found.within("write", lo, hi), found.within("sync", lo, hi)
            if len(writes) != 1 or len(syncs) != 1:
                phases.append(None)  # a refused file is written twice
                continue
            phases.append(istiod_phases(events, lo, writes[0][0], syncs[0][1], hi))
        row["istiod_phases_ms"] = phases


# --- 3. cold suite --------------------------------------------------------------------------


def suite_run(plane: str, paths: Sequence[str]) -> dict[str, Any]:
    """One cold ``mesh-harness run --control-plane <plane>``: wall time, outcome, and the RSS of its process tree."""
    with tempfile.TemporaryDirectory(prefix="bench-planes-") as tmp:
        out = Path(tmp) / "suite.json"
        cmd = [MESH_HARNESS, "run", "--control-plane", plane, "--json", str(out), *paths]
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "200"})
        samples: dict[str, list[float]] = {"cli": [], "istiod": [], "envoy_each": [], "envoy_sum": []}
        deadline = began + SUITE_TIMEOUT_S
        for _ in range(int(SUITE_TIMEOUT_S / SAMPLE_S) + 2):  # bounded by the deadline, too
            if proc.poll() is not None or time.perf_counter() > deadline:
                break
            sample_tree(proc.pid, samples)
            time.sleep(SAMPLE_S)
        try:
            _, err = proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            proc.kill()  # its atexit cleanup does not run; its children die with it (PR_SET_PDEATHSIG)
            proc.communicate(timeout=10)
            raise SystemExit(f"mesh-harness run --control-plane {plane} did not finish within {SUITE_TIMEOUT_S:g}s") from None
        wall = time.perf_counter() - began
        if not out.exists():
            raise SystemExit(f"mesh-harness run --control-plane {plane} wrote no JSON (exit {proc.returncode}):\n"
                             f"{err.decode(errors='replace')[-3000:]}")
        document = json.loads(out.read_text())
    checks = document["checks"]
    per_case: dict[str, tuple[float, float]] = {}
    for c in checks:
        if c.get("case_apply_s") is not None and c.get("case_revert_s") is not None:
            per_case[c["case"]] = (c["case_apply_s"], c["case_revert_s"])
    return {
        "wall_s": round(wall, 1), "exit_code": proc.returncode, "summary": document["summary"],
        "not_passed": [f"{c['case']} / {c['check']}: {c['outcome']}" for c in checks if c["outcome"] != "pass"],
        "inside_checks_s": round(sum(c["seconds"] for c in checks), 1),
        "apply_plus_revert_s": round(sum(a + r for a, r in per_case.values()), 1),
        "rss_mib": {k: {"peak": round(max(v), 1), "median": round(statistics.median(v), 1)} if v else None
                    for k, v in samples.items()},
        "rss_samples": len(samples["cli"]),
    }


def sample_tree(pid: int, samples: dict[str, list[float]]) -> None:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    envoys = []
    for p in procs:
        try:
            name, rss = p.name(), p.memory_info().rss / 2**20
        except psutil.Error:
            continue
        if p.pid == pid:
            samples["cli"].append(rss)
        elif name.startswith("pilot-discover"):
            samples["istiod"].append(rss)
        elif name == "envoy":
            envoys.append(rss)
    if envoys:
        samples["envoy_each"] += envoys
        samples["envoy_sum"].append(sum(envoys))


# --- summary -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split("\n")
    build = locate_istiod(None, None)
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0], "commit": commit,
            "tracked_files_modified": [line[3:] for line in dirty if line.strip()],
            "istiod_build": build.label, "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "shared": "the machine runs other work at the same time; absolute figures move with its load, ratios less"}


def summarize(starts: dict[str, list[dict[str, Any]]], applies: dict[str, dict[str, Any]],
              suites: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of (figure, builtin, istiod, ratio istiod/builtin, unit, note)."""
    rows: list[dict[str, Any]] = []

    def add(figure: str, b: float | None, i: float | None, unit: str, note: str = "") -> None:
        rows.append({"figure": figure, "builtin": None if b is None else round(b, 2),
                     "istiod": None if i is None else round(i, 2), "ratio": ratio(i, b), "unit": unit, "note": note})

    def med(plane: str, key: str) -> float | None:
        values = [r[key] for r in starts[plane] if r.get(key) is not None]
        return statistics.median(values) if values else None

    n = len(starts["builtin"])
    add(f"start + deploy default topology, median of {n}", med("builtin", "total_ms"), med("istiod", "total_ms"), "ms",
        "LocalMesh(...).start() + deploy(DEFAULT_TOPOLOGY): 2 apps, client app, 1 sidecar to its first sync")
    add("  of which start() (the plane)", med("builtin", "start_ms"), med("istiod", "start_ms"), "ms")
    add("  of which apps + sidecar spawn", med("builtin", "processes_ms"), med("istiod", "processes_ms"), "ms")
    add("  of which first sync", med("builtin", "first_sync_ms"), med("istiod", "first_sync_ms"), "ms")
    add("istiod spawn -> gRPC port open (IstiodProcess.start)", None, med("istiod", "istiod_spawn_to_serving_ms"), "ms",
        f"spawn -> first log line {fmt(med('istiod', 'istiod_spawn_to_first_log_ms'))} ms, first log line -> "
        f"'starting gRPC discovery service' {fmt(med('istiod', 'istiod_first_log_to_grpc_ms'))} ms")
    for what in ("apply", "revert"):
        b = [r[f"{what}_ms"] for r in applies["builtin"]["rows"] if f"{what}_ms" in r]
        i = [r[f"{what}_ms"] for r in applies["istiod"]["rows"] if f"{what}_ms" in r]
        for q, fn in (("median", statistics.median), ("p95", lambda v: pct(v, 0.95)), ("max", max)):
            add(f"{what} -> every sidecar runs it, {q} ({len(b)} / {len(i)} cases)", fn(b) if b else None,
                fn(i) if i else None, "ms", f"target: istiod median < {APPLY_TARGET_MS:g} ms" if
                (what, q) == ("apply", "median") else "")
    bw = [s["wall_s"] for s in suites.get("builtin", [])]
    iw = [s["wall_s"] for s in suites.get("istiod", [])]
    if bw and iw:
        add(f"cold suite wall time (mesh-harness run, {len(bw)} run(s) each, median)", statistics.median(bw),
            statistics.median(iw), "s", f"target ratio <= {SUITE_RATIO_TARGET:g}; outcomes: builtin "
            f"{outcome(suites['builtin'][0])}, istiod {outcome(suites['istiod'][0])}")
        add("  of which apply + revert (from the result JSON)", suites["builtin"][0]["apply_plus_revert_s"],
            suites["istiod"][0]["apply_plus_revert_s"], "s", "first run; deploys included, the first starts the mesh")
        add("  of which inside checks", suites["builtin"][0]["inside_checks_s"], suites["istiod"][0]["inside_checks_s"],
            "s", "first run")
        for key, label in (("cli", "suite: the mesh-harness process RSS"), ("istiod", "suite: istiod RSS"),
                           ("envoy_each", "suite: one Envoy RSS"), ("envoy_sum", "suite: all Envoys RSS")):
            b_rss, i_rss = suites["builtin"][0]["rss_mib"][key], suites["istiod"][0]["rss_mib"][key]
            for q in ("median", "peak"):
                add(f"{label}, {q} of samples", b_rss[q] if b_rss else None, i_rss[q] if i_rss else None, "MiB",
                    f"sampled every {SAMPLE_S:g} s, first run")
    mb, mi = applies["builtin"]["memory"], applies["istiod"]["memory"]
    db = mb["this_process_after_deploy_mib"] - mb["this_process_before_start_mib"]
    di = mi["this_process_after_deploy_mib"] - mi["this_process_before_start_mib"]
    add("control plane RSS after deploy (builtin: harness process delta; istiod: its RSS + harness delta)",
        db, (mi.get("istiod_after_deploy_mib") or 0) + di, "MiB",
        f"fresh harness process, RSS after deploy minus before start(); istiod alone "
        f"{fmt(mi.get('istiod_after_deploy_mib'))}, the harness delta on istiod {fmt(di)}")
    add("istiod RSS after every case (steady) / peak (VmHWM)", None, mi.get("istiod_after_cases_mib"), "MiB",
        f"VmHWM {fmt(mi.get('istiod_vmhwm_mib'))} MiB; harness process delta after the cases: builtin "
        f"{fmt(mb['this_process_after_cases_mib'] - mb['this_process_before_start_mib'])}, istiod "
        f"{fmt(mi['this_process_after_cases_mib'] - mi['this_process_before_start_mib'])} MiB (Python keeps freed memory)")
    add("client sidecar Envoy RSS after deploy (default topology)", mb["envoy_after_deploy_mib"].get("sidecar-client"),
        mi["envoy_after_deploy_mib"].get("sidecar-client"), "MiB")
    add("client sidecar Envoy RSS after every case", mb["envoy_after_cases_mib"].get("sidecar-client"),
        mi["envoy_after_cases_mib"].get("sidecar-client"), "MiB",
        f"largest Envoy seen after any case's apply+revert: builtin {fmt(mb['envoy_max_seen_mib'])}, istiod "
        f"{fmt(mi['envoy_max_seen_mib'])}; the ingress gateway stays once a case started it")
    return rows


def outcome(suite: dict[str, Any]) -> str:
    return ", ".join(f"{v} {k}" for k, v in suite["summary"].items() if v)


def fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def phase_summary(applies: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    by_phase: dict[str, list[float]] = {}
    for row in applies["istiod"]["rows"]:
        for phases in row.get("istiod_phases_ms") or []:
            for name, ms in (phases or {}).items():
                by_phase.setdefault(name, []).append(ms)
    return {name: stats(values) for name, values in by_phase.items()}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'figure':<74} {'builtin':>9} {'istiod':>9} {'ratio':>6}"]
    for r in rows:
        lines.append(f"{r['figure'][:74]:<74} {fmt(r['builtin']):>9} {fmt(r['istiod']):>9} "
                     f"{fmt(r['ratio']):>6}  {r['unit']}")
    return "\n".join(lines)


def markdown(host: dict[str, Any], rows: list[dict[str, Any]], phases: dict[str, Any],
             applies: dict[str, dict[str, Any]], suites: dict[str, list[dict[str, Any]]]) -> str:
    load = " / ".join(f"{x:.2f}" for x in host["loadavg_start"]) + " -> " + " / ".join(
        f"{x:.2f}" for x in host["loadavg_end"])
    lines = [f"Measured {host['date']} at {host['commit'][:12]} on {host['nproc']} x {host['cpu']}, Python "
             f"{host['python']}, istiod {host['istiod_build']}; load average (1/5/15 min) {load}; {host['shared']}. "
             f"`python bench/control_planes.py`; ratio = istiod / builtin.", "",
             "| figure | builtin | istiod | ratio | unit | notes |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {fmt(r['builtin'])} | {fmt(r['istiod'])} | {fmt(r['ratio'])} | {r['unit']} | "
                     f"{r['note']} |")
    lines += ["", "Where an istiod apply/revert spends its time (every sync of the case loop, from istiod's log "
              "timestamps next to this process's clock), ms:", "", "| phase | n | median | p95 | max |",
              "|---|---|---|---|---|"]
    for name, s in phases.items():
        lines.append(f"| {name} | {s['n']} | {fmt(s['median'])} | {fmt(s['p95'])} | {fmt(s['max'])} |")
    lines += ["", "The write -> reload phase is istiod's file watcher: `--configDir` is read by "
              "pkg/kube/krt/files/files.go, which waits `watchDebounceDelay = 250 * time.Millisecond` (a constant, "
              "not a setting) after the first fsnotify event before it re-reads the directory; "
              "`PILOT_DEBOUNCE_AFTER=10ms` only shortens the push debounce after that."]
    builtin_rows = {r["case"]: r for r in applies["builtin"]["rows"]}
    lines += ["", "Per case, apply / revert ms (builtin, istiod):", "",
              "| case | builtin apply | builtin revert | istiod apply | istiod revert |", "|---|---|---|---|---|"]
    for r in applies["istiod"]["rows"]:
        b = builtin_rows.get(r["case"], {})
        lines.append(f"| {r['case']} | {cell(b, 'apply_ms')} | {cell(b, 'revert_ms')} | {cell(r, 'apply_ms')} | "
                     f"{cell(r, 'revert_ms')} |")
    for plane in PLANES:
        for i, s in enumerate(suites.get(plane, [])):
            lines.append(f"\nCold suite, {plane}, run {i + 1}: {s['wall_s']} s, exit {s['exit_code']}, {outcome(s)}"
                         + (f"; not passed: {'; '.join(s['not_passed'])}" if s["not_passed"] else ""))
    return "\n".join(lines) + "\n"


def cell(row: dict[str, Any], key: str) -> str:
    return fmt(row[key]) if key in row else row.get("error", "n/a")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--suite-runs", type=int, default=1, help="cold suite runs per plane (0: skip)")
    parser.add_argument("--cases", nargs="+", default=["cases/"])
    parser.add_argument("--warmup", type=int, default=1, help="start rounds per plane not kept (cold page cache)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--applies-child", choices=PLANES, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.applies_child:
        cases_ = shipped_cases(args.cases)
        with spans() as found_:
            args.child_out.write_text(json.dumps(measure_applies(args.applies_child, cases_, found_), default=float))
        return

    host = machine()
    cases = shipped_cases(args.cases)
    applies: dict[str, dict[str, Any]] = {}
    with spans() as found:
        print("1. start + deploy ...", file=sys.stderr, flush=True)
        starts = measure_starts(args.starts, args.warmup, found)
    host["loadavg_after_starts"] = [round(x, 2) for x in os.getloadavg()]
    for plane in PLANES:
        print(f"2. apply / revert of {len(cases)} cases, {plane} (own process) ...", file=sys.stderr, flush=True)
        applies[plane] = applies_in_child(plane, args.cases)
    host["loadavg_after_applies"] = [round(x, 2) for x in os.getloadavg()]
    suites: dict[str, list[dict[str, Any]]] = {p: [] for p in PLANES}
    for r in range(args.suite_runs):
        for plane in (PLANES if r % 2 == 0 else PLANES[::-1]):
            print(f"3. cold suite run {r + 1}/{args.suite_runs}, {plane} ...", file=sys.stderr, flush=True)
            suites[plane].append(suite_run(plane, args.cases))
    host["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    rows = summarize(starts, applies, suites)
    phases = phase_summary(applies)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "control_planes.json").write_text(json.dumps({
        "machine": host, "cases": args.cases, "figures": rows, "istiod_sync_phases_ms": phases,
        "starts": starts, "applies": applies, "suites": suites}, indent=2, default=float) + "\n")
    (args.out / "control_planes.md").write_text(markdown(host, rows, phases, applies, suites))
    print(table(rows))
    print("\nistiod apply/revert, where the time goes (ms, median / p95):")
    for name, s in phases.items():
        print(f"  {name:<58} {fmt(s['median']):>7} {fmt(s['p95']):>7}  (n={s['n']})")
    print(f"\nload average {host['loadavg_start']} -> {host['loadavg_end']}; wrote {args.out}/control_planes.json, .md")


if __name__ == "__main__":
    main()
