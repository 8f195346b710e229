"""The fine-tuning methods on the tiny LLaVA: what each adapts, what it freezes, and its settings' validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sure_vqa.config import ConfigError
from sure_vqa.models import methods, parts
from sure_vqa.models.loading import load_base_model
from sure_vqa.models.methods.lora import LoraSettings

FINETUNE = {"lora": {"rank": 4, "alpha": None, "dropout": 0.05}, "ia3": {},
            "prompt": {"num_virtual_tokens": 3, "init": "random"}}
LM_LINEARS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def prepared(tiny_llava_dir: Path, model_type: str, finetune: dict | None = None):
    model = load_base_model(tiny_llava_dir)
    return methods.prepare_model(model, model_type, finetune or FINETUNE, str(tiny_llava_dir))


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_registry_lists_the_four_methods() -> None:
    assert methods.names() == ["full", "ia3", "lora", "prompt"]
    with pytest.raises(ConfigError, match="model_type='qlora' is not a known fine-tuning method; valid values: full, ia3, lora"):
        methods.get("qlora")


@pytest.mark.parametrize("model_type", methods.names())
def test_vision_tower_frozen_projector_trained(tiny_llava_dir: Path, model_type: str) -> None:
    model, _ = prepared(tiny_llava_dir, model_type)
    vision = parts.submodule(model, parts.model_parts(model).vision_tower)
    assert not any(p.requires_grad for p in vision.parameters())
    projector = parts.projector_module(model)
    assert {n for n, _ in projector.named_parameters()} == {"linear_1.weight", "linear_1.bias", "linear_2.weight",
                                                             "linear_2.bias"}
    assert all(p.requires_grad for p in projector.parameters())


def test_each_method_owns_its_learning_rate_and_folder_name() -> None:
    """The study's learning rates (docs/method.md#fine-tuning-defaults) and folder tags, from the registry alone."""
    from sure_vqa.infer.generation.backends.vllm_backend import served_model_types
    from sure_vqa.models.methods.prompt import PromptSettings

    assert {name: methods.get(name).default_lr for name in methods.names()} == {
        "full": 2e-5, "ia3": 3e-2, "lora": 3e-4, "prompt": 3e-2}
    lora, prompt = methods.get("lora"), methods.get("prompt")
    assert lora.folder_tags(LoraSettings(rank=128)) == ("rank128",)
    assert lora.folder_overrides(LoraSettings(rank=128)) == ("finetune.lora.rank=128",)
    assert prompt.folder_tags(PromptSettings(num_virtual_tokens=4)) == ("ntok4",)
    assert methods.get("ia3").folder_tags(methods.get("ia3").config_from({})) == ()
    assert served_model_types() == ["pretrained", "full", "lora"]
    assert methods.model_types() == ["full", "ia3", "lora", "prompt", "pretrained"]


def test_lora_adapts_every_linear_layer_of_the_language_model_only(tiny_llava_dir: Path) -> None:
    model, settings = prepared(tiny_llava_dir, "lora")
    assert settings == LoraSettings(rank=4, alpha=None, dropout=0.05) and settings.effective_alpha == 8.0
    adapted = {name.rsplit(".lora_A", 1)[0] for name in trainable_names(model) if ".lora_A." in name}
    expected = {f"base_model.model.model.language_model.layers.{i}.{block}.{leaf}"
                for i in range(2) for block, leaves in (("self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")),
                                                        ("mlp", ("gate_proj", "up_proj", "down_proj")))
                for leaf in leaves}
    assert adapted == expected  # 2 layers x 7 linears; nothing in the vision tower, projector or lm_head
    config = model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8.0, 0.05)
    lora_a = model.base_model.model.model.language_model.layers[0].self_attn.q_proj.lora_A["default"].weight
    assert lora_a.shape == (4, 64)
    others = trainable_names(model) - {n for n in trainable_names(model) if ".lora_" in n}
    assert all(".multi_modal_projector.modules_to_save." in n for n in others)


