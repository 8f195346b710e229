"""A setup check before a study: everything a study needs, checked without loading any weights.

    sure-vqa doctor [study overrides ...]            the study of config/study/study_defaults.yaml
    sure-vqa doctor demo=true [out=DIR] [...]        the demo's study in DIR (default ./demo_run)

It prints one table (check, ✓/✗, what was found, and for each ✗ the fix) and exits 0 only if every check passes
(1 otherwise; 2 for a setting that is not valid at all). Checked: the `.env` paths; each dataset folder's layout
and question counts; the split counts of every shift of the grid; that the base model is a transformers VLM with
a processor, tokenizer and chat template (or an original-layout LLaVA folder, which must be converted first);
the judge's tokenizer and chat template; the accelerator, bf16 and the memory the base model needs; the free disk
against the grid's estimated size; write permission on the experiment root. Models are built on PyTorch's meta
device only (no weights are read), to count what each fine-tuning method trains.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa import naming, runs
from sure_vqa.config import ConfigError, is_unset
from sure_vqa.models import folders

OK, FAIL = "✓", "✗"
# Bytes on disk per question of one inference run: test_results.json plus the metric and judge files beside it
# (measured on the demo: 1.5-2.5 KB per question over all five files).
EVAL_BYTES_PER_QUESTION = 3_000
# Bytes per trained parameter while training: the weights (fp32) and AdamW's two fp32 moments in a checkpoint.
CHECKPOINT_BYTES_PER_PARAM = 12
BYTES_PER_PARAM = {"float32": 4, "bfloat16": 2, "float16": 2}
ENV_OF_PATH = {"dataset_root": "DATASET_ROOT_DIR", "experiment_root": "EXPERIMENT_ROOT_DIR",
               **runs.BASE_MODEL_ENV, "judge_model_path": "JUDGE_MODEL_PATH"}


@dataclass(frozen=True)
class Check:
    """One row of the table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


class CheckFailed(Exception):
    """Raised inside a check: (what was found, how to fix it)."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _run(name: str, check: Callable[[], str]) -> Check:
    """A check's outcome: ✓ with its detail, or ✗ with what failed and the fix."""
    try:
        return Check(name, True, check())
    except CheckFailed as failed:
        return Check(name, False, failed.detail, failed.fix)
    except (ConfigError, OSError, ValueError) as err:
        return Check(name, False, str(err).splitlines()[0] if str(err) else type(err).__name__)


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e7 else f"{n_bytes / 1e6:.2f} MB"


def _path_setting(cfg: Mapping[str, Any], key: str) -> Path:
    value = (cfg.get("paths") or {}).get(key)
    if is_unset(value):
        raise CheckFailed(f"paths.{key} is not set",
                          f"set {ENV_OF_PATH[key]} in .env (cp example.env .env) or pass paths.{key}=PATH")
    return Path(str(value)).expanduser()


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- paths -----------------------------------------------------------------------------------------------


def check_folder_path(cfg: Mapping[str, Any], key: str) -> str:
    path = _path_setting(cfg, key)
    if not path.is_dir():
        raise CheckFailed(f"paths.{key} = {path} is not a folder",
                          f"point {ENV_OF_PATH[key]} (in .env) at the existing folder")
    return str(path)


def check_experiment_root(cfg: Mapping[str, Any]) -> str:
    """Writable: a file is created and removed there (or in the nearest folder above it, if it does not exist)."""
    root = _path_setting(cfg, "experiment_root")
    ancestor = _existing_ancestor(root)
    if not ancestor.is_dir():
        raise CheckFailed(f"paths.experiment_root = {root}: {ancestor} is a file, not a folder",
                          "set EXPERIMENT_ROOT_DIR (in .env) to a folder you can write")
    try:
        with tempfile.TemporaryFile(dir=ancestor, prefix=".sure_vqa_doctor."):
            pass
    except OSError as err:
        raise CheckFailed(f"paths.experiment_root = {root}: {ancestor} cannot be written ({err.strerror})",
                          "set EXPERIMENT_ROOT_DIR (in .env) to a folder you can write, or fix its permissions") \
            from None
    return f"{root} (writable{'' if ancestor == root else f'; created on first use under {ancestor}'})"


# --- models ----------------------------------------------------------------------------------------------


