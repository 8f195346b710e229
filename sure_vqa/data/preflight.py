"""The datasets' setup checks (sure-vqa doctor): each dataset of the grid reads, and every shift's splits have
questions. The records and split counts are read once per doctor run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sure_vqa import naming
from sure_vqa.preflight import CheckFailed, CheckWarning, path_setting


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
            self._splits[dataset] = DatasetSplits(path_setting(self.cfg, "dataset_root"), dataset)
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


def check_shift(data: StudyData, shift: Mapping[str, Any], min_ood_questions: int = 0) -> str:
    """Every split of the shift has questions; an ood test split below `min_ood_questions` is a warning (its
    differences from iid will be too small to tell from chance, docs/report.md)."""
    counts = data.split_counts(shift)
    detail = ", ".join(f"{name} {n}" for name, n in counts.items())
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise CheckFailed(f"{detail}: {', '.join(empty)} empty",
                          f"check data_shift/ood_value (sure-vqa splits list dataset={shift['dataset']})")
    if counts["test ood"] < min_ood_questions:
        raise CheckWarning(f"{detail}: fewer than {min_ood_questions} ood test questions",
                           "an iid/ood difference will be hard to tell from chance; choose a value with more "
                           f"questions (sure-vqa splits list dataset={shift['dataset']}) or lower min_ood_questions")
    return detail
