"""Module and Parameter: containers that find their parameters, name their scopes and move devices.

Kept whole: ModuleList and Sequential work on Module's private registries and scope names, and the
docstrings of their PyTorch-named methods (Args/Returns for the reference) are a third of the module.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import backend
from ..tensor import Tensor
from ..autograd import module_scope, get_default_dtype


class Parameter(Tensor):
    """A Tensor that a Module registers and an optimizer updates (`requires_grad=True`).

    Args:
        data: an array, a Tensor, a nested list or a number (an array is shared, not copied, unless
            the dtype changes).
        dtype: a NumPy dtype; default: float data takes the default float dtype (float32), other
            data keeps its own.
        name: a label that the graph drawings show (the module path is recorded anyway).
    """
    __slots__ = ()

    def __init__(self, data, dtype=None, name=None):
        if dtype is None:
            arr = data.data if isinstance(data, Tensor) else data
            kind = getattr(arr, "dtype", np.asarray(arr).dtype).kind
            dtype = get_default_dtype() if kind == "f" else None
        super().__init__(data, requires_grad=True, dtype=dtype, name=name)

    is_param = True


class Module:
    """Base class of every layer and model, with the names PyTorch users know.

    Parameters and sub-modules set as attributes are registered by name; calling the module runs
    `forward` inside its module scope, so every node it creates records a path like
    `decoder.attention.weight` (used by graph drawings and error messages).
    """

    def __init__(self):
        d = self.__dict__
        d["_params"], d["_modules"], d["_buffers"] = OrderedDict(), OrderedDict(), OrderedDict()
        d["training"], d["_name"] = True, ""

    def __setattr__(self, name, value):
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before setting attributes")
        for reg in (self._params, self._modules, self._buffers):
            reg.pop(name, None)
        if isinstance(value, Parameter):
            self._params[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            if "." in name:       # a path 'a.b' is module b inside a: this one would draw as two
                raise ValueError(f"{type(self).__name__}: sub-module name {name!r} contains '.', which "
                                 "separates the levels of a module path (decoder.attention); pick a name "
                                 "without it")
            self._modules[name] = value
            value._set_scope_name(name)
        object.__setattr__(self, name, value)

    def _set_scope_name(self, name: str) -> None:
        """The name this module pushes on the module path when called."""
        self.__dict__["_name"] = name

    def register_buffer(self, name: str, array) -> None:
        """Register a constant array (e.g. positional encodings) that moves with `to()` but is not trained.

        Float data takes the default float dtype, so a float64 table does not promote a float32 model.
        It is not in `parameters()` or `state_dict()`.

        Args:
            name: the attribute name it is reachable under (`self.<name>`).
            array: an array, a Tensor or a nested list.
        """
        t = Tensor(array)
        if t.dtype.kind == "f":       # a float64 table must not promote a float32 model
            t.data = t.data.astype(get_default_dtype(), copy=False)
        self._buffers[name] = t
        object.__setattr__(self, name, t)

    def __call__(self, *args, **kwargs):
        with module_scope(self._name):
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        """The computation; subclasses define it, and calling the module (`m(x)`) runs it in its module scope.

        Args:
            *args: what the subclass takes (tensors, usually).
            **kwargs: what the subclass takes.

        Returns:
            What the subclass returns (a Tensor, usually).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ---- traversal
    def named_modules(self, prefix=""):
        """Walk this module and every sub-module, depth first, this one first.

        Args:
            prefix: the name to give this module (and to put before the sub-modules' names).

        Yields:
            tuple[str, Module]: `(dotted name, module)`; this module's name is `prefix`.
        """
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        """This module and every sub-module, depth first.

        Returns:
            list[Module]: as `named_modules()` orders them.
        """
        return [m for _, m in self.named_modules()]

    def children(self):
        """The direct sub-modules, in the order they were set.

        Returns:
            list[Module]: one level down only.
        """
        return list(self._modules.values())

    def named_parameters(self, prefix=""):
        """Every parameter of this module and its sub-modules, each once (shared ones under their first name).

        Args:
            prefix: a name to put before every parameter's dotted name.

        Yields:
            tuple[str, Parameter]: `(dotted name, parameter)`, e.g. `("decoder.affine.weight", W)`.
        """
        seen = set()
        for mpath, m in self.named_modules(prefix):
            for name, p in m._params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mpath}.{name}" if mpath else name), p

    def parameters(self):
        """Every parameter, each once, in registration order (what an optimizer takes).

        Returns:
            list[Parameter]: as `named_parameters()` orders them.
        """
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """The number of trainable numbers: the sum of the parameters' sizes.

        Returns:
            int: e.g. 1,015,981 for deep_lstm (4+4 LSTM layers) on addition.
        """
        return int(sum(p.size for p in self.parameters()))

    # ---- modes and grads
    def train(self, mode: bool = True):
        """Set training mode (dropout active) on this module and every sub-module.

        Args:
            mode: True for training (the default), False for evaluation.

        Returns:
            Module: this module, for chaining.
        """
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        """Set evaluation mode (dropout off) on this module and every sub-module: `train(False)`.

        Returns:
            Module: this module, for chaining.
        """
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to None."""
        for p in self.parameters():
            p.grad = None

    # ---- state
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """A host copy of every parameter by dotted name (what `tg.save` writes).

        Returns:
            OrderedDict[str, numpy.ndarray]: name -> a copy of the parameter's data, on the CPU.
        """
        return OrderedDict((n, backend.to_numpy(p.data).copy()) for n, p in self.named_parameters())

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy arrays into the parameters (each keeps its dtype and device; a version bump).

        Args:
            state: name -> array (or Tensor), as `state_dict()` or `tg.load` return.
            strict: every parameter must be in `state` and nothing else (the default); False loads
                the names both have.

        Raises:
            ValueError: with `strict`, names missing or unexpected; in any case, an array whose shape
                differs from its parameter's (a PyTorch `Linear` weight is (out, in): transpose it).
        """
        own = dict(self.named_parameters())
        missing = [n for n in own if n not in state]
        unexpected = [n for n in state if n not in own]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict({type(self).__name__}): missing {missing}, "
                             f"unexpected {unexpected}")
        bad = [f"{n}: checkpoint {tuple(np.shape(state[n]))} vs model {p.shape}"
               for n, p in own.items() if n in state and tuple(np.shape(state[n])) != p.shape]
        if bad:
            raise ValueError(f"load_state_dict({type(self).__name__}): shape mismatch: " + "; ".join(bad))
        for n, p in own.items():
            if n in state:
                arr = state[n].data if isinstance(state[n], Tensor) else state[n]
                p.data = backend.to_device(backend.to_numpy(arr).astype(p.dtype), p.device)

    def to(self, target):
        """Move every parameter and buffer to a device, or convert the float ones to another float dtype.

        In place, as `torch.nn.Module.to`; every `.grad` is dropped (it would be on the old device).

        Args:
            target: `"cpu"` or `"cuda"`, or a float NumPy dtype (`np.float32`, `np.float64`).

        Returns:
            Module: this module, for chaining.

        Raises:
            TypeError: a dtype that is not floating point.
        """
        if not isinstance(target, str) and np.dtype(target).kind != "f":
            raise TypeError(f"{type(self).__name__}.to({np.dtype(target).name}): parameters convert to a floating "
                            "point dtype only (np.float32, np.float64); an integer, boolean or complex one would "
                            "lose their values or their gradients")
        for m in self.modules():
            for t in list(m._params.values()) + list(m._buffers.values()):
                if isinstance(target, str):
                    t.data = backend.to_device(t.data, target)
                elif t.dtype.kind == "f":
                    t.data = t.data.astype(target)
                if t.grad is not None:
                    t.grad = None
        return self

    @property
    def device(self) -> str:
        """Where the parameters live: `"cpu"` or `"cuda"` (the first parameter's; `"cpu"` without any)."""
        ps = self.parameters()
        return ps[0].device if ps else "cpu"

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's `repr` (a layer's sizes); subclasses override it.

        Returns:
            str: empty for a plain Module.
        """
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            lines.append("  (" + name + "): " + repr(m).replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else lines[0] + ")"


class ModuleList(Module):
    """A list of sub-modules registered as `0`, `1`, ... (`torch.nn.ModuleList`: stacked layers).

    Index it, slice it (a ModuleList of the same modules), iterate it, `len` it; each item is called
    directly (`for layer in self.layers: x = layer(x)`), and its nodes record `layers.0`, ...

    Args:
        modules: an iterable of Modules to append; default none.
    """

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        """Register `module` under the next index.

        Args:
            module: a Module.

        Returns:
            ModuleList: this list, for chaining.
        """
        index = str(len(self._modules))
        setattr(self, index, module)
        module._set_scope_name(f"{self._name}.{index}" if self._name else index)
        return self

    def _set_scope_name(self, name: str) -> None:
        # the items are called directly (`for layer in self.layers: layer(x)`), never through the
        # list, so each carries the list's name in its own: its nodes record 'layers.0', not '0'
        self.__dict__["_name"] = name
        for index, m in self._modules.items():
            m._set_scope_name(f"{name}.{index}" if name else index)

    def extend(self, modules) -> ModuleList:
        """Append each module of `modules` in order.

        Args:
            modules: an iterable of Modules.

        Returns:
            ModuleList: this list, for chaining.
        """
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        items = list(self._modules.values())[i]
        if not isinstance(i, slice):
            return items
        part = ModuleList()        # as torch: a slice is a ModuleList of the same modules, which keep
        for index, m in enumerate(items):     # their names (their scope is where they are registered)
            part._modules[str(index)] = m
            object.__setattr__(part, str(index), m)
        return part

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(Module):
    """`torch.nn.Sequential`: sub-modules called in order, each on what the one before returned.

    State dict keys are `0.weight`, `0.bias`, ... (or the names of an OrderedDict's keys).

    Args:
        *modules: Modules, or one `OrderedDict` of name -> Module.

    Raises:
        TypeError: an item is not a Module (wrap a function in a Module whose forward calls it).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            named = list(modules[0].items())
        else:
            named = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in named:
            self._add(name, m)

    def _add(self, name, m) -> None:
        if not isinstance(m, Module):
            raise TypeError(f"Sequential: item {name!r} is a {type(m).__name__}, not a Module (wrap a function in "
                            "a Module whose forward calls it)")
        setattr(self, name, m)

    def append(self, module: Module) -> Sequential:
        """Register `module` at the end, under the next index.

        Args:
            module: a Module.

        Returns:
            Sequential: this container, for chaining.

        Raises:
            TypeError: `module` is not a Module.
        """
        self._add(str(len(self._modules)), module)
        return self

    def forward(self, x):
        """Call each module in order on what the one before returned.

        Args:
            x: the input of the first module.

        Returns:
            What the last module returns (`x` itself when empty).
        """
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        items = list(self._modules.items())[i]
        return Sequential(OrderedDict(items)) if isinstance(i, slice) else items[1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
