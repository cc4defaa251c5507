"""Provenance: a result made from uncommitted changes says which files they were in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agents.common import provenance


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_dirty_lists_the_tracked_files_with_uncommitted_changes(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / "envs").mkdir(parents=True)
    _git(repo, "init", "-q")
    for name in ("envs/a.py", "b.py"):
        (repo / name).write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    monkeypatch.setattr(provenance, "_REPO", repo)
    assert provenance.git_dirty() == [] and provenance.git_commit()
    (repo / "envs/a.py").write_text("x = 2\n")
    (repo / "untracked.py").write_text("")  # not part of the project until added
    assert provenance.git_dirty() == ["envs/a.py"]
    monkeypatch.setattr(provenance, "_REPO", tmp_path / "not-a-repo")
    (tmp_path / "not-a-repo").mkdir()
    assert provenance.git_dirty() is None
