"""How the istiod plane writes istiod's config folder: no entry istiod may have listed ever vanishes.

istiod re-reads the whole folder with ``filepath.Walk`` on every change and gives up the reload (keeping
its old config until the next change) when an entry it listed is gone by the time it looks at it. In the
soak of 2026-12-07 the plane's own temp file, renamed mid-walk, did that (``lstat .../.sync.yaml.tmp: no
such file or directory``), and the harness reported the failed reload as istiod refusing the case. These
tests replay a sync, then a sync with one object fewer, while recording the folder after every file
operation: the folder's entries only ever grow, no temp file is made in it, and a gone object's file is
emptied (istiod skips empty files) rather than removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.mesh.local.istiod import plane
from harness.mesh.local.istiod.plane import SYNC_FILE, IstiodPlane

VS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\n"
DR = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: default}\n"


def rendered(version: int, **files: str) -> plane._Rendered:
    return plane._Rendered({**files, SYNC_FILE: f"# sentinels v{version}\n"}, {}, version, {})


@pytest.fixture
def folder_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The config folder's entries after each rename into it (and at the start)."""
    config = tmp_path / "istiod" / "config"
    config.mkdir(parents=True)
    history = [set(os.listdir(config))]
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        assert Path(src).parent != config, f"a temp file was made inside the watched folder: {src}"
        real_replace(src, dst)
        history.append(set(os.listdir(config)))

    monkeypatch.setattr(plane.os, "replace", replace)
    return history


def write(tmp_path: Path, files: plane._Rendered) -> None:
    IstiodPlane._write(SimpleNamespace(_config_dir=tmp_path / "istiod" / "config"), files)  # type: ignore[arg-type]


def test_no_entry_of_the_watched_folder_ever_vanishes(tmp_path: Path, folder_history: list[set[str]]) -> None:
    write(tmp_path, rendered(1, **{"case.vs.yaml": VS, "case.dr.yaml": DR}))
    write(tmp_path, rendered(2, **{"case.dr.yaml": DR}))
    write(tmp_path, rendered(3))
    assert all(before <= after for before, after in zip(folder_history, folder_history[1:], strict=False))
    assert folder_history[-1] == {"case.vs.yaml", "case.dr.yaml", SYNC_FILE}


def test_a_gone_objects_file_is_emptied_and_the_sentinels_come_last(tmp_path: Path,
                                                                   folder_history: list[set[str]]) -> None:
    config = tmp_path / "istiod" / "config"
    write(tmp_path, rendered(1, **{"case.vs.yaml": VS, "case.dr.yaml": DR}))
    renames_before = len(folder_history)
    write(tmp_path, rendered(2, **{"case.dr.yaml": DR}))
    assert (config / "case.vs.yaml").read_text() == "" and (config / "case.dr.yaml").read_text() == DR
    assert (config / SYNC_FILE).read_text() == "# sentinels v2\n"
    assert len(folder_history) - renames_before == 2  # the emptied file, then the sentinels; DR unchanged
    write(tmp_path, rendered(3, **{"case.dr.yaml": DR}))
    assert len(folder_history) - renames_before == 3  # an emptied file is not emptied again
    assert not list((tmp_path / "istiod").glob(".*.tmp"))
