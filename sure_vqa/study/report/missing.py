"""What the report expects and did not find (docs/report.md#what-is-missing): for every shift, each method's
models × seeds × the study grid's runs (sure_vqa.study.grid.model_runs, with the controls and corruption
settings found on the shift), the no-image baselines, the zero-shot model and the most frequent answer. An
expected run is missing when its spec is not among the runs found for that model (a set difference of
`InferenceSpec`s), and incomplete when it lacks test_results.json or a metrics file the shift's other runs have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.runs import CorruptionSetting, InferenceSpec, ModelIdentity
from sure_vqa.study import grid as study_grid
from sure_vqa.study.grid import SPLITS
from sure_vqa.study.report.grid import (
    METRIC_FILES_TRADITIONAL,
    ShiftRuns,
    Variant,
    corruption_order,
    swap_pairs,
    tag_set,
    variant_of,
)
from sure_vqa.study.report.scan import (
    FINETUNED,
    IMAGE,
    MOST_FREQUENT,
    PRETRAINED,
    Model,
    ScanResult,
    Shift,
    pretrained_method,
)


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


def _model_path(siblings: Sequence[Model], seed: int) -> Path:
    """The folder of a method's model for another seed: its identity with that seed."""
    for model in siblings:
        if model.seed == seed:
            return model.path
    return siblings[0].identity.with_seed(seed).model_dir()


def _models_for(scan: ScanResult, shift: Shift, method: str, train_images: bool) -> list[Model]:
    return [model for model in scan.models
            if model.kind == FINETUNED and model.method == method and model.train_images == train_images
            and model.dataset == shift.dataset and model.trained_on(shift)]


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


def _expected_specs(found: ShiftRuns) -> list[InferenceSpec]:
    """The runs that a method trained with images should have on the shift: the study grid's runs
    (sure_vqa.study.grid.model_runs) with the image controls and corruption settings found for any such method
    of the shift; the no-image runs unless the shift has no controls at all. Clean runs first, then by strength."""
    controls: set[str] = set()
    corruptions: set[CorruptionSetting] = set()
    for (variant, setting), _ in found.corrupted.items():
        if variant.kind == FINETUNED and variant.train_images:
            corruptions.add(setting)
    for variant, seeds in found.clean.items():
        if variant.kind == FINETUNED and variant.train_images and not variant.swap:
            controls |= {run.spec.image_control for runs in seeds.values() for run in runs.values()
                         if run.spec.image_control is not None}
    settings = study_grid.RunSettings(no_image=_has_controls(found), image_controls=tuple(sorted(controls)),
                                      corruptions=tuple(sorted(corruptions, key=corruption_order)))
    return sorted(study_grid.model_runs(settings, FINETUNED),
                  key=lambda spec: (corruption_order(spec.corruption), spec.condition, spec.split))


