"""LLaVA-1.5 and LLaVA-Med v1.5 (converted): CLIP tower, two-layer MLP projector, Llama/Mistral/Vicuna language model.

Images are padded to a square with the image processor's mean colour before the processor, as LLaVA-1.5 and
LLaVA-Med were trained (docs/method.md#prompting).
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="llava", description="LLaVA-1.5 and LLaVA-Med v1.5: CLIP tower, MLP projector, images padded to a square",
    model_types=("llava",), model_class="LlavaForConditionalGeneration",
    processor_class="LlavaProcessor",
    vision_tower="model.vision_tower", projector="model.multi_modal_projector", language_model="model.language_model",
    pad_to_square=True,
    checkpoints=("microsoft/llava-med-v1.5-mistral-7b", "llava-hf/llava-1.5-7b-hf")))
