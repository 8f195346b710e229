"""Skeletons of the folders users download, for tests: the published file set, file names and config keys, with
tiny seeded random weights.

- `llava-med-v1.5-mistral-7b` (LLaVA's original layout): `config.json` with the published keys, the generation
  config, the published tokenizer files around the real Mistral v1 SentencePiece model (the `tokenizer.model.v1`
  that `mistral-common` ships: the same 32,000 pieces as LLaVA-Med v1.5's `tokenizer.model`), no
  `tokenizer.json`, and the weights in four safetensors shards with an index, under the published key names,
  including the copy of the CLIP vision tower the checkpoint carries (`model.vision_tower.vision_tower.*`).
- `clip-vit-large-patch14-336`: a CLIPModel folder with the published `preprocessor_config.json` (integer
  `size`/`crop_size`, `CLIPFeatureExtractor`) and config keys (`text_config_dict`/`vision_config_dict` beside
  the configs), image 336 and patch 14, tiny widths.
- `gemma-2-9b-it` (the judge): a tiny random `Gemma2ForCausalLM`, a tokenizer with Gemma's special tokens and
  Gemma's published chat template (which rejects a system role), `generation_config.json` stopping at
  `<end_of_turn>` as the published one does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

# The real tokenizer file comes from the mistral-common wheel, which `make setup-test` downloads (not installs:
# installed without its dependencies, transformers would find it and fail to import its Mistral backend) into
# <venv>/test-data (requirements-test-data.txt).
TOKENIZER_WHEEL_GLOB = "mistral_common-*.whl"
MISTRAL_V1_TOKENIZER = "mistral_common/data/tokenizer.model.v1"
NUM_SHARDS = 4  # as published: model-0000{1..4}-of-00004.safetensors

# Tiny widths (the file layout and every key are the published ones).
TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
          "image_size": 336, "patch_size": 14, "projection_dim": 16}
CLIP_TEXT = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "projection_dim": 16}

_SPECIAL = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def mistral_tokenizer_model() -> Path:
    """The Mistral v1 SentencePiece model, extracted once from the downloaded mistral-common wheel."""
    folder = Path(sys.prefix) / "test-data"
    target = folder / "tokenizer.model.v1"
    if target.is_file():
        return target
    wheels = sorted(folder.glob(TOKENIZER_WHEEL_GLOB))
    if not wheels:
        raise RuntimeError(f"no {TOKENIZER_WHEEL_GLOB} in {folder}; `make setup-test` downloads it "
                           "(requirements-test-data.txt)")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        data = wheel.read(MISTRAL_V1_TOKENIZER)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, target)  # atomic: parallel test processes may extract it at once
    return target


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def llava_med_config() -> dict:
    """config.json of llava-med-v1.5-mistral-7b: every published key, tiny widths."""
    return {
        "_name_or_path": "mistralai/Mistral-7B-Instruct-v0.2",
        "architectures": ["LlavaMistralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "feature_outs": "encoder+decoder",
        "freeze_mm_mlp_adapter": False,
        "hidden_act": "silu",
        "hidden_size": TEXT["hidden_size"],
        "image_aspect_ratio": "pad",
        "img_size": 640,
        "initializer_range": 0.02,
        "intermediate_size": TEXT["intermediate_size"],
        "max_position_embeddings": 32768,
        "mm_hidden_size": VISION["hidden_size"],
        "mm_patch_merge_type": "flat",
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_resampler_type": None,
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "model_type": "llava_mistral",
        "num_attention_heads": TEXT["num_attention_heads"],
        "num_hidden_layers": TEXT["num_hidden_layers"],
        "num_key_value_heads": TEXT["num_key_value_heads"],
        "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "tokenizer_model_max_length": 2048,
        "tokenizer_padding_side": "right",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.36.2",
        "tune_mm_mlp_adapter": False,
        "tune_mm_vision_resampler": False,
        "unfreeze_mm_vision_tower": False,
        "use_cache": True,
        "use_mm_proj": True,
        "vocab_size": 32000,
    }


def _llava_tokenizer_files(folder: Path) -> None:
    shutil.copyfile(mistral_tokenizer_model(), folder / "tokenizer.model")
    names = ("<unk>", "<s>", "</s>")
    _write_json(folder / "tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(i): {"content": name, **_SPECIAL, "special": True} for i, name in enumerate(names)},
        "additional_special_tokens": [],
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": True,
        "model_max_length": 2048,
        "pad_token": "<unk>",
        "padding_side": "right",
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    })
    _write_json(folder / "special_tokens_map.json", {
        "bos_token": {"content": "<s>", **_SPECIAL},
        "eos_token": {"content": "</s>", **_SPECIAL},
        "pad_token": "<unk>",
        "unk_token": {"content": "<unk>", **_SPECIAL},
    })


def _clip_model(seed: int):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(text_config={k: v for k, v in CLIP_TEXT.items() if k != "projection_dim"},
                        vision_config={k: v for k, v in VISION.items() if k != "projection_dim"},
                        projection_dim=VISION["projection_dim"])
    return CLIPModel(config).eval()


def write_clip_skeleton(folder: Path, seed: int = 0) -> Path:
    """openai/clip-vit-large-patch14-336 as published (config keys, preprocessor config, pytorch_model.bin)."""
    folder.mkdir(parents=True)
    model = _clip_model(seed)
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "pytorch_model.bin")
    text = {**model.config.text_config.to_dict(), **{k: v for k, v in CLIP_TEXT.items()}}
    vision = {**model.config.vision_config.to_dict(), **VISION}
    _write_json(folder / "config.json", {
        "_name_or_path": "openai/clip-vit-large-patch14-336",
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": VISION["projection_dim"],
        "text_config": text,
        "text_config_dict": dict(CLIP_TEXT),
        "torch_dtype": "float32",
        "transformers_version": None,
        "vision_config": vision,
        "vision_config_dict": dict(VISION),
    })
    _write_json(folder / "preprocessor_config.json", {
        "crop_size": 336,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
        "size": 336,
    })
    return folder


def llava_med_weights(seed: int = 0, clip_seed: int = 0) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under LLaVA's names: the Mistral language model (`model.*`, `lm_head.*`), the
    projector (`model.mm_projector.{0,2}.*`) and the vision tower's copy (`model.vision_tower.vision_tower.*`),
    in bfloat16 as published."""
    from transformers import MistralConfig, MistralForCausalLM

    config = llava_med_config()
    torch.manual_seed(seed)
    text = MistralConfig(**{k: config[k] for k in ("vocab_size", "max_position_embeddings", "rms_norm_eps",
                                                   "rope_theta", "bos_token_id", "eos_token_id")}, **TEXT)
    weights = {k: v.clone() for k, v in MistralForCausalLM(text).state_dict().items()}
    hidden, vision_hidden = TEXT["hidden_size"], VISION["hidden_size"]
    weights["model.mm_projector.0.weight"] = torch.randn(hidden, vision_hidden) * 0.2
    weights["model.mm_projector.0.bias"] = torch.randn(hidden) * 0.1
    weights["model.mm_projector.2.weight"] = torch.randn(hidden, hidden) * 0.2
    weights["model.mm_projector.2.bias"] = torch.randn(hidden) * 0.1
    for key, tensor in _clip_model(clip_seed).vision_model.state_dict().items():
        if not key.endswith("position_ids"):
            weights[f"model.vision_tower.vision_tower.vision_model.{key}"] = tensor.clone()
    return {k: v.to(torch.bfloat16).contiguous() for k, v in weights.items()}


