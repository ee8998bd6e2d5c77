"""Every callable the reference documents (docs/reference/*.md, see tests/helpers/reference_docs.documented)
carries Google-style sections that mkdocstrings renders, read as mkdocs reads them (griffe, with the
docs' own extension, so `Tensor.exp = exp` is the method it renders):

- Args: names every parameter of the signature, and no other (`*shape` as `*shape` or `shape`);
  a class documents its `__init__`'s in the class docstring (or `__init__`'s).
- Returns (or Yields): a function whose body returns a value.
- Raises: names each exception class its own body raises (`raise ValueError(...)`; a bare re-raise,
  NotImplementedError and the errors of the functions it calls are not counted).
"""
from __future__ import annotations

import ast
import sys
import textwrap

import pytest

from paths import REPO_ROOT
from reference_docs import documented

griffe = pytest.importorskip("griffe", reason="the docs extra reads docstrings with griffe (pip install -e '.[docs]')")
yaml = pytest.importorskip("yaml", reason="the docs extra (pip install -e '.[docs]')")
sys.path.insert(0, str(REPO_ROOT / "docs" / "_ext"))
from griffe_methods import BoundFunctionsAreMethods  # noqa: E402

def docstring_options() -> dict:
    """The Google parser's options mkdocs.yml gives mkdocstrings (so this test reads what the site shows)."""
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    handler = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)
    return handler["handlers"]["python"]["options"].get("docstring_options", {})


def load(name: str, where) -> griffe.Module:
    return griffe.load(name, search_paths=[str(where)], docstring_parser="google",
                       docstring_options=docstring_options(),
                       extensions=griffe.load_extensions(BoundFunctionsAreMethods()))


def _public_callables(pkg: griffe.Module):
    """(path, object) of each documented function and class, and of each class's public methods."""
    for module, names in documented().items():
        for name in sorted(names):
            obj = pkg[f"{module}.{name}".removeprefix("tinygrad_s2s.")]
            try:
                obj = obj.final_target if isinstance(obj, griffe.Alias) else obj
            except griffe.AliasResolutionError:
                continue                                    # an outside name (numpy's, typing's)
            if isinstance(obj, griffe.Function):
                yield f"{module}.{name}", obj
            elif isinstance(obj, griffe.Class):
                yield f"{module}.{name}", obj
                for mname, member in obj.all_members.items():
                    try:
                        member = member.final_target if isinstance(member, griffe.Alias) else member
                    except griffe.AliasResolutionError:
                        continue
                    if (isinstance(member, griffe.Function) and not mname.startswith("_")
                            and "property" not in member.labels and member.module.path.startswith("tinygrad_s2s")):
                        yield f"{module}.{name}.{mname}", member


def _sections(obj) -> dict[str, list]:
    found = {}
    for section in (obj.docstring.parsed if obj.docstring else []):
        found.setdefault(section.kind.value, []).extend(section.value if isinstance(section.value, list) else [])
    return found


def _body(func: griffe.Function) -> ast.AST | None:
    try:
        tree = ast.parse(textwrap.dedent(func.source))
    except (SyntaxError, OSError, ValueError):
        return None
    return tree.body[0] if tree.body and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _own_nodes(node):
    """The nodes of a function's body, not of the functions and classes defined inside it."""
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            yield child
            yield from _own_nodes(child)


def _returns_value(body) -> bool:
    return any(isinstance(n, ast.Return) and n.value is not None
               and not (isinstance(n.value, ast.Constant) and n.value.value is None) for n in _own_nodes(body))


def _yields(body) -> bool:
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(body))


def _raised(body) -> set[str]:
    names = set()
    for n in _own_nodes(body):
        if isinstance(n, ast.Raise) and n.exc is not None:
            exc = n.exc.func if isinstance(n.exc, ast.Call) else n.exc
            if isinstance(exc, ast.Name) and (exc.id.endswith(("Error", "Exception", "Warning", "Interrupt"))
                                              or exc.id in ("StopIteration", "KeyboardInterrupt")):
                names.add(exc.id)
            elif isinstance(exc, ast.Attribute) and exc.attr.endswith("Error"):
                names.add(exc.attr)
    return names - {"NotImplementedError"}


def problems(obj) -> list[str]:
    """What `obj`'s docstring lacks, as sentences; [] when it keeps the rule."""
    found = []
    doc_owner, params = obj, None
    if isinstance(obj, griffe.Class):
        init = obj.all_members.get("__init__")         # its own, or the one it inherits (LSTM: Recurrent's)
        init = init.final_target if isinstance(init, griffe.Alias) else init
        if isinstance(init, griffe.Function) and init.module.path.startswith("tinygrad_s2s"):
            params = init.parameters
            if init.docstring and "parameters" in _sections(init) and "parameters" not in _sections(obj):
                doc_owner = init
        func = None
    else:
        func, params = obj, obj.parameters
    if params is not None:
        wanted = [p.name for p in params if p.name not in ("self", "cls")]
        documented_args = [a.name.lstrip("*") for a in _sections(doc_owner).get("parameters", [])]
        if wanted and not documented_args:
            found.append(f"no Args section (parameters {wanted})")
        else:
            if missing := [w for w in wanted if w not in documented_args]:
                found.append(f"Args lacks {missing}")
            if extra := [a for a in documented_args if a not in wanted]:
                found.append(f"Args names {extra}, which the signature does not have")
    if func is not None and (body := _body(func)) is not None:
        secs = _sections(func)
        if _yields(body):
            if "yields" not in secs:
                found.append("yields but has no Yields section")
        elif _returns_value(body) and "returns" not in secs:
            found.append("returns a value but has no Returns section")
        documented_raises = {str(r.annotation).rsplit(".", 1)[-1] for r in secs.get("raises", [])}
        if missing := sorted(_raised(body) - documented_raises):
            found.append(f"raises {missing} but its Raises section does not name them")
    return found


PKG = load("tinygrad_s2s", REPO_ROOT)
CALLABLES = dict(_public_callables(PKG))


@pytest.mark.parametrize("path", sorted(CALLABLES))
def test_each_documented_callable_has_args_returns_and_raises(path):
    assert not problems(CALLABLES[path]), f"{path}: " + "; ".join(problems(CALLABLES[path]))


def test_the_reference_documents_the_callables_this_test_reads():
    assert {"tinygrad_s2s.ops.sum", "tinygrad_s2s.tensor.Tensor.exp", "tinygrad_s2s.nn.Linear.forward",
            "tinygrad_s2s.training.Trainer.fit", "tinygrad_s2s.optim.Adam"} <= set(CALLABLES)


def test_the_rule_sees_a_missing_section(tmp_path):
    def parsed(src):
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.py"
        path.write_text(textwrap.dedent(src), encoding="utf-8")
        return load(path.stem, tmp_path)["f"]
    bad = parsed('''
        def f(x, *shape, axis=None):
            """Do it.

            Args:
                x: a tensor.
                dims: stale.
            """
            if x is None:
                raise ValueError("x")
            return x
        ''')
    said = " | ".join(problems(bad))
    for expected in ("Args lacks ['shape', 'axis']", "Args names ['dims']", "no Returns section",
                     "raises ['ValueError']"):
        assert expected in said, said
    good = parsed('''
        def f(x, *shape, axis=None):
            """Do it.

            Args:
                x: a tensor.
                *shape: sizes.
                axis: where.

            Returns:
                The same.

            Raises:
                ValueError: x is None.
            """
            if x is None:
                raise ValueError("x")
            return x
        ''')
    assert problems(good) == []
