"""Qwen3.5 (natively multimodal; 0.8B to 27B dense): a native-resolution ViT whose patch merger is the projector
(`model.visual.merger`), a hybrid language model that alternates gated-DeltaNet linear attention with full
attention, interleaved multimodal rotary positions. Images go to the processor (Qwen3-VL's) as they are.

Qwen3.5 thinks before it answers unless its chat template is told not to; every prompt is rendered with
`enable_thinking=False` (sure_vqa.models.chat_templates), so the answer follows the prompt's empty reasoning
block, in training and in inference alike.

The processor class also wants a torchvision video processor; SURE-VQA builds it without one (images only).
Prompt tuning is refused as for Qwen2.5-VL and Qwen3-VL: without input ids there are no M-RoPE positions.
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="qwen3_5",
    description="Qwen3.5: native-resolution ViT, patch merger, hybrid linear/full-attention language model",
    model_types=("qwen3_5",), model_class="Qwen3_5ForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    vision_tower="model.visual", projector="model.visual.merger", language_model="model.language_model",
    video_free_processor=True,
    unsupported_methods={"prompt": "peft's prompt tuning passes no input ids, so the image patches lose their "
                                   "3D M-RoPE positions"},
    checkpoints=("Qwen/Qwen3.5-0.8B", "Qwen/Qwen3.5-2B", "Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-27B")))
