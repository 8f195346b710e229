"""Gemma 4 (E2B-it, E4B-it, 26B-A4B-it, 31B-it): a vision tower with its own 2D positions and pooling, a one-layer
embedder as the projector (`model.embed_vision`), the Gemma 4 language model (per-layer input embeddings in the E
models, a mixture of experts in 26B-A4B, global-attention layers whose keys serve as values in 31B, so those have
no `v_proj`: adapters go on the linear layers that exist; 26B-A4B's experts hold their weights as tensors, not
linear layers, so LoRA and IA3 adapt its attention and dense layers only; the tiny model has no experts, so
that checkpoint's path is untested). The image processor resizes an image to a budget of
soft tokens (280 in the published processors) keeping its aspect ratio, so the number of image tokens follows the
image's shape; images go to it as they are, one list per prompt.

The E models also have an audio tower and embedder: SURE-VQA shows no sound, so the audio config is dropped before
loading and transformers never builds them (docs/models.md says what they would cost). The processor still
wants its audio feature extractor (numpy only); the torchvision video processor is left out.

Thinking is off (the chat template's default; SURE-VQA also renders it with `enable_thinking=False`), and then the
generation prompt ends with an empty thought channel that a past answer's turn lacks: training finds the answer
in the template's answer turn and puts it after the very prompt inference sends (sure_vqa.train.data).

Prompt tuning is refused: peft 0.21's prompt learning passes embeddings without input ids, and Gemma 4 (the E
models' per-layer inputs) then reverses the embeddings to find the ids, which transformers 5.24 refuses when
virtual tokens are in front ("It seems like you tried to call `forward` from `inputs_embeds` without providing
`input_ids`").
"""

from sure_vqa.models.families import ModelFamily, register

register(ModelFamily(
    name="gemma4", description="Gemma 4: vision tower with pooling, one-layer embedder, images to a token budget",
    model_types=("gemma4",), model_class="Gemma4ForConditionalGeneration",
    processor_class="Gemma4Processor",
    vision_tower="model.vision_tower", projector="model.embed_vision", language_model="model.language_model",
    images_per_prompt_lists=True, video_free_processor=True,
    unused_config_parts={"audio_config": r"model\.(audio_tower|embed_audio)\."},
    unsupported_methods={"prompt": "peft's prompt tuning passes embeddings without input ids, and Gemma 4 reverses "
                                   "the embeddings to find its per-layer inputs, which fails with virtual tokens "
                                   "in front"},
    checkpoints=("google/gemma-4-E2B-it", "google/gemma-4-E4B-it", "google/gemma-4-26B-A4B-it",
                 "google/gemma-4-31B-it")))
