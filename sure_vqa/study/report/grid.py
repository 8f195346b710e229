"""What the report compares: runs grouped by shift and by model or baseline ("variant"), and the expected grid.

A variant is what one row of the report describes: a fine-tuning method (its seeds are summarised), or a
baseline (docs/method.md#baselines-and-robustness): the zero-shot model, the most frequent answer, the four no-image combinations, the
blank/shuffled-image controls, and the iid/ood swap. The expected grid of a shift is the methods × seeds × runs
found for that shift, plus the baselines; whatever is expected and absent (or incomplete) is listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError
from sure_vqa.study import grid as study_grid
from sure_vqa.study.grid import SPLITS
from sure_vqa.study.report.scan import (
    FINETUNED,
    IMAGE,
    MOST_FREQUENT,
    NO_IMAGE,
    PRETRAINED,
    Model,
    Run,
    ScanResult,
    Shift,
    pretrained_method,
)

MODEL, BASELINE = "model", "baseline"
METRIC_FILES_TRADITIONAL = (naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE)


@dataclass(frozen=True)
class Variant:
    """One row group of the report: a method or a baseline, with how it was trained and tested."""

    kind: str  # finetuned | pretrained | most_frequent
    method: str
    train_images: bool = True
    condition: str = IMAGE
    swap: bool = False  # a model trained on the swapped shift, shown on this shift's splits

    @property
    def role(self) -> str:
        plain = self.kind == FINETUNED and self.train_images and self.condition == IMAGE and not self.swap
        return MODEL if plain else BASELINE

    @property
    def label(self) -> str:
        if self.kind == PRETRAINED:
            base = "zero-shot (pretrained)" if self.method == PRETRAINED else f"zero-shot {self.method}"
        elif self.kind == MOST_FREQUENT:
            base = "most frequent answer"
        else:
            base = self.method
        parts = [base]
        if not self.train_images and self.condition == NO_IMAGE:
            parts.append("no image in training and test")
        elif not self.train_images:
            parts.append("no image in training")
        elif self.condition == NO_IMAGE:
            parts.append("no image at test")
        elif self.condition != IMAGE:
            parts.append(self.condition)
        if self.swap:
            parts.append("iid/ood swap (trained on ood)")
        return " · ".join(parts)

    @property
    def baseline_kind(self) -> str:
        """A short name of the kind of baseline, shared by every method (plot legends)."""
        if self.role == MODEL:
            return MODEL
        if self.kind != FINETUNED:
            return self.label
        return self.label.split(" · ", 1)[1]

    def sort_key(self) -> tuple:
        """Models first, then the zero-shot model, the most frequent answer, and each method's own baselines."""
        first = 0 if self.role == MODEL else {PRETRAINED: 1, MOST_FREQUENT: 2}.get(self.kind, 3)
        condition_order = {IMAGE: 0, NO_IMAGE: 1, "blank image": 2, "shuffled image": 3}
        return (first, self.swap, self.method, not self.train_images, condition_order.get(self.condition, 9))


def corruption_key(corruption: Mapping[str, Mapping[str, Any]] | None) -> tuple | None:
    """A hashable form of a run's corruption settings (None for a clean run)."""
    if corruption is None:
        return None
    return tuple((name, corruption["strengths"][name], float(p)) for name, p in corruption["probabilities"].items())


def corruption_settings(key: tuple) -> tuple[dict[str, float], dict[str, str]]:
    return {name: p for name, _, p in key}, {name: level for name, level, _ in key}


def corruption_label(key: tuple) -> str:
    """`low` when every corruption has the same strength, else each one's; probabilities when not all 0.5."""
    levels = [level for _, level, _ in key]
    probabilities = [p for _, _, p in key]
    label = levels[0] if len(set(levels)) == 1 else "/".join(f"{name}-{level}" for name, level, _ in key)
    if any(p != 0.5 for p in probabilities):
        label += " (p " + "/".join(f"{p:g}" for p in probabilities) + ")"
    return label


def corruption_order(key: tuple | None) -> tuple:
    if key is None:
        return (-1, "")
    return (sum(naming.STRENGTHS.index(level) for _, level, _ in key), corruption_label(key))


# seed (None for seed-independent baselines) -> split -> run
SeedRuns = dict[int | None, dict[str, Run]]


@dataclass
class ShiftRuns:
    """Everything found for one shift: clean runs per variant, corrupted runs per (variant, setting)."""

    shift: Shift
    clean: dict[Variant, SeedRuns] = field(default_factory=dict)
    corrupted: dict[tuple[Variant, tuple], SeedRuns] = field(default_factory=dict)
    swap_of: list[Shift] = field(default_factory=list)  # shifts whose models are shown here as the swap


