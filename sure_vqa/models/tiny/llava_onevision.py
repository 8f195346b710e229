"""A tiny LLaVA-OneVision: LlavaOnevisionForConditionalGeneration with a small SigLIP tower and Qwen2 language model,
LlavaOnevisionImageProcessorPil with AnyRes grid points (so images of other sizes give other numbers of tokens),
Qwen's ChatML tokens and the llava-hf OneVision chat format."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# llava-hf's OneVision chat format: `<|im_start|>user\n<image>\nQUESTION<|im_end|>\n<|im_start|>assistant\n`
# (images first, then each text after a newline).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ '\\n' + content['text'] if message['role'] != 'assistant' else content['text'] }}{% endfor %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
TILE, PATCH_SIZE = 28, 7
GRID_POINTS = [[TILE, TILE], [TILE, 2 * TILE], [2 * TILE, TILE], [2 * TILE, 2 * TILE]]


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessorPil,
        Qwen2Config,
        SiglipVisionConfig,
    )

    from sure_vqa.models.loading import video_free_processor_class

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                                 extra={"image_token": "<image>", "video_token": "<video>"})
    ids = tokenizer.convert_tokens_to_ids
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, image_size=TILE, patch_size=PATCH_SIZE),
        text_config=Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=2048, tie_word_embeddings=False,
                                eos_token_id=ids("<|im_end|>"), pad_token_id=tokenizer.pad_token_id),
        image_token_index=ids("<image>"), video_token_index=ids("<video>"), vision_feature_select_strategy="full",
        vision_feature_layer=-1, image_grid_pinpoints=GRID_POINTS, vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config)
    image_processor = LlavaOnevisionImageProcessorPil(size={"height": TILE, "width": TILE},
                                                      crop_size={"height": TILE, "width": TILE},
                                                      image_grid_pinpoints=GRID_POINTS)
    processor = video_free_processor_class("LlavaOnevisionProcessor")(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
        num_image_tokens=(TILE // PATCH_SIZE) ** 2, vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE, vision_aspect_ratio="anyres_max_9")
    return save_tiny(model, processor, out_dir, [ids("<|im_end|>")])
