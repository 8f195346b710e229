"""A run's identity has one shape (sure_vqa.runs): the names built from a model identity and an inference spec
read back into equal objects, for every value the registries and the shift configs allow."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sure_vqa import naming, runs
from sure_vqa.config import CONFIG_DIR
from sure_vqa.data import registry as datasets
from sure_vqa.images import corruptions
from sure_vqa.models import methods

ROOT = Path("/experiments")


def _shift_configs() -> list[tuple[str, str, str]]:
    """(dataset, data_shift, ood value as names write it) of every config/shift/*.yaml."""
    shifts = []
    for path in sorted((CONFIG_DIR / "shift").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        shifts.append((node["dataset"], node["data_shift"], naming.ood_value_tag(node["ood_value"])))
    return shifts


SHIFTS = st.sampled_from(_shift_configs())
BASE_MODELS = st.sampled_from(["llava", "medgemma-4b-it", "qwen2.5-vl-3b-instruct", "smolvlm-256m-instruct",
                               "llava-onevision-qwen2-0.5b-ov-hf"])
RATES = st.floats(min_value=1e-8, max_value=10.0, allow_nan=False, allow_infinity=False)


@st.composite
def finetuned_models(draw: st.DrawFn) -> runs.ModelIdentity:
    dataset, data_shift, ood_value = draw(SHIFTS)
    train_split = draw(st.sampled_from(["iid", "ood", "all", "sample"]))
    if train_split in ("all", "sample"):
        data_shift = ood_value = None
    method = methods.get(draw(st.sampled_from(methods.names())))
    tags = tuple(f"{s.tag}{draw(st.integers(1, 4096))}" for s in method.folder_settings)
    return runs.ModelIdentity(
        dataset=dataset, train_split=train_split, data_shift=data_shift, ood_value=ood_value,
        model_type=method.name, seed=draw(st.integers(0, 10**6)), learning_rate=draw(RATES), folder_tags=tags,
        trained_without_images=draw(st.booleans()), experiment_root=ROOT, explicit_dir=None,
        base_model=draw(BASE_MODELS))


@st.composite
def baseline_models(draw: st.DrawFn) -> runs.ModelIdentity:
    dataset, data_shift, ood_value = draw(SHIFTS)
    if draw(st.booleans()):
        return runs.ModelIdentity.baseline(runs.PRETRAINED, dataset, ROOT, base_model=draw(BASE_MODELS))
    train_split = draw(st.sampled_from(["iid", "ood", "all"]))
    if train_split == "all":
        data_shift = ood_value = None
    return runs.ModelIdentity.baseline(runs.MOST_FREQUENT, dataset, ROOT, train_split, data_shift, ood_value)


@st.composite
def corruption_settings(draw: st.DrawFn) -> runs.CorruptionSetting:
    return runs.CorruptionSetting(tuple(
        (name, draw(st.sampled_from(naming.STRENGTHS)), draw(st.floats(0.0, 1.0, allow_nan=False)))
        for name in corruptions.names()))


@st.composite
def inference_specs(draw: st.DrawFn) -> runs.InferenceSpec:
    shown = draw(st.sampled_from(["image", "no image", *naming.IMAGE_CONTROLS]))
    return runs.InferenceSpec(
        split=draw(st.sampled_from(naming.SPLITS)), no_image=shown == "no image",
        image_control=shown if shown in naming.IMAGE_CONTROLS else None,
        corruption=draw(st.none() | corruption_settings()) if shown != "no image" else None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(finetuned_models(), baseline_models()))
def test_a_model_folder_reads_back_as_its_identity(model: runs.ModelIdentity) -> None:
    folder = model.model_dir()
    assert runs.ModelIdentity.from_folder(folder) == model
    assert runs.ModelIdentity.from_folder(folder).kind == (model.model_type if model.model_type in
                                                           runs.BASELINE_KINDS else runs.FINETUNED)


@settings(max_examples=300, deadline=None)
@given(SHIFTS, st.sampled_from(["test", "val"]), inference_specs())
def test_an_eval_folder_reads_back_as_its_spec(shift: tuple[str, str, str], mod: str,
                                               spec: runs.InferenceSpec) -> None:
    dataset, data_shift, ood_value = shift
    if spec.split not in ("iid", "ood"):
        data_shift = ood_value = None
    test_split = naming.split_name(dataset, mod, spec.split, data_shift, ood_value)
    split, parsed = runs.parse_run_name(spec.run_name(test_split))
    assert parsed == spec
    assert split == {"dataset": dataset, "mod": mod, "data_shift": data_shift, "ood_value": ood_value,
                     "test_split_name": test_split}


def test_the_codec_is_exact_where_the_short_forms_would_round() -> None:
    # 6 significant digits (the `e` and `g` formats) would have named both of these as the rounded value
    assert naming.format_lr(1.23456789e-4) == "1.23456789e-4" and naming.format_lr(3e-4) == "3e-4"
    assert naming.format_probability(0.1234567) == "0.1234567" and naming.format_probability(1.0) == "1"
    # a dataset with a dash in its name (VQA-RAD) after a base model with dashes
    name = "medgemma-4b-it-VQA-RAD_train_iid_image_organ_HEAD-finetune_lora_rank16_lr3e-4_seed7"
    parsed = naming.parse_experiment_name(name, datasets=["VQA-RAD"])
    assert (parsed["base_model"], parsed["dataset"], parsed["ood_value"]) == ("medgemma-4b-it", "VQA-RAD", "HEAD")
    assert set(datasets.names()) >= {"SLAKE", "OVQA", "MIMIC", "demo"}
