"""Small array helpers for the hot path.

``row_sum`` sums the last axis of a (N, K) array with ``np.einsum``: for short rows
(K = tiers or providers) it is about twice as fast as ``x.sum(axis=1)``, and like it
(unlike a BLAS matmul) each row's result does not depend on the batch size or the
row's position, which the batched-vs-single parity tests rely on.
"""

from __future__ import annotations

import numpy as np


def row_sum(x: np.ndarray) -> np.ndarray:
    """(N, K) -> (N,) sum over the last axis."""
    return np.einsum("ij->i", x)


def row_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, K) x (K,) -> (N,) weighted row sums."""
    return np.einsum("ij,j->i", x, w)


def row_matmul(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(N, K) x (K, L) -> (N, L), per row, batch-independent (no BLAS)."""
    return np.einsum("ij,jk->ik", x, m)


HALF_STEP_EXPONENTS = np.asarray([-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])
"""Exponents :func:`power` evaluates as products of ``x`` and ``sqrt(x)`` instead of ``pow``."""


def is_half_step(exponent: np.ndarray) -> np.ndarray:
    """Whether each exponent is in :data:`HALF_STEP_EXPONENTS` (a multiple of 0.5 in [-2, 2])."""
    twice = 2.0 * exponent
    return (np.abs(exponent) <= 2.0) & (np.floor(twice) == twice)


def power(x: np.ndarray, exponent: float | np.ndarray) -> np.ndarray:
    """``x ** exponent`` in ``x``'s precision (float64, else float32), with ``exponent`` a scalar or a
    per-column (per-tier) array.

    Exponents in :data:`HALF_STEP_EXPONENTS` (the model's: quota admission ``z ** -0.5`` and
    ``z ** -1.5`` at the usage alpha of 1.5, churn exponents 1, 2 and 1.5; the rules' inverse
    ``x ** -2``) are evaluated in float64 as ``x``, ``x x x`` and ``sqrt(x)`` products (inverted
    for negative exponents), for float32 rounded once; other exponents are libm's ``pow``
    (float32: ``powf``, see :func:`_general_power`). For float32 both round the exact power in
    all but a few ulp-tie cases (float64 carries 29 spare bits), and ``powf`` costs ~20x the
    products (they differ only at ``-inf``, a base the model never has: NaN here, powf's signed
    zero or infinity), so this is what the compiled step (:func:`envs.fused_rows.power32`, the
    same operations in the same order) evaluates too.
    """
    x = np.asarray(x)
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    e = np.asarray(exponent, dtype)
    fast = is_half_step(e)
    x64 = x.astype(np.float64, copy=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if e.ndim == 0:
            if not fast:
                return _general_power(x, e)
            a = abs(float(e))
            r = x64 if a >= 1.0 else np.ones_like(x64)
            if a >= 2.0:
                r = r * x64
            if a % 1.0 == 0.5:
                r = r * np.sqrt(x64)
            if e < 0.0:
                r = 1.0 / r
            return r.astype(dtype, copy=False)
        a = np.abs(e)
        r = np.where(a >= 1.0, x64, 1.0)
        r = np.where(a >= 2.0, r * x64, r)
        r = np.where(a % 1.0 == 0.5, r * np.sqrt(x64), r)
        r = np.where(e < 0.0, 1.0 / r, r).astype(dtype, copy=False)
        return r if np.all(fast) else np.where(fast, r, _general_power(x, e))


def _general_power(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``x ** e`` for exponents off the half steps: float64 numpy's, float32 libm's ``powf`` through
    the compiled step's own loop (:func:`envs.fused_rows.powf_columns`), not numpy's float32 ``**``,
    which on AVX512 CPUs is SVML's and differs from ``powf`` in the last bit."""
    if x.dtype == np.float64:
        return x ** e
    from .fused_rows import powf_columns  # numba compiles on first use

    x32 = np.ascontiguousarray(x, np.float32)
    out = powf_columns(x32.reshape(-1, e.size), np.ascontiguousarray(e.reshape(-1), np.float32))
    return out.reshape(x32.shape)
