"""Composite ops with a hand-written backward, for speed. Each has a reference built from primitives
(same name + `_reference`); the test suite checks the two agree in forward and gradients, and graph
drawings can use the reference to show every primitive."""
from __future__ import annotations

from . import backend, blas_threads, ops
from .tensor import Function, Tensor, as_tensor, saved_input


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


# Inside LSTMSequence the gates run in the order o, f, i, g: the three sigmoid gates are adjacent for
# the forward's one pass over them, and the three gates whose gradient scales ds (f, i, g) are adjacent
# for the backward's. _INNER picks the book's f, g, i, o blocks into that order; _BOOK picks them back.
_INNER = [3, 0, 2, 1]
_BOOK = [1, 3, 2, 0]


class LSTMSequence(Function):
    """A whole LSTM layer over time in one node: no per-step graph overhead; each step's pre-activation
    is one GEMM, as is each step's input and recurrent gradient, and the three weight gradients of all
    steps are one more.

    Inputs: x (N, T, D), Wx (D, 4H), b (4H,) or one bias per sequence (N, 4H), h0, c0 (N, H),
    Wh (H, 4H), gates in the book's order f, g, i, o. Outputs: hs (N, T, H), h_T, c_T. With `zero_h0`
    / `zero_c0` (set by `lstm_sequence` for a start state given as None) the first step skips its
    products with the zero state. A per-sequence bias is how an input that is the same at every step
    (the peeky decoder's h) costs one product per sequence instead of one per step (nn.LSTM's
    `static`).

    Layout: row t of Z holds [h_{t-1}, x_t, 1] for every sequence (batch-major, so hs is a view of
    Z), and one GEMM, W^T @ Z[t]^T with W = [Wh; Wx; b], is the step's whole pre-activation (a
    separate x @ Wx for all steps has K = D, a GEMM shape that runs at half speed and then costs one
    more pass to add in). Its (4H, N) result is feature-major: four contiguous (H, N) gate blocks,
    and the cell state keeps that layout, so that every elementwise pass reads and writes whole
    contiguous blocks (on column slices of a batch-major (N, 4H) array NumPy's iterator is 2-5x
    slower). One GEMM per step rather than one per gate is what a second BLAS thread can speed up:
    on this project's 2-core machine (128 x 145) @ (145 x 512) ran 1.7x faster on two threads as one
    GEMM, while as four GEMMs (one per gate) it ran up to 1.5x slower than on one thread. The
    backward's W @ da_t sums over the gates inside its GEMM, and da^T @ Z over all steps is every
    weight gradient at once.

    Gates: W^T holds them in the order o, f, i, g with the sigmoid gates' rows halved (exact: a power
    of two), so that one tanh over a step's four blocks gives tanh(a_g) and tanh(a/2) for the others,
    and sigmoid(a) = tanh(a/2)/2 + 1/2 (which cannot overflow) is two more passes over three blocks;
    the three gates whose gradient scales ds (f, i, g) are adjacent too.
    """
    name = "lstm_sequence"
    takes_missing_grads = True   # an encoder's unused hs or a decoder's unused last state costs nothing
    zero_h0 = zero_c0 = False

    def forward(self, x, Wx, b, h0, c0, Wh):
        N, T, D = x.shape
        H4 = Wh.shape[-1]
        H = H4 // 4
        if (H4 % 4 or Wh.shape != (H, H4) or Wx.shape != (D, H4) or b.shape not in ((H4,), (N, H4))
                or h0.shape != (N, H) or c0.shape != (N, H)):
            raise ValueError(f"x {x.shape} needs Wx of shape {(D, H4)}, b of shape {(H4,)} or {(N, H4)}, h0 "
                             f"and c0 of shape {(N, H)} and Wh of shape {(H, H4)} (got Wx {Wx.shape}, "
                             f"b {b.shape}, h0 {h0.shape}, c0 {c0.shape}, Wh {Wh.shape})")
        xp = backend.get_array_module(x)
        dt = x.dtype
        keep = bool(self.needs_grad)        # under no_grad only hs is kept: no per-step history
        K = H + D + 1
        Z = xp.empty((T + 1, N, K), dt)     # Z[t + 1, :, :H] is step t's h
        Z[0, :, :H] = h0
        Z[:T, :, H:H + D] = x.transpose(1, 0, 2)
        Z[:T, :, H + D] = 1
        Z[T, :, H:] = 0                     # no step reads it; defined all the same
        W = xp.empty((K, 4, H), dt)         # [Wh; Wx; b], gate blocks in the order o, f, i, g
        W[:H] = Wh.reshape(H, 4, H)[:, _INNER]
        W[H:H + D] = Wx.reshape(D, 4, H)[:, _INNER]
        row_bias = None
        if b.ndim == 1:
            W[H + D] = b.reshape(4, H)[_INNER]
        else:                               # added after each step's GEMM, in the GEMM's layout
            W[H + D] = 0
            row_bias = b.T.reshape(4, H, N)[_INNER]
            row_bias[:3] *= 0.5
        W[:, :3] *= 0.5
        W = W.reshape(K, H4)
        WT = W.T                            # a view: BLAS reads it transposed, no copy
        gates = xp.empty((T if keep else 1, 4, H, N), dt)  # o, f, i, g after the nonlinearities
        cs = xp.empty((T + 1 if keep else 2, H, N), dt)   # cs[t + 1] is step t's c
        tcs = xp.empty((T if keep else 1, H, N), dt)
        gi = xp.empty((H, N), dt)
        cs[0] = c0.T
        c_prev = cs[0]
        with blas_threads.threads_for(("lstm_sequence", N, K, H4, keep), T, xp):
            for t in range(T):
                g = gates[t if keep else 0]
                flat = g.reshape(H4, N)
                if t or not self.zero_h0:
                    xp.matmul(WT, Z[t].T, out=flat)
                else:                           # the zero start state: only x and the bias
                    xp.matmul(WT[:, H:], Z[0, :, H:].T, out=flat)
                if row_bias is not None:
                    g += row_bias
                xp.tanh(g, out=g)
                sig = g[:3]
                sig *= 0.5
                sig += 0.5
                c = cs[t + 1 if keep else (t + 1) % 2]
                if t or not self.zero_c0:
                    xp.multiply(g[1], c_prev, out=c)
                    xp.multiply(g[3], g[2], out=gi)
                    c += gi
                else:
                    xp.multiply(g[3], g[2], out=c)
                tc = tcs[t if keep else 0]
                xp.tanh(c, out=tc)
                xp.multiply(g[0], tc, out=Z[t + 1, :, :H].T)
                c_prev = c
        if keep:
            self.saved = (Z, W, cs, tcs, gates, row_bias is not None)
        return Z[1:, :, :H].transpose(1, 0, 2), Z[T, :, :H].copy(), c_prev.T.copy()

    def reference(self, x, Wx, b, h0, c0, Wh):
        return lstm_sequence_reference(x, Wx, b, h0, c0, Wh)

    def backward(self, ghs, gh_last, gc_last):
        Z, W, cs, tcs, gates, b_rows = self.saved
        xp = backend.get_array_module(Z)
        T, H, N = tcs.shape
        H4 = 4 * H
        K = Z.shape[2]
        D = K - H - 1
        dt = Z.dtype
        o, f, i, gg = (gates[:, j] for j in range(4))
        need_x, need_Wx, need_b, need_h0, need_c0, need_Wh = self.needs_grad
        # every factor that does not depend on the incoming gradient, for all steps at once, written
        # in place (no temporaries): da_f,i,g = ds * k_fig, da_o = dh * k_o, ds = dc + dh * k_s
        k_fig = xp.empty((T, 3, H, N), dt)
        k_f, k_i, k_g = k_fig[:, 0], k_fig[:, 1], k_fig[:, 2]
        xp.subtract(1, f, out=k_f)              # c_prev * f * (1 - f)
        k_f *= f
        k_f *= cs[:-1]
        xp.subtract(1, i, out=k_i)              # g * i * (1 - i)
        k_i *= i
        k_i *= gg
        xp.multiply(gg, gg, out=k_g)            # i * (1 - g^2)
        xp.subtract(1, k_g, out=k_g)
        k_g *= i
        k_o = xp.subtract(1, o)                 # tanh(c) * o * (1 - o)
        k_o *= o
        k_o *= tcs
        k_s = xp.multiply(tcs, tcs)             # o * (1 - tanh(c)^2)
        xp.subtract(1, k_s, out=k_s)
        k_s *= o
        # W @ da_t gives [dh; dx] of a step in one GEMM, the sum over the gates inside it
        W = W[:H + D].copy()
        W[:, :3 * H] *= 2                       # undo the forward's halving (exact)
        # every step's da, feature-major: (4H, T, N), so that all steps are one (4H, T*N) matrix for
        # the weight GEMM; step t is the (4H, N) matrix daT[:, t]
        daT = xp.empty((H4, T, N), dt)
        da_steps = daT.reshape(4, H, T, N)
        gZ = xp.empty((T, H + D, N), dt)        # each step's [dh_{t-1}; dx_t]
        # dh is this loop's own buffer, written in place; a missing gradient (None) counts as zeros
        gT = None if ghs is None else ghs.transpose(1, 2, 0)   # (T, H, N) views
        # (C order throughout: a sum of two transposed views comes out in F order, and one such operand
        # made every elementwise pass of the loop several times slower)
        dh = xp.zeros((H, N), dt) if gh_last is None else xp.ascontiguousarray(gh_last.T)
        if gT is not None:
            dh += gT[T - 1]
        dc = None if gc_last is None else xp.ascontiguousarray(gc_last.T)
        ds = xp.empty((H, N), dt)
        with blas_threads.threads_for(("lstm_sequence.backward", N, K, H4, need_x), T, xp):
            for t in range(T - 1, -1, -1):
                if t < T - 1 and gT is not None:
                    dh += gT[t]
                xp.multiply(dh, k_s[t], out=ds)
                if dc is not None:
                    ds += dc
                da = da_steps[:, :, t]
                xp.multiply(ds, k_fig[t], out=da[1:])
                xp.multiply(dh, k_o[t], out=da[0])
                if t > 0 or need_c0:
                    dc = ds * f[t]
                want_h = t > 0 or need_h0           # the encoder's zero start state needs no gradient
                rows = slice(0 if want_h else H, H + D if need_x else H)
                if rows.start == rows.stop:
                    continue
                xp.matmul(W[rows], daT[:, t], out=gZ[t, rows])
                if want_h:
                    dh = gZ[t, :H]
        gWx = gb = gWh = None
        if need_Wh or need_Wx or (need_b and not b_rows):   # da^T @ Z over all steps: columns of Wh, Wx, b
            s = int(self.zero_h0)               # a zero start state adds nothing to Wh's gradient
            with blas_threads.threads_for(("lstm_sequence.weights", (T - s) * N, K, H4), 1, xp):
                gWT = xp.matmul(daT[:, s:].reshape(H4, (T - s) * N), Z[s:T].reshape((T - s) * N, K))
            if s:
                gWT[:, H:] += xp.matmul(daT[:, 0], Z[0, :, H:])
            gWT = gWT.reshape(4, H, K)[_BOOK].reshape(H4, K)
            gWh = gWT[:, :H].T.copy() if need_Wh else None
            gWx = gWT[:, H:H + D].T.copy() if need_Wx else None
            gb = gWT[:, H + D].copy() if need_b and not b_rows else None
        if need_b and b_rows:                   # a bias per sequence: the sum over the steps
            gb = daT.sum(axis=1).reshape(4, H, N)[_BOOK].reshape(H4, N).T.copy()
        gx = xp.ascontiguousarray(gZ[:, H:].transpose(2, 0, 1)) if need_x else None
        return (gx, gWx, gb, dh.T.copy() if need_h0 else None,
                None if dc is None or not need_c0 else dc.T.copy(), gWh)


