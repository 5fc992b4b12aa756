"""A kind cluster the harness owns: config, create or reuse, image loading, delete.

The kubeconfig is a file the harness owns (``<state dir>/<name>/kubeconfig``, passed to kind with
``--kubeconfig``), so the user's ``~/.kube/config`` and current context are never read or changed.
A cluster is reused when one of that name exists and the config the harness stored when it made
it hashes the same; one of that name made by someone else, or with another config, is an error
that says what to do, never silently taken over or deleted. ``delete`` removes only a cluster this
run created, when the last of its processes lets go (``--keep-cluster`` keeps even that): pytest-xdist
workers share one cluster, created once under a file lock, each in its own namespaces.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import MeshError, ProcessError
from harness.mesh.childproc import process_exists
from harness.mesh.kube.commands import Runner
from harness.mesh.kube.versions import DEFAULT_KUBERNETES, KIND_VERSION, node_image
from harness.progress import Observer, ignore, step

CREATE_TIMEOUT_S = 600.0
DELETE_TIMEOUT_S = 300.0
LOAD_TIMEOUT_S = 600.0
QUERY_TIMEOUT_S = 60.0
INOTIFY_MIN = {"max_user_watches": 524288, "max_user_instances": 512}
"""kind's known-issues page: below these, pods of a many-pod cluster fail with 'too many open files'."""


@dataclass(frozen=True)
class KindSpec:
    """What defines a harness cluster; two runs with equal specs share a cluster."""

    name: str = "mesh-harness"
    kubernetes: str = DEFAULT_KUBERNETES

    @property
    def context(self) -> str:
        return f"kind-{self.name}"


def kind_config(spec: KindSpec) -> dict[str, Any]:
    """The kind ``Cluster`` config (pure): one control-plane node at the pinned image, which also runs pods."""
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": spec.name,
        "nodes": [{"role": "control-plane", "image": node_image(spec.kubernetes)}],
    }


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def create_command(kind: str, spec: KindSpec, config_path: Path, kubeconfig: Path) -> list[str]:
    return [kind, "create", "cluster", "--name", spec.name, "--config", str(config_path),
            "--kubeconfig", str(kubeconfig), "--wait", "300s"]


def export_kubeconfig_command(kind: str, spec: KindSpec, kubeconfig: Path) -> list[str]:
    return [kind, "export", "kubeconfig", "--name", spec.name, "--kubeconfig", str(kubeconfig)]


def delete_command(kind: str, spec: KindSpec, kubeconfig: Path) -> list[str]:
    return [kind, "delete", "cluster", "--name", spec.name, "--kubeconfig", str(kubeconfig)]


def load_image_command(kind: str, spec: KindSpec, image: str) -> list[str]:
    return [kind, "load", "docker-image", image, "--name", spec.name]


def inotify_hint(limits: dict[str, int]) -> str | None:
    """A sysctl line to raise inotify limits below kind's recommendation (pure); None when they suffice."""
    low = {k: v for k, v in INOTIFY_MIN.items() if limits.get(k, v) < v}
    if not low:
        return None
    settings = " ".join(f"fs.inotify.{k}={v}" for k, v in low.items())
    return f"inotify limits are below what kind needs for Istio's pods; raise them with `sudo sysctl {settings}`"


def read_inotify_limits(proc: Path = Path("/proc/sys/fs/inotify")) -> dict[str, int]:
    """This machine's inotify limits (empty where /proc does not have them, e.g. macOS: Docker's VM decides)."""
    out: dict[str, int] = {}
    for key in INOTIFY_MIN:
        try:
            out[key] = int((proc / key).read_text().strip())
        except (OSError, ValueError):
            continue
    return out