def _variant_of(run: Run) -> Variant:
    model = run.model
    return Variant(model.kind, model.method, model.train_images, run.condition)


def _add(table: dict, key: Any, seed: int | None, split: str, run: Run) -> None:
    table.setdefault(key, {}).setdefault(seed, {})[split] = run


def _tag_set(tag: str) -> frozenset[str]:
    return frozenset(tag.split("+"))


def swap_pairs(declared: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, frozenset, frozenset]]:
    """(dataset, data_shift, ood value set, swapped value set), both directions, from the report's `swaps`."""
    pairs = set()
    for entry in declared:
        missing = [key for key in ("dataset", "data_shift", "ood_value", "swap") if key not in entry]
        if missing:
            raise ConfigError(f"report swaps entry {dict(entry)} lacks {', '.join(missing)}; each entry needs "
                              "dataset, data_shift, ood_value and swap (the ood value(s) of the swapped shift)")
        a = _tag_set(naming.ood_value_tag(_plain(entry["ood_value"])))
        b = _tag_set(naming.ood_value_tag(_plain(entry["swap"])))
        field_name = naming.ood_value_tag(str(entry["data_shift"]))  # spaces removed, as in names
        pairs.add((str(entry["dataset"]), field_name, a, b))
        pairs.add((str(entry["dataset"]), field_name, b, a))
    return pairs


def _plain(value: Any) -> Any:
    """OmegaConf ListConfig -> list, so that naming sees a sequence."""
    if isinstance(value, str | int):
        return value
    return list(value)


def group(scan: ScanResult, swaps: Sequence[Mapping[str, Any]] = ()) -> dict[Shift, ShiftRuns]:
    """Runs grouped per shift and variant; a declared swap's models join the shift they swap."""
    shifts: dict[Shift, ShiftRuns] = {}
    for run in scan.runs:
        entry = shifts.setdefault(run.shift, ShiftRuns(run.shift))
        variant = _variant_of(run)
        if run.corruption is None:
            _add(entry.clean, variant, run.model.seed, run.split, run)
        else:
            _add(entry.corrupted, (variant, corruption_key(run.corruption)), run.model.seed, run.split, run)
    for shift in _model_shifts(scan):
        shifts.setdefault(shift, ShiftRuns(shift))
    pairs = swap_pairs(swaps)
    for a in list(shifts.values()):
        for b in list(shifts.values()):
            key = (a.shift.dataset, a.shift.data_shift, _tag_set(a.shift.ood_value), _tag_set(b.shift.ood_value))
            if b is a or b.shift.mod != a.shift.mod or b.shift.data_shift != a.shift.data_shift:
                continue
            if b.shift.dataset != a.shift.dataset or key not in pairs:
                continue
            a.swap_of.append(b.shift)
            for variant, seeds in b.clean.items():
                if variant.role != MODEL:
                    continue
                swapped = Variant(variant.kind, variant.method, variant.train_images, variant.condition, swap=True)
                for seed, runs in seeds.items():
                    for split, run in runs.items():  # the swap model's iid data is this shift's ood data
                        _add(a.clean, swapped, seed, "ood" if split == "iid" else "iid", run)
    return dict(sorted(shifts.items()))


def _model_shifts(scan: ScanResult) -> set[Shift]:
    """Shifts of trained models that have no runs yet (their runs are all missing)."""
    found = set()
    for model in scan.models:
        parts = model.name_parts
        if model.kind == FINETUNED and parts.get("split") == "iid":
            found.add(Shift(model.dataset, parts["data_shift"], parts["ood_value"], "test"))
    return found


# --- the expected grid and what is missing ----------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    shift: Shift
    what: str
    seed: int | None
    split: str | None
    run: str | None
    path: Path | None
    reason: str

    def row(self) -> dict[str, Any]:
        return {"dataset": self.shift.dataset, "shift": self.shift.label, "what": self.what, "seed": self.seed,
                "split": self.split, "run": self.run, "path": str(self.path) if self.path else None,
                "reason": self.reason}


def _run_name(shift: Shift, split: str, condition: str, corruption: tuple | None) -> str:
    return naming.eval_run_name(
        shift.split_name(split),
        no_image=condition == NO_IMAGE,
        corruption=corruption_settings(corruption) if corruption is not None else None,
        image_control=condition.removesuffix(" image") if condition not in (IMAGE, NO_IMAGE) else None,
    )


