"""The compiled kernels of the fused recurrent layers (Numba), imported by `compiled.kernels()` only.

Each kernel is one pass over a time step's (N, H) elements: the work NumPy spreads over eight or more
ufunc calls, each its own pass over memory and its own dispatch. GEMMs are not here: they stay in
BLAS, called by NumPy between the kernels. Compiled with `cache=True` (the first import compiles them
and writes the machine code beside this file or in NUMBA_CACHE_DIR; later processes load it) and
without fastmath, so every result is the same bit for bit from run to run, and no FMA contraction or
reassociation changes a sum (LLVM's vector and scalar loops then compute the same operations).

Arrays come whole and C-contiguous with the step's indices (a strided view would compile a second,
slower variant); every kernel reads its inputs before writing the same element, so an output may
alias an input element for element.

`full`: the kernel applies the nonlinearities itself with `_tanh`, a rational approximation that
LLVM vectorizes (float32: at most 7 ulp from tanh; NumPy's own float32 tanh is within 2). Without
`full` (float64, whose tanh needs more digits than that) the caller has run NumPy's tanh over the
pre-activations, and does the cell state's tanh after the kernel.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_CLAMP = np.float32(7.90531110763549805)    # tanh(x) rounds to +-1 in float32 beyond this
_P = tuple(np.float32(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                    5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                    4.89352455891786e-03))
_Q = tuple(np.float32(v) for v in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                    4.89352518554385e-03))
P0, P1, P2, P3, P4, P5, P6 = _P
Q0, Q1, Q2, Q3 = _Q
JIT = {"cache": True, "fastmath": False, "error_model": "numpy", "nogil": True}
"""error_model='numpy': a division never checks for zero (no branch in the loop, so it vectorizes)."""


@njit(inline="always", **JIT)
def _tanh(x):
    """tanh by the odd/even rational approximation Eigen uses for float32: selects, multiplies and
    one division, so the loop around it vectorizes (a call to libm's tanhf would not)."""
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = ((((((P0 * x2 + P1) * x2 + P2) * x2 + P3) * x2 + P4) * x2 + P5) * x2 + P6) * x
    q = ((Q0 * x2 + Q1) * x2 + Q2) * x2 + Q3
    return p / q


@njit(inline="always", **JIT)
def _sigmoid_rows(full, x, bias, has_bias):
    """x <- sigmoid from x = a/2 (plus bias/2): tanh(x)/2 + 1/2, or x/2 + 1/2 when x holds tanh already."""
    half = x.dtype.type(0.5)
    if has_bias:
        for j in range(x.size):
            x[j] += bias[j]
    if full:
        for j in range(x.size):
            x[j] = _tanh(x[j]) * half + half
    else:
        for j in range(x.size):
            x[j] = x[j] * half + half


@njit(**JIT)
def lstm_forward_step(G, tg, rb, has_rb, cs, cp, cn, zero_c, tcs, tt, Z, tz, full):
    """One LSTM step after its GEMM. G (4, *, N, H): the pre-activations of gates o, f, i, g at G[:, tg]
    (the sigmoid gates' halved, as LSTMSequence's W4 makes them), replaced by the gates; rb (4, N, H):
    a per-sequence bias added first when has_rb. Writes c = f * cs[cp] + g * i (f * 0 left out when
    zero_c) to cs[cn]; with `full` also tcs[tt] = tanh(c) and h = o * tanh(c) to Z[tz, :, :H].
    Each row is a few short loops over contiguous rows (in L1), each with few enough arrays that
    LLVM vectorizes it."""
    N, H = G.shape[2], G.shape[3]
    for n in range(N):
        o, f, i, g = G[0, tg, n], G[1, tg, n], G[2, tg, n], G[3, tg, n]
        _sigmoid_rows(full, o, rb[0, n], has_rb)
        _sigmoid_rows(full, f, rb[1, n], has_rb)
        _sigmoid_rows(full, i, rb[2, n], has_rb)
        if has_rb:
            bg = rb[3, n]
            for j in range(H):
                g[j] += bg[j]
        if full:
            for j in range(H):
                g[j] = _tanh(g[j])
        c, c_prev = cs[cn, n], cs[cp, n]
        if zero_c:
            for j in range(H):
                c[j] = g[j] * i[j]
        else:
            for j in range(H):
                c[j] = f[j] * c_prev[j] + g[j] * i[j]
        if full:
            tc, h = tcs[tt, n], Z[tz, n]
            for j in range(H):
                tc[j] = _tanh(c[j])
            for j in range(H):
                h[j] = o[j] * tc[j]


@njit(**JIT)
def lstm_backward_step(G, cs, tcs, t, dh, dc, has_dc, da):
    """One LSTM step of the backward before its GEMM, from the saved gates G (4, T, N, H: o, f, i, g),
    cell states cs (cs[t] is the step's c_prev) and tcs = tanh(c): writes the pre-activation
    gradients da[:, t] (gate-major, the book's sigmoid slopes) and dc <- ds * f, the gradient of the
    previous cell state (dc holds the incoming one when has_dc; otherwise it counts as zero)."""
    N, H = dh.shape
    one = G.dtype.type(1)
    for n in range(N):
        o, f, i, g, tc, c_prev = G[0, t, n], G[1, t, n], G[2, t, n], G[3, t, n], tcs[t, n], cs[t, n]
        d, dcn = dh[n], dc[n]
        da_o, da_f, da_i, da_g = da[0, t, n], da[1, t, n], da[2, t, n], da[3, t, n]
        for j in range(H):                      # ds, kept in dc's row until the end
            ds = d[j] * o[j] * (one - tc[j] * tc[j])
            dcn[j] = ds + dcn[j] if has_dc else ds
        for j in range(H):
            da_o[j] = d[j] * tc[j] * o[j] * (one - o[j])
        for j in range(H):
            da_f[j] = dcn[j] * c_prev[j] * f[j] * (one - f[j])
        for j in range(H):
            da_i[j] = dcn[j] * g[j] * i[j] * (one - i[j])
        for j in range(H):
            da_g[j] = dcn[j] * i[j] * (one - g[j] * g[j])
        for j in range(H):
            dcn[j] = dcn[j] * f[j]


@njit(**JIT)
def gate_sums(P, H, want_h, dh, want_x, gx, t, ghs, tg):
    """The sum over the 4 gates of one step's backward GEMM P (4, N, H + D): columns :H into dh
    (plus ghs[:, tg], the next step's incoming gradient, when tg >= 0), columns H: into gx[t]. Sums
    pair up as (P0 + P2) + (P1 + P3), as the NumPy path does."""
    N, K = P.shape[1], P.shape[2]
    for n in range(N):
        p0, p1, p2, p3 = P[0, n], P[1, n], P[2, n], P[3, n]
        if want_h:
            d = dh[n]
            for j in range(H):
                d[j] = (p0[j] + p2[j]) + (p1[j] + p3[j])
            if tg >= 0:
                g = ghs[n, tg]
                for j in range(H):
                    d[j] += g[j]
        if want_x:
            x = gx[t, n]
            for k in range(H, K):
                x[k - H] = (p0[k] + p2[k]) + (p1[k] + p3[k])


@njit(**JIT)
def gru_gates(A, xw, t, h, zs, rs, tz, rh, full):
    """GRU step, first half: A (N, 2H) = h @ Wh_zr; z, r = sigmoid(xw[t, :, :2H] + A) into zs[tz],
    rs[tz], and rh = r * h. Without `full`, A holds tanh((xw + h Wh) / 2) already."""
    N, H = h.shape
    half = A.dtype.type(0.5)
    for n in range(N):
        a, x, z, r, hn, out = A[n], xw[t, n], zs[tz, n], rs[tz, n], h[n], rh[n]
        if full:
            for j in range(2 * H):
                a[j] = _tanh((x[j] + a[j]) * half)
        for j in range(H):
            z[j] = a[j] * half + half
        for j in range(H):
            r[j] = a[H + j] * half + half
        for j in range(H):
            out[j] = r[j] * hn[j]


@njit(**JIT)
def gru_update(B, xw, t, hs, zs, tz, cands, full):
    """GRU step, second half: B (N, H) = (r * h) @ Wh_h; the candidate tanh(xw[t, :, 2H:] + B) into
    cands[tz] and h' = h + z * (cand - h) into hs[t + 1]. Without `full`, B holds the candidate."""
    N, H = B.shape
    for n in range(N):
        b, x, cand, z, h, out = B[n], xw[t, n], cands[tz, n], zs[tz, n], hs[t, n], hs[t + 1, n]
        if full:
            for j in range(H):
                cand[j] = _tanh(x[2 * H + j] + b[j])
        else:
            for j in range(H):
                cand[j] = b[j]
        for j in range(H):
            out[j] = h[j] + z[j] * (cand[j] - h[j])


@njit(**JIT)
def gru_backward_first(dh, hs, zs, cands, t, dxw):
    """GRU backward, before the candidate's GEMM: da_z and da_h of step t into dxw[t] (N, 3H)."""
    N, H = dh.shape
    one = dh.dtype.type(1)
    for n in range(N):
        d, z, cand, h, out = dh[n], zs[t, n], cands[t, n], hs[t, n], dxw[t, n]
        for j in range(H):
            out[2 * H + j] = d[j] * z[j] * (one - cand[j] * cand[j])
        for j in range(H):
            out[j] = d[j] * (cand[j] - h[j]) * z[j] * (one - z[j])


@njit(**JIT)
def gru_backward_second(d_rh, dh, hs, zs, rs, t, dxw):
    """GRU backward, after it: da_r into dxw[t] and dh <- dh * (1 - z) + d_rh * r (the GEMM through
    the z and r gates is added by the caller)."""
    N, H = dh.shape
    one = dh.dtype.type(1)
    for n in range(N):
        g, d, h, z, r, out = d_rh[n], dh[n], hs[t, n], zs[t, n], rs[t, n], dxw[t, n]
        for j in range(H):
            out[H + j] = g[j] * h[j] * r[j] * (one - r[j])
        for j in range(H):
            d[j] = d[j] * (one - z[j]) + g[j] * r[j]
