"""Loading base models, processors and experiment folders (the inference stage's entry to models)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.models import methods
from sure_vqa.models.loading import (
    finetuned_kind,
    load_base_model,
    load_for_inference,
    load_processor,
    training_config,
)
from sure_vqa.models.prompting import prompt_text


def inputs(processor) -> dict:
    prompt = prompt_text(processor, "Is there a lesion?", "CLOSED", ["yes", "no"], with_image=True)
    return processor(text=prompt, images=Image.new("RGB", (30, 30), (90, 30, 30)), return_tensors="pt",
                     add_special_tokens=False)


def test_pretrained_model_loads_in_eval_mode_with_its_chat_template(tiny_llava_dir: Path) -> None:
    model, processor = load_for_inference(tiny_llava_dir)
    assert type(model).__name__ == "LlavaForConditionalGeneration" and not model.training
    assert processor.chat_template and processor.tokenizer.padding_side == "left"
    model16, _ = load_for_inference(tiny_llava_dir, dtype="bf16")
    assert next(model16.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("model_type", ["lora", "ia3", "prompt"])
def test_adapter_folder_reloads_to_the_same_logits(tiny_llava_dir: Path, tmp_path: Path, model_type: str) -> None:
    model, _ = methods.prepare_model(load_base_model(tiny_llava_dir), model_type,
                                     {"lora": {"rank": 4}, "prompt": {"num_virtual_tokens": 3}}, str(tiny_llava_dir))
    with torch.no_grad():  # an adapter that changes the outputs (a freshly initialised LoRA changes nothing)
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval()
    model.save_pretrained(tmp_path)
    assert finetuned_kind(tmp_path) == "adapter"
    reloaded, processor = load_for_inference(tiny_llava_dir, tmp_path)
    batch = inputs(processor)
    with torch.no_grad():
        expected, got = model(**batch).logits, reloaded(**batch).logits
        base = load_base_model(tiny_llava_dir).eval()(**batch).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got[:, -base.shape[1]:], base, atol=1e-3)
    # LoRA is merged into plain weights; IA3 and prompt tuning stay peft models
    assert (type(reloaded).__name__ == "LlavaForConditionalGeneration") == (model_type == "lora")


def test_full_fine_tuned_folder_loads_its_own_weights(tiny_llava_dir: Path, tmp_path: Path) -> None:
    model = load_base_model(tiny_llava_dir)
    with torch.no_grad():
        model.lm_head.weight.mul_(2.0)
    model.save_pretrained(tmp_path)
    assert finetuned_kind(tmp_path) == "full"
    reloaded, processor = load_for_inference(tiny_llava_dir, tmp_path)  # no processor in the folder: the base's
    torch.testing.assert_close(reloaded.lm_head.weight, model.lm_head.weight)
    assert processor.chat_template == load_processor(tiny_llava_dir).chat_template


def test_bad_folders_are_clear_errors(tiny_llava_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a transformers model folder"):
        load_for_inference(tmp_path)
    with pytest.raises(DataError, match="holds neither a peft adapter"):
        load_for_inference(tiny_llava_dir, tmp_path)
    with pytest.raises(ConfigError, match="holds no processor"):
        load_processor(tmp_path)
    with pytest.raises(ConfigError, match="dtype='int3' is not valid"):
        load_base_model(tiny_llava_dir, dtype="int3")
    text_only = tmp_path / "text-only"
    shutil.copytree(tiny_llava_dir, text_only)
    (text_only / "config.json").write_text('{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, '
                                           '"num_hidden_layers": 1, "num_attention_heads": 1}')
    with pytest.raises(ConfigError, match="does not load as an image-text-to-text model"):
        load_base_model(text_only)


def test_training_config_of_an_experiment_folder(tmp_path: Path) -> None:
    assert training_config(tmp_path) is None
    (tmp_path / naming.RESOLVED_CONFIG_FILE).write_text("train:\n  pad_to_square: true\n")
    assert training_config(tmp_path).train.pad_to_square is True
