"""The study's entry points as a user runs them on folders shaped as the published downloads: LLaVA-Med v1.5
converted from its original layout (real SentencePiece tokenizer, sharded weights), trained with LoRA, run on a
test split, and scored with the hf judge on a gemma-2-9b-it skeleton (Gemma's chat template, which rejects a
system role). Each command exits 0 and writes every file of its stage."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sure_vqa import naming
from tests.conftest import PROJECT_ROOT, SURE_VQA
from tests.helpers.processes import run_script
from tests.helpers.training_fixtures import colour_row, write_colour_slake

pytestmark = pytest.mark.slow

SHIFT = ["dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray", "model_type=lora", "finetune.lora.rank=4",
         "seed=123"]
TRAIN_FOLDER = "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank4_lr3e-4_seed123"
RUN = "SLAKE_test_iid_modality_X-Ray"


def _closed_row(qid: int, answer: str) -> dict:
    return {**colour_row(qid, "red"), "question": "Is this a CT image?", "answer": answer, "answer_type": "CLOSED",
            "content_type": "Modality"}


def _dataset(root: Path) -> Path:
    """The red/blue SLAKE fixture with closed yes/no questions added, so both judge rubrics are asked."""
    folder = write_colour_slake(root, n_train=6)
    for filename, rows in (("train.json", [_closed_row(3001, "yes"), _closed_row(3002, "yes")]),
                           ("test.json", [_closed_row(4001, "yes")])):
        entries = json.loads((folder / filename).read_text()) + rows
        (folder / filename).write_text(json.dumps(entries), encoding="utf-8")
        for row in rows:
            image = folder / "imgs" / row["img_name"]
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes((folder / "imgs" / "xmlab1" / "source.png").read_bytes())
    return folder


def test_convert_train_infer_evaluate_on_the_published_layouts(published_folders, tmp_path: Path) -> None:
    data_root, experiments = tmp_path / "data", tmp_path / "experiments"
    _dataset(data_root)
    converted = tmp_path / "models" / "llava-med-v1.5-hf"
    conversion = subprocess.run(
        [*SURE_VQA, "convert-llava-med", f"src={published_folders['llava_med']}", f"dst={converted}",
         f"vision_tower={published_folders['clip']}", "dtype=float32"],
        cwd=PROJECT_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert conversion.returncode == 0, conversion.stderr[-4000:]
    assert f"converted: {converted}" in conversion.stdout
    paths = [f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}",
             f"paths.model_path={converted}"]

    trained = run_script("train.py", *paths, *SHIFT, "train.max_steps=2", "train.batch_size=2",
                   "train.per_device_batch_size=2", "train.dataloader_num_workers=0",
                   "train.gradient_checkpointing=false", hydra_dir=tmp_path / "hydra-train")
    assert trained.returncode == 0, trained.stderr[-4000:]
    model_dir = experiments / TRAIN_FOLDER
    for name in (naming.ADAPTER_CONFIG_FILE, naming.TRAINER_STATE_FILE, naming.RESOLVED_CONFIG_FILE,
                 naming.MODEL_README_FILE, naming.MODEL_CONFIG_FILE):
        assert (model_dir / name).is_file(), name
    assert (model_dir / naming.INIT_WEIGHT_DIR / naming.ADAPTER_CONFIG_FILE).is_file()

    inferred = run_script("inference.py", *paths, *SHIFT, "split=iid", "max_new_tokens=3", "batch_size=2",
                    "dtype=float32", hydra_dir=tmp_path / "hydra-infer")
    assert inferred.returncode == 0, inferred.stderr[-4000:]
    eval_dir = naming.eval_dir(model_dir, RUN)
    rows = json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())
    assert sorted(r["qid"] for r in rows) == sorted(["2001", "2002", "4001"])
    assert all({"qid", "question", "gt", "pred", "answer_type", "img_name"} <= set(r) for r in rows)
    assert (eval_dir / naming.INFERENCE_INFO_FILE).is_file()

    evaluated = run_script("run_eval.py", *paths, *SHIFT, "split=iid", f"paths.judge_model_path={published_folders['judge']}",
                     "judge.max_new_tokens=8", "judge.batch_size=2", "judge.dtype=float32",
                     hydra_dir=tmp_path / "hydra-eval")
    assert evaluated.returncode == 0, evaluated.stderr[-4000:]
    open_file, closed_file = naming.judge_metrics_files("gemma")
    for name in (naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE, open_file, closed_file):
        assert (eval_dir / name).is_file(), name
    judged = json.loads((eval_dir / open_file).read_text())
    judged_closed = json.loads((eval_dir / closed_file).read_text())
    # one row per question, each with a score or a recorded failure (a random judge fails; never a silent zero)
    assert sorted(r["qid"] for r in judged[1:]) == ["2001", "2002"] and [r["qid"] for r in judged_closed[1:]] == ["4001"]
    assert all((r["score"] is None) == bool(r.get("failure")) for r in judged[1:] + judged_closed[1:])
    assert judged[0]["judge_identity"].startswith("gemma-2-9b-it (hf")
    closed_avg = json.loads((eval_dir / naming.CLOSED_METRICS_FILE).read_text())[0]
    assert 0.0 <= closed_avg["avg_accuracy"] <= 1.0

    # the rater study from the eval folder alone: dataset, split and images come from its inference_info.json
    # (the rater config's defaults name OVQA's validation split)
    selected = run_script("human_rater_study/select_questions.py", f"eval_dir={eval_dir}", f"paths.dataset_root={data_root}",
                    "rater.num_questions=2", hydra_dir=tmp_path / "hydra-select")
    assert selected.returncode == 0, selected.stderr[-4000:]
    from sure_vqa.rater.study import load_study

    study = load_study(naming.rater_study_dir(eval_dir, "open"))
    assert sorted(item.qid for item in study.items) == ["2001", "2002"]
    for item in study.items:
        source = data_root / "SLAKE" / "imgs" / f"xmlab{item.qid}" / "source.png"
        assert (study.folder / item.image).read_bytes() == source.read_bytes()
