"""Composite ops with a hand-written backward, for speed. Each has a reference built from primitives
(same name + `_reference`); the test suite checks the two agree in forward and gradients, and graph
drawings can use the reference to show every primitive.

`lstm_sequence` runs each time step's elementwise work in compiled kernels where `backend.compiled`
offers them (Numba installed, TINYGRAD_S2S_COMPILED not 0, float32 or float64 NumPy arrays), with NumPy's
ufuncs otherwise; the GEMMs, the layouts below and the results' checks are the same on both paths."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, as_tensor, saved_input
from ..autograd.tensor_base import wrap
from ..backend import blas_threads, compiled
from ..backend import compiled_loops
from .elementwise import sigmoid, tanh
from .linalg import matmul
from .joins import split, stack, unstack
from .shape import expand_dims


class LSTMCell(Function):
    """One LSTM step from its pre-activation a = x@Wx + h@Wh + b (gates in the book's order f, g, i, o).
    Its fused backward runs on arrays; create_graph differentiates `reference` instead."""
    name = "lstm_cell"
    c_prev = saved_input(1)

    def forward(self, a, c_prev):
        n4 = a.shape[-1]
        if n4 % 4 or c_prev.shape[:-1] != a.shape[:-1] or c_prev.shape[-1] * 4 != n4:
            raise ValueError(f"pre-activation {a.shape} needs 4*H columns for cell state {c_prev.shape}")
        xp = backend.get_array_module(a)
        H = n4 // 4
        sig = xp.tanh(a * 0.5) * 0.5 + 0.5          # sigmoid of all four blocks in one pass
        f, i, o = sig[..., :H], sig[..., 2 * H:3 * H], sig[..., 3 * H:]
        g = xp.tanh(a[..., H:2 * H])
        c = f * c_prev + g * i
        tc = xp.tanh(c)
        self.saved = (f, g, i, o, tc)
        return o * tc, c

    def reference(self, a, c_prev):
        return lstm_cell_reference(a, c_prev)

    def onnx(self, g, a, c_prev):
        """ONNX: Split into the book's f, g, i, o, then the cell's Sigmoid/Tanh/Mul/Add."""
        f, gg, i, o = g.op("Split", a, g.ints([g.shape(c_prev)[-1]] * 4), axis=-1, outputs=4)
        c = g.op("Add", g.op("Mul", g.op("Sigmoid", f), c_prev), g.op("Mul", g.op("Tanh", gg), g.op("Sigmoid", i)))
        return g.op("Mul", g.op("Sigmoid", o), g.op("Tanh", c)), c

    def backward(self, gh, gc):
        f, g, i, o, tc = self.saved
        c_prev = self.c_prev
        xp = backend.get_array_module(gh)
        ds = gc + gh * o * (1 - tc * tc)
        da = xp.concatenate((ds * c_prev * f * (1 - f),
                             ds * i * (1 - g * g),
                             ds * g * i * (1 - i),
                             gh * tc * o * (1 - o)), axis=-1)
        return da, ds * f


def lstm_cell(a, c_prev):
    """One fused LSTM step from its gate pre-activations (what `nn.LSTMCell` calls).

    Args:
        a: the pre-activations `x @ Wx + h @ Wh + b`, (N, 4H), gates in the order f, g, i, o.
        c_prev: the previous cell state, (N, H).

    Returns:
        tuple[Tensor, Tensor]: `(h, c)`, the new hidden and cell states, (N, H) each.
    """
    return LSTMCell.apply(as_tensor(a), as_tensor(c_prev))


# Inside LSTMSequence the gates run in the order o, f, i, g: the three sigmoid gates are adjacent for
# the forward's one pass over them, and the three gates whose gradient scales ds (f, i, g) are adjacent
# for the backward's. _INNER picks the book's f, g, i, o blocks into that order; _BOOK picks them back.
_INNER = [3, 0, 2, 1]
_BOOK = [1, 3, 2, 0]


class LSTMSequence(Function):
    """A whole LSTM layer over time in one node: no per-step graph overhead, and each step's input,
    recurrent and bias terms come from one GEMM, as do the three weight gradients of all steps.

    Inputs: x (N, T, D), Wx (D, 4H), b (4H,) or one bias per sequence (N, 4H), h0, c0 (N, H),
    Wh (H, 4H), gates in the book's order f, g, i, o. Outputs: hs (N, T, H), h_T, c_T. With `zero_h0`
    / `zero_c0` (set by `lstm_sequence` for a start state given as None) the first step skips its
    products with the zero state. A per-sequence bias is how an input that is the same at every step
    (the peeky decoder's h) costs one product per sequence instead of one per step (nn.LSTM's
    `static`).

    Layout: row t of Z holds [h_{t-1}, x_t, 1] for every sequence, so that Z[t] @ [Wh; Wx; b] is the step's
    whole pre-activation (a separate x @ Wx for all steps has K = D, a GEMM shape that ran at half speed
    on the 2-core build VM of 2026-11-24, and then costs one more pass to add in), and Z^T @ da is every
    weight gradient at once. Everything else is gate-major, (4, ..., N, H), so every elementwise pass
    reads and writes whole contiguous (N, H) blocks: on column slices of an (N, 4H) array NumPy runs one
    short inner loop per row, which made a step's elementwise work cost as much as its GEMM. (A
    feature-major variant, one GEMM W^T @ Z[t]^T per step, ran 10-40% faster on two BLAS threads, but
    every step's h had to be written transposed into Z and the states transposed in and out: greedy
    decoding of 5,000 questions, one step per call, got 20-40% slower; measured on the 2-core AMD EPYC
    VM, 2026-11-30, commit 3724dbb, and left out.)

    Gates: W4 holds them in the order o, f, i, g with the sigmoid gates' weights halved (exact: a power
    of two), so that one tanh over a step's four blocks gives tanh(a_g) and tanh(a/2) for the others,
    and sigmoid(a) = tanh(a/2)/2 + 1/2 (which cannot overflow) is two more passes over three blocks.
    """
    name = "lstm_sequence"
    kept_views = (0,)                # hs is a view of the saved Z: changing it in place would change Z
    takes_missing_grads = True   # an encoder's unused hs or a decoder's unused last state costs nothing
    zero_h0 = zero_c0 = False

    def forward(self, x, Wx, b, h0, c0, Wh):
        N, T, D = x.shape
        H4 = Wh.shape[-1]
        H = H4 // 4
        if (H4 % 4 or Wh.shape != (H, H4) or Wx.shape != (D, H4) or b.shape not in ((H4,), (N, H4))
                or h0.shape != (N, H) or c0.shape != (N, H)):
            raise ValueError(f"x {x.shape} needs Wx of shape {(D, H4)}, b of shape {(H4,)} or {(N, H4)}, h0 and c0 of "
                             f"shape {(N, H)} and Wh of shape {(H, H4)} (got Wx {Wx.shape}, b {b.shape}, "
                             f"h0 {h0.shape}, c0 {c0.shape}, Wh {Wh.shape})")
        xp = backend.get_array_module(x)
        dt = x.dtype
        keep = bool(self.needs_grad)        # under no_grad only hs is kept: no per-step history
        Z = xp.empty((T + 1, N, H + D + 1), dt)     # Z[t + 1, :, :H] is step t's h
        Z[0, :, :H] = h0
        Z[:T, :, H:H + D] = x.transpose(1, 0, 2)
        Z[:T, :, H + D] = 1
        Z[T, :, H:] = 0                     # no step reads it; defined all the same
        W4 = xp.empty((4, H + D + 1, H), dt)
        W4[:, :H] = Wh.reshape(H, 4, H).transpose(1, 0, 2)[_INNER]
        W4[:, H:H + D] = Wx.reshape(D, 4, H).transpose(1, 0, 2)[_INNER]
        row_bias = None
        if b.ndim == 1:
            W4[:, H + D] = b.reshape(4, H)[_INNER]
        else:                               # added after each step's GEMM, in the GEMM's layout
            W4[:, H + D] = 0
            row_bias = b.reshape(N, 4, H).transpose(1, 0, 2)[_INNER]
            row_bias[:3] *= 0.5
        W4[:3] *= 0.5
        gates = xp.empty((4, T if keep else 1, N, H), dt)  # o, f, i, g after the nonlinearities
        cs = xp.empty((T + 1 if keep else 2, N, H), dt)   # cs[t + 1] is step t's c
        tcs = xp.empty((T if keep else 1, N, H), dt)
        gi = xp.empty((N, H), dt)
        cs[0] = c0
        zero_h0, zero_c0 = self.zero_h0, self.zero_c0
        kernels = compiled.kernels(xp, dt)

        def gemm(t, g):
            if t or not zero_h0:
                xp.matmul(Z[t], W4, out=g)
            else:                           # the zero start state: only x and the bias
                xp.matmul(Z[0, :, H:], W4[:, H:], out=g)

        def steps():                        # writes gates, cs[1:], tcs and Z's h from the rest: rerunnable
            if kernels is not None:
                return compiled_loops.lstm_forward(kernels, gemm, Z, gates, cs, tcs, row_bias, zero_c0, keep)
            c_prev = cs[0]
            for t in range(T):
                g = gates[:, t if keep else 0]
                gemm(t, g)
                if row_bias is not None:
                    g += row_bias
                xp.tanh(g, out=g)
                sig = g[:3]
                sig *= 0.5
                sig += 0.5
                c = cs[t + 1 if keep else (t + 1) % 2]
                if t or not zero_c0:
                    xp.multiply(g[1], c_prev, out=c)
                    xp.multiply(g[3], g[2], out=gi)
                    c += gi
                else:
                    xp.multiply(g[3], g[2], out=c)
                tc = tcs[t if keep else 0]
                xp.tanh(c, out=tc)
                xp.multiply(g[0], tc, out=Z[t + 1, :, :H])
                c_prev = c
            return Z[1:, :, :H], c_prev

        c_prev = blas_threads.run(("lstm_sequence", N, H + D + 1, H, keep), T, xp, steps)[1]
        if keep:
            self.saved = (Z, W4, cs, tcs, gates, row_bias is not None)
        return Z[1:, :, :H].transpose(1, 0, 2), Z[T, :, :H].copy(), c_prev.copy()

    def reference(self, x, Wx, b, h0, c0, Wh):
        return lstm_sequence_reference(x, Wx, b, h0, c0, Wh)

    def onnx(self, g, x, Wx, b, h0, c0, Wh):
        """ONNX: one LSTM node (opset 7's, default activations), exactly this layer:
        ONNX's gates are i, o, f, c in W (1, 4H, D), R (1, 4H, H) and B (1, 8H) = [Wb, Rb]; ours are
        the book's f, g, i, o in the columns of Wx (D, 4H), Wh (H, 4H) and b (4H,), so ONNX's blocks
        are ours [2, 3, 0, 1] (`ONNX_LSTM_GATES`), transposed; Rb is zero. The cell is the same: c =
        f*c_prev + i*g, h = o*tanh(c). A start state given as None is ONNX's omitted initial_h/c (zeros
        of whatever batch comes). A bias per sequence (N, 4H), which ONNX's B cannot hold, enters as
        4H more input features equal to it at every step, multiplied by an identity block of W.
        X is time-major (T, N, D) (onnxruntime has no batch-first LSTM) and Y (T, 1, N, H). In float64
        (onnxruntime runs LSTM in float32 only) the reference composition is written instead."""
        if g.dtype(x) != np.float32:
            return NotImplemented
        H = g.shape(Wh)[0]
        X = g.op("Transpose", x, perm=[1, 0, 2])
        W = _onnx_gate_blocks(g, Wx, ONNX_LSTM_GATES)
        if len(g.shape(b)) == 2:              # (N, 4H): fed as inputs through an identity
            bias = _onnx_gate_blocks(g, b, ONNX_LSTM_GATES, transpose=False)
            steps = g.op("Concat", g.op("Shape", X, start=0, end=1), g.ints([1, 1]), axis=0)
            X = g.op("Concat", X, g.op("Expand", g.op("Unsqueeze", bias, g.ints([0])), steps), axis=2)
            W = g.op("Concat", W, g.const(np.eye(4 * H, dtype=g.dtype(Wx))[None]), axis=2)
            B = g.const(np.zeros((1, 8 * H), g.dtype(Wx)))
        else:
            B = g.op("Concat", _onnx_gate_blocks(g, b, ONNX_LSTM_GATES, transpose=False),
                     g.const(np.zeros(4 * H, g.dtype(Wx))), axis=0)
            B = g.op("Unsqueeze", B, g.ints([0]))
        start = [None if zero else g.op("Unsqueeze", s, g.ints([0]))
                 for zero, s in ((self.zero_h0, h0), (self.zero_c0, c0))]
        Y, Y_h, Y_c = g.op("LSTM", X, W, _onnx_gate_blocks(g, Wh, ONNX_LSTM_GATES), B, None, *start,
                           hidden_size=H, outputs=3)
        hs = g.op("Transpose", g.op("Squeeze", Y, g.ints([1])), perm=[1, 0, 2])
        return hs, g.op("Squeeze", Y_h, g.ints([0])), g.op("Squeeze", Y_c, g.ints([0]))

    def backward(self, ghs, gh_last, gc_last):
        Z, W4, cs, tcs, gates, b_rows = self.saved
        xp = backend.get_array_module(Z)
        T, N, H = tcs.shape
        D = Z.shape[2] - H - 1
        dt = Z.dtype
        need_x, need_Wx, need_b, need_h0, need_c0, need_Wh = self.needs_grad
        # da_t @ [Wh; Wx]^T gives dh and dx of a step in one GEMM: columns :H and H:
        WT = xp.ascontiguousarray(W4[:, :H + D].transpose(0, 2, 1))
        WT[:3] *= 2                             # undo the forward's halving (exact)
        kernels = compiled.kernels(xp, dt)
        if kernels is not None:
            def steps():
                return compiled_loops.lstm_backward(kernels, WT, gates, cs, tcs, ghs, gh_last, gc_last, self.needs_grad)
        else:
            steps = self._numpy_steps(WT, ghs, gh_last, gc_last)
        da_all, gx, dh, dc = blas_threads.run(("lstm_sequence.backward", N, H + D + 1, H, need_x, need_h0,
                                                need_c0), T, xp, steps)
        gWx = gb = gWh = None
        if need_Wh or need_Wx or (need_b and not b_rows):   # Z^T @ da: rows of Wh, then Wx, then b
            s = int(self.zero_h0)               # a zero start state adds nothing to Wh's gradient
            gW = blas_threads.run(("lstm_sequence.weights", (T - s) * N, H + D + 1, H), 1, xp,
                                  lambda: xp.matmul(Z[s:T].reshape((T - s) * N, H + D + 1).T,
                                                    da_all[:, s:].reshape(4, (T - s) * N, H)))
            if s:
                gW[:, H:] += xp.matmul(Z[0, :, H:].T, da_all[:, 0])
            gW = gW[_BOOK]
            gWh = _from_gate_major(gW[:, :H]) if need_Wh else None
            gWx = _from_gate_major(gW[:, H:H + D]) if need_Wx else None
            gb = gW[:, H + D].reshape(4 * H) if need_b and not b_rows else None
        if need_b and b_rows:                   # a bias per sequence: the sum over the steps
            gb = da_all.sum(axis=1)[_BOOK].transpose(1, 0, 2).reshape(N, 4 * H)
        gx = None if gx is None else gx.transpose(1, 0, 2)
        return (gx, gWx, gb, dh if need_h0 else None, dc if need_c0 else None, gWh)

    def _numpy_steps(self, WT, ghs, gh_last, gc_last):
        """The backward's time loop on NumPy ufuncs (the path without compiled kernels)."""
        Z, _, cs, tcs, gates, _ = self.saved
        xp = backend.get_array_module(Z)
        T, N, H = tcs.shape
        D = Z.shape[2] - H - 1
        dt = Z.dtype
        o, f, i, gg = gates
        need_x, _, _, need_h0, need_c0, _ = self.needs_grad
        # every factor that does not depend on the incoming gradient, for all steps at once, written
        # in place (no temporaries): da_f,i,g = ds * k_fig, da_o = dh * k_o, ds = dc + dh * k_s
        k_fig = xp.empty((T, 3, N, H), dt)
        k_f, k_i, k_g = k_fig[:, 0], k_fig[:, 1], k_fig[:, 2]
        xp.subtract(1, f, out=k_f)              # c_prev * f * (1 - f)
        k_f *= f
        k_f *= cs[:-1]
        xp.multiply(gg, gg, out=k_g)            # i * (1 - g^2)
        xp.subtract(1, k_g, out=k_g)
        k_g *= i
        xp.subtract(1, i, out=k_i)              # g * i * (1 - i)
        k_i *= i
        k_i *= gg
        k_o = xp.subtract(1, o)                 # tanh(c) * o * (1 - o)
        k_o *= o
        k_o *= tcs
        k_s = xp.multiply(tcs, tcs)             # o * (1 - tanh(c)^2)
        xp.subtract(1, k_s, out=k_s)
        k_s *= o
        da_all = xp.empty((4, T, N, H), dt)     # gate-major, so each step writes whole blocks
        per_gate = xp.empty((4, N, H + D), dt)
        gx = xp.empty((T, N, D), dt) if need_x else None

        def steps():                            # writes da_all, gx, dh and dc from the rest: rerunnable
            # dh is this loop's own buffer, written in place; a missing gradient (None) counts as zeros
            if ghs is None:
                dh = xp.zeros((N, H), dt) if gh_last is None else gh_last.copy()
            else:
                dh = ghs[:, T - 1].copy() if gh_last is None else gh_last + ghs[:, T - 1]
            dc = gc_last
            ds = xp.empty_like(dh)
            for t in range(T - 1, -1, -1):
                if t < T - 1 and ghs is not None:
                    dh += ghs[:, t]
                xp.multiply(dh, k_s[t], out=ds)
                if dc is not None:
                    ds += dc
                da = da_all[:, t]
                xp.multiply(ds, k_fig[t], out=da[1:])
                xp.multiply(dh, k_o[t], out=da[0])
                if t > 0 or need_c0:
                    dc = ds * f[t]
                want_h = t > 0 or need_h0       # the encoder's zero start state needs no gradient
                cols = slice(0 if want_h else H, H + D if need_x else H)
                if cols.start == cols.stop:
                    continue
                pg = per_gate[:, :, cols]
                xp.matmul(da, WT[:, :, cols], out=pg)
                xp.add(pg[:2], pg[2:], out=pg[:2])  # the sum over gates: faster than sum(axis=0)
                if want_h:
                    xp.add(per_gate[0, :, :H], per_gate[1, :, :H], out=dh)
                if need_x:
                    xp.add(per_gate[0, :, H:], per_gate[1, :, H:], out=gx[t])
            return da_all, gx, dh, dc
        return steps


