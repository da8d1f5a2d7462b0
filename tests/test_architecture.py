"""The package's shape: no import cycles between modules (imports inside functions count: one
that only hides a cycle is still one) nor between packages (imports between folders go one
way), no module too long to read in one sitting."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "stelab"
#: the most lines a module may hold (docs/architecture.md: one module, one job)
MAX_LINES = 460


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` that runs, i.e. outside ``if TYPE_CHECKING:`` blocks (imports for
    annotations only never execute, so they cannot make an import cycle)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _runtime_nodes_of(child))
            continue
        yield node
        yield from _runtime_nodes(node)


def _runtime_nodes_of(node: ast.AST) -> Iterator[ast.AST]:
    yield node
    yield from _runtime_nodes(node)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the stelab modules it imports, at module level or inside functions. Importing a
    submodule also runs its parent packages, except the importer's own ancestors."""
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if package else parts)] = (path, package)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def ancestors(name: str) -> set[str]:
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}

    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        graph[name] = set()
        here = name if package else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            for target in map(resolve, targets):
                if target is None:
                    continue
                for module in (target, *ancestors(target)):
                    if module not in (name, "stelab") and module not in ancestors(name):
                        graph[name].add(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_src_has_no_import_cycles():
    graph = _import_graph()
    assert {"stelab.experiments.e1", "stelab.report.write"} <= set(graph)
    assert "stelab.render" in graph["stelab.experiments.e1"]  # parents count as imported
    assert _cycles(graph) == []


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded to stelab's top-level packages and modules (``stelab.report.write``
    -> ``stelab.report``): package -> the packages it imports, itself left out."""
    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for name, targets in graph.items():
        folded.setdefault(top(name), set()).update(top(t) for t in targets)
    return {name: targets - {name, "stelab"} for name, targets in folded.items()}


def test_packages_import_each_other_one_way():
    packages = _package_graph(_import_graph())
    assert {"stelab.render", "stelab.experiments", "stelab.report"} <= set(packages)
    assert "stelab.render" in packages["stelab.experiments"]
    assert _cycles(packages) == []


def test_the_package_graph_folds_modules_into_their_packages():
    graph = {"stelab.a.x": {"stelab.b.y"}, "stelab.b.y": {"stelab.a"}, "stelab.a": set(),
             "stelab.c": {"stelab.a.x"}}
    folded = _package_graph(graph)
    assert folded == {"stelab.a": {"stelab.b"}, "stelab.b": {"stelab.a"}, "stelab.c": {"stelab.a"}}
    assert _cycles(folded) == [{"stelab.a", "stelab.b"}]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_modules_stay_readable():
    long = {path.relative_to(SRC).as_posix(): count for path in SRC.rglob("*.py")
            if (count := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
