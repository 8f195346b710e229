"""Split files (docs/method.md#shifts-and-splits): the records of one split of one shift, written once and rebuilt when stale.

`split_records(...)` is what every stage calls: it validates the shift, builds
`{DATASET_ROOT_DIR}/{dataset}/split_files/{split name}.json` when it is missing or stale, and returns its
records. A split file is stale when a raw file's content changed, when SPLIT_RULES_VERSION changed, or when it
was built with other arguments; a fingerprint beside it (`split_files/.cache/`) records what it was built from.
A split file that SURE-VQA did not write, or that was edited, is moved to `split_files/.backup/` before it is
rebuilt, so nothing is lost.

Rules: train and val splits are always iid; SLAKE and OVQA shifts on an image-level field add the train file's
ood records to the ood test split; `all` is a whole file; `sample` a seeded random subset of a file (20,000
train, 5,000 val/test questions, or the whole file if it is smaller). The shift rules themselves are in shifts.py.

`sure-vqa splits build|list` (sure_vqa.data.split_commands) builds and lists them from the command line.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sure_vqa import naming
from sure_vqa.atomic_io import file_sha256, write_bytes_atomic, write_json_atomic
from sure_vqa.config import (
    ConfigError,
    DataError,
    check_choice,
)
from sure_vqa.data import registry
from sure_vqa.data.rawfiles import json_rows_text
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
)

# Bump when a reader, the answer categories or a shift rule changes what a split file holds: every split file
# built before is then rebuilt on its next use.
SPLIT_RULES_VERSION = 1
SAMPLE_SIZES = {"train": 20_000, "val": 5_000, "test": 5_000}
DEFAULT_SAMPLE_SEED = 123


def _file_state(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_record(path: Path) -> dict[str, Any] | None:
    """A fingerprint or cache file, or None if it is missing or unreadable (it is then rebuilt)."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _hashes(inputs: Sequence[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(entry["file"], entry.get("sha256")) for entry in inputs]


SAMPLE_RULE = "pandas-DataFrame.sample"


def sample_positions(n: int, size: int, seed: int) -> list[int]:
    """The positions (in file order) of split=sample's questions, the ones the original selects.

    The original draws the sample with pandas `DataFrame.sample(size, random_state=seed)` on the file as read;
    pandas takes the first `size` entries of `numpy.random.RandomState(seed).permutation(n)` (docs/data.md). A
    file with fewer than `size` questions is taken whole.
    """
    if size >= n:
        return list(range(n))
    return sorted(int(i) for i in np.random.RandomState(seed).permutation(n)[:size])


def select_records(
    records: Sequence[QARecord],
    mod: str,
    split: str,
    shift: Shift | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
) -> list[QARecord]:
    """The records of one split, in raw-file order (the ood test split: test file, then train file)."""
    in_mod = [r for r in records if r.source == mod]
    if split == "all":
        return in_mod
    if split == "sample":
        return [in_mod[i] for i in sample_positions(len(in_mod), SAMPLE_SIZES[mod], seed)]
    if shift is None:
        raise ConfigError(f"split={split} needs data_shift and ood_value")
    selected = [r for r in in_mod if shift.side(r) == split]
    if mod == "test" and split == OOD and shift.image_level:
        selected += [r for r in records if r.source == "train" and shift.side(r) == OOD]
    return selected


def _check_unique_ids(records: Sequence[QARecord], name: str) -> None:
    counts = Counter(r.qid for r in records)
    repeated = [qid for qid, n in counts.items() if n > 1]
    if repeated:
        sources = sorted({r.source for r in records if r.qid == repeated[0]})
        raise DataError(
            f"qid {repeated[0]!r} occurs {counts[repeated[0]]} times in split {name} (raw files: "
            f"{', '.join(sources)}); qids must be unique within a split ({len(repeated)} repeated)"
        )


