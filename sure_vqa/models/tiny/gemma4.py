"""A tiny Gemma 4: Gemma4ForConditionalGeneration with a small vision tower, an audio tower as the E2B/E4B
checkpoints have (SURE-VQA never builds it: `unused_config_parts`), per-layer input embeddings as the E models
have, a global-attention layer without `v_proj` (keys serve as values, as in 31B), the real Gemma4Processor over
Gemma4ImageProcessorPil at its smallest token budget (70 soft tokens per image, fewer for other aspect ratios)
and Gemma4AudioFeatureExtractor, Gemma 4's special tokens and chat format."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# Gemma 4's chat format as its chat template renders our messages: `<bos><|turn>user\n` turns closed by
# `<turn|>\n`, the assistant's turn called `model`, text trimmed, an image as `\n\n<|image|>\n\n` (the processor
# expands it to <|image> + soft tokens + <image|>). With thinking off (the default) the generation prompt ends
# with an empty thought channel, `<|channel>thought\n<channel|>`, which a past answer's turn does not have, so the
# answer does not follow the prompt in the rendered conversation (sure_vqa.train.data finds it).
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if enable_thinking is defined and enable_thinking -%}{{- '<|turn>system\\n<|think|>\\n<turn|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<|turn>' + role + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] | trim -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'text' -%}{{- item['text'] | trim -}}"
    "{%- elif item['type'] == 'image' -%}{{- '\\n\\n<|image|>\\n\\n' -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|turn>model\\n' -}}"
    "{%- if not enable_thinking | default(false) -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}"
    "{%- endif -%}"
)
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<|image>", "<image|>", "<|image|>",
                  "<|audio>", "<audio|>", "<|audio|>", "<|video|>", "<|channel>", "<channel|>", "<|think|>"]
PATCH_SIZE, POOLING, SOFT_TOKENS = 4, 3, 70  # 70: the smallest budget Gemma 4's image processor accepts


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Gemma4AudioFeatureExtractor,
        Gemma4Config,
        Gemma4ForConditionalGeneration,
        Gemma4ImageProcessorPil,
    )

    from sure_vqa.models.loading import video_free_processor_class

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<eos>", pad="<pad>", bos="<bos>",
                                 extra={"image_token": "<|image|>", "boi_token": "<|image>", "eoi_token": "<image|>",
                                        "audio_token": "<|audio|>", "boa_token": "<|audio>",
                                        "eoa_token": "<audio|>"})
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma4Config(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"],
                     "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "global_head_dim": 16,
                     "num_global_key_value_heads": 1, "attention_k_eq_v": True, "sliding_window": 64,
                     "max_position_embeddings": 1024, "vocab_size_per_layer_input": len(tokenizer),
                     "hidden_size_per_layer_input": 8, "tie_word_embeddings": False,
                     "pad_token_id": ids("<pad>"), "bos_token_id": ids("<bos>"), "eos_token_id": ids("<eos>")},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "num_key_value_heads": 2, "head_dim": 16, "patch_size": PATCH_SIZE,
                       "pooling_kernel_size": POOLING, "position_embedding_size": 64},
        audio_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "subsampling_conv_channels": [8, 4], "output_proj_dims": 16},
        boi_token_id=ids("<|image>"), eoi_token_id=ids("<image|>"), image_token_id=ids("<|image|>"),
        video_token_id=ids("<|video|>"), boa_token_id=ids("<|audio>"), eoa_token_index=ids("<audio|>"),
        audio_token_id=ids("<|audio|>"),
        # the published models tie the head to the embeddings; the tiny ones do not, so that the tests can make
        # the head confident without touching the inputs (tests/helpers/training_fixtures.confident_copy)
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Gemma4ForConditionalGeneration(config)
    with torch.no_grad():
        # transformers initialises the patch position table to ones (a pretrained model has learnt it); random
        # small values instead, so that a random tower's features follow the pixels rather than that constant
        for name, parameter in model.named_parameters():
            if name.endswith("position_embedding_table"):
                parameter.normal_(std=0.02)
    processor = video_free_processor_class("Gemma4Processor")(
        feature_extractor=Gemma4AudioFeatureExtractor(),
        image_processor=Gemma4ImageProcessorPil(patch_size=PATCH_SIZE, pooling_kernel_size=POOLING,
                                                max_soft_tokens=SOFT_TOKENS),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, image_seq_length=SOFT_TOKENS)
    # Gemma 4 stops at <eos> or at the end of its turn
    return save_tiny(model, processor, out_dir, [tokenizer.eos_token_id, ids("<turn|>")])
