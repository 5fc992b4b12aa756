"""This checkout against an older one, interleaved: mesh start + deploy and the cold suite, before and after a change.

The figures of ``run_all.py`` each stand next to a baseline of the same run, but a change's own
effect needs the old code measured beside the new on the same machine at the same time: the load
from other work moves absolute times by more than many changes do. Each of ``--pairs`` rounds runs
the old tree, then the new one (the order flips every round), so drifting load falls on both:

* ``bench/local_mesh.py --starts N`` of each tree: the median of its mesh start + deploy;
* ``mesh-harness run cases/ --json`` of each tree, cold: wall time and its parts from the result
  document (inside checks, apply + revert with deploys; the rest: policy waits, CLI start, loading, reports).

Both trees' packages are compiled to bytecode first (``compileall``, as ``pip install`` does), so that
neither pays for compiling its modules at every import on a machine that sets PYTHONDONTWRITEBYTECODE.
The old tree is any checkout with its own venv where the package is installed (``pip install -e .``
in ``OLD/.venv``), e.g. ``git worktree add /tmp/old REV``. The table shows medians over rounds and
the median of the per-round ratios new / old. Nothing is asserted.

Run from the repository root:  python bench/before_after.py --old-tree DIR [--pairs 3] [--starts 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.local_mesh import compile_checkout  # noqa: E402

TIMEOUT_S = 900.0
PARTS = ("wall", "checks", "apply + revert", "rest")


def git_commit(tree: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, check=True, capture_output=True,
                          text=True).stdout.strip()


def mesh_start_ms(tree: Path, starts: int) -> float:
    out = subprocess.run([str(tree / ".venv/bin/python"), "bench/local_mesh.py", "--starts", str(starts), "--applies",
                          "1", "--count", "200"], cwd=tree, check=True, capture_output=True, text=True,
                         timeout=TIMEOUT_S).stdout
    found = re.search(r"^start \+ deploy default topology\s+([\d.]+)", out, re.MULTILINE)
    if found is None:
        raise SystemExit(f"{tree}: no mesh start figure in bench/local_mesh.py's output:\n{out}")
    return float(found.group(1))


def suite_parts(tree: Path) -> dict[str, float]:
    """One cold ``mesh-harness run cases/`` of ``tree``: wall seconds and its parts from the result document."""
    with tempfile.TemporaryDirectory(prefix="before-after-") as tmp:
        path = Path(tmp) / "suite.json"
        began = time.perf_counter()
        done = subprocess.run([str(tree / ".venv/bin/mesh-harness"), "run", "cases/", "--json", str(path)], cwd=tree,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        wall = time.perf_counter() - began
        if done.returncode != 0 or not path.exists():
            raise SystemExit(f"{tree}: mesh-harness run cases/ failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        document: dict[str, Any] = json.loads(path.read_text())
    checks = sum(c["seconds"] for c in document["checks"])
    first_of_case = {c["case"]: c for c in reversed(document["checks"])}.values()
    setup = sum((c.get("case_apply_s") or 0.0) + (c.get("case_revert_s") or 0.0) for c in first_of_case)
    return {"wall": wall, "checks": checks, "apply + revert": setup, "rest": wall - checks - setup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-tree", type=Path, required=True, help="checkout of the old code with DIR/.venv installed")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--out", type=Path, help="write the rounds and medians as JSON here")
    args = parser.parse_args()
    trees = {"old": args.old_tree.resolve(), "new": ROOT}
    for tree in trees.values():
        compile_checkout(tree, str(tree / ".venv" / "bin" / "python"))
    rounds: list[dict[str, dict[str, float]]] = []
    for index in range(args.pairs):
        order = ("old", "new") if index % 2 == 0 else ("new", "old")
        measured: dict[str, dict[str, float]] = {}
        for name in order:
            measured[name] = {"mesh start ms": mesh_start_ms(trees[name], args.starts),
                              **suite_parts(trees[name])}
        rounds.append(measured)
        print(f"round {index + 1}/{args.pairs}: " + ", ".join(
            f"{n} start {m['mesh start ms']:.0f} ms suite {m['wall']:.1f} s" for n, m in measured.items()),
            file=sys.stderr, flush=True)
    figures = ("mesh start ms", *PARTS)
    medians = {name: {f: statistics.median(r[name][f] for r in rounds) for f in figures} for name in trees}
    ratios = {f: statistics.median(r["new"][f] / r["old"][f] for r in rounds if r["old"][f] > 0) for f in figures}
    commits = {name: git_commit(tree) for name, tree in trees.items()}
    print(f"old = {commits['old']}, new = {commits['new']}; {args.pairs} interleaved rounds; medians, and the median "
          "of the per-round ratios new / old")
    print(f"{'':<22} {'old':>10} {'new':>10} {'new / old':>10}")
    for f in figures:
        unit = "ms" if f == "mesh start ms" else "s"
        name = f.removesuffix(" ms") if unit == "ms" else f"suite: {f}"
        print(f"{name + ' (' + unit + ')':<22} {medians['old'][f]:>10.2f} {medians['new'][f]:>10.2f} {ratios[f]:>10.2f}")
    if args.out:
        args.out.write_text(json.dumps({"commits": commits, "rounds": rounds, "medians": medians, "ratios": ratios},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
