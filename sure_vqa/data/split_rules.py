"""Which records a split holds (docs/method.md#shifts-and-splits): train and val splits are always iid; a shift
on an image-level field adds the train file's ood records to the ood test split (SLAKE, OVQA); `all` is a whole
file; `sample` a seeded random subset of a file, drawn as the original draws it. The shift rules themselves
(which records are ood) are in shifts.py; the files these records are written to, in split_store.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from sure_vqa.config import ConfigError, DataError
from sure_vqa.data.records import QARecord
from sure_vqa.data.shifts import OOD, Shift

SAMPLE_SIZES = {"train": 20_000, "val": 5_000, "test": 5_000}
DEFAULT_SAMPLE_SEED = 123


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


def check_unique_ids(records: Sequence[QARecord], name: str) -> None:
    counts = Counter(r.qid for r in records)
    repeated = [qid for qid, n in counts.items() if n > 1]
    if repeated:
        sources = sorted({r.source for r in records if r.qid == repeated[0]})
        raise DataError(
            f"qid {repeated[0]!r} occurs {counts[repeated[0]]} times in split {name} (raw files: "
            f"{', '.join(sources)}); qids must be unique within a split ({len(repeated)} repeated)"
        )
