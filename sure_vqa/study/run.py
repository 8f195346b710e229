"""The study (docs/method.md#what-is-measured, #baselines-and-robustness): shift × method × seed → train; inference iid, ood, without images, with image
controls and corrupted; evaluation; the report. Config: config/study/study_defaults.yaml; guide: docs/study.md.

    sure-vqa study [key=value ...]                 every cell of `grid`, one after another, then the report
    sure-vqa study -m shift=A,B method=lora,ia3,pretrained,most_frequent seed=123,124,125
                                                   Hydra multirun: one job per cell (local processes or Slurm
                                                   through hydra-submitit-launcher); the report at the end

From Python (the demo): `run_study(compose_study([...overrides]))`, or `run_cell(cfg)` for one cell.

Each step builds its stage's own config (config/train, config/inference, config/eval) from the study's settings
and calls that stage, so a study runs exactly what the single commands run. Each step is skipped when its output
is there and was made from the inputs there now: a finished experiment folder, a test_results.json whose
fingerprint matches the model, split and settings, metrics files that record the current test_results.json
(docs/evaluation.md#which-answers-a-metrics-file-scored); so a rerun (or a requeued Slurm job) continues where the
last one stopped, and answers that changed are scored again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from sure_vqa import eval_folder, graceful_stop, naming, runs
from sure_vqa.config import CONFIG_DIR, ConfigError, check_choice, compose
from sure_vqa.models import methods
from sure_vqa.study import grid as study_grid
from sure_vqa.study.grid import BASELINE_METHODS, MOST_FREQUENT

log = logging.getLogger(__name__)

STUDY_CONFIG = "study/study_defaults"
TRAIN_CONFIG = "train/training_defaults"
INFERENCE_CONFIG = "inference/inference_defaults"
PRETRAINED_CONFIG = "inference/inference_pretrained_defaults"
EVAL_CONFIG = "eval/metrics_eval_defaults"
STEPS = ("train", "inference", "evaluation", "report")
# The keys every stage shares with the study (copied into each stage's config).
SHARED_KEYS = ("dataset", "data_shift", "ood_value", "train_split", "seed")
SHARED_GROUPS = ("paths", "finetune")


# --- composing the stages' configs ---------------------------------------------------------------


def compose_study(overrides: Sequence[str] = ()) -> DictConfig:
    """The study config (config/study/study_defaults.yaml) with Hydra overrides, e.g. ["shift=demo_modality"]."""
    return compose(STUDY_CONFIG, overrides, what="study setting")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def stage_config(config_name: str, study: Mapping[str, Any], values: Mapping[str, Any],
                 extra: Mapping[str, Any] | None) -> DictConfig:
    """A stage's own config with the study's shared settings, the step's `values` and the user's `stages.*`
    extras merged in. The stage config stays in struct mode, so a misspelt extra is an error."""
    from omegaconf.errors import OmegaConfBaseException

    cfg = compose(config_name)
    shared = {key: _plain(study[key]) for key in (*SHARED_KEYS, *SHARED_GROUPS) if key in study}
    try:
        return OmegaConf.merge(cfg, shared, dict(values), _plain(extra) or {})
    except OmegaConfBaseException as err:
        raise ConfigError(f"stages setting for {config_name} is not valid: {err}") from None


# --- one cell: which runs, and the steps --------------------------------------------------------


@dataclass
class CellReport:
    """What one cell did: each step with `done` (ran now), `skipped` (output was there) or a reason."""

    cell: str
    steps: list[tuple[str, str]] = field(default_factory=list)

    def add(self, step: str, outcome: str) -> None:
        self.steps.append((step, outcome))
        log.info("[study] %s | %s: %s", self.cell, step, outcome)


def _evaluate(cfg: Mapping[str, Any], values: Mapping[str, Any], eval_dir: Path, report: CellReport,
              step: str) -> None:
    """Scores the run unless every metrics file records the run's current test_results.json and settings
    (docs/evaluation.md#which-answers-a-metrics-file-scored): metrics of answers that changed are redone."""
    from sure_vqa.evaluate.run import evaluate, outdated_files
    from sure_vqa.evaluate.settings import EvaluationSettings

    metric_type = list(_plain(cfg["metric_type"]))
    eval_values = {**values, "metric_type": metric_type, "judge": _plain(cfg["judge"]), "eval_dir": str(eval_dir)}
    settings = EvaluationSettings.from_config(stage_config(EVAL_CONFIG, cfg, eval_values,
                                                           cfg["stages"].get("evaluation")))
    outdated = outdated_files(settings)
    if not outdated:
        report.add(step, "skipped (metrics are current)")
        return
    if any(reason != "missing" for reason in outdated.values()):
        log.warning("[study] rescoring %s: %s", eval_dir,
                    "; ".join(f"{name}: {reason}" for name, reason in outdated.items()))
    evaluate(settings)
    report.add(step, "done" if all(reason == "missing" for reason in outdated.values()) else "rescored")


def _cell_name(cfg: Mapping[str, Any], method: str, train_no_image: bool) -> str:
    shift = f"{cfg['dataset']} {cfg['data_shift']}={naming.ood_value_tag(_plain(cfg['ood_value']))}"
    return f"{shift} {method}{' (no image)' if train_no_image else ''} seed {cfg['seed']}"


def run_cell(cfg: Mapping[str, Any]) -> CellReport:
    """One cell: (shift, method, seed, train_no_image) through the configured steps; returns what it did."""
    method = check_choice(cfg["method"], "method", (*methods.names(), *BASELINE_METHODS))
    train_no_image = bool(cfg.get("train_no_image", False))
    steps = [check_choice(step, "steps entry", STEPS) for step in cfg["steps"]]
    report = CellReport(_cell_name(cfg, method, train_no_image))
    if method in BASELINE_METHODS and train_no_image:
        raise ConfigError(f"train_no_image=true only applies to trained methods, not method={method}")
    if method in BASELINE_METHODS and int(cfg["seed"]) != int(cfg["baseline_seed"]):
        report.add(method, f"skipped (seed-independent: runs in the cell with seed={cfg['baseline_seed']})")
        return report
    if method == MOST_FREQUENT:
        _most_frequent_cell(cfg, steps, report)
    else:
        _model_cell(cfg, method, train_no_image, steps, report)
    return report


def _most_frequent_cell(cfg: Mapping[str, Any], steps: Sequence[str], report: CellReport) -> None:
    from sure_vqa.study.baselines import run_most_frequent

    mod = cfg["runs"]["mod"]
    runs.experiment_root(cfg)  # set, or a message naming it
    model_dir = runs.ModelIdentity.most_frequent(cfg).model_dir()
    specs = study_grid.model_runs(study_grid.RunSettings(), MOST_FREQUENT)
    splits = [spec.split for spec in specs]
    out_dirs = [naming.eval_dir(model_dir, spec.run_name(naming.split_name(cfg["dataset"], mod, spec.split,
                                                                          cfg["data_shift"], _plain(cfg["ood_value"]))))
                for spec in specs]
    if "inference" in steps:
        # Always recomputed (a count over the train split, seconds): answers that no longer follow from the split
        # files are replaced, and the evaluation below sees that they changed. Unchanged answers are not rewritten.
        before = [eval_folder.results_sha256(out_dir) for out_dir in out_dirs]
        values = {key: _plain(cfg[key]) for key in (*SHARED_KEYS, *SHARED_GROUPS)}
        # The same part of each split as the models answer (stages.inference.max_samples, e.g. in the demo).
        max_samples = (cfg["stages"].get("inference") or {}).get("max_samples")
        run_most_frequent({**values, "mod": mod, "split": splits, "max_samples": max_samples})
        after = [eval_folder.results_sha256(out_dir) for out_dir in out_dirs]
        report.add("most frequent answer", "skipped (test_results.json are current)" if after == before else "done")
    elif all((out_dir / naming.TEST_RESULTS_FILE).is_file() for out_dir in out_dirs):
        report.add("most frequent answer", "skipped (test_results.json exist; inference not in steps)")
    if "evaluation" in steps:
        for split, out_dir in zip(splits, out_dirs, strict=True):
            if (out_dir / naming.TEST_RESULTS_FILE).is_file():
                values = {"model_type": runs.PRETRAINED, "split": split, "mod": mod}
                _evaluate(cfg, values, out_dir, report, f"evaluate most frequent {split}")


def _model_cell(cfg: Mapping[str, Any], method: str, train_no_image: bool, steps: Sequence[str],
                report: CellReport) -> None:
    from sure_vqa.models.experiment_folder import is_finished

    model_values = {"model_type": method, "train_no_image": train_no_image}
    if method != runs.PRETRAINED:
        train_cfg = stage_config(TRAIN_CONFIG, cfg, {"model_type": method, "no_image": train_no_image},
                                 cfg["stages"].get("train"))
        model_dir = runs.model_dir(train_cfg, training=True)
        if is_finished(model_dir):
            report.add("train", "skipped (finished)")
        elif "train" in steps:
            from sure_vqa.train.run import train

            train(train_cfg)
            report.add("train", "done")
        else:
            report.add("train", "not run (not in steps); later steps skipped")
            return
    config_name = PRETRAINED_CONFIG if method == runs.PRETRAINED else INFERENCE_CONFIG
    for spec in study_grid.model_runs(study_grid.RunSettings.from_config(cfg["runs"]), method,
                                      train_no_image):
        graceful_stop.check(f"the finished steps of cell {report.cell} are kept; rerun the same command to continue")
        values = {**model_values, **spec.values(), "mod": cfg["runs"]["mod"]}
        inference_cfg = stage_config(config_name, cfg, values, cfg["stages"].get("inference"))
        eval_dir = runs.eval_dir(inference_cfg)
        step = f"{eval_dir.name}"
        existed = (eval_dir / naming.TEST_RESULTS_FILE).is_file()
        if "inference" in steps:
            from sure_vqa.infer.run import run_inference

            # Also for a finished run: the stage skips it only if it was made by this model, split and settings
            # (its fingerprint), and stops with the reason otherwise, instead of the study scoring stale answers.
            run_inference(inference_cfg)
            report.add(f"infer {step}", "skipped (test_results.json is current)" if existed else "done")
        elif existed:
            report.add(f"infer {step}", "skipped (test_results.json exists; inference not in steps)")
        else:
            continue
        if "evaluation" in steps:
            _evaluate(cfg, values, eval_dir, report, f"evaluate {step}")


# --- the whole grid -------------------------------------------------------------------------------


def load_shift(entry: Any) -> dict[str, Any]:
    """A `grid.shifts` entry: a name in config/shift/ or an inline {dataset, data_shift, ood_value}."""
    entry = _plain(entry)
    if isinstance(entry, str):
        path = CONFIG_DIR / "shift" / f"{entry}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in (CONFIG_DIR / "shift").glob("*.yaml"))
            raise ConfigError(f"grid.shifts entry {entry!r} is not a file in config/shift/; known: {', '.join(known)}")
        entry = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(entry, Mapping) or not {"dataset", "data_shift", "ood_value"} <= set(entry):
        raise ConfigError(f"grid.shifts entry {entry!r} needs dataset, data_shift and ood_value")
    return {key: entry[key] for key in ("dataset", "data_shift", "ood_value")}


def _check_family_methods(cfg: Mapping[str, Any]) -> None:
    """A method the base model's family refuses (docs/models.md) stops the study before its first cell, not
    after days of the other methods' training."""
    from sure_vqa import runs
    from sure_vqa.models import families

    try:
        folder = runs.base_model_path(cfg)
    except ConfigError:
        return  # no base model set (a report-only run); the train step names the setting when it needs it
    family = families.for_folder(folder)
    for setting in ("methods", "train_no_image_methods"):
        listed = [str(m) for m in cfg["grid"].get(setting, [])]
        for method in listed:
            try:
                family.check_method(method, methods.names())
            except ConfigError as err:
                kept = ",".join(dict.fromkeys(m for m in listed if m not in family.unsupported_methods))
                raise ConfigError(f"grid.{setting}: {err} (e.g. grid.{setting}=[{kept}])") from None


# What a shift outside `grid.control_shifts` leaves out: every run but the clean iid and ood ones.
NO_CONTROLS = {"no_image": False, "image_controls": [], "corruptions": [], "pretrained_no_image": False}


def control_shifts(grid: Mapping[str, Any]) -> list[str] | None:
    """`grid.control_shifts`, checked: None (every shift gets the controls) or names listed in grid.shifts."""
    chosen = _plain(grid.get("control_shifts"))
    if chosen is None:
        return None
    names = [entry for entry in _plain(grid["shifts"]) if isinstance(entry, str)]
    if not isinstance(chosen, list):
        raise ConfigError(f"grid.control_shifts={chosen!r} is not valid; give null (every shift) or a list of "
                          f"names from grid.shifts: {', '.join(names)}")
    for name in chosen:
        check_choice(name, "grid.control_shifts entry", names)
    return chosen


def grid_cells(cfg: Mapping[str, Any]) -> Iterator[DictConfig]:
    """Every cell of `grid` as a study config: per shift, the trained methods × seeds, the methods trained
    without images × seeds, then the seed-independent baselines (once, with baseline_seed). A shift outside
    `grid.control_shifts` gets neither the models trained without images nor any run but clean iid and ood."""
    grid = cfg["grid"]
    for method in [*grid["methods"], *grid.get("train_no_image_methods", [])]:
        check_choice(method, "grid.methods entry", methods.names())
    for method in grid.get("baselines", []):
        check_choice(method, "grid.baselines entry", BASELINE_METHODS)
    with_controls = control_shifts(grid)
    _check_family_methods(cfg)
    for shift_entry in grid["shifts"]:
        shift = load_shift(shift_entry)
        controls = with_controls is None or _plain(shift_entry) in with_controls
        cells = [(m, s, False) for m in grid["methods"] for s in grid["seeds"]]
        if controls:
            cells += [(m, s, True) for m in grid.get("train_no_image_methods", []) for s in grid["seeds"]]
        cells += [(m, cfg["baseline_seed"], False) for m in grid.get("baselines", [])]
        for method, seed, train_no_image in cells:
            values: dict[str, Any] = {**shift, "method": method, "seed": int(seed), "train_no_image": train_no_image}
            cell = OmegaConf.merge(cfg, values, {} if controls else {"runs": NO_CONTROLS})
            with open_dict(cell):
                cell.ood_value = shift["ood_value"]  # a list replaces the default value instead of merging into it
            yield cell


def run_report(cfg: Mapping[str, Any]) -> Path:
    """The report of the study's experiment root (settings under `report`); returns the HTML page."""
    from sure_vqa.study.report import build_report, settings_from_config

    settings = cfg["report"]
    root = settings.get("experiment_root") or runs.experiment_root(cfg)
    dataset_root = settings.get("dataset_root") or (cfg.get("paths") or {}).get("dataset_root")
    return build_report(root, settings.get("out"), settings_from_config(settings), dataset_root=dataset_root).html


def run_study(cfg: Mapping[str, Any], progress: bool = True) -> list[CellReport]:
    """Every cell of `grid`, one after another, then the report (if `report` is in steps)."""
    from tqdm import tqdm

    runs.experiment_root(cfg)  # fail early on an unset root
    cells = list(grid_cells(cfg))  # every entry is checked before the first step runs
    reports: list[CellReport] = []
    with graceful_stop.stoppable():  # a stage stops at its next safe point; between cells, here
        for cell in tqdm(cells, desc="study", unit="cell", disable=not progress):
            graceful_stop.check(f"{len(reports)} of the {len(cells)} cells are done; rerun the same command to "
                                "continue (finished steps are skipped)")
            reports.append(run_cell(cell))
    if "report" in cfg["steps"]:
        html = run_report(cfg)
        print(f"report: {html}", flush=True)
    return reports


# --- Hydra entry ------------------------------------------------------------------------------------


try:  # Hydra's callback API: the report once every job of a multirun has finished (Slurm included).
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra-core < 1.1
    Callback = object  # type: ignore[misc,assignment]


class ReportCallback(Callback):
    """Runs the report in the launching process after all multirun jobs (config: hydra.callbacks.report)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if "report" in config.get("steps", []):
            try:
                print(f"report: {run_report(config)}", flush=True)
            except ConfigError as err:
                log.error("report not written: %s", err)


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def study_command(cfg: DictConfig) -> None:
    """`sure-vqa study`: the whole grid in this process, or (under `-m`) the one cell of this multirun job."""
    if _is_multirun():
        with graceful_stop.stoppable():  # one cell per job: under Slurm, a preempted job stops cleanly, requeues
            run_cell(cfg)
    else:
        run_study(cfg)
