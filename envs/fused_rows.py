"""Helpers of the compiled step (:mod:`envs.fused_step`), in the model modules' float32 order.

Lane loops (``lane_*``) do one thing for every env row, rows inner on (K, N) arrays; the
others work on one value or one row (powers, one row's weighted fair share). Each mirrors a
numpy function of the model modules (named in its docstring) with the same float32 operations
in the same order, so the compiled step gives the numpy step's numbers bit for bit
(``exp``/``log`` stay numpy's, see :mod:`envs.fused_step`). Constants come from
:mod:`envs.fused_params`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rng import _C1, _C2, _DRAW, _GOLDEN, _HALF24, _INV24, _S33, _S40

F32 = np.float32
ZERO = F32(0.0)
ONE = F32(1.0)
_U1 = np.uint64(1)

JIT = {"cache": True, "error_model": "numpy", "nogil": True}
"""numba options of every kernel: cached on disk, IEEE division (inf/nan, no ZeroDivisionError)."""
INLINE = {**JIT, "inline": "always"}
"""The row helpers' options: inlined into the kernels by numba (a call passes every array as a
seven-word struct on the stack; LLVM does not inline across numba's function libraries)."""


@njit(**INLINE)
def lane_uniforms(keys: np.ndarray, steps: np.ndarray, out: np.ndarray) -> None:
    """:meth:`envs.rng.CounterRNG.uniform` for every row, rows inner: ``out`` (n_draws, N) in (0, 1)
    for ``keys`` and ``steps`` (N,)."""
    for j in range(out.shape[0]):
        offset = (np.uint64(j) + _U1) * _DRAW
        for i in range(out.shape[1]):
            base = (np.uint64(steps[i]) + _U1) * _GOLDEN
            base ^= keys[i]
            x = base + offset
            x ^= x >> _S33
            x *= _C1
            x ^= x >> _S33
            x *= _C2
            x ^= x >> _S33
            x >>= _S40
            out[j, i] = F32(np.int64(x)) * _INV24 + _HALF24


@njit(**INLINE)
def lane_sum(x: np.ndarray, acc: np.ndarray, out: np.ndarray) -> None:
    """:func:`envs.arrays.row_sum` of every column of ``x`` (K, N) into ``out`` (N,), rows inner (scratch
    ``acc`` (4, N)): numpy's einsum order for rows of <= 15 entries, four lanes (lane ``k % 4`` adds entry k,
    in the order of k, from 0.0), then ``(a0 + a1) + (a2 + a3)``."""
    acc[:] = ZERO
    for k in range(x.shape[0]):
        a = acc[k % 4]
        for i in range(x.shape[1]):
            a[i] += x[k, i]
    for i in range(x.shape[1]):
        out[i] = (acc[0, i] + acc[1, i]) + (acc[2, i] + acc[3, i])


@njit(**INLINE)
def lane_dot(x: np.ndarray, w: np.ndarray, acc: np.ndarray, out: np.ndarray) -> None:
    """:func:`envs.arrays.row_dot` of every column of ``x`` (K, N) with ``w`` (K,) into ``out`` (N,), in
    :func:`lane_sum`'s order."""
    acc[:] = ZERO
    for k in range(x.shape[0]):
        a = acc[k % 4]
        wk = w[k]
        for i in range(x.shape[1]):
            a[i] += x[k, i] * wk
    for i in range(x.shape[1]):
        out[i] = (acc[0, i] + acc[1, i]) + (acc[2, i] + acc[3, i])


@njit(**INLINE)
def is_half_step32(e: np.float32) -> bool:
    """Whether ``e`` is a multiple of 0.5 in [-2, 2] (:func:`envs.arrays.is_half_step` for one float32)."""
    twice = F32(2.0) * abs(e)
    return twice <= F32(4.0) and np.floor(twice) == twice


@njit(**INLINE)
def half_step_magnitude(x64: np.float64, root: np.float64, e: np.float32) -> np.float64:
    """``x ** |e|`` in float64 for an exponent with :func:`is_half_step32`, from ``x64`` and ``root`` =
    ``sqrt(x64)``: :func:`envs.arrays.power`'s products, the same operations in the same order, without
    branches (so that a loop over tiers vectorises): each factor an exponent does not take is a
    multiplication by exactly 1.0, which leaves every float64 (zeros, infinities, NaN) as it is."""
    a = abs(e)
    r = x64 if a >= ONE else 1.0
    r = r * (x64 if a >= F32(2.0) else 1.0)
    return r * (root if a - np.floor(a) == F32(0.5) else 1.0)


@njit(**INLINE)
def half_step_power_from_root(x64: np.float64, root: np.float64, e: np.float32) -> np.float32:
    """``x ** e`` for an exponent with :func:`is_half_step32`, given ``root`` = ``sqrt(x64)``:
    :func:`half_step_magnitude` (or its reciprocal for a negative exponent) rounded once to float32,
    as :func:`envs.arrays.power` does. Callers raising one ``x`` to two exponents share the ``sqrt``;
    callers whose exponents are all >= 0 round :func:`half_step_magnitude` themselves and skip the
    division (same numbers)."""
    r = half_step_magnitude(x64, root, e)
    return F32(1.0 / r if e < ZERO else r)


