"""A rule family for a preference-conditioned residual run: one rule tuned at several weightings, blended.

A residual run (:mod:`agents.ppo.residual`) corrects one rule with one set of parameters. A
preference-conditioned run acts at every weighting of margin, latency and churn, but one rule is
tuned for one weighting: the corrections the network must learn grow with the distance from it,
and PPO does not move that far (README, "Trade-offs"). With ``residual_family`` (a list of tuned
files, each from ``python -m agents.tune --rule R --weights ... --out FILE``, which records the
file's ``reward_weights``) the base the network corrects depends on the row's weights ``w``:

    log base_target(w) = sum_k b_k(w) log rule_target_k

with ``rule_target_k`` the rule with the parameters tuned at the family's k-th weighting and
``b(w)`` the barycentric coordinates of ``w`` in the Delaunay triangulation of the family's
weightings on the simplex (``w`` sums to 3): piecewise linear in the weights, exactly the k-th
rule at the k-th weighting (then its target is used as is, bit for bit), and defined everywhere
because the family must hold the simplex's three corners. The rule twin (:mod:`agents.ppo.twin`)
acts with the same base at the same weights.

What produced a result must be said: such a run's front is the family's (tuned rules) plus the
network's corrections. At a family's own weightings the base *is* that member's rule, so
``agents.tradeoffs.front --tuned-rules FILE`` with the family's files puts the base alone beside
the run at those weightings: the difference is the network's part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.common.policy import PolicyError
from agents.tradeoffs.preference import OBJECTIVES, WEIGHT_SUM, weights_label

CORNERS = ((3.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 0.0, 3.0))
"""The simplex's corners: a family must hold all three so that every weighting lies in its hull."""
_SNAP = 1e-9
"""Barycentric coordinates within this of 0 or 1 are taken as exactly 0 or 1 (a weighting of the family)."""


