"""Griffe extension for the reference: a class attribute bound to a function (`exp = exp` in `Tensor`'s
body, `view = reshape`) is a method, shown with that function's own signature and docstring; and a
method that overrides a documented one without a docstring of its own (`Linear.extra_repr`) shows the
overridden one's, as Python's `inspect.getdoc` does.

The static reader sees such a line as a plain attribute (`exp = exp`, no signature, no text); Python
sees a method, since a function stored in a class body binds like one. This turns each into a copy of
the function it names (resolved through the module's imports), so `Tensor.exp` renders as
`exp(x)` with `tg.exp`'s Args/Returns: the first parameter is the tensor the method is called on.
Loaded by mkdocs.yml (mkdocstrings' `extensions`) and by tests/unit/test_reference_docs.py."""
from __future__ import annotations

import griffe


def bound_function(cls: griffe.Class, attr: griffe.Attribute) -> griffe.Function | None:
    """The function a class attribute names (`exp = exp`, `view = reshape`), or None."""
    if not isinstance(attr.value, griffe.ExprName):
        return None
    module = cls.module
    target = module.members.get(attr.value.name) or cls.members.get(attr.value.name)
    try:
        target = target.final_target if isinstance(target, griffe.Alias) else target
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return target if isinstance(target, griffe.Function) else None


def as_method(cls: griffe.Class, name: str, func: griffe.Function, lineno: int | None) -> griffe.Function:
    """A copy of `func` under `name` in `cls` (its signature, return annotation and docstring)."""
    method = griffe.Function(name, lineno=lineno, endlineno=lineno, parameters=func.parameters,
                             returns=func.returns, decorators=func.decorators, parent=cls,
                             docstring=griffe.Docstring(func.docstring.value, lineno=func.docstring.lineno,
                                                        parser=func.docstring.parser,
                                                        parser_options=func.docstring.parser_options)
                             if func.docstring else None)
    method.labels |= {"method"}
    return method


class BoundFunctionsAreMethods(griffe.Extension):
    """Replaces each class attribute bound to a function by a method copy of that function, and gives
    an undocumented override the docstring of the method it overrides."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        classes = list(_classes(pkg))
        for cls in classes:
            for name, member in list(cls.members.items()):
                if isinstance(member, griffe.Attribute):
                    func = bound_function(cls, member)
                    if func is not None:
                        cls.set_member(name, as_method(cls, name, func, member.lineno))
        for cls in classes:
            for name, member in cls.members.items():
                if isinstance(member, griffe.Function) and member.docstring is None and not name.startswith("_"):
                    base = inherited_docstring(cls, name, [p.name for p in member.parameters])
                    if base is not None:
                        member.docstring = griffe.Docstring(base.value, lineno=base.lineno, parser=base.parser,
                                                            parser_options=base.parser_options, parent=member)


def inherited_docstring(cls: griffe.Class, name: str, params: list[str]) -> griffe.Docstring | None:
    """The docstring of the nearest base class's `name` that has one and the same parameter names (an
    override that takes other arguments, `forward(self, x)` over `forward(self, *args)`, needs its own);
    None when there is none in the package."""
    try:
        bases = cls.mro()
    except (ValueError, griffe.AliasResolutionError):
        return None
    for base in bases:
        member = base.members.get(name)
        if isinstance(member, griffe.Function) and member.docstring is not None:
            return member.docstring if [p.name for p in member.parameters] == params else None
    return None


def _classes(obj):
    for member in obj.members.values():
        if isinstance(member, griffe.Alias):
            continue
        if isinstance(member, griffe.Class):
            yield member
            yield from _classes(member)
        elif isinstance(member, griffe.Module):
            yield from _classes(member)
