"""Qwen3-VL (2B to 32B Instruct): a native-resolution ViT whose patch merger is the projector (`model.visual.merger`),
plus DeepStack mergers that carry features of the tower's middle layers into the first language-model layers;
they are projectors too and train with it, while the rest of the tower stays frozen. Qwen3 language model with
interleaved multimodal rotary positions. The number of image tokens follows the image's size; images go to the
processor as they are.

The processor class also wants a torchvision video processor; SURE-VQA builds it without one (images only).

Prompt tuning is refused for the reason Qwen2.5-VL refuses it: peft passes no input ids, and the 3D (M-RoPE)
positions of the image patches are computed from them.
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="qwen3_vl", description="Qwen3-VL: native-resolution ViT, patch merger and DeepStack mergers as projectors",
    model_types=("qwen3_vl",), model_class="Qwen3VLForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    vision_tower="model.visual", projector="model.visual.merger", language_model="model.language_model",
    side_projectors=("model.visual.deepstack_merger_list",),
    video_free_processor=True,
    unsupported_methods={"prompt": "peft's prompt tuning passes no input ids, so the image patches lose their "
                                   "3D M-RoPE positions"},
    checkpoints=("Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-32B-Instruct")))
