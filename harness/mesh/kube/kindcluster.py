"""A kind cluster the harness owns: config, create or reuse, image loading, delete.

The kubeconfig is a file the harness owns (``<state dir>/<name>/kubeconfig``, passed to kind with
``--kubeconfig``), so the user's ``~/.kube/config`` and current context are never read or changed.
A cluster is reused when one of that name exists and the config the harness stored when it made
it hashes the same; one of that name made by someone else, or with another config, is an error
that says what to do, never silently taken over or deleted. ``delete`` removes only a cluster this
object created (``--keep-cluster`` keeps even that).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import MeshError, ProcessError
from harness.mesh.kube.commands import Runner
from harness.mesh.kube.versions import DEFAULT_KUBERNETES, node_image
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


class KindCluster:
    """One kind cluster. ``up()`` creates or reuses it; ``close()`` deletes it if ``up()`` created it."""

    def __init__(self, spec: KindSpec, *, kind: str, state_dir: Path, run: Runner, keep: bool = False,
                 observer: Observer = ignore) -> None:
        """``observer`` is told of the long steps (cluster create, image load) with their elapsed time."""
        self.spec = spec
        self._observer = observer
        self._kind = kind
        self._dir = state_dir / spec.name
        self._run = run
        self._keep = keep
        self.created = False
        self._deleted = False

    @property
    def kubeconfig(self) -> Path:
        return self._dir / "kubeconfig"

    @property
    def context(self) -> str:
        return self.spec.context

    def up(self) -> None:
        """Reuse the cluster when it exists with the same config, else create it."""
        config = kind_config(self.spec)
        wanted = config_hash(config)
        stamp = self._dir / "config-hash"
        existing = self._run([self._kind, "get", "clusters"], what="listing kind clusters",
                             timeout_s=QUERY_TIMEOUT_S).split()
        if self.spec.name in existing:
            found = stamp.read_text().strip() if stamp.is_file() else None
            if found != wanted:
                why = "was not made by mesh-harness" if found is None else "was made with another config"
                raise MeshError(f"a kind cluster named {self.spec.name!r} exists but {why}; delete it with "
                                f"`kind delete cluster --name {self.spec.name}` or pick another name")
            self._dir.mkdir(parents=True, exist_ok=True)
            self._run(export_kubeconfig_command(self._kind, self.spec, self.kubeconfig),
                      what=f"writing the kubeconfig of kind cluster {self.spec.name}", timeout_s=QUERY_TIMEOUT_S)
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        config_path = self._dir / "kind-config.json"  # JSON is YAML: kind reads it as is
        config_path.write_text(json.dumps(config, indent=1))
        try:
            with step(self._observer, "cluster create", f"kind create cluster --name {self.spec.name}"):
                self._run(create_command(self._kind, self.spec, config_path, self.kubeconfig),
                          what=f"creating kind cluster {self.spec.name}", timeout_s=CREATE_TIMEOUT_S)
        except ProcessError as exc:
            hint = inotify_hint(read_inotify_limits())
            raise ProcessError(f"{exc}\n{hint}" if hint else str(exc)) from exc
        self.created = True
        stamp.write_text(wanted)

    def load_image(self, image: str) -> None:
        with step(self._observer, "image load", f"kind load docker-image {image}"):
            self._run(load_image_command(self._kind, self.spec, image),
                      what=f"loading image {image} into kind cluster {self.spec.name}", timeout_s=LOAD_TIMEOUT_S)

    def close(self) -> None:
        """Delete the cluster if this object created it and it is not kept. Idempotent."""
        if not self.created or self._keep or self._deleted:
            return
        self._deleted = True
        self._run(delete_command(self._kind, self.spec, self.kubeconfig),
                  what=f"deleting kind cluster {self.spec.name}", timeout_s=DELETE_TIMEOUT_S)
        (self._dir / "config-hash").unlink(missing_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
