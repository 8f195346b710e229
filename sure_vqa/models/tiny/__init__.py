"""Tiny VLMs built from configs, offline, for tests and benchmarks: one per model family.

Each has the same classes as a real one (for LLaVA: LlavaForConditionalGeneration, LlavaProcessor with a CLIP
image processor and a chat template; the other families' builders are the modules of this package), so every
code path that serves the published models is exercised; only the sizes differ. The tokenizers are byte-level
BPEs trained here on a small corpus with each family's special tokens, because no tokenizer ships offline; the
chat templates render the published models' formats (docs/models.md).
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

# LLaVA-Med v1.5's conversation format (Mistral-instruct), shared with the LLaVA-Med converter.
from sure_vqa.models.chat_templates import LLAVA_MED_CHAT_TEMPLATE as CHAT_TEMPLATE

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]

_CORPUS = [
    "What modality is used to take this image? Which organ is abnormal? Is this a CT image or X-Ray image?",
    "Does the picture contain the liver? Where is the lesion? What is the largest organ in the picture?",
    "Please choose from the following two options: [yes, no]. yes no CT MRI MR X-Ray ultrasound retina",
    "Which part of the body does this image belong to? abdomen chest brain head neck pelvic cavity leg hand",
    "In what plane is this image scanned? axial coronal sagittal transverse left right upper lower both none",
    "lung heart liver kidney spleen bladder colon knee shoulder eye skin tissue histology 0 1 2 3 4 5 6 7 8 9",
    "[INST] [/INST] {\"score\": 5} The answer is correct. Rate the prediction against the ground truth.",
]
# The other families' tokenizers also learn their chat templates' words (the LLaVA tokenizer above stays as it
# was, so the demo model and its caches keep their token ids).
_FAMILY_CORPUS = [*_CORPUS, "What colour is the image? red blue user assistant model User: Assistant: system "
                  "You are a helpful assistant."]


def build_tokenizer(vocab_size: int = 600):
    """A byte-level BPE tokenizer (trained in milliseconds) wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )


def family_tokenizer(special_tokens: list[str], eos: str, pad: str, bos: str | None = None,
                     extra: dict[str, str] | None = None, vocab_size: int = 600) -> Any:
    """A byte-level BPE with a family's special tokens (each one token), wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_FAMILY_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad,
                                   extra_special_tokens=extra or {}, padding_side="left")


def save_tiny(model: Any, processor: Any, out_dir: str | Path, eos_token_ids: list[int]) -> Path:
    """Saves a tiny model and its processor; generation stops at the family's end-of-turn token(s) as the
    published generation configs say."""
    from sure_vqa.models.loading import save_processor

    tokenizer = processor.tokenizer
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = eos_token_ids if len(eos_token_ids) > 1 else eos_token_ids[0]
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out_dir)
    save_processor(processor, out_dir)
    return Path(out_dir)


# LLaVA's tiny model is built here (the demo model and most tests use it); every other family's by a module of
# this package named after the family, each with `build(out_dir, seed)`.
FAMILIES = ("llava", *sorted(module.name for module in pkgutil.iter_modules(__path__)))


def build_tiny(family: str, out_dir: str | Path, seed: int = 0) -> Path:
    """The tiny model of a family (sure_vqa.models.families), saved with its processor in `out_dir`."""
    import importlib

    if family == "llava":
        return build_tiny_llava(out_dir, seed=seed)
    if family not in FAMILIES:
        raise ValueError(f"no tiny model for family {family!r}; tiny models: {', '.join(FAMILIES)}")
    return importlib.import_module(f"{__name__}.{family}").build(out_dir, seed=seed)


def build_tiny_llava(
    out_dir: str | Path,
    image_size: int = 30,
    patch_size: int = 6,
    text_hidden: int = 64,
    text_layers: int = 2,
    vision_hidden: int = 32,
    seed: int = 0,
) -> Path:
    """Builds, saves and returns the folder of a tiny random LLaVA with its processor."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(
        hidden_size=vision_hidden,
        intermediate_size=vision_hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=text_hidden,
        intermediate_size=text_hidden * 2,
        num_hidden_layers=text_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    num_patches = (image_size // patch_size) ** 2
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        image_seq_length=num_patches,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
