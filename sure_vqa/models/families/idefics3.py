"""Idefics3 and SmolVLM (v1 checkpoints use the Idefics3 classes): SigLIP tower, pixel-shuffle connector, Llama-family
language model. The processor splits an image into tiles plus a global view, so the number of image tokens
follows the image's size; images go to it as they are.
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="idefics3", description="Idefics3 and SmolVLM: SigLIP tower, pixel-shuffle connector, tiled images",
    model_types=("idefics3",), model_class="Idefics3ForConditionalGeneration",
    processor_class="Idefics3Processor",
    vision_tower="model.vision_model", projector="model.connector", language_model="model.text_model",
    checkpoints=("HuggingFaceTB/SmolVLM-Instruct", "HuggingFaceM4/Idefics3-8B-Llama3")))
