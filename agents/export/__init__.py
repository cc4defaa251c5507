"""Export: ``python -m agents.export``: a trained policy as ONNX + plain arrays, and the stand-alone loader.

* :mod:`agents.export.exporter`: the command and :func:`export_policy`.
* :mod:`agents.export.onnx_graph`: the ONNX graph builder.
* :mod:`agents.export.parity`: both loaders checked against the checkpoint before publishing.
* :mod:`agents.export.describe`: the observation layout's meaning and the source run.
* :mod:`agents.export.exported`: ``load_policy``: numpy (and onnxruntime, lazily) only, no pickle. One file
  that can be copied into another code base alone.

Importing this package does not import torch: the exporter's names are loaded on first use.
"""

from __future__ import annotations

from typing import Any

from agents.export.exported import ExportedPolicy, ObservationError, PolicyLoadError, is_exported, load_policy

__all__ = ["ExportError", "ExportedPolicy", "ObservationError", "PolicyLoadError", "export_policy", "is_exported",
           "load_policy"]


def __getattr__(name: str) -> Any:
    if name in ("export_policy", "ExportError"):
        from agents.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'agents.export' has no attribute {name!r}")
