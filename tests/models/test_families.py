"""Every model family (sure_vqa.models.families) on its tiny model: the family's real config, model and PIL
processor classes, its special tokens and published chat format, random weights.

Fast: the family is found from the folder's config and names real modules; adapters land on the language
model's linear layers only, the projector trains and the tower is frozen; batched answers equal one-at-a-time
answers although the images give different numbers of image tokens; a prompt without an image has no image
token and no pixels; a corrupted run (through the inference stage, base model given by paths.base_model) sees
exactly the corruption module's images. Slow: family x method on the colour task (docs in
tests/helpers/training_fixtures.py): the loss falls, the answer comes from the image, the folder reloads to the same
logits, the projector moved and the tower did not.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from safetensors.torch import load_file

from sure_vqa import naming
from sure_vqa.config import ConfigError, compose
from sure_vqa.data.splits import record_image_path, split_records
from sure_vqa.demo.dataset import build_demo
from sure_vqa.images.corruptions import corrupt
from sure_vqa.images.loading import load_image
from sure_vqa.infer.generation import GenerationSettings
from sure_vqa.infer.generation.backends.hf import HFGenerator
from sure_vqa.infer.run import run_inference
from sure_vqa.models import families, methods, parts, prompting
from sure_vqa.models.experiment_folder import is_finished
from sure_vqa.models.loading import load_base_model, load_for_inference, load_processor
from sure_vqa.models.tiny import FAMILIES
from sure_vqa.train import run as train_run
from sure_vqa.train.run import train_model
from tests.conftest import PROJECT_ROOT
from tests.helpers.inference_helpers import GenerateSpy, digest
from tests.helpers.skeletons import PUBLISHED_PROCESSOR_KEYS
from tests.helpers.training_fixtures import TEST_LR, colour_batches, confident_copy, write_colour_slake

# The families whose images give a number of tokens that depends on the image's size.
DYNAMIC = {"llava_onevision", "qwen2_5_vl", "idefics3", "qwen3_vl", "qwen3_5", "internvl", "gemma4"}
NEW_FAMILIES = [f for f in FAMILIES if f != "llava"]  # LLaVA's methods: tests/train/test_methods.py


def image_of(size: tuple[int, int], seed: int) -> Image.Image:
    width, height = size
    return Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype("uint8"))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_family_is_found_from_the_config_and_adapters_stay_on_the_language_model(family, tiny_family_dir):
    folder = tiny_family_dir(family)
    entry = families.for_folder(folder)
    assert entry.name == family
    model = load_base_model(folder)
    assert type(model).__name__ == entry.model_class
    found = parts.model_parts(model)
    lm_prefix = found.language_model + "."
    lm_linears = {name for name, module in model.named_modules()
                  if name.startswith(lm_prefix) and isinstance(module, torch.nn.Linear)}
    assert lm_linears

    lora, _ = methods.prepare_model(model, "lora", {"lora": {"rank": 2}}, str(folder))
    adapted = {name.removeprefix("base_model.model.") for name, module in lora.named_modules()
               if hasattr(module, "lora_A") and isinstance(module.lora_A, torch.nn.ModuleDict)}
    assert adapted == lm_linears  # every linear layer of the language model, nothing else
    projectors = parts.projector_modules(lora)  # Qwen3-VL: the merger and its DeepStack mergers
    assert len(projectors) == (2 if family == "qwen3_vl" else 1)
    assert all(p.requires_grad for projector in projectors for p in projector.parameters())
    tower = parts.submodule(lora, found.vision_tower)
    projector_ids = {id(p) for projector in projectors for p in projector.parameters()}
    assert all(not p.requires_grad for p in tower.parameters() if id(p) not in projector_ids)

    ia3, _ = methods.prepare_model(load_base_model(folder), "ia3", {}, str(folder))
    scaled = {name.removeprefix("base_model.model.") for name, module in ia3.named_modules()
              if hasattr(module, "ia3_l") and isinstance(module.ia3_l, torch.nn.ParameterDict)}
    assert scaled == {n for n in lm_linears if n.rsplit(".", 1)[-1] in ("k_proj", "v_proj", "down_proj")}


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_answers_equal_one_at_a_time_with_different_image_token_counts(family, tiny_family_dir):
    model, processor = load_for_inference(tiny_family_dir(family))
    generator = HFGenerator(model, processor, GenerationSettings(max_new_tokens=6))
    images = [image_of((40, 40), 0), image_of((60, 30), 1), image_of((20, 60), 2)]
    prompts = [prompting.prompt_text(processor, q, "OPEN", None, with_image=True)
               for q in ("What modality is used?", "Which organ is abnormal?", "Is this a CT image?")]
    image_tokens = [n - len(processor.tokenizer(p, add_special_tokens=False)["input_ids"])
                    for p, n in zip(prompts, generator.prompt_lengths(prompts, images), strict=True)]
    assert min(image_tokens) > 0
    # images of other sizes: other token counts in the dynamic families, one fixed count in LLaVA and Gemma 3
    assert len(set(image_tokens)) == (3 if family in DYNAMIC else 1)
    batched = generator.generate(prompts, images)
    assert batched == [generator.generate([p], [i])[0] for p, i in zip(prompts, images, strict=True)]
    assert any(batched)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_prompt_without_an_image_has_no_image_tokens_and_no_pixels(family, tiny_family_dir):
    model, processor = load_for_inference(tiny_family_dir(family))
    prompt = prompting.prompt_text(processor, "Which organ is abnormal?", "OPEN", None, with_image=False)
    with_image = prompting.prompt_text(processor, "Which organ is abnormal?", "OPEN", None, with_image=True)
    assert prompt != with_image and "Which organ is abnormal?" in prompt
    inputs = HFGenerator(model, processor).encode([prompt])
    assert not any(key.startswith("pixel") for key in inputs)
    image_token_id = getattr(model.config, "image_token_id", None) or model.config.image_token_index
    assert not (inputs["input_ids"] == image_token_id).any()


# What the labels of "What colour is the image?" -> "red" spell, derived by hand from each published chat format:
# the answer and the end of the assistant's turn, nothing of the prompt.
ANSWER_LABELS = {
    "llava": " red</s>",  # `[INST] <image>\nQ [/INST] A</s>`
    "llava_onevision": "red<|im_end|>\n",  # `<|im_start|>assistant\nA<|im_end|>\n`
    "gemma3": "red<end_of_turn>\n",  # `<start_of_turn>model\nA<end_of_turn>\n`
    "qwen2_5_vl": "red<|im_end|>\n",  # `<|im_start|>assistant\nA<|im_end|>\n`
    "idefics3": " red<end_of_utterance>\n",  # `Assistant: A<end_of_utterance>\n`
    "qwen3_vl": "red<|im_end|>\n",  # `<|im_start|>assistant\nA<|im_end|>\n`
    # `<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n`: the empty reasoning block is the prompt's
    "qwen3_5": "red<|im_end|>\n",
    "internvl": "red<|im_end|>\n",  # `<|im_start|>assistant\nA<|im_end|>\n`
    # the prompt ends `<|turn>model\n<|channel>thought\n<channel|>`, the template's answer turn `<|turn>model\nA<turn|>\n`
    "gemma4": "red<turn|>\n",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_only_the_answer_carries_labels(family, tiny_family_dir, tmp_path):
    from sure_vqa.train.data import IGNORE_INDEX, ImageSettings, VQACollator, VQATrainDataset, pad_token_id

    data_root = write_colour_slake(tmp_path / "data", n_train=2).parent
    records = split_records(data_root, "SLAKE", "train", "iid", "modality", "X-Ray")
    red = next(r for r in records if r.answer == "red")
    processor = load_processor(tiny_family_dir(family))
    image_path = lambda r: record_image_path(data_root, "SLAKE", r)  # noqa: E731
    entry = families.get(family)
    dataset = VQATrainDataset([red, *records], processor, ImageSettings(image_path, entry.pad_to_square), 2048)
    labelled = []
    for i, record in enumerate(dataset.records):
        example = dataset[i]
        labelled.append(example["labels"][example["labels"] != IGNORE_INDEX])
        expected = ANSWER_LABELS[family].replace("red", record.answer)
        assert processor.tokenizer.decode(labelled[-1], skip_special_tokens=False) == expected
    # in a padded batch, no image token, prompt token or padding carries a label
    batch = VQACollator(pad_token_id(processor))([dataset[i] for i in range(len(dataset))])
    image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    has_label = batch["labels"] != IGNORE_INDEX
    assert (batch["input_ids"] == image_token_id).any()
    assert not (has_label & (batch["input_ids"] == image_token_id)).any()
    assert not (has_label & (batch["attention_mask"] == 0)).any()
    assert int(has_label.sum()) == sum(len(ids) for ids in labelled)  # the answers' tokens, nothing more
    # no-image training: the same answer labels, no image token and no pixels in the example or the batch
    no_image = VQATrainDataset([red, *records], processor, None, 2048)
    blind = VQACollator(pad_token_id(processor))([no_image[i] for i in range(len(no_image))])
    assert not any(key.startswith(("pixel", "image")) for key in blind)
    assert not (blind["input_ids"] == image_token_id).any()
    first = no_image[0]["labels"]
    assert processor.tokenizer.decode(first[first != IGNORE_INDEX], skip_special_tokens=False) == ANSWER_LABELS[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_training_batch_of_differently_sized_images_gives_each_example_its_own_logits(family, tiny_family_dir,
                                                                                         tmp_path):
    """The collator pads ids, per-token inputs and the images' tiles or patches; the padding changes nothing the
    model computes for the real tokens of each example."""
    from sure_vqa.train.data import VQACollator, encode_example, pad_token_id

    data_root = write_colour_slake(tmp_path / "data", n_train=2).parent
    record = split_records(data_root, "SLAKE", "train", "iid", "modality", "X-Ray")[0]
    model, processor = load_for_inference(tiny_family_dir(family))
    examples = [encode_example(processor, record, image_of(size, i), 2048)
                for i, size in enumerate([(60, 30), (28, 28)])]
    if family in DYNAMIC:  # the two images give different numbers of image tokens
        assert len(examples[0]["input_ids"]) != len(examples[1]["input_ids"])
    collate = VQACollator(pad_token_id(processor))
    with torch.no_grad():
        together = model(**collate(examples)).logits
        for row, example in enumerate(examples):
            alone = model(**collate([example])).logits[0]
            torch.testing.assert_close(together[row, : len(alone)], alone, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    build_demo(root / "demo")
    return root


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_corrupted_run_of_another_base_model_sees_the_corruption_modules_images(family, tiny_family_dir, demo_root,
                                                                                  tmp_path, monkeypatch):
    probabilities, strengths = {"blur": 0.5, "brightness": 0.5, "noise": 0.5}, {"blur": "low", "brightness": "high",
                                                                                "noise": "low"}
    overrides = ["dataset=demo", "data_shift=content_type", "ood_value=Size", "split=ood", "max_new_tokens=2",
                 "batch_size=3", "dtype=float32", "max_samples=6", "corruption=true", "seed=3",
                 f"paths.dataset_root={demo_root}", f"paths.experiment_root={tmp_path}", "paths.model_path=null",
                 f"paths.base_model={tiny_family_dir(family)}"]
    overrides += [f"corruption_probabilities.{k}={v}" for k, v in probabilities.items()]
    overrides += [f"corruption_strength.{k}={v}" for k, v in strengths.items()]
    spy = GenerateSpy(monkeypatch)
    results = run_inference(compose(config_name="inference/inference_pretrained_defaults", overrides=overrides))
    # the zero-shot folder of this base model, apart from LLaVA-Med's `pretrained`
    assert results.parent.parent.parent == tmp_path / "demo" / f"pretrained-tiny-{family.replace('_', '-')}"
    info = json.loads((results.parent / naming.INFERENCE_INFO_FILE).read_text())
    assert info["settings"]["pad_to_square"] is False  # the family takes images as they are
    rows = json.loads(results.read_text())
    records = {r.qid: r for r in split_records(demo_root, "demo", "test", "ood", "content_type", "Size")}
    expected = []
    for row in rows:
        original = load_image(record_image_path(demo_root, "demo", records[row["qid"]]))
        corrupted, params = corrupt(original, 3, row["qid"], probabilities, strengths)
        assert row["corruption"] == params
        expected.append(digest(corrupted))
    assert len(rows) == 6 and Counter(digest(image) for image in spy.images) == Counter(expected)


def test_a_method_the_family_cannot_take_is_refused_before_any_weights_load(tiny_llava_dir, tmp_path, monkeypatch):
    llava = families.get("llava")
    refusing = dataclasses.replace(llava, unsupported_methods={"prompt": "its position ids cannot be extended"})
    with families.REGISTRY.temporarily(refusing):

        def no_weights(*args, **kwargs):
            raise AssertionError("weights were loaded before the method was refused")

        monkeypatch.setattr("sure_vqa.models.loading.load_base_model", no_weights)
        write_colour_slake(tmp_path / "data", n_train=2)
        cfg = compose(config_name="train/training_defaults", overrides=[
            f"paths.dataset_root={tmp_path / 'data'}", f"paths.experiment_root={tmp_path / 'exp'}",
            f"paths.model_path={tiny_llava_dir}", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray",
            "model_type=prompt"])
        with pytest.raises(ConfigError, match=r"model_type=prompt is not supported for the llava family "
                                              r"\(LlavaForConditionalGeneration\): its position ids cannot be extended; "
                                              r"methods this family supports: full, ia3, lora"):
            train_run.plan(cfg)
    assert not (tmp_path / "exp").exists()


# --- family x method on the colour task (slow) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colour")
    write_colour_slake(root / "data")
    return root / "data"


@pytest.fixture(scope="module")
def confident_family_dir(tiny_family_dir, tmp_path_factory):
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = confident_copy(tiny_family_dir(family),
                                                 tmp_path_factory.mktemp("confident") / f"tiny-{family}")
        return built[family]

    return get


# Runs that train, save and reload but whose tiny model does not learn the colour task within the 20 steps (the
# loss falls by 14% and 23%, not by a quarter); docs/models.md says so in the family's row. Everything else is
# checked for them.
NOT_SHOWN_TO_LEARN = {("internvl", "ia3"), ("internvl", "prompt")}


def train_cfg(data_root: Path, experiments: Path, model_path: Path, model_type: str):
    """20 optimiser steps on 16 questions (batch 4 = 2 per device x 2 accumulation steps, 5 epochs)."""
    return compose(config_name="train/training_defaults", overrides=[
        f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}", f"paths.base_model={model_path}",
        "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray", f"model_type={model_type}",
        f"finetune.lr={TEST_LR[model_type]}", "finetune.mm_projector_lr=1e-3", "finetune.lora.rank=8",
        "finetune.prompt.num_virtual_tokens=4", "train.epochs=5", "train.batch_size=4",
        "train.per_device_batch_size=2", "train.logging_steps=1", "train.save_steps=1000",
        "train.dataloader_num_workers=0", "train.warmup_ratio=0.1"])


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["lora", "ia3", "prompt", "full"])
@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_each_method_learns_from_the_image_and_reloads(family, model_type, confident_family_dir, colour_data,
                                                       tmp_path):
    model_path = confident_family_dir(family)
    if model_type in families.get(family).unsupported_methods:  # refused, naming family and method
        with pytest.raises(ConfigError, match=f"model_type={model_type} is not supported for the {family} family"):
            train_run.plan(train_cfg(colour_data, tmp_path, model_path, model_type))
        return
    cfg = train_cfg(colour_data, tmp_path, model_path, model_type)
    outcome = train_model(cfg)
    model_dir = outcome.model_dir
    assert model_dir.name.startswith(f"tiny-{family.replace('_', '-')}-SLAKE_train_iid_modality_X-Ray-finetune_")
    losses = [h["loss"] for h in outcome.trainer.state.log_history if "loss" in h]
    learns = (family, model_type) not in NOT_SHOWN_TO_LEARN
    assert len(losses) == 20 and sum(losses[-2:]) < sum(losses[:2])
    assert not learns or sum(losses[-2:]) / 2 < 0.75 * sum(losses[:2]) / 2

    assert is_finished(model_dir)
    for name in (naming.MODEL_CONFIG_FILE, naming.RESOLVED_CONFIG_FILE, naming.MODEL_README_FILE,
                 naming.PROJECTOR_WEIGHTS_FILE, naming.TRAINER_STATE_FILE, "processor_config.json",
                 "chat_template.jinja"):
        assert (model_dir / name).is_file(), name
    assert (model_dir / naming.ADAPTER_CONFIG_FILE).is_file() == (model_type != "full")
    resolved = OmegaConf.load(model_dir / naming.RESOLVED_CONFIG_FILE)
    assert resolved.train.pad_to_square is False  # the family's way, recorded for inference

    reloaded, processor = load_for_inference(model_path, model_dir)
    right, swapped = colour_batches(colour_data, processor, pad_to_square=False)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**right).logits, outcome.model.eval()(**right).logits, atol=1e-4,
                                   rtol=1e-4)
        right_loss, swapped_loss = float(reloaded(**right).loss), float(reloaded(**swapped).loss)
    # unseen questions: the image's own colour is clearly more likely than the other one
    assert not learns or right_loss + 0.5 < swapped_loss
    # the trained model generates, batched as one at a time (prompt tuning: in groups of equal length)
    records = split_records(colour_data, "SLAKE", "test", "iid", "modality", "X-Ray")
    images = [load_image(record_image_path(colour_data, "SLAKE", r)) for r in records]
    prompts = [prompting.prompt_text(processor, r.question, r.answer_type, r.categories, True) for r in records]
    generator = HFGenerator(reloaded, processor, GenerationSettings(max_new_tokens=3))
    assert generator.generate(prompts, images) == [generator.generate([p], [i])[0] for p, i in
                                                   zip(prompts, images, strict=True)]

    base = load_base_model(model_path)
    found = parts.model_parts(base)
    saved_projector = load_file(model_dir / naming.PROJECTOR_WEIGHTS_FILE)
    projector_names = set()
    for name, saved_name in zip(parts.projector_module_names(base), parts.projector_save_names(base), strict=True):
        # each projector (Qwen3-VL: the merger and its DeepStack mergers) is saved under its own name and moved
        start = {f"{saved_name}.{k}": v for k, v in parts.submodule(base, name).state_dict().items()}
        assert start and all(k in saved_projector for k in start), name
        assert any((saved_projector[k] - v).abs().max() > 1e-4 for k, v in start.items()), name
        projector_names |= {f"{name}.{k}" for k in parts.submodule(base, name).state_dict()}
    assert len(saved_projector) == len(projector_names)
    tower = {f"{found.vision_tower}.{k}": v for k, v in parts.submodule(base, found.vision_tower).state_dict().items()}
    reloaded_tower = parts.submodule(reloaded, found.vision_tower).state_dict()
    for key, value in tower.items():
        if key not in projector_names:
            local = key.removeprefix(found.vision_tower + ".")
            assert torch.equal(reloaded_tower[local], value), key


def test_the_study_refuses_a_grid_method_of_the_base_models_family_before_its_first_cell(tiny_family_dir, tmp_path):
    from sure_vqa.study.run import compose_study, grid_cells

    paths = [f"paths.base_model={tiny_family_dir('gemma3')}", f"paths.experiment_root={tmp_path}",
             "grid.shifts=[demo_modality]", "grid.seeds=[123]"]
    with pytest.raises(ConfigError, match=r"grid.methods: model_type=prompt is not supported for the gemma3 family .*"
                                          r"\(e.g. grid.methods=\[lora,ia3\]\)"):
        next(grid_cells(compose_study(paths)))
    cells = list(grid_cells(compose_study([*paths, "grid.methods=[lora,ia3]"])))
    assert sorted({str(c.method) for c in cells}) == ["ia3", "lora", "most_frequent", "pretrained"]


def test_doctor_names_the_family_of_another_base_model(tiny_family_dir, tmp_path):
    from sure_vqa.models.preflight import check_base_model
    from sure_vqa.preflight import CheckFailed

    folder = tiny_family_dir("qwen2_5_vl")
    detail = check_base_model({"paths": {"model_path": None, "base_model": str(folder)}})
    assert detail.startswith(f"{folder}: qwen2_5_vl (family qwen2_5_vl), Qwen2_5_VLProcessorWithoutVideo")
    other = tmp_path / "paligemma"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "paligemma"}))
    with pytest.raises(CheckFailed, match="model_type='paligemma', which no SURE-VQA model family covers"):
        check_base_model({"paths": {"base_model": str(other)}})


def test_the_documented_families_are_the_registered_ones():
    """docs/models.md's table lists every family with its model type, classes, parts and checkpoints."""
    table = (PROJECT_ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}
    assert sorted(rows) == families.names() == sorted(FAMILIES)
    for name, line in rows.items():
        entry = families.get(name)
        for text in (entry.model_class, entry.processor_class, entry.vision_tower, entry.projector,
                     entry.language_model, *entry.checkpoints):
            assert f"`{text}`" in line, (name, text)
        assert ("refused" in line) == bool(entry.unsupported_methods), name


