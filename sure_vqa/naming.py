"""Every folder and file name SURE-VQA reads or writes, computed in one place (docs/method.md#shifts-and-splits, #experiment-folders).

This module imports nothing from the package, so that any stage (and any external script) can compute
where another stage wrote its output without loading models or datasets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

MODS = ("train", "val", "test")
SPLITS = ("iid", "ood", "all", "sample")
STRENGTHS = ("low", "medium", "high")
IMAGE_CONTROLS = ("blank", "shuffled")

SPLIT_FILES_DIR = "split_files"
EVAL_DIR = "eval"
INIT_WEIGHT_DIR = "init_weight"
TEST_RESULTS_FILE = "test_results.json"
PREDICTION_LOG_FILE = "predictions.partial.jsonl"
PREDICTION_LOG_GLOB = "predictions.partial*.jsonl"  # the logs of every rank of one inference run
INFERENCE_INFO_FILE = "inference_info.json"  # settings and fingerprint of a finished inference run
MERGED_MODEL_DIR = "merged_for_vllm"  # an adapter merged into its base model, for the vLLM backend
OPEN_METRICS_FILE = "open_ended_metrics.json"
CLOSED_METRICS_FILE = "closed_ended_metrics.json"
RESOLVED_CONFIG_FILE = "resolved_config.yaml"
TRAINER_STATE_FILE = "trainer_state.json"
# Inside a fine-tuned model folder (docs/method.md#experiment-folders), besides the resolved config and trainer state:
ADAPTER_CONFIG_FILE = "adapter_config.json"  # peft's name; its presence marks an adapter folder
MODEL_CONFIG_FILE = "config.json"  # transformers' name
PROJECTOR_WEIGHTS_FILE = "mm_projector.safetensors"  # the trained projector alone (LLaVA's non-LoRA trainables)
MODEL_README_FILE = "README.md"
CHECKPOINT_PREFIX = "checkpoint-"
PRETRAINED_DIR = "pretrained"
# The base model name of LLaVA-Med v1.5, the default base model: the prefix of the original experiment folders.
DEFAULT_BASE_MODEL = "llava"
REPORT_DIR = "report"
JUDGE_CACHE_FILE = "judge_cache.sqlite"
# One question file per part, as SLAKE and OVQA are released and MIMIC-CXR-VQA is prepared (docs/method.md#datasets).
PART_FILES = {"train": "train.json", "val": "validate.json", "test": "test.json"}
# SLAKE's images folder as released, which the demo dataset copies.
SLAKE_IMAGE_DIR = "imgs"
DEMO_DATASET = "demo"  # the demo dataset's name, and its folder under DATASET_ROOT_DIR


def _compact(value: object) -> str:
    """Spaces removed, as in the original split names (`Organ System` -> `OrganSystem`)."""
    return str(value).replace(" ", "")


def ood_value_tag(ood_value: str | int | Sequence[str | int]) -> str:
    """One value as written; several values joined by `+` in the order given."""
    if isinstance(ood_value, str | int):
        return _compact(ood_value)
    return "+".join(_compact(v) for v in ood_value)


def split_name(
    dataset: str,
    mod: str,
    split: str,
    data_shift: str | None = None,
    ood_value: str | int | Sequence[str | int] | None = None,
    no_image: bool = False,
) -> str:
    """`{dataset}_{mod}_{split}_{data_shift}_{ood_value}`; `{dataset}_{mod}_{split}` for all/sample.

    >>> split_name("SLAKE", "train", "iid", "content_type", "Size")
    'SLAKE_train_iid_content_type_Size'
    """
    if mod not in MODS:
        raise ValueError(f"mod must be one of {MODS}, got {mod!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    parts = [dataset, mod, split]
    if split in ("iid", "ood"):
        if data_shift is None or ood_value is None:
            raise ValueError(f"split={split} needs data_shift and ood_value")
        parts += [_compact(data_shift), ood_value_tag(ood_value)]
    name = "_".join(parts)
    return name + "_no_image" if no_image else name


def format_lr(lr: float) -> str:
    """Learning rates as the original folder names write them: 3e-05 -> `3e-5`, 0.03 -> `3e-2`, 1.5e-4 ->
    `1.5e-4`: the shortest digits that read back as the same float (so a name parses back to its rate)."""
    sign, digits, exponent = Decimal(repr(float(lr))).normalize().as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{int(exponent) + len(digits) - 1}"


def format_probability(p: float) -> str:
    """A corruption probability in folder names: `0.5`, `1` (the `g` format, as names always wrote it), or the
    shortest exact digits where `g` would round (so that a name parses back to its probability)."""
    short = f"{float(p):g}"
    return short if float(short) == float(p) else repr(float(p))


def finetune_tag(model_type: str, lr: float, seed: int, hyperparameter_tags: Sequence[str] = ()) -> str:
    """`finetune_{model_type}_{hyperparameters}_lr{lr}_seed{seed}`: the hyperparameters are the method's own
    folder tags (its registry entry in sure_vqa.models.methods says which: LoRA `rank16`, prompt tuning `ntok80`).

    >>> finetune_tag("lora", 3e-5, 123, ["rank128"])
    'finetune_lora_rank128_lr3e-5_seed123'
    """
    for tag in hyperparameter_tags:
        if _HYPERPARAMETER_TAG.fullmatch(tag) is None:
            raise ValueError(f"hyperparameter tag {tag!r} is not lower-case letters then digits (e.g. rank16)")
    return "_".join(["finetune", model_type, *hyperparameter_tags, f"lr{format_lr(lr)}", f"seed{seed}"])


def base_model_name(base_model_path: str | Path | None) -> str:
    """The base model's short name in folder names: `llava` for LLaVA-Med v1.5 (the default base model, the
    original folders' prefix), otherwise the base model folder's own name, lower-case, with characters other
    than letters, digits, `.` and `+` turned into `-` (so it holds no `_`, and the names parse back).

    >>> base_model_name("/models/medgemma-4b-it"), base_model_name(None)
    ('medgemma-4b-it', 'llava')
    """
    if base_model_path is None:
        return DEFAULT_BASE_MODEL
    name = re.sub(r"[^a-z0-9.+]+", "-", Path(str(base_model_path)).expanduser().name.lower()).strip("-.")
    if not name:
        raise ValueError(f"the base model folder {base_model_path} has no name to write into folder names")
    return name


def experiment_name(train_split_name: str, finetune: str, base_model: str = "llava") -> str:
    """`{base model}-{train split name}-{finetune tag}`: `llava-...` for LLaVA-Med (docs/method.md#experiment-folders)."""
    return f"{base_model}-{train_split_name}-{finetune}"


def corruption_tag(probabilities: Mapping[str, float], strengths: Mapping[str, str]) -> str:
    """Encodes every corruption's strength and probability, in the order given (the corruption registry's
    application order, sure_vqa.images.corruptions): `corruption_blur-low-p0.5_brightness-...`."""
    parts = ["corruption"]
    for name in probabilities:
        p = float(probabilities[name])
        parts.append(f"{name}-{strengths[name]}-p{format_probability(p)}")
    return "_".join(parts)


def eval_run_name(
    test_split_name: str,
    no_image: bool = False,
    corruption: tuple[Mapping[str, float], Mapping[str, str]] | None = None,
    image_control: str | None = None,
) -> str:
    """`{test split name}[_no_image][_corruption_...][_blank_image|_shuffled_image]`."""
    name = test_split_name
    if no_image:
        name += "_no_image"
    if corruption is not None:
        name += "_" + corruption_tag(*corruption)
    if image_control is not None:
        if image_control not in IMAGE_CONTROLS:
            raise ValueError(f"image_control must be one of {IMAGE_CONTROLS}, got {image_control!r}")
        name += f"_{image_control}_image"
    return name


def prediction_log_name(rank: int = 0) -> str:
    """Rank 0 (and a single process) logs to `predictions.partial.jsonl`, rank r to `predictions.partial.rank{r}.jsonl`."""
    return PREDICTION_LOG_FILE if rank == 0 else f"predictions.partial.rank{rank}.jsonl"


def backup_file(path: str | Path, stamp: str) -> Path:
    """Where a file replaced on request is kept: `<name>.<stamp>.bak` beside it."""
    path = Path(path)
    return path.with_name(f"{path.name}.{stamp}.bak")


def run_lock_name(stage: str, rank: int = 0) -> str:
    """The lock one stage (train, inference, evaluation) holds in its folder while it runs (sure_vqa.run_lock)."""
    return f".{stage}.rank{rank}.lock"


def run_lock_holder_name(stage: str, rank: int = 0) -> str:
    """Who holds that lock (pid, host, command), for the message a second run gets."""
    return f"{run_lock_name(stage, rank)}.holder.json"


def stale_prediction_log_name(fingerprint: str, attempt: int = 0) -> str:
    """Where a log written with other settings is kept (not read, not deleted): `predictions.stale-{fp}[-n].jsonl`."""
    suffix = f"-{attempt}" if attempt else ""
    return f"predictions.stale-{fingerprint[:12]}{suffix}.jsonl"


def judge_metrics_files(judge_name: str) -> tuple[str, str]:
    """(open, closed) judge score files: `gemma_metrics.json`, `gemma_metrics_closed.json`."""
    return f"{judge_name}_metrics.json", f"{judge_name}_metrics_closed.json"


# --- reading names back (the report scans folders; these invert the builders above) -------------

# A split name does not mark where the shift field ends and the ood value begins (`location_Chest_heart`), so
# the parsers below take the known fields (each dataset's, sure_vqa.data.registry.known_shift_fields) first; any
# other field is taken to be the leading lower-case words (`some_field_Value`), leaving at least one word as value.
MOST_FREQUENT_PREFIX = "most_frequent-"

_SPLIT_NAME = re.compile(
    r"^(?P<dataset>.+?)_(?P<mod>train|val|test)_(?P<split>iid|ood|all|sample)(?:_(?P<shift>.+?))??(?P<no_image>_no_image)?$"
)
_HYPERPARAMETER_TAG = re.compile(r"[a-z]+\d+")
_FINETUNE_TAG = re.compile(
    r"^finetune_(?P<model_type>[A-Za-z0-9][A-Za-z0-9_]*?)(?P<tags>(?:_[a-z]+\d+)*)"
    r"_lr(?P<lr>[0-9.]+e-?\d+)_seed(?P<seed>-?\d+)$"
)
_STRENGTH = "|".join(STRENGTHS)
_CORRUPTION_SUFFIX = re.compile(rf"_corruption((?:_[a-z0-9]+-(?:{_STRENGTH})-p[^_]+)+)$")
_CORRUPTION_ENTRY = re.compile(rf"_(?P<name>[a-z0-9]+)-(?P<strength>{_STRENGTH})-p(?P<p>[^_]+)")
_IMAGE_CONTROL_SUFFIX = re.compile(r"_(?P<control>" + "|".join(IMAGE_CONTROLS) + r")_image$")


def _split_shift(shift: str, shift_fields: Sequence[str]) -> tuple[str, str]:
    for known in sorted(shift_fields, key=len, reverse=True):
        if shift.startswith(known + "_") and len(shift) > len(known) + 1:
            return known, shift[len(known) + 1 :]
    words = shift.split("_")
    if len(words) < 2:
        raise ValueError(f"{shift!r} is not `{{data_shift}}_{{ood_value}}`")
    n_field = 1
    while n_field < len(words) - 1 and words[n_field].islower():
        n_field += 1
    return "_".join(words[:n_field]), "_".join(words[n_field:])


def parse_split_name(name: str, shift_fields: Sequence[str] = ()) -> dict[str, Any]:
    """Inverse of `split_name`: dataset, mod, split, data_shift, ood_value (as written in names), no_image.

    >>> parse_split_name("OVQA_test_ood_image_organ_LEG+HAND")["ood_value"]
    'LEG+HAND'
    """
    match = _SPLIT_NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a split name `{{dataset}}_{{mod}}_{{split}}[_{{data_shift}}_{{ood_value}}]`")
    parts = match.groupdict()
    data_shift = ood_value = None
    if parts["split"] in ("iid", "ood"):
        if parts["shift"] is None:
            raise ValueError(f"{name!r}: split {parts['split']} needs `_{{data_shift}}_{{ood_value}}`")
        data_shift, ood_value = _split_shift(parts["shift"], shift_fields)
    elif parts["shift"] is not None:
        raise ValueError(f"{name!r}: split {parts['split']} takes no shift")
    return {
        "dataset": parts["dataset"],
        "mod": parts["mod"],
        "split": parts["split"],
        "data_shift": data_shift,
        "ood_value": ood_value,
        "no_image": parts["no_image"] is not None,
    }


def parse_experiment_name(name: str, shift_fields: Sequence[str] = (),
                          datasets: Sequence[str] = ()) -> dict[str, Any]:
    """Inverse of `experiment_name(split_name(...), finetune_tag(...))`.

    Returns base_model (`llava` for LLaVA-Med), train_split_name, finetune_tag, the parsed train split (dataset, mod, split, data_shift, ood_value,
    no_image: trained without images) and the hyperparameters (model_type, lr, seed, and hyperparameter_tags,
    the method's folder tags such as `("rank16",)`). Raises ValueError for any other name.

    The base model's name has no `_`; a dataset's name may have a `-` (VQA-RAD), so the known `datasets` are
    matched first; for another dataset, the last `-` before the first `_` ends the base model's name.
    """
    head, _, tag = name.rpartition("-finetune_")
    first_underscore = head.find("_")
    cut = head.rfind("-", 0, first_underscore) if first_underscore > 0 else -1
    for dataset in sorted(datasets, key=len, reverse=True):
        at = head.find(f"-{dataset}_train_")
        if 0 < at < first_underscore:
            cut = at
            break
    if not head or cut <= 0:
        raise ValueError(f"{name!r} is not an experiment name `{{base model}}-{{train split}}-finetune_...`")
    base_model, train_split = head[:cut], head[cut + 1 :]
    tag = "finetune_" + tag
    match = _FINETUNE_TAG.match(tag)
    if match is None:
        raise ValueError(f"{name!r}: {tag!r} is not `finetune_{{model_type}}[_{{tag}}{{value}}...]_lr.._seed..`")
    hp = match.groupdict()
    return {
        "base_model": base_model,
        "train_split_name": train_split,
        "finetune_tag": tag,
        **parse_split_name(train_split, shift_fields),
        "model_type": hp["model_type"],
        "lr": float(hp["lr"]),
        "seed": int(hp["seed"]),
        "hyperparameter_tags": tuple(hp["tags"].split("_")[1:]),
    }


def parse_eval_run_name(name: str, shift_fields: Sequence[str] = ()) -> dict[str, Any]:
    """Inverse of `eval_run_name`: test_split_name and its parts, no_image, corruption, image_control.

    `corruption` is None or {"probabilities": {blur: p, ...}, "strengths": {blur: "low", ...}}, so that
    `eval_run_name(test_split_name, no_image, (probabilities, strengths), image_control)` gives `name` back.
    """
    rest = name
    image_control = None
    control = _IMAGE_CONTROL_SUFFIX.search(rest)
    if control is not None:
        image_control = control.group("control")
        rest = rest[: control.start()]
    corruption = None
    corrupted = _CORRUPTION_SUFFIX.search(rest)
    if corrupted is not None:
        entries = list(_CORRUPTION_ENTRY.finditer(corrupted.group(1)))
        try:
            probabilities = {entry["name"]: float(entry["p"]) for entry in entries}
        except ValueError:
            raise ValueError(f"{name!r}: a corruption probability is not a number") from None
        corruption = {"probabilities": probabilities, "strengths": {entry["name"]: entry["strength"] for entry in entries}}
        rest = rest[: corrupted.start()]
    split = parse_split_name(rest, shift_fields)
    no_image = split.pop("no_image")
    test_split_name = rest[: -len("_no_image")] if no_image else rest
    return {"test_split_name": test_split_name, **split, "no_image": no_image, "corruption": corruption,
            "image_control": image_control}


def parse_most_frequent_name(name: str, shift_fields: Sequence[str] = ()) -> dict[str, Any]:
    """Inverse of `most_frequent_dir(...).name`: train_split_name and its parts."""
    if not name.startswith(MOST_FREQUENT_PREFIX):
        raise ValueError(f"{name!r} is not a most-frequent baseline folder `{MOST_FREQUENT_PREFIX}{{train split}}`")
    train_split = name[len(MOST_FREQUENT_PREFIX) :]
    return {"train_split_name": train_split, **parse_split_name(train_split, shift_fields)}


def parse_judge_metrics_file(filename: str) -> tuple[str, str] | None:
    """(judge name, "open" | "closed") for a judge score file (inverse of `judge_metrics_files`), else None."""
    if filename in (OPEN_METRICS_FILE, CLOSED_METRICS_FILE):
        return None
    for suffix, kind in (("_metrics_closed.json", "closed"), ("_metrics.json", "open")):
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)], kind
    return None


