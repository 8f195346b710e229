"""The extra open-question metrics: ROUGE-L (hand-computed) and MiniLM embedding similarity (the real model)."""

from __future__ import annotations

import pytest

from sure_vqa.config import ConfigError
from sure_vqa.evaluate.metrics.open.embedding_similarity import embedding_similarity
from sure_vqa.evaluate.metrics.open.rouge_l import rouge_l
from sure_vqa.evaluate.metrics.registry import check_extra_metrics
from sure_vqa.evaluate.metrics.traditional import score_open_rows


def test_rouge_l_hand_computed() -> None:
    # normalised: "left upper lobe" vs "left lobe": LCS 2, precision 2/2, recall 2/3 -> F = 0.8
    assert rouge_l("left upper lobe", "the left lobe") == pytest.approx(0.8)
    assert rouge_l("liver", "Liver.") == 1.0
    assert rouge_l("liver", "") == 0.0
    assert rouge_l("liver", "kidney") == 0.0


def test_check_extra_metrics_names_the_setting() -> None:
    assert check_extra_metrics(None) == []
    with pytest.raises(ConfigError, match="extra_metrics.*bleurt.*rouge_l, embedding_similarity"):
        check_extra_metrics(["bleurt"])


@pytest.mark.slow
def test_embedding_similarity_with_minilm() -> None:
    sims = embedding_similarity(
        ["left lung", "left lung", "left lung", "liver"],
        ["left lung", "the left lung", "femur fracture", ""],
    )
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert sims[1] > 0.9 > sims[2]
    assert sims[3] == 0.0


@pytest.mark.slow
def test_extra_metrics_add_rows_and_averages_after_the_papers() -> None:
    rows = [{"qid": "1", "question": "q", "gt": "left upper lobe", "pred": "the left lobe", "answer_type": "OPEN"},
            {"qid": "2", "question": "q", "gt": "liver", "pred": "liver", "answer_type": "OPEN"}]
    results = score_open_rows(rows, ["embedding_similarity", "rouge_l"])
    assert list(results[0])[-3:] == ["n_rows", "avg_rouge_l", "avg_embedding_similarity"]
    assert list(results[1])[-2:] == ["rouge_l", "embedding_similarity"]
    assert results[0]["avg_rouge_l"] == pytest.approx((0.8 + 1.0) / 2)
    assert results[2]["embedding_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert 0 < results[0]["avg_embedding_similarity"] <= 1.0
