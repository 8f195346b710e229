"""Split files (docs/method.md#shifts-and-splits): the records of one split of one shift, written once and rebuilt when stale.

`split_records(...)` is what every stage calls: it validates the shift, builds
`{DATASET_ROOT_DIR}/{dataset}/split_files/{split name}.json` when it is missing or stale, and returns its
records. A split file is stale when a raw file's content changed, when SPLIT_RULES_VERSION changed, or when it
was built with other arguments (split_store.py keeps the files and what each was built from; a file SURE-VQA
did not write is kept in `split_files/.backup/` before it is rebuilt).

Which records a split holds: split_rules.py (train and val always iid; the ood test split of an image-level
shift adds the train file's ood records; `all`; a seeded `sample`); which records are ood: shifts.py.

`sure-vqa splits build|list` (sure_vqa.data.split_commands) builds and lists them from the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.atomic_io import file_sha256, write_json_atomic
from sure_vqa.config import (
    ConfigError,
    DataError,
    check_choice,
)
from sure_vqa.data import registry
from sure_vqa.data.records import QARecord
from sure_vqa.data.registry import DatasetReader
from sure_vqa.data.shifts import (
    IID,
    OOD,
    FieldSummary,
    Shift,
    as_value_list,
    resolve_shift,
    summarise,
    summarise_images,
)
from sure_vqa.data.split_rules import (
    DEFAULT_SAMPLE_SEED,
    SAMPLE_RULE,
    SAMPLE_SIZES,
    check_unique_ids,
    sample_positions,
    select_records,
)
from sure_vqa.data.split_store import SplitFileStore, file_state, input_hashes, read_record

# Re-exported: the split rules' names that callers (tests, the MIMIC preparation) take from here.
__all__ = ["DEFAULT_SAMPLE_SEED", "SAMPLE_SIZES", "DatasetSplits", "check_shift", "limit_records",
           "record_image_path", "sample_positions", "select_records", "split_records"]

# Bump when a reader, the answer categories or a shift rule changes what a split file holds: every split file
# built before is then rebuilt on its next use.
SPLIT_RULES_VERSION = 1


class DatasetSplits:
    """One dataset's raw files, read at most once, and the split files built from them."""

    def __init__(self, dataset_root: str | Path, dataset: str) -> None:
        self.reader: DatasetReader = registry.reader_for(dataset_root, dataset)
        self.dataset_root = Path(dataset_root)
        self.dataset = dataset
        self.dataset_dir = naming.dataset_dir(dataset_root, dataset)
        if not self.dataset_dir.is_dir():
            raise DataError(
                f"{self.dataset_dir} does not exist; the {dataset} folder must be at "
                f"DATASET_ROOT_DIR/{dataset} (see docs/data.md)"
            )
        self._records: list[QARecord] | None = None
        self._inputs: list[dict[str, Any]] | None = None
        self._images: dict[str, dict[str, dict[str, int]]] = {}
        self.store = SplitFileStore(self.dataset_root, dataset, SPLIT_RULES_VERSION, self.inputs, self._unchanged)

    def records(self) -> list[QARecord]:
        if self._records is None:
            read = self.reader.read(self.dataset_dir)
            # a described dataset's records carry what was left out (`odd`), which the split summary reports
            self._records = read if isinstance(read, list) else list(read)
        return self._records

    def inputs(self, previous: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Size, mtime and sha256 of each raw file; a file whose size and mtime match `previous` isn't re-hashed."""
        if self._inputs is None:
            known = {entry["file"]: entry for entry in previous or ()}
            inputs = []
            for name in self.reader.raw_files:
                path = self.dataset_dir / name
                if not path.is_file():
                    inputs.append({"file": name, "sha256": None})
                    continue
                state = file_state(path)
                old = known.get(name, {})
                same = old.get("size") == state["size"] and old.get("mtime_ns") == state["mtime_ns"]
                inputs.append({"file": name, **state, "sha256": old["sha256"] if same else file_sha256(path)})
            self._inputs = inputs
        return self._inputs

    def _unchanged(self, recorded: dict[str, Any] | None) -> bool:
        if not recorded or recorded.get("version") != SPLIT_RULES_VERSION or not self.reader.raw_files:
            return False
        inputs = self.inputs(recorded.get("inputs"))
        return all(sha is not None for _, sha in input_hashes(inputs)) and input_hashes(inputs) == input_hashes(
            recorded.get("inputs", ())
        )

    def summary(self) -> FieldSummary:
        """Every shift field with its values and their counts per raw file (cached until a raw file changes)."""
        path = naming.shift_fields_file(self.dataset_root, self.dataset)
        cached = read_record(path)
        if self._unchanged(cached) and "images" in cached:
            if cached["inputs"] != self.inputs():  # only mtimes changed: remember them, so no re-hashing
                write_json_atomic(path, {**cached, "inputs": self.inputs()})
            self._images = cached["images"]
            return {
                field: [(value, counts) for value, counts in values]
                for field, values in cached["summary"].items()
            }
        summary = summarise(self.records())
        self._images = summarise_images(self.records())
        write_json_atomic(
            path,
            {
                "version": SPLIT_RULES_VERSION,
                "dataset": self.dataset,
                "inputs": self.inputs(),
                "summary": {f: [[v, c] for v, c in values] for f, values in summary.items()},
                "images": self._images,
            },
        )
        return summary

    def image_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """field -> value (as text; "\\0none" for a missing one) -> part -> distinct images (with `summary`)."""
        self.summary()
        return self._images

    def shift(self, data_shift: Any, ood_value: Any) -> Shift:
        return resolve_shift(
            self.dataset,
            self.summary(),
            data_shift,
            ood_value,
            self.reader.shift_groups,
            self.reader.shift_exclusions,
            self.reader.image_level_fields,
        )

    def split(
        self,
        mod: str,
        split: str,
        data_shift: Any = None,
        ood_value: Any = None,
        seed: int = DEFAULT_SAMPLE_SEED,
    ) -> tuple[str, list[QARecord], bool]:
        """(split name, records, whether the file was (re)built now)."""
        check_choice(mod, "mod", naming.MODS)
        check_choice(split, "split", naming.SPLITS)
        shift = None
        if split in (IID, OOD):
            if split == OOD and mod != "test":
                raise ConfigError(
                    f"split=ood with mod={mod} is not valid: train and val splits are always iid "
                    "(docs/method.md#shifts-and-splits); use split=iid, all or sample"
                )
            shift = self.shift(data_shift, ood_value)
            ood_value = (
                as_value_list(ood_value) if not isinstance(ood_value, str | int | float) else ood_value
            )
            name = naming.split_name(self.dataset, mod, split, data_shift, ood_value)
        else:
            name = naming.split_name(self.dataset, mod, split)
        arguments = {
            "dataset": self.dataset,
            "mod": mod,
            "split": split,
            "data_shift": shift.data_shift if shift else None,
            "ood": (shift.group.name if shift.group else sorted(shift.ood_values)) if shift else None,
            # "rule" names how the sample is drawn, so that files drawn by an earlier rule are rebuilt
            "sample": ({"seed": int(seed), "size": SAMPLE_SIZES[mod], "rule": SAMPLE_RULE}
                       if split == "sample" else None),
        }
        cached = self.store.cached(name, arguments)
        if cached is not None:
            return name, cached, False
        records = select_records(self.records(), mod, split, shift, seed)
        check_unique_ids(records, name)
        self.store.write(name, records, arguments)
        return name, records, True


# --- the API other stages call ------------------------------------------------------------------


def split_records(
    dataset_root: Path,
    dataset: str,
    mod: str,
    split: str,
    data_shift: str | None = None,
    ood_value: Any = None,
    seed: int = DEFAULT_SAMPLE_SEED,
) -> list[QARecord]:
    """The records of one split, building its split file if it is missing or stale (docs/method.md#shifts-and-splits).

    `seed` only seeds split=sample (the data seed, 123 in the study; not the training seed). Raises
    ConfigError for an unknown dataset, mod or split, a data_shift the records lack or an ood_value that
    matches none, and DataError for a missing or malformed raw file.
    """
    _, records, _ = DatasetSplits(dataset_root, dataset).split(mod, split, data_shift, ood_value, seed)
    return records


def check_shift(dataset_root: Path, dataset: str, data_shift: str | None, ood_value: Any) -> Shift:
    """Start-up validation of a shift against the dataset's records (cached, so it is fast after the first run)."""
    return DatasetSplits(dataset_root, dataset).shift(data_shift, ood_value)


def limit_records(records: Sequence[QARecord], max_samples: int | None) -> list[QARecord]:
    """At most `max_samples` records, evenly spaced over the split (the demo and smoke tests answer a part of a
    split; the first N would often be questions about one image). None keeps them all."""
    if max_samples is None or max_samples >= len(records):
        return list(records)
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ConfigError(f"max_samples={max_samples!r} is not valid; it must be null or an integer >= 1")
    return [records[i * len(records) // max_samples] for i in range(max_samples)]


def record_image_path(dataset_root: Path, dataset: str, record: QARecord) -> Path:
    """The image of a record: `{DATASET_ROOT_DIR}/{dataset}/{record.image}` (existence is checked on loading)."""
    if dataset not in registry.names():
        registry.reader_for(dataset_root, dataset)  # a dataset.yaml there, or the error that names the dataset
    return naming.dataset_dir(dataset_root, dataset) / record.image
