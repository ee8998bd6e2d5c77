"""`Builder`: the graph an export writes, as plain Python (nodes, constants, the traced values' shapes
and dtypes), so that the ops layer can lower each op into it without importing onnx. `export.py`
turns it into an ONNX model.

An op's `onnx(self, g, *inputs)` method (see tinygrad_s2s/ops/base.py) receives a Builder `g` and the
names of its input values and calls `g.op("Add", a, b)`, `g.const(array)`, `g.ints([0, 1])`,
`g.array(index)` and `g.cast(x, dtype)`; it may ask `g.shape(x)` / `g.dtype(x)` of its inputs and
`g.out_shape()` / `g.out_dtype()` of the outputs the traced op made.
"""
from __future__ import annotations

import itertools
import re

import numpy as np

__all__ = ["Builder"]


class Builder:
    """Nodes `(op_type, inputs, outputs, attributes, name)` in order, `initializers` (name -> array) and
    the shape and dtype of every traced value. `node` is the traced op being lowered (a trace.Node):
    the names of the nodes made for it start with its module path and op, and its outputs' shapes and
    dtypes are what `out_shape` / `out_dtype` answer.

    Args:
        array_inputs: `id(array) -> input name` for the traced function's inputs (keyed by the id of each
            input tensor's backend array), so `array` names an input rather than copying its data.
    """

    def __init__(self, array_inputs: dict | None = None):
        self.nodes: list[tuple] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.meta: dict[str, tuple] = {}         # value name -> (shape, dtype), for the traced values
        self.array_inputs = dict(array_inputs or {})   # id(an input's array) -> the input's name
        self.warnings: list[str] = []
        self.node = None
        self._count = itertools.count()
        self._consts: dict = {}

    # ---- what lowerings call
    def op(self, op_type: str, *inputs, outputs: int = 1, **attrs):
        """Add one ONNX node, named after the traced op being lowered.

        Args:
            op_type: the ONNX operator ("Add", "MatMul", "Gather").
            *inputs: value names; None for an omitted optional input.
            outputs: how many outputs the node has.
            **attrs: the node's attributes (a NumPy dtype is written as ONNX's tensor type).

        Returns:
            The name of its output when `outputs` is 1, else a tuple of `outputs` names.
        """
        k = next(self._count)
        base = self._prefix() + f"{op_type}_{k}"
        names = tuple(base if outputs == 1 else f"{base}_{i}" for i in range(outputs))
        self.nodes.append((op_type, ["" if i is None else i for i in inputs], list(names), attrs, base))
        return names[0] if outputs == 1 else names

    def const(self, value, dtype=None) -> str:
        """A constant (an initializer), shared by every use of equal small values (<= 64 elements).

        Args:
            value: an array or anything `np.asarray` takes.
            dtype: its dtype (None: NumPy's for `value`).

        Returns:
            The initializer's name.
        """
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = f"const_{next(self._count)}"
        self.add_initializer(name, arr)
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values) -> str:
        """A 1-d int64 constant (axes, shapes, split sizes).

        Args:
            values: integers.

        Returns:
            The constant's name.
        """
        return self.const(np.asarray([int(v) for v in values], dtype=np.int64))

    def array(self, arr) -> str:
        """An array an op took as a parameter (ids, a mask, indices).

        Args:
            arr: the array itself (matched by identity against the traced function's inputs).

        Returns:
            The name of the function's input whose data it is, else of a new constant holding it.
        """
        name = self.array_inputs.get(id(arr))
        return name if name is not None else self.const(np.asarray(arr))

    def cast(self, x: str, dtype) -> str:
        """x as `dtype` (a Cast node only where its dtype differs).

        Args:
            x: a value name.
            dtype: the wanted NumPy dtype.

        Returns:
            `x` itself when it has that dtype already, else the Cast node's output.
        """
        return x if self.dtype(x) == np.dtype(dtype) else self.op("Cast", x, to=np.dtype(dtype))

    def shape(self, x: str) -> tuple:
        """The traced shape of value x, an input of the op being lowered (KeyError for other values).

        Args:
            x: a value name.

        Returns:
            Its shape, a tuple of ints.
        """
        return self._meta(x)[0]

    def dtype(self, x: str) -> np.dtype:
        """The traced dtype of value x, an input of the op being lowered (KeyError for other values).

        Args:
            x: a value name.

        Returns:
            Its NumPy dtype.
        """
        return self._meta(x)[1]

    def out_shapes(self) -> list:
        """The shapes of every output of the traced op being lowered.

        Returns:
            One tuple per output, in order.
        """
        return [tuple(t.shape) for t in self.node.outputs]

    def out_shape(self, i: int = 0) -> tuple:
        """The shape of an output of the traced op being lowered.

        Args:
            i: which output.

        Returns:
            Its shape, a tuple of ints.
        """
        return tuple(self.node.outputs[i].shape)

    def out_dtype(self, i: int = 0) -> np.dtype:
        """The dtype of an output of the traced op being lowered.

        Args:
            i: which output.

        Returns:
            Its NumPy dtype.
        """
        return self.node.outputs[i].dtype

    def warn(self, message: str) -> None:
        """A warning about the op being lowered; the exporter issues it naming the op, module and line.

        Args:
            message: what is wrong, without the op's name (it is prefixed).
        """
        self.warnings.append(f"{self.node.describe()}: {message}" if self.node is not None else message)

    # ---- what the exporter calls
    def add_initializer(self, name: str, arr: np.ndarray) -> None:
        """Store `arr` as the initializer `name` (a parameter, a buffer, a constant), replacing one of that name.

        Args:
            name: the value name it gets in the graph.
            arr: its data.
        """
        self.initializers[name] = arr
        self.meta[name] = (arr.shape, arr.dtype)

    def _meta(self, x):
        try:
            return self.meta[x]
        except KeyError:
            raise KeyError(f"the shape of {x!r} is known only for an op's own inputs") from None

    def _prefix(self) -> str:
        if self.node is None:
            return ""
        module = re.sub(r"[^A-Za-z0-9_.]", "_", self.node.module) or "top"
        return f"{module}/{self.node.fn.op}/"