def _weights_bytes(folder: Path) -> int:
    from sure_vqa.models.convert_llava_med import weight_files

    return sum(path.stat().st_size for path in weight_files(folder))


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        return folders.read_config(folder)
    except ConfigError as err:
        raise CheckFailed(str(err), "download the whole model folder (config.json, weights, tokenizer and "
                                    "processor files)") from None


def check_base_model(cfg: Mapping[str, Any]) -> str:
    """A transformers image-text-to-text folder of a supported family (docs/models.md), with a processor, a
    tokenizer and a chat template: `paths.base_model` when set, else `paths.model_path` (LLaVA-Med)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    from sure_vqa.models import families
    from sure_vqa.models.loading import load_processor

    key = runs.base_model_key(cfg)
    path = _path_setting(cfg, key)
    if not path.is_dir():
        raise CheckFailed(f"paths.{key} = {path} is not a folder", f"set {ENV_OF_PATH[key]} in .env")
    config = _read_config(path)
    model_type = config.get("model_type")
    if folders.is_original_llava(config):
        raise CheckFailed(f"{path} is in the original LLaVA layout (model_type={model_type})",
                          f"{folders.CONVERT_COMMAND.format(src=path)}, then set LLAVA_MED_MODEL_PATH=DST")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise CheckFailed(f"{path}: model_type={model_type!r} is not an image-text-to-text model in transformers",
                          "give a VLM folder (e.g. LLaVA-Med v1.5 converted, medgemma-4b-it; docs/models.md)")
    try:
        family = families.for_model_type(str(model_type), str(path))
    except ConfigError as err:
        raise CheckFailed(str(err), f"use a model of a supported family: {', '.join(families.names())}") from None
    AutoConfig.from_pretrained(path)
    try:
        processor = load_processor(path)
    except (OSError, ValueError, TypeError, ConfigError) as err:
        raise CheckFailed(f"{path}: its processor does not load ({str(err).splitlines()[0]})",
                          "the folder needs processor_config.json/preprocessor_config.json, its tokenizer files "
                          "and its chat template") from None
    if getattr(processor, "tokenizer", None) is None or not hasattr(processor, "image_processor"):
        raise CheckFailed(f"{path}: {type(processor).__name__} is not a VLM processor (tokenizer + image processor)",
                          "give the model folder with its processor files")
    return (f"{path}: {model_type} (family {family.name}), {type(processor).__name__} with a chat template, "
            f"{_gb(_weights_bytes(path))} of weights")


def check_judge(cfg: Mapping[str, Any]) -> str:
    from sure_vqa.evaluate.judge.registry import check_judge_config

    settings = check_judge_config(cfg.get("judge") or {})
    if settings.backend == "openai":
        return f"{settings.name}: OpenAI-compatible server at {settings.options.base_url} (not contacted here)"
    if settings.options.model_provider is not None:
        return (f"{settings.name}: judge.model_provider={settings.options.model_provider} prepares its folder on "
                "first use")
    from transformers import AutoTokenizer

    path = Path(str(settings.options.model_path)).expanduser()
    _read_config(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise CheckFailed(f"{path}: the judge's tokenizer has no chat template",
                          "give an instruction-tuned judge (e.g. gemma-2-9b-it) with its tokenizer_config.json")
    try:  # the judge asks in one user turn (gemma's template refuses a system role)
        tokenizer.apply_chat_template([{"role": "user", "content": "ping"}], add_generation_prompt=True,
                                      tokenize=False)
    except Exception as err:  # noqa: BLE001 - a template can raise anything from jinja
        raise CheckFailed(f"{path}: the chat template fails on a user turn ({err})",
                          "give the judge's published tokenizer files") from None
    return f"{settings.name}: {path}, {type(tokenizer).__name__} with a chat template, {_gb(_weights_bytes(path))}"


# --- data ------------------------------------------------------------------------------------------------


def grid_shifts(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    from sure_vqa.study.run import load_shift

    return [load_shift(entry) for entry in cfg["grid"]["shifts"]]


class StudyData:
    """The grid's datasets, each read once for one doctor run: the dataset and shift checks and the disk
    estimate ask for the same records and split counts (MIMIC has 200,000 questions)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = cfg
        self._splits: dict[str, Any] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def splits(self, dataset: str) -> Any:
        from sure_vqa.data.splits import DatasetSplits

        if dataset not in self._splits:
            self._splits[dataset] = DatasetSplits(_path_setting(self.cfg, "dataset_root"), dataset)
        return self._splits[dataset]

    def split_counts(self, shift: Mapping[str, Any]) -> dict[str, int]:
        """Questions in the train and val split models are trained on, and in the iid and ood test splits."""
        key = json.dumps([shift["dataset"], shift["data_shift"], shift["ood_value"]], default=str)
        if key not in self._counts:
            splits = self.splits(shift["dataset"])
            train_split = self.cfg.get("train_split", "iid")
            counts = {}
            for mod, split in (("train", train_split), ("val", train_split), ("test", "iid"), ("test", "ood")):
                args = (shift["data_shift"], shift["ood_value"]) if split in ("iid", "ood") else (None, None)
                counts[f"{mod} {split}"] = len(splits.split(mod, split, *args)[1])
            self._counts[key] = counts
        return self._counts[key]


