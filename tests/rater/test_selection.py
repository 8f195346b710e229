"""Selecting the questions of a rater study and writing its study folder (sure_vqa.rater.selection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sure_vqa import eval_folder as eval_files
from sure_vqa import naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.rater import selection
from sure_vqa.rater.study import load_study
from tests.helpers.rater_helpers import JUDGE, PROJECT_ROOT, make_eval_folder


@pytest.fixture()
def eval_folder(tmp_path: Path) -> tuple[Path, Path]:
    return make_eval_folder(tmp_path)


def settings(**overrides: object) -> selection.SelectionSettings:
    base = {"answer_kind": "open", "num_questions": 10, "seed": 3, "judge": JUDGE}
    return selection.SelectionSettings(**{**base, **overrides})


# --- allocation and sampling ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "capacities", "expected"),
    [
        (10, [5, 5, 5, 5, 5], [2, 2, 2, 2, 2]),
        (50, [30, 5, 20, 40, 2], [15, 5, 14, 14, 2]),  # 10 each; 5 and 2 are full; 13 left -> 5, 4, 4
        (7, [1, 10, 10], [1, 3, 3]),
        (11, [4, 4, 4], [4, 4, 3]),  # the remainder goes to the first strata
        (100, [3, 4], [3, 4]),  # more asked than there is
        (0, [3, 4], [0, 0]),
    ],
)
def test_allocate_splits_evenly_and_refills_from_large_strata(total, capacities, expected):
    assert selection.allocate(total, capacities) == expected


def test_candidates_keep_only_differing_answers_of_the_kind(eval_folder):
    eval_dir, _ = eval_folder
    rows = selection.load_test_results(eval_dir / naming.TEST_RESULTS_FILE)
    pool = selection.candidates(rows, "open")
    # 30 open rows; every 6th pair is "liver"/"liver" (i % 6 == 3): 5 of them are identical
    assert len(pool) == 25
    assert all(row["answer_type"] == "OPEN" and row["gt"] != row["pred"] for row in pool)
    assert [row["qid"] for row in pool] == sorted(row["qid"] for row in pool)
    # "the liver" vs "liver" differs, case/space/final period do not (the judge's shortcut test)
    assert selection.candidates([{**rows[0], "gt": "Liver.", "pred": " liver "}], "open") == []
    assert len(selection.candidates(rows, "closed")) == 8


def test_sample_is_seeded_and_independent_of_row_order(eval_folder):
    eval_dir, _ = eval_folder
    rows = selection.load_test_results(eval_dir / naming.TEST_RESULTS_FILE)
    pool = selection.candidates(rows, "open")
    first, _ = selection.sample_questions(pool, 10, seed=7)
    again, _ = selection.sample_questions(selection.candidates(list(reversed(rows)), "open"), 10, seed=7)
    other, _ = selection.sample_questions(pool, 10, seed=8)
    assert [r["qid"] for r in first] == [r["qid"] for r in again]
    assert [r["qid"] for r in first] != [r["qid"] for r in other]
    assert len({r["qid"] for r in first}) == 10
    everything, summary = selection.sample_questions(pool, 100, seed=7)
    assert len(everything) == 25 and summary == {"n_candidates": 25}


def test_stratified_sample_spreads_over_judge_scores(eval_folder):
    eval_dir, _ = eval_folder
    rows = selection.load_test_results(eval_dir / naming.TEST_RESULTS_FILE)
    scores = eval_files.read_judge_scores(eval_dir / f"{JUDGE}_metrics.json", JUDGE)
    pool = selection.candidates(rows, "open")
    chosen, summary = selection.sample_questions(pool, 10, seed=1, judge_scores=scores, stratify_by_judge=True)
    per_score = {}
    for row in chosen:
        per_score[scores[row["qid"]]] = per_score.get(scores[row["qid"]], 0) + 1
    assert per_score == {1.0: 2, 2.0: 2, 3.0: 2, 4.0: 2, 5.0: 2}
    assert summary["per_judge_score"] == {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2}
    failures = sum(scores[row["qid"]] is None for row in pool)
    assert summary["left_out_without_judge_score"] == failures > 0


def test_judge_scores_read_from_metrics_layout_and_plain_list(tmp_path):
    path = tmp_path / "gemma_metrics.json"
    path.write_text(json.dumps([{"avg_gemma_score": 3.0}, {"qid": 1, "gemma_score": 4},
                                {"qid": "2", "gemma_score": None}, {"qid": "3", "gemma_score": "n/a"}]))
    assert eval_files.read_judge_scores(path, "gemma") == {"1": 4.0, "2": None, "3": None}
    path.write_text(json.dumps([{"qid": "a", "score": 0.5}]))
    assert eval_files.read_judge_scores(path, "gemma") == {"a": 0.5}
    path.write_text(json.dumps([{"qid": "a", "stars": 3}]))
    with pytest.raises(DataError, match="gemma_score, gemma, score, judge_score"):
        eval_files.read_judge_scores(path, "gemma")


def test_bad_test_results_name_the_file_and_row(tmp_path):
    path = tmp_path / naming.TEST_RESULTS_FILE
    path.write_text(json.dumps([{"qid": "1", "question": "q", "gt": "a", "pred": "b", "answer_type": "OPEN"}]))
    with pytest.raises(DataError, match=r"row 0 \(qid .1.\) lacks img_name"):
        selection.load_test_results(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        selection.load_test_results(path)


# --- the study folder ----------------------------------------------------------------------------


def test_study_folder_holds_items_and_copied_images(eval_folder):
    eval_dir, image_root = eval_folder
    folder = selection.create_study(eval_dir, settings(), selection.image_folder_resolver(image_root))
    assert folder == naming.rater_study_dir(eval_dir, "open")
    study = load_study(folder)
    assert len(study.items) == 10 and study.answer_kind == "open"
    assert study.eval_dir == eval_dir.resolve()
    results = {r["qid"]: r for r in json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())}
    judge = eval_files.read_judge_scores(eval_dir / f"{JUDGE}_metrics.json", JUDGE)
    for item in study.items:
        source = results[item.qid]
        assert (item.question, item.gt, item.pred, item.img_name) == (
            source["question"], source["gt"], source["pred"], source["img_name"])
        assert item.scale == "open" and item.judge_score == judge[item.qid]
        copied = folder / item.image
        assert copied.read_bytes() == (image_root / item.img_name).read_bytes()
        assert "img_" not in copied.name  # content-hash names: nothing about the source leaks to raters
    # questions that share a source image share one copy
    assert len(list((folder / naming.RATER_IMAGES_DIR).iterdir())) == len({i.img_name for i in study.items})


def test_closed_study_routes_questions_to_the_judges_rubrics(eval_folder):
    eval_dir, image_root = eval_folder
    folder = selection.create_study(eval_dir, settings(answer_kind="closed"), selection.image_folder_resolver(image_root))
    study = load_study(folder)
    scales = {item.qid: item.scale for item in study.items}
    assert scales == {"c000": "closed", "c001": "closed", "c002": "closed", "c003": "two_option",
                      "c004": "closed", "c005": "closed", "c006": "closed", "c007": "two_option"}
    assert study.meta["selection"]["n_selected"] == 8  # fewer candidates than asked: all of them


def test_the_judges_own_rubric_decides_a_closed_questions_scale(eval_folder, tmp_path):
    eval_dir, image_root = eval_folder
    # without answer categories, routing alone would put every closed question on the 0/1 scale
    rows = json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())
    for row in rows:
        row.pop("answer_categories", None)
    (eval_dir / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    assert selection.load_judge_rubrics(eval_dir / f"{JUDGE}_metrics_closed.json")["c003"] == "two_option"
    folder = selection.create_study(eval_dir, settings(answer_kind="closed"), selection.image_folder_resolver(image_root))
    assert {i.qid: i.scale for i in load_study(folder).items}["c003"] == "two_option"
    (eval_dir / f"{JUDGE}_metrics_closed.json").unlink()
    other = selection.create_study(eval_dir, settings(answer_kind="closed"), selection.image_folder_resolver(image_root),
                                   study_dir=tmp_path / "routed")
    assert {i.scale for i in load_study(other).items} == {"closed"}


def test_rerun_with_same_settings_is_a_no_op_and_other_settings_are_refused(eval_folder):
    eval_dir, image_root = eval_folder
    resolver = selection.image_folder_resolver(image_root)
    folder = selection.create_study(eval_dir, settings(), resolver)
    study_json = folder / naming.RATER_STUDY_FILE
    before = (study_json.read_bytes(), study_json.stat().st_mtime_ns)
    assert selection.create_study(eval_dir, settings(), resolver) == folder
    assert (study_json.read_bytes(), study_json.stat().st_mtime_ns) == before
    with pytest.raises(ConfigError, match="already holds a study selected with other settings"):
        selection.create_study(eval_dir, settings(seed=4), resolver)
    # new predictions (a re-run of inference) also make the old study stale, and it is kept
    rows = json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())
    rows[0]["pred"] = "something else"
    (eval_dir / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    with pytest.raises(ConfigError, match="other results"):
        selection.create_study(eval_dir, settings(), resolver)
    assert study_json.read_bytes() == before[0]


def test_missing_image_names_the_file(eval_folder):
    eval_dir, image_root = eval_folder
    (image_root / "img_1.png").unlink()
    with pytest.raises(DataError, match=r"img_1\.png does not exist"):
        selection.create_study(eval_dir, settings(num_questions=30), selection.image_folder_resolver(image_root))
    assert not (naming.rater_study_dir(eval_dir, "open") / naming.RATER_STUDY_FILE).exists()


def test_images_a_browser_cannot_show_become_png(tmp_path):
    deep = np.linspace(0, 4000, 32 * 24, dtype=np.uint16).reshape(24, 32)
    tiff = tmp_path / "scan.tif"
    Image.fromarray(deep).save(tiff)
    name = selection.copy_image(tiff, tmp_path / "images")
    assert name.startswith("images/") and name.endswith(".png")
    with Image.open(tmp_path / name) as converted:
        assert converted.format == "PNG" and converted.mode == "RGB" and converted.size == (32, 24)
        pixels = np.asarray(converted)
    assert pixels.min() == 0 and pixels.max() == 255  # rescaled by the range, not clipped to white
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="cannot be read as an image"):
        selection.copy_image(broken, tmp_path / "images")


def test_stratifying_needs_the_judge_file(eval_folder):
    eval_dir, image_root = eval_folder
    (eval_dir / f"{JUDGE}_metrics.json").unlink()
    with pytest.raises(ConfigError, match="gemma_metrics.json does not exist"):
        selection.create_study(eval_dir, settings(stratify_by_judge=True), selection.image_folder_resolver(image_root))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"answer_kind": "both"}, "answer_kind='both' is not valid"),
     ({"num_questions": 0}, "num_questions=0 is not valid"),
     ({"stratify_by_judge": True, "judge": None}, "needs a judge name")],
)
def test_bad_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        settings(**overrides).check()


# --- the entry script ----------------------------------------------------------------------------


def run_select(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATASET_ROOT_DIR": "", "EXPERIMENT_ROOT_DIR": ""}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "human_rater_study" / "select_questions.py"), *overrides,
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_select_entry_writes_the_study_and_exits_2_on_bad_settings(eval_folder, tmp_path):
    eval_dir, image_root = eval_folder
    done = run_select(tmp_path, f"eval_dir={eval_dir}", f"rater.image_root={image_root}", "rater.num_questions=5",
                      "rater.stratify_by_judge=true", "rater.study_id=pilot-1")
    assert done.returncode == 0, done.stderr
    study = load_study(naming.rater_study_dir(eval_dir, "open"))
    assert study.study_id == "pilot-1" and len(study.items) == 5
    bad = run_select(tmp_path, f"eval_dir={eval_dir}", f"rater.image_root={image_root}", "rater.answer_kind=both")
    assert bad.returncode == 2 and "rater.answer_kind='both' is not valid" in bad.stderr
    bad_id = run_select(tmp_path, f"eval_dir={eval_dir}", f"rater.image_root={image_root}", "rater.study_id=../x",
                        f"rater.study_dir={tmp_path / 'other'}")
    assert bad_id.returncode == 2 and "study_id='../x' is not valid" in bad_id.stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.slow
def test_select_entry_finds_images_through_the_split_records(tmp_path):
    """The demo dataset (real images, SLAKE layout): select_questions.py locates each image from the val split's records."""
    from sure_vqa.data.splits import split_records
    from sure_vqa.demo.dataset import build_demo

    dataset_root = tmp_path / "datasets"
    build_demo(dataset_root / naming.DEMO_DATASET)
    records = split_records(dataset_root, naming.DEMO_DATASET, "val", "all")
    eval_dir = tmp_path / "eval" / "demo_val_all"
    eval_dir.mkdir(parents=True)
    rows = [{"qid": r.qid, "question": r.question, "gt": r.answer, "pred": "a different answer",
             "answer_type": r.answer_type, "img_name": r.img_name} for r in records]
    (eval_dir / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    done = run_select(tmp_path, f"eval_dir={eval_dir}", f"paths.dataset_root={dataset_root}",
                      f"dataset={naming.DEMO_DATASET}", "split=all", "mod=val", "rater.num_questions=6", "judge.name=null")
    assert done.returncode == 0, done.stderr
    study = load_study(naming.rater_study_dir(eval_dir, "open"))
    by_qid = {r.qid: r for r in records}
    for item in study.items:
        source = dataset_root / naming.DEMO_DATASET / by_qid[item.qid].image
        assert (study.folder / item.image).read_bytes() == source.read_bytes()


def test_an_info_file_without_the_split_selection_is_read_through_the_split_name(tmp_path):
    """An inference_info.json written before it recorded `split_selection` names the split in settings.test_split;
    the study reads dataset, mod, split and shift from that name instead of the rater config's OVQA defaults."""
    from tests.helpers.training_fixtures import write_colour_slake

    dataset_root = tmp_path / "datasets"
    write_colour_slake(dataset_root, n_train=4)
    eval_dir = tmp_path / "eval" / "SLAKE_test_ood_modality_X-Ray"
    eval_dir.mkdir(parents=True)
    (eval_dir / naming.INFERENCE_INFO_FILE).write_text(json.dumps(
        {"settings": {"test_split": "SLAKE_test_ood_modality_X-Ray"}}))
    rows = [{"qid": qid, "question": "What colour is the image?", "gt": "red", "pred": "green", "answer_type": "OPEN",
             "img_name": f"xmlab{qid}/source.png"} for qid in ("2003", "5", "6")]  # test + train ood questions
    (eval_dir / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    done = run_select(tmp_path, f"eval_dir={eval_dir}", f"paths.dataset_root={dataset_root}", "rater.num_questions=3",
                      "judge.name=null")
    assert done.returncode == 0, done.stderr
    study = load_study(naming.rater_study_dir(eval_dir, "open"))
    assert sorted(item.qid for item in study.items) == ["2003", "5", "6"]

    (eval_dir / naming.INFERENCE_INFO_FILE).write_text(json.dumps({"settings": {"test_split": "not a split"}}))
    bad = run_select(tmp_path, f"eval_dir={eval_dir}", f"paths.dataset_root={dataset_root}",
                     f"rater.study_dir={tmp_path / 'other'}", "judge.name=null")
    assert bad.returncode == 2 and "names no split the rater study can read" in bad.stderr
