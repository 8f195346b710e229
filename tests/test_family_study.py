"""The entry points as a user runs them on another base model than LLaVA-Med: `paths.base_model` pointing at the
tiny MedGemma (Gemma 3), Qwen3-VL and Gemma 4 folders (named as the published checkpoints), train.py (LoRA) ->
inference.py -> run_eval.py (traditional metrics). Each command exits 0, writes every file of its stage, and the
folders carry the base model's name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sure_vqa import naming
from tests.helpers.processes import offline_env, run_script
from tests.helpers.training_fixtures import write_colour_slake

pytestmark = pytest.mark.slow

SHIFT = ["dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray", "model_type=lora", "finetune.lora.rank=4",
         "seed=123"]


def _run(script: str, *overrides: str, hydra_dir: Path) -> subprocess.CompletedProcess:
    """An entry script with LLaVA-Med unset: the base model comes from paths.base_model alone."""
    return run_script(script, *overrides, hydra_dir=hydra_dir, env=offline_env(drop=("LLAVA_MED_MODEL_PATH",)))


# the published checkpoint each tiny model stands for, and the short name its folders carry. Qwen2.5-VL's stages
# are Qwen3-VL's here (the same processor without video, M-RoPE and merger); in process they are tested per family
# (tests/models/test_families.py), and its dotted name by the naming tests.
CHECKPOINTS = {"gemma3": ("medgemma-4b-it", "medgemma-4b-it"),
               "qwen3_vl": ("Qwen3-VL-8B-Instruct", "qwen3-vl-8b-instruct"),
               "gemma4": ("gemma-4-E4B-it", "gemma-4-e4b-it")}


@pytest.mark.parametrize("family", sorted(CHECKPOINTS))
def test_train_infer_evaluate_another_base_model(family, tiny_family_dir, tmp_path: Path) -> None:
    data_root, experiments = tmp_path / "data", tmp_path / "experiments"
    write_colour_slake(data_root, n_train=4)
    folder, name = CHECKPOINTS[family]
    base_model = tmp_path / "models" / folder
    base_model.parent.mkdir()
    base_model.symlink_to(tiny_family_dir(family), target_is_directory=True)
    paths = [f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}",
             f"paths.base_model={base_model}"]

    trained = _run("train.py", *paths, *SHIFT, "train.max_steps=2", "train.batch_size=2",
                   "train.per_device_batch_size=2", "train.dataloader_num_workers=0",
                   hydra_dir=tmp_path / "hydra-train")
    assert trained.returncode == 0, trained.stderr[-4000:]
    model_dir = experiments / f"{name}-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank4_lr3e-4_seed123"
    for file in (naming.ADAPTER_CONFIG_FILE, naming.TRAINER_STATE_FILE, naming.RESOLVED_CONFIG_FILE,
                 naming.MODEL_README_FILE, naming.MODEL_CONFIG_FILE, naming.PROJECTOR_WEIGHTS_FILE):
        assert (model_dir / file).is_file(), file
    assert (model_dir / naming.INIT_WEIGHT_DIR / naming.ADAPTER_CONFIG_FILE).is_file()

    for split in ("iid", "ood"):
        inferred = _run("inference.py", *paths, *SHIFT, f"split={split}", "max_new_tokens=3", "batch_size=2",
                        "dtype=float32", hydra_dir=tmp_path / f"hydra-infer-{split}")
        assert inferred.returncode == 0, inferred.stderr[-4000:]
    zero_shot = _run("inference.py", *paths, "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray",
                     "model_type=pretrained", "split=iid", "max_new_tokens=3", "dtype=float32",
                     hydra_dir=tmp_path / "hydra-zero-shot")
    assert zero_shot.returncode == 0, zero_shot.stderr[-4000:]
    assert (experiments / "SLAKE" / f"pretrained-{name}" / "eval" / "SLAKE_test_iid_modality_X-Ray"
            / naming.TEST_RESULTS_FILE).is_file()

    for split in ("iid", "ood"):
        evaluated = _run("run_eval.py", *paths, *SHIFT, f"split={split}", "metric_type=[traditional_metrics]",
                         hydra_dir=tmp_path / f"hydra-eval-{split}")
        assert evaluated.returncode == 0, evaluated.stderr[-4000:]
        eval_dir = naming.eval_dir(model_dir, f"SLAKE_test_{split}_modality_X-Ray")
        rows = json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())
        qids = sorted(r["qid"] for r in rows)
        assert qids == ["2001", "2002"] if split == "iid" else "2003" in qids  # the ood side: every X-Ray row
        assert (eval_dir / naming.OPEN_METRICS_FILE).is_file()

    # the report places the runs under this base model
    from sure_vqa.study.report.scan import scan

    found = scan(experiments)
    assert {m.method for m in found.models} == {f"[{name}] lora_rank4_lr3e-4", f"[{name}] pretrained"}
    assert len(found.runs) == 3 and not found.unplaced
