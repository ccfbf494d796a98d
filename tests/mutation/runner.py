"""Mutation testing of sessionkit's security core (run it with ``scripts/mutation``).

A mutant is the module's syntax tree with one small change: a comparison moved across its
boundary, an operator or a constant changed, a guard, a call or a raise deleted, a keyword
argument dropped, a condition negated, a returned value replaced by ``None``; and the
hand-made mutants of ``tests/mutation/handmade.py`` (one exact piece of text replaced),
for the changes a reviewer worries about that no operator above makes. Each mutant
is compiled from the changed tree (so line numbers stay those of the real file) and
served to the import system in place of the real module while the module's own test
files run under pytest. A test failure, an error, a crash, a timeout or exceeding the
memory limit kills the mutant; a clean pass means it survived.

Every mutant runs in a new process forked from a runner that has imported only pytest
and the third-party libraries the tests use, never sessionkit or a test module: no
module-level cache or test state passes from one mutant to the next. The child gets a
memory limit (``RLIMIT_AS``) and is killed after a timeout derived from the clean run.

Mutants on lines no test of the module executes (measured on the clean run) survive
without being run. Equivalent mutants are listed, one reason each, in
``tests/mutation/equivalent.txt``: they are still run, and the score is
killed / (mutants - equivalent). An entry whose mutant is killed or no longer exists is
reported as stale and fails the run, so the list stays reviewed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT_FILE = ROOT / "tests" / "mutation" / "equivalent.txt"
HANDMADE_FILE = ROOT / "tests" / "mutation" / "handmade.py"
#: Verdicts of the last run of each module, for ``--again``.
CACHE = ROOT / ".cache" / "mutation"

#: Third-party modules imported once by the runner so each forked child starts warm.
PRELOAD = (
    "pytest",
    "_pytest.python",
    "hypothesis",
    "hypothesis.strategies",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "cryptography.hazmat.primitives.hmac",
    "orjson",
    "redis",
)

#: Module -> (tests beyond tests/core/test_<module>.py and test_<module>_*.py, threshold %).
CORE: dict[str, tuple[tuple[str, ...], float]] = {
    "seal": ((), 98.0),
    "cookies": ((), 98.0),
    "keys": ((), 98.0),
    "visitor": ((), 98.0),
    "gate": (("tests/core/test_safe_location.py",), 95.0),
    # the exchange drives a session's lifecycle: tests/core/test_kit.py is its other half
    "session": (("tests/core/test_kit.py",), 95.0),
    "privacy": ((), 95.0),
    # the rules of a session family in a store: pure functions, judged without a store
    "families": ((), 95.0),
    # cross-site request forgery: the front ends' tests drive its decisions end to end
    "forgery": (("tests/asgi/test_forgery.py", "tests/wsgi/test_forgery.py"), 95.0),
    # the facade wires each policy area: the core tests of those areas go through it
    "kit": (
        (
            "tests/core/test_gate.py",
            "tests/core/test_privacy.py",
            "tests/core/test_visitor.py",
            "tests/core/test_keys.py",
            "tests/core/test_devices.py",
            "tests/core/test_events.py",
            "tests/core/test_forgery.py",
            "tests/core/test_metrics.py",
            "tests/core/test_migrate.py",
            "tests/core/test_session_keep.py",
        ),
        95.0,
    ),
    # one request's lifecycle: every area it drives, both front ends, and the store
    # interleavings on MemoryStore (the same conversation SQLite and Redis answer in CI)
    "exchange": (
        (
            "tests/core/test_kit.py",
            "tests/core/test_kit_mutants.py",
            "tests/core/test_kit_operations.py",
            "tests/core/test_lifetime.py",
            "tests/core/test_session.py",
            "tests/core/test_session_mutants.py",
            "tests/core/test_session_keep.py",
            "tests/core/test_visitor.py",
            "tests/core/test_privacy.py",
            "tests/core/test_devices.py",
            "tests/core/test_events.py",
            "tests/core/test_metrics.py",
            "tests/core/test_migrate.py",
            "tests/core/test_forgery.py",
            "tests/core/test_gate.py",
            "tests/asgi",
            "tests/wsgi",
            "tests/stores/test_interleavings.py",
            "tests/stores/test_devices.py",
        ),
        95.0,
    ),
}

#: Module -> extra pytest arguments of its run.
PYTEST_ARGS: dict[str, tuple[str, ...]] = {
    "exchange": ("-k", "not sqlite and not redis"),
}

COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.BitXor: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}


@dataclasses.dataclass(frozen=True)
class Target:
    """One module to mutate, the test files that judge it and the score it must reach."""

    name: str
    module: str
    path: Path
    tests: tuple[Path, ...]
    threshold: float
    pytest_args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change to one node: ``index`` is the node's position in ``ast.walk`` order.

    ``reached`` are the lines of which one runs whenever the node is evaluated: the whole
    enclosing simple statement, or the header of the enclosing compound one (a line
    event is not reported for every line of a multi-line expression).
    """

    key: str
    index: int
    kind: str
    line: int
    reached: range
    choice: int = 0
    #: For a hand-made mutant: the source text it replaces, and the replacement.
    edit: tuple[str, str] | None = None


