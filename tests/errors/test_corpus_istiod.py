"""The bad-input corpus against real istiod: where the harness refuses a file, what does istiod do with it?

For every corpus file the harness's own verdict is staged: ``schema`` (YAML, case or Istio-object schema:
``load_case_file`` refuses it, no object is ever built, so no control plane sees it; istiod's CRD schema
in a cluster would refuse most of the Istio ones too, but the API server is not run here), ``semantic``
(the objects load but ``validate_objects`` refuses them), ``local`` (only the local mesh's up-front
refusals for the istiod plane, ``case_refusals``) or ``none``. Every file whose objects load is then
applied, as the objects ``load_case_file`` built (``mesh.apply`` does not run the harness's validator),
to one shared ``LocalMesh(control_plane="istiod")`` with the case's topology, and what happens is recorded:

- ``refused``: istiod's own validation refused the object (``ValidationError``, nothing applied);
- ``nack``: istiod translated it and an Envoy rejected the result (``ConfigRejected``);
- ``accepted``: every proxy ACKed it (then reverted to no config);
- ``timeout``: istiod did not refuse and no Envoy NACKed, but the local mesh's readiness never held
  within the sync timeout (``SyncTimeout``; then reverted);
- ``not-reached``: the harness refused the file before any object existed.

``corpus_istiod.yaml`` pins, per file, ``harness``, ``istiod`` and ``istiod_reason`` (a substring of
istiod's reason: what follows ``configuration is invalid:``, with the detail lines of a multi-error
message; or Envoy's NACK; or the timeout's first line). Files where the two disagree (the harness
refuses what istiod takes, or the reverse) carry a ``note`` saying why. Any change of outcome fails the test; after a
deliberate change, regenerate the table with ``MESH_HARNESS_UPDATE_CORPUS_ISTIOD=1`` (notes are kept).

Needs the istiod build ``mesh-harness istiod build`` caches (skipped without it, an error in CI:
tests/istiod.py); the ``schema`` files are checked without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.case import Case, load_case_file
from harness.errors import CaseError, ConfigRejected, SyncTimeout, ValidationError
from harness.istio.validate import validate_objects
from harness.mesh.capabilities import case_refusals
from harness.mesh.local.mesh import LocalMesh
from harness.topology import DEFAULT_TOPOLOGY
from tests.errors.corpus_expected import CORPUS, corpus_files
from tests.istiod import istiod_build

pytestmark = pytest.mark.envoy

TABLE = Path(__file__).parent / "corpus_istiod.yaml"
UPDATE_ENV = "MESH_HARNESS_UPDATE_CORPUS_ISTIOD"
INPUTS = corpus_files(CORPUS)
HARNESS_STAGES = ("schema", "semantic", "local", "none")
ISTIOD_OUTCOMES = ("refused", "nack", "accepted", "timeout", "not-reached")
TABLE_HEADER = """\
# The bad-input corpus (tests/errors/corpus/) against real istiod: tests/errors/test_corpus_istiod.py.
# harness: the first stage that refuses the file: schema (YAML, case or Istio-object schema: no object is built,
#   so istiod never sees it; the CRD schema of a cluster would refuse most Istio ones too, not checked here),
#   semantic (harness/istio/validate.py), local (the local mesh's up-front refusals for the istiod plane), none.
# istiod: what LocalMesh(control_plane="istiod").apply does with the file's objects: refused (istiod's own
#   validation), nack (an Envoy rejected istiod's translation), accepted, timeout (no refusal, no NACK, but the
#   local mesh's readiness never held), not-reached (the harness refused it before any object existed).
# istiod_reason: a substring of istiod's reason (or Envoy's NACK, or the timeout's first line).
# note: why the two planes differ (one refuses what the other takes); required on exactly those files.
# Regenerate after a deliberate change: MESH_HARNESS_UPDATE_CORPUS_ISTIOD=1 pytest tests/errors/test_corpus_istiod.py
"""


@dataclass(frozen=True)
class Outcome:
    harness: str
    istiod: str
    istiod_reason: str = ""

    @property
    def differs(self) -> bool:
        """The harness refuses what istiod takes, or the reverse."""
        harness_refuses = self.harness != "none"
        istiod_refuses = self.istiod in ("refused", "nack")
        return self.istiod != "not-reached" and harness_refuses != istiod_refuses


# --- the harness's side ----------------------------------------------------------------------------


def load(name: str) -> list[Case] | None:
    """The file's cases, or None when the YAML, case or Istio-object schema refuses it (no objects)."""
    try:
        return load_case_file(CORPUS / name)
    except CaseError:
        return None


def harness_stage(cases: Sequence[Case] | None) -> str:
    if cases is None:
        return "schema"
    if any(validate_objects(case.objects).errors for case in cases):
        return "semantic"
    if any(case_refusals(case, "local-istiod") for case in cases):
        return "local"
    return "none"


# --- istiod's side -----------------------------------------------------------------------------------

_REFUSED = re.compile(r"istiod refused (?:it|the config): ?(?:configuration is invalid: )?(?P<reason>.*?)(?:; nothing was applied)?$")


