"""The GRU layer as one composite op with a hand-written backward, beside its reference from primitives
(as `fused.py` does for the LSTM; the op table checks the two agree in values and gradients).

The book's GRU (Deep Learning from Scratch 2, appendix C), gates in the order z, r, h~:
    z = sigmoid(x Wx_z + h Wh_z + b_z)          r = sigmoid(x Wx_r + h Wh_r + b_r)
    h~ = tanh(x Wx_h + (r * h) Wh_h + b_h)      h' = (1 - z) * h + z * h~

Each step's elementwise work runs in compiled kernels where `backend.compiled` offers them (two each
way, around the step's two GEMMs), NumPy's ufuncs otherwise. The recurrent weights' gradient is two
GEMMs over all steps after the backward's loop (h^T da_zr and (r h)^T da_h), on both paths.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, as_tensor, saved_input
from ..backend import compiled
from ..backend import compiled_loops
from .elementwise import sigmoid, tanh
from .linalg import matmul
from .lstm import _zero_state, _onnx_gate_blocks
from .joins import split, stack, unstack


def _sigmoid(xp, a):
    return xp.tanh(a * 0.5) * 0.5 + 0.5          # no overflow for large |a|


class GRUSequence(Function):
    """A whole GRU layer over time in one node. Inputs: x (N, T, D), Wx (D, 3H), b (3H,), h0 (N, H),
    Wh (H, 3H). Outputs: hs (N, T, H) and h_T. Every step's input terms come from one GEMM before the
    loop, and the input-weight gradients of all steps from one GEMM after it. Its fused backward runs
    on arrays; create_graph differentiates `reference` instead."""
    name = "gru_sequence"
    kept_views = (0,)         # hs is a view of the saved states: changing it in place would change them
    takes_missing_grads = True   # an encoder's unused hs or a decoder's unused last state costs nothing
    x, Wx, Wh = saved_input(0), saved_input(1), saved_input(4)   # a change in place is refused in backward

    def forward(self, x, Wx, b, h0, Wh):
        N, T, D = x.shape
        H3 = Wh.shape[-1]
        H = H3 // 3
        if H3 % 3 or Wh.shape != (H, H3) or Wx.shape != (D, H3) or b.shape != (H3,) or h0.shape != (N, H):
            raise ValueError(f"x {x.shape} needs Wx of shape {(D, H3)}, b of shape {(H3,)}, h0 of shape "
                             f"{(N, H)} and Wh of shape {(H, H3)} (got Wx {Wx.shape}, b {b.shape}, "
                             f"h0 {h0.shape}, Wh {Wh.shape})")
        xp = backend.get_array_module(x)
        xw = xp.matmul(x.transpose(1, 0, 2), Wx) + b            # (T, N, 3H), time-major
        keep = bool(self.needs_grad)
        hs = xp.empty((T + 1, N, H), x.dtype)                    # hs[t + 1] is step t's h
        hs[0] = h0
        kernels = compiled.kernels(xp, x.dtype)
        if kernels is not None:
            zs, rs, cands = compiled_loops.gru_forward(kernels, xw, hs, Wh, keep)
        else:
            if keep:
                zs, rs, cands = (xp.empty((T, N, H), x.dtype) for _ in range(3))
            for t in range(T):
                h = hs[t]
                zr = _sigmoid(xp, xw[t, :, :2 * H] + xp.matmul(h, Wh[:, :2 * H]))
                z, r = zr[:, :H], zr[:, H:]
                cand = xp.tanh(xw[t, :, 2 * H:] + xp.matmul(r * h, Wh[:, 2 * H:]))
                hs[t + 1] = h + z * (cand - h)
                if keep:
                    zs[t], rs[t], cands[t] = z, r, cand
        if keep:
            self.saved = (hs, zs, rs, cands)
        return hs[1:].transpose(1, 0, 2), hs[T].copy()

    def reference(self, x, Wx, b, h0, Wh):
        return gru_sequence_reference(x, Wx, b, h0, Wh)

    def onnx(self, g, x, Wx, b, h0, Wh):
        """ONNX: one GRU node with linear_before_reset=0, exactly this layer. ONNX's gates are z, r, h
        in that order, as ours, and its candidate is tanh(x W_h + (r * h) R_h + Wb_h + Rb_h), as ours
        (the book's (r * h) @ Wh_h is linear_before_reset=0). Its update is h' = (1 - z) * h~ + z * h,
        the other way round from the book's h' = (1 - z) * h + z * h~: ONNX's z is our 1 - z =
        sigmoid(-a_z), so the z blocks of W, R and the bias are negated (exact). Rb is zero; X is
        time-major (T, N, D), Y (T, 1, N, H). In float64 (onnxruntime runs GRU in float32 only) the
        reference composition is written instead."""
        if g.dtype(x) != np.float32:
            return NotImplemented
        H = g.shape(Wh)[0]
        W, R = (_onnx_gate_blocks(g, w, (0, 1, 2), negate=(0,)) for w in (Wx, Wh))
        B = g.op("Concat", _onnx_gate_blocks(g, b, (0, 1, 2), negate=(0,), transpose=False),
                 g.const(np.zeros(3 * H, g.dtype(Wx))), axis=0)
        Y, Y_h = g.op("GRU", g.op("Transpose", x, perm=[1, 0, 2]), W, R, g.op("Unsqueeze", B, g.ints([0])), None,
                      g.op("Unsqueeze", h0, g.ints([0])), hidden_size=H, linear_before_reset=0, outputs=2)
        return g.op("Transpose", g.op("Squeeze", Y, g.ints([1])), perm=[1, 0, 2]), g.op("Squeeze", Y_h, g.ints([0]))

    def backward(self, ghs, gh_last):
        x, Wx, Wh = self.x, self.Wx, self.Wh
        hs, zs, rs, cands = self.saved
        xp = backend.get_array_module(hs)
        T1, N, H = hs.shape
        T = T1 - 1
        need_x, need_Wx, need_b, need_h0, need_Wh = self.needs_grad
        dxw = xp.empty((T, N, 3 * H), hs.dtype)
        dh = xp.zeros((N, H), hs.dtype) if gh_last is None else gh_last.copy()
        kernels = compiled.kernels(xp, hs.dtype)
        if kernels is not None:
            compiled_loops.gru_backward(kernels, Wh, hs, zs, rs, cands, ghs, dh, dxw)
        else:
            Wh_zr_T, Wh_h_T = Wh[:, :2 * H].T, Wh[:, 2 * H:].T
            for t in range(T - 1, -1, -1):
                if ghs is not None:
                    dh += ghs[:, t]
                h, z, r, cand = hs[t], zs[t], rs[t], cands[t]
                da_h = dh * z * (1 - cand * cand)                # through tanh of the candidate
                d_rh = xp.matmul(da_h, Wh_h_T)
                da_z = dh * (cand - h) * z * (1 - z)
                da_r = d_rh * h * r * (1 - r)
                dxw[t, :, :H], dxw[t, :, H:2 * H], dxw[t, :, 2 * H:] = da_z, da_r, da_h
                dh = dh * (1 - z) + d_rh * r + xp.matmul(dxw[t, :, :2 * H], Wh_zr_T)
        gWh = None
        if need_Wh:                  # every step's terms in one GEMM per block: h^T da_zr and (r h)^T da_h
            gWh = xp.empty(Wh.shape, hs.dtype)
            gWh[:, :2 * H] = xp.matmul(hs[:T].reshape(T * N, H).T, dxw[:, :, :2 * H].reshape(T * N, 2 * H))
            gWh[:, 2 * H:] = xp.matmul((rs * hs[:T]).reshape(T * N, H).T, dxw[:, :, 2 * H:].reshape(T * N, H))
        flat = dxw.reshape(T * N, 3 * H)
        gx = xp.matmul(dxw, Wx.T).transpose(1, 0, 2) if need_x else None
        gWx = xp.matmul(x.transpose(1, 0, 2).reshape(T * N, -1).T, flat) if need_Wx else None
        gb = flat.sum(axis=0) if need_b else None
        return gx, gWx, gb, dh if need_h0 else None, gWh


def gru_sequence(x, Wx, b, h0, Wh):
    """A whole GRU layer over every time step as one op (what `nn.GRU` calls).

    Gates in the order z (update), r (reset), candidate along the last axis of `Wx`, `Wh` and `b`;
    `h_t = h_{t-1} + z * (tanh(x Wx_h + b_h + (r * h_{t-1}) Wh_h) - h_{t-1})`.

    Args:
        x: the inputs, (N, T, D).
        Wx: input weights, (D, 3H).
        b: bias, (3H,).
        h0: the start state (N, H), or None for zeros.
        Wh: hidden weights, (H, 3H).

    Returns:
        tuple[Tensor, Tensor]: `(hs, h_T)`: every step's hidden state (N, T, H) and the last (N, H).
    """
    x, Wx, b, Wh = (as_tensor(t) for t in (x, Wx, b, Wh))
    h = _zero_state(x, Wh) if h0 is None else as_tensor(h0)
    return GRUSequence.apply(x, Wx, b, h, Wh)


def gru_cell_reference(xw, h, Wh):
    """One GRU step from primitives, given its input terms xw = x Wx + b (N, 3H)."""
    H = h.shape[-1]
    xz, xr, xh = split(xw, 3, axis=-1)
    z = sigmoid(xz + matmul(h, Wh[:, :H]))
    r = sigmoid(xr + matmul(h, Wh[:, H:2 * H]))
    cand = tanh(xh + matmul(r * h, Wh[:, 2 * H:]))
    return h + z * (cand - h)


def gru_sequence_reference(x, Wx, b, h0, Wh):
    """The same layer from primitives: one matmul for every step's input terms, then step by step."""
    x, Wx, b, Wh = (as_tensor(t) for t in (x, Wx, b, Wh))
    h = _zero_state(x, Wh) if h0 is None else h0
    hs = []
    for xw_t in unstack(matmul(x, Wx) + b, axis=1):
        h = gru_cell_reference(xw_t, h, Wh)
        hs.append(h)
    return stack(hs, axis=1), h