@njit(**INLINE)
def half_step_power32(x: np.float32, e: np.float32) -> np.float32:
    """``x ** e`` for an exponent with :func:`is_half_step32` (:func:`half_step_power_from_root`)."""
    x64 = np.float64(x)
    return half_step_power_from_root(x64, np.sqrt(x64), e)


@njit(**INLINE)
def power32(x: np.float32, e: np.float32) -> np.float32:
    """:func:`envs.arrays.power` for one value: half-step exponents by :func:`half_step_power32`,
    others libm's ``powf``."""
    return half_step_power32(x, e) if is_half_step32(e) else x ** e


@njit(**JIT)
def powf_columns(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """(M, K) float32 ``x[:, k] ** e[k]`` by libm's ``powf``: the general powers of the numpy step
    (:func:`envs.arrays.power`), the very function :func:`power32` calls, so that both steps agree
    on every CPU (numpy's own float32 ``**`` uses AVX512-SVML where the CPU has it, which differs
    from ``powf`` in the last bit)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            out[i, k] = x[i, k] ** e[k]
    return out


@njit(**JIT)
def clipped_log_quota(actions: np.ndarray, log_step: np.float32, out: np.ndarray) -> None:
    """``out`` (T, N) = ``clip(actions[:, :T], -1, 1) x log_step`` in float32, transposed to the kernels'
    rows-inner layout (:func:`envs.quota.apply_action`'s exponent; numpy's ``exp`` of it follows). One call
    instead of three numpy ones; a NaN comes out as a number here, which does not matter: the step refuses
    NaN actions before it uses these."""
    for i in range(out.shape[1]):
        for j in range(out.shape[0]):
            out[j, i] = min(max(actions[i, j], -ONE), ONE) * log_step


@njit(**INLINE)
def fair_share(backlog: np.ndarray, weights: np.ndarray, capacity: np.float32, served: np.ndarray,
               ratio: np.ndarray, order: np.ndarray) -> None:
    """:func:`envs.serving.weighted_fair_share` for one row, into ``served`` (scratch: ``ratio``, ``order``)."""
    n = backlog.shape[0]
    for j in range(n):
        ratio[j] = backlog[j] / weights[j]
        order[j] = j
    for j in range(1, n):  # insertion sort of the ratios (T entries)
        k = order[j]
        i = j - 1
        while i >= 0 and ratio[order[i]] > ratio[k]:
            order[i + 1] = order[i]
            i -= 1
        order[i + 1] = k
    w_total = ZERO
    for j in range(n):
        w_total += weights[order[j]]
    cum_w = ZERO
    cum_b = ZERO
    full = 0  # tiers served in full: how many of the k-th ratios need at most the capacity
    for j in range(n):
        o = order[j]
        cum_w += weights[o]
        cum_b += ratio[o] * weights[o]
        if cum_b + ratio[o] * (w_total - cum_w) <= capacity:
            full += 1
    b_done = ZERO
    w_done = ZERO
    for j in range(full):
        o = order[j]
        w_done += weights[o]
        b_done += ratio[o] * weights[o]
    lam = (capacity - b_done) / max(w_total - w_done, F32(1e-12))
    for j in range(n):
        s = min(backlog[j], weights[j] * lam)
        served[j] = max(s, ZERO)


@njit(**INLINE)
def collapse_row(overload_steps: np.int32, remaining: np.int32, pressure: np.float32, collapse_pressure: np.float32,
                 after: np.int64, duration: np.int64) -> tuple[np.int32, np.int32]:
    """:func:`envs.serving.collapse_step` for one row: (overload_steps, collapse_remaining_steps)."""
    count = overload_steps + 1 if pressure > collapse_pressure else 0
    left = max(remaining - 1, 0)
    if count >= after and left <= 0:
        return np.int32(0), np.int32(left + duration)
    return np.int32(count), np.int32(left)


@njit(**INLINE)
def sla_share(running: np.float32, below: np.ndarray, inc: np.ndarray, j: int) -> np.float32:
    """The credit share of one SLO kind at ``running`` attainment (:func:`envs.contracts.sla_step`), tier j.

    At or above the first (highest) threshold nothing is owed: the thresholds fall strictly (-1 pads), so
    every term below would be ``inc x 0``; returning 0 at once is the same number and skips the sum for the
    common, unbreached case."""
    if not running < below[0, j]:
        return ZERO
    owed = ZERO
    for k in range(below.shape[0]):  # branch-free: x + inc x 0 is x, bit for bit, for a finite inc
        owed += inc[k, j] * F32(running < below[k, j])
    return owed


@njit(**JIT)
def clock_table(angles: np.ndarray, steps_per_week: int) -> np.ndarray:
    """(steps_per_week, 4) float32 hour sin, hour cos, week sin, week cos per step of the week.

    ``angles`` holds the float64 radians per step of a day and of a week
    (:mod:`envs.fused_params` ``F_HOUR_ANGLE``, ``F_WEEK_ANGLE``); the float64 product and
    libm's ``sin``/``cos`` are those :func:`envs.observation.build` rounds to float32.
    """
    out = np.empty((steps_per_week, 4), F32)
    for w in range(steps_per_week):
        out[w, 0] = np.sin(angles[0] * w)
        out[w, 1] = np.cos(angles[0] * w)
        out[w, 2] = np.sin(angles[1] * w)
        out[w, 3] = np.cos(angles[1] * w)
    return out
