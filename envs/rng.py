"""Counter-based random numbers for the batched environment.

Every random number is a pure function of ``(env seed, episode index, step, draw
index)``: a 64-bit SplitMix/Murmur3 finaliser over a combined counter. So the same
seed gives the same trajectory whatever the batch size and whichever row the env
lands in, and a whole batch draws its numbers in a few vectorised numpy ops with no
per-env generator objects.

The finaliser passes the usual avalanche tests (it is the ``fmix64`` step of
MurmurHash3 used by SplitMix64); 24-bit uniforms are ample for a simulator.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_DRAW = np.uint64(0xD1B54A32D192ED03)
_S33 = np.uint64(33)
_S40 = np.uint64(40)
_INV24 = np.float32(2.0**-24)
_HALF24 = np.float32(2.0**-25)


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finaliser, in place on a uint64 array."""
    x ^= x >> _S33
    x *= _C1
    x ^= x >> _S33
    x *= _C2
    x ^= x >> _S33
    return x


def episode_keys(seeds: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Key of each env's current episode, shape ``(N,)`` uint64."""
    x = seeds.astype(np.uint64) * _GOLDEN
    x ^= _fmix64(episodes.astype(np.uint64) + _GOLDEN)
    return _fmix64(x)


class CounterRNG:
    """Draws ``(N, n_draws)`` float32 uniforms in (0, 1) for a batch of keys and steps.

    Buffers are preallocated for a fixed batch size and draw count; the returned
    array is reused by the next call.
    """

    def __init__(self, num_envs: int, n_draws: int) -> None:
        self.n_draws = n_draws
        self._offsets = (np.arange(n_draws, dtype=np.uint64) + np.uint64(1)) * _DRAW
        self._x = np.empty((num_envs, n_draws), dtype=np.uint64)
        self._base = np.empty(num_envs, dtype=np.uint64)
        self._out = np.empty((num_envs, n_draws), dtype=np.float32)

    def uniform(self, keys: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Uniforms in (0, 1) for each env's key and step; shape ``(N, n_draws)``."""
        base = self._base
        np.multiply(steps.astype(np.uint64, copy=False) + np.uint64(1), _GOLDEN, out=base)
        base ^= keys
        x = self._x
        np.add(base[:, None], self._offsets[None, :], out=x)
        _fmix64(x)
        x >>= _S40
        np.multiply(x, _INV24, out=self._out, casting="unsafe")
        self._out += _HALF24
        return self._out


def seed_to_uint(seed: int) -> int:
    """Map any Python int seed to a 63-bit non-negative int."""
    return int(seed) & 0x7FFF_FFFF_FFFF_FFFF
