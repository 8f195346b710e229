"""Inference on experiment folders written by the real training stage (tiny LLaVA, a few steps): LoRA and prompt
tuning answer the same with and without batching, the no-image model is found by train_no_image, and a finished
run whose model was retrained since is refused instead of reused."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file

from sure_vqa import naming
from sure_vqa.config import ConfigError, compose
from sure_vqa.demo.dataset import build_demo
from sure_vqa.infer.run import run_inference
from sure_vqa.train.run import train
from tests.helpers.inference_helpers import SHIFT, GenerateSpy

TRAIN_FAST = ["train.max_steps=1", "train.batch_size=4", "train.per_device_batch_size=4", "train.max_samples=8",
              "train.dataloader_num_workers=0", "finetune.prompt.num_virtual_tokens=4"]
INFER_FAST = ["max_new_tokens=3", "dtype=float32"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory, tiny_llava_dir):
    base = tmp_path_factory.mktemp("adapters")
    dataset_root = build_demo(base / "datasets" / "demo").parent
    return {"paths.dataset_root": dataset_root, "paths.experiment_root": base / "experiments",
            "paths.model_path": tiny_llava_dir}


def cfg(name: str, roots: dict, *overrides: str, shift: list[str] = SHIFT):
    paths = [f"{key}={value}" for key, value in roots.items()]
    return compose(config_name=name, overrides=[*shift, *paths, *overrides])


def train_tiny(roots: dict, *overrides: str):
    return train(cfg("train/training_defaults", roots, *TRAIN_FAST, *overrides, shift=SHIFT[:3]))


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["lora", "prompt"])
def test_a_fine_tuned_model_answers_the_same_batched_and_alone(roots, model_type, tmp_path):
    train_tiny(roots, f"model_type={model_type}")
    batched = run_inference(cfg("inference/inference_defaults", roots, *INFER_FAST, f"model_type={model_type}",
                                "finetune.prompt.num_virtual_tokens=4", "batch_size=6"))
    assert batched.parent.parent.parent.name.endswith(
        "-finetune_lora_rank16_lr3e-4_seed123" if model_type == "lora" else "-finetune_prompt_ntok4_lr3e-2_seed123")
    alone = run_inference(cfg("inference/inference_defaults", roots, *INFER_FAST, f"model_type={model_type}",
                              "finetune.prompt.num_virtual_tokens=4", "batch_size=1", f"eval_dir={tmp_path}"))
    rows = json.loads(batched.read_text())
    assert rows == json.loads(alone.read_text()) and len(rows) == 18
    info = json.loads((batched.parent / naming.INFERENCE_INFO_FILE).read_text())
    assert info["settings"]["model_type"] == model_type and info["settings"]["model_dir"]


@pytest.mark.slow
def test_prompt_tuning_generation_equals_greedy_decoding_by_hand(roots):
    """The virtual tokens are injected once, at the prompt: each generated token is the argmax of the peft model's
    forward over the whole text so far (no cache), as peft's own forward injects them (hf.py's docstring: peft
    0.21 with transformers 5 injected them at every step)."""
    import numpy as np
    import torch
    from PIL import Image

    from sure_vqa.infer.generation import GenerationSettings
    from sure_vqa.infer.generation.backends.hf import HFGenerator
    from sure_vqa.models.loading import load_for_inference
    from sure_vqa.models.prompting import prompt_text

    model_dir = train_tiny(roots, "model_type=prompt")
    model, processor = load_for_inference(roots["paths.model_path"], model_dir, dtype="float32")
    generator = HFGenerator(model, processor, GenerationSettings(max_new_tokens=6), device="cpu")
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    for question in ("What modality is used to take this image?", "Where is the lesion?"):
        prompt = prompt_text(processor, question, "OPEN", None, with_image=True)
        inputs = generator.encode([prompt], [image])
        with torch.inference_mode():
            generated = model.generate(**inputs, **generator.generation_kwargs)[0, inputs["input_ids"].shape[1]:]
            ids = inputs["input_ids"]
            by_hand = []
            for _ in range(len(generated)):
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                               pixel_values=inputs["pixel_values"], use_cache=False).logits
                token = int(logits[0, -1].argmax())
                by_hand.append(token)
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        assert generated.tolist() == by_hand


@pytest.mark.slow
def test_the_no_image_model_is_found_and_run_without_images(roots, monkeypatch):
    model_dir = train_tiny(roots, "model_type=lora", "no_image=true")
    spy = GenerateSpy(monkeypatch)
    results = run_inference(cfg("inference/inference_defaults", roots, *INFER_FAST, "model_type=lora",
                                "train_no_image=true", "no_image=true"))
    assert results.parent == model_dir / "eval" / "demo_test_ood_content_type_Size_no_image"
    assert "_no_image-finetune_lora" in model_dir.name
    assert spy.calls and all(images is None for _, images in spy.calls)


@pytest.mark.slow
def test_a_retrained_model_does_not_reuse_old_results(roots):
    model_dir = train_tiny(roots, "model_type=lora")
    settings = cfg("inference/inference_defaults", roots, *INFER_FAST, "model_type=lora", "batch_size=8")
    results = run_inference(settings)
    before = results.read_bytes()
    adapter = model_dir / "adapter_model.safetensors"
    weights = load_file(adapter)
    save_file({name: tensor + 0.01 if tensor.is_floating_point() else tensor for name, tensor in weights.items()},
              adapter, metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="the model's files differ"):
        run_inference(settings)
    assert results.read_bytes() == before


@pytest.mark.slow
def test_the_vllm_backend_serves_a_merged_copy_that_answers_like_the_adapter(roots, tiny_llava_dir):
    """vLLM itself needs a GPU; the folder it is given is built here and checked with transformers."""
    from sure_vqa.infer.generation import GenerationSettings
    from sure_vqa.infer.generation.backends.hf import HFGenerator
    from sure_vqa.infer.generation.backends.vllm_backend import MERGE_SOURCE_FILE, merged_model
    from sure_vqa.models.loading import load_for_inference
    from sure_vqa.models.prompting import prompt_text

    model_dir = train_tiny(roots, "model_type=lora")
    merged = merged_model(tiny_llava_dir, model_dir, "float32")
    assert merged == model_dir / naming.MERGED_MODEL_DIR and (merged / MERGE_SOURCE_FILE).is_file()
    assert not (merged / naming.ADAPTER_CONFIG_FILE).exists()
    settings = GenerationSettings(max_new_tokens=4)
    adapter = HFGenerator(*load_for_inference(tiny_llava_dir, model_dir, dtype="float32"), settings, device="cpu")
    plain = HFGenerator(*load_for_inference(merged, None, dtype="float32"), settings, device="cpu")
    prompts = [prompt_text(adapter.processor, q, "OPEN", None, with_image=False)
               for q in ("Where is the lesion?", "Which organ is abnormal in this image?")]
    assert plain.generate(prompts) == adapter.generate(prompts)
    stamp = (merged / MERGE_SOURCE_FILE).stat().st_mtime_ns
    assert merged_model(tiny_llava_dir, model_dir, "float32") == merged  # reused while current
    assert (merged / MERGE_SOURCE_FILE).stat().st_mtime_ns == stamp


def test_the_model_loaded_last_is_reused_until_its_request_or_a_file_changes(tiny_llava_dir, monkeypatch, tmp_path):
    """A study's cell runs a dozen inference runs on one model: it loads once (sure_vqa.infer.generation.backends.hf)."""
    import dataclasses
    import os
    import shutil

    import sure_vqa.models.loading as loading
    from sure_vqa.infer.generation import GenerationSettings, LoadRequest
    from sure_vqa.infer.generation.backends import hf

    loads = []
    real = loading.load_for_inference
    monkeypatch.setattr(loading, "load_for_inference", lambda *a, **k: loads.append(a) or real(*a, **k))
    folder = tmp_path / "model"
    shutil.copytree(tiny_llava_dir, folder)
    request = LoadRequest(str(folder), None, "float32", "cpu", GenerationSettings(max_new_tokens=2))
    first = hf.load_generator(request)
    assert hf.load_generator(request) is first and len(loads) == 1
    longer = dataclasses.replace(request, settings=GenerationSettings(max_new_tokens=3))
    other = hf.load_generator(longer)
    assert other is not first and len(loads) == 2 and list(hf._LOADED.values()) == [other]  # one slot
    stat = (folder / "config.json").stat()
    os.utime(folder / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the folder was written again
    assert hf.load_generator(longer) is not other and len(loads) == 3