ONNX_LSTM_GATES = (2, 3, 0, 1)
"""ONNX's LSTM gate i, o, f, c is our (the book's f, g, i, o) gate number 2, 3, 0, 1."""


def _onnx_gate_blocks(g, W, order, negate=(), transpose=True):
    """ONNX's layout of gate weights W (K, nH) (or a bias (nH,), or one per sequence (N, nH)): the
    column blocks put in ONNX's gate `order` (indices of ours), those listed in `negate` negated, then
    for weights transposed to (1, nH, K)."""
    parts = g.op("Split", W, g.ints([g.shape(W)[-1] // len(order)] * len(order)), axis=-1, outputs=len(order))
    W = g.op("Concat", *(g.op("Neg", parts[i]) if i in negate else parts[i] for i in order), axis=-1)
    return g.op("Unsqueeze", g.op("Transpose", W, perm=[1, 0]), g.ints([0])) if transpose else W


def _from_gate_major(W4):
    """(4, K, H) gate blocks -> (K, 4H), the layout of the weights."""
    n, K, H = W4.shape
    return W4.transpose(1, 0, 2).reshape(K, n * H)


def lstm_sequence(x, Wx, b, h0, c0, Wh):
    """A whole LSTM layer over every time step as one op (what `nn.LSTM` calls).

    Gates in the book's order f, g, i, o along the last axis of `Wx`, `Wh` and `b`:
    `c_t = sigmoid(f) * c_{t-1} + tanh(g) * sigmoid(i)`, `h_t = sigmoid(o) * tanh(c_t)`. Its gradient
    is checked against `lstm_sequence_reference`, the same layer from primitives.

    Args:
        x: the inputs, (N, T, D).
        Wx: input weights, (D, 4H).
        b: bias, (4H,), or (N, 4H) for a bias of each sequence's own.
        h0: the start hidden state (N, H), or None for zeros (the first step then skips its product).
        c0: the start cell state (N, H), or None for zeros.
        Wh: hidden weights, (H, 4H).

    Returns:
        tuple[Tensor, Tensor, Tensor]: `(hs, h_T, c_T)`: every step's hidden state (N, T, H), and the
            last hidden and cell states (N, H).
    """
    x, Wx, b, Wh = (as_tensor(t) for t in (x, Wx, b, Wh))
    h, c = (_zero_state(x, Wh) if s is None else as_tensor(s) for s in (h0, c0))
    return LSTMSequence.apply(x, Wx, b, h, c, Wh, zero_h0=h0 is None, zero_c0=c0 is None)


def _zero_state(x, Wh):
    """Zeros (N, H) on x's device in x's dtype, for a start state given as None."""
    xp = backend.get_array_module(x.data)
    shape = (x.shape[0] if x.ndim else 0, Wh.shape[0] if Wh.ndim else 0)
    return wrap(xp.zeros(shape, x.dtype), False)


def lstm_sequence_reference(x, Wx, b, h0, c0, Wh):
    """The same layer from primitives: one matmul for every step's input projection, then step by
    step unstack, matmul, split, sigmoid, tanh..."""
    x, Wx, b, Wh = (as_tensor(t) for t in (x, Wx, b, Wh))
    xw = matmul(x, Wx) + (expand_dims(b, 1) if b.ndim == 2 else b)   # (N, 4H): one per sequence
    h, c = (_zero_state(x, Wh) if s is None else s for s in (h0, c0))
    hs = []
    for xw_t in unstack(xw, axis=1):
        h, c = lstm_cell_reference(xw_t + matmul(h, Wh), c)
        hs.append(h)
    return stack(hs, axis=1), h, c


def lstm_cell_reference(a, c_prev):
    """The same step from primitives: split, sigmoid, tanh, mul, add."""
    f, g, i, o = split(a, 4, axis=-1)
    c = sigmoid(f) * c_prev + tanh(g) * sigmoid(i)
    return sigmoid(o) * tanh(c), c
