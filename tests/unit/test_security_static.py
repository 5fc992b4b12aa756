"""Security rules of issue 8, checked on the source (AST) of every module we ship or run: harness/,
sample_apps/, fixtures/ and bench/.

Why static: a shell string, an unsafe YAML loader or an ``eval`` is a property of the code, not of
one run, so the whole tree is read rather than the paths a test happens to reach. Each rule is a
small function from a parsed module to findings (``file:line: what``) and has its own test over
the tree; ``test_rule_catches_its_violation`` feeds every rule a snippet that breaks it, so no rule
is a check that cannot fail, and ``test_rules_leave_safe_code_alone`` pins what must stay allowed.

Names are resolved through the module's imports (``import subprocess as sp``, ``from os import
system``), and an argv held in a variable is judged by the assignments to it in the enclosing
function. What cannot be known statically (an argv passed in as a parameter) is not flagged: the
rule catches strings *built* for a subprocess, which is where shell injection starts.

The behaviour test at the end loads a case file and an Istio config file carrying
``!!python/object/apply:os.system`` and checks the loader refuses the tag with file:line and the
command never runs.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import yamlsource
from harness.case import load_case_file
from harness.errors import CaseSyntaxError
from harness.istio.load import load_manifest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("harness", "sample_apps", "fixtures", "bench")  # the last three install as harness.* or stay local

Finding = tuple[int, str]
Rule = Callable[["Source"], list[Finding]]

SUBPROCESS_ARGV = {  # callee -> index of its argv among the positional arguments
    **{f"subprocess.{f}": 0 for f in ("run", "Popen", "call", "check_call", "check_output")},
    "os.posix_spawn": 1, "os.posix_spawnp": 1,
    **{f"os.exec{s}": 1 for s in ("v", "ve", "vp", "vpe")},
    **{f"os.spawn{s}": 2 for s in ("v", "ve", "vp", "vpe")},
}
SHELL_FUNCTIONS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                   "asyncio.create_subprocess_shell", "platform.popen"}
SHELL_METHODS = {"subprocess_shell"}  # loop.subprocess_shell(...)
UNSAFE_YAML = {f"yaml.{n}" for n in ("Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader",
                                     "unsafe_load", "unsafe_load_all", "full_load", "full_load_all")}
SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}
UNPICKLERS = {f"{m}.{f}" for m in ("pickle", "_pickle", "cPickle", "marshal", "dill", "cloudpickle")
              for f in ("load", "loads", "Unpickler")} | {"shelve.open", "pandas.read_pickle"}
EVALS = {"eval", "exec", "builtins.eval", "builtins.exec"}


# --- name resolution ------------------------------------------------------------------------------


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted name it stands for, from every import in the module (also inside functions)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def qualified(expr: ast.expr, aliases: dict[str, str]) -> str | None:
    """``sp.run`` -> ``subprocess.run`` after ``import subprocess as sp``; None for what is not a dotted name."""
    if isinstance(expr, ast.Name):
        return aliases.get(expr.id, expr.id)
    if isinstance(expr, ast.Attribute):
        base = qualified(expr.value, aliases)
        return f"{base}.{expr.attr}" if base else None
    return None


@dataclass(frozen=True)
class Source:
    """One parsed module with what every rule reads: its calls and the dotted names it uses, resolved once."""

    tree: ast.Module
    aliases: dict[str, str]
    calls: list[tuple[ast.Call, str | None]]
    references: list[tuple[int, str]]


def analyse(tree: ast.Module) -> Source:
    aliases = import_aliases(tree)
    found_calls: list[tuple[ast.Call, str | None]] = []
    refs: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found_calls.append((node, qualified(node.func, aliases)))
        if isinstance(node, ast.Name | ast.Attribute) and (name := qualified(node, aliases)):
            refs.append((node.lineno, name))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            refs += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            refs += [(node.lineno, a.name) for a in node.names]
    return Source(tree, aliases, found_calls, refs)


# --- the rules ----------------------------------------------------------------------------------


def rule_no_shell_true(src: Source) -> list[Finding]:
    """No call passes ``shell=`` anything but a literal False."""
    return [(call.lineno, f"{callee or 'a call'} with shell={ast.unparse(kw.value)}")
            for call, callee in src.calls
            for kw in call.keywords if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)]


def rule_no_shell_functions(src: Source) -> list[Finding]:
    """No function that hands a command string to a shell: os.system, os.popen, commands.*, getoutput, ..."""
    found = [(line, f"{name} runs a command string through a shell") for line, name in src.references
             if name in SHELL_FUNCTIONS or name == "commands" or name.startswith("commands.")]
    found += [(call.lineno, f".{call.func.attr}() runs a command string through a shell")
              for call, _ in src.calls if isinstance(call.func, ast.Attribute) and call.func.attr in SHELL_METHODS]
    return sorted(set(found))


def builds_a_string(expr: ast.expr) -> bool:
    """Is ``expr`` a string (literal, f-string, concatenation, %, .format, .join, str(...))?"""
    if isinstance(expr, ast.JoinedStr) or (isinstance(expr, ast.Constant) and isinstance(expr.value, str)):
        return True
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add | ast.Mod):
        return builds_a_string(expr.left) or (isinstance(expr.op, ast.Add) and builds_a_string(expr.right))
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Name):
            return func.id == "str"
        if isinstance(func, ast.Attribute):
            return func.attr == "format" or (func.attr == "join" and builds_a_string(func.value))
    return False


def _assigned(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """Name -> every value assigned to it in ``scope`` (nested functions included: a wider net)."""
    out: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name) and node.value:
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _enclosing_scopes(tree: ast.Module, wanted: list[ast.Call]) -> dict[int, ast.AST]:
    """id(call) -> the innermost function around it (the module when none); ``ast.walk`` meets outer ones first."""
    ids = {id(c) for c in wanted}
    scope: dict[int, ast.AST] = dict.fromkeys(ids, tree)
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            scope.update((id(n), fn) for n in ast.walk(fn) if id(n) in ids)
    return scope


def _argv(call: ast.Call, index: int) -> ast.expr | None:
    if len(call.args) > index and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    return next((kw.value for kw in call.keywords if kw.arg in ("args", "argv")), None)


def rule_argv_is_a_list(src: Source) -> list[Finding]:
    """Every subprocess gets its argv as a list: never a string built by f-string, +, %, format, join or str()."""
    spawns = [(call, callee) for call, callee in src.calls if callee in SUBPROCESS_ARGV]
    if not spawns:
        return []
    scopes = _enclosing_scopes(src.tree, [call for call, _ in spawns])
    assigned: dict[int, dict[str, list[ast.expr]]] = {}  # id(scope) -> its assignments, read once
    found: set[Finding] = set()
    for call, callee in spawns:
        argv = _argv(call, SUBPROCESS_ARGV[callee])
        if argv is None:
            continue
        if isinstance(argv, ast.Call) and qualified(argv.func, src.aliases) == "shlex.split":
            found.add((call.lineno, f"{callee} argv parsed from a string (shlex.split)"))
        values = [argv]
        if isinstance(argv, ast.Name):
            scope = scopes[id(call)]
            if id(scope) not in assigned:
                assigned[id(scope)] = _assigned(scope)
            values = assigned[id(scope)].get(argv.id, [])
        if any(builds_a_string(v) for v in values):
            found.add((call.lineno, f"{callee} argv is a string ({ast.unparse(argv)}); pass a list of arguments"))
    return sorted(found)


def rule_yaml_loaded_safely(src: Source) -> list[Finding]:
    """YAML only through safe loaders: no yaml.load without SafeLoader, no Loader/FullLoader/UnsafeLoader/unsafe_load."""
    found = {(line, f"{name} can build Python objects from YAML") for line, name in src.references if name in UNSAFE_YAML}
    for call, callee in src.calls:
        if callee in ("yaml.load", "yaml.load_all"):
            loader = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "Loader"), None)
            if loader is None or qualified(loader, src.aliases) not in SAFE_YAML_LOADERS:
                found.add((call.lineno, f"{callee} without Loader=yaml.SafeLoader"))
    return sorted(found)


def rule_no_unpickling(src: Source) -> list[Finding]:
    """No pickle/marshal/shelve loads: data from a file or socket must never become code."""
    found = [(call.lineno, f"{callee} loads pickled data") for call, callee in src.calls if callee in UNPICKLERS]
    found += [(call.lineno, "allow_pickle=True") for call, _ in src.calls
              for kw in call.keywords if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)]
    return sorted(set(found))


def rule_no_eval_exec(src: Source) -> list[Finding]:
    """No eval/exec of any text."""
    return sorted({(call.lineno, f"{callee}() runs text as code") for call, callee in src.calls if callee in EVALS})


RULES: dict[str, Rule] = {
    "shell=True": rule_no_shell_true,
    "shell functions": rule_no_shell_functions,
    "argv is a list": rule_argv_is_a_list,
    "YAML loaded safely": rule_yaml_loaded_safely,
    "no unpickling": rule_no_unpickling,
    "no eval/exec": rule_no_eval_exec,
}


# --- the tree -----------------------------------------------------------------------------------


@functools.cache
def parsed_modules() -> tuple[tuple[str, Source], ...]:
    """Every module under ``SCANNED``, parsed and analysed once per test session."""
    files = sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py"))
    return tuple((str(p.relative_to(ROOT)), analyse(ast.parse(p.read_text(encoding="utf-8"), str(p)))) for p in files)


def violations(rule: Rule) -> list[str]:
    return [f"{name}:{line}: {what}" for name, src in parsed_modules() for line, what in rule(src)]


def test_scan_covers_harness_and_bench() -> None:
    """The rules see the tree's real spawns and YAML reads (import resolution works), so a pass means something."""
    names = [name for name, _ in parsed_modules()]
    assert {"harness/mesh/kube/commands.py", "bench/run_all.py", "sample_apps/echo/zygote.py",
            "fixtures/__init__.py"} <= set(names) and len(names) > 100
    callees = {callee for _, src in parsed_modules() for _, callee in src.calls}
    assert {"subprocess.run", "subprocess.Popen", "os.posix_spawn", "yaml.compose_all", "yaml.safe_load_all"} <= callees


