"""The package's shape (issue #16): read from the source with ``ast``, never by importing.

- no import cycle between modules of ``simulator``, counting every import: at module top,
  inside functions and under ``TYPE_CHECKING``;
- numba is imported only by kernel modules (in a ``_kernels`` package, or a module named
  ``_kernels.py``);
- each subpackage imports only what its docstring says it may (:data:`MAY_IMPORT`, which
  mirrors the "May import" paragraph of every ``__init__.py``);
- a private module or name (``_x``) is used only inside the subpackage that owns it;
- no module over 600 lines;
- ``import simulator`` and the fast commands load neither numba nor pyarrow nor joblib.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simulator"
MAX_LINES = 600

#: subpackage (or top-level module) -> the subpackages and modules it may import
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "_version": set(),
    "input_files": {"errors"},
    "price_files": {"errors", "input_files"},
    "_kernels": {"config"},  # config.limits only (checked below)
    "config": {"errors", "input_files", "price_files"},
    "options": {"_kernels"},
    "calibration": {"errors", "input_files", "price_files"},
    "book": {"config", "_kernels", "options", "errors"},
    "paths": {"config", "_kernels", "calibration", "errors"},
    "margin": {"config", "book", "_kernels", "options"},
    "results": {"config", "book", "margin", "errors", "input_files"},
    "report": {"errors"},
    "rare": {"config", "paths", "margin", "results", "book", "errors"},
    "execution": {"config", "book", "paths", "margin", "results", "report", "errors",
                  "input_files", "_version", "_kernels", "rare"},  # _kernels.compiling only
    "sweeps": {"config", "execution", "results", "errors", "input_files", "_version", "rare"},
}
#: private to ``simulator`` as a whole, shared by its subpackages: the shared kernels and the
#: version
SHARED_PRIVATE = {"__init__", "_kernels", "_version"}
#: the entry points may import anything
TOP = {"simulator", "cli", "_entry", "__main__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, relative: bool = False) -> list[tuple[str, str, int]]:
    """(module imported, name imported or "", line) for every import in a file; relative
    imports (allowed only with ``relative``, in tests/) as written, module without dots."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.level == 0 or relative):
            out += [(node.module or "", a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: relative import (use absolute ones)")
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for module, imported, _ in _imports(path):
            if module.split(".")[0] != "simulator":
                continue
            sub = f"{module}.{imported}"
            graph[name].add(sub if sub in MODULES else module)
    return graph


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "simulator"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_cycles():
    """The finder itself: a two-module loop and a self-import are found, a chain is not."""
    graph = {"simulator.cli": {"simulator.errors"}, "simulator.errors": {"simulator.cli"}}
    assert ["simulator.cli", "simulator.errors"] in _cycles(graph)
    assert _cycles({"simulator.cli": {"simulator.errors"}}) == []
    assert _cycles({"simulator.cli": {"simulator.cli"}}) == [["simulator.cli"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def _is_kernel_module(name: str) -> bool:
    parts = name.split(".")
    return any(p == "_kernels" or p == "_kernels.py" for p in parts[1:])


def test_numba_only_in_kernel_modules():
    offenders = [f"{name}:{line}" for name, path in MODULES.items()
                 for module, _, line in _imports(path)
                 if module.split(".")[0] in ("numba", "llvmlite") and not _is_kernel_module(name)]
    assert offenders == []
    assert any(_is_kernel_module(n) for n in MODULES)  # the rule has something to apply to


def test_subpackages_import_only_what_they_may():
    bad = []
    for name, targets in _graph().items():
        room = _room(name)
        if room in TOP:
            continue
        assert room in MAY_IMPORT, f"{name}: a new subpackage; add its rule to MAY_IMPORT"
        for target in targets:
            other = _room(target)
            if other != room and other not in MAY_IMPORT[room]:
                bad.append(f"{name} -> {target}")
            if room == "_kernels" and other == "config" and target != "simulator.config.limits":
                bad.append(f"{name} -> {target}")
            if (room == "execution" and other == "_kernels"
                    and target != "simulator._kernels.compiling"):
                bad.append(f"{name} -> {target}")
    assert bad == []


def test_kernels_import_only_what_their_cache_key_hashes():
    """The kernels' cache folder is keyed by the files they are compiled from
    (``simulator._kernels.compiling``): a kernel importing another module of marginsim
    would bake in constants the key does not see, and a stale kernel could load."""
    tree = ast.parse((PACKAGE / "_kernels" / "compiling.py").read_text(encoding="utf-8"))
    deps = next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "KERNEL_DEPENDENCIES")
    hashed = {f"simulator.{dep[:-3].replace('/', '.')}" for dep in deps}
    bad = [f"{name} -> {target}" for name, targets in _graph().items()
           if _is_kernel_module(name) for target in targets
           if not _is_kernel_module(target) and target not in hashed
           and target != "simulator._kernels"]
    assert bad == []


@pytest.mark.parametrize("room", sorted(set(MAY_IMPORT) - {"errors", "_version", "input_files",
                                                        "price_files"}))
def test_each_subpackage_says_what_it_owns_and_may_import(room):
    doc = ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text()))
    assert doc and "May import" in doc, f"simulator/{room}/__init__.py: say what it may import"
    for other in MAY_IMPORT[room]:  # the docstring names every room the rule allows
        assert f"simulator.{other}" in doc, f"{room}: its docstring omits simulator.{other}"


def test_private_names_stay_in_their_subpackage():
    bad = []
    for name, path in MODULES.items():
        for module, imported, line in _imports(path):
            if (module.split(".")[0] != "simulator" or _room(module) == _room(name)
                    or _room(name) in TOP):
                continue
            private_module = any(p.startswith("_") and p not in SHARED_PRIVATE
                                 for p in module.split(".")[1:])
            if private_module or (imported.startswith("_") and imported != "__version__"):
                bad.append(f"{name}:{line} imports {module}.{imported}")
    assert bad == []


def test_no_module_over_600_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("code", [
    "import simulator",
    "import simulator.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass",
    "import simulator.cli as c\nc.main(['scenarios'])",
    "import simulator.cli as c\ntry:\n    c.main(['run', '--help'])\nexcept SystemExit:\n    pass",
])
def test_fast_commands_load_no_heavy_library(code):
    """The command line starts fast: these load no numba, pyarrow or joblib (start-up
    times are in benchmarks/bench_startup.py)."""
    probe = code + "\nimport sys\nprint(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    loaded = set(ast.literal_eval(out))
    assert loaded & {"numba", "pyarrow", "joblib", "llvmlite", "scipy"} == set()
    assert "simulator" in loaded


def _closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_margin_reads_config_only_in_rules():
    """DESIGN.md: ``margin`` knows nothing of TOML; ``rules.py`` is its one reader of config."""
    readers = sorted(name for name, targets in _graph().items()
                     if _room(name) == "margin" and any(_room(t) == "config" for t in targets))
    assert readers == ["simulator.margin.rules"]


def test_config_knows_no_engine():
    """DESIGN.md: ``config`` knows nothing of the engine, not even through what it imports."""
    graph = _graph()
    reached = set().union(*(_closure(graph, m) for m in MODULES if _room(m) == "config"))
    assert sorted(m for m in reached if _room(m) not in MAY_IMPORT["config"] | {"config"}) == []


def test_results_knows_no_kernels():
    """DESIGN.md: ``results`` knows nothing of kernels: from ``margin`` it takes only the
    integer codes and the replay's result record, and no kernel module."""
    bad = sorted(f"{name} -> {target}" for name, targets in _graph().items()
                 if _room(name) == "results" for target in targets
                 if _is_kernel_module(target) or (_room(target) == "margin" and target not in (
                     "simulator.margin.codes", "simulator.margin.result")))
    assert bad == []


TESTS = Path(__file__).resolve().parent
#: folders of tests/ that are not a subpackage of simulator
TEST_HELPERS = {"support", "reference", "data", "cli", "__pycache__"}


def test_tests_mirror_the_packages():
    """Every test folder is named after a subpackage of simulator (or is cli/, support/,
    reference/ or data/)."""
    rooms = {p.name.lstrip("_") for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir()} - TEST_HELPERS
    assert folders <= rooms, f"test folders with no subpackage: {sorted(folders - rooms)}"
    assert len(folders) >= 8


def test_no_test_module_imports_another():
    """Shared builders live in conftest.py, tests/support/ or tests/reference/."""
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        for module, imported, line in _imports(path, relative=True):
            names = [*module.split("."), imported]
            if any(n.startswith("test_") for n in names):
                bad.append(f"{path.relative_to(TESTS)}:{line} imports {module} {imported}")
    assert bad == []