def core_target(name: str) -> Target:
    """The :class:`Target` of one module of the security core."""
    extra, threshold = CORE[name]
    core = ROOT / "tests" / "core"
    tests = [core / f"test_{name}.py", *sorted(core.glob(f"test_{name}_*.py"))]
    tests += [ROOT / path for path in extra]
    return Target(
        name=name,
        module=f"sessionkit.{name}",
        path=ROOT / "src" / "sessionkit" / f"{name}.py",
        tests=tuple(path for path in tests if path.exists()),
        threshold=threshold,
        pytest_args=PYTEST_ARGS.get(name, ()),
    )


# -- Generating mutants ------------------------------------------------------------------


def _short(node: ast.AST, limit: int = 70) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    if not isinstance(node, ast.Expr) or not isinstance(parent, _BODIED):
        return False
    value = node.value
    return (
        isinstance(value, ast.Constant)
        and isinstance(value.value, str)
        and bool(parent.body)
        and parent.body[0] is node
    )


_BODIED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _skipped(tree: ast.Module) -> set[ast.AST]:
    """Nodes never mutated: annotations, docstrings, messages of raised exceptions and the
    declarations of :func:`_declaration`."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots += [node.returns] if node.returns else []
        elif isinstance(node, (ast.arg, ast.AnnAssign)):
            roots += [node.annotation] if node.annotation else []
        elif _is_docstring(node, parents) or _declaration(node):
            roots.append(node)
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            roots += [
                arg
                for arg in node.exc.args
                if isinstance(arg, (ast.Constant, ast.JoinedStr, ast.BinOp))
            ]
    skipped: set[ast.AST] = set()
    for root in roots:
        skipped.update(ast.walk(root))
    return skipped


def _declaration(node: ast.AST) -> bool:
    """An f-string, a ``Literal[...]`` type, an ``__all__``/``__slots__`` list or an
    ``if TYPE_CHECKING:`` block."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) in ("Literal", "typing.Literal")
    if isinstance(node, ast.Assign):
        return any(
            isinstance(t, ast.Name) and t.id in ("__all__", "__slots__") for t in node.targets
        )
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def _qualnames(tree: ast.Module) -> dict[ast.AST, str]:
    names: dict[ast.AST, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}.{child.name}" if prefix else child.name
                names[child] = name
                for sub in ast.walk(child):
                    names[sub] = name
                visit(child, name)
            else:
                visit(child, prefix)

    visit(tree, "")
    return names