RULE_ADVICE = [
    pytest.param(rule_no_shell_true, "shell=True runs a command string through /bin/sh; pass an argv list", id="no-shell-true"),
    pytest.param(rule_no_shell_functions, "use subprocess with an argv list instead", id="no-os-system-popen-getoutput"),
    pytest.param(rule_argv_is_a_list, "build argv as a list of separate arguments, never as one string",
                 id="argv-is-a-list"),
    pytest.param(rule_yaml_loaded_safely, "use yaml.safe_load / Loader=yaml.SafeLoader", id="safe-yaml"),
    pytest.param(rule_no_unpickling, "read data as JSON or YAML (safe), never unpickle it", id="no-unpickling"),
    pytest.param(rule_no_eval_exec, "never run text as code", id="no-eval-exec"),
]


@pytest.mark.parametrize(("rule", "advice"), RULE_ADVICE)
def test_rule_holds_over_harness_and_bench(rule: Rule, advice: str) -> None:
    found = violations(rule)
    assert not found, f"{advice}:\n" + "\n".join(found)


# --- each rule can fail, and leaves safe code alone --------------------------------------------

VIOLATIONS = [
    ("shell=True", "import subprocess\nsubprocess.run(['ls'], shell=True)\n"),
    ("shell=True", "from subprocess import Popen\nflag = True\nPopen(['ls'], shell=flag)\n"),
    ("shell functions", "import os\nos.system('touch x')\n"),
    ("shell functions", "from os import popen\npopen('ls').read()\n"),
    ("shell functions", "import subprocess as sp\nsp.getoutput('ls')\n"),
    ("shell functions", "import commands\ncommands.getstatusoutput('ls')\n"),
    ("shell functions", "import asyncio\nasync def f():\n    await asyncio.create_subprocess_shell('ls')\n"),
    ("shell functions", "async def f(loop):\n    await loop.subprocess_shell(object, 'ls')\n"),
    ("argv is a list", "import subprocess\nsubprocess.run(f'kubectl get pod {name}')\n"),
    ("argv is a list", "import subprocess\ndef f(d):\n    cmd = 'ls ' + d\n    subprocess.Popen(cmd)\n"),
    ("argv is a list", "import subprocess\ndef f(x):\n    cmd = ' '.join(['kind', x])\n    return subprocess.check_output(cmd)\n"),
    ("argv is a list", "import subprocess\nsubprocess.run(args='kind %s' % name)\n"),
    ("argv is a list", "import subprocess, shlex\nsubprocess.run(shlex.split(f'kind {x}'))\n"),
    ("argv is a list", "import os\nos.posix_spawn('/bin/sh', str(cmd), {})\n"),
    ("YAML loaded safely", "import yaml\nyaml.load(text)\n"),
    ("YAML loaded safely", "import yaml\nyaml.load(text, Loader=yaml.Loader)\n"),
    ("YAML loaded safely", "import yaml\nyaml.load_all(text, yaml.UnsafeLoader)\n"),
    ("YAML loaded safely", "from yaml import FullLoader\n"),
    ("YAML loaded safely", "import yaml\nyaml.unsafe_load(text)\n"),
    ("no unpickling", "import pickle\npickle.loads(sock.recv(4096))\n"),
    ("no unpickling", "import marshal\nwith open(p, 'rb') as f:\n    marshal.load(f)\n"),
    ("no unpickling", "from pickle import Unpickler\nUnpickler(f).load()\n"),
    ("no unpickling", "import numpy\nnumpy.load(p, allow_pickle=True)\n"),
    ("no eval/exec", "eval(text)\n"),
    ("no eval/exec", "exec(code, {})\n"),
    ("no eval/exec", "import builtins\nbuiltins.eval(text)\n"),
]

