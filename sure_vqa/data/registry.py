"""Dataset readers behind one registry: a dataset is a `dataset.yaml` beside its data (sure_vqa.data.description,
docs/data.md#dataset-yaml), a built-in description (VQA-RAD, PathVQA: readers/described_builtin.py), or a Python
reader module in sure_vqa/data/readers/ that calls `register` (SLAKE, OVQA, MIMIC; readers/slake.py also
registers "demo", which is in SLAKE's raw format). `reader_for` finds the one for a dataset folder."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sure_vqa.config import ConfigError
from sure_vqa.data.description import DESCRIPTION_FILE, DatasetDescription, read_description
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
    split when it is the shift (MIMIC's gender questions under the gender shift). `shift_fields` are the fields a
    shift can use (the report reads them back out of split names); `unavailable_fields` the fields the dataset
    is known for that this copy lacks, with the reason (`sure-vqa splits list` says it). `for_folder` gives the
    reader of one folder when that depends on its files (a dataset published in several layouts).
    """

    name: str
    read: Callable[[Path], Iterable[QARecord]]
    image_level_fields: frozenset[str]
    description: str = ""
    raw_files: tuple[str, ...] = ()
    shift_groups: Mapping[str, Mapping[str, ShiftGroup]] = field(default_factory=dict)
    shift_exclusions: Mapping[str, Callable[[QARecord], bool]] = field(default_factory=dict)
    shift_fields: tuple[str, ...] = ()
    unavailable_fields: Mapping[str, str] = field(default_factory=dict)
    for_folder: Callable[[Path], DatasetReader] | None = None


REGISTRY: Registry[DatasetReader] = Registry("dataset", "sure_vqa.data.readers", "dataset")
register, get, names = REGISTRY.register, REGISTRY.get, REGISTRY.names


def described_reader(name: str, dataset_dir: Path, description: DatasetDescription,
                     own_file: bool = False) -> DatasetReader:
    """The reader of a folder that a description describes: its own dataset.yaml (`own_file`: a split file is
    rebuilt when the description changes too), or a built-in one (a change to it bumps SPLIT_RULES_VERSION)."""
    from sure_vqa.data.described import raw_files, read_described

    return DatasetReader(
        name=name, read=lambda folder: read_described(folder, description, name),
        image_level_fields=frozenset(description.image_level_fields), description=description.description,
        raw_files=(*raw_files(dataset_dir, description), *((DESCRIPTION_FILE,) if own_file else ())),
        shift_fields=description.shift_fields,
        unavailable_fields=dict(description.unavailable_fields or {}))


def reader_for(dataset_root: str | Path, dataset: str) -> DatasetReader:
    """The reader of `{dataset_root}/{dataset}`: its dataset.yaml when it has one (it wins over a built-in
    description), else the registered dataset of that name (for a published layout, the one the folder holds)."""
    folder = Path(dataset_root) / dataset
    own = folder / DESCRIPTION_FILE
    if own.is_file():
        return described_reader(dataset, folder, read_description(own), own_file=True)
    try:
        entry = get(dataset)
    except ConfigError as err:
        raise ConfigError(f"{err}; or describe the dataset in {own} (docs/data.md#dataset-yaml)") from None
    return entry.for_folder(folder) if entry.for_folder is not None and folder.is_dir() else entry


def known_shift_fields(dataset_root: str | Path | None = None) -> tuple[str, ...]:
    """Every registered dataset's shift fields, and with `dataset_root` those of each dataset.yaml there: names are
    read back with them (sure_vqa.runs.parse_run_name; a field they do not know is guessed from its case)."""
    from sure_vqa.data.shifts import RECORD_ATTRIBUTE_FIELDS

    fields = {*RECORD_ATTRIBUTE_FIELDS, *(name for entry in REGISTRY for name in entry.shift_fields)}
    for path in sorted(Path(dataset_root).expanduser().glob(f"*/{DESCRIPTION_FILE}")) if dataset_root else ():
        try:
            fields.update(read_description(path).shift_fields)
        except ConfigError:
            continue  # a description that is not valid is reported where the dataset is used
    return tuple(sorted(fields))