def _missing_for_shift(scan: ScanResult, shift: Shift, found: ShiftRuns, pairs: set) -> list[Missing]:
    missing: list[Missing] = []
    metric_files = _metric_files(found)
    found_specs: dict[Path, set[InferenceSpec]] = {}
    for run in scan.runs:
        if run.shift == shift:
            found_specs.setdefault(run.model.path, set()).add(run.spec)

    def expect(model_path: Path, seed: int | None, specs: Sequence[InferenceSpec],
               what: Callable[[InferenceSpec], str]) -> None:
        """One model's expected runs: those not found (a set difference with the runs found), then the found
        ones that lack a file."""
        absent = set(specs) - found_specs.get(model_path, set())
        for spec in specs:
            name = spec.run_name(shift.split_name(spec.split))
            path = naming.eval_dir(model_path, name)
            if spec not in absent:
                missing.extend(_incomplete(shift, what(spec), seed, spec.split, path, metric_files))
            elif not model_path.is_dir():
                missing.append(Missing(shift, what(spec), seed, spec.split, name, path,
                                       f"model folder {model_path.name} not found"))
            else:
                missing.append(Missing(shift, what(spec), seed, spec.split, name, path, "not found"))

    def label(method: str, train_images: bool) -> Callable[[InferenceSpec], str]:
        def what(spec: InferenceSpec) -> str:
            text = Variant(FINETUNED, method, train_images, spec.condition).label
            return text if spec.corruption is None else f"{text} · corruption {spec.corruption.label}"
        return what

    methods = sorted({m.method for m in scan.models if m.kind == FINETUNED and m.train_images
                      and _models_for(scan, shift, m.method, True)})
    no_image_methods = sorted({m.method for m in scan.models if m.kind == FINETUNED and not m.train_images
                               and _models_for(scan, shift, m.method, False)})
    seeds = sorted({m.seed for method in methods for m in _models_for(scan, shift, method, True)})
    specs = _expected_specs(found)
    for method in methods:
        siblings = _models_for(scan, shift, method, True)
        for seed in seeds:
            expect(_model_path(siblings, seed), seed, specs, label(method, True))
    no_image_specs = sorted(study_grid.model_runs(study_grid.RunSettings(), FINETUNED, train_no_image=True),
                            key=lambda spec: (spec.split, spec.no_image))
    for method in no_image_methods:
        siblings = _models_for(scan, shift, method, False)
        for seed in sorted(set(seeds) | {m.seed for m in siblings}):
            expect(_model_path(siblings, seed), seed, no_image_specs, label(method, False))
    if methods and not _has_controls(found):
        missing.append(Missing(shift, "controls (R3)", None, None, None, None,
                               "no run without the image, with an image control or corrupted, and no model trained "
                               "without images, on this shift (grid.control_shifts leaves them out)"))
    elif methods and not no_image_methods:
        missing.append(Missing(shift, "no-image baseline", None, None, None, None,
                               "no model trained without images (train with no_image=true)"))
    # the zero-shot model of every base model that was fine-tuned on this shift (LLaVA-Med when none was), and the
    # most frequent answer learned on the shift's iid train split
    base_models = sorted({m.identity.base_model for method in methods for m in _models_for(scan, shift, method, True)}
                         or {naming.DEFAULT_BASE_MODEL})
    baselines = [ModelIdentity.baseline(PRETRAINED, shift.dataset, scan.root, base_model=base) for base in base_models]
    baselines.append(ModelIdentity.baseline(MOST_FREQUENT, shift.dataset, scan.root, "iid", shift.data_shift,
                                            shift.ood_value))
    for split in SPLITS:
        for baseline in baselines:  # the zero-shot no-image runs are optional (runs.pretrained_no_image)
            method = pretrained_method(baseline.base_model) if baseline.kind == PRETRAINED else MOST_FREQUENT
            baseline_specs = [spec for spec in study_grid.model_runs(study_grid.RunSettings(), baseline.kind)
                              if spec.split == split]
            expect(baseline.model_dir(), None, baseline_specs,
                   lambda spec, kind=baseline.kind, method=method: Variant(kind, method).label)
    declared = {b for dataset, field_name, a, b in pairs
                if (dataset, field_name, a) == (shift.dataset, shift.data_shift, tag_set(shift.ood_value))}
    present = {tag_set(s.ood_value) for s in found.swap_of}
    for b in sorted(declared - present, key=sorted):
        missing.append(Missing(shift, "iid/ood swap", None, None, None, None,
                               f"no runs of the swapped shift {shift.data_shift}={'+'.join(sorted(b))}"))
    # Incomplete runs outside the grid above (e.g. the zero-shot model without images).
    listed = {m.path for m in missing}
    for runs_by_seed in [*found.clean.values(), *found.corrupted.values()]:
        for seed, runs in runs_by_seed.items():
            for split, run in runs.items():
                if run.shift == shift and run.path not in listed:
                    missing += _incomplete(shift, variant_of(run).label, seed, split, run.path, metric_files)
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