# --- paths ---------------------------------------------------------------------------------------


def dataset_dir(dataset_root: str | Path, dataset: str) -> Path:
    return Path(dataset_root) / dataset


def split_file(dataset_root: str | Path, dataset: str, name: str) -> Path:
    """`{DATASET_ROOT_DIR}/{dataset}/split_files/{split name}.json`."""
    return dataset_dir(dataset_root, dataset) / SPLIT_FILES_DIR / f"{name}.json"


# Bookkeeping of the split files, kept in hidden folders so that split_files/ holds only split files.
SPLIT_CACHE_DIR = ".cache"
SPLIT_BACKUP_DIR = ".backup"
SHIFT_FIELDS_FILE = "shift_fields.json"


def split_fingerprint_file(dataset_root: str | Path, dataset: str, name: str) -> Path:
    """What a split file was built from (raw files, rule version, arguments): decides when it is stale."""
    return dataset_dir(dataset_root, dataset) / SPLIT_FILES_DIR / SPLIT_CACHE_DIR / f"{name}.fingerprint.json"


def shift_fields_file(dataset_root: str | Path, dataset: str) -> Path:
    """The cached summary of a dataset's shift fields, values and counts (start-up validation, `list`)."""
    return dataset_dir(dataset_root, dataset) / SPLIT_FILES_DIR / SPLIT_CACHE_DIR / SHIFT_FIELDS_FILE


