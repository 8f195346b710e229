"""The converter and loaders on folders shaped exactly as the published downloads (tests/helpers/skeletons.py): the real
Mistral v1 SentencePiece tokenizer, LLaVA-Med's config keys, sharded weights with the carried vision tower."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece
import torch
from PIL import Image
from safetensors.torch import load_file

from sure_vqa.config import DataError
from sure_vqa.models.convert_llava_med import convert
from sure_vqa.models.loading import load_for_inference
from sure_vqa.models.prompting import prompt_text
from tests.conftest import PROJECT_ROOT
from tests.helpers import skeletons

QUESTION = "What colour is the lesion in this CT image?"
PUBLISHED_LLAVA_MED_FILES = {
    "README.md", "config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.model",
    "tokenizer_config.json", "model.safetensors.index.json",
    *(f"model-0000{i}-of-00004.safetensors" for i in range(1, 5)),
}


def test_the_skeleton_is_laid_out_as_published(published_folders) -> None:
    src = published_folders["llava_med"]
    assert {p.name for p in src.iterdir()} == PUBLISHED_LLAVA_MED_FILES  # no tokenizer.json
    processor = sentencepiece.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    assert processor.get_piece_size() == 32000 and processor.id_to_piece(1) == "<s>"
    index = json.loads((src / "model.safetensors.index.json").read_text())
    assert any(k.startswith("model.vision_tower.vision_tower.vision_model.") for k in index["weight_map"])
    assert {p.name for p in published_folders["clip"].iterdir()} == {"config.json", "preprocessor_config.json",
                                                                     "pytorch_model.bin"}


def test_prompt_ids_follow_llavas_rule_with_the_real_tokenizer(published_folders) -> None:
    """LLaVA's tokenizer_image_token: the prompt split at <image>, each chunk tokenised on its own by the
    SentencePiece model, one BOS first, the image in between (expanded here to one id per patch)."""
    model, processor = load_for_inference(published_folders["converted"])
    prompt = prompt_text(processor, QUESTION, "OPEN", None, with_image=True)
    ids = processor(text=prompt, images=Image.new("RGB", (400, 300)), return_tensors="pt",
                    add_special_tokens=False)["input_ids"][0].tolist()

    sp = sentencepiece.SentencePieceProcessor(model_file=str(published_folders["llava_med"] / "tokenizer.model"))
    before, after = f"[INST] <image>\n{QUESTION} [/INST]".split("<image>")
    image = model.config.image_token_id
    patches = (336 // 14) ** 2
    expected = [sp.bos_id(), *sp.encode(before), *[image] * patches, *sp.encode(after)]
    assert ids == expected
    assert sp.id_to_piece(sp.encode(before)[-1]) == "▁" and sp.id_to_piece(sp.encode(after)[0]) == "▁"


def test_converted_weights_are_the_checkpoints(published_folders) -> None:
    from transformers import CLIPVisionModel

    model, _ = load_for_inference(published_folders["converted"])
    source = {}
    for shard in sorted(published_folders["llava_med"].glob("model-*.safetensors")):
        source.update(load_file(shard))
    state = model.state_dict()
    torch.testing.assert_close(state["model.multi_modal_projector.linear_1.weight"],
                               source["model.mm_projector.0.weight"].float(), rtol=0, atol=0)
    torch.testing.assert_close(state["model.language_model.layers.1.mlp.down_proj.weight"],
                               source["model.layers.1.mlp.down_proj.weight"].float(), rtol=0, atol=0)
    torch.testing.assert_close(state["lm_head.weight"][:32000], source["lm_head.weight"].float(), rtol=0, atol=0)
    clip = CLIPVisionModel.from_pretrained(published_folders["clip"]).state_dict()
    for key, tensor in clip.items():
        torch.testing.assert_close(state[f"model.vision_tower.{key}"], tensor, rtol=0, atol=0)
    assert model.config.image_seq_length == 576 and model.config.vision_feature_layer == -2


def _convert_command(src: Path, dst: Path, clip: Path, umask: str = "022") -> subprocess.CompletedProcess:
    script = f"umask {umask}; exec {sys.executable} -m sure_vqa.cli convert-llava-med \"src=$0\" \"dst=$1\" " \
             f"\"vision_tower=$2\" dtype=float32"
    return subprocess.run(["bash", "-c", script, str(src), str(dst), str(clip)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_converted_folder_follows_the_umask(published_folders, tmp_path: Path) -> None:
    dst = tmp_path / "shared" / "llava-med-hf"
    done = _convert_command(published_folders["llava_med"], dst, published_folders["clip"], umask="027")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"converted: {dst}" in done.stdout
    assert stat.S_IMODE(dst.stat().st_mode) == 0o750
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in dst.iterdir())
    assert not [p for p in dst.parent.iterdir() if p.name != dst.name]  # no staging folder left


def _copy_without(src: Path, target: Path, name: str) -> Path:
    shutil.copytree(src, target, ignore=lambda _folder, names: [n for n in names if n == name])
    return target


@pytest.mark.parametrize(
    ("removed", "message"),
    [
        ("model-00003-of-00004.safetensors", "model-00003-of-00004.safetensors is missing from"),
        ("tokenizer.model", "has no tokenizer (tokenizer.model or tokenizer.json)"),
    ],
)
def test_a_missing_file_is_named_and_nothing_is_written(published_folders, tmp_path: Path, removed, message):
    src = _copy_without(published_folders["llava_med"], tmp_path / "incomplete", removed)
    dst = tmp_path / "out"
    with pytest.raises(DataError, match=re.escape(message)):
        convert(src, dst, published_folders["clip"])
    done = _convert_command(src, dst, published_folders["clip"])
    assert done.returncode == 2 and done.stderr.startswith("error: ") and message in done.stderr
    assert not dst.exists() and [p.name for p in tmp_path.iterdir()] == ["incomplete"]


@pytest.mark.parametrize(("removed", "message"), [
    ("preprocessor_config.json", "has no preprocessor_config.json"),
    ("pytorch_model.bin", "holds no weights"),
])
def test_an_incomplete_clip_folder_is_named(published_folders, tmp_path: Path, removed, message) -> None:
    clip = _copy_without(published_folders["clip"], tmp_path / "clip", removed)
    done = _convert_command(published_folders["llava_med"], tmp_path / "out", clip)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and message in done.stderr
    assert str(clip) in done.stderr and not (tmp_path / "out").exists()


def test_a_carried_vision_tower_that_differs_is_reported(published_folders, tmp_path: Path) -> None:
    """LLaVA's loader takes the tower from the CLIP folder, not the checkpoint's copy; so does the converter."""
    src = skeletons.write_llava_med_skeleton(tmp_path / "other-tower", clip_seed=1)
    dst = tmp_path / "out"
    done = _convert_command(src, dst, published_folders["clip"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tensors of the vision tower that SRC carries differ from vision_tower=" in done.stderr
    converted = load_file(dst / "model.safetensors")
    reference = load_file(published_folders["converted"] / "model.safetensors")
    tower = [k for k in reference if "vision_tower" in k]
    assert len(tower) > 10
    for key in tower:
        torch.testing.assert_close(converted[key], reference[key], rtol=0, atol=0)
