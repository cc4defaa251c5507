"""Stale on-disk numba caches of the compiled step, dropped before they are loaded.

numba's cache (``cache=True``) keys a kernel on its own file's modification time and size.
The step's kernels (:mod:`envs.fused_step`, :mod:`envs.fused_finish`) inline helpers from
:mod:`envs.fused_rows` and :mod:`envs.fused_supply` and freeze constants of :mod:`envs.fused_params`
and :mod:`envs.rng`, so after an edit of one of those numba would go on loading the old machine code: a checkout
would run, and test, kernels its sources no longer say. :func:`drop_stale` keeps a digest of
all those sources beside each kernel's cache and deletes the kernel's cache index when the
digest changed, before the kernel's first call reads it (numba then compiles afresh).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

SOURCES = ("fused_step.py", "fused_finish.py", "fused_rows.py", "fused_supply.py", "fused_params.py", "rng.py")
"""The files (in :mod:`envs`) whose code the compiled step's machine code depends on."""

STAMP = "rationing-kernel-sources.sha256"
"""File beside the cache holding the digest of :data:`SOURCES` the cached kernels were built from."""


def sources_digest(paths: Iterable[Path]) -> str:
    """SHA-256 over the files' names and bytes, in the given order."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def drop_stale(dispatchers: Iterable, paths: Iterable[Path] | None = None) -> list[Path]:
    """Delete the cache index of each numba dispatcher whose folder's stamp is not the sources' digest.

    Args:
        dispatchers: ``@njit(cache=True)`` functions not called yet in this process.
        paths: the source files (default: :data:`SOURCES` in this package).

    Returns the index files deleted. A folder that cannot be read or written is left alone
    (numba falls back to compiling, or to its user-wide cache, as it would anyway).
    """
    here = Path(__file__).resolve().parent
    digest = sources_digest(paths if paths is not None else [here / name for name in SOURCES])
    by_folder: dict[Path, list[Path]] = {}
    for dispatcher in dispatchers:
        cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
        index = getattr(cache_file, "_index_path", None)  # numba internals: absent in other versions -> no-op
        if index is not None:
            by_folder.setdefault(Path(index).parent, []).append(Path(index))
    dropped: list[Path] = []
    for folder, indexes in by_folder.items():
        stamp = folder / STAMP
        try:
            if stamp.read_text() == digest:
                continue
        except OSError:
            pass
        try:
            for index in indexes:
                try:
                    index.unlink()
                    dropped.append(index)
                except FileNotFoundError:  # never built, or another process dropped it first
                    pass
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f"{STAMP}.{os.getpid()}.tmp"
            partial.write_text(digest)
            os.replace(partial, stamp)  # atomic: a concurrent process reads the old digest or the new one
        except OSError:
            continue
    return dropped
