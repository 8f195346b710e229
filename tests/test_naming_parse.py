"""The name parsers invert the builders: every example of docs/method.md#shifts-and-splits, #experiment-folders goes round trip."""

from pathlib import Path

import pytest

from sure_vqa import naming

SPLITS = [
    ("SLAKE", "train", "iid", "content_type", "Size", False),
    ("SLAKE", "test", "ood", "modality", "X-Ray", False),
    ("OVQA", "train", "iid", "question_type", "Organ System", False),
    ("MIMIC", "train", "sample", None, None, False),
    ("MIMIC", "val", "all", None, None, False),
    ("MIMIC", "test", "ood", "age", "young", False),
    ("MIMIC", "test", "iid", "ethnicity", "nonwhite", False),
    ("MIMIC", "train", "iid", "gender", "F", True),
    ("OVQA", "test", "ood", "image_organ", ["LEG", "HAND"], False),
    ("SLAKE", "test", "ood", "location", "Chest_heart", False),  # an ood value with an underscore
    ("SLAKE", "test", "ood", "location", "Pelvic Cavity", False),
    ("demo", "train", "iid", "modality", "X-Ray", True),
    ("my_data", "test", "iid", "scanner_site", "Site_B", False),  # a field the parser does not know
]


@pytest.mark.parametrize("args", SPLITS)
def test_split_name_round_trip(args):
    dataset, mod, split, data_shift, ood_value, no_image = args
    name = naming.split_name(dataset, mod, split, data_shift, ood_value, no_image=no_image)
    parsed = naming.parse_split_name(name)
    assert parsed == {
        "dataset": dataset, "mod": mod, "split": split, "data_shift": data_shift,
        "ood_value": None if ood_value is None else naming.ood_value_tag(ood_value), "no_image": no_image,
    }
    assert naming.split_name(parsed["dataset"], parsed["mod"], parsed["split"], parsed["data_shift"],
                             parsed["ood_value"], no_image=parsed["no_image"]) == name


def test_split_name_values_as_written():
    assert naming.parse_split_name("OVQA_train_iid_question_type_OrganSystem")["ood_value"] == "OrganSystem"
    assert naming.parse_split_name("SLAKE_test_ood_location_Chest_heart")["data_shift"] == "location"
    assert naming.parse_split_name("x_test_iid_site_name_B", shift_fields=("site_name",))["data_shift"] == "site_name"


@pytest.mark.parametrize("bad", ["SLAKE", "SLAKE_dev_iid_modality_CT", "SLAKE_test_iid", "MIMIC_test_all_age_young",
                                 "SLAKE_test_iid_modality"])
def test_split_name_rejects(bad):
    with pytest.raises(ValueError):
        naming.parse_split_name(bad)


EXPERIMENTS = [
    (("SLAKE", "train", "iid", "content_type", "Size"), False, ("lora", 3e-5, 123), ("rank128",)),
    (("SLAKE", "train", "iid", "modality", "X-Ray"), True, ("lora", 3e-4, 124), ("rank16",)),
    (("OVQA", "train", "iid", "question_type", "Organ System"), False, ("ia3", 3e-2, 125), ()),
    (("MIMIC", "train", "sample"), False, ("prompt", 3e-2, 123), ("ntok80",)),
    (("MIMIC", "train", "iid", "ethnicity", "nonwhite"), False, ("full", 2e-5, 123), ()),
    (("OVQA", "train", "iid", "image_organ", ["LEG", "HAND"]), False, ("lora", 1.5e-4, 7), ("rank8",)),
]


@pytest.mark.parametrize(("split", "no_image", "method", "hp"), EXPERIMENTS)
def test_experiment_name_round_trip(split, no_image, method, hp):
    model_type, lr, seed = method
    train_split = naming.split_name(*split, no_image=no_image)
    tag = naming.finetune_tag(model_type, lr, seed, hp)
    name = naming.experiment_name(train_split, tag)
    parsed = naming.parse_experiment_name(name)
    assert parsed["train_split_name"] == train_split and parsed["finetune_tag"] == tag
    assert (parsed["model_type"], parsed["lr"], parsed["seed"]) == (model_type, lr, seed)
    assert parsed["hyperparameter_tags"] == hp
    assert parsed["no_image"] is no_image and parsed["dataset"] == split[0]
    rebuilt = naming.experiment_name(
        naming.split_name(parsed["dataset"], parsed["mod"], parsed["split"], parsed["data_shift"], parsed["ood_value"],
                          no_image=parsed["no_image"]),
        naming.finetune_tag(parsed["model_type"], parsed["lr"], parsed["seed"], parsed["hyperparameter_tags"]),
    )
    assert rebuilt == name


def test_experiment_name_from_original_readme():
    parsed = naming.parse_experiment_name("llava-SLAKE_train_iid_content_type_Size-finetune_lora_rank128_lr3e-5_seed123")
    assert parsed["data_shift"] == "content_type" and parsed["ood_value"] == "Size"
    assert parsed["hyperparameter_tags"] == ("rank128",) and parsed["lr"] == 3e-5 and parsed["seed"] == 123


@pytest.mark.parametrize("bad", ["pretrained", "llava-SLAKE_train_iid_modality_CT", "most_frequent-SLAKE_train_all",
                                 "llava-SLAKE_train_iid_modality_CT-finetune_lora_rank16_seed1"])
def test_experiment_name_rejects(bad):
    with pytest.raises(ValueError):
        naming.parse_experiment_name(bad)


