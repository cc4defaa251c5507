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
"""Exponents :func:`power` evaluates as products of ``x`` and ``sqrt(x)`` instead of ``powf``."""


def power(x: np.ndarray, exponent: float | np.ndarray) -> np.ndarray:
    """float32 ``x ** exponent``, with ``exponent`` a scalar or a per-column (per-tier) array.

    Exponents in :data:`HALF_STEP_EXPONENTS` (the model's: quota admission ``z ** -0.5`` and
    ``z ** -1.5`` at the usage alpha of 1.5, churn exponents 1, 2 and 1.5) are evaluated in
    float64 as ``x``, ``x x x`` and ``sqrt(x)`` products (inverted for negative exponents) and
    rounded once to float32; other exponents are libm's ``powf`` (numpy's ``**``). Both round
    the exact power to float32 in all but a few ulp-tie cases (float64 carries 29 spare bits),
    and ``powf`` costs ~20x the products (they differ only at ``-inf``, a base the model never
    has: NaN here, powf's signed zero or infinity), so this is what the compiled step
    (:func:`envs.fused_rows.power32`, the same operations in the same order) evaluates too.
    """
    e = np.asarray(exponent, np.float32)
    fast = np.isin(e, HALF_STEP_EXPONENTS)
    if e.ndim == 0 and not fast:
        return x ** e
    x64 = np.asarray(x, np.float64)
    a = np.abs(e)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(a >= 1.0, x64, 1.0)
        r = np.where(a >= 2.0, r * x64, r)
        r = np.where(a % 1.0 == 0.5, r * np.sqrt(x64), r)
        r = np.where(e < 0.0, 1.0 / r, r).astype(np.float32)
        if np.all(fast):
            return r
        return np.where(fast, r, x ** e)
