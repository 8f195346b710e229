"""Training examples from QA records: the inference prompt plus the answer, with labels on the answer only.

The prompt is built by `sure_vqa.models.prompting` exactly as inference builds it (docs/method.md#prompting) and tokenised by
the same processor call, so the model is trained on the very token sequence it will be asked to continue. The
answer follows through the model's own chat template (which ends it with the end-of-sequence token), and only
those answer tokens (+eos) carry labels. A no-image example has no image in its prompt and no pixel values at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from sure_vqa.config import ConfigError, DataError
from sure_vqa.data.records import QARecord
from sure_vqa.images.loading import load_image, processor_fill
from sure_vqa.models import prompting

IGNORE_INDEX = -100  # the label value that torch's cross-entropy (and transformers' losses) skip
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "labels")


def conversation_texts(processor: Any, record: QARecord, with_image: bool) -> tuple[str, str]:
    """(prompt, prompt + answer) in the model's chat format; the prompt is what inference sends.

    Most templates render the answer right after the generation prompt. Some do not: Gemma 4's generation
    prompt ends with an empty thought channel (`<|channel>thought\n<channel|>`, thinking off) that its rendering of
    a past answer leaves out. There the answer is found in the template's rendering of the answer turn, and the
    training text is the generation prompt followed by the answer and what the template closes it with, so the
    model learns to answer the very prompt inference sends (docs/models.md#thinking)."""
    from sure_vqa.models.chat_templates import render

    prompt = prompting.prompt_text(processor, record.question, record.answer_type, record.categories, with_image)
    question = prompting.question_text(record.question, record.answer_type, record.categories)
    answer = record.answer.strip()
    full = render(processor, prompting.messages(question, with_image, answer=answer), add_generation_prompt=False)
    if full.startswith(prompt):
        return prompt, full
    head = render(processor, prompting.messages(question, with_image), add_generation_prompt=False)
    start = full.find(answer, len(head)) if full.startswith(head) and answer else -1
    if start < 0:
        raise ConfigError(
            "the processor's chat template renders the answer neither after the generation prompt nor inside an "
            f"answer turn after the question (prompt {prompt!r}, with answer {full!r}); training needs one of the two"
        )
    return prompt, prompt + full[start:]


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_example(processor: Any, record: QARecord, image: Any | None, max_length: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask, labels (answer only) and, with an image, the processor's image tensors.

    The chat template already writes the BOS token, so the tokenizer adds no special tokens of its own.
    Prompt and full text are tokenised separately and the labels start where the two token sequences part,
    which is exactly the answer for templates (like Mistral's) whose prompt ends in a token boundary.
    """
    prompt, full = conversation_texts(processor, record, with_image=image is not None)
    images = {"images": image} if image is not None else {}
    full_enc = processor(text=full, return_tensors="pt", add_special_tokens=False, **images)
    prompt_ids = processor(text=prompt, return_tensors="pt", add_special_tokens=False, **images)["input_ids"][0]
    input_ids = full_enc["input_ids"][0]
    answer_start = _common_prefix_length(prompt_ids.tolist(), input_ids.tolist())
    if answer_start >= max_length:
        raise DataError(f"question {record.qid}: its prompt has {answer_start} tokens, which does not leave room "
                        f"for the answer within train.max_length={max_length}; raise train.max_length")
    input_ids = input_ids[:max_length]
    labels = input_ids.clone()
    labels[:answer_start] = IGNORE_INDEX
    example = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    full_length = len(full_enc["input_ids"][0])
    for key, value in full_enc.items():
        if key in _SEQUENCE_KEYS or not isinstance(value, torch.Tensor):
            continue
        if value.dim() == 2 and value.shape == (1, full_length):
            # per-token inputs beside the ids (Gemma 3's token_type_ids, Qwen2.5-VL's mm_token_type_ids)
            example[key] = value[0][:max_length]
        elif image is not None:  # pixel_values and what goes with them (image_sizes, image_grid_thw, ...)
            example[key] = value
    return example


@dataclass(frozen=True)
class ImageSettings:
    """How training reads images: the path of a record's image, and LLaVA's pad-to-square (docs/method.md#prompting)."""

    image_path: Callable[[QARecord], Path]
    pad_to_square: bool = True


class VQATrainDataset(Dataset):
    """Records encoded on access (images are read lazily, by the DataLoader's workers).

    `images=None` is no-image training: prompts without the image and examples without pixel values.
    `lengths` are the text lengths in tokens, for the Trainer's grouping of similar lengths into one batch.
    """

    def __init__(self, records: Sequence[QARecord], processor: Any, images: ImageSettings | None,
                 max_length: int) -> None:
        if not records:
            raise DataError("the training split has no records; check dataset, data_shift and ood_value")
        self.records = list(records)
        self.processor = processor
        self.images = images
        self.max_length = max_length
        self._fill = processor_fill(getattr(processor, "image_processor", None))
        texts = [f"{r.question} {r.answer}" for r in self.records]
        tokenizer = getattr(processor, "tokenizer", processor)
        self.lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, record: QARecord) -> Any | None:
        if self.images is None:
            return None
        return load_image(self.images.image_path(record), pad_to_square=self.images.pad_to_square, fill=self._fill)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        return encode_example(self.processor, record, self.load_image(record), self.max_length)


@dataclass
class VQACollator:
    """Right-pads a list of examples into a batch: the ids with the pad token, labels with IGNORE_INDEX, the
    attention mask and any other per-token input (token type ids) with 0. Image tensors are concatenated along
    the batch dimension; when their other dimensions differ (a different number of tiles or AnyRes patches per
    image) they are zero-padded to the largest, as the families' processors pad a batch themselves (the models
    drop all-zero tiles, or read the real number of patches from `image_sizes`).

    A batch either has images in every example or in none; a no-image batch has no `pixel_values` key.
    """

    pad_token_id: int

    def __call__(self, examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        longest = max(len(e["input_ids"]) for e in examples)

        def pad(key: str, value: int) -> torch.Tensor:
            out = torch.full((len(examples), longest), value, dtype=examples[0][key].dtype)
            for row, example in enumerate(examples):
                out[row, : len(example[key])] = example[key]
            return out

        keys = sorted(examples[0])
        if any(sorted(e) != keys for e in examples):
            raise DataError("a training batch mixes examples with and without images")
        fill = {"input_ids": self.pad_token_id, "labels": IGNORE_INDEX}
        batch = {}
        for key in keys:
            if all(e[key].dim() == 1 and len(e[key]) == len(e["input_ids"]) for e in examples):
                batch[key] = pad(key, fill.get(key, 0))
            else:
                batch[key] = _concatenate_padded([e[key] for e in examples])
        return batch


def _concatenate_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat along dim 0, after zero-padding every other dimension to the largest size among the tensors."""
    shape = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    padded = []
    for tensor in tensors:
        if list(tensor.shape[1:]) != shape:
            out = tensor.new_zeros((tensor.shape[0], *shape))
            out[(slice(None), *(slice(0, n) for n in tensor.shape[1:]))] = tensor
            tensor = out
        padded.append(tensor)
    return torch.cat(padded, dim=0)


def pad_token_id(processor: Any) -> int:
    tokenizer = getattr(processor, "tokenizer", processor)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ConfigError("the tokenizer has neither a pad nor an eos token; cannot pad training batches")
    return int(pad)