def write_llava_med_skeleton(folder: Path, seed: int = 0, clip_seed: int = 0,
                             weights: dict[str, torch.Tensor] | None = None) -> Path:
    """llava-med-v1.5-mistral-7b as published, tiny: config, generation config, tokenizer files, 4 shards + index."""
    folder.mkdir(parents=True)
    _write_json(folder / "config.json", llava_med_config())
    _write_json(folder / "generation_config.json", {"_from_model_config": True, "bos_token_id": 1,
                                                     "eos_token_id": 2, "transformers_version": "4.36.2"})
    _llava_tokenizer_files(folder)
    (folder / "README.md").write_text("# LLaVA-Med v1.5 (test skeleton: tiny random weights)\n", encoding="utf-8")
    weights = llava_med_weights(seed, clip_seed) if weights is None else weights
    keys = sorted(weights)
    weight_map: dict[str, str] = {}
    for shard in range(NUM_SHARDS):
        name = f"model-{shard + 1:05d}-of-{NUM_SHARDS:05d}.safetensors"
        part = keys[shard::NUM_SHARDS]
        save_file({k: weights[k] for k in part}, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    total = sum(t.numel() * t.element_size() for t in weights.values())
    _write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total},
                                                          "weight_map": dict(sorted(weight_map.items()))})
    return folder


