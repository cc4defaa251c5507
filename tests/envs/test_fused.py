"""The compiled step (envs.fused_step) gives the numpy step's numbers, bit for bit.

The numpy step (``RationingCore.fused_params = None``, also the path for traces) is
the reference. The compiled one does the same float32 operations in the same order
and leaves ``exp``/``log`` to numpy; powers are ``envs.arrays.power``'s float64 products
or libm's ``powf`` in both, float64 ``sin``/``cos`` libm's in both (numpy builds that route
them to AVX512-SVML would differ in the last bit).
"""

from __future__ import annotations

import numpy as np
import pytest

import envs


def _pair(scenario: str, version: int, n: int, overrides=None):
    fused = envs.RationingCore(scenario, n, randomize=True, version=version, overrides=overrides)
    ref = envs.RationingCore(scenario, n, randomize=True, version=version, overrides=overrides)
    assert fused.fused_params is not None
    ref.fused_params = None
    return fused, ref


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("scenario", envs.available_scenarios())
def test_compiled_step_equals_numpy_step(scenario: str, version: int) -> None:
    n = 5
    fused, ref = _pair(scenario, version, n,
                       {"action": {"burst": "policy"}} if (version, scenario) == (1, "outage") else None)
    seeds = np.arange(n, dtype=np.uint64) + 11
    start = np.arange(n) * 130
    np.testing.assert_array_equal(fused.reset(seeds, start_steps=start), ref.reset(seeds, start_steps=start))
    rng = np.random.default_rng(version)
    for _ in range(700):
        act = (rng.uniform(-1.2, 1.2, (n, fused.action_size)) * (rng.random((n, 1)) < 0.4)).astype(np.float32)
        got, want = fused.step(act), ref.step(act)
        for a, b in zip(got[:4], want[:4]):
            np.testing.assert_array_equal(a, b)
        assert list(got[4]) == list(want[4])
        for key, value in want[4].items():
            np.testing.assert_array_equal(got[4][key], value, err_msg=key)
        for a, b in zip((fused.users, fused.queue_tokens, fused.sla), (ref.users, ref.queue_tokens, ref.sla)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        done = got[3]
        if done.any():
            np.testing.assert_array_equal(fused.reset(mask=done), ref.reset(mask=done))


def test_compiled_step_equals_numpy_step_at_exponents_off_the_half_steps() -> None:
    """The kernels take a branch-free path when every admission and churn exponent is a half step
    (all shipped scenarios); others go through powf and must agree with numpy's step as well."""
    import dataclasses

    from envs.fused_params import fuse

    n = 4
    fused, ref = _pair("default", 1, n, {"demand": {"usage_tail_alpha": 1.3}})
    churn = fused.params.churn_throttle_exponent.copy()
    churn[2] = np.float32(1.7)
    for core in (fused, ref):
        core.params = dataclasses.replace(core.params, churn_throttle_exponent=churn)
    fused.fused_params = fuse(fused.params)
    seeds = np.arange(n, dtype=np.uint64) + 3
    np.testing.assert_array_equal(fused.reset(seeds), ref.reset(seeds))
    rng = np.random.default_rng(5)
    for _ in range(300):
        act = rng.uniform(-1.0, 1.0, (n, fused.action_size)).astype(np.float32)
        got, want = fused.step(act), ref.step(act)
        for a, b in zip(got[:4], want[:4]):
            np.testing.assert_array_equal(a, b)
        for key, value in want[4].items():
            np.testing.assert_array_equal(got[4][key], value, err_msg=key)


def test_info_arrays_are_not_rewritten_by_later_steps() -> None:
    core = envs.RationingCore("default", 3, version=1)
    core.reset(np.arange(3, dtype=np.uint64))
    info = core.step(np.zeros((3, 6), np.float32))[4]
    kept = {k: np.array(v) for k, v in info.items()}
    for _ in range(3):
        core.step(np.ones((3, 6), np.float32))
    for k, v in kept.items():
        np.testing.assert_array_equal(info[k], v, err_msg=k)


@pytest.mark.parametrize("version", [0, 1])
def test_single_env_info_equals_the_numpy_rows(version: int) -> None:
    from envs.rationing_env import row_info

    env = envs.RationingEnv("outage", version=version)
    ref = envs.RationingCore("outage", 1, version=version)
    ref.fused_params = None
    env.reset(seed=4)
    ref.reset(np.array([4], np.uint64))
    for _ in range(50):
        act = np.full(env.action_space.shape, 0.3, np.float32)
        got = env.step(act)[4]
        want = row_info(ref.step(act[None])[4], 0)
        assert list(got) == list(want)
        for key, value in want.items():
            assert type(got[key]) is type(value), key
            np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_rows_stepped_past_their_episode_end_keep_the_numpy_numbers() -> None:
    # the compiled step reads the agentic growth factor from a table of step indices; a caller that
    # ignores `truncated` steps past it and the table grows, computed as the numpy step computes it
    fused, ref = _pair("agentic-surge", 1, 2)
    seeds = np.array([3, 4], np.uint64)
    fused.reset(seeds)
    ref.reset(seeds)
    steps = 2 * fused.params.episode_steps + 5
    act = np.full((2, fused.action_size), -0.2, np.float32)
    for _ in range(steps):
        got, want = fused.step(act), ref.step(act)
    assert fused.t[0] == steps
    for a, b in zip(got[:4], want[:4]):
        np.testing.assert_array_equal(a, b)
    for key, value in want[4].items():
        np.testing.assert_array_equal(got[4][key], value, err_msg=key)


def test_state_replaced_by_row_major_arrays_is_moved_back_to_the_kernels_layout() -> None:
    # the kernels run rows inner on (T, N) arrays the core keeps as (N, T) views (envs.fused_layout);
    # state a caller replaces with (N, T) row-major arrays is moved back once, same numbers
    fused, ref = _pair("outage", 1, 3)
    seeds = np.array([5, 6, 7], np.uint64)
    fused.reset(seeds)
    ref.reset(seeds)
    act = np.full((3, fused.action_size), 0.3, np.float32)
    for _ in range(40):
        fused.step(act), ref.step(act)
    fused.users = type(fused.users)(*(np.ascontiguousarray(a) for a in fused.users))
    fused.queue_tokens = np.ascontiguousarray(fused.queue_tokens)
    assert not fused.users.users.T.flags.c_contiguous
    for _ in range(40):
        got, want = fused.step(act), ref.step(act)
        for a, b in zip(got[:4], want[:4]):
            np.testing.assert_array_equal(a, b)
    assert fused.users.users.T.flags.c_contiguous and fused.queue_tokens.T.flags.c_contiguous
    for key, value in want[4].items():
        np.testing.assert_array_equal(got[4][key], value, err_msg=key)
    np.testing.assert_array_equal(fused.users.frustration, ref.users.frustration)


def test_a_copied_core_steps_its_own_state() -> None:
    import copy
    import pickle

    core = envs.RationingCore("default", 3, version=1)
    core.reset(np.arange(3, dtype=np.uint64))
    act = np.full((3, core.action_size), -0.4, np.float32)
    for _ in range(30):
        core.step(act)
    copies = [copy.deepcopy(core), pickle.loads(pickle.dumps(core))]
    for _ in range(30):
        want = core.step(act)
        for other in copies:
            got = other.step(act)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    for other in copies:
        np.testing.assert_array_equal(other.users.users, core.users.users)
        assert not np.shares_memory(other.users.users, core.users.users)


def test_a_nan_action_is_refused_before_the_compiled_step_changes_anything() -> None:
    core = envs.RationingCore("default", 3, version=1)
    core.reset(np.arange(3, dtype=np.uint64))
    core.step(np.zeros((3, 6), np.float32))
    before = [np.array(a) for a in (core.t, core.users.users, core.quota_multiplier, core.queue_tokens, core.obs)]
    act = np.zeros((3, 6), np.float32)
    act[2, 4] = np.nan
    with pytest.raises(ValueError, match=r"action is NaN at row 2, tier 'enterprise'"):
        core.step(act)
    after = (core.t, core.users.users, core.quota_multiplier, core.queue_tokens, core.obs)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_power_kernels_equal_numpy_power_and_powf_within_one_ulp() -> None:
    from numba import njit

    from envs.arrays import HALF_STEP_EXPONENTS, is_half_step, power
    from envs.fused_rows import half_step_power32, half_step_power_from_root, is_half_step32, power32

    @njit(error_model="numpy")  # as the compiled step's kernels
    def kernel(x, e):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = power32(x[i], e)
        return out

    @njit(error_model="numpy")
    def branch_free(x, e):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = half_step_power32(x[i], e)
        return out

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0.0, 3.0, 20_000), 10.0 ** rng.uniform(-30, 30, 20_000)]).astype(np.float32)
    # -inf ** -1.5 is 0 for powf and NaN for sqrt-products (the model's bases are >= 0)
    special = np.asarray([0.0, 1.0, -1.0, -2.5, np.inf, np.nan, 1e-45, 3.4e38], np.float32)
    for e in [*HALF_STEP_EXPONENTS.tolist(), -1.0 / 1.2, 2.5, 0.25, -3.0]:
        e32 = np.float32(e)
        for values in (x, special):
            with np.errstate(all="ignore"):
                want, powf = power(values, e), values ** e32
            np.testing.assert_array_equal(kernel(values, e32), want, err_msg=f"exponent {e}")
            finite = np.isfinite(powf) & (powf != 0)  # and agree with powf where it is finite, to the ulp
            np.testing.assert_array_max_ulp(want[finite], powf[finite], maxulp=1)
            np.testing.assert_array_equal(np.isnan(want), np.isnan(powf), err_msg=f"exponent {e}")
            np.testing.assert_array_equal(want[~finite & ~np.isnan(powf)], powf[~finite & ~np.isnan(powf)])
    for e in [*HALF_STEP_EXPONENTS.tolist(), -1.0 / 1.2, 2.5, 0.25, -3.0, 2.0000002, -2.5]:
        assert is_half_step32(np.float32(e)) == bool(is_half_step(np.float32(e))), e
    @njit(error_model="numpy")
    def shared_root(x, e1, e2):  # the kernels' two powers of one base from one sqrt, as the admission's
        out = np.empty((2, x.shape[0]), np.float32)
        for i in range(x.shape[0]):
            x64 = np.float64(x[i])
            root = np.sqrt(x64)
            out[0, i] = half_step_power_from_root(x64, root, e1)
            out[1, i] = half_step_power_from_root(x64, root, e2)
        return out

    for e in HALF_STEP_EXPONENTS:  # the branch-free twin of power32 the kernels use for these exponents
        for values in (x, special):
            with np.errstate(all="ignore"):
                np.testing.assert_array_equal(branch_free(values, np.float32(e)), power(values, e), err_msg=f"{e}")
                pair = shared_root(values, np.float32(e), np.float32(-1.5))
                np.testing.assert_array_equal(pair[0], power(values, e), err_msg=f"{e}")
                np.testing.assert_array_equal(pair[1], power(values, -1.5))
    per_tier = np.asarray([1.0, 2.0, 1.5, -0.8], np.float32)  # per-column exponents, as the churn exponents
    grid = x[:4000].reshape(-1, 4)
    with np.errstate(all="ignore"):
        columns = [power(grid[:, k], per_tier[k]) for k in range(4)]
        np.testing.assert_array_equal(power(grid, per_tier), np.stack(columns, 1))
