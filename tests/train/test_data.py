"""Training examples: the inference prompt, labels on the answer (+eos) only, no pixels without images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from sure_vqa.config import DataError
from sure_vqa.data.records import QARecord
from sure_vqa.images.loading import CLIP_MEAN_FILL
from sure_vqa.models.loading import load_processor
from sure_vqa.models.prompting import YES_NO_SUFFIX, prompt_text
from sure_vqa.train.data import (
    IGNORE_INDEX,
    ImageSettings,
    VQACollator,
    VQATrainDataset,
    encode_example,
)


@pytest.fixture(scope="module")
def processor(tiny_llava_dir: Path):
    return load_processor(tiny_llava_dir)


def record(qid: str = "1", question: str = "Which organ is abnormal?", answer: str = "lung",
           answer_type: str = "OPEN", categories: list[str] | None = None) -> QARecord:
    return QARecord(qid=qid, image="imgs/a.png", img_name="a.png", question=question, answer=answer,
                    answer_type=answer_type, source="train", categories=categories)


def image() -> Image.Image:
    return Image.new("RGB", (30, 30), (10, 200, 10))


def test_prompt_tokens_are_the_inference_prompt_and_labels_the_answer(processor) -> None:
    rec = record()
    example = encode_example(processor, rec, image(), max_length=2048)
    prompt = prompt_text(processor, rec.question, rec.answer_type, rec.categories, with_image=True)
    inference_ids = processor(text=prompt, images=image(), return_tensors="pt",
                              add_special_tokens=False)["input_ids"][0]
    n = len(inference_ids)
    assert torch.equal(example["input_ids"][:n], inference_ids)
    assert (example["labels"][:n] == IGNORE_INDEX).all()
    answer_ids = example["labels"][n:]
    tokenizer = processor.tokenizer
    assert torch.equal(answer_ids, example["input_ids"][n:])
    assert tokenizer.decode(answer_ids) == " lung</s>" and answer_ids[-1] == tokenizer.eos_token_id
    assert example["pixel_values"].shape == (1, 3, 30, 30)
    assert torch.equal(example["attention_mask"], torch.ones_like(example["input_ids"]))


def test_yes_no_questions_carry_the_suffix(processor) -> None:
    rec = record(question="Is the liver healthy?", answer="yes", answer_type="CLOSED", categories=["yes", "no"])
    example = encode_example(processor, rec, image(), max_length=2048)
    text = processor.tokenizer.decode(example["input_ids"])
    assert f"Is the liver healthy?{YES_NO_SUFFIX} [/INST] yes</s>" in text


def test_no_image_example_has_no_image_at_all(processor) -> None:
    example = encode_example(processor, record(), None, max_length=2048)
    assert set(example) == {"input_ids", "attention_mask", "labels"}
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert image_id not in example["input_ids"].tolist()
    assert processor.tokenizer.decode(example["input_ids"]).startswith("<s>[INST] Which organ is abnormal?")


def test_max_length_cuts_the_answer_but_never_the_prompt(processor) -> None:
    full = encode_example(processor, record(answer="left upper lobe of the lung"), image(), max_length=2048)
    prompt_length = int((full["labels"] == IGNORE_INDEX).sum())
    cut = encode_example(processor, record(answer="left upper lobe of the lung"), image(), prompt_length + 2)
    assert len(cut["input_ids"]) == prompt_length + 2 and int((cut["labels"] != IGNORE_INDEX).sum()) == 2
    with pytest.raises(DataError, match=f"question 1: its prompt has {prompt_length} tokens"):
        encode_example(processor, record(), image(), max_length=prompt_length)


def test_collator_pads_right_and_keeps_images_apart(processor) -> None:
    a = encode_example(processor, record(answer="lung"), image(), 2048)
    b = encode_example(processor, record(answer="left upper lobe of the lung"), image(), 2048)
    batch = VQACollator(pad_token_id=3)([a, b])
    n = len(a["input_ids"])
    assert batch["input_ids"].shape == (2, len(b["input_ids"]))
    assert (batch["input_ids"][0, n:] == 3).all() and (batch["attention_mask"][0, n:] == 0).all()
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    assert torch.equal(batch["input_ids"][1], b["input_ids"])
    assert batch["pixel_values"].shape == (2, 3, 30, 30)
    no_image = VQACollator(pad_token_id=3)([encode_example(processor, record(), None, 2048)] * 2)
    assert "pixel_values" not in no_image
    with pytest.raises(DataError, match="mixes examples with and without images"):
        VQACollator(pad_token_id=3)([a, encode_example(processor, record(), None, 2048)])


def test_dataset_reads_and_pads_images_lazily(processor, tmp_path: Path) -> None:
    # a wide image: padded to a square with the CLIP mean colour (docs/method.md#prompting) before the processor sees it
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "wide.png")
    rec = record()
    padded = VQATrainDataset([rec], processor, ImageSettings(lambda r: tmp_path / "wide.png", True), 2048)
    loaded = padded.load_image(rec)
    assert loaded.size == (40, 40) and loaded.getpixel((0, 0)) == CLIP_MEAN_FILL
    assert loaded.getpixel((20, 20)) == (255, 0, 0)
    unpadded = VQATrainDataset([rec], processor, ImageSettings(lambda r: tmp_path / "wide.png", False), 2048)
    assert unpadded.load_image(rec).size == (40, 20)
    assert not torch.equal(padded[0]["pixel_values"], unpadded[0]["pixel_values"])
    assert padded.lengths == [len(processor.tokenizer(f"{rec.question} {rec.answer}")["input_ids"])]
    missing = VQATrainDataset([rec], processor, ImageSettings(lambda r: tmp_path / "missing.png"), 2048)
    with pytest.raises(DataError, match="missing.png does not exist"):
        missing[0]
    with pytest.raises(DataError, match="the training split has no records"):
        VQATrainDataset([], processor, None, 2048)