def _sites(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> Iterator[tuple[str, int]]:
    """(kind, choice) of every mutation of one node."""
    parent = parents.get(node)
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in COMPARE_SWAP:
                yield "compare", i
    elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BINOP_SWAP:
        yield "operator", 0
    elif isinstance(node, ast.BoolOp):
        yield "boolean", 0
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
        yield "unary", 0
    elif isinstance(node, ast.Constant) and not isinstance(parent, ast.JoinedStr):
        if isinstance(node.value, (bool, int, float, str, bytes)):
            yield "constant", 0
    elif isinstance(node, ast.Call):
        for i, keyword in enumerate(node.keywords):
            if keyword.arg is not None:
                yield "keyword", i
    if isinstance(node, (ast.If, ast.While, ast.IfExp)) and not isinstance(
        node.test, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant)
    ):
        yield "negate", 0
    if isinstance(node, ast.Return) and not (
        node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        yield "return", 0
    if isinstance(node, ast.stmt) and not isinstance(parent, ast.Module | ast.ClassDef):
        deletable = (
            isinstance(node, (ast.If, ast.Raise, ast.AugAssign))
            or (isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)))
            or (
                isinstance(node, ast.Assign)
                and all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets)
            )
        )
        if deletable:
            yield "delete", 0


def _apply(node: ast.AST, kind: str, choice: int, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    """Mutate ``node`` in place; return the node to show as "after"."""
    if kind == "compare":
        assert isinstance(node, ast.Compare)
        node.ops[choice] = COMPARE_SWAP[type(node.ops[choice])]()
    elif kind == "operator":
        assert isinstance(node, (ast.BinOp, ast.AugAssign))
        node.op = BINOP_SWAP[type(node.op)]()
    elif kind == "boolean":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "unary":
        assert isinstance(node, ast.UnaryOp)
        return _replace(node, node.operand, parents)
    elif kind == "constant":
        assert isinstance(node, ast.Constant)
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, (int, float)):
            node.value = value + 1
        elif isinstance(value, str):
            node.value = f"XX{value}XX"
        else:
            node.value = b"XX" + value + b"XX"
    elif kind == "keyword":
        assert isinstance(node, ast.Call)
        del node.keywords[choice]
    elif kind == "negate":
        assert isinstance(node, (ast.If, ast.While, ast.IfExp))
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "return":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(value=None)
    elif kind == "delete":
        return _replace(node, ast.Pass(), parents)
    return node


