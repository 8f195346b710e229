"""The rater-study analysis (sure_vqa.rater.analysis) against figures computed by hand, and end to end on files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import ConfigError
from sure_vqa.eval_folder import read_judge_scores
from sure_vqa.rater import analysis, results, selection, statistics
from sure_vqa.rater.db import RatingStore
from sure_vqa.rater.export import export_ratings
from sure_vqa.rater.study import load_study
from tests.helpers.rater_helpers import JUDGE, PROJECT_ROOT, make_eval_folder


def test_kendall_tau_b_and_spearman_with_ties_match_the_hand_count():
    x = [1, 2, 2, 3, 4]
    y = [1, 3, 2, 2, 4]
    # The 10 pairs (i, j): concordant (0,1) (0,2) (0,3) (0,4) (1,4) (2,4) (3,4) -> C = 7; discordant (1,3) -> D = 1;
    # (1,2) tied in x only, (2,3) tied in y only. tau-b = (C - D) / sqrt((C + D + 1) * (C + D + 1)) = 6 / 9.
    concordant, discordant, tied_x_only, tied_y_only = 7, 1, 1, 1
    tau_b = (concordant - discordant) / math.sqrt(
        (concordant + discordant + tied_x_only) * (concordant + discordant + tied_y_only))
    # Spearman: Pearson of mid-ranks. ranks x = 1, 2.5, 2.5, 4, 5; ranks y = 1, 4, 2.5, 2.5, 5; both means 3.
    # deviations x = -2, -.5, -.5, 1, 2; y = -2, 1, -.5, -.5, 2: sum of products 7.25, sums of squares 9.5 each.
    rho = 7.25 / math.sqrt(9.5 * 9.5)
    result = statistics.correlate(x, y)
    assert result.n == 5
    assert result.kendall_tau == pytest.approx(tau_b) == pytest.approx(2 / 3)
    assert result.spearman_rho == pytest.approx(rho) == pytest.approx(29 / 38)


def test_p_values_match_the_exact_distribution_for_four_items():
    # y swaps the last two of x: 5 concordant, 1 discordant pair -> tau = 4/6. Of the 24 orderings of 4 items,
    # |tau| >= 4/6 needs at most 1 or at least 5 inversions: 1 + 3 + 3 + 1 = 8 orderings -> p = 8/24.
    # Spearman: rho = 1 - 6 * (1 + 1) / (4 * 15) = 0.8; with n - 2 = 2 degrees of freedom the two-sided p of
    # t = rho * sqrt(2 / (1 - rho^2)) is 1 - t / sqrt(t^2 + 2) = 1 - rho = 0.2.
    result = statistics.correlate([1, 2, 3, 4], [1, 2, 4, 3])
    assert result.kendall_tau == pytest.approx(4 / 6)
    assert result.kendall_p == pytest.approx(8 / 24)
    assert result.spearman_rho == pytest.approx(0.8)
    assert result.spearman_p == pytest.approx(0.2)


def test_missing_values_are_left_out_and_constant_sides_are_undefined():
    result = statistics.correlate([1, np.nan, 2, 3, 4], [1, 5, 2, np.nan, 4])
    assert result.n == 3 and result.kendall_tau == pytest.approx(1.0)
    constant = statistics.correlate([3, 3, 3], [1, 2, 3])
    assert constant.n == 3 and math.isnan(constant.kendall_tau) and math.isnan(constant.spearman_p)


def test_pooled_human_scores_pair_every_rater_with_the_metric():
    human = np.array([[1, 2], [2, 2], [3, 3]], dtype=float)  # questions x raters (A = 1,2,3; B = 2,2,3)
    metric = np.array([0.1, 0.5, 0.9])
    x, y = statistics.pooled(human, metric)
    assert x.tolist() == [1, 2, 3, 2, 2, 3] and y.tolist() == [0.1, 0.5, 0.9, 0.1, 0.5, 0.9]
    # By hand over the 15 pairs: C = 10, D = 0; 4 pairs tied in x ((1,3), (3,4), and (1,4), (2,5) tied in both),
    # 3 tied in y ((0,3), (1,4), (2,5)): tau-b = 10 / sqrt((15 - 4) * (15 - 3)).
    assert statistics.correlate(x, y).kendall_tau == pytest.approx(10 / math.sqrt(11 * 12))


def test_human_human_is_the_mean_over_rater_pairs():
    a, b, c = [1, 2, 3, 4], [1, 2, 4, 3], [4, 3, 2, 1]
    human = np.array([a, b, c], dtype=float).T
    # tau(a, b) = 2/3 (one discordant pair of six), tau(a, c) = -1 (reversed), tau(b, c) = -2/3
    assert statistics.mean_over_rater_pairs(human, statistics.kendall_tau) == pytest.approx((2 / 3 - 1 - 2 / 3) / 3)


def test_krippendorff_ordinal_alpha_matches_the_hand_computation():
    # Raters A = 1, 2, 3, 3 and B = 1, 3, 3, 2 on four questions. Coincidences: o11 = 2, o23 = o32 = 2, o33 = 2;
    # value counts n1 = 2, n2 = 2, n3 = 4, n = 8. Ordinal distances (sum of counts from c to k minus half the ends,
    # squared): d12 = (4 - 2)^2 = 4, d13 = (8 - 3)^2 = 25, d23 = (6 - 3)^2 = 9.
    # D_o = (2 * 9 + 2 * 9) / 8 = 4.5; D_e = 2 * (2*2*4 + 2*4*25 + 2*4*9) / (8 * 7) = 576 / 56.
    expected = 1 - 4.5 / (576 / 56)
    human = np.array([[1, 2, 3, 3], [1, 3, 3, 2]], dtype=float).T
    assert statistics.krippendorff_alpha(human, [1, 2, 3, 4, 5]) == pytest.approx(expected) == pytest.approx(0.5625)
    assert math.isnan(statistics.krippendorff_alpha(np.array([[2, 2], [2, 2]], dtype=float), [1, 2, 3, 4, 5]))


def test_bootstrap_interval_is_seeded_and_degenerate_resamples_are_counted():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    def mean(idx: np.ndarray) -> float:
        return float(values[idx].mean())

    first = statistics.bootstrap_interval(mean, 6, 300, 0.9, np.random.default_rng(5))
    again = statistics.bootstrap_interval(mean, 6, 300, 0.9, np.random.default_rng(5))
    assert first == again and 1.0 <= first.low < 3.5 < first.high <= 6.0 and first.n_undefined == 0
    human = np.array([[1, 1], [2, 2], [3, 3], [4, 4]], dtype=float)
    agree = statistics.bootstrap_interval(lambda idx: statistics.mean_over_rater_pairs(human[idx], statistics.kendall_tau), 4, 200,
                                        0.95, np.random.default_rng(0))
    # identical raters agree perfectly in every resample; resamples of one repeated question are undefined
    assert (agree.low, agree.high) == (1.0, 1.0) and 0 < agree.n_undefined < 200


def test_analyse_tables_in_memory():
    qids = ["q1", "q2", "q3", "q4", "q5"]
    human = pd.DataFrame({"a": [1, 2, 2, 3, 4], "b": [1, 3, 2, 2, 4]}, index=qids, dtype=float)
    automatic = pd.DataFrame({"LLM judge (gemma)": [1, 3, np.nan, 2, 4], "F1": [0.0, 0.4, 0.4, 0.6, 1.0]},
                             index=qids)
    result = analysis.analyse(human, automatic, "open", "LLM judge (gemma)", n_resamples=50, seed=1)
    by_scorer = {c.scorer: c for c in result.versus_human}
    assert by_scorer["Human"].correlation.kendall_tau == pytest.approx(2 / 3)  # one pair of raters: its tau
    assert by_scorer["LLM judge (gemma)"].correlation.n == 8  # 4 judged questions x 2 raters
    assert by_scorer["F1"].correlation.kendall_tau == pytest.approx(statistics.correlate(
        [1, 2, 2, 3, 4, 1, 3, 2, 2, 4], [0.0, 0.4, 0.4, 0.6, 1.0] * 2).kendall_tau)
    assert result.judge_failures == 1
    assert result.matrix_scorers == ["a", "b", "LLM judge (gemma)", "F1"]
    assert result.kendall_matrix[0][1] == pytest.approx(2 / 3) and result.kendall_matrix[0][0] == pytest.approx(1)
    assert result.krippendorff_alpha == pytest.approx(statistics.krippendorff_alpha(human.to_numpy(), [1, 2, 3, 4, 5]))
    table = results.markdown_table(result)
    assert "| Human | 5 | 0.67 |" in table and "| a | b | 5 | 0.67 |" in table
    with pytest.raises(ConfigError, match="confidence"):
        analysis.analyse(human, automatic, "open", confidence=1.5)


# --- end to end on files ---------------------------------------------------------------------------


@pytest.fixture()
def rated_study(tmp_path: Path):
    """A study rated by three raters through the real database and export."""
    eval_dir, image_root = make_eval_folder(tmp_path, n_open=36)
    settings = selection.SelectionSettings(answer_kind="open", num_questions=20, seed=2, judge=JUDGE)
    study = load_study(selection.create_study(eval_dir, settings, selection.image_folder_resolver(image_root)))
    store = RatingStore(study.folder / naming.RATER_DB_FILE)
    rng = np.random.default_rng(0)
    for rater in ("alice", "bob", "carol"):
        store.register_rater(rater)
        for k, item in enumerate(study.items):
            base = item.judge_score if item.judge_score is not None else 3.0
            score = float(np.clip(base + rng.integers(-1, 2), 1, 5))
            store.save_rating(study.study_id, rater, item.qid, score, f"{rater}-req-{k:04d}")
    export_ratings(study)
    return study


def test_run_analysis_writes_tables_and_plots(rated_study, tmp_path):
    study = rated_study
    out = tmp_path / "analysis"
    result, written = analysis.run_analysis(study.eval_dir, "open", judge=JUDGE, out_dir=out, n_resamples=50)
    names = {p.name for p in written}
    assert {"kendall_heatmap.png", "spearman_heatmap.png", results.TABLE_FILE,
            results.CORRELATIONS_FILE} <= names
    assert naming.rater_scatter_file("Human", "LLM judge (gemma)") in names
    assert naming.rater_scatter_file("alice", "bob") in names
    for path in written:
        if path.suffix == ".png":
            with Image.open(path) as image:
                assert image.format == "PNG" and image.size[0] > 300
    assert result.raters == ["alice", "bob", "carol"] and result.n_questions == 20
    expected_failures = sum(item.judge_score is None for item in study.items)
    assert result.judge_failures == expected_failures
    # the file's numbers are the ones recomputed from the exports and the judge file
    human = analysis.load_human_scores(study.eval_dir, "open")
    judge = read_judge_scores(study.eval_dir / f"{JUDGE}_metrics.json", JUDGE)
    judge_column = np.array([np.nan if judge[q] is None else judge[q] for q in human.index])
    expected = statistics.correlate(*statistics.pooled(human.to_numpy(), judge_column))
    saved = json.loads((out / results.CORRELATIONS_FILE).read_text())
    judge_row = next(c for c in saved["versus_human"] if c["scorer"] == "LLM judge (gemma)")
    assert judge_row["correlation"]["kendall_tau"] == pytest.approx(expected.kendall_tau)
    assert judge_row["correlation"]["n"] == 3 * (20 - expected_failures)
    low, high = judge_row["kendall_interval"]["low"], judge_row["kendall_interval"]["high"]
    assert low <= expected.kendall_tau <= high
    assert [c["scorer"] for c in saved["versus_human"]] == [
        "Human", "LLM judge (gemma)", "exact match", "F1", "precision", "recall", "BLEU-1", "BLEU-2", "BLEU-3"]
    assert saved["krippendorff_alpha"] is not None and len(saved["rater_pairs"]) == 3
    table = (out / results.TABLE_FILE).read_text()
    assert "Krippendorff's α (ordinal)" in table and "| LLM judge (gemma) | " in table


@pytest.mark.slow
def test_analyze_entry_exports_and_analyses(rated_study, tmp_path):
    study = rated_study
    for path in study.eval_dir.glob("human_metrics_*.json"):
        path.unlink()  # the entry exports from the database again
    env = {**os.environ, "DATASET_ROOT_DIR": "", "EXPERIMENT_ROOT_DIR": ""}
    command = [sys.executable, str(PROJECT_ROOT / "human_rater_study" / "analyze.py"),
               f"rater.study_dir={study.folder}", "rater.n_resamples=50", f"hydra.run.dir={tmp_path / 'hydra'}"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list(study.eval_dir.glob("human_metrics_open_*.json"))) == 3
    assert (study.folder / naming.RATER_ANALYSIS_DIR / results.TABLE_FILE).is_file()
    missing = subprocess.run(command[:2] + [f"rater.study_dir={tmp_path / 'nowhere'}", command[-1]], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
