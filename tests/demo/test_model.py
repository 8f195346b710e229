"""The demo VLM carries SmolLM2's real weights and loads through the ordinary LLaVA classes."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_model_dir(tmp_path_factory):
    from sure_vqa.demo.model import build_demo_model

    return build_demo_model(tmp_path_factory.mktemp("demo") / "demo-llava")


def test_language_model_is_smollm2(demo_model_dir):
    """On a text-only prompt the LLaVA folder gives SmolLM2's own logits: the real weights were carried over."""
    from transformers import AutoModelForCausalLM, AutoProcessor, LlavaForConditionalGeneration

    from sure_vqa.models.smollm2 import smollm2_dir

    processor = AutoProcessor.from_pretrained(demo_model_dir)
    llava = LlavaForConditionalGeneration.from_pretrained(demo_model_dir).eval()
    smollm2 = AutoModelForCausalLM.from_pretrained(smollm2_dir()).eval()
    ids = processor.tokenizer("What organ is shown in this CT image?", return_tensors="pt").input_ids
    with torch.no_grad():
        expected = smollm2(input_ids=ids).logits
        got = llava(input_ids=ids).logits[..., : expected.shape[-1]]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_image_prompt_runs_and_build_is_reused(demo_model_dir):
    import numpy as np
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from sure_vqa.demo.model import build_demo_model
    from sure_vqa.models.prompting import prompt_text

    mtime = (demo_model_dir / "model.safetensors").stat().st_mtime_ns
    assert build_demo_model(demo_model_dir) == demo_model_dir
    assert (demo_model_dir / "model.safetensors").stat().st_mtime_ns == mtime  # not rebuilt

    processor = AutoProcessor.from_pretrained(demo_model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(demo_model_dir).eval()
    prompt = prompt_text(processor, "What modality is this?", "OPEN", None, with_image=True)
    assert prompt.count("<image>") == 1
    image = Image.fromarray(np.full((50, 70, 3), 128, dtype=np.uint8))
    inputs = processor(images=[image], text=[prompt], return_tensors="pt")
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_index).sum())
    assert n_image_tokens == (64 // 16) ** 2  # the processor expands <image> to one token per patch
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_alignment_captions_only_train_images():
    """The alignment stage sees the train part only: no val or test image (their questions are the test)."""
    from sure_vqa.demo.alignment import caption, training_images
    from sure_vqa.demo.dataset.build import assign_parts
    from sure_vqa.demo.dataset.catalogue import catalogue

    parts = assign_parts(catalogue())
    keys = [image.key for _, image in training_images()]
    assert keys and {parts[key] for key in keys} == {"train"}
    assert len(keys) == sum(1 for part in parts.values() if part == "train")
    chest = next(image for _, image in training_images() if image.modality == "X-Ray")
    assert caption(chest).startswith("X-Ray, ") and caption(chest).endswith(".")


def test_alignment_trains_the_eyes_only_and_the_cache_is_linked(demo_model_dir, tmp_path):
    """Vision tower and projector change, the language model does not; the aligned folder is built once in the
    cache and linked (not copied) into a demo folder."""
    from safetensors.torch import load_file

    from sure_vqa.demo.alignment import AlignmentSettings, aligned_demo_model, link_model

    before = load_file(demo_model_dir / "model.safetensors")
    settings = AlignmentSettings(warmup_steps=40, steps=4, batch_size=6)
    aligned = aligned_demo_model(tmp_path / "cache", settings)
    after = load_file(aligned / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(("vision_tower" in n) or ("multi_modal_projector" in n) for n in changed)
    assert any("multi_modal_projector" in n for n in changed) and any("vision_tower" in n for n in changed)
    assert "aligned on demo train captions" in (aligned / "demo_model_complete").read_text(encoding="utf-8")
    stamp = (aligned / "model.safetensors").stat().st_mtime_ns
    assert aligned_demo_model(tmp_path / "cache", settings) == aligned
    assert (aligned / "model.safetensors").stat().st_mtime_ns == stamp  # cached, not rebuilt
    linked = link_model(aligned, tmp_path / "demo_run" / "models" / "demo-llava")
    assert (linked / "model.safetensors").stat().st_ino == (aligned / "model.safetensors").stat().st_ino
    assert link_model(aligned, linked) == linked
