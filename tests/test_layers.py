"""The house: imports point one way (sensors <- edge <- web, sync <- district <- posko) and no
module imports itself back through others. Function-level imports count, so the graph is
read from every import statement in the source with `ast`, not from what happens to run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"sensors": 0, "edge": 1, "web": 2, "sync": 2, "district": 3, "posko": 4}


def modules() -> dict[str, Path]:
    found = {}
    for package in LAYER:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(name: str, path: Path, node: ast.AST) -> list[str]:
    """Every dotted name an import statement may load (for `from a import b`: a and a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        anchor = ".".join(parts[: len(parts) - node.level + 1])
        base = f"{anchor}.{base}" if node.module else anchor
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    mods = modules()

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in mods:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for dotted in imported(name, path, node):
                target = resolve(dotted)
                if target is not None and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_layers_every_package_is_there() -> None:
    assert all((ROOT / package / "__init__.py").is_file() for package in LAYER)


def test_layers_imports_point_down_only() -> None:
    edges = graph()
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if source.split(".")[0] != target.split(".")[0]
        and LAYER[target.split(".")[0]] >= LAYER[source.split(".")[0]]
    )
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, {len(upward)} upward")
    assert upward == []


def test_layers_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_layers_cycle_finder_finds_a_planted_cycle() -> None:
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(planted) == [["a", "b", "c"]]
