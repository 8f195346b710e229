"""Builders for the training tests: a SLAKE-format dataset whose answers depend on the image, and a tiny LLaVA
whose output head is confident enough to learn it.

The colour task: every image is a plain red or blue square and the question is "What colour is the image?", so
the answer can only come from the image. It is written in SLAKE's raw format (imgs/, train.json, validate.json,
test.json) so that train.py reads it through the real dataset reader and split files; the X-Ray rows are the ood
side of the shift modality=X-Ray and never reach training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220)}
COLOUR_QUESTION = "What colour is the image?"
# The learning rates the tests use: the study's (docs/method.md#fine-tuning-defaults) are for 7B models and a full epoch, these make
# the tiny model learn the colour task in a few dozen steps.
TEST_LR = {"lora": 3e-3, "ia3": 3e-2, "prompt": 3e-2, "full": 1e-3}


def colour_row(qid: int, colour: str, modality: str = "CT") -> dict[str, Any]:
    return {
        "qid": qid, "img_id": qid, "img_name": f"xmlab{qid}/source.png", "question": COLOUR_QUESTION,
        "answer": colour, "q_lang": "en", "location": "Abdomen", "modality": modality, "answer_type": "OPEN",
        "base_type": "vqa", "content_type": "Color", "triple": ["vhead", "_", "_"],
    }


def write_colour_slake(root: Path, n_train: int = 16, name: str = "SLAKE") -> Path:
    """`{root}/{name}` in SLAKE's raw format: n_train iid train questions (alternating red/blue, CT), two
    X-Ray train questions (ood), and a few validate/test questions. Returns the dataset folder."""
    folder = root / name
    rows = {
        "train.json": [colour_row(i, "red" if i % 2 else "blue") for i in range(1, n_train + 1)]
        + [colour_row(n_train + 1, "red", "X-Ray"), colour_row(n_train + 2, "blue", "X-Ray")],
        "validate.json": [colour_row(1001, "red"), colour_row(1002, "blue")],
        "test.json": [colour_row(2001, "red"), colour_row(2002, "blue"), colour_row(2003, "red", "X-Ray")],
    }
    for filename, entries in rows.items():
        (folder / filename).parent.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_text(json.dumps(entries, indent=2), encoding="utf-8")
        for entry in entries:
            path = folder / "imgs" / entry["img_name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            # not square, so that pad_to_square has work to do
            Image.new("RGB", (36, 28), COLOURS[entry["answer"]]).save(path)
    return folder


def colour_batches(data_root: Path, processor: Any, pad_to_square: bool = True) -> tuple[dict, dict]:
    """(right answers, swapped answers) for the held-out iid test questions (one red, one blue image), each as one
    training batch; `pad_to_square` as the model was trained (LLaVA pads, the other families do not)."""
    import dataclasses

    from sure_vqa.data.splits import record_image_path, split_records
    from sure_vqa.train.data import ImageSettings, VQACollator, VQATrainDataset, pad_token_id

    records = split_records(data_root, "SLAKE", "test", "iid", "modality", "X-Ray")
    assert sorted(r.answer for r in records) == ["blue", "red"]
    swapped = [dataclasses.replace(r, answer={"red": "blue", "blue": "red"}[r.answer]) for r in records]
    images = ImageSettings(lambda r: record_image_path(data_root, "SLAKE", r), pad_to_square=pad_to_square)
    collate = VQACollator(pad_token_id(processor))

    def batch(rs):
        dataset = VQATrainDataset(rs, processor, images, max_length=2048)
        return collate([dataset[i] for i in range(len(dataset))])

    return batch(records), batch(swapped)


def confident_copy(source: Path, target: Path, head_scale: float = 10.0) -> Path:
    """A copy of a tiny VLM (any family) with its output head scaled up.

    A random head with 0.02-std weights caps every logit near zero, so no adapter on the layers below it can make
    the softmax confident (the loss stalls near ln(vocab)); a pretrained model's head has no such cap. Scaling
    the head gives the tiny model that property and leaves every code path the same (the tiny models do not tie
    the head to the input embeddings, so only the head changes).
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from sure_vqa.models.loading import load_processor, save_processor

    model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
    with torch.no_grad():
        model.lm_head.weight.mul_(head_scale)
    model.save_pretrained(target)
    save_processor(load_processor(source), target)
    return target


def train_command(data_root: Path, model_path: Path, experiments: Path, *extra: str) -> list[str]:
    """train.py with LoRA on the colour dataset (SLAKE modality=X-Ray); later `extra` overrides win."""
    return [
        sys.executable, "train.py", f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}",
        f"paths.model_path={model_path}", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray",
        "model_type=lora", "finetune.lr=3e-3", "finetune.lora.rank=4",
        # 24 questions, batch 2, 2 epochs = 24 steps, a checkpoint every 2 steps
        "train.epochs=2", "train.batch_size=2", "train.per_device_batch_size=2", "train.save_steps=2",
        "train.logging_steps=1", "train.dataloader_num_workers=0", "train.gradient_checkpointing=false",
        f"hydra.run.dir={experiments}/hydra", *extra,
    ]
