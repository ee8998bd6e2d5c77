"""Composite ops with a hand-written backward, for speed. Each has a reference built from primitives
(same name + `_reference`); the test suite checks the two agree in forward and gradients, and graph
drawings can use the reference to show every primitive."""
from __future__ import annotations

from . import backend, ops
from .tensor import Function, as_tensor


class LSTMCell(Function):
    """One LSTM step from its pre-activation a = x@Wx + h@Wh + b (gates in the book's order f, g, i, o)."""
    name = "lstm_cell"

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
        self.saved = (f, g, i, o, c_prev, tc)
        return o * tc, c

    def backward(self, gh, gc):
        f, g, i, o, c_prev, tc = self.saved
        xp = backend.get_array_module(gh)
        ds = gc + gh * o * (1 - tc * tc)
        da = xp.concatenate((ds * c_prev * f * (1 - f),
                             ds * i * (1 - g * g),
                             ds * g * i * (1 - i),
                             gh * tc * o * (1 - o)), axis=-1)
        return da, ds * f


class LSTMSequence(Function):
    """A whole LSTM recurrence over time in one node: per-step Python/graph overhead disappears and
    the recurrent weight's gradient becomes one GEMM over all steps.

    Inputs: xw (N, T, 4H) (the input projection x@Wx + b of every step), h0, c0 (N, H), Wh (H, 4H).
    Outputs: hs (N, T, H), h_T, c_T.
    """
    name = "lstm_sequence"

    def forward(self, xw, h0, c0, Wh):
        N, T, H4 = xw.shape
        H = H4 // 4
        if H4 % 4 or h0.shape != (N, H) or c0.shape != (N, H) or Wh.shape != (H, H4):
            raise ValueError(f"xw {xw.shape} needs h0, c0 of shape {(N, H)} and Wh of shape {(H, H4)}")
        xp = backend.get_array_module(xw)
        dt = xw.dtype
        keep = bool(self.needs_grad)        # under no_grad only hs is kept: no per-step history
        hs = xp.empty((T, N, H), dt)
        cs = xp.empty((T if keep else 2, N, H), dt)
        tcs = xp.empty((T if keep else 1, N, H), dt)
        gates = xp.empty((T if keep else 1, N, H4), dt)     # f, g, i, o after their nonlinearities
        h, c_prev = h0, c0
        for t in range(T):
            g = gates[t if keep else 0]
            xp.matmul(h, Wh, out=g)
            g += xw[:, t]                    # rows of 4H contiguous values: no transposed copy needed
            xp.tanh(g[:, H:2 * H], out=g[:, H:2 * H])
            for lo, hi in ((0, H), (2 * H, H4)):          # sigmoid(x) = tanh(x/2)/2 + 1/2, no overflow
                blk = g[:, lo:hi]
                blk *= 0.5
                xp.tanh(blk, out=blk)
                blk *= 0.5
                blk += 0.5
            c = cs[t if keep else t % 2]
            xp.multiply(g[:, :H], c_prev, out=c)
            c += g[:, H:2 * H] * g[:, 2 * H:3 * H]
            tc = tcs[t if keep else 0]
            xp.tanh(c, out=tc)
            h = hs[t]
            xp.multiply(g[:, 3 * H:], tc, out=h)
            c_prev = c
        if keep:
            self.saved = (h0, c0, Wh, hs, cs, tcs, gates)
        return hs.transpose(1, 0, 2), hs[-1].copy(), c_prev.copy()

    def backward(self, ghs, gh_last, gc_last):
        h0, c0, Wh, hs, cs, tcs, gates = self.saved
        xp = backend.get_array_module(ghs)
        T, N, H = hs.shape
        f, gg, i, o = (gates[..., k * H:(k + 1) * H] for k in range(4))
        c_prev = xp.concatenate((c0[None], cs[:-1]), axis=0)
        # every factor that does not depend on the incoming gradient, for all steps at once
        k_fgi = xp.empty((T, N, 3, H), ghs.dtype)
        k_fgi[:, :, 0] = c_prev * f * (1 - f)
        k_fgi[:, :, 1] = i * (1 - gg * gg)
        k_fgi[:, :, 2] = gg * i * (1 - i)
        k_o = tcs * o * (1 - o)
        k_s = o * (1 - tcs * tcs)
        ghs_t = ghs.transpose(1, 0, 2)
        da_all = xp.empty((T, N, 4 * H), ghs.dtype)
        dh, dc = gh_last, gc_last
        for t in range(T - 1, -1, -1):
            dh = dh + ghs_t[t]
            ds = dc + dh * k_s[t]
            da = da_all[t]
            xp.multiply(ds[:, None, :], k_fgi[t], out=da[:, :3 * H].reshape(N, 3, H))
            xp.multiply(dh, k_o[t], out=da[:, 3 * H:])
            dc = ds * f[t]
            dh = da @ Wh.T
        gWh = None
        if self.needs_grad[3]:
            h_prev = xp.concatenate((h0[None], hs[:-1]), axis=0).reshape(T * N, H)
            gWh = h_prev.T @ da_all.reshape(T * N, 4 * H)
        return da_all.transpose(1, 0, 2), dh, dc, gWh


def lstm_sequence(xw, h0, c0, Wh):
    """Fused LSTM over all time steps: returns (hs, h_T, c_T)."""
    return LSTMSequence.apply(*(as_tensor(t) for t in (xw, h0, c0, Wh)))


def lstm_sequence_reference(xw, h0, c0, Wh):
    """The same recurrence step by step from primitives (unstack, matmul, split, sigmoid, tanh...)."""
    h, c, hs = h0, c0, []
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
