"""The inference stage end to end on the tiny LLaVA and the demo dataset (real files, real model).

Runs use the zero-shot configuration (config inference/inference_pretrained_defaults) with the tiny model as the
base model, on the demo's ood split for content_type=Size (18 questions about 9 images).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import ConfigError
from sure_vqa.data.splits import record_image_path, split_records
from sure_vqa.demo.dataset import build_demo
from sure_vqa.images.corruptions import corrupt, draw_parameters
from sure_vqa.images.loading import expand_to_square, load_image, processor_fill
from sure_vqa.infer.generation.prediction_log import HEADER_KEY, read_rows
from sure_vqa.infer.run import run_inference
from sure_vqa.models.loading import load_processor
from tests.helpers.inference_helpers import BATCH, PRETRAINED, RUN, GenerateSpy, compose_cfg, digest

ROW_KEYS = ["qid", "question", "gt", "pred", "answer_type", "img_name", "answer_categories"]
PROBABILITIES = {"blur": 0.5, "brightness": 0.3, "noise": 0.6}
STRENGTHS = {"blur": "high", "brightness": "low", "noise": "medium"}


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    build_demo(root / "demo")
    return root


@pytest.fixture(scope="module")
def records(dataset_root):
    return split_records(dataset_root, "demo", "test", "ood", "content_type", "Size")


@pytest.fixture
def make_cfg(dataset_root, tiny_llava_dir, tmp_path):
    def make(*overrides, name: str = PRETRAINED, root: Path | None = None):
        return compose_cfg(dataset_root, root or tmp_path / "experiments", tiny_llava_dir, overrides, name)

    return make


@pytest.fixture(scope="module")
def clean_results(dataset_root, tiny_llava_dir, tmp_path_factory) -> list[dict]:
    """One uninterrupted run: the reference for batch-size, resume and stale-log comparisons."""
    cfg = compose_cfg(dataset_root, tmp_path_factory.mktemp("clean"), tiny_llava_dir)
    return json.loads(run_inference(cfg).read_text(encoding="utf-8"))


def test_results_follow_the_split_and_keep_the_original_keys(clean_results, records):
    assert [row["qid"] for row in clean_results] == [r.qid for r in records]
    for row, record in zip(clean_results, records, strict=True):
        assert list(row) == ROW_KEYS
        assert (row["question"], row["gt"], row["answer_type"]) == (record.question, record.answer, record.answer_type)
        assert row["img_name"] == record.img_name and row["answer_categories"] == record.categories
        assert isinstance(row["pred"], str) and row["pred"]
    assert any(row["answer_categories"] == ["yes", "no"] for row in clean_results)


def test_batch_size_does_not_change_the_results(make_cfg, clean_results, tmp_path):
    cfg = make_cfg("batch_size=1", f"eval_dir={tmp_path / 'one_at_a_time'}")
    assert json.loads(run_inference(cfg).read_text(encoding="utf-8")) == clean_results


def test_a_run_writes_its_info_and_removes_its_log(make_cfg, tmp_path):
    results = run_inference(make_cfg())
    eval_dir = results.parent
    assert eval_dir == tmp_path / "experiments" / "demo" / "pretrained" / "eval" / RUN
    info = json.loads((eval_dir / naming.INFERENCE_INFO_FILE).read_text())
    assert info["num_rows"] == 18 and len(info["fingerprint"]) == 64
    assert info["settings"]["generation"] == {"max_new_tokens": 3, "do_sample": False}
    assert info["settings"]["pad_to_square"] is True  # LLaVA(-Med) v1.5 pads; so does the zero-shot run
    assert sorted(p.name for p in eval_dir.iterdir()) == sorted([naming.INFERENCE_INFO_FILE, naming.TEST_RESULTS_FILE,
                                                                 naming.run_lock_name("inference")])


def test_a_finished_run_is_skipped_and_a_changed_one_refused(make_cfg, monkeypatch, caplog):
    results = run_inference(make_cfg())
    before = (results.stat().st_mtime_ns, results.read_bytes())
    spy = GenerateSpy(monkeypatch)
    with caplog.at_level(logging.INFO, logger="sure_vqa.infer.run"):
        assert run_inference(make_cfg()) == results
    assert "skipping" in caplog.text and "finished" in caplog.text
    assert spy.calls == [] and (results.stat().st_mtime_ns, results.read_bytes()) == before
    with pytest.raises(ConfigError, match="settings differ: generation"):
        run_inference(make_cfg("max_new_tokens=5"))
    assert (results.stat().st_mtime_ns, results.read_bytes()) == before


def test_results_written_by_the_original_code_are_skipped(make_cfg, tmp_path, caplog):
    eval_dir = tmp_path / "legacy"
    eval_dir.mkdir()
    (eval_dir / naming.TEST_RESULTS_FILE).write_text("[]")
    with caplog.at_level(logging.INFO, logger="sure_vqa.infer.run"):
        run_inference(make_cfg(f"eval_dir={eval_dir}"))
    assert "original SURE-VQA code" in caplog.text
    assert (eval_dir / naming.TEST_RESULTS_FILE).read_text() == "[]"


def test_a_corrupted_run_sees_exactly_the_corruption_modules_images(make_cfg, records, dataset_root,
                                                                   tiny_llava_dir, monkeypatch):
    overrides = ["corruption=true", "seed=7", "num_workers=2"]  # images corrupted in DataLoader workers
    overrides += [f"corruption_probabilities.{k}={v}" for k, v in PROBABILITIES.items()]
    overrides += [f"corruption_strength.{k}={v}" for k, v in STRENGTHS.items()]
    spy = GenerateSpy(monkeypatch)
    results = run_inference(make_cfg(*overrides))
    assert results.parent.name == f"{RUN}_corruption_blur-high-p0.5_brightness-low-p0.3_noise-medium-p0.6"
    fill = processor_fill(load_processor(tiny_llava_dir).image_processor)
    expected = []
    rows = {row["qid"]: row for row in json.loads(results.read_text())}
    for record in records:
        original = load_image(record_image_path(dataset_root, "demo", record))
        corrupted, params = corrupt(original, 7, record.qid, PROBABILITIES, STRENGTHS)
        expected.append(digest(np.asarray(expand_to_square(Image.fromarray(corrupted), fill))))
        assert rows[record.qid]["corruption"] == params
        assert params == draw_parameters(7, record.qid, PROBABILITIES, STRENGTHS, np.asarray(original).shape)
        assert expected[-1] != digest(np.asarray(expand_to_square(original, fill)))  # every image is corrupted
    assert Counter(digest(image) for image in spy.images) == Counter(expected)
    applied = Counter(name for row in rows.values() for name in row["corruption"]["applied"])
    assert set(applied) == {"blur", "brightness", "noise"}


def test_the_blank_control_shows_a_black_image_of_the_same_size(make_cfg, records, dataset_root, monkeypatch):
    spy = GenerateSpy(monkeypatch)
    results = run_inference(make_cfg("image_control=blank", "pad_to_square=false"))
    assert results.parent.name == f"{RUN}_blank_image"
    sizes = Counter(np.asarray(load_image(record_image_path(dataset_root, "demo", r))).shape for r in records)
    assert Counter(image.shape for image in spy.images) == sizes
    assert all(not image.any() for image in spy.images)


def test_the_shuffled_control_shows_another_images_picture(make_cfg, records, dataset_root, monkeypatch):
    spy = GenerateSpy(monkeypatch)
    results = run_inference(make_cfg("image_control=shuffled", "pad_to_square=false"))
    assert results.parent.name == f"{RUN}_shuffled_image"
    rows = json.loads(results.read_text())
    own = {r.qid: r.image for r in records}
    shown = {row["qid"]: row["control_image"] for row in rows}
    assert all(shown[qid] != own[qid] for qid in own)
    mapping = {own[qid]: shown[qid] for qid in own}  # a function of the image: one replacement per image
    assert len({(own[q], shown[q]) for q in own}) == len(mapping) == 9
    assert sorted(mapping.values()) == sorted(mapping)  # a permutation of the split's images
    by_path = {r.image: r for r in records}
    expected = Counter(digest(np.asarray(load_image(record_image_path(dataset_root, "demo", by_path[shown[q]]))))
                       for q in own)
    assert Counter(digest(image) for image in spy.images) == expected


def test_a_no_image_run_sends_no_images(make_cfg, monkeypatch):
    spy = GenerateSpy(monkeypatch)
    results = run_inference(make_cfg("no_image=true"))
    assert results.parent.name == f"{RUN}_no_image"
    assert spy.calls and all(images is None for _, images in spy.calls)
    assert all("<image>" not in prompt for prompts, _ in spy.calls for prompt in prompts)
    assert len(json.loads(results.read_text())) == 18


def test_an_interrupted_run_resumes_where_it_stopped(make_cfg, clean_results, monkeypatch, tmp_path):
    eval_dir = tmp_path / "resumed"
    GenerateSpy(monkeypatch, fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        run_inference(make_cfg(f"eval_dir={eval_dir}"))
    logged = read_rows(eval_dir / naming.PREDICTION_LOG_FILE)
    assert len(logged) == 2 * BATCH and not (eval_dir / naming.TEST_RESULTS_FILE).exists()
    spy = GenerateSpy(monkeypatch)
    results = run_inference(make_cfg(f"eval_dir={eval_dir}"))
    assert spy.questions_answered == 18 - 2 * BATCH
    assert json.loads(results.read_text()) == clean_results
    assert not (eval_dir / naming.PREDICTION_LOG_FILE).exists()


def test_a_log_from_other_settings_is_kept_aside_not_mixed_in(make_cfg, clean_results, tmp_path):
    eval_dir = tmp_path / "stale"
    eval_dir.mkdir()
    stale = eval_dir / naming.PREDICTION_LOG_FILE
    first = clean_results[0]
    content = (json.dumps({HEADER_KEY: {"fingerprint": "f" * 64, "settings": {}}}) + "\n"
               + json.dumps({**first, "pred": "from another model"}) + "\n")
    stale.write_text(content)
    results = run_inference(make_cfg(f"eval_dir={eval_dir}"))
    assert json.loads(results.read_text()) == clean_results
    assert (eval_dir / naming.stale_prediction_log_name("f" * 64)).read_text() == content


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["no_image=true", "corruption=true"], "no_image=true shows no image, so corruption=true"),
        (["no_image=true", "image_control=blank"], "so image_control=blank has nothing"),
        (["image_control=noisy"], "image_control='noisy' is not valid"),
        (["batch_size=0"], "batch_size=0 is not valid"),
        (["max_new_tokens=abc"], "max_new_tokens='abc' is not valid"),
        (["dtype=fp8"], "dtype='fp8' is not valid"),
        (["backend=onnx"], "backend='onnx' is not a known generation backend; valid values: hf, vllm"),
        (["backend=vllm"], "backend=vllm needs the vllm package"),
        (["mod=train"], "mod='train' is not valid"),
        (["split=everything"], "split='everything' is not valid"),
        (["corruption=true", "corruption_strength.noise=extreme"], "corruption_strength.noise='extreme'"),
        (["ood_value=Sonar"], "Sonar"),
        (["split=ood", "mod=val"], "split=ood with mod=val is not valid"),
        (["paths.model_path=/no/such/model"], "paths.model_path"),
    ],
)
def test_bad_settings_stop_before_a_model_is_loaded(make_cfg, monkeypatch, overrides, message):
    loads = []
    monkeypatch.setattr("sure_vqa.infer.generation.load_generator", lambda *a: loads.append(a))
    with pytest.raises(ConfigError, match=message):
        run_inference(make_cfg(*overrides))
    assert loads == []


def test_a_missing_or_unfinished_model_folder_is_refused(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr("sure_vqa.infer.generation.load_generator", lambda *a: pytest.fail("a model was loaded"))
    cfg = make_cfg("model_type=lora", name="inference/inference_defaults")
    with pytest.raises(ConfigError, match="does not exist; train it first"):
        run_inference(cfg)
    model_dir = (tmp_path / "experiments" / "llava-demo_train_iid_content_type_Size-finetune_lora_rank16_lr3e-4_seed123")
    model_dir.mkdir(parents=True)
    (model_dir / naming.ADAPTER_CONFIG_FILE).write_text("{}")
    with pytest.raises(ConfigError, match="training did not finish"):
        run_inference(cfg)


def test_a_moved_model_still_counts_as_the_same_model(make_cfg, tiny_llava_dir, tmp_path, caplog):
    results = run_inference(make_cfg())
    moved = tmp_path / "moved-model"
    shutil.copytree(tiny_llava_dir, moved)
    with caplog.at_level(logging.INFO, logger="sure_vqa.infer.run"):
        assert run_inference(make_cfg(f"paths.model_path={moved}")) == results
    assert "same model and settings" in caplog.text
