"""A tiny Qwen3-VL: Qwen3VLForConditionalGeneration with a small ViT whose patch merger and DeepStack mergers feed the
language model, Qwen2VLImageProcessorPil at native resolution (small pixel bounds, so images of other sizes give
other numbers of tokens), Qwen's special tokens and Qwen3-VL-Instruct's chat format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# Qwen3-VL-Instruct's chat format as its chat_template.json renders our messages: ChatML turns, no default system
# turn (Qwen2.5-VL had one), an image as <|vision_start|><|image_pad|><|vision_end|> (the processor repeats
# <|image_pad|> once per merged patch), the answer right after `<|im_start|>assistant\n`.
CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for content in message['content'] -%}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content -%}"
    "{%- set image_count.value = image_count.value + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Picture ' ~ image_count.value ~ ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in content -%}{{- content['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
PATCH_SIZE, MERGE_SIZE = 7, 2


def processor(tokenizer: Any, chat_template: str) -> Any:
    """Qwen3-VL's processor (also Qwen3.5's) without video, over Qwen2VLImageProcessorPil at native resolution with
    small pixel bounds, so that images of other sizes give other numbers of tokens."""
    from transformers import Qwen2VLImageProcessorPil

    from sure_vqa.models.loading import video_free_processor_class

    unit = PATCH_SIZE * MERGE_SIZE  # one merged token covers unit x unit pixels
    image_processor = Qwen2VLImageProcessorPil(min_pixels=(2 * unit) ** 2, max_pixels=(4 * unit) ** 2,
                                               patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=2)
    return video_free_processor_class("Qwen3VLProcessor")(image_processor=image_processor, tokenizer=tokenizer,
                                                          chat_template=chat_template)


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                     "max_position_embeddings": 1024, "bos_token_id": ids("<|endoftext|>"),
                     "eos_token_id": ids("<|im_end|>"), "pad_token_id": tokenizer.pad_token_id,
                     # interleaved M-RoPE over head_dim 16's 8 frequencies (time, height, width)
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                         "mrope_interleaved": True}},
        # one DeepStack merger: the first block's features also reach the first language-model layer
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "patch_size": PATCH_SIZE, "spatial_merge_size": MERGE_SIZE, "temporal_patch_size": 2,
                       "out_hidden_size": 64, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    return save_tiny(model, processor(tokenizer, CHAT_TEMPLATE), out_dir, [ids("<|im_end|>"), ids("<|endoftext|>")])
