"""A tiny LLaVA built from a config, offline, for tests and benchmarks.

It has the same classes as a real one (LlavaForConditionalGeneration, LlavaProcessor with a CLIP image
processor and a chat template), so every code path that serves LLaVA-Med is exercised; only the sizes differ.
The tokenizer is a byte-level BPE trained here on a small corpus, because no tokenizer ships offline.
"""

from __future__ import annotations

from pathlib import Path

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
