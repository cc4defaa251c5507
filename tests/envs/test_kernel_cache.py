"""Stale numba caches of the compiled step are dropped when a source they were built from changes."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from envs import kernel_cache


def _cached_kernel(folder: Path):
    """An ``@njit(cache=True)`` function defined in a module file of its own under ``folder``."""
    path = folder / "kernel_mod.py"
    path.write_text("from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    spec = importlib.util.spec_from_file_location("kernel_mod_for_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.twice


def test_the_index_goes_when_a_source_changes_and_stays_while_none_does(tmp_path: Path) -> None:
    kernel = _cached_kernel(tmp_path)
    helper = tmp_path / "helper.py"
    helper.write_text("A = 1\n")
    assert kernel(3) == 6  # compiles and writes the cache
    index = Path(kernel._cache._cache_file._index_path)
    assert index.exists()
    assert kernel_cache.drop_stale([kernel], [helper]) == [index]  # no stamp yet: built from unknown sources
    stamp = index.parent / kernel_cache.STAMP
    assert stamp.read_text() == kernel_cache.sources_digest([helper])
    index.write_bytes(b"a cache built from these sources")
    assert kernel_cache.drop_stale([kernel], [helper]) == []
    assert index.exists()
    helper.write_text("A = 2\n")  # an edit of a source the kernel inlines
    assert kernel_cache.drop_stale([kernel], [helper]) == [index]
    assert not index.exists()
    assert stamp.read_text() == kernel_cache.sources_digest([helper])


def test_the_compiled_step_records_the_digest_of_its_sources() -> None:
    from envs import fused_step

    folder = Path(fused_step.step_rows._cache._cache_file._index_path).parent
    stamp = folder / kernel_cache.STAMP
    here = Path(kernel_cache.__file__).parent
    if not os.access(folder if folder.exists() else folder.parent, os.W_OK):
        return  # an unwritable install folder is left alone (numba uses its user-wide cache)
    assert stamp.read_text() == kernel_cache.sources_digest([here / name for name in kernel_cache.SOURCES])


def test_dispatchers_without_a_disk_cache_are_left_alone(tmp_path: Path) -> None:
    from numba import njit

    @njit
    def plain(x):
        return x

    helper = tmp_path / "helper.py"
    helper.write_text("A = 1\n")
    assert kernel_cache.drop_stale([plain], [helper]) == []
    assert not any(tmp_path.glob("*.sha256"))
