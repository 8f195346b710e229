"""How often score mode agrees with generate mode, measured on the rows where both gave a score
(docs/evaluation.md#score-mode).

The share of rows with the same score, and Cohen's κ with quadratic weights (scikit-learn's `cohen_kappa_score`,
which the users of an evaluation kit expect; installed with sentence-transformers). The scale's values are the
labels, in order, so a 1-star disagreement on 1-5 weighs less than a 4-star one. Rows the exact-match shortcut
scored are left out: both modes give them full marks without asking, which would only inflate the agreement.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any


def agreement(score_mode: Sequence[float | None], generate_mode: Sequence[float | None],
              scale: Sequence[float]) -> dict[str, Any]:
    """n_compared, share_equal and kappa_quadratic (None when undefined: no rows, or a single label on both sides)."""
    from sklearn.metrics import cohen_kappa_score

    pairs = [(s, g) for s, g in zip(score_mode, generate_mode, strict=True) if s is not None and g is not None]
    result: dict[str, Any] = {"n_compared": len(pairs), "share_equal": None, "kappa_quadratic": None}
    if not pairs:
        return result
    result["share_equal"] = sum(1 for s, g in pairs if s == g) / len(pairs)
    labels = sorted(set(scale))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when both sides use one label: undefined
        kappa = float(cohen_kappa_score([s for s, _ in pairs], [g for _, g in pairs], labels=labels,
                                        weights="quadratic"))
    result["kappa_quadratic"] = kappa if math.isfinite(kappa) else None
    return result