def split_backup_file(dataset_root: str | Path, dataset: str, name: str, tag: str) -> Path:
    """Where a split file that SURE-VQA did not write (or that was edited) is kept before it is rebuilt:
    `.backup/{name}.{tag}.json`, the tag naming its content so that a second backup never overwrites a first."""
    return dataset_dir(dataset_root, dataset) / SPLIT_FILES_DIR / SPLIT_BACKUP_DIR / f"{name}.{tag}.json"


def experiment_dir(experiment_root: str | Path, name: str) -> Path:
    return Path(experiment_root) / name


def pretrained_dir(experiment_root: str | Path, dataset: str, base_model: str = "llava") -> Path:
    """The zero-shot model's stand-in for an experiment folder: `{root}/{dataset}/pretrained` for LLaVA-Med,
    `{root}/{dataset}/pretrained-{base model}` for another base model."""
    name = PRETRAINED_DIR if base_model == DEFAULT_BASE_MODEL else f"{PRETRAINED_DIR}-{base_model}"
    return Path(experiment_root) / dataset / name


def parse_pretrained_dir_name(name: str) -> str | None:
    """The base model of a zero-shot folder name (`pretrained` -> `llava`), None for another name."""
    if name == PRETRAINED_DIR:
        return DEFAULT_BASE_MODEL
    prefix = f"{PRETRAINED_DIR}-"
    return name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else None


