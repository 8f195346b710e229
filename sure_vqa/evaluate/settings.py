"""The evaluation stage's settings, checked once into `EvaluationSettings` before any file is read or any model
loads (docs/evaluation.md). The stage itself (sure_vqa.evaluate.run) reads only this object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sure_vqa import eval_folder, naming, runs
from sure_vqa.config import ConfigError, is_unset, require_path
from sure_vqa.evaluate.metrics.registry import OpenMetric, check_extra_metrics
from sure_vqa.settings import checked

if TYPE_CHECKING:
    from sure_vqa.data.records import QARecord
    from sure_vqa.evaluate.judge.registry import JudgeSettings

TRADITIONAL = eval_folder.TRADITIONAL_METRICS
CLOSED_SUFFIX = eval_folder.JUDGE_CLOSED_SUFFIX


@dataclass(frozen=True)
class CategorySplit:
    """The dataset split whose records give closed questions their answer categories (`dataset` set)."""

    dataset: str
    mod: str
    split: str
    data_shift: str | None
    ood_value: Any
    dataset_root: Any  # checked only when a closed row needs it

    @property
    def test_split_name(self) -> str:
        return naming.split_name(self.dataset, self.mod, self.split, self.data_shift, self.ood_value)

    def records(self) -> list[QARecord]:
        from sure_vqa.data.splits import split_records

        hint = "or set dataset=null to take yes/no categories from the ground truth"
        try:
            root = require_path(self.dataset_root, "paths.dataset_root", "DATASET_ROOT_DIR")
        except ConfigError as err:
            raise ConfigError(f"{err}; the closed questions' categories come from the dataset's split ({hint})") from None
        return split_records(root, self.dataset, self.mod, self.split, self.data_shift, self.ood_value)


@dataclass(frozen=True)
class EvaluationOptions:
    """The evaluation stage's own settings (docs/evaluation.md), the only home of their defaults;
    config/eval/metrics_eval_defaults.yaml takes them from the ConfigStore (/settings/evaluation)."""

    # traditional_metrics | <judge name> (open questions) | <judge name>_closed (closed questions): the judge's
    # name follows `judge=...` (gemma, the default, or smollm2, the offline stand-in).
    metric_type: Any = ("traditional_metrics", "${judge.name}", "${judge.name}_closed")
    extra_metrics: tuple[str, ...] = ()  # extras for open questions, not in the paper's set: rouge_l, embedding_similarity
    # A judge file scored with other judge settings is never replaced silently: true replaces it and keeps the
    # previous one as <file>.<time>.bak; or choose another judge.name.
    overwrite_judge_files: bool = False
    # Another process already running this run: false exits and names it, true waits for it to finish.
    wait_for_lock: bool = False


@dataclass(frozen=True)
class EvaluationSettings:
    """What run_eval.py was asked to do, checked: the folder, which metrics, the judge, the extras."""

    eval_dir: Path
    explicit_dir: bool  # eval_dir=PATH (else found from the inference settings)
    metric_types: tuple[str, ...]
    judge_name: str
    judge: JudgeSettings | None  # None when no judge metric is asked for
    extras: tuple[OpenMetric, ...]
    overwrite_judge_files: bool
    wait_for_lock: bool
    judge_cache_root: Path | None  # the experiment root; None: the eval folder itself
    categories_from: CategorySplit | None  # None: dataset=null

    @property
    def traditional(self) -> bool:
        return TRADITIONAL in self.metric_types

    @property
    def judge_open(self) -> bool:
        return self.judge_name in self.metric_types

    @property
    def judge_closed(self) -> bool:
        return self.judge_name + CLOSED_SUFFIX in self.metric_types

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> EvaluationSettings:
        name = str((cfg.get("judge") or {}).get("name", "gemma"))
        options = checked(EvaluationOptions, cfg, only_own=True)
        metric_types = check_metric_types(options.metric_type, name)
        overwrite, wait = options.overwrite_judge_files, options.wait_for_lock
        extras = tuple(check_extra_metrics(list(options.extra_metrics)))
        judge = None
        if name in metric_types or name + CLOSED_SUFFIX in metric_types:
            from sure_vqa.evaluate.judge.registry import check_judge_config

            judge = check_judge_config(cfg.get("judge"))
        dataset = cfg.get("dataset")
        if not cfg.get("eval_dir") and is_unset(dataset):
            raise ConfigError("dataset is null, so the eval folder cannot be found from the settings; set dataset "
                              "(and the other inference settings) or eval_dir=PATH")
        categories_from = None
        if not is_unset(dataset):
            split = cfg.get("split", "iid")
            data_shift, ood_value = runs.shift_of(cfg, split)
            categories_from = CategorySplit(
                dataset=str(dataset), mod=cfg.get("mod", "test"), split=split, data_shift=data_shift,
                ood_value=ood_value, dataset_root=(cfg.get("paths") or {}).get("dataset_root"))
        root = (cfg.get("paths") or {}).get("experiment_root")
        return cls(
            eval_dir=runs.eval_dir(cfg), explicit_dir=bool(cfg.get("eval_dir")), metric_types=tuple(metric_types),
            judge_name=name, judge=judge, extras=extras, overwrite_judge_files=overwrite, wait_for_lock=wait,
            judge_cache_root=None if is_unset(root) else Path(str(root)).expanduser(), categories_from=categories_from)


def check_metric_types(raw: Any, judge_name: str) -> list[str]:
    """metric_type ⊆ {traditional_metrics, <judge>, <judge>_closed}; a single string is accepted too."""
    requested = [raw] if isinstance(raw, str) else list(raw or [])
    valid = tuple(eval_folder.metric_type_files(judge_name))
    if not requested:
        raise ConfigError(f"metric_type is empty; choose from: {', '.join(valid)}")
    for metric in requested:
        if metric not in valid:
            raise ConfigError(
                f"metric_type contains {metric!r}; valid values: {', '.join(valid)} (the judge is "
                f"judge.name={judge_name}; another judge is chosen with judge=<config name>, e.g. judge=smollm2)"
            )
    return list(dict.fromkeys(requested))
