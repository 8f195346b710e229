"""`sure-vqa splits build|list` (config/commands/splits.yaml; DATASET_ROOT_DIR from the environment or .env):

    sure-vqa splits build dataset=SLAKE data_shift=modality ood_value=X-Ray   every split file of the shift
    sure-vqa splits build dataset=MIMIC split=sample                         train/val/test of `sample`
    sure-vqa splits list dataset=SLAKE                                       shift fields, values, counts
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError, check_choice, is_unset, require_path
from sure_vqa.data import registry
from sure_vqa.data.records import CLOSED, QARecord
from sure_vqa.data.shifts import IID, OOD, Shift, count_sides, value_key
from sure_vqa.data.splits import DEFAULT_SAMPLE_SEED, DatasetSplits


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table; columns that hold only counts are right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(isinstance(row[i], int) or row[i] == "" for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(row, widths, numeric, strict=True)
        ).rstrip()
        for row in cells
    )


def build_shift_files(
    splits: DatasetSplits,
    split: str,
    data_shift: Any = None,
    ood_value: Any = None,
    seed: int = DEFAULT_SAMPLE_SEED,
) -> list[tuple[str, str, str, list[QARecord], bool]]:
    """Every split file of one shift (train/val/test iid and test ood) or of all/sample: (mod, split, name,
    records, built now)."""
    if split in (IID, OOD):
        wanted = [("train", IID), ("val", IID), ("test", IID), ("test", OOD)]
    else:
        check_choice(split, "split", naming.SPLITS)
        wanted = [(mod, split) for mod in naming.MODS]
    results = []
    for mod, kind in wanted:
        name, records, built = splits.split(mod, kind, data_shift, ood_value, seed)
        results.append((mod, kind, name, records, built))
    return results


def _print_build(dataset_root: Path, cfg: Any) -> None:
    ood_value = _plain(cfg.ood_value)
    splits = DatasetSplits(dataset_root, cfg.dataset)
    results = build_shift_files(splits, cfg.split, cfg.data_shift, ood_value, int(cfg.seed))
    rows = []
    for mod, kind, name, records, built in results:
        closed = sum(r.answer_type == CLOSED for r in records)
        from_train = sum(r.source == "train" for r in records) if mod == "test" else 0
        rows.append(
            [
                mod,
                kind,
                len(records),
                len(records) - closed,
                closed,
                from_train or "",
                "built" if built else "up to date",
                f"{name}.json",
            ]
        )
    where = naming.split_file(dataset_root, cfg.dataset, "x").parent
    shift = f" data_shift={cfg.data_shift} ood_value={ood_value}" if cfg.split in (IID, OOD) else ""
    print(f"{cfg.dataset}{shift} split={cfg.split} -> {where}")
    print(_table(["mod", "split", "questions", "open", "closed", "from train", "status", "file"], rows))
    if any(built for *_, built in results):  # the raw files were read now: what they held that was left out
        odd = getattr(splits.records(), "odd", None)
        if odd is not None and odd.counts:
            print("left out while reading (the warnings above name examples): "
                  + ", ".join(f"{kind} {n}" for kind, n in sorted(odd.counts.items())))


def _print_list(dataset_root: Path, dataset: str) -> None:
    splits = DatasetSplits(dataset_root, dataset)
    reader = splits.reader
    summary = splits.summary()
    sources = list(naming.MODS)
    total = Counter()
    for _, counts in summary["answer_type"]:
        total.update(counts)
    print(
        f"{dataset}: {sum(total.values())} questions ({', '.join(f'{s} {total[s]}' for s in sources)}); "
        f"{reader.description}"
    )
    images = splits.image_counts()
    rows = []
    for field, values in summary.items():
        joins = "yes" if field in reader.image_level_fields else "no"
        for index, (value, counts) in enumerate(values):
            shown = "(missing)" if value is None else str(value)
            label = [field, joins] if index == 0 else ["", ""]  # the field is named on its first row only
            per_image = images.get(field, {}).get("\0none" if value is None else value_key(value), {})
            cells = [f"{counts.get(s, 0)} ({per_image.get(s, 0)})" for s in sources]
            rows.append([*label, shown, *cells, sum(counts.values())])
    print("questions (images) per part of each value of each shift field:")
    print(_table(["data_shift", "train ood joins ood test", "ood_value", *sources, "total"], rows))
    for field, why in reader.unavailable_fields.items():
        print(f"{field}: not a shift of this copy: {why}")
    for field, groups in reader.shift_groups.items():
        if field not in summary:
            continue
        for group in groups.values():
            sides = count_sides(summary, Shift(data_shift=field, ood_value=group.name, group=group))
            iid = sum(side[IID] for side in sides.values())
            ood = sum(side[OOD] for side in sides.values())
            print(f"group {field}={group.name}: {group.description} ({iid} iid, {ood} ood questions)")
    for field in reader.shift_exclusions:
        print(f"under data_shift={field}, the questions about {field} are removed from every split")


def _dataset_root(cfg: Mapping[str, Any]) -> Path:
    if is_unset(cfg.get("dataset")):
        raise ConfigError(f"dataset is not set; valid values: {', '.join(registry.names())}")
    return require_path(cfg["paths"]["dataset_root"], "paths.dataset_root", "DATASET_ROOT_DIR")


def build_command(cfg: Mapping[str, Any]) -> None:
    """`sure-vqa splits build`: builds (or finds up to date) every split file of one shift, and tabulates them."""
    _print_build(_dataset_root(cfg), cfg)


def list_command(cfg: Mapping[str, Any]) -> None:
    """`sure-vqa splits list`: the shift fields of a dataset, their values and question counts per raw file."""
    _print_list(_dataset_root(cfg), cfg["dataset"])
