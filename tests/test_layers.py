"""The package's import graph has no cycles, counting imports inside functions too, and keeps its
layers: the lowest modules import nothing else of swinseg, and the models never reach up."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "swinseg"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = (
                ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
            )
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_itself_through_others():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt])
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_layers():
    graph = _graph()
    reaches = {}
    for module, targets in graph.items():
        reaches.setdefault(_package(module), set()).update(_package(t) for t in targets if _package(t) != _package(module))
    assert not reaches.get("swinseg.progress")
    for low in ("swinseg.files", "swinseg.configs"):
        assert reaches.get(low, set()) <= {"swinseg.files"}, (low, reaches[low])
    assert reaches["swinseg.ops"] <= {"swinseg.files"}
    assert reaches["swinseg.weights"] <= {"swinseg.files", "swinseg.ops", "swinseg.data", "swinseg.progress"}
    assert not reaches["swinseg.models"] & {"swinseg.predict", "swinseg.engine", "swinseg.tools", "swinseg.cli"}
    assert "swinseg.models" not in reaches["swinseg.weights"]