def refusal_reason(exc: ValidationError) -> str:
    """istiod's reason as the refusal reports it (every error of a multi-error message included)."""
    reasons = []
    for issue in exc.issues:
        found = _REFUSED.search(issue.message)
        reasons.append(found.group("reason") if found else issue.message)
    return "; ".join(reasons)


def timeout_reason(exc: SyncTimeout) -> str:
    """The first line without what varies (the version number, the timeout's length)."""
    first = str(exc).splitlines()[0]
    return re.sub(r"config version \d+ not in force after [\d.]+s ", "config not in force ", first)


def apply_once(mesh: LocalMesh, case: Case, empty: Any) -> tuple[str, str]:
    """What istiod does with ``case``'s objects; the mesh is left with no config either way."""
    try:
        mesh.apply(case.objects)
    except ValidationError as exc:  # istiod's own validation: the plane restored the previous config
        return "refused", refusal_reason(exc)
    except ConfigRejected as exc:  # restored too
        return "nack", f"{exc.type_name}: {exc.detail}"
    except SyncTimeout as exc:
        mesh.revert(empty)
        return "timeout", timeout_reason(exc)
    mesh.revert(empty)
    return "accepted", ""


def observe(mesh: LocalMesh, cases: Sequence[Case], empty: Any) -> tuple[str, str]:
    """The first non-accepted outcome over the file's cases (each with its own topology)."""
    for case in cases:
        if mesh.topology != case.topology:
            mesh.deploy(case.topology)
        outcome = apply_once(mesh, case, empty)
        if outcome[0] != "accepted":
            return outcome
    return "accepted", ""


# --- the table -------------------------------------------------------------------------------------


def read_table() -> dict[str, dict[str, str]]:
    return yaml.safe_load(TABLE.read_text(encoding="utf-8")) or {}


TABLE_ENTRIES = read_table() if TABLE.is_file() else {}


def pinned(name: str) -> Outcome:
    entry = TABLE_ENTRIES[name]
    return Outcome(entry["harness"], entry["istiod"], entry.get("istiod_reason", ""))


@pytest.fixture(scope="module")
def istiod_outcomes() -> Iterator[dict[str, Outcome]]:
    """One istiod mesh for the module: every file whose objects load, applied and reverted in turn."""
    istiod_build()
    out: dict[str, Outcome] = {}
    with LocalMesh(control_plane="istiod") as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        empty = mesh.apply([])
        for name in INPUTS:
            cases = load(name)
            if cases is None:
                out[name] = Outcome("schema", "not-reached")
                continue
            istiod, reason = observe(mesh, cases, empty)
            out[name] = Outcome(harness_stage(cases), istiod, reason)
    if os.environ.get(UPDATE_ENV):
        write_table(out)
    yield out


def write_table(outcomes: dict[str, Outcome]) -> None:
    old = read_table() if TABLE.is_file() else {}
    doc: dict[str, dict[str, str]] = {}
    for name, o in sorted(outcomes.items()):
        entry = {"harness": o.harness, "istiod": o.istiod}
        if o.istiod_reason:
            entry["istiod_reason"] = o.istiod_reason
        if o.differs:
            entry["note"] = old.get(name, {}).get("note", "TODO: say why the planes differ")
        doc[name] = entry
    TABLE.write_text(TABLE_HEADER + yaml.safe_dump(doc, sort_keys=False, width=200, allow_unicode=True), encoding="utf-8")


# --- tests -----------------------------------------------------------------------------------------


def test_table_has_one_well_formed_entry_per_corpus_file() -> None:
    assert sorted(TABLE_ENTRIES) == INPUTS, "add or remove entries in corpus_istiod.yaml (see its header)"
    for name, entry in TABLE_ENTRIES.items():
        assert set(entry) <= {"harness", "istiod", "istiod_reason", "note"}, name
        assert entry["harness"] in HARNESS_STAGES and entry["istiod"] in ISTIOD_OUTCOMES, name
        assert (entry["istiod"] == "not-reached") == (entry["harness"] == "schema"), name
        note = entry.get("note", "")
        assert bool(note) == pinned(name).differs and not note.startswith("TODO"), (
            f"{name}: a file where the planes differ needs a note saying why, and only such a file")


@pytest.mark.parametrize("name", INPUTS)
def test_corpus_file_outcome_on_istiod_is_as_pinned(name: str, request: pytest.FixtureRequest) -> None:
    if os.environ.get(UPDATE_ENV):
        request.getfixturevalue("istiod_outcomes")
        pytest.skip(f"{UPDATE_ENV} is set: corpus_istiod.yaml was rewritten from what istiod did")
    expected = pinned(name)
    stage = harness_stage(load(name))
    if stage == "schema":  # no objects: nothing to apply, no istiod needed
        assert Outcome(stage, "not-reached") == expected
        return
    observed: Outcome = request.getfixturevalue("istiod_outcomes")[name]
    assert (observed.harness, observed.istiod) == (expected.harness, expected.istiod), observed
    assert expected.istiod_reason in observed.istiod_reason, observed