def run_token() -> str:
    """What one run shares across its processes: pytest-xdist's test-run id in every worker, else a new id."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


def parse_kind_version(output: str) -> tuple[int, ...] | None:
    """``kind v0.33.0 go1.24.2 linux/amd64`` -> (0, 33, 0) (pure); None when there is no version in it."""
    match = re.search(r"\bv(\d+)\.(\d+)\.(\d+)", output)
    return tuple(int(part) for part in match.groups()) if match else None


class KindCluster:
    """One kind cluster, shared by every process of a run (pytest-xdist workers): ``up()`` creates it once, under
    a file lock, or reuses it; ``close()`` deletes it when the last process of the run that created it lets go.

    ``created`` is set before ``kind create`` runs, so that a create cut short (Ctrl-C, a failure) is
    deleted by ``close()`` too (``kind delete`` is safe on a half-made cluster) and the next run does not
    meet a cluster without the harness's stamp."""

    def __init__(self, spec: KindSpec, *, kind: str, state_dir: Path, run: Runner, keep: bool = False,
                 token: str | None = None, observer: Observer = ignore) -> None:
        """``observer`` is told of the long steps (cluster create, image load) with their elapsed time."""
        self.spec = spec
        self._observer = observer
        self._kind = kind
        self._dir = state_dir / spec.name
        self._run = run
        self._keep = keep
        self._token = token or run_token()
        self._holder = f"{self._token} {os.getpid()} {id(self)}"
        self.created = False
        self._deleted = False
        self._lock_depth = 0

    @property
    def kubeconfig(self) -> Path:
        return self._dir / "kubeconfig"

    @property
    def context(self) -> str:
        return self.spec.context

    def up(self) -> None:
        """Reuse the cluster when it exists with the same config, else create it (once per run, under the lock)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        with self.exclusive():
            self._check_kind_version()
            self._hold()
            config = kind_config(self.spec)
            wanted = config_hash(config)
            existing = self._run([self._kind, "get", "clusters"], what="listing kind clusters",
                                 timeout_s=QUERY_TIMEOUT_S).split()
            if self.spec.name in existing:
                found = self._stamp.read_text().strip() if self._stamp.is_file() else None
                if found != wanted:
                    why = "was not made by mesh-harness" if found is None else "was made with another config"
                    raise MeshError(f"a kind cluster named {self.spec.name!r} exists but {why}; delete it with "
                                    f"`kind delete cluster --name {self.spec.name}` or pick another name")
                self.created = self._made_by.is_file() and self._made_by.read_text() == self._token
                self._run(export_kubeconfig_command(self._kind, self.spec, self.kubeconfig),
                          what=f"writing the kubeconfig of kind cluster {self.spec.name}", timeout_s=QUERY_TIMEOUT_S)
                return
            config_path = self._dir / "kind-config.json"  # JSON is YAML: kind reads it as is
            config_path.write_text(json.dumps(config, indent=1))
            self.created = True
            self._made_by.write_text(self._token)
            try:
                with step(self._observer, "cluster create", f"kind create cluster --name {self.spec.name}"):
                    self._run(create_command(self._kind, self.spec, config_path, self.kubeconfig),
                              what=f"creating kind cluster {self.spec.name}", timeout_s=CREATE_TIMEOUT_S)
            except ProcessError as exc:
                hint = inotify_hint(read_inotify_limits())
                raise ProcessError(f"{exc}\n{hint}" if hint else str(exc)) from exc
            self._stamp.write_text(wanted)

    def load_image(self, image: str) -> None:
        with step(self._observer, "image load", f"kind load docker-image {image}"):
            self._run(load_image_command(self._kind, self.spec, image),
                      what=f"loading image {image} into kind cluster {self.spec.name}", timeout_s=LOAD_TIMEOUT_S)

    def close(self) -> None:
        """Let go of the cluster; the last holder deletes it if this run created it and it is not kept. Idempotent."""
        if self._deleted:
            return
        self._deleted = True
        with self.exclusive():
            holders = [h for h in self._holders() if h != self._holder]
            self._write_holders(holders)
            if not self.created or self._keep or holders:
                return
            self._run(delete_command(self._kind, self.spec, self.kubeconfig),
                      what=f"deleting kind cluster {self.spec.name}", timeout_s=DELETE_TIMEOUT_S)
            for stale in (self._stamp, self._made_by, self.kubeconfig):
                stale.unlink(missing_ok=True)

    @property
    def _stamp(self) -> Path:
        return self._dir / "config-hash"

    @property
    def _made_by(self) -> Path:
        """The run that created the cluster (its ``run_token``)."""
        return self._dir / "created-by-run"

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the cluster's lock (re-entrant in this object): the session sets up Istio and the image under
        it, so that workers of one run never install or load at once."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        with (self._dir / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _hold(self) -> None:
        self._write_holders([*self._holders(), self._holder])

    def _holders(self) -> list[str]:
        """``<run token> <pid> <object>`` of every live holder (a crashed process's line is dropped)."""
        path = self._dir / "holders"
        lines = path.read_text().splitlines() if path.is_file() else []
        return [line for line in lines if len(line.split()) == 3 and process_exists(int(line.split()[1]))]

    def _write_holders(self, holders: list[str]) -> None:
        (self._dir / "holders").write_text("".join(f"{h}\n" for h in holders))

    def _check_kind_version(self) -> None:
        output = self._run([self._kind, "version"], what="asking kind its version", timeout_s=QUERY_TIMEOUT_S)
        found = parse_kind_version(output)
        if found is None or found < parse_kind_version(KIND_VERSION):  # type: ignore[operator]
            raise MeshError(f"kind {KIND_VERSION} or newer is needed (its node images are pinned; older kind may "
                            f"not start them), and `{self._kind} version` says {output.strip()!r}; install a newer kind")
