"""Batched generation on the tiny LLaVA: left padding gives the answers of one-at-a-time generation, and a
run without images never hands the model pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sure_vqa.infer.generation import GenerationSettings
from sure_vqa.infer.generation.backends.hf import HFGenerator
from sure_vqa.models.loading import load_for_inference
from sure_vqa.models.prompting import prompt_text

# Question lengths differ a lot, so a batch pads some prompts by many tokens.
QUESTIONS = [
    ("Is this a CT image or X-Ray image?", "CLOSED", ["CT", "X-Ray"]),
    ("Does the picture contain the liver?", "CLOSED", ["yes", "no"]),
    ("Where is the lesion?", "OPEN", None),
    ("Which part of the body does this image belong to? Which organ is abnormal in the upper left?", "OPEN", None),
    ("What modality is used to take this image?", "OPEN", None),
    ("Lung?", "OPEN", None),
]


@pytest.fixture(scope="module")
def generator(tiny_llava_dir):
    model, processor = load_for_inference(tiny_llava_dir, None, dtype="float32")
    return HFGenerator(model, processor, GenerationSettings(max_new_tokens=12), device="cpu")


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, (24 + 5 * i, 40 - 2 * i, 3), dtype=np.uint8)) for i in range(n)]


def prompts(processor, with_image: bool) -> list[str]:
    return [prompt_text(processor, q, t, c, with_image=with_image) for q, t, c in QUESTIONS]


@pytest.mark.parametrize("with_image", [True, False], ids=["image", "no_image"])
def test_batched_answers_equal_one_at_a_time(generator, with_image):
    texts = prompts(generator.processor, with_image)
    pictures = images(len(texts)) if with_image else None
    batched = generator.generate(texts, pictures)
    single = [generator.generate([text], [pictures[i]] if pictures else None)[0] for i, text in enumerate(texts)]
    assert batched == single
    assert all(answer for answer in batched)  # the tiny random model does say something


def test_left_padding_keeps_every_prompts_next_token_logits(generator):
    """The check behind the equality above: a left-padded row, masked, gives the logits it gives alone; the same
    batch without its mask (the padding attended to) does not, so the comparison can tell the two apart."""
    texts = prompts(generator.processor, True)
    pictures = images(len(texts))
    model = generator.model
    batch = generator.encode(texts, pictures)
    assert generator.processor.tokenizer.padding_side == "left"
    padded_rows = (batch["attention_mask"] == 0).any(dim=1)
    assert padded_rows.sum() >= 4 and not padded_rows.all()
    assert (batch["attention_mask"][:, -1] == 1).all()  # every prompt ends at the last column
    with torch.no_grad():
        batched_logits = model(**batch).logits[:, -1]
        unmasked = {**batch, "attention_mask": torch.ones_like(batch["attention_mask"])}
        unmasked_logits = model(**unmasked).logits[:, -1]
        for row, (text, picture) in enumerate(zip(texts, pictures, strict=True)):
            alone_logits = model(**generator.encode([text], [picture])).logits[0, -1]
            torch.testing.assert_close(batched_logits[row], alone_logits, rtol=1e-4, atol=1e-5)
            if padded_rows[row]:
                assert not torch.allclose(unmasked_logits[row], alone_logits, rtol=1e-4, atol=1e-5)


# transformers 5 may encode the image once before decoding and hand the forward its features instead of pixels.
IMAGE_INPUTS = ("pixel_values", "mm_encoder_outputs", "image_features")


def test_no_image_generation_never_passes_pixels(generator):
    """A spy on every forward call of the model and of its vision tower: no image input, no vision pass."""
    model = generator.model
    forward_kwargs: list[dict] = []
    vision_calls: list[int] = []
    hooks = [
        model.register_forward_pre_hook(lambda _m, _a, kwargs: forward_kwargs.append(dict(kwargs)), with_kwargs=True),
        model.model.vision_tower.register_forward_hook(lambda *_: vision_calls.append(1)),
    ]

    def image_inputs(kwargs: dict) -> list[str]:
        """The image inputs a call carries (an empty mapping of pre-encoded features carries none)."""
        return [key for key in IMAGE_INPUTS if kwargs.get(key) is not None and not (
            isinstance(kwargs[key], dict) and not kwargs[key])]

    try:
        answers = generator.generate(prompts(generator.processor, False), None)
        no_image_calls = len(forward_kwargs)
        assert len(answers) == len(QUESTIONS)
        assert no_image_calls >= 2  # prefill and at least one decoding step
        assert [image_inputs(kwargs) for kwargs in forward_kwargs] == [[]] * no_image_calls
        assert vision_calls == []
        token_id = generator.processor.tokenizer.convert_tokens_to_ids("<image>")
        assert all(not (kwargs["input_ids"] == token_id).any() for kwargs in forward_kwargs)
        # The same spies do see the image when one is given, so their silence above means something.
        generator.generate(prompts(generator.processor, True)[:2], images(2))
        assert any(image_inputs(kwargs) for kwargs in forward_kwargs[no_image_calls:])
        assert vision_calls
    finally:
        for hook in hooks:
            hook.remove()


def test_generate_rejects_mismatched_images(generator):
    with pytest.raises(ValueError, match="2 images for 1 prompts"):
        generator.generate(prompts(generator.processor, True)[:1], images(2))
