"""A tiny Gemma 3 (MedGemma's architecture): Gemma3ForConditionalGeneration with a small SigLIP tower, the real
Gemma3Processor over Gemma3ImageProcessorPil, Gemma's special tokens and Gemma 3's chat format."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# Gemma 3's published chat format: `<bos><start_of_turn>user\n<start_of_image>QUESTION<end_of_turn>\n
# <start_of_turn>model\n`; the assistant's turn is called `model`; text is trimmed; an image is its begin marker.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                  "<end_of_image>", "<image_soft_token>"]
IMAGE_SIZE, PATCH_SIZE, TOKENS_PER_IMAGE = 28, 7, 4


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessorPil,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<eos>", pad="<pad>", bos="<bos>",
                                 extra={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>",
                                        "image_token": "<image_soft_token>"})
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                     sliding_window=64, max_position_embeddings=1024, tie_word_embeddings=False,
                                     pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id),
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        mm_tokens_per_image=TOKENS_PER_IMAGE, boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"), image_token_index=ids("<image_soft_token>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    processor = Gemma3Processor(image_processor=Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE,
                                                                              "width": IMAGE_SIZE}),
                                tokenizer=tokenizer, image_seq_length=TOKENS_PER_IMAGE, chat_template=CHAT_TEMPLATE)
    # MedGemma stops at <eos> or <end_of_turn>, as its generation_config.json says
    return save_tiny(model, processor, out_dir, [tokenizer.eos_token_id, ids("<end_of_turn>")])