SAFE = """
import subprocess, sys, os, yaml, json
subprocess.run(["wrk", f"-c{n}", "-H", f"Host: {host}"], shell=False, check=True)
def spawn(options):
    argv = [sys.executable, "-m", "x"]
    argv += ["--name", options.name]
    return os.posix_spawn(sys.executable, argv, dict(os.environ))
def run(command):
    return subprocess.Popen(list(command))
yaml.safe_load(text)
yaml.load(text, Loader=yaml.SafeLoader)
yaml.compose_all(text, Loader=yaml.SafeLoader)
json.loads(text)
cursor.execute("select 1")
"""


@pytest.mark.parametrize(("rule", "source"), VIOLATIONS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(VIOLATIONS)])
def test_rule_catches_its_violation(rule: str, source: str) -> None:
    found = RULES[rule](analyse(ast.parse(source)))
    assert found, f"rule {rule!r} missed:\n{source}"
    assert all(line >= 1 for line, _ in found)


def test_every_rule_has_a_violation_snippet() -> None:
    assert {rule for rule, _ in VIOLATIONS} == set(RULES)


@pytest.mark.parametrize("rule", list(RULES))
def test_rules_leave_safe_code_alone(rule: str) -> None:
    assert RULES[rule](analyse(ast.parse(SAFE))) == []


