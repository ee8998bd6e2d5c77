"""The time loops of the fused recurrent ops' compiled path: each step's GEMM in NumPy (BLAS), its
elementwise work in `backend.compiled`'s kernels. `ops.lstm` and `ops.gru` choose this path where the
kernels are offered; the NumPy loops beside those ops stay the reference both paths are tested against."""
from __future__ import annotations

import numpy as np


def lstm_forward(kernels, gemm, Z, gates, cs, tcs, row_bias, zero_c0, keep):
    """LSTMSequence's forward loop with a compiled kernel after each step's GEMM (backend.compiled).
    float32 applies every nonlinearity in the kernel; float64 runs NumPy's tanh around it."""
    xp = np
    T, H = Z.shape[0] - 1, cs.shape[2]
    full = gates.dtype == np.float32
    rb = np.zeros((1, 1, 1), gates.dtype) if row_bias is None or not full else np.ascontiguousarray(row_bias)
    cn = 0
    for t in range(T):
        tg, cp, cn = (t, t, t + 1) if keep else (0, t % 2, (t + 1) % 2)
        g = gates[:, tg]
        gemm(t, g)
        if not full:
            if row_bias is not None:
                g += row_bias
            xp.tanh(g, out=g)
        kernels.lstm_forward_step(gates, tg, rb, full and row_bias is not None, cs, cp, cn, zero_c0 and t == 0,
                                  tcs, tg, Z, t + 1, full)
        if not full:
            xp.tanh(cs[cn], out=tcs[tg])
            xp.multiply(gates[0, tg], tcs[tg], out=Z[t + 1, :, :H])
    return Z[1:, :, :H], cs[cn]


def lstm_backward(kernels, WT, gates, cs, tcs, ghs, gh_last, gc_last, needs_grad):
    """LSTMSequence's backward loop with compiled kernels: one before each step's GEMM (the gates'
    gradients and dc, straight from the saved gates), one after it (the sums over the gates, plus the
    next step's incoming gradient). Returns (da_all, gx, dh, dc) as the NumPy loop does."""
    need_x, _, _, need_h0, _, _ = needs_grad
    T, N, H = tcs.shape
    D, dt = WT.shape[2] - H, tcs.dtype
    none = np.zeros((1, 1, 1), dt)
    da_all = np.empty((4, T, N, H), dt)
    per_gate = np.empty((4, N, H + D), dt)
    gx = np.empty((T, N, D), dt) if need_x else none
    ghs_c = none if ghs is None else np.ascontiguousarray(ghs)
    if ghs is None:
        dh = np.zeros((N, H), dt) if gh_last is None else np.array(gh_last, dt, order="C")
    else:
        dh = np.ascontiguousarray(ghs[:, T - 1] if gh_last is None else gh_last + ghs[:, T - 1])
        dh = dh.copy() if gh_last is None else dh
    dc = np.zeros((N, H), dt) if gc_last is None else np.array(gc_last, dt, order="C")
    for t in range(T - 1, -1, -1):
        kernels.lstm_backward_step(gates, cs, tcs, t, dh, dc, gc_last is not None or t < T - 1, da_all)
        want_h = t > 0 or need_h0           # the encoder's zero start state needs no gradient
        cols = slice(0 if want_h else H, H + D if need_x else H)
        if cols.start == cols.stop:
            continue
        np.matmul(da_all[:, t], WT[:, :, cols], out=per_gate[:, :, cols])
        kernels.gate_sums(per_gate, H, want_h, dh, need_x, gx, t, ghs_c, t - 1 if t and ghs is not None else -1)
    return da_all, gx if need_x else None, dh, dc


def gru_forward(kernels, xw, hs, Wh, keep):
    """GRUSequence's forward loop with compiled kernels (backend.compiled) after each of a step's two
    GEMMs; float64 runs NumPy's tanh before each kernel. Writes hs[1:]; returns (zs, rs, cands)."""
    T, N, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dt = hs.dtype
    full = dt == np.float32
    Wh_zr, Wh_h = np.ascontiguousarray(Wh[:, :2 * H]), np.ascontiguousarray(Wh[:, 2 * H:])
    zs, rs, cands = (np.empty((T if keep else 1, N, H), dt) for _ in range(3))
    A, B, rh = np.empty((N, 2 * H), dt), np.empty((N, H), dt), np.empty((N, H), dt)
    for t in range(T):
        tz = t if keep else 0
        np.matmul(hs[t], Wh_zr, out=A)
        if not full:
            A += xw[t, :, :2 * H]
            A *= 0.5
            np.tanh(A, out=A)
        kernels.gru_gates(A, xw, t, hs[t], zs, rs, tz, rh, full)
        np.matmul(rh, Wh_h, out=B)
        if not full:
            B += xw[t, :, 2 * H:]
            np.tanh(B, out=B)
        kernels.gru_update(B, xw, t, hs, zs, tz, cands, full)
    return zs, rs, cands


def gru_backward(kernels, Wh, hs, zs, rs, cands, ghs, dh, dxw):
    """GRUSequence's backward loop with compiled kernels around the candidate's GEMM: writes dxw (the
    gradients of every step's input terms) and dh (that of the start state) in place."""
    T, N, H = zs.shape
    Wh_zr_T, Wh_h_T = np.ascontiguousarray(Wh[:, :2 * H].T), np.ascontiguousarray(Wh[:, 2 * H:].T)
    d_rh, through_zr = np.empty((N, H), dh.dtype), np.empty((N, H), dh.dtype)
    for t in range(T - 1, -1, -1):
        if ghs is not None:
            dh += ghs[:, t]
        kernels.gru_backward_first(dh, hs, zs, cands, t, dxw)
        np.matmul(dxw[t, :, 2 * H:], Wh_h_T, out=d_rh)
        kernels.gru_backward_second(d_rh, dh, hs, zs, rs, t, dxw)
        np.matmul(dxw[t, :, :2 * H], Wh_zr_T, out=through_zr)
        dh += through_zr
