"""The demo VLM's eyes: a short alignment stage, as LLaVA's first stage, on the demo's own training images.

The demo VLM's vision tower starts random (no vision weights ship in any package), so without this stage its
models answer the same with or without the image. Here the vision tower and projector are trained, the language
model frozen, to caption each image of the demo dataset's train part (never a val or test image) with what is
known of it (modality, body region, plane, organs: `demo/dataset/catalogue.py`), with the loss on the caption
tokens only, through the same prompt and example encoding as fine-tuning (`train/data.py`). Each step sees a
random crop of its images, so the tower learns the image, not the pixels of 36 files.

The aligned model is built once and cached under $SURE_VQA_CACHE (like the SmolLM2 conversion), keyed by
`ALIGNMENT_VERSION`; the demo folder gets hard links to it (a copy where links are not possible).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa.atomic_io import move_folder_into_place, staged_folder

log = logging.getLogger(__name__)

ALIGNMENT_VERSION = 1  # bump when the captions, the steps or the model change: the cache key
INSTRUCTION = "Describe the image."
_COMPLETE = "demo_model_complete"


@dataclass(frozen=True)
class AlignmentSettings:
    """Sized to cost about a minute on two CPU cores (the demo's budget is 15 minutes in all).

    `warmup_steps` of the cheap objective first (no language-model pass: each image token is pulled towards the
    input embedding of one caption token, so the language model starts out reading the caption's words where
    the image is), then `steps` of LLaVA's captioning loss through the frozen language model.
    """

    warmup_steps: int = 300
    warmup_learning_rate: float = 3e-3
    steps: int = 12
    batch_size: int = 12
    learning_rate: float = 5e-4
    seed: int = 0


def caption(image: Any) -> str:
    """What is known of a demo image, in the words its questions use: "CT, Brain, Head, Transverse Plane: Brain."
    (modality, location, body part where it differs, plane, organs)."""
    parts = [image.modality, image.location]
    if image.body_part != image.location:
        parts.append(image.body_part)
    if image.plane:
        parts.append(image.plane)
    text = ", ".join(parts)
    return f"{text}: {', '.join(image.organs)}." if image.organs else f"{text}."


def training_images() -> list[tuple[Any, Any]]:
    """(rendered image, catalogue entry) for each image of the demo dataset's train part."""
    from sure_vqa.demo.dataset.build import assign_parts
    from sure_vqa.demo.dataset.catalogue import catalogue

    images = catalogue()
    parts = assign_parts(images)
    return [(image.render(), image) for image in images if parts[image.key] == "train"]


def _random_crop(image: Any, rng: random.Random) -> Any:
    """A crop of 70-100% of each side at a random place (the image itself one time in four)."""
    if rng.random() < 0.25:
        return image
    width, height = image.size
    w, h = int(width * rng.uniform(0.7, 1.0)), int(height * rng.uniform(0.7, 1.0))
    left, top = rng.randint(0, width - w), rng.randint(0, height - h)
    return image.crop((left, top, left + w, top + h))


def align(model_dir: Path, settings: AlignmentSettings = AlignmentSettings()) -> list[float]:
    """Trains the vision tower and projector of the LLaVA folder `model_dir` in place; returns the step losses."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from sure_vqa.data.records import QARecord
    from sure_vqa.images.loading import expand_to_square, processor_fill, to_rgb
    from sure_vqa.models.parts import model_parts, submodule
    from sure_vqa.train.data import VQACollator, encode_example, pad_token_id

    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    parts = model_parts(model)
    trained = [*submodule(model, parts.vision_tower).parameters(), *submodule(model, parts.projector).parameters()]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in trained:
        parameter.requires_grad_(True)
    fill = processor_fill(processor.image_processor)
    pairs = training_images()
    records = [QARecord(qid=f"align-{image.key}", image="", img_name=image.key, question=INSTRUCTION,
                        answer=caption(image), answer_type="OPEN", source="alignment") for _, image in pairs]
    collate = VQACollator(pad_token_id(processor))
    squared = [expand_to_square(to_rgb(image), fill) for image, _ in pairs]
    _embedding_warmup(model, processor, squared, [r.answer for r in records], trained, settings, rng)
    optimizer = torch.optim.AdamW(trained, lr=settings.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / settings.steps)
    model.train()
    losses: list[float] = []
    order: list[int] = []
    for _ in range(settings.steps):
        if len(order) < settings.batch_size:
            order += rng.sample(range(len(pairs)), len(pairs))
        batch, order = order[: settings.batch_size], order[settings.batch_size :]
        examples = [encode_example(processor, records[i],
                                   expand_to_square(to_rgb(_random_crop(pairs[i][0], rng)), fill), max_length=256)
                    for i in batch]
        loss = model(**collate(examples)).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    model.save_pretrained(model_dir)
    return losses


def _embedding_warmup(model: Any, processor: Any, images: Sequence[Any], captions: Sequence[str],
                      trained: Sequence[Any], settings: AlignmentSettings, rng: random.Random) -> None:
    """Image token j of an image towards the input embedding of its caption's token j (cycled), by MSE."""
    import torch

    embeddings = model.get_input_embeddings()
    tokenizer = processor.tokenizer
    optimizer = torch.optim.AdamW(trained, lr=settings.warmup_learning_rate, weight_decay=0.0)
    pixel_sets = [processor.image_processor(images=[_random_crop(image, rng) for image in images],
                                            return_tensors="pt")["pixel_values"] for _ in range(4)]
    with torch.no_grad():
        caption_embeddings = [embeddings(torch.tensor(tokenizer(c, add_special_tokens=False)["input_ids"]))
                              for c in captions]
        tokens = model.get_image_features(pixel_values=pixel_sets[0])
        tokens = tokens.pooler_output if hasattr(tokens, "pooler_output") else tokens
        count = (tokens[0] if isinstance(tokens, (list, tuple)) else tokens).shape[-2]
        targets = torch.stack([e[torch.arange(count) % len(e)] for e in caption_embeddings])
    for step in range(settings.warmup_steps):
        features = model.get_image_features(pixel_values=pixel_sets[step % len(pixel_sets)])
        features = features.pooler_output if hasattr(features, "pooler_output") else features
        features = torch.stack(list(features)) if isinstance(features, (list, tuple)) else features
        loss = torch.nn.functional.mse_loss(features.reshape(targets.shape), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    log.info("alignment warm-up: image-token MSE %.4f after %d steps", loss.item(), settings.warmup_steps)


def aligned_demo_model(cache_dir: Path | None = None, settings: AlignmentSettings = AlignmentSettings()) -> Path:
    """The aligned demo model in the model cache, built (assembled, then aligned) on first use."""
    from sure_vqa.demo.model import build_demo_model
    from sure_vqa.models.smollm2 import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"demo-llava-aligned-v{ALIGNMENT_VERSION}"
    if (target / _COMPLETE).is_file():
        return target
    with staged_folder(target) as workdir:
        built = build_demo_model(workdir / "model")
        start = time.perf_counter()
        print(f"[demo] aligning the vision tower on captions of the train images: {settings.warmup_steps} warm-up "
              f"steps, then {settings.steps} caption steps of {settings.batch_size} (once; then cached)", flush=True)
        losses = align(built, settings)
        seconds = time.perf_counter() - start
        print(f"[demo] aligned in {seconds:.0f} s: caption loss {losses[0]:.2f} -> "
              f"{sum(losses[-5:]) / len(losses[-5:]):.2f}", flush=True)
        (built / _COMPLETE).write_text(
            f"SmolLM2-135M-Instruct + CLIP vision tower aligned on demo train captions (v{ALIGNMENT_VERSION}); "
            f"{settings.steps} steps in {seconds:.0f} s; loss {losses[0]:.3f} -> {losses[-1]:.3f}\n",
            encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # an unfinished folder from an interrupted build
        move_folder_into_place(built, target)
    return target


def link_model(source: Path, target: Path) -> Path:
    """`target` as a folder of hard links to the files of `source` (copies where the file system refuses)."""
    if (target / _COMPLETE).is_file() and _same_files(source, target):
        return target
    with staged_folder(target) as workdir:
        for path in sorted(source.iterdir()):
            if path.is_file():
                try:
                    os.link(path, workdir / path.name)
                except OSError:
                    shutil.copy2(path, workdir / path.name)
        if target.exists():
            shutil.rmtree(target)
        move_folder_into_place(workdir, target)
    return target


def _same_files(a: Path, b: Path) -> bool:
    def listing(folder: Path) -> Sequence[tuple[str, int]]:
        return sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.is_file())

    return listing(a) == listing(b) and (a / _COMPLETE).read_bytes() == (b / _COMPLETE).read_bytes()