def test_ia3_scales_k_v_and_down_proj_as_feed_forward(tiny_llava_dir: Path) -> None:
    model, _ = prepared(tiny_llava_dir, "ia3")
    scaled = {name for name, module in model.named_modules() if hasattr(module, "ia3_l")}
    leaves = sorted({name.rsplit(".", 1)[-1] for name in scaled})
    assert leaves == ["down_proj", "k_proj", "v_proj"] and all(".language_model." in n for n in scaled)
    assert len(scaled) == 6
    for name, module in model.named_modules():
        if hasattr(module, "ia3_l"):
            is_ff = name.endswith("down_proj")
            assert module.is_feedforward == is_ff
            # IA3 scales a feed-forward layer's input and the others' output
            size = module.in_features if is_ff else module.out_features
            assert module.ia3_l["default"].shape == ((1, size) if is_ff else (size, 1))


@pytest.mark.parametrize("init", ["random", "text"])
def test_prompt_tuning_prepends_virtual_tokens(tiny_llava_dir: Path, init: str) -> None:
    finetune = {"prompt": {"num_virtual_tokens": 3, "init": init, "init_text": "What modality"}}
    model, _ = prepared(tiny_llava_dir, "prompt", finetune)
    embedding = model.prompt_encoder["default"].embedding.weight
    assert embedding.shape == (3, 64) and embedding.requires_grad
    if init == "text":
        # the virtual tokens start as the embeddings of the init text's tokens (repeated to fill them)
        from transformers import AutoTokenizer

        ids = AutoTokenizer.from_pretrained(tiny_llava_dir)("What modality", add_special_tokens=False)["input_ids"]
        words = model.get_base_model().get_input_embeddings().weight[(ids * 3)[:3]]
        torch.testing.assert_close(embedding, words)
    ids = torch.tensor([[1, 30, 31, 32]])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits.shape[1] == 3 + 4


def test_full_fine_tuning_trains_the_language_model_and_projector(tiny_llava_dir: Path) -> None:
    model, _ = prepared(tiny_llava_dir, "full")
    names = trainable_names(model)
    assert all(not n.startswith("model.vision_tower.") for n in names)
    lm_and_head = {n for n, _ in model.named_parameters() if n.startswith(("model.language_model.", "lm_head."))}
    assert lm_and_head <= names


@pytest.mark.parametrize(
    ("finetune", "message"),
    [
        ({"lora": {"rank": 0}}, r"finetune.lora.rank=0 is not valid; it must be an integer >= 1"),
        ({"lora": {"rank": 8, "dropout": 1.5}}, r"finetune.lora.dropout=1.5 is not valid"),
        ({"lora": {"rnak": 8}}, r"finetune.lora.rnak is not a setting; valid settings: rank, alpha, dropout"),
        ({"prompt": {"init": "vocab"}}, r"finetune.prompt.init='vocab' is not valid; valid values: random, text"),
        ({"prompt": {"num_virtual_tokens": -1}}, r"finetune.prompt.num_virtual_tokens=-1 is not valid"),
        ({"ia3": {"target_modules": ["k_proj"], "feedforward_modules": ["down_proj"]}},
         r"finetune.ia3.feedforward_modules has 'down_proj', which is not in finetune.ia3.target_modules"),
    ],
)
def test_method_settings_errors(finetune: dict, message: str) -> None:
    model_type = next(iter(finetune))
    with pytest.raises(ConfigError, match=message):
        methods.get(model_type).config_from(finetune)


def test_ia3_layer_that_the_model_lacks(tiny_llava_dir: Path) -> None:
    with pytest.raises(ConfigError, match="finetune.ia3.target_modules has 'fc1', which is not a linear layer"):
        prepared(tiny_llava_dir, "ia3", {"ia3": {"target_modules": ["fc1"], "feedforward_modules": []}})


def test_language_model_parts_of_the_tiny_llava(tiny_llava_dir: Path) -> None:
    model = load_base_model(tiny_llava_dir)
    found = parts.model_parts(model)
    assert (found.vision_tower, found.projector, found.language_model) == (
        "model.vision_tower", "model.multi_modal_projector", "model.language_model")
    assert set(parts.language_model_linear_names(model)) == LM_LINEARS
    with pytest.raises(ConfigError, match="Linear has no transformers config with a model_type"):
        parts.model_parts(nn.Linear(2, 2))