def read_family(rule: str, files: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """``(rule name, members)`` from tuned files; each member ``{"weights": [m, l, c] (sum 3), "params": {...}}``.

    ``rule``: a rule name, or ``best`` (the first file's best rule). One-line :class:`PolicyError` for a
    file that is missing, has no ``reward_weights`` or no parameters for the rule, a weighting given twice,
    or a family without the three corners.
    """
    from agents.rules import read_tuned

    if not isinstance(files, (list, tuple)) or len(files) < 3:
        raise PolicyError(f"residual_family = {files!r}: a list of at least 3 tuned files (python -m agents.tune "
                          "--weights ... --out FILE), the simplex's corners among them")
    name = None if rule == "best" else rule
    members: list[dict[str, Any]] = []
    for path in files:
        if not Path(str(path)).is_file():
            raise PolicyError(f"residual_family: cannot read the tuned rules {str(path)!r}")
        data = read_tuned(path)
        w = data.get("reward_weights")
        if not (isinstance(w, list) and len(w) == len(OBJECTIVES) and all(isinstance(x, (int, float)) for x in w)
                and sum(w) > 0 and min(w) >= 0):
            raise PolicyError(f"residual_family: {str(path)!r} records no reward_weights (tune it with "
                              "python -m agents.tune --weights margin=..,latency=..,churn=..)")
        name = name or data.get("best")
        entry = data["rules"].get(name)
        if entry is None or not isinstance(entry.get("params"), dict):
            raise PolicyError(f"residual_family: {str(path)!r} has no tuned parameters for the rule {name!r}")
        weights = [float(x) * WEIGHT_SUM / float(sum(w)) for x in w]
        for m in members:
            if np.allclose(m["weights"], weights, atol=1e-6):
                raise PolicyError(f"residual_family: weighting {weights_label(weights)} is given twice "
                                  f"({str(path)!r})")
        members.append({"weights": weights, "params": dict(entry["params"])})
    nodes = np.array([m["weights"] for m in members])
    missing = [weights_label(c) for c in CORNERS if not np.any(np.all(np.abs(nodes - c) < 1e-6, axis=1))]
    if missing:
        raise PolicyError(f"residual_family: no tuned file at the corner(s) {', '.join(missing)}; the family must "
                          "hold all three corners so that every weighting lies between its members")
    return str(name), members


def nearest_member(members: list[dict[str, Any]], weights=(1.0, 1.0, 1.0)) -> dict[str, Any]:
    """The member whose weighting is nearest ``weights`` (the run's plain parameters: ``1,1,1`` by default)."""
    d = [float(np.linalg.norm(np.asarray(m["weights"]) - np.asarray(weights))) for m in members]
    return members[int(np.argmin(d))]


class Blend:
    """Barycentric coordinates of weightings in the Delaunay triangulation of a family's weightings."""

    def __init__(self, nodes) -> None:
        from scipy.spatial import Delaunay

        self.nodes = np.asarray(nodes, np.float64).reshape(-1, len(OBJECTIVES))
        self._tri = Delaunay(self.nodes[:, 1:] / WEIGHT_SUM)  # (latency, churn) shares: the simplex, flat

    def coefficients(self, weights) -> np.ndarray:
        """(N, K) coefficients >= 0 summing to 1 for weights (N, 3) (rescaled to sum 3 first)."""
        w = np.asarray(weights, np.float64).reshape(-1, len(OBJECTIVES))
        x = w[:, 1:] / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        simplex = self._tri.find_simplex(x, tol=1e-9)
        if (simplex < 0).any():
            bad = w[int(np.flatnonzero(simplex < 0)[0])]
            raise PolicyError(f"weights {weights_label(bad)} lie outside the residual family's weightings")
        t = self._tri.transform[simplex]  # (N, 3, 2): barycentric = T[:2] @ (x - T[2])
        b = np.einsum("nij,nj->ni", t[:, :2], x - t[:, 2])
        bary = np.concatenate([b, 1.0 - b.sum(axis=1, keepdims=True)], axis=1)
        bary = np.where(np.abs(bary) < _SNAP, 0.0, np.where(np.abs(bary - 1.0) < _SNAP, 1.0, bary))
        bary = np.clip(bary, 0.0, 1.0)
        bary /= bary.sum(axis=1, keepdims=True)
        out = np.zeros((len(w), len(self.nodes)))
        np.put_along_axis(out, self._tri.simplices[simplex], bary, axis=1)
        return out


def selection_weights(nodes) -> list[tuple[float, ...]]:
    """The weightings a family run's model selection scores: the centroids of the triangles between the
    family's weightings. At a family weighting the base is already the rule tuned there (CMA-ES's optimum
    for it), so the corrections can only be judged where the base is a blend; the corners and the
    centre (:data:`agents.tradeoffs.preference.SELECTION_WEIGHTS`) would pick the checkpoint that moved least."""
    blend = Blend(nodes)
    return [tuple(float(x) for x in blend.nodes[tri].mean(axis=0)) for tri in blend._tri.simplices]


def blend_targets(target_of, coeffs: np.ndarray, n_tiers: int) -> np.ndarray:
    """(N, T) ``exp(sum_k coeffs[:, k] log target_k)``, with ``target_of(k, rows)`` member k's (len(rows), T)
    targets for those rows, asked only for the rows whose coefficient for k is not 0 (a rule works row by
    row: at most three members per row, however large the family). A row with a coefficient of exactly 1
    gets that member's target as is (bit for bit)."""
    n = len(coeffs)
    log_sum = np.zeros((n, n_tiers))
    out = np.empty((n, n_tiers))
    exact = np.zeros(n, bool)
    for k in range(coeffs.shape[1]):
        rows = np.flatnonzero(coeffs[:, k] > 0.0)
        if not len(rows):
            continue
        t = np.asarray(target_of(k, rows), np.float64)
        log_sum[rows] += coeffs[rows, k:k + 1] * np.log(np.maximum(t, 1e-30))
        one = coeffs[rows, k] == 1.0
        out[rows[one]] = t[one]
        exact[rows[one]] = True
    out[~exact] = np.exp(log_sum[~exact])
    return out


__all__ = ["CORNERS", "Blend", "blend_targets", "nearest_member", "read_family", "selection_weights"]
