"""Rendering: ``rgb_array`` dashboard frames and ``ansi`` tables, through the tools users already have
(Gymnasium's checker, ``RecordVideo``, ``RenderCollection``, stable-baselines3's ``make_vec_env``)."""

from __future__ import annotations

import sys
import time
import types
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import envs
from envs.render import HEIGHT, WIDTH

DAY = {"time": {"episode_days": 1}}
ZERO = np.zeros(6, np.float32)


def test_metadata_declares_render_modes_and_fps() -> None:
    meta = envs.RationingEnv.metadata
    assert meta["render_modes"] == ["rgb_array", "ansi"] and meta["render_fps"] > 0
    env = gym.make("Rationing-v1", render_mode="rgb_array")
    assert env.render_mode == "rgb_array"
    with pytest.raises(ValueError, match="render_mode = 'human': one of"):
        envs.RationingEnv(render_mode="human")


@pytest.mark.parametrize("mode", [None, "rgb_array", "ansi"])
def test_checkers_pass_with_render_checks_and_no_warnings(mode: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("Rationing-v1", render_mode=mode, scenario="outage").unwrapped, skip_render_check=False)
        sb3_check_env(envs.RationingEnv(render_mode=mode), warn=True)


def test_rgb_array_dashboard() -> None:
    env = gym.make("Rationing-v1", render_mode="rgb_array", scenario="outage")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (HEIGHT, WIDTH, 3) == (540, 960, 3) and first.dtype == np.uint8
    rng = np.random.default_rng(0)
    times = []
    for t in range(240):
        env.step(rng.uniform(-0.2, 0.2, 6).astype(np.float32))
        if t % 20 == 19:
            start = time.perf_counter()
            frame = env.render()
            times.append(time.perf_counter() - start)
    assert frame.shape == first.shape and (frame != first).any()
    assert (frame != 255).any(axis=2).mean() > 0.1  # the plots are drawn, not a blank page
    colors = {tuple(c) for c in frame[60:220, 70:650].reshape(-1, 3)[::7]}
    from envs.render import PALETTE

    assert sum(tuple(c) in colors for c in PALETTE[:6]) >= 4  # served tokens stacked in the tier colours
    assert np.median(times) < 0.1  # a few ms on the development machine; generous for a loaded CI runner
    # the episode starts afresh after a reset
    env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), first)


def test_ansi_table() -> None:
    env = gym.make("Rationing-v1", render_mode="ansi")
    env.reset(seed=0)
    assert "no step yet" in env.render()
    for _ in range(3):
        env.step(ZERO)
    text = env.render()
    assert isinstance(text, str) and "step 3/672" in text and "Mon 00:45" in text
    lines = text.splitlines()
    for name in env.unwrapped.tier_names:
        assert any(line.startswith(name) for line in lines), name


def test_render_without_a_mode_warns_and_returns_none() -> None:
    env = envs.RationingEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="without a render_mode"):
        assert env.render() is None


def test_sb3_make_vec_env_by_id() -> None:
    """SB3 passes render_mode='rgb_array' and falls back only on TypeError: it must simply work."""
    vec = make_vec_env("Rationing-v1", n_envs=2, seed=0, env_kwargs={"scenario": "outage"})
    assert vec.render_mode == "rgb_array"
    vec.reset()
    vec.step(np.zeros((2, 6), np.float32))
    assert [f.shape for f in vec.get_images()] == [(540, 960, 3)] * 2


class _FakeClip:
    """Stands in for moviepy's ImageSequenceClip: keeps the frames, writes a small file."""

    made: list[_FakeClip] = []

    def __init__(self, frames: list[np.ndarray], fps: float) -> None:
        self.frames, self.fps = list(frames), fps
        _FakeClip.made.append(self)

    def write_videofile(self, path: str, logger=None) -> None:
        Path(path).write_bytes(b"fake mp4: %d frames" % len(self.frames))


@pytest.fixture()
def fake_moviepy(monkeypatch):
    """RecordVideo needs moviepy only to encode: a stand-in records what it would have encoded."""
    _FakeClip.made = []
    names = ["moviepy", "moviepy.video", "moviepy.video.io", "moviepy.video.io.ImageSequenceClip"]
    mods = {name: types.ModuleType(name) for name in names}
    mods["moviepy.video.io.ImageSequenceClip"].ImageSequenceClip = _FakeClip
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return _FakeClip


def test_record_video_records_an_episode(tmp_path: Path, fake_moviepy) -> None:
    env = gym.make("Rationing-v1", render_mode="rgb_array", overrides=DAY)
    env = gym.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: e == 0, disable_logger=True)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, _ = env.step(ZERO)
        steps += 1
    env.reset()  # ends the recording of episode 0
    env.close()
    assert steps == 96 and len(fake_moviepy.made) == 1
    clip = fake_moviepy.made[0]
    assert clip.fps == envs.RationingEnv.metadata["render_fps"]
    assert len(clip.frames) == steps + 1 and all(f.shape == (540, 960, 3) for f in clip.frames)
    assert not np.array_equal(clip.frames[1], clip.frames[-1])
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["rl-video-episode-0.mp4"]


def test_render_collection() -> None:
    env = gym.wrappers.RenderCollection(gym.make("Rationing-v1", render_mode="rgb_array", overrides=DAY))
    env.reset(seed=1)
    for _ in range(5):
        env.step(ZERO)
    frames = env.render()
    assert len(frames) == 6 and all(f.shape == (540, 960, 3) for f in frames)