# gemma-2-9b-it's chat template as published in its tokenizer_config.json.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
GEMMA_SPECIAL = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>")


def _gemma_tokenizer():
    """A small BPE with Gemma's special tokens at Gemma's ids for the first four (<pad> 0, <eos> 1, <bos> 2,
    <unk> 3); trained on rubric-like text so that prompts tokenise into few pieces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=list(GEMMA_SPECIAL), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = ('You are a strict grader. Score the prediction against the ground truth. {"score": 1} {"score": 5} '
            'question answer prediction ground truth correct incorrect yes no both none 0 0.5 1 2 3 4 5')
    tok.train_from_iterator([text] * 16, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>",
                                   additional_special_tokens=["<start_of_turn>", "<end_of_turn>"])


def write_gemma_judge_skeleton(folder: Path, seed: int = 0) -> Path:
    """gemma-2-9b-it as the judge folder looks: Gemma2ForCausalLM, tokenizer + chat template, generation config."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    tokenizer = _gemma_tokenizer()
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    torch.manual_seed(seed)
    config = Gemma2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=8192,
                          sliding_window=4096, query_pre_attn_scalar=16, pad_token_id=0, eos_token_id=1,
                          bos_token_id=2)
    model = Gemma2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = [1, end_of_turn]
    model.generation_config.pad_token_id = 0
    model.generation_config.bos_token_id = 2
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- the processor files of the other families' published checkpoints ----------------------------------------------

# processor_config.json as the published checkpoints have it (their own sizes replaced by the tiny model's);
# None: the checkpoint ships no processor_config.json (Qwen2.5-VL-7B-Instruct).
PUBLISHED_PROCESSOR_KEYS = {
    "gemma3": ("Gemma3Processor", ("image_seq_length",)),  # google/medgemma-4b-it
    "qwen2_5_vl": ("Qwen2_5_VLProcessor", None),  # Qwen/Qwen2.5-VL-7B-Instruct
    "idefics3": ("Idefics3Processor", ("image_seq_len",)),  # HuggingFaceTB/SmolVLM-Instruct
    "llava_onevision": ("LlavaOnevisionProcessor",  # llava-hf/llava-onevision-qwen2-0.5b-ov-hf
                        ("num_image_tokens", "vision_aspect_ratio", "vision_feature_select_strategy")),
    # Qwen/Qwen3-VL-8B-Instruct (transformers 4.57: `size` with shortest/longest edge, a video preprocessor file)
    "qwen3_vl": ("Qwen3VLProcessor", None),
    "internvl": ("InternVLProcessor", ("image_seq_length",)),  # OpenGVLab/InternVL3-1B-hf
}
# The published folders that also ship a video processor's settings, which SURE-VQA never reads.
_VIDEO_PREPROCESSOR = {"qwen3_vl": "Qwen3VLVideoProcessor", "internvl": "InternVLVideoProcessor"}