PROBS = {"blur": 0.5, "brightness": 1, "noise": 0.0}
LEVELS = {"blur": "low", "brightness": "high", "noise": "medium"}
RUNS = [
    ("SLAKE_test_iid_modality_X-Ray", False, None, None),
    ("SLAKE_test_ood_modality_X-Ray", True, None, None),
    ("SLAKE_test_iid_modality_X-Ray", False, (PROBS, LEVELS), None),
    ("SLAKE_test_iid_modality_X-Ray", True, (PROBS, LEVELS), None),
    ("OVQA_val_ood_question_type_OrganSystem", False, ({"blur": 1e-5, "brightness": 0.25, "noise": 1}, LEVELS), None),
    ("SLAKE_test_ood_content_type_Size", False, None, "blank"),
    ("SLAKE_test_ood_content_type_Size", False, None, "shuffled"),
    ("MIMIC_test_sample", True, (PROBS, LEVELS), "shuffled"),
    ("SLAKE_test_ood_location_Chest_heart", False, None, None),
]


@pytest.mark.parametrize(("split", "no_image", "corruption", "control"), RUNS)
def test_eval_run_name_round_trip(split, no_image, corruption, control):
    name = naming.eval_run_name(split, no_image=no_image, corruption=corruption, image_control=control)
    parsed = naming.parse_eval_run_name(name)
    assert parsed["test_split_name"] == split
    assert parsed["no_image"] is no_image and parsed["image_control"] == control
    if corruption is None:
        assert parsed["corruption"] is None
    else:
        assert parsed["corruption"]["strengths"] == corruption[1]
        assert parsed["corruption"]["probabilities"] == {k: float(v) for k, v in corruption[0].items()}
    again = (parsed["corruption"]["probabilities"], parsed["corruption"]["strengths"]) if parsed["corruption"] else None
    assert naming.eval_run_name(parsed["test_split_name"], parsed["no_image"], again, parsed["image_control"]) == name


def test_eval_run_name_parts():
    parsed = naming.parse_eval_run_name("SLAKE_test_ood_modality_X-Ray_no_image")
    assert (parsed["dataset"], parsed["mod"], parsed["split"], parsed["data_shift"], parsed["ood_value"]) == (
        "SLAKE", "test", "ood", "modality", "X-Ray")


def test_most_frequent_and_judge_names(tmp_path):
    folder = naming.most_frequent_dir(tmp_path, "SLAKE_train_iid_modality_X-Ray")
    parsed = naming.parse_most_frequent_name(folder.name)
    assert parsed["train_split_name"] == "SLAKE_train_iid_modality_X-Ray" and parsed["ood_value"] == "X-Ray"
    with pytest.raises(ValueError):
        naming.parse_most_frequent_name("llava-SLAKE_train_all-finetune_ia3_lr3e-2_seed1")
    for judge in ("gemma", "smollm2", "gpt_4o"):
        open_file, closed_file = naming.judge_metrics_files(judge)
        assert naming.parse_judge_metrics_file(open_file) == (judge, "open")
        assert naming.parse_judge_metrics_file(closed_file) == (judge, "closed")
    assert naming.parse_judge_metrics_file(naming.OPEN_METRICS_FILE) is None
    assert naming.parse_judge_metrics_file(naming.CLOSED_METRICS_FILE) is None
    assert naming.parse_judge_metrics_file(naming.TEST_RESULTS_FILE) is None


@pytest.mark.parametrize(("path", "name"), [
    (None, "llava"),
    ("/models/medgemma-4b-it", "medgemma-4b-it"),
    ("/models/Qwen2.5-VL-7B-Instruct/", "qwen2.5-vl-7b-instruct"),
    ("~/m/HuatuoGPT-Vision-7B-Qwen2.5VL", "huatuogpt-vision-7b-qwen2.5vl"),
    ("/m/smol_vlm instruct", "smol-vlm-instruct"),  # `_` and spaces become `-`: the name holds no `_`
])
def test_base_model_names_by_hand(path, name) -> None:
    assert naming.base_model_name(path) == name


def test_experiment_names_of_other_base_models_parse_back() -> None:
    tag = naming.finetune_tag("lora", 3e-4, 123, ["rank16"])
    for base in ("llava", "medgemma-4b-it", "qwen2.5-vl-7b-instruct", "llava-1.5-7b-hf"):
        name = naming.experiment_name("SLAKE_train_iid_modality_X-Ray", tag, base)
        parsed = naming.parse_experiment_name(name)
        assert (parsed["base_model"], parsed["train_split_name"], parsed["finetune_tag"]) == (
            base, "SLAKE_train_iid_modality_X-Ray", tag)
        assert (parsed["data_shift"], parsed["ood_value"]) == ("modality", "X-Ray")
    assert naming.experiment_name("SLAKE_train_iid_modality_X-Ray", tag) == (
        "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank16_lr3e-4_seed123")
    with pytest.raises(ValueError, match="is not an experiment name"):
        naming.parse_experiment_name("SLAKE_train_iid_modality_X-Ray-finetune_lora_rank16_lr3e-4_seed123")


def test_zero_shot_folders_of_each_base_model() -> None:
    assert naming.pretrained_dir("/e", "SLAKE") == Path("/e/SLAKE/pretrained")
    assert naming.pretrained_dir("/e", "SLAKE", "medgemma-4b-it") == Path("/e/SLAKE/pretrained-medgemma-4b-it")
    assert [naming.parse_pretrained_dir_name(n) for n in ("pretrained", "pretrained-medgemma-4b-it", "pretrained-",
                                                           "eval")] == ["llava", "medgemma-4b-it", None, None]