def _model_path(root: Path, siblings: Sequence[Model], seed: int) -> Path:
    """The folder of a method's model for another seed, built from a sibling's name."""
    for model in siblings:
        if model.seed == seed:
            return model.path
    parts = siblings[0].name_parts
    tag = naming.finetune_tag(parts["model_type"], parts["lr"], seed, parts["hyperparameter_tags"])
    return naming.experiment_dir(root, naming.experiment_name(parts["train_split_name"], tag,
                                                              parts.get("base_model", naming.DEFAULT_BASE_MODEL)))


def _models_for(scan: ScanResult, shift: Shift, method: str, train_images: bool) -> list[Model]:
    models = []
    for model in scan.models:
        parts = model.name_parts
        if model.kind != FINETUNED or model.method != method or model.train_images != train_images:
            continue
        if model.dataset != shift.dataset:
            continue
        if parts.get("split") in ("iid", "ood") and (parts["data_shift"], parts["ood_value"]) != (
            shift.data_shift, shift.ood_value
        ):
            continue
        models.append(model)
    return models


def missing_runs(scan: ScanResult, shifts: Mapping[Shift, ShiftRuns],
                 declared_swaps: Sequence[Mapping[str, Any]] = ()) -> list[Missing]:
    """Every expected run that is absent or incomplete (no test_results.json, or a metrics file that the
    other runs of the shift have), over all shifts."""
    pairs = swap_pairs(declared_swaps)
    missing: list[Missing] = []
    for shift, found in shifts.items():
        missing += _missing_for_shift(scan, shift, found, pairs)
    return missing


def _has_controls(found: ShiftRuns) -> bool:
    """Whether any model of the shift has a run beyond clean iid and ood (no image, an image control, a
    corruption) or was trained without images: a study whose `grid.control_shifts` leaves the shift out has none."""
    return any(not variant.swap for variant, _ in found.corrupted) or any(
        variant.kind == FINETUNED and (variant.condition != IMAGE or not variant.train_images) and not variant.swap
        for variant in found.clean)


def _expected_conditions(found: ShiftRuns) -> set[tuple[str, str, tuple | None]]:
    """(split, condition, corruption) of every run that a method trained with images should have: the study
    grid's runs (sure_vqa.study.grid.model_runs) with the image controls and corruption settings found for any
    such method of the shift; the no-image runs unless the shift has no controls at all."""
    controls: set[str] = set()
    corruption_keys: set[tuple] = set()
    for (variant, key), _ in found.corrupted.items():
        if variant.kind == FINETUNED and variant.train_images:
            corruption_keys.add(key)
    for variant in found.clean:
        if variant.kind == FINETUNED and variant.train_images and not variant.swap:
            if variant.condition not in (IMAGE, NO_IMAGE):
                controls.add(variant.condition.removesuffix(" image"))
    settings = study_grid.RunSettings(
        no_image=_has_controls(found), image_controls=tuple(sorted(controls)),
        corruptions=tuple(corruption_settings(key) for key in sorted(corruption_keys, key=corruption_order)))
    return {(spec.split, _condition(spec), None if spec.corruption is None else corruption_key(
                {"probabilities": spec.corruption[0], "strengths": spec.corruption[1]}))
            for spec in study_grid.model_runs(settings, FINETUNED)}


def _condition(spec: study_grid.InferenceSpec) -> str:
    if spec.no_image:
        return NO_IMAGE
    return f"{spec.image_control} image" if spec.image_control else IMAGE


