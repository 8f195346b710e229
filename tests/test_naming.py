"""Names against every example of docs/method.md#shifts-and-splits, #experiment-folders and the original README."""

import pytest

from sure_vqa import naming


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("SLAKE", "train", "iid", "content_type", "Size"), "SLAKE_train_iid_content_type_Size"),
        (("SLAKE", "test", "ood", "modality", "X-Ray"), "SLAKE_test_ood_modality_X-Ray"),
        (("OVQA", "train", "iid", "question_type", "Organ System"), "OVQA_train_iid_question_type_OrganSystem"),
        (("MIMIC", "train", "sample"), "MIMIC_train_sample"),
        (("MIMIC", "val", "all"), "MIMIC_val_all"),
        (("MIMIC", "test", "ood", "age", "young"), "MIMIC_test_ood_age_young"),
        (("OVQA", "test", "ood", "image_organ", ["LEG", "HAND"]), "OVQA_test_ood_image_organ_LEG+HAND"),
    ],
)
def test_split_names(args, expected):
    assert naming.split_name(*args) == expected


def test_no_image_suffix():
    assert naming.split_name("SLAKE", "train", "iid", "modality", "X-Ray", no_image=True) == (
        "SLAKE_train_iid_modality_X-Ray_no_image"
    )


@pytest.mark.parametrize(("bad", "message"), [(("SLAKE", "dev", "iid", "a", "b"), "mod"),
                                              (("SLAKE", "test", "odd", "a", "b"), "split"),
                                              (("SLAKE", "test", "ood"), "data_shift")])
def test_split_name_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        naming.split_name(*bad)


@pytest.mark.parametrize(("lr", "text"), [(3e-5, "3e-5"), (3e-4, "3e-4"), (0.03, "3e-2"), (2e-5, "2e-5"),
                                          (1.5e-4, "1.5e-4"), (1.0, "1e0")])
def test_format_lr(lr, text):
    assert naming.format_lr(lr) == text


def test_experiment_name_from_original_readme():
    tag = naming.finetune_tag("lora", 3e-5, 123, ["rank128"])
    name = naming.experiment_name(naming.split_name("SLAKE", "train", "iid", "content_type", "Size"), tag)
    assert name == "llava-SLAKE_train_iid_content_type_Size-finetune_lora_rank128_lr3e-5_seed123"


def test_finetune_tags_per_method():
    assert naming.finetune_tag("ia3", 3e-2, 124) == "finetune_ia3_lr3e-2_seed124"
    assert naming.finetune_tag("prompt", 3e-2, 125, ["ntok80"]) == "finetune_prompt_ntok80_lr3e-2_seed125"
    assert naming.finetune_tag("full", 2e-5, 123) == "finetune_full_lr2e-5_seed123"


def test_corruption_run_name_encodes_every_strength_and_probability():
    probs = {"blur": 0.5, "brightness": 1, "noise": 0.0}
    levels = {"blur": "low", "brightness": "high", "noise": "medium"}
    name = naming.eval_run_name("SLAKE_test_iid_modality_X-Ray", corruption=(probs, levels))
    assert name == (
        "SLAKE_test_iid_modality_X-Ray_corruption_blur-low-p0.5_brightness-high-p1_noise-medium-p0"
    )
    other = naming.eval_run_name("SLAKE_test_iid_modality_X-Ray", corruption=(probs, {**levels, "noise": "low"}))
    assert other != name


def test_eval_paths(tmp_path):
    model = naming.experiment_dir(tmp_path, "llava-x")
    run = naming.eval_run_name("SLAKE_test_ood_modality_X-Ray", no_image=True)
    assert naming.eval_dir(model, run) == tmp_path / "llava-x" / "eval" / "SLAKE_test_ood_modality_X-Ray_no_image"
    assert naming.pretrained_dir(tmp_path, "SLAKE") == tmp_path / "SLAKE" / "pretrained"
    assert naming.split_file(tmp_path, "SLAKE", "SLAKE_train_iid_modality_X-Ray") == (
        tmp_path / "SLAKE" / "split_files" / "SLAKE_train_iid_modality_X-Ray.json"
    )
    assert naming.judge_metrics_files("gemma") == ("gemma_metrics.json", "gemma_metrics_closed.json")
    assert naming.eval_run_name("A", image_control="shuffled") == "A_shuffled_image"
