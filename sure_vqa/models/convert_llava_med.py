"""Converts LLaVA-Med v1.5 from the original LLaVA layout to a transformers LLaVA folder (run once).

    sure-vqa convert-llava-med src=SRC dst=DST vision_tower=CLIP_DIR [dtype=bfloat16]

SRC is the downloaded `llava-med-v1.5-mistral-7b` folder as published: `config.json` (`model_type=llava_mistral`),
a SentencePiece `tokenizer.model` with its `tokenizer_config.json` (no `tokenizer.json`), and the weights in
safetensors shards named by `model.safetensors.index.json`: a Mistral language model (`model.*`, `lm_head.*`),
LLaVA's projector (`model.mm_projector.0/2`, `mm_projector_type=mlp2x_gelu`) and a copy of the CLIP vision tower
(`model.vision_tower.vision_tower.*`); the config names that tower (`mm_vision_tower`, `mm_vision_select_layer=-2`,
`mm_vision_select_feature=patch`, `image_aspect_ratio=pad`). CLIP_DIR is a local copy of that vision tower
(openai/clip-vit-large-patch14-336, the CLIPModel or CLIPVisionModel folder). DST becomes an ordinary
`LlavaForConditionalGeneration` folder with its processor (CLIP image processor, tokenizer with an `<image>` token,
the LLaVA-Med chat template), so every stage loads it with transformers alone. LLaVA-v1.5 models on Llama
(`llava_llama`) convert the same way.

The weights are renamed, not changed: the vision features LLaVA takes (layer -2, patch tokens without CLS) are
transformers' `vision_feature_layer=-2`, `vision_feature_select_strategy="default"`; `mm_projector.0/2` are the
projector's `linear_1/linear_2` around the same exact GELU. The vision tower's weights are CLIP_DIR's, as in
LLaVA's own loader, which builds the tower from `mm_vision_tower` and ignores the checkpoint's copy (LLaVA-Med
froze it, so the two agree; the copy is checked against CLIP_DIR and a difference is reported). Tokens the
tokenizer lacks (`<image>`, a pad token) are appended; their new embedding rows are the mean of the existing ones
and the vocabulary is padded to a multiple of 64, as transformers' own LLaVA conversion does. DST is written under
a temporary name and renamed when complete (with the permissions the umask gives); an existing DST is never
overwritten.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from sure_vqa.atomic_io import move_folder_into_place, staged_folder
from sure_vqa.config import ConfigError, DataError, check_dtype

IMAGE_TOKEN = "<image>"
PAD_TOKEN = "<pad>"
VOCAB_MULTIPLE = 64
SUPPORTED_PROJECTOR = "mlp2x_gelu"
_TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")
CLIP_PREPROCESSOR_FILE = "preprocessor_config.json"
_TEXT_CONFIGS = {"llava_mistral": "MistralConfig", "llava_llama": "LlamaConfig", "llava": "LlamaConfig"}
# Keys of LLaVA's config that describe the multimodal wrapper, not the language model.
_LLAVA_KEYS = ("architectures", "model_type", "image_aspect_ratio", "tokenizer_model_max_length",
               "tokenizer_padding_side", "use_mm_proj", "unfreeze_mm_vision_tower", "freeze_mm_mlp_adapter",
               "tune_mm_mlp_adapter", "transformers_version", "_name_or_path", "mm_patch_merge_type")


def read_source_config(src: Path) -> dict[str, Any]:
    path = src / "config.json"
    if not path.is_file():
        raise ConfigError(f"src={src} has no config.json; give the downloaded llava-med-v1.5-mistral-7b folder")
    config = json.loads(path.read_text(encoding="utf-8"))
    model_type = config.get("model_type")
    if model_type not in _TEXT_CONFIGS:
        raise DataError(f"{path}: model_type={model_type!r} is not an original-layout LLaVA model; "
                        f"valid: {', '.join(_TEXT_CONFIGS)} (a transformers LLaVA folder needs no conversion)")
    projector = config.get("mm_projector_type", "linear")
    if projector != SUPPORTED_PROJECTOR:
        raise DataError(f"{path}: mm_projector_type={projector!r} is not supported; only {SUPPORTED_PROJECTOR} "
                        "(LLaVA-v1.5 and LLaVA-Med v1.5) maps onto transformers' LLaVA projector")
    feature = config.get("mm_vision_select_feature", "patch")
    if feature not in ("patch", "cls_patch"):
        raise DataError(f"{path}: mm_vision_select_feature={feature!r} is not valid; valid: patch, cls_patch")
    return config


def text_config(source_config: Mapping[str, Any]) -> Any:
    """The language model's config: LLaVA's config minus its multimodal keys."""
    import transformers

    config_class = getattr(transformers, _TEXT_CONFIGS[source_config["model_type"]])
    plain = {k: v for k, v in source_config.items() if k not in _LLAVA_KEYS and not k.startswith("mm_")}
    return config_class(**plain)


def _indexed_files(folder: Path, index_name: str) -> list[Path] | None:
    """The weight files a sharded checkpoint's index names (None without an index); each must be there."""
    index = folder / index_name
    if not index.is_file():
        return None
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataError(f"{index} is not a weight index (a JSON object with a weight_map of tensor -> file)") from None
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{index} names {len(names)} weight files, but {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} missing from {folder}; download the whole folder")
    return [folder / name for name in names]


