"""The LLaVA-Med converter: a tiny checkpoint in the original LLaVA layout, built here, converts to a transformers
LLaVA folder whose logits equal LLaVA's forward pass assembled by hand from the same weights."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sure_vqa.config import ConfigError, DataError
from sure_vqa.models.convert_llava_med import VOCAB_MULTIPLE, convert
from sure_vqa.models.loading import load_for_inference
from sure_vqa.models.prompting import prompt_text
from tests.conftest import PROJECT_ROOT, SURE_VQA

VISION_HIDDEN = 32


def original_tokenizer():
    """A Llama-style tokenizer without `<image>` or pad token, as LLaVA-Med's is."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["[INST] What colour is the lesion in this CT image? [/INST] red blue"] * 8, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="module")
def original_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(SRC in LLaVA's layout: Mistral weights + model.mm_projector.{0,2}, CLIP_DIR: a CLIPModel folder)."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        MistralConfig,
        MistralForCausalLM,
    )

    root = tmp_path_factory.mktemp("llava_med")
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        vision_config={"hidden_size": VISION_HIDDEN, "intermediate_size": 64, "num_hidden_layers": 3,
                       "num_attention_heads": 2, "image_size": 30, "patch_size": 6},
        projection_dim=16,
    ))
    clip_dir = root / "clip-vit"
    clip.save_pretrained(clip_dir)
    CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(clip_dir)

    tokenizer = original_tokenizer()
    text = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    lm = MistralForCausalLM(text)
    weights = {k: v.clone() for k, v in lm.state_dict().items()}
    weights["model.mm_projector.0.weight"] = torch.randn(64, VISION_HIDDEN) * 0.2
    weights["model.mm_projector.0.bias"] = torch.randn(64) * 0.1
    weights["model.mm_projector.2.weight"] = torch.randn(64, 64) * 0.2
    weights["model.mm_projector.2.bias"] = torch.randn(64) * 0.1
    src = root / "llava-med-v1.5-mistral-7b"
    src.mkdir()
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    config = {**text.to_dict(), "architectures": ["LlavaMistralForCausalLM"], "model_type": "llava_mistral",
              "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": VISION_HIDDEN,
              "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
              "image_aspect_ratio": "pad", "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
              "use_mm_proj": True, "torch_dtype": "float32"}
    (src / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tokenizer.save_pretrained(src)
    return src, clip_dir


def llava_forward_by_hand(src: Path, clip_dir: Path, before: list[int], after: list[int],
                          pixel_values: torch.Tensor) -> torch.Tensor:
    """LLaVA's forward pass from the original weights: CLIP layer -2 patch features -> Linear, GELU, Linear ->
    spliced between the text embeddings -> the Mistral language model."""
    from safetensors.torch import load_file
    from transformers import CLIPVisionModel, MistralConfig, MistralForCausalLM

    weights = load_file(src / "model.safetensors")
    config = json.loads((src / "config.json").read_text())
    text = MistralConfig(**{k: v for k, v in config.items() if not k.startswith("mm_") and k not in
                            ("architectures", "model_type", "image_aspect_ratio", "use_mm_proj")})
    lm = MistralForCausalLM(text).eval()
    lm.load_state_dict({k: v for k, v in weights.items() if not k.startswith("model.mm_projector.")})
    vision = CLIPVisionModel.from_pretrained(clip_dir).eval()
    with torch.no_grad():
        features = vision(pixel_values, output_hidden_states=True).hidden_states[-2][:, 1:]
        hidden = torch.nn.functional.gelu(features @ weights["model.mm_projector.0.weight"].T
                                          + weights["model.mm_projector.0.bias"])
        image = hidden @ weights["model.mm_projector.2.weight"].T + weights["model.mm_projector.2.bias"]
        embed = lm.get_input_embeddings()
        inputs = torch.cat([embed(torch.tensor([before])), image, embed(torch.tensor([after]))], dim=1)
        return lm(inputs_embeds=inputs).logits


def test_converted_model_gives_llava_logits(original_layout, tmp_path: Path) -> None:
    src, clip_dir = original_layout
    dst = convert(src, tmp_path / "llava-med-hf", clip_dir)
    model, processor = load_for_inference(dst)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert model.config.vision_feature_layer == -2 and model.config.vision_feature_select_strategy == "default"

    tokenizer = processor.tokenizer
    original_vocab = len(original_tokenizer())
    assert tokenizer.convert_tokens_to_ids("<image>") == original_vocab and tokenizer.pad_token == "<pad>"
    assert model.config.text_config.vocab_size == VOCAB_MULTIPLE * -(-(original_vocab + 2) // VOCAB_MULTIPLE)

    prompt = prompt_text(processor, "What colour is the lesion in this CT image?", "OPEN", None, with_image=True)
    assert prompt == "<s>[INST] <image>\nWhat colour is the lesion in this CT image? [/INST]"
    image = Image.new("RGB", (30, 30), (200, 40, 40))
    inputs = processor(text=prompt, images=image, return_tensors="pt", add_special_tokens=False)
    ids = inputs["input_ids"][0].tolist()
    image_id = model.config.image_token_id
    first, count = ids.index(image_id), ids.count(image_id)
    assert count == 25  # (30 / 6)^2 patches, CLS dropped
    before, after = ids[:first], ids[first + count:]
    # the text around the image is tokenised as the original tokenizer does it
    original = original_tokenizer()
    assert before == original("<s>[INST] ", add_special_tokens=False)["input_ids"]
    assert after == original("\nWhat colour is the lesion in this CT image? [/INST]",
                             add_special_tokens=False)["input_ids"]

    with torch.no_grad():
        converted = model(**inputs).logits
    expected = llava_forward_by_hand(src, clip_dir, before, after, inputs["pixel_values"])
    assert converted.shape[:2] == expected.shape[:2]
    torch.testing.assert_close(converted[..., :original_vocab], expected, atol=1e-5, rtol=1e-4)
    # the appended rows are the mean of the original ones
    head = model.lm_head.weight
    torch.testing.assert_close(head[original_vocab], head[:original_vocab].mean(dim=0))


def test_converter_refuses_bad_input_and_never_overwrites(original_layout, tmp_path: Path) -> None:
    src, clip_dir = original_layout
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        convert(src, existing, clip_dir)
    assert (existing / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="is not a CLIP model folder"):
        convert(src, tmp_path / "out", tmp_path)

    bad = tmp_path / "linear-projector"
    bad.mkdir()
    config = json.loads((src / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "mm_projector_type": "linear"}))
    with pytest.raises(DataError, match="mm_projector_type='linear' is not supported"):
        convert(bad, tmp_path / "out", clip_dir)
    assert not (tmp_path / "out").exists()


def test_converter_command_line_exits_2_on_bad_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SURE_VQA, "convert-llava-med", f"src={tmp_path / 'missing'}", f"dst={tmp_path / 'out'}",
         f"vision_tower={tmp_path}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: src={tmp_path / 'missing'} is not a folder\n"