class DatasetSplits:
    """One dataset's raw files, read at most once, and the split files built from them."""

    def __init__(self, dataset_root: str | Path, dataset: str) -> None:
        self.reader: DatasetReader = registry.get(dataset)
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

    def records(self) -> list[QARecord]:
        if self._records is None:
            self._records = list(self.reader.read(self.dataset_dir))
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
                state = _file_state(path)
                old = known.get(name, {})
                same = old.get("size") == state["size"] and old.get("mtime_ns") == state["mtime_ns"]
                inputs.append({"file": name, **state, "sha256": old["sha256"] if same else file_sha256(path)})
            self._inputs = inputs
        return self._inputs

    def _unchanged(self, recorded: dict[str, Any] | None) -> bool:
        if not recorded or recorded.get("version") != SPLIT_RULES_VERSION or not self.reader.raw_files:
            return False
        inputs = self.inputs(recorded.get("inputs"))
        return all(sha is not None for _, sha in _hashes(inputs)) and _hashes(inputs) == _hashes(
            recorded.get("inputs", ())
        )

    def summary(self) -> FieldSummary:
        """Every shift field with its values and their counts per raw file (cached until a raw file changes)."""
        path = naming.shift_fields_file(self.dataset_root, self.dataset)
        cached = _read_record(path)
        if self._unchanged(cached):
            if cached["inputs"] != self.inputs():  # only mtimes changed: remember them, so no re-hashing
                write_json_atomic(path, {**cached, "inputs": self.inputs()})
            return {
                field: [(value, counts) for value, counts in values]
                for field, values in cached["summary"].items()
            }
        summary = summarise(self.records())
        write_json_atomic(
            path,
            {
                "version": SPLIT_RULES_VERSION,
                "dataset": self.dataset,
                "inputs": self.inputs(),
                "summary": {f: [[v, c] for v, c in values] for f, values in summary.items()},
            },
        )
        return summary

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
        path = naming.split_file(self.dataset_root, self.dataset, name)
        fingerprint_path = naming.split_fingerprint_file(self.dataset_root, self.dataset, name)
        recorded = _read_record(fingerprint_path)
        ours = path.is_file() and recorded is not None and self._is_recorded_output(path, recorded)
        if ours and recorded.get("arguments") == arguments and self._unchanged(recorded):
            if (
                recorded["inputs"] != self.inputs()
                or recorded["output"]["mtime_ns"] != _file_state(path)["mtime_ns"]
            ):
                write_json_atomic(
                    fingerprint_path,
                    {
                        **recorded,
                        "inputs": self.inputs(),
                        "output": {**_file_state(path), "sha256": file_sha256(path)},
                    },
                )
            return name, self._read_split(path), False
        if path.exists() and not ours:
            self._back_up(path, name)
        records = select_records(self.records(), mod, split, shift, seed)
        _check_unique_ids(records, name)
        content = json_rows_text([record.to_json() for record in records]).encode("utf-8")
        write_bytes_atomic(path, content)
        write_json_atomic(
            fingerprint_path,
            {
                "version": SPLIT_RULES_VERSION,
                "arguments": arguments,
                "inputs": self.inputs(),
                "output": {**_file_state(path), "sha256": hashlib.sha256(content).hexdigest()},
            },
        )
        return name, records, True

    @staticmethod
    def _is_recorded_output(path: Path, recorded: dict[str, Any]) -> bool:
        output = recorded.get("output") or {}
        state = _file_state(path)
        if output.get("size") != state["size"]:
            return False
        return output.get("mtime_ns") == state["mtime_ns"] or output.get("sha256") == file_sha256(path)

    def _back_up(self, path: Path, name: str) -> None:
        backup = naming.split_backup_file(self.dataset_root, self.dataset, name, file_sha256(path)[:12])
        if not backup.exists():
            write_bytes_atomic(backup, path.read_bytes())
        print(
            f"note: {path} was not written by SURE-VQA or was edited; kept a copy at {backup}",
            file=sys.stderr,
        )

    @staticmethod
    def _read_split(path: Path) -> list[QARecord]:
        with path.open(encoding="utf-8") as handle:
            rows = json.load(handle)
        return [QARecord.from_json(row) for row in rows]


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
    registry.get(dataset)
    return naming.dataset_dir(dataset_root, dataset) / record.image
