"""Gemma 3 and MedGemma (4B-it; MedGemma 1.5 4B-it keeps the Gemma 3 classes): SigLIP tower, a pooling projector to
a fixed number of soft tokens per image, Gemma 3 language model. Images are resized by the processor (no padding
to a square).

Gemma 3's processor takes the images of a batch as one list per prompt, and marks image tokens in
`token_type_ids` (their attention is bidirectional), which training pads like the input ids.

Prompt tuning is refused: peft 0.21's prompt learning drops `token_type_ids` ("Token type ids are not supported
for parameter efficient tuning"), so the image tokens would attend causally instead of bidirectionally, unlike
anything Gemma 3 was trained on.
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="gemma3", description="Gemma 3 and MedGemma: SigLIP tower, pooling projector, images resized by the processor",
    model_types=("gemma3",), model_class="Gemma3ForConditionalGeneration",
    processor_class="Gemma3Processor",
    vision_tower="model.vision_tower", projector="model.multi_modal_projector", language_model="model.language_model",
    images_per_prompt_lists=True,
    unsupported_methods={"prompt": "peft's prompt tuning drops token_type_ids, so the image tokens would lose "
                                   "their bidirectional attention"},
    checkpoints=("google/medgemma-4b-it", "google/medgemma-1.5-4b-it", "google/gemma-3-4b-it")))
