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

The checks of a stage live with it (sure_vqa.models.preflight, sure_vqa.data.preflight, each judge backend's
`preflight`; what a check is: sure_vqa.preflight); this module holds the study's own (paths, accelerator, disk),
runs them all and draws the table.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sure_vqa import runs
from sure_vqa.config import ConfigError
from sure_vqa.data.preflight import StudyData, check_dataset, check_shift, grid_shifts
from sure_vqa.evaluate.judge.registry import preflight as check_judge
from sure_vqa.models.preflight import check_base_model, check_memory, trainable_parameters
from sure_vqa.preflight import ENV_OF_PATH, Check, CheckFailed, gigabytes, path_setting, run

OK, WARN, FAIL = "✓", "!", "✗"
# Bytes on disk per question of one inference run: test_results.json plus the metric and judge files beside it
# (measured on the demo: 1.5-2.5 KB per question over all five files).
EVAL_BYTES_PER_QUESTION = 3_000
# Bytes per trained parameter while training: the weights (fp32) and AdamW's two fp32 moments in a checkpoint.
CHECKPOINT_BYTES_PER_PARAM = 12


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- paths -----------------------------------------------------------------------------------------------


def check_folder_path(cfg: Mapping[str, Any], key: str) -> str:
    path = path_setting(cfg, key)
    if not path.is_dir():
        raise CheckFailed(f"paths.{key} = {path} is not a folder",
                          f"point {ENV_OF_PATH[key]} (in .env) at the existing folder")
    return str(path)


def check_experiment_root(cfg: Mapping[str, Any]) -> str:
    """Writable: a file is created and removed there (or in the nearest folder above it, if it does not exist)."""
    root = path_setting(cfg, "experiment_root")
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


# --- data ------------------------------------------------------------------------------------------------


# --- hardware --------------------------------------------------------------------------------------------


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
            f"{gigabytes(free)} free of {gigabytes(total)}")


# --- disk ------------------------------------------------------------------------------------------------


def estimate_grid_bytes(cfg: Mapping[str, Any], data: StudyData) -> tuple[int, str]:
    """(bytes, how they were counted) for the grid: each trained folder (weights + init_weight + one checkpoint
    at the peak of training) and every inference run's files."""
    from sure_vqa.models import methods
    from sure_vqa.study.grid import RunSettings, model_runs
    from sure_vqa.study.run import grid_cells

    model_path = path_setting(cfg, runs.base_model_key(cfg))
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
    root = path_setting(cfg, "experiment_root")
    needed, how = estimate_grid_bytes(cfg, data)
    free = shutil.disk_usage(_existing_ancestor(root)).free
    detail = f"the grid needs about {gigabytes(needed)} ({how}); {gigabytes(free)} free"
    if needed > free:
        raise CheckFailed(detail, "free disk space or set EXPERIMENT_ROOT_DIR to a larger disk")
    return detail


# --- all together ----------------------------------------------------------------------------------------


def run_checks(cfg: Mapping[str, Any], min_ood_questions: int = 0) -> list[Check]:
    checks = [
        run("paths.dataset_root", lambda: check_folder_path(cfg, "dataset_root")),
        run("paths.experiment_root", lambda: check_experiment_root(cfg)),
        run("base model", lambda: check_base_model(cfg)),
        run("judge", lambda: check_judge(cfg.get("judge"))),
    ]
    try:
        shifts = grid_shifts(cfg)
    except ConfigError as err:
        return [*checks, Check("grid.shifts", False, str(err))]
    data = StudyData(cfg)
    for dataset in dict.fromkeys(shift["dataset"] for shift in shifts):
        checks.append(run(f"dataset {dataset}", lambda d=dataset: check_dataset(data, d)))
    for shift in shifts:
        name = f"shift {shift['dataset']} {shift['data_shift']}={shift['ood_value']}"
        checks.append(run(name, lambda s=shift: check_shift(data, s, min_ood_questions)))
    checks += [
        run("accelerator", lambda: check_accelerator(cfg)),
        run("memory", lambda: check_memory(cfg)),
        run("disk", lambda: check_disk(cfg, data)),
    ]
    return checks


def format_table(checks: Sequence[Check]) -> str:
    from tabulate import tabulate

    rows = [[c.name, (WARN if c.warning else OK) if c.ok else FAIL, c.detail, "" if c.ok and not c.warning else c.fix]
            for c in checks]
    table = tabulate(rows, headers=["check", "", "found", "fix"], tablefmt="simple", maxcolwidths=[None, None, 70, 50])
    failed = sum(not c.ok for c in checks)
    warned = sum(c.warning for c in checks)
    summary = "all checks passed" if not failed else f"{failed} of {len(checks)} checks failed"
    if warned:
        summary += f" ({warned} with a warning: !)"
    return f"{table}\n\n{summary}"


def doctor_command(cfg: Any) -> None:
    """`sure-vqa doctor` (config/commands/doctor.yaml): the table, and exit 1 when a check failed."""
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notes, not findings
    min_ood_questions = int(cfg.min_ood_questions)
    if cfg.demo:
        from hydra.core.hydra_config import HydraConfig

        from sure_vqa.demo.run import demo_config

        # the demo's study in `out`, with the user's other overrides, as `sure-vqa demo out=DIR ...` composes it
        given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        doctor_keys = ("demo", "out", "min_ood_questions")
        cfg = demo_config(Path(cfg.out), [o for o in given if o.split("=")[0].lstrip("+~") not in doctor_keys])
    checks = run_checks(cfg, min_ood_questions)
    print(format_table(checks))
    if not all(c.ok for c in checks):
        sys.exit(1)
