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


@njit(**JIT)
def lstm_forward_step(G, tg, rb, has_rb, cs, cp, cn, zero_c, tcs, tt, Z, tz, full):
    """One LSTM step after its GEMM. G (4, *, N, H): the pre-activations of gates o, f, i, g at G[:, tg]
    (the sigmoid gates' halved, as LSTMSequence's W4 makes them), replaced by the gates; rb (4, N, H):
    a per-sequence bias added first when has_rb. Writes c = f * cs[cp] + g * i (f * 0 left out when
    zero_c) to cs[cn]; with `full` also tcs[tt] = tanh(c) and h = o * tanh(c) to Z[tz, :, :H]."""
    N, H = G.shape[2], G.shape[3]
    half = G.dtype.type(0.5)
    for n in range(N):
        for j in range(H):
            ao, af, ai, ag = G[0, tg, n, j], G[1, tg, n, j], G[2, tg, n, j], G[3, tg, n, j]
            if has_rb:
                ao, af, ai, ag = ao + rb[0, n, j], af + rb[1, n, j], ai + rb[2, n, j], ag + rb[3, n, j]
            if full:
                ao, af, ai, ag = _tanh(ao), _tanh(af), _tanh(ai), _tanh(ag)
            o, f, i = ao * half + half, af * half + half, ai * half + half
            c = ag * i if zero_c else f * cs[cp, n, j] + ag * i
            G[0, tg, n, j], G[1, tg, n, j], G[2, tg, n, j], G[3, tg, n, j] = o, f, i, ag
            cs[cn, n, j] = c
            if full:
                tc = _tanh(c)
                tcs[tt, n, j] = tc
                Z[tz, n, j] = o * tc


@njit(**JIT)
def lstm_backward_step(G, cs, tcs, t, dh, dc, has_dc, da):
    """One LSTM step of the backward before its GEMM, from the saved gates G (4, T, N, H: o, f, i, g),
    cell states cs (cs[t] is the step's c_prev) and tcs = tanh(c): writes the pre-activation
    gradients da[:, t] (gate-major, the book's sigmoid slopes) and dc <- ds * f, the gradient of the
    previous cell state (dc holds the incoming one when has_dc; otherwise it counts as zero)."""
    N, H = dh.shape
    one = G.dtype.type(1)
    for n in range(N):
        for j in range(H):
            o, f, i, g, tc = G[0, t, n, j], G[1, t, n, j], G[2, t, n, j], G[3, t, n, j], tcs[t, n, j]
            d = dh[n, j]
            ds = d * o * (one - tc * tc)
            if has_dc:
                ds += dc[n, j]
            da[0, t, n, j] = d * tc * o * (one - o)
            da[1, t, n, j] = ds * cs[t, n, j] * f * (one - f)
            da[2, t, n, j] = ds * g * i * (one - i)
            da[3, t, n, j] = ds * i * (one - g * g)
            dc[n, j] = ds * f


@njit(**JIT)
def gate_sums(P, H, want_h, dh, want_x, gx, t, ghs, tg):
    """The sum over the 4 gates of one step's backward GEMM P (4, N, H + D): columns :H into dh
    (plus ghs[:, tg], the next step's incoming gradient, when tg >= 0), columns H: into gx[t]. Sums
    pair up as (P0 + P2) + (P1 + P3), as the NumPy path does."""
    N, K = P.shape[1], P.shape[2]
    for n in range(N):
        if want_h:
            for j in range(H):
                s = (P[0, n, j] + P[2, n, j]) + (P[1, n, j] + P[3, n, j])
                dh[n, j] = s + ghs[n, tg, j] if tg >= 0 else s
        if want_x:
            for k in range(H, K):
                gx[t, n, k - H] = (P[0, n, k] + P[2, n, k]) + (P[1, n, k] + P[3, n, k])


@njit(**JIT)
def gru_gates(A, xw, t, h, zs, rs, tz, rh, full):
    """GRU step, first half: A (N, 2H) = h @ Wh_zr; z, r = sigmoid(xw[t, :, :2H] + A) into zs[tz],
    rs[tz], and rh = r * h. Without `full`, A holds tanh((xw + h Wh) / 2) already."""
    N, H = h.shape
    half = A.dtype.type(0.5)
    for n in range(N):
        for j in range(H):
            az, ar = A[n, j], A[n, H + j]
            if full:
                az, ar = _tanh((xw[t, n, j] + az) * half), _tanh((xw[t, n, H + j] + ar) * half)
            z, r = az * half + half, ar * half + half
            zs[tz, n, j], rs[tz, n, j] = z, r
            rh[n, j] = r * h[n, j]


@njit(**JIT)
def gru_update(B, xw, t, hs, zs, tz, cands, full):
    """GRU step, second half: B (N, H) = (r * h) @ Wh_h; the candidate tanh(xw[t, :, 2H:] + B) into
    cands[tz] and h' = h + z * (cand - h) into hs[t + 1]. Without `full`, B holds the candidate."""
    N, H = B.shape
    for n in range(N):
        for j in range(H):
            cand = _tanh(xw[t, n, 2 * H + j] + B[n, j]) if full else B[n, j]
            cands[tz, n, j] = cand
            h = hs[t, n, j]
            hs[t + 1, n, j] = h + zs[tz, n, j] * (cand - h)


@njit(**JIT)
def gru_backward_first(dh, hs, zs, cands, t, dxw):
    """GRU backward, before the candidate's GEMM: da_z and da_h of step t into dxw[t] (N, 3H)."""
    N, H = dh.shape
    one = dh.dtype.type(1)
    for n in range(N):
        for j in range(H):
            d, z, cand = dh[n, j], zs[t, n, j], cands[t, n, j]
            dxw[t, n, 2 * H + j] = d * z * (one - cand * cand)
            dxw[t, n, j] = d * (cand - hs[t, n, j]) * z * (one - z)


@njit(**JIT)
def gru_backward_second(d_rh, dh, hs, zs, rs, t, dxw):
    """GRU backward, after it: da_r into dxw[t] and dh <- dh * (1 - z) + d_rh * r (the GEMM through
    the z and r gates is added by the caller)."""
    N, H = dh.shape
    one = dh.dtype.type(1)
    for n in range(N):
        for j in range(H):
            r, h, g = rs[t, n, j], hs[t, n, j], d_rh[n, j]
            dxw[t, n, H + j] = g * h * r * (one - r)
            dh[n, j] = dh[n, j] * (one - zs[t, n, j]) + g * r
