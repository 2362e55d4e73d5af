"""The project's import graph, read from the source (every import, including those inside
functions and under ``TYPE_CHECKING``), its circles, and its longest modules.

``python -m tests.imports`` prints them; ``tests/aura/test_layering.py`` holds the rules.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("aura", "tenants", "routing", "billing", "monitoring")


def modules() -> dict[str, Path]:
    """Every project module (migrations excluded) by dotted name."""
    found: dict[str, Path] = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            if "migrations" in rel.parts:
                continue
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(tree: ast.AST, name: str, is_package: bool, mods: dict[str, Path]) -> Iterable[str]:
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                # `from pkg import sub` depends on the submodule; `from mod import name` on mod.
                sub = f"{prefix}.{alias.name}"
                yield sub if sub in mods else prefix


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a name resolves to the longest module)."""
    mods = modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        targets: set[str] = set()
        for dotted in _imported(tree, name, path.name == "__init__.py", mods):
            parts = dotted.split(".")
            while parts and ".".join(parts) not in mods:
                parts.pop()
            if parts:
                target = ".".join(parts)
                if target != name:
                    targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def longest(n: int = 5) -> list[tuple[int, str]]:
    sizes = [(len(p.read_text().splitlines()), name) for name, p in modules().items()]
    return sorted(sizes, reverse=True)[:n]


def main() -> int:
    edges = graph()
    found = cycles(edges)
    print(f"{len(edges)} modules, {sum(len(v) for v in edges.values())} import edges")
    print(f"import circles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print("longest modules:")
    for lines, name in longest(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        print(f"  {lines:5d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