def lstm_sequence(x, Wx, b, h0, c0, Wh):
    """Fused LSTM layer over all time steps of x (N, T, D): returns (hs, h_T, c_T). h0 or c0 may be
    None for a zero start state, whose products the first step then skips; b is (4H,), or (N, 4H)
    for a bias of each sequence's own."""
    x, Wx, b, Wh = (as_tensor(t) for t in (x, Wx, b, Wh))
    h, c = (_zero_state(x, Wh) if s is None else as_tensor(s) for s in (h0, c0))
    return LSTMSequence.apply(x, Wx, b, h, c, Wh, zero_h0=h0 is None, zero_c0=c0 is None)


def _zero_state(x, Wh):
    """Zeros (N, H) on x's device in x's dtype, for a start state given as None."""
    xp = backend.get_array_module(x.data)
    shape = (x.shape[0] if x.ndim else 0, Wh.shape[0] if Wh.ndim else 0)
    return Tensor._wrap(xp.zeros(shape, x.dtype), False)


def lstm_sequence_reference(x, Wx, b, h0, c0, Wh):
    """The same layer from primitives: one matmul for every step's input projection, then step by
    step unstack, matmul, split, sigmoid, tanh..."""
    x, Wx, b, Wh = (as_tensor(t) for t in (x, Wx, b, Wh))
    xw = ops.matmul(x, Wx) + (ops.expand_dims(b, 1) if b.ndim == 2 else b)   # (N, 4H): one per sequence
    h, c = (_zero_state(x, Wh) if s is None else s for s in (h0, c0))
    hs = []
    for xw_t in ops.unstack(xw, axis=1):
        h, c = lstm_cell_reference(xw_t + ops.matmul(h, Wh), c)
        hs.append(h)
    return ops.stack(hs, axis=1), h, c


def lstm_cell(a, c_prev):
    """Fused LSTM step: returns (h, c)."""
    return LSTMCell.apply(as_tensor(a), as_tensor(c_prev))


def lstm_cell_reference(a, c_prev):
    """The same step from primitives: split, sigmoid, tanh, mul, add."""
    f, g, i, o = ops.split(a, 4, axis=-1)
    c = ops.sigmoid(f) * c_prev + ops.tanh(g) * ops.sigmoid(i)
    return ops.sigmoid(o) * ops.tanh(c), c
