"""A tiny Idefics3 (SmolVLM v1's architecture): Idefics3ForConditionalGeneration with a small SigLIP tower and
pixel-shuffle connector, Idefics3ImageProcessorPil splitting images into tiles plus a global view (so images of
other sizes give other numbers of tokens), SmolVLM's special tokens and chat format."""

from __future__ import annotations

from pathlib import Path

from sure_vqa.models.tiny import family_tokenizer, save_tiny

# SmolVLM-Instruct's published chat format: `<|im_start|>User:<image>QUESTION<end_of_utterance>\nAssistant:`
# (a colon and no space when the turn starts with an image; the answer follows after a space).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
_TILE_TOKENS = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                  "<global-img>", *_TILE_TOKENS]
TILE_SIZE, PATCH_SIZE, SCALE_FACTOR = 28, 7, 2


def build(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    tokenizer = family_tokenizer(SPECIAL_TOKENS, eos="<end_of_utterance>", pad="<|endoftext|>", bos="<|im_start|>",
                                 extra={"image_token": "<image>"})
    tokens_per_tile = (TILE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=TILE_SIZE, patch_size=PATCH_SIZE),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        scale_factor=SCALE_FACTOR, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    image_processor = Idefics3ImageProcessorPil(size={"longest_edge": 2 * TILE_SIZE},
                                                max_image_size={"longest_edge": TILE_SIZE}, do_image_splitting=True)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=tokens_per_tile,
                                  chat_template=CHAT_TEMPLATE)
    return save_tiny(model, processor, out_dir, [tokenizer.eos_token_id])