def _missing_for_shift(scan: ScanResult, shift: Shift, found: ShiftRuns, pairs: set) -> list[Missing]:
    root = scan.root
    missing: list[Missing] = []
    metric_files = _metric_files(found)

    def expect(what: str, model_path: Path, seed: int | None, split: str, condition: str,
               key: tuple | None) -> None:
        name = _run_name(shift, split, condition, key)
        path = naming.eval_dir(model_path, name)
        if not model_path.is_dir():
            missing.append(Missing(shift, what, seed, split, name, path, f"model folder {model_path.name} not found"))
        elif not path.is_dir():
            missing.append(Missing(shift, what, seed, split, name, path, "not found"))
        else:
            missing.extend(_incomplete(shift, what, seed, split, path, metric_files))

    methods = sorted({m.method for m in scan.models if m.kind == FINETUNED and m.train_images
                      and _models_for(scan, shift, m.method, True)})
    no_image_methods = sorted({m.method for m in scan.models if m.kind == FINETUNED and not m.train_images
                               and _models_for(scan, shift, m.method, False)})
    seeds = sorted({m.seed for method in methods for m in _models_for(scan, shift, method, True)})
    conditions = sorted(_expected_conditions(found), key=lambda c: (corruption_order(c[2]), c[1], c[0]))
    for method in methods:
        siblings = _models_for(scan, shift, method, True)
        for seed in seeds:
            model_path = _model_path(root, siblings, seed)
            for split, condition, key in conditions:
                what = Variant(FINETUNED, method, True, condition).label
                if key is not None:
                    what += f" · corruption {corruption_label(key)}"
                expect(what, model_path, seed, split, condition, key)
    for method in no_image_methods:
        siblings = _models_for(scan, shift, method, False)
        for seed in sorted(set(seeds) | {m.seed for m in siblings}):
            model_path = _model_path(root, siblings, seed)
            for spec in sorted(study_grid.model_runs(study_grid.RunSettings(), method, train_no_image=True),
                               key=lambda spec: (spec.split, spec.no_image)):
                condition = _condition(spec)
                expect(Variant(FINETUNED, method, False, condition).label, model_path, seed, spec.split, condition,
                       None)
    if methods and not _has_controls(found):
        missing.append(Missing(shift, "controls (R3)", None, None, None, None,
                               "no run without the image, with an image control or corrupted, and no model trained "
                               "without images, on this shift (grid.control_shifts leaves them out)"))
    elif methods and not no_image_methods:
        missing.append(Missing(shift, "no-image baseline", None, None, None, None,
                               "no model trained without images (train with no_image=true)"))
    train_split = naming.split_name(shift.dataset, "train", "iid", shift.data_shift, shift.ood_value)
    # the zero-shot model of every base model that was fine-tuned on this shift (LLaVA-Med when none was)
    base_models = sorted({m.name_parts.get("base_model", naming.DEFAULT_BASE_MODEL) for method in methods
                          for m in _models_for(scan, shift, method, True)} or {naming.DEFAULT_BASE_MODEL})
    baselines = [(PRETRAINED, pretrained_method(base), naming.pretrained_dir(root, shift.dataset, base))
                 for base in base_models]
    baselines.append((MOST_FREQUENT, MOST_FREQUENT, naming.most_frequent_dir(root, train_split)))
    for split in SPLITS:
        for kind, method, path in baselines:  # the zero-shot no-image runs are optional (runs.pretrained_no_image)
            for spec in study_grid.model_runs(study_grid.RunSettings(pretrained_no_image=False), kind):
                if spec.split == split:
                    expect(Variant(kind, method).label, path, None, split, _condition(spec), None)
    declared = {b for dataset, field_name, a, b in pairs
                if (dataset, field_name, a) == (shift.dataset, shift.data_shift, _tag_set(shift.ood_value))}
    present = {_tag_set(s.ood_value) for s in found.swap_of}
    for b in sorted(declared - present, key=sorted):
        missing.append(Missing(shift, "iid/ood swap", None, None, None, None,
                               f"no runs of the swapped shift {shift.data_shift}={'+'.join(sorted(b))}"))
    # Incomplete runs outside the grid above (e.g. the zero-shot model without images).
    listed = {m.path for m in missing}
    for runs_by_seed in [*found.clean.values(), *found.corrupted.values()]:
        for seed, runs in runs_by_seed.items():
            for split, run in runs.items():
                if run.shift == shift and run.path not in listed:
                    missing += _incomplete(shift, _variant_of(run).label, seed, split, run.path, metric_files)
    return missing


def _metric_files(found: ShiftRuns) -> set[str]:
    files: set[str] = set()
    for table in (found.clean, found.corrupted):
        for seed_runs in table.values():
            for runs in seed_runs.values():
                for run in runs.values():
                    if run.shift == found.shift:
                        files |= {f for f in run.files if f in METRIC_FILES_TRADITIONAL
                                  or naming.parse_judge_metrics_file(f) is not None}
    return files


def _incomplete(shift: Shift, what: str, seed: int | None, split: str, path: Path,
                metric_files: set[str]) -> list[Missing]:
    present = {p.name for p in path.iterdir() if p.is_file()} if path.is_dir() else set()
    problems = []
    if naming.TEST_RESULTS_FILE not in present:
        problems.append(f"no {naming.TEST_RESULTS_FILE}")
    problems += [f"no {name}" for name in sorted(metric_files - present)]
    return [Missing(shift, what, seed, split, path.name, path, "; ".join(problems))] if problems else []
