"""A tiny Qwen2.5-VL (the architecture of Lingshu and HuatuoGPT-Vision too): Qwen2_5_VLForConditionalGeneration with a
small windowed ViT and patch merger, Qwen2VLImageProcessorPil at native resolution (small pixel bounds, so images
of other sizes give other numbers of tokens), Qwen's special tokens and ChatML chat format."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# Qwen2.5-VL-Instruct's published chat format: a default system turn, ChatML turns, an image as
# <|vision_start|><|image_pad|><|vision_end|> (the processor repeats <|image_pad|> once per merged patch).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
PATCH_SIZE, MERGE_SIZE = 7, 2


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from sure_vqa.models.loading import video_free_processor_class

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 1024, "tie_word_embeddings": False,
                     "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
                     "pad_token_id": tokenizer.pad_token_id,
                     # head_dim 16: the three M-RoPE sections (time, height, width) cover its 8 frequencies
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "patch_size": PATCH_SIZE, "spatial_merge_size": MERGE_SIZE, "temporal_patch_size": 2,
                       "window_size": 28, "out_hidden_size": 64, "fullatt_block_indexes": [1]},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    unit = PATCH_SIZE * MERGE_SIZE  # one merged token covers unit x unit pixels
    image_processor = Qwen2VLImageProcessorPil(min_pixels=(2 * unit) ** 2, max_pixels=(4 * unit) ** 2,
                                               patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=2)
    processor = video_free_processor_class("Qwen2_5_VLProcessor")(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=None, chat_template=CHAT_TEMPLATE)
    return save_tiny(model, processor, out_dir, [ids("<|im_end|>"), ids("<|endoftext|>")])