def most_frequent_dir(experiment_root: str | Path, train_split_name: str) -> Path:
    """The most-frequent-answer baseline, learned on one train split, is laid out like a model folder."""
    return Path(experiment_root) / f"{MOST_FREQUENT_PREFIX}{train_split_name}"


def eval_dir(model_dir: str | Path, run_name: str) -> Path:
    return Path(model_dir) / EVAL_DIR / run_name


def merged_model_dir(model_dir: str | Path) -> Path:
    """An experiment folder's adapter merged into its base model (a plain transformers folder, for vLLM)."""
    return Path(model_dir) / MERGED_MODEL_DIR


def report_dir(experiment_root: str | Path) -> Path:
    return Path(experiment_root) / REPORT_DIR


def judge_cache_file(root: str | Path) -> Path:
    return Path(root) / JUDGE_CACHE_FILE


# --- human rater study (docs/method.md#human-rater-study) ------------------------------------------------------------

ANSWER_KINDS = ("open", "closed")
RATER_STUDY_FILE = "study.json"
RATER_IMAGES_DIR = "images"
RATER_DB_FILE = "ratings.sqlite"
RATER_ANALYSIS_DIR = "analysis"


def _check_answer_kind(answer_kind: str) -> str:
    if answer_kind not in ANSWER_KINDS:
        raise ValueError(f"answer_kind must be one of {ANSWER_KINDS}, got {answer_kind!r}")
    return answer_kind


def rater_study_dir(eval_dir_path: str | Path, answer_kind: str) -> Path:
    """A rater study's own folder (study file, copied images, ratings database): `{eval}/rater_study_open`."""
    return Path(eval_dir_path) / f"rater_study_{_check_answer_kind(answer_kind)}"


def human_metrics_file(answer_kind: str, rater: str) -> str:
    """One rater's exported scores, beside the eval folder's other metric files: `human_metrics_open_alice.json`."""
    return f"human_metrics_{_check_answer_kind(answer_kind)}_{rater}.json"


def rater_heatmap_file(statistic: str) -> str:
    """`kendall_heatmap.png` / `spearman_heatmap.png`."""
    return f"{statistic}_heatmap.png"


def rater_scatter_file(x_name: str, y_name: str) -> str:
    """`scatter_<x>_vs_<y>.png`, with the scorer names reduced to file-safe characters."""

    def safe(name: str) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.replace(" ", "_"))

    return f"scatter_{safe(x_name)}_vs_{safe(y_name)}.png"