def check_dataset(data: StudyData, dataset: str) -> str:
    splits = data.splits(dataset)
    counts = Counter(record.source for record in splits.records())
    return f"{splits.dataset_dir}: " + ", ".join(f"{counts.get(mod, 0)} {mod}" for mod in naming.MODS) + " questions"


def check_shift(data: StudyData, shift: Mapping[str, Any]) -> str:
    counts = data.split_counts(shift)
    detail = ", ".join(f"{name} {n}" for name, n in counts.items())
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise CheckFailed(f"{detail}: {', '.join(empty)} empty",
                          f"check data_shift/ood_value (sure-vqa splits list dataset={shift['dataset']})")
    return detail


# --- hardware --------------------------------------------------------------------------------------------


def _available_ram() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_accelerator(cfg: Mapping[str, Any]) -> str:
    import torch

    precision = ((cfg.get("stages") or {}).get("train") or {}).get("train", {}).get("precision", "auto")
    if not torch.cuda.is_available():
        if precision not in ("auto", "fp32"):
            raise CheckFailed(f"no GPU, but train.precision={precision}", "use train.precision=auto or fp32")
        return "none: every stage runs on the CPU in float32 (fine for the demo; a 7B study needs a GPU)"
    free, total = torch.cuda.mem_get_info()
    bf16 = torch.cuda.is_bf16_supported()
    if precision == "bf16" and not bf16:
        raise CheckFailed(f"{torch.cuda.get_device_name()} has no bf16", "use train.precision=auto (fp32) or fp16")
    return (f"{torch.cuda.device_count()} × {torch.cuda.get_device_name()}, bf16 {'yes' if bf16 else 'no'}, "
            f"{_gb(free)} free of {_gb(total)}")


def check_memory(cfg: Mapping[str, Any]) -> str:
    """The base model's weights (in the dtype they will run in) fit in the GPU's free memory, or in RAM."""
    import torch

    path = _path_setting(cfg, runs.base_model_key(cfg))
    config = _read_config(path)
    stored = str(config.get("torch_dtype") or config.get("dtype") or (config.get("text_config") or {}).get("dtype")
                 or "float32")
    weights = _weights_bytes(path)
    parameters = weights / BYTES_PER_PARAM.get(stored, 4)
    if torch.cuda.is_available():  # dtype=auto: bfloat16 on a GPU
        needed, available, where = parameters * 2, torch.cuda.mem_get_info()[0], "GPU memory free"
    else:  # float32 on the CPU
        needed, available, where = parameters * 4, _available_ram(), "RAM available"
    if available is None:
        return f"the base model needs about {_gb(needed)}; available memory unknown"
    detail = f"the base model needs about {_gb(needed)}; {_gb(available)} {where}"
    if needed > available:
        raise CheckFailed(detail, "use a machine with more (GPU) memory")
    return detail


# --- disk ------------------------------------------------------------------------------------------------


