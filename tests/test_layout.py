"""The package layout of docs/ARCHITECTURE.md, checked by reading the source (no imports, so it is fast):

(a) no import cycle among the modules of ``src/ebmlab`` (an import inside a function counts: it only
    delays the cycle to the first call);
(b) every import points DOWN the layer order below (a module may import its own layer and the ones
    before it); the compatibility shims may import anything;
(c) the benchmarks use no underscore-prefixed ebmlab name: each one would mark a public function
    that is missing.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "ebmlab"

# docs/ARCHITECTURE.md's layers, lowest first: a top-level module or subpackage of ebmlab per entry.
LAYERS = [
    "errors", "box", "atomic", "density", "device",   # leaves
    "models", "nets", "data", "samplers", "estimate", "metrics", "viz", "rundir", "training", "tasks",
    "cli", "__main__",
]
# Old import paths kept as thin re-exports, and the package root with its lazy re-exports: they sit
# above everything and may import anything (nothing inside ebmlab may import them).
SHIMS = {"ebmlab", "ebmlab.model", "ebmlab.compose"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _absolute(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module named by ``from <level dots><module> import ...`` inside ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """The ebmlab modules ``name`` imports, anywhere in the file, as (module, line).

    ``from pkg import sub`` depends on the module ``pkg.sub`` when that is a module, else on ``pkg``
    itself (its ``__init__``). A submodule's implicit import of its own parent packages is not an
    edge: Python imports the parents first, so that never forms a cycle of its own.
    """
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, is_package, node.level, node.module)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import ebmlab.x.y` of a missing name: its deepest module
                target = target.rpartition(".")[0]
            if target.startswith("ebmlab") and target != name:
                found.append((target, node.lineno))
    return found


EDGES = {name: _imports(name, path) for name, path in MODULES.items()}


def _rank(module: str) -> int:
    if module in SHIMS:
        return len(LAYERS)
    head = module.split(".")[1]
    assert head in LAYERS, f"{module}: not in a layer of tests/test_layout.py (add its package to LAYERS and to docs/ARCHITECTURE.md)"
    return LAYERS.index(head)


def test_every_module_has_a_layer():
    ranks = {name: _rank(name) for name in MODULES}      # _rank names the module that has no layer
    assert ranks and all(0 <= r <= len(LAYERS) for r in ranks.values())   # len(LAYERS): the shims above all


def test_no_import_cycles():
    graph = {name: sorted({t for t, _ in edges}) for name, edges in EDGES.items()}
    # Tarjan's strongly connected components, iterative (no recursion limit to worry about).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    assert not cycles, f"import cycles (function-local imports count): {cycles}"


def test_imports_point_down_the_layers():
    upward = [
        f"{MODULES[name].relative_to(ROOT)}:{line}: {name} imports {target}"
        for name, edges in EDGES.items() if name not in SHIMS
        for target, line in edges if _rank(target) > _rank(name)
    ]
    assert not upward, "imports that point up the layers of docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def test_benchmarks_use_only_public_names():
    private = []
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT)
        ebmlab_names: set[str] = set()  # local names bound to ebmlab modules or objects
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ebmlab":
                for alias in node.names:
                    if _is_private(f"{node.module}.{alias.name}"):
                        private.append(f"{where}:{node.lineno}: from {node.module} import {alias.name}")
                    ebmlab_names.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "ebmlab":
                        if _is_private(alias.name):
                            private.append(f"{where}:{node.lineno}: import {alias.name}")
                        ebmlab_names.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in ebmlab_names:
                    private.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert not private, "benchmarks use private ebmlab names:\n" + "\n".join(private)