def published_processor_layout(tiny_folder: Path, out: Path, family: str) -> Path:
    """A copy of a family's tiny model with its processor files laid out as the published checkpoints ship them
    (written by transformers 4): `preprocessor_config.json` with the image processor's settings and
    `processor_class` (Qwen2.5-VL's with top-level `min_pixels`/`max_pixels` instead of `size`), the chat
    template in `chat_template.json`, and `processor_config.json` with only the processor's own keys, or none."""
    shutil.copytree(tiny_folder, out)
    saved = json.loads((out / "processor_config.json").read_text())
    processor_class, own_keys = PUBLISHED_PROCESSOR_KEYS[family]
    image = {**saved["image_processor"], "processor_class": processor_class}
    if family == "qwen2_5_vl":
        size = image.pop("size")
        image.update(min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    _write_json(out / "preprocessor_config.json", image)
    _write_json(out / "chat_template.json", {"chat_template": (out / "chat_template.jinja").read_text()})
    (out / "chat_template.jinja").unlink()
    (out / "processor_config.json").unlink()
    if family in _VIDEO_PREPROCESSOR:
        _write_json(out / "video_preprocessor_config.json",
                    {"video_processor_type": _VIDEO_PREPROCESSOR[family], "processor_class": processor_class})
    if own_keys is not None:
        _write_json(out / "processor_config.json",
                    {"processor_class": processor_class, **{key: saved[key] for key in own_keys}})
    return out


# --- this year's judges: Qwen3-8B and gemma-3-12b-it -----------------------------------------------------------------

# Qwen3's chat template (Qwen/Qwen3-8B tokenizer_config.json) as it renders the judge's turns: ChatML; an assistant
# turn after the last question writes its reasoning block (empty when there is none) before the reply; the
# generation prompt opens the reply and, with `enable_thinking` false, carries an empty reasoning block.
QWEN3_CHAT_TEMPLATE = (
    "{%- set ns = namespace(last_query=-1) -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'user' -%}{%- set ns.last_query = loop.index0 -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- set content = message['content'] -%}{%- set reasoning = '' -%}"
    "{%- if '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}{%- endif -%}"
    "{%- if loop.index0 > ns.last_query -%}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') -}}"
    "{%- else -%}{{- '<|im_start|>assistant\\n' + content -}}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
)
QWEN3_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

# Gemma 3's chat template (google/gemma-3-12b-it) as it renders the judge's one user turn: `<bos>`, a system turn
# folded into the first user turn, `<start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n`.
GEMMA3_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') -}}"
    "{{- message['content'] | trim -}}{{- '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)


def write_qwen3_judge_skeleton(folder: Path, seed: int = 0) -> Path:
    """Qwen3-8B as its folder looks: Qwen3ForCausalLM (config keys as published, tiny sizes), a tokenizer with
    Qwen's special tokens and Qwen3's chat template, generation stopping at <|im_end|> or <|endoftext|>."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from sure_vqa.models.tiny import family_tokenizer

    tokenizer = family_tokenizer(QWEN3_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>")
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
                         tie_word_embeddings=False, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                         pad_token_id=ids("<|endoftext|>"))
    model = Qwen3ForCausalLM(config).eval()
    model.generation_config.eos_token_id = [ids("<|im_end|>"), ids("<|endoftext|>")]
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_gemma3_judge_skeleton(folder: Path, seed: int = 0) -> Path:
    """gemma-3-12b-it as its folder looks: Gemma3ForConditionalGeneration (text and vision tower; the judge uses
    the text), Gemma's special tokens and Gemma 3's chat template, generation stopping at <eos> or <end_of_turn>."""
    from sure_vqa.models.tiny import build_tiny

    build_tiny("gemma3", folder, seed=seed)
    from transformers import AutoTokenizer

    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["sliding_window"] = 1024  # as published: the judge's prompts fit in one window
    _write_json(folder / "config.json", config)

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(GEMMA3_CHAT_TEMPLATE, encoding="utf-8")
    return folder
