"""The package reads top-down: each layer imports only the layers below it, imports inside
functions included, and no module imports itself back through another.

    contracts < config < db, detectors, logs, alerts, lineage < registry
    < retrain, rollout, incidents < daemon < api, check < sim < cli

``driftd.errors`` and ``driftd.textsafe`` (pure helpers with no driftd imports) sit under all.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import driftd

ROOT = Path(driftd.__file__).parent
TIERS: dict[str, int] = {
    "driftd": 0,
    "driftd.errors": 0,
    "driftd.textsafe": 0,
    "driftd.contracts": 1,
    "driftd.config": 2,
    "driftd.db": 3,
    "driftd.detectors": 3,
    "driftd.alerts": 3,
    "driftd.artifacts": 3,
    "driftd.lineage": 3,
    "driftd.logs": 3,
    "driftd.registry": 4,
    "driftd.incidents": 5,
    "driftd.migrations": 4,
    "driftd.retrain": 5,
    "driftd.rollout": 5,
    "driftd.daemon": 6,
    "driftd.api": 7,
    "driftd.check": 7,
    "driftd.sim": 8,
    "driftd.interop": 8,
    "driftd.cli": 9,
}
# What the contracts may import besides the standard library and driftd.errors.
CONTRACT_DEPS = {"numpy", "msgspec"}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = modules()


def group(module: str) -> str:
    """The layer a module belongs to: its longest prefix named in TIERS."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if (name := ".".join(parts[:n])) in TIERS:
            return name
    raise AssertionError(f"{module} belongs to no layer: add it to TIERS")


def imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in a module, in functions too."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                yield (sub if sub in MODULES else base), node.lineno


def internal(name: str) -> str | None:
    """The driftd module an import name resolves to (its longest existing prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def edges() -> dict[str, set[str]]:
    """Module -> the driftd modules it imports."""
    out: dict[str, set[str]] = {}
    for m in MODULES:
        out[m] = {t for name, _ in imports(m) if (t := internal(name)) and t != m}
    return out


def test_every_import_points_down() -> None:
    wrong = []
    for m in sorted(MODULES):
        for name, line in imports(m):
            target = internal(name)
            if target is None or target == m:
                continue
            a, b = group(m), group(target)
            if a != b and TIERS[b] >= TIERS[a]:
                wrong.append(f"{MODULES[m].relative_to(ROOT.parent)}:{line}: {a} imports {b}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                cycles.append(sorted([v, *comp]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_contracts_import_only_numpy_msgspec_and_errors() -> None:
    stdlib = sys.stdlib_module_names
    wrong = []
    for m in MODULES:
        if group(m) != "driftd.contracts":
            continue
        for name, line in imports(m):
            top = name.partition(".")[0]
            inside = internal(name)
            if top == "driftd":
                ok = inside is not None and group(inside) in {"driftd.contracts", "driftd.errors"}
            else:
                ok = top in stdlib or top in CONTRACT_DEPS or top == "__future__"
            if not ok:
                wrong.append(f"{m}:{line} imports {name}")
    assert not wrong, wrong


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_layer(module: str) -> None:
    assert group(module) in TIERS
