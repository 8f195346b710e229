"""Dataset readers behind one registry: adding a dataset is one module in sure_vqa/data/readers/ that calls
`register` (readers/slake.py also registers "demo": the demo dataset is in SLAKE's raw format)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sure_vqa.data.records import QARecord
from sure_vqa.data.shifts import ShiftGroup
from sure_vqa.registry import Registry


@dataclass(frozen=True)
class DatasetReader:
    """How to read one raw dataset.

    read(dataset_dir) yields every QA record of every raw file (train, val, test), with `source` set to
    "train", "val" or "test", and categories set on every closed record (docs/method.md#datasets). `image_level_fields`
    are the shift fields fixed per image: for those, the ood records of the train file join the ood test
    split (docs/method.md#shifts-and-splits). `raw_files` are the files (relative to the dataset folder) that `read` reads: a split
    file is rebuilt when one of them changes. `shift_groups` maps a field to the ood_values that name a rule
    rather than a value (MIMIC age=young); `shift_exclusions` maps a field to the records removed from every
    split when it is the shift (MIMIC's gender questions under the gender shift).
    """

    name: str
    read: Callable[[Path], Iterable[QARecord]]
    image_level_fields: frozenset[str]
    description: str = ""
    raw_files: tuple[str, ...] = ()
    shift_groups: Mapping[str, Mapping[str, ShiftGroup]] = field(default_factory=dict)
    shift_exclusions: Mapping[str, Callable[[QARecord], bool]] = field(default_factory=dict)


REGISTRY: Registry[DatasetReader] = Registry("dataset", "sure_vqa.data.readers", "dataset")
register, get, names = REGISTRY.register, REGISTRY.get, REGISTRY.names
