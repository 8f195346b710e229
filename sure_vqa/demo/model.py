"""The demo VLM, assembled: the real SmolLM2-135M-Instruct language model with a small, randomly initialised CLIP
vision tower and projector, saved as an ordinary transformers LLaVA folder.

No vision-encoder weights ship in any package, so the vision side starts random; the demo then aligns it on
captions of its train images (`demo_alignment.py`, LLaVA's first stage) before any fine-tuning. The language side
is a real instruction-tuned model. The folder loads through the same code as LLaVA-Med
(LlavaForConditionalGeneration + LlavaProcessor), so the demo exercises the real loading, training and inference
paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sure_vqa.atomic_io import move_folder_into_place, staged_folder

IMAGE_TOKEN = "<image>"
IMAGE_SIZE = 64
PATCH_SIZE = 16
_COMPLETE = "demo_model_complete"  # written last: a folder without it is rebuilt

# SmolLM2's ChatML format, extended with the multimodal message format (the image placed where `<image>` is).
CHAT_TEMPLATE = (
    "{{ '<|im_start|>system\\nYou are a helpful medical assistant. Answer briefly.<|im_end|>\\n' }}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for c in message['content'] -%}"
    "{%- if c['type'] == 'image' -%}{{ '<image>\\n' }}{%- elif c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def build_demo_model(out_dir: str | Path, lm_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Assembles and saves the demo LLaVA; a finished folder is reused as it is."""
    out_dir = Path(out_dir)
    if (out_dir / _COMPLETE).is_file():
        return out_dir

    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from sure_vqa.models.smollm2 import smollm2_dir

    lm_dir = Path(lm_dir) if lm_dir is not None else smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    tokenizer.add_special_tokens({"pad_token": "<|endoftext|>"})
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    tokenizer.padding_side = "left"
    language_model = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)
    torch.manual_seed(seed)  # before the new rows below are drawn: the same seed builds the same folder
    # The vocabulary grows by `<image>`; its embedding row is never read (image features replace it).
    language_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    text_config = language_model.config
    text_config.pad_token_id = tokenizer.pad_token_id
    text_config.tie_word_embeddings = False

    vision_config = CLIPVisionConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=128,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(language_model.model.state_dict())
    model.lm_head.weight.data.copy_(language_model.get_output_embeddings().weight.data)
    generation = model.generation_config
    generation.bos_token_id = language_model.generation_config.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id

    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
        ),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    with staged_folder(out_dir) as workdir:
        model.save_pretrained(workdir)
        processor.save_pretrained(workdir)
        (workdir / _COMPLETE).write_text("SmolLM2-135M-Instruct + random CLIP vision tower\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)  # an unfinished folder from an interrupted build
        move_folder_into_place(workdir, out_dir)
    return out_dir
