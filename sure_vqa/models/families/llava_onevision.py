"""LLaVA-OneVision: SigLIP tower, MLP projector, Qwen2 language model; AnyRes tiling, so an image gives a number of
tokens that depends on its size and aspect ratio. Images go to the processor as they are.

The processor class also wants a torchvision video processor; SURE-VQA builds it without one (images only).
The learned `image_newline` embedding stays as pretrained unless the whole model is fine-tuned.
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="llava_onevision", description="LLaVA-OneVision: SigLIP tower, MLP projector, AnyRes tiling",
    model_types=("llava_onevision",), model_class="LlavaOnevisionForConditionalGeneration",
    processor_class="LlavaOnevisionProcessor",
    vision_tower="model.vision_tower", projector="model.multi_modal_projector", language_model="model.language_model",
    video_free_processor=True,
    checkpoints=("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava-hf/llava-onevision-qwen2-7b-ov-hf")))
