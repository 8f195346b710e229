"""A tiny InternVL3 (-hf, the transformers-native form): InternVLForConditionalGeneration with a small InternViT, the
pixel-shuffle MLP projector and a Qwen2 language model (InternVL3.5 has Qwen3; the classes are the same),
GotOcr2ImageProcessorPil cutting an image into tiles by its aspect ratio plus a thumbnail (so images of other
shapes give other numbers of image tokens), InternVL's special tokens and the -hf chat format."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# InternVL3-hf's chat format as its chat template renders our messages: ChatML turns, an image as `<IMG_CONTEXT>\n`
# before the text (the processor expands it to <img> + <IMG_CONTEXT> per token of every tile + </img>).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for content in message['content'] -%}"
    "{%- if content['type'] == 'image' -%}{{- '<IMG_CONTEXT>\\n' -}}"
    "{%- elif content['type'] == 'video' -%}{{- '<video>\\n' -}}"
    "{%- elif content['type'] == 'text' -%}{{- content['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
TILE, PATCH_SIZE = 28, 7
TOKENS_PER_TILE = (TILE // PATCH_SIZE) ** 2 // 4  # pixel shuffle with downsample_ratio 0.5


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import GotOcr2ImageProcessorPil, InternVLConfig, InternVLForConditionalGeneration

    from sure_vqa.models.loading import video_free_processor_class

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                                 extra={"start_image_token": "<img>", "end_image_token": "</img>",
                                        "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"})
    ids = tokenizer.convert_tokens_to_ids
    config = InternVLConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": [TILE, TILE], "patch_size": [PATCH_SIZE, PATCH_SIZE]},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 64,
                     "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 1024, "tie_word_embeddings": False,
                     "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
                     "pad_token_id": tokenizer.pad_token_id},
        image_token_id=ids("<IMG_CONTEXT>"), image_seq_length=TOKENS_PER_TILE, downsample_ratio=0.5,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    image_processor = GotOcr2ImageProcessorPil(size={"height": TILE, "width": TILE}, crop_to_patches=True,
                                               min_patches=1, max_patches=4)
    processor = video_free_processor_class("InternVLProcessor")(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_length=TOKENS_PER_TILE,
        chat_template=CHAT_TEMPLATE)
    return save_tiny(model, processor, out_dir, [ids("<|im_end|>"), ids("<|endoftext|>")])
