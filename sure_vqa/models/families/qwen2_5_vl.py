"""Qwen2.5-VL and its medical fine-tunes (Lingshu-7B, HuatuoGPT-Vision-7B-Qwen2.5VL): a native-resolution ViT whose
patch merger is the projector (it sits inside the vision module, `model.visual.merger`, and trains while the rest
of the tower stays frozen), Qwen2.5 language model with multimodal rotary positions. The number of image tokens
follows the image's size; images go to the processor as they are.

The processor class also wants a torchvision video processor; SURE-VQA builds it without one (images only).

Prompt tuning is refused: peft hands the model embeddings with the virtual tokens in front and no input ids,
and Qwen2.5-VL computes its 3D (M-RoPE) positions of the image patches from the input ids; without them
transformers falls back to plain 1D positions, so the image would reach the model laid out unlike anything it
was trained on (seen in transformers 5.24 / peft 0.21: the loss of the colour task barely falls).
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="qwen2_5_vl", description="Qwen2.5-VL and its medical fine-tunes: native-resolution ViT, patch merger as projector",
    model_types=("qwen2_5_vl",), model_class="Qwen2_5_VLForConditionalGeneration",
    processor_class="Qwen2_5_VLProcessor",
    vision_tower="model.visual", projector="model.visual.merger", language_model="model.language_model",
    video_free_processor=True,
    unsupported_methods={"prompt": "peft's prompt tuning passes no input ids, so the image patches lose their "
                                   "3D M-RoPE positions"},
    checkpoints=("Qwen/Qwen2.5-VL-7B-Instruct", "lingshu-medical-mllm/Lingshu-7B",
                 "FreedomIntelligence/HuatuoGPT-Vision-7B-Qwen2.5VL")))
