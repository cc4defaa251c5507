"""Shared fixtures: short episodes keep the suite fast."""

from __future__ import annotations

import pytest

SHORT = {"time": {"episode_days": 0.25}}  # 24 steps of 15 minutes


@pytest.fixture
def short_overrides() -> dict:
    return {"time": {"episode_days": 0.25}}
