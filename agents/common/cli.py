"""Shared command-line plumbing."""

from __future__ import annotations

import argparse


class OneLineParser(argparse.ArgumentParser):
    """Argument errors are one line (``prog: error: ... (see --help)``), not the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