# --- behaviour: a Python tag in YAML is refused, and nothing runs ------------------------------

TAGGED_CASE = """\
name: tagged
services: {{reviews: {{versions: [v1, v2]}}}}
config:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {{name: reviews}}
    spec:
      hosts: [reviews]
      http:
        - route: !!python/object/apply:os.system ["touch {marker}"]
checks:
  - name: anything
    send: {{url: "http://reviews:9080/"}}
    expect: {{status: 200}}
"""

TAGGED_CONFIG = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: !!python/object/apply:os.system ["touch {marker}"]
"""


@pytest.mark.parametrize(("template", "load", "line"), [(TAGGED_CASE, load_case_file, 10), (TAGGED_CONFIG, load_manifest, 5)],
                         ids=["case file", "istio config file"])
def test_python_yaml_tag_is_refused_and_never_runs(tmp_path: Path, template: str, load: Callable[[Path], object],
                                                   line: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "tagged.yaml"
    path.write_text(template.format(marker=marker))
    with pytest.raises(CaseSyntaxError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}:{line}, column ")
    assert "YAML tag '!!python/object/apply:os.system' is not allowed" in str(info.value)
    assert "remove the tag" in str(info.value)
    assert not marker.exists()


def test_yaml_alias_bomb_and_recursive_alias_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Aliases are expanded into copies, so their expansion is bounded (a small bound here keeps the test fast)."""
    monkeypatch.setattr(yamlsource, "MAX_NODES", 1000)
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 5)]  # 9**5 values
    with pytest.raises(CaseSyntaxError, match=r"^bomb.yaml:\d+, column \d+: more than 1000 values once aliases are "
                                              r"expanded \(an alias bomb\?\)$"):
        yamlsource.load_documents("\n".join(levels), "bomb.yaml")
    with pytest.raises(CaseSyntaxError, match=r"^loop.yaml:1, column \d+: nested more than 200 levels deep "
                                              r"\(a recursive alias\?\)$"):
        yamlsource.load_documents("a: &a {b: *a}", "loop.yaml")
