"""A tiny Qwen3.5 (natively multimodal): Qwen3_5ForConditionalGeneration with one linear-attention (gated DeltaNet)
and one full-attention layer, as the published models alternate them, a small ViT with its patch merger,
Qwen2VLImageProcessorPil at native resolution, Qwen's special tokens and Qwen3.5's chat format with its thinking
switch."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny
from sure_vqa.models.tiny.qwen3_vl import MERGE_SIZE, PATCH_SIZE, processor

# Qwen3.5's chat format as its chat template renders our messages: ChatML turns, an image as
# <|vision_start|><|image_pad|><|vision_end|>; the model thinks unless `enable_thinking` is false, and then the
# generation prompt carries an empty reasoning block, `<think>\n\n</think>\n\n`, which the template also writes
# before the answer of the turn after the last question.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(last_query=-1) -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'user' -%}{%- set ns.last_query = loop.index0 -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' and loop.index0 > ns.last_query -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for content in message['content'] -%}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in content -%}{{- content['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- else -%}{{- '<think>\\n' -}}{%- endif -%}{%- endif -%}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>", "<think>", "</think>"]


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3_5Config(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "layer_types": ["linear_attention", "full_attention"],
                     "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                     "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 16,
                     "linear_value_head_dim": 16, "max_position_embeddings": 1024,
                     "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
                     "pad_token_id": tokenizer.pad_token_id,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                         "mrope_interleaved": True, "partial_rotary_factor": 1.0}},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "patch_size": PATCH_SIZE, "spatial_merge_size": MERGE_SIZE, "temporal_patch_size": 2,
                       "out_hidden_size": 64, "num_position_embeddings": 64},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen3_5ForConditionalGeneration(config)
    return save_tiny(model, processor(tokenizer, CHAT_TEMPLATE), out_dir, [ids("<|im_end|>"), ids("<|endoftext|>")])
