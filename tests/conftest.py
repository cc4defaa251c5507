"""Shared fixtures: short episodes keep the suite fast."""

from __future__ import annotations

import pytest

SHORT = {"time": {"episode_days": 0.25}}  # 24 steps of 15 minutes


@pytest.fixture
def short_overrides() -> dict:
    return {"time": {"episode_days": 0.25}}


@pytest.fixture
def one_line_error(capsys):
    """``one_line_error(main, argv)``: run a command's ``main``; it must exit 2 with one stderr line, no traceback.

    Returns that line (the error contract every command keeps; see the README).
    """
    def run(main, argv) -> str:
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        return err

    return run
