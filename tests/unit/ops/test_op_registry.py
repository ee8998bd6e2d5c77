"""Adding an op is its class, its function beneath it and one op-table row: everything else a user or a
test looks in (`__all__` here and at the top, the docs' list of primitives, the PyTorch twin of the
op benchmark) is checked here, so a forgotten one fails with the op's name."""
import importlib
import inspect
import pkgutil
import re
from unittest import mock

import tinygrad_s2s as tg
from tinygrad_s2s.autograd import Function
from tinygrad_s2s.testing.op_table import OPS
from paths import REPO_ROOT

BUILDING_BLOCKS = {"base", "factories"}      # shared helpers and tensor factories: no Function of their own


def _op_modules():
    return [importlib.import_module(f"tinygrad_s2s.ops.{m.name}") for m in pkgutil.iter_modules(tg.ops.__path__)
            if m.name not in BUILDING_BLOCKS]


def public_ops() -> dict[str, str]:
    """name -> module of every public op function (a reference composition is not an op of its own)."""
    return {name: mod.__name__ for mod in _op_modules() for name, obj in vars(mod).items()
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__ and not name.startswith("_")
            and not name.endswith("_reference")}


def test_every_op_module_holds_functions_beneath_their_classes():
    """Each public op function sits after the Function class it applies and before the module's next
    class, so a reader finds the two together."""
    import ast
    for mod in _op_modules():
        classes = [o for o in vars(mod).values() if inspect.isclass(o) and issubclass(o, Function)
                   and o.__module__ == mod.__name__]
        assert classes, f"{mod.__name__} defines no Function"
        tree = ast.parse(inspect.getsource(mod))
        starts = {n.name: n.lineno for n in tree.body if isinstance(n, ast.ClassDef)}
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in public_ops()):
            applied = {c.func.value.id for c in ast.walk(fn) if isinstance(c, ast.Call)
                       and isinstance(c.func, ast.Attribute) and c.func.attr == "apply"
                       and isinstance(c.func.value, ast.Name) and c.func.value.id in starts}
            for name in applied:
                following = [line for line in starts.values() if line > starts[name]]
                assert starts[name] < fn.lineno < min(following, default=fn.lineno + 1), (
                    f"{mod.__name__}.{fn.name} (line {fn.lineno}) is not directly beneath class {name} "
                    f"(line {starts[name]})")


def test_every_op_is_exported_tested_documented_and_has_a_pytorch_twin():
    from benchmarks.op_overhead import _torch_ops
    table = {spec.name for spec in OPS}
    page = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = page.index("Primitives:")
    listed = set(re.findall(r"[a-z_]+", page[start:page.index("\n\n", start)]))
    twins = set(_torch_ops(mock.MagicMock()))
    ops = public_ops()
    assert len(ops) >= 40
    for name, module in sorted(ops.items()):
        where = f"op '{name}' ({module})"
        assert name in tg.ops.__all__, f"{where}: missing from tinygrad_s2s.ops.__all__"
        assert name in tg.__all__ and getattr(tg, name) is getattr(tg.ops, name), f"{where}: missing from tg.__all__"
        assert name in table, f"{where}: no row in tinygrad_s2s/testing/op_table.py"
        assert name in listed, f"{where}: missing from docs/architecture.md's list of primitives"
        assert name in twins, f"{where}: no PyTorch twin in benchmarks/op_overhead.py"
    assert table - set(ops) == {"pow_scalar"}        # a second row of pow, with a Python exponent


def test_the_factories_are_exported_too():
    for name in ("zeros", "ones", "full", "zeros_like", "ones_like", "arange", "tensor", "randn", "rand", "randint"):
        assert name in tg.ops.__all__ and name in tg.__all__