@pytest.mark.parametrize("family", sorted(PUBLISHED_PROCESSOR_KEYS))
def test_processor_files_laid_out_as_published_load_to_the_same_inputs(family, tiny_family_dir, tmp_path):
    from tests.helpers.skeletons import published_processor_layout

    folder = tiny_family_dir(family)
    published = published_processor_layout(folder, tmp_path / family, family)
    assert not (published / "chat_template.jinja").exists()
    ours, theirs = load_processor(folder), load_processor(published)
    assert type(theirs) is type(ours) and theirs.chat_template == ours.chat_template
    entry = families.get(family)
    images = entry.processor_images([image_of((40, 40), 0), image_of((60, 30), 1)])
    prompts = [prompting.prompt_text(theirs, q, "OPEN", None, with_image=True) for q in ("Which organ?", "Is it CT?")]
    encoded = [p(text=prompts, images=images, padding=True, add_special_tokens=False, return_tensors="pt")
               for p in (ours, theirs)]
    assert sorted(encoded[0]) == sorted(encoded[1])
    for key in encoded[0]:
        assert torch.equal(encoded[0][key], encoded[1][key]), key


@pytest.mark.parametrize("family", FAMILIES)
def test_a_bfloat16_base_trains_with_float32_adapters_and_projector(family, tiny_family_dir, tmp_path):
    """The adapter methods' GPU path (train.run.build_model with train.precision=bf16): frozen weights in bfloat16,
    trainable ones upcast to float32, steps under bfloat16 autocast (the Trainer's bf16), here on the CPU."""
    from sure_vqa.train.data import VQACollator, encode_example, pad_token_id
    from sure_vqa.train.run import _upcast_trainable

    folder = tiny_family_dir(family)
    data_root = write_colour_slake(tmp_path / "data", n_train=4).parent
    records = split_records(data_root, "SLAKE", "train", "iid", "modality", "X-Ray")
    processor = load_processor(folder)
    model, _ = methods.prepare_model(load_base_model(folder, dtype="bfloat16"), "lora", {}, str(folder))
    _upcast_trainable(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    batch = VQACollator(pad_token_id(processor))([
        encode_example(processor, r, load_image(record_image_path(data_root, "SLAKE", r)), 2048) for r in records])
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    losses = []
    for _ in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    assert all(np.isfinite(losses)) and losses[2] < losses[0]
