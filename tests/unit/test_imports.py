"""The import graph of tinygrad_s2s has no cycles (lazy imports inside functions included) and its arrows
point down the layers only, so any module can be read, tested and imported on its own."""
import ast
from pathlib import Path

import tinygrad_s2s

PACKAGE = Path(tinygrad_s2s.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the tinygrad_s2s modules it imports anywhere in its source."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


LAYERS = ["_compat _version", "backend", "autograd", "ops", "tensor", "nn optim serialization", "models", "data",
          "training", "onnx", "viz", "tracking", "testing", "torch_export", "cli"]
"""The package's layers, bottom first (a line of DESIGN.md's map each): a module imports from its own
layer and those below only. The package's `__init__` and `__main__` sit above them all."""
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer.split()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return len(LAYERS) if len(parts) == 1 or parts[1] == "__main__" else RANK[parts[1]]


def test_every_module_belongs_to_a_layer():
    assert {m.split(".")[1] for m in import_graph() if "." in m} - {"__main__"} == set(RANK)


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert {"tinygrad_s2s.cli", "tinygrad_s2s.training.trainer", "tinygrad_s2s.cli.graph"} <= set(graph)
    assert "tinygrad_s2s.training.evaluation" in graph["tinygrad_s2s.training.runfiles"]   # relative imports resolve
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_down_the_layers_only():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() for t in targets
                    if layer_of(t) > layer_of(m))
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_layer_check_sees_an_upward_import():
    assert layer_of("tinygrad_s2s.cli.train") > layer_of("tinygrad_s2s.training.trainer") > layer_of(
        "tinygrad_s2s.ops.lstm") > layer_of("tinygrad_s2s.autograd.function")
    assert layer_of("tinygrad_s2s.nn.lstm") == layer_of("tinygrad_s2s.optim")


MAX_LINES = 400


def test_modules_are_short_or_say_why_not():
    """A module over ~400 lines states in its docstring why it stays whole ("Kept whole: ...")."""
    long = []
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "zoo").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES and "Kept whole:" not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{path.relative_to(PACKAGE.parent)}: {text.count(chr(10))} lines")
    assert not long, long


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