def trainable_parameters(model_path: Path, model_type: str, finetune_cfg: Mapping[str, Any]) -> int:
    """What a method trains on this base model, counted on a model built on the meta device (no weights read)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForImageTextToText

    from sure_vqa.models.methods import prepare_model

    with init_empty_weights():
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model_path))
        prepared, _ = prepare_model(model, model_type, finetune_cfg, str(model_path))
    return sum(p.numel() for p in prepared.parameters() if p.requires_grad)


def estimate_grid_bytes(cfg: Mapping[str, Any], data: StudyData) -> tuple[int, str]:
    """(bytes, how they were counted) for the grid: each trained folder (weights + init_weight + one checkpoint
    at the peak of training) and every inference run's files."""
    from sure_vqa.models import methods
    from sure_vqa.study.grid import RunSettings, model_runs
    from sure_vqa.study.run import grid_cells

    model_path = _path_setting(cfg, runs.base_model_key(cfg))
    trainable_of: dict[str, int] = {}
    total = n_models = n_runs = 0
    for cell in grid_cells(cfg):
        method, train_no_image = str(cell["method"]), bool(cell["train_no_image"])
        counts = data.split_counts(cell)
        if method in methods.names():
            if method not in trainable_of:
                trainable_of[method] = trainable_parameters(model_path, method, cell.get("finetune") or {})
            copies = 2 if methods.get(method).uses_adapter else 1  # adapters keep an init_weight/ copy
            total += trainable_of[method] * (4 * copies + CHECKPOINT_BYTES_PER_PARAM)
            n_models += 1
        specs = len(model_runs(RunSettings.from_config(cell["runs"]), method, train_no_image))
        questions = (counts["test iid"] + counts["test ood"]) / 2
        total += int(specs * questions * EVAL_BYTES_PER_QUESTION)
        n_runs += specs
    trained = ", ".join(f"{m} {n / 1e6:.2f}M" for m, n in trainable_of.items())
    return total, f"{n_models} trained models ({trained} parameters trained), {n_runs} inference runs"


def check_disk(cfg: Mapping[str, Any], data: StudyData) -> str:
    root = _path_setting(cfg, "experiment_root")
    needed, how = estimate_grid_bytes(cfg, data)
    free = shutil.disk_usage(_existing_ancestor(root)).free
    detail = f"the grid needs about {_gb(needed)} ({how}); {_gb(free)} free"
    if needed > free:
        raise CheckFailed(detail, "free disk space or set EXPERIMENT_ROOT_DIR to a larger disk")
    return detail


# --- all together ----------------------------------------------------------------------------------------


def run_checks(cfg: Mapping[str, Any]) -> list[Check]:
    checks = [
        _run("paths.dataset_root", lambda: check_folder_path(cfg, "dataset_root")),
        _run("paths.experiment_root", lambda: check_experiment_root(cfg)),
        _run("base model", lambda: check_base_model(cfg)),
        _run("judge", lambda: check_judge(cfg)),
    ]
    try:
        shifts = grid_shifts(cfg)
    except ConfigError as err:
        return [*checks, Check("grid.shifts", False, str(err))]
    data = StudyData(cfg)
    for dataset in dict.fromkeys(shift["dataset"] for shift in shifts):
        checks.append(_run(f"dataset {dataset}", lambda d=dataset: check_dataset(data, d)))
    for shift in shifts:
        name = f"shift {shift['dataset']} {shift['data_shift']}={shift['ood_value']}"
        checks.append(_run(name, lambda s=shift: check_shift(data, s)))
    checks += [
        _run("accelerator", lambda: check_accelerator(cfg)),
        _run("memory", lambda: check_memory(cfg)),
        _run("disk", lambda: check_disk(cfg, data)),
    ]
    return checks


def format_table(checks: Sequence[Check]) -> str:
    from tabulate import tabulate

    rows = [[c.name, OK if c.ok else FAIL, c.detail, "" if c.ok else c.fix] for c in checks]
    table = tabulate(rows, headers=["check", "", "found", "fix"], tablefmt="simple", maxcolwidths=[None, None, 70, 50])
    failed = sum(not c.ok for c in checks)
    summary = "all checks passed" if not failed else f"{failed} of {len(checks)} checks failed"
    return f"{table}\n\n{summary}"


def doctor_command(cfg: Any) -> None:
    """`sure-vqa doctor` (config/commands/doctor.yaml): the table, and exit 1 when a check failed."""
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notes, not findings
    if cfg.demo:
        from hydra.core.hydra_config import HydraConfig

        from sure_vqa.demo.run import demo_config

        # the demo's study in `out`, with the user's other overrides, as `sure-vqa demo out=DIR ...` composes it
        given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        cfg = demo_config(Path(cfg.out), [o for o in given if o.split("=")[0].lstrip("+~") not in ("demo", "out")])
    checks = run_checks(cfg)
    print(format_table(checks))
    if not all(c.ok for c in checks):
        sys.exit(1)
