"""What the report compares: runs grouped by shift and by model or baseline ("variant").

A variant is what one row of the report describes: a fine-tuning method (its seeds are summarised), or a
baseline (docs/method.md#baselines-and-robustness): the zero-shot model, the most frequent answer, the four no-image combinations, the
blank/shuffled-image controls, and the iid/ood swap. What the report expects and did not find is
sure_vqa.study.report.missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError
from sure_vqa.runs import CorruptionSetting
from sure_vqa.study.report.scan import (
    FINETUNED,
    IMAGE,
    MOST_FREQUENT,
    NO_IMAGE,
    PRETRAINED,
    Run,
    ScanResult,
    Shift,
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


def corruption_order(setting: CorruptionSetting | None) -> tuple:
    """Clean runs first, then weaker corruption settings."""
    return (-1, "") if setting is None else setting.sort_key()


# seed (None for seed-independent baselines) -> split -> run
SeedRuns = dict[int | None, dict[str, Run]]


@dataclass
class ShiftRuns:
    """Everything found for one shift: clean runs per variant, corrupted runs per (variant, setting)."""

    shift: Shift
    clean: dict[Variant, SeedRuns] = field(default_factory=dict)
    corrupted: dict[tuple[Variant, CorruptionSetting], SeedRuns] = field(default_factory=dict)
    swap_of: list[Shift] = field(default_factory=list)  # shifts whose models are shown here as the swap


def variant_of(run: Run) -> Variant:
    model = run.model
    return Variant(model.kind, model.method, model.train_images, run.condition)


def _add(table: dict, key: Any, seed: int | None, split: str, run: Run) -> None:
    table.setdefault(key, {}).setdefault(seed, {})[split] = run


def tag_set(tag: str) -> frozenset[str]:
    return frozenset(tag.split("+"))


def swap_pairs(declared: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, frozenset, frozenset]]:
    """(dataset, data_shift, ood value set, swapped value set), both directions, from the report's `swaps`."""
    pairs = set()
    for entry in declared:
        missing = [key for key in ("dataset", "data_shift", "ood_value", "swap") if key not in entry]
        if missing:
            raise ConfigError(f"report swaps entry {dict(entry)} lacks {', '.join(missing)}; each entry needs "
                              "dataset, data_shift, ood_value and swap (the ood value(s) of the swapped shift)")
        a = tag_set(naming.ood_value_tag(_plain(entry["ood_value"])))
        b = tag_set(naming.ood_value_tag(_plain(entry["swap"])))
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
        variant = variant_of(run)
        if run.corruption is None:
            _add(entry.clean, variant, run.model.seed, run.split, run)
        else:
            _add(entry.corrupted, (variant, run.corruption), run.model.seed, run.split, run)
    for shift in _model_shifts(scan):
        shifts.setdefault(shift, ShiftRuns(shift))
    pairs = swap_pairs(swaps)
    for a in list(shifts.values()):
        for b in list(shifts.values()):
            key = (a.shift.dataset, a.shift.data_shift, tag_set(a.shift.ood_value), tag_set(b.shift.ood_value))
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
    return {Shift(m.dataset, m.identity.data_shift, m.identity.ood_value, "test") for m in scan.models
            if m.kind == FINETUNED and m.identity.train_split == "iid"}