def weight_files(folder: Path) -> list[Path]:
    """The files holding a folder's weights: the shards its index names (model.safetensors.index.json, as
    LLaVA-Med v1.5 is published), else every *.safetensors file, else PyTorch's .bin files. Checked before any
    heavy work, so a missing shard is named at once."""
    files = _indexed_files(folder, "model.safetensors.index.json") or sorted(folder.glob("*.safetensors"))
    if not files:
        files = _indexed_files(folder, "pytorch_model.bin.index.json") or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise DataError(f"{folder} holds no weights (*.safetensors or pytorch_model*.bin)")
    return files


def read_weights(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Every tensor of the given safetensors or PyTorch .bin files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            tensors.update(load_file(path) if path.suffix == ".safetensors"
                           else torch.load(path, map_location="cpu", weights_only=True))
        except (SafetensorError, OSError, RuntimeError) as err:
            raise DataError(f"{path} is not a readable weights file ({err}); download it again") from None
    return tensors


def map_language_and_projector(weights: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """(transformers LLaVA parameter names -> tensors, vision tower tensors found in the source).

    `model.mm_projector.{0,2}.*` -> `model.multi_modal_projector.linear_{1,2}.*`; `model.*` (the language model)
    -> `model.language_model.*`; `lm_head.*` stays; `model.vision_tower.vision_tower.*` (saved by some LLaVA
    checkpoints) is returned apart.
    """
    mapped: dict[str, torch.Tensor] = {}
    vision: dict[str, torch.Tensor] = {}
    projector_layers = {"0": "linear_1", "2": "linear_2"}
    for key, tensor in weights.items():
        if key.startswith("model.mm_projector."):
            index, rest = key[len("model.mm_projector."):].split(".", 1)
            if index not in projector_layers:
                raise DataError(f"unexpected projector weight {key}; {SUPPORTED_PROJECTOR} has layers 0 and 2")
            mapped[f"model.multi_modal_projector.{projector_layers[index]}.{rest}"] = tensor
        elif key.startswith("model.vision_tower.vision_tower."):
            vision[key[len("model.vision_tower.vision_tower."):]] = tensor
        elif key.startswith("model."):
            mapped[f"model.language_model.{key[len('model.'):]}"] = tensor
        elif key.startswith("lm_head."):
            mapped[key] = tensor
        else:
            raise DataError(f"unexpected weight {key} in the source model")
    if not any(k.startswith("model.multi_modal_projector.") for k in mapped):
        raise DataError("the source model has no model.mm_projector weights; is it a LLaVA checkpoint?")
    return mapped, vision


def vision_tower_weights(vision_model: torch.nn.Module, source_vision: Mapping[str, torch.Tensor],
                         tower_trained: bool) -> tuple[dict[str, torch.Tensor], int]:
    """(`model.vision_tower.*` tensors, how many tensors of the checkpoint's own copy differ from them).

    LLaVA's own loader builds the vision tower lazily from the CLIP folder (`mm_vision_tower`) and ignores the
    copy a checkpoint carries, unless the tower was trained (`unfreeze_mm_vision_tower`); the converter takes the
    same weights LLaVA-Med's own code would run. The copy must still fit the CLIP folder: a copy of another shape
    means the wrong CLIP model was given.
    """
    own = vision_model.state_dict()
    out = {f"model.vision_tower.{k}": v for k, v in own.items()}
    differing = 0
    for key, tensor in source_vision.items():
        match = next((c for c in (key, key.removeprefix("vision_model.")) if c in own), None)
        if match is None:
            continue  # a buffer such as position_ids
        if tuple(own[match].shape) != tuple(tensor.shape):
            raise DataError(f"the vision tower the checkpoint carries has {key} of shape {tuple(tensor.shape)}, "
                            f"but vision_tower gives {tuple(own[match].shape)}; give the CLIP model it was "
                            "trained with (openai/clip-vit-large-patch14-336 for LLaVA-Med v1.5)")
        if tower_trained:
            out[f"model.vision_tower.{match}"] = tensor
        elif not torch.equal(own[match].to(tensor.dtype), tensor):
            differing += 1
    return out, differing


def _check_tokenizer_files(src: Path) -> None:
    if not any((src / name).is_file() for name in _TOKENIZER_FILES):
        raise DataError(f"src={src} has no tokenizer ({' or '.join(_TOKENIZER_FILES)}); LLaVA-Med v1.5 ships "
                        "tokenizer.model and tokenizer_config.json: download the whole folder")


def load_source_tokenizer(src: Path) -> Any:
    """The checkpoint's tokenizer (its files checked by `_check_tokenizer_files`). LLaVA-Med v1.5 ships a SentencePiece tokenizer.model and no tokenizer.json;
    transformers converts it through protobuf (a requirement), and without protobuf fails with a misleading
    "tiktoken is required" error, so that case gets its own message."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(src)
    except (ValueError, OSError, ImportError) as err:
        hint = ""
        if importlib.util.find_spec("google.protobuf") is None:
            hint = "; reading a SentencePiece tokenizer.model needs protobuf: pip install -r requirements.txt"
        raise DataError(f"the tokenizer in src={src} could not be read ({str(err).splitlines()[0]}){hint}") from None


def add_tokens(tokenizer: Any) -> Any:
    """The `<image>` token (special, never split) and a pad token, if the tokenizer lacks them."""
    from tokenizers import AddedToken

    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    tokenizer.padding_side = "left"  # batched generation continues every prompt at its end
    return tokenizer


def resized_vocabulary(weights: dict[str, torch.Tensor], vocab_size: int) -> int:
    """Grows the embedding and output matrices to `vocab_size` rounded up to VOCAB_MULTIPLE, new rows = mean."""
    padded = -(-vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        if key not in weights:
            continue
        matrix = weights[key]
        if matrix.shape[0] >= padded:
            continue
        extra = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype).expand(padded - matrix.shape[0], -1)
        weights[key] = torch.cat([matrix, extra], dim=0)
    return max(padded, weights["model.language_model.embed_tokens.weight"].shape[0])


def _dtype(name: str | None, source_config: Mapping[str, Any]) -> torch.dtype:
    name = name or source_config.get("torch_dtype") or source_config.get("dtype") or "float32"
    return getattr(torch, check_dtype(name, "--dtype", allow_auto=False))


def convert(src: str | Path, dst: str | Path, vision_tower: str | Path, dtype: str | None = None) -> Path:
    """Writes the transformers LLaVA folder DST from the original-layout SRC and the CLIP folder; returns DST."""
    from accelerate import init_empty_weights
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.utils import logging as transformers_logging

    from sure_vqa.models.chat_templates import LLAVA_MED_CHAT_TEMPLATE

    src, dst, vision_tower = Path(src).expanduser(), Path(dst).expanduser(), Path(vision_tower).expanduser()
    if not src.is_dir():
        raise ConfigError(f"src={src} is not a folder")
    if not (vision_tower / "config.json").is_file():
        raise ConfigError(f"vision_tower={vision_tower} is not a CLIP model folder (no config.json); download "
                          "openai/clip-vit-large-patch14-336 and give its folder")
    if dst.exists() and any(dst.iterdir()):
        raise ConfigError(f"dst={dst} exists and is not empty; give a new folder (nothing is overwritten)")
    source_config = read_source_config(src)
    _check_tokenizer_files(src)
    files = weight_files(src)
    if not (vision_tower / CLIP_PREPROCESSOR_FILE).is_file():
        raise DataError(f"vision_tower={vision_tower} has no {CLIP_PREPROCESSOR_FILE} (the CLIP image processor's "
                        "settings); download the whole openai/clip-vit-large-patch14-336 folder")
    weight_files(vision_tower)  # the CLIP weights are there
    torch_dtype = _dtype(dtype, source_config)

    vision_config = CLIPVisionConfig.from_pretrained(vision_tower)
    if source_config.get("mm_hidden_size", vision_config.hidden_size) != vision_config.hidden_size:
        raise DataError(f"vision_tower={vision_tower} has hidden size {vision_config.hidden_size}, but SRC was "
                        f"trained with mm_hidden_size={source_config['mm_hidden_size']}; give the right CLIP model")
    # A CLIPModel folder's text tower is expected to go unused: keep transformers from listing it as unexpected.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        vision_model = CLIPVisionModel.from_pretrained(vision_tower, dtype=torch_dtype)
    finally:
        transformers_logging.set_verbosity(verbosity)

    tokenizer = add_tokens(load_source_tokenizer(src))
    weights, source_vision = map_language_and_projector(read_weights(files))
    tower, differing = vision_tower_weights(vision_model, source_vision,
                                            bool(source_config.get("unfreeze_mm_vision_tower", False)))
    if differing:
        print(f"note: {differing} tensors of the vision tower that SRC carries differ from vision_tower="
              f"{vision_tower}; the converted model uses vision_tower's, as LLaVA's own loader does",
              file=sys.stderr)
    weights.update(tower)
    vocab_size = resized_vocabulary(weights, len(tokenizer))

    text = text_config(source_config)
    text.vocab_size = vocab_size
    text.pad_token_id = tokenizer.pad_token_id
    select_feature = source_config.get("mm_vision_select_feature", "patch")
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        projector_hidden_act="gelu",
        vision_feature_layer=int(source_config.get("mm_vision_select_layer", -2)),
        vision_feature_select_strategy="default" if select_feature == "patch" else "full",
        image_seq_length=(vision_config.image_size // vision_config.patch_size) ** 2,
        tie_word_embeddings=bool(source_config.get("tie_word_embeddings", False)),
        pad_token_id=tokenizer.pad_token_id,
    )
    with init_empty_weights():  # parameters on the meta device: the real tensors are assigned below
        model = LlavaForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict({k: v.to(torch_dtype) for k, v in weights.items()},
                                                strict=False, assign=True)
    if config.tie_word_embeddings:
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise DataError(f"the converted weights do not fit LlavaForConditionalGeneration: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil.from_pretrained(vision_tower),
        tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1,  # CLIP's CLS token
        chat_template=LLAVA_MED_CHAT_TEMPLATE,
    )
    with staged_folder(dst) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        if dst.exists():
            dst.rmdir()  # empty, checked above
        move_folder_into_place(staging, dst)
    return dst


def convert_command(cfg: Any) -> None:
    """`sure-vqa convert-llava-med` (config/commands/convert_llava_med.yaml)."""
    out = convert(cfg.src, cfg.dst, cfg.vision_tower, cfg.dtype)
    print(f"converted: {out} (set LLAVA_MED_MODEL_PATH={out} in .env)")