def _replace(old: ast.AST, new: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    parent = parents[old]
    for field, value in ast.iter_fields(parent):
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
        elif value is old:
            setattr(parent, field, new)
    ast.copy_location(new, old)
    return new


def _shown(node: ast.AST, kind: str, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    """The node whose text names a mutation: the expression or setting around a constant."""
    parent = parents.get(node)
    if kind != "constant" or not isinstance(parent, (ast.expr, ast.keyword, ast.AnnAssign)):
        return node
    if isinstance(parent, (ast.Set, ast.List, ast.Tuple, ast.Dict)) and len(_short(parent)) > 69:
        return node  # one element of a long literal: the element itself says more
    return parent


def _reached(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> range:
    """The lines of which one runs whenever ``node`` is evaluated (see :class:`Mutant`)."""
    statement = node
    while not isinstance(statement, ast.stmt):
        statement = parents[statement]
    start = statement.lineno
    end = statement.end_lineno or start
    body = getattr(statement, "body", None)
    if statement is not node and isinstance(body, list) and body:
        decorators = getattr(statement, "decorator_list", [])
        start = min([start, *(d.lineno for d in decorators)])
        end = body[0].lineno - 1
        if isinstance(statement, ast.If) and node in ast.walk(statement.test):
            end = max(end, statement.test.end_lineno or start)
    return range(start, end + 1)


def mutants_of(tree: ast.Module, target: str) -> list[Mutant]:
    """Every mutant of a module, in source order, each with a key stable across edits."""
    skipped = _skipped(tree)
    names = _qualnames(tree)
    nodes = list(ast.walk(tree))
    parents = {child: node for node in nodes for child in ast.iter_child_nodes(node)}
    sites: list[tuple[int, int, int, int, str, str, range]] = []
    for index, node in enumerate(nodes):
        if node in skipped or not hasattr(node, "lineno"):
            continue
        for kind, choice in _sites(node, parents):
            mutated_tree = copy.deepcopy(tree)
            mutated_nodes = list(ast.walk(mutated_tree))
            mutated_parents = {
                child: parent for parent in mutated_nodes for child in ast.iter_child_nodes(parent)
            }
            shown = _shown(node, kind, parents)
            twin = mutated_nodes[nodes.index(shown)]
            after_node = _apply(mutated_nodes[index], kind, choice, mutated_parents)
            if kind == "delete":
                label = f"`{_short(node, 60)}`"
            else:
                shown_after = after_node if shown is node else twin
                label = f"`{_short(shown)}` -> `{_short(shown_after)}`"
            base = f"{target}: {names.get(node, '<module>')}: {kind} {label}"
            reached = _reached(node, parents)
            sites.append((node.lineno, node.col_offset, index, choice, kind, base, reached))
    found: list[Mutant] = []
    seen: dict[str, int] = {}
    for line, _, index, choice, kind, base, reached in sorted(sites, key=lambda s: s[:4]):
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base} #{seen[base]}"
        found.append(Mutant(key, index, kind, line, reached, choice))
    return found


def handmade_of(source: str, target: str, entries: Sequence[tuple[str, ...]]) -> list[Mutant]:
    """The hand-made mutants of one module (see ``tests/mutation/handmade.py``).

    Each replaces one exact piece of the source text, which must occur exactly once.
    """
    found = []
    for module, what, old, new in entries:
        if module != target:
            continue
        if source.count(old) != 1:
            raise SystemExit(
                f"hand-made mutant of {module} ({what}): the text to replace occurs "
                f"{source.count(old)} times, not once; update tests/mutation/handmade.py"
            )
        line = source[: source.index(old)].count("\n") + 1
        # always run: a line of a multi-line literal is never reported as executed
        reached = range(1, source.count("\n") + 2)
        found.append(
            Mutant(f"{module}: hand-made: {what}", -1, "handmade", line, reached, 0, (old, new))
        )
    return found


def mutated_code(tree: ast.Module, mutant: Mutant | None, filename: str) -> types.CodeType:
    """Compile the module with one mutant applied (``None``: unchanged)."""
    if mutant is not None and mutant.edit is not None:
        source = Path(filename).read_text()
        tree = ast.parse(source.replace(*mutant.edit), filename)
    elif mutant is not None:
        tree = copy.deepcopy(tree)
        nodes = list(ast.walk(tree))
        parents = {child: node for node in nodes for child in ast.iter_child_nodes(node)}
        _apply(nodes[mutant.index], mutant.kind, mutant.choice, parents)
        ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", dont_inherit=True)


# -- Running one mutant ------------------------------------------------------------------


class _Serve(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve one module from a compiled code object instead of its file."""

    def __init__(self, module: str, path: Path, code: types.CodeType) -> None:
        self.module, self.path, self.code = module, path, code

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        spec = importlib.util.spec_from_loader(fullname, self, origin=str(self.path))
        if spec is not None:
            spec.has_location = True
        return spec

    def exec_module(self, module: types.ModuleType) -> None:
        exec(self.code, module.__dict__)


KILLED, SURVIVED, TIMEOUT, UNREACHED = "killed", "survived", "timeout", "unreached"


def _child(
    target: Target, code: types.CodeType, trace: Path | None, memory_mb: int, quiet: bool
) -> int:
    os.setsid()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if quiet:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
    stale = [name for name in sys.modules if name.split(".")[0] in ("sessionkit", "support")]
    if stale or target.module in sys.modules:
        return 90
    sys.dont_write_bytecode = True
    sys.meta_path.insert(0, _Serve(target.module, target.path, code))
    lines: set[int] = set()
    if trace is not None:
        filename = str(target.path)

        def local(frame: types.FrameType, event: str, arg: object) -> object:
            if event == "line":
                lines.add(frame.f_lineno)
            return local

        def tracer(frame: types.FrameType, event: str, arg: object) -> object:
            return local if frame.f_code.co_filename == filename else None

        sys.settrace(tracer)
    import pytest
    from hypothesis import settings

    # Deterministic examples, no example database carried between mutants, no deadline
    # (a mutant is not killed for being slow under a loaded machine, only by the timeout).
    settings.register_profile("mutation", database=None, derandomize=True, deadline=None)
    settings.load_profile("mutation")
    args = [str(path) for path in target.tests]
    args += ["-x", "-q", "-p", "no:cacheprovider", *target.pytest_args]
    # hypothesis is imported before pytest starts (preloaded), so its plugin is not rewritten
    args += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    status = int(pytest.main(args))
    sys.settrace(None)
    served = sys.modules.get(target.module)
    spec = getattr(served, "__spec__", None)
    if status == 0 and not isinstance(getattr(spec, "loader", None), _Serve):
        return 91
    if trace is not None:
        trace.write_text(" ".join(str(line) for line in sorted(lines)))
    return status


def run_one(
    target: Target,
    code: types.CodeType,
    timeout: float,
    memory_mb: int,
    trace: Path | None = None,
    quiet: bool = True,
) -> tuple[str, int, float]:
    """Run the target's tests against ``code`` in a forked child: (verdict, status, seconds)."""
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        status = 92
        stderr = os.dup(2)
        try:
            status = _child(target, code, trace, memory_mb, quiet)
        except BaseException:
            os.write(stderr, traceback.format_exc().encode())
        finally:
            os._exit(status)
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        elapsed = time.monotonic() - started
        if done:
            break
        if elapsed > timeout:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return TIMEOUT, -9, elapsed
        time.sleep(0.005)
    status = os.waitstatus_to_exitcode(wait_status)
    if status in (5, 90, 91):
        raise RuntimeError(f"{target.name}: the test run could not start (status {status})")
    return (SURVIVED if status == 0 else KILLED), status, elapsed


# -- Equivalent mutants and the report ---------------------------------------------------


def read_equivalent(path: Path) -> dict[str, str]:
    """Reviewed equivalent mutants: ``key :: reason`` per line, ``#`` comments."""
    listed: dict[str, str] = {}
    if not path.exists():
        return listed
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, reason = line.partition(" :: ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{number}: an entry is `mutant key :: reason`")
        listed[key.strip()] = reason.strip()
    return listed


def read_handmade(path: Path) -> list[tuple[str, ...]]:
    """The ``HANDMADE`` list of a hand-made mutants file: (module, what, old, new) each."""
    if not path.exists():
        return []
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    entries = namespace.get("HANDMADE")
    if not isinstance(entries, list) or not all(
        isinstance(e, tuple) and len(e) == 4 and all(isinstance(p, str) for p in e) for e in entries
    ):
        raise SystemExit(f"{path}: HANDMADE must be a list of (module, what, old, new) strings")
    return entries


def mutate(
    target: Target,
    equivalent: dict[str, str],
    handmade: Sequence[tuple[str, ...]] = (),
    *,
    memory_mb: int,
    match: str | None = None,
    again: bool = False,
    timeout: float | None = None,
    remember: bool = True,
) -> bool:
    """Run every mutant of one target, print the score and survivors; True when it passes.

    Verdicts are remembered (``remember``) in :data:`CACHE`. With ``again``, the kills of
    the last run are kept when the module is unchanged and only the other mutants run:
    right after tests were added, not after tests were changed or removed.
    """
    source = target.path.read_text()
    tree = ast.parse(source, str(target.path))
    mutants = mutants_of(tree, target.name) + handmade_of(source, target.name, handmade)
    if match is not None:
        mutants = [m for m in mutants if match in m.key]
    with tempfile.TemporaryDirectory() as scratch:
        trace = Path(scratch) / "lines"
        verdict, status, clean_seconds = run_one(
            target, mutated_code(tree, None, str(target.path)), 600, memory_mb, trace
        )
        if verdict != SURVIVED:
            run_one(target, mutated_code(tree, None, str(target.path)), 600, memory_mb, None, False)
            print(f"{target.name}: the tests fail on the unchanged module (status {status})")
            return False
        covered = {int(line) for line in trace.read_text().split()}
    if timeout is None:
        timeout = max(10.0, clean_seconds * 10)
    saved = CACHE / f"{target.name}.json"
    state = {"module": hashlib.sha256(source.encode()).hexdigest()}
    results: dict[str, str] = {}
    if again and saved.exists():
        previous = json.loads(saved.read_text())
        if previous.get("module") == state["module"]:
            results = {
                key: verdict
                for key, verdict in previous["results"].items()
                if verdict in (KILLED, TIMEOUT)
            }
    started = time.monotonic()
    tty = sys.stderr.isatty()
    for number, mutant in enumerate(mutants, 1):
        if mutant.key in results:
            continue
        if not covered.intersection(mutant.reached):
            results[mutant.key] = UNREACHED
            continue
        code = mutated_code(tree, mutant, str(target.path))
        results[mutant.key] = run_one(target, code, timeout, memory_mb)[0]
        if tty:
            print(f"\r  {target.name}: {number}/{len(mutants)}", end="", file=sys.stderr)
    if tty:
        print("\r", end="", file=sys.stderr)
    if match is None and remember:
        CACHE.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({**state, "results": results}, indent=1, sort_keys=True))
    return report(target, mutants, results, equivalent, time.monotonic() - started, match)


def report(
    target: Target,
    mutants: list[Mutant],
    results: dict[str, str],
    equivalent: dict[str, str],
    seconds: float,
    match: str | None,
) -> bool:
    """Print one module's score, survivors and stale equivalent entries."""
    keys = {m.key for m in mutants}
    listed = {key for key in equivalent if key.startswith(f"{target.name}: ")}
    stale = sorted(key for key in listed if key in keys and results[key] in (KILLED, TIMEOUT))
    if match is None:
        stale += sorted(key for key in listed if key not in keys)
    judged = [m for m in mutants if m.key not in listed or m.key in stale]
    killed = sum(results[m.key] in (KILLED, TIMEOUT) for m in judged)
    timeouts = sum(results[m.key] == TIMEOUT for m in judged)
    survivors = [m for m in judged if results[m.key] in (SURVIVED, UNREACHED)]
    score = 100.0 * killed / len(judged) if judged else 100.0
    passed = score >= target.threshold and not stale
    print(
        f"{target.name}: {score:.1f}% killed ({killed} of {len(judged)} mutants, {timeouts} by"
        f" timeout;"
        f" {len(mutants) - len(judged)} equivalent, threshold {target.threshold:g}%)"
        f" in {seconds:.0f} s: {'ok' if passed else 'FAIL'}"
    )
    for m in survivors:
        note = " (no test reaches this line)" if results[m.key] == UNREACHED else ""
        print(f"  survived: line {m.line}: {m.key}{note}")
    for key in stale:
        why = "is killed" if key in keys else "matches no mutant"
        print(f"  stale equivalent entry ({why}): {key}")
    return passed


HELP = """\
Mutation testing of the security core. For each module, every mutant (one small change
to its code, generated or hand-made in tests/mutation/handmade.py) runs that module's
test files in a new forked process with a memory limit and a timeout: tests/core/
test_<module>.py and test_<module>_*.py (alone for families: its rules are pure
functions, judged without a store), plus test_safe_location.py for gate, test_kit.py
for session, the ASGI and WSGI forgery tests for forgery, and for kit the core tests of
each area it wires (gate, privacy, visitor, keys, devices, events, forgery, metrics,
migration, keep); for exchange, the core tests of every area one request goes through,
tests/asgi, tests/wsgi and the store interleavings and device lists on MemoryStore.
Prints each module's score (killed / non-equivalent mutants) and its surviving mutants,
and exits 1 when a module is below its threshold (seal, cookies, keys, visitor: 98 %;
gate, session, privacy, families, kit, forgery, exchange: 95 %) or the list of
equivalent mutants is stale.

Equivalent mutants are listed, each with its reason, in tests/mutation/equivalent.txt.
Docstrings, annotations, f-strings and the messages of raised exceptions are not mutated.

How long it takes: one pytest run of the module's tests per mutant, on one core at
nice 10. Measured on a shared 2-core machine, quiet to busy: seal 2 min, cookies 1 to 2,
keys 2 to 4, visitor 0.5, gate 1.5 to 2.5, privacy 2.5 to 4.5, session 4 to 5,
families 10, kit 3.5 to 11, forgery 8, exchange 25; about 75 minutes for all eleven
(more while tests are missing: a survivor runs every test file to the end). After adding
tests, --again re-runs only the last run's survivors. The run is not part of CI;
tests/mutation/test_runner.py (in CI) checks the runner itself on a sample module.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``scripts/mutation``."""
    parser = argparse.ArgumentParser(
        prog="scripts/mutation",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("modules", nargs="*", help=f"modules to run (default: {' '.join(CORE)})")
    parser.add_argument("--match", help="only the mutants whose key contains this text")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument(
        "--again",
        action="store_true",
        help="keep the last run's kills when the module is unchanged; run only the rest",
    )
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit")
    parser.add_argument(
        "--timeout", type=float, help="seconds per mutant (default: 10 x the clean run, >= 10)"
    )
    parser.add_argument(
        "--equivalent", type=Path, default=EQUIVALENT_FILE, help="the reviewed equivalent mutants"
    )
    parser.add_argument(
        "--handmade", type=Path, default=HANDMADE_FILE, help="the hand-made mutants (Python)"
    )
    parser.add_argument(
        "--module-file", type=Path, help="mutate this file instead (with --module-name, --tests)"
    )
    parser.add_argument("--module-name", help="import name of --module-file")
    parser.add_argument("--tests", nargs="+", type=Path, default=[], help="test files")
    parser.add_argument(
        "--threshold", type=float, default=100.0, help="score needed by --module-file, in %%"
    )
    parser.add_argument(
        "--pytest-arg", action="append", default=[], help="one more pytest argument (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.module_file is not None:
        if not args.module_name or not args.tests:
            parser.error("--module-file needs --module-name and --tests")
        targets = [
            Target(
                name=args.module_file.stem,
                module=args.module_name,
                path=args.module_file.resolve(),
                tests=tuple(path.resolve() for path in args.tests),
                threshold=args.threshold,
                pytest_args=tuple(args.pytest_arg),
            )
        ]
    else:
        unknown = sorted(set(args.modules) - set(CORE))
        if unknown:
            parser.error(f"unknown modules {unknown}; choose from {' '.join(CORE)}")
        targets = [core_target(name) for name in args.modules or CORE]
    if args.list:
        for target in targets:
            source = target.path.read_text()
            handmade = handmade_of(source, target.name, read_handmade(args.handmade))
            for m in mutants_of(ast.parse(source), target.name) + handmade:
                print(f"line {m.line}: {m.key}")
        return 0
    equivalent = read_equivalent(args.equivalent)
    handmade = read_handmade(args.handmade)
    os.chdir(ROOT)
    os.nice(10)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    results = [
        mutate(
            target,
            equivalent,
            handmade,
            memory_mb=args.memory_mb,
            match=args.match,
            again=args.again,
            timeout=args.timeout,
            remember=args.module_file is None,
        )
        for target in targets
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
