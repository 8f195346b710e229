"""InternVL3 and InternVL3.5 in their transformers-native "-hf" form: InternViT, a pixel-shuffle MLP projector
(`model.multi_modal_projector`), Qwen2 (InternVL3) or Qwen3 (InternVL3.5) language model. The GotOcr2 image
processor cuts an image into tiles chosen by its aspect ratio, plus a thumbnail, so the number of image tokens
follows the image's shape; images go to it as they are.

The processor class also wants a torchvision video processor; SURE-VQA builds it without one (images only).
The original (trust_remote_code) InternVL checkpoints are not this family: their config is `internvl_chat`.
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="internvl", description="InternVL3/3.5 (-hf): InternViT, pixel-shuffle MLP projector, tiles and a thumbnail",
    model_types=("internvl",), model_class="InternVLForConditionalGeneration",
    processor_class="InternVLProcessor",
    vision_tower="model.vision_tower", projector="model.multi_modal_projector", language_model="model.language_model",
    video_free_processor=True,
    checkpoints=("OpenGVLab/InternVL3-1B-hf", "OpenGVLab/InternVL3-8B-hf", "OpenGVLab/InternVL3_5-8B-HF")))
