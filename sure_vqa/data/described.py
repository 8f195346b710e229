"""Reading a dataset described by a dataset.yaml (sure_vqa.data.description) into QA records.

Rows come from JSON (a list of objects), JSON lines, CSV/TSV, parquet (read in batches with pyarrow, as the
hub's own loader does), a `datasets` save_to_disk folder, or the pickled lists PathVQA was released as (read
with an unpickler that builds nothing but lists, dicts, strings and numbers). An image is a file name relative
to `images`, or the hub's image struct {bytes, path}: its bytes are written once into the dataset folder under
a name made of their sha256 (images/<hash>.<ext>) and read like any image file after that.

Odd rows never abort a dataset: a row without a question or an answer, an image that is missing or cannot be
decoded, a duplicated qid, an answer type that is neither OPEN nor CLOSED, a part value not listed are left out
and counted (`OddRecords`), with one warning line per kind and up to five example ids; a part with no question
is warned about too. A column that the description names and the data lacks is an error (exit 2) that lists the
columns there are.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import pickle
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sure_vqa.config import ConfigError, DataError
from sure_vqa.data.categories import derive_categories, normalise_yes_no
from sure_vqa.data.description import FORMAT_OF_SUFFIX, PARTS, DatasetDescription
from sure_vqa.data.odd_records import OddRecords, ReadRecords
from sure_vqa.data.rawfiles import scalar_text
from sure_vqa.data.records import CLOSED, OPEN, QARecord

IMAGE_STORE = "images"  # where image bytes are written, inside the dataset folder
PARQUET_BATCH_ROWS = 1024  # rows decoded at once: memory stays that of one batch of images


# --- rows from files ----------------------------------------------------------------------------------------


class _PlainUnpickler(pickle.Unpickler):
    """Builds lists, dicts, tuples, strings and numbers only: a pickle that asks for anything else (a class, a
    function, which is how a pickle runs code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise DataError(f"the pickle asks for {module}.{name}; only plain lists, dicts, strings and numbers are read")


def _format_of(path: Path, given: str | None) -> str:
    if given:
        return given
    if path.is_dir():
        return "hf_disk"
    fmt = FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"dataset.yaml: the format of {path.name} is not known from its ending; set format: to one "
                          f"of {', '.join(sorted(set(FORMAT_OF_SUFFIX.values()) | {'hf_disk'}))}")
    return fmt


def _rows(path: Path, fmt: str, image_column: str) -> Iterator[dict[str, Any]]:
    """The rows of one file (or save_to_disk folder) as dicts, in file order."""
    if fmt in ("json", "jsonl"):
        with path.open(encoding="utf-8") as handle:
            if fmt == "jsonl":
                rows = [json.loads(line) for line in handle if line.strip()]
            else:
                rows = json.load(handle)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DataError(f"{path} must hold a list of objects, one per question")
        yield from rows
    elif fmt in ("csv", "tsv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from csv.DictReader(handle, delimiter="\t" if fmt == "tsv" else ",")
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yield from batch.to_pylist()
    elif fmt == "hf_disk":
        import datasets

        table = datasets.load_from_disk(str(path))
        if isinstance(table, datasets.DatasetDict):
            raise ConfigError(f"dataset.yaml: {path} holds several splits ({', '.join(table)}); name each split's "
                              f"folder in parts (e.g. parts: {{train: {path.name}/train}})")
        if image_column in table.column_names and isinstance(table.features[image_column], datasets.Image):
            table = table.cast_column(image_column, datasets.Image(decode=False))  # {bytes, path}, not decoded
        for start in range(0, len(table), PARQUET_BATCH_ROWS):
            batch = table[start:start + PARQUET_BATCH_ROWS]
            yield from ({name: batch[name][i] for name in batch} for i in range(len(next(iter(batch.values())))))
    elif fmt == "pickle":
        with path.open("rb") as handle:
            rows = _PlainUnpickler(handle).load()
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DataError(f"{path} must hold a list of dicts, one per question")
        yield from rows
    else:  # checked by the description
        raise ConfigError(f"format {fmt!r} is not known")


def part_paths(dataset_dir: Path, pattern: str) -> list[Path]:
    """The files a part's path or glob names, sorted (the hub's shards in order)."""
    if any(char in pattern for char in "*?["):
        return sorted(Path(p) for p in glob.glob(str(dataset_dir / pattern)))
    return [dataset_dir / pattern]


def raw_files(dataset_dir: Path, description: DatasetDescription) -> tuple[str, ...]:
    """The files a read depends on (relative to the dataset folder), for the split files' fingerprints."""
    files: list[str] = []
    for pattern in dict.fromkeys(description.part_files().values()):
        for path in part_paths(dataset_dir, pattern):
            inside = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            files += [str(p.relative_to(dataset_dir)) for p in inside]
    return tuple(files)


# --- rows to records ----------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A cell as text; None for an empty cell (None, NaN, "", a list or mapping)."""
    if value is None or isinstance(value, Mapping):
        return None
    if isinstance(value, list | tuple):  # the answer-list rule: the first answer (the hub's lists of answers)
        return _text(value[0]) if value else None
    if isinstance(value, float) and value != value:  # NaN: pandas' and pyarrow's empty cell
        return None
    return scalar_text(value) or None


def _image_suffix(data: bytes, name: str | None) -> str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            fmt = image.format
    except Exception:  # noqa: BLE001 - PIL raises many kinds for a file it cannot decode
        raise ValueError("cannot be decoded") from None
    by_format = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}
    return by_format.get(fmt or "", Path(name or "").suffix.lower() or ".img")


def _stored_image(dataset_dir: Path, data: bytes, name: str | None, stored: dict[str, str]) -> str:
    """Image bytes written once under their content's name; the path relative to the dataset folder. `stored`
    maps the names already in images/ (stem -> file name), listed once per read."""
    from sure_vqa.atomic_io import write_bytes_atomic

    stem = hashlib.sha256(data).hexdigest()[:24]
    if stem not in stored:
        target = dataset_dir / IMAGE_STORE / f"{stem}{_image_suffix(data, name)}"
        write_bytes_atomic(target, data)
        stored[stem] = target.name
    return f"{IMAGE_STORE}/{stored[stem]}"


def derived_qid(part: str, position: int, question: str) -> str:
    """The id of a row without one: its part, its position in the part's files (every row counted, in order)
    and the start of its question's sha1, so that it stays the same when the files are read again."""
    return f"{part}-{position}-{hashlib.sha1(question.encode('utf-8')).hexdigest()[:8]}"


def _check_columns(path: Path, row: Mapping[str, Any], description: DatasetDescription) -> None:
    """Every column the description names exists in the file (checked on its first row)."""
    columns = description.columns
    named = {"columns.question": columns.question, "columns.answer": columns.answer, "columns.image": columns.image,
             "columns.qid": columns.qid, "columns.answer_type": columns.answer_type,
             "part_column": description.part_column, "question_type_field": description.question_type_field,
             **{f"filter.{key}": key for key in (description.filter or {})},
             **{f"shift_fields ({name})": name for name in description.shift_fields}}
    for key, column in named.items():
        if column is not None and column not in row:
            raise ConfigError(f"dataset.yaml: {key} names the column {column!r}, which {path.name} lacks; its columns: "
                              f"{', '.join(map(str, row))}")


def _answer_type(row: Mapping[str, Any], answer: str, description: DatasetDescription) -> str | None:
    if description.columns.answer_type is not None:
        value = (_text(row.get(description.columns.answer_type)) or "").upper()
        return value if value in (OPEN, CLOSED) else None
    return CLOSED if normalise_yes_no(answer) is not None else OPEN  # answer_type_rule: yes_no


def _kept(row: Mapping[str, Any], description: DatasetDescription) -> bool:
    for column, allowed in (description.filter or {}).items():
        values = allowed if isinstance(allowed, list | tuple) else [allowed]
        if str(row.get(column)).strip() not in {str(v).strip() for v in values}:
            return False
    return True


def _file_rows(path: Path, description: DatasetDescription,
               files_read: dict[str, list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """The rows of one file, streamed (memory: one parquet batch); a file that a part column splits is kept after
    its first read, since every part reads it."""
    fmt = _format_of(path, description.format)
    rows = _rows(path, fmt, description.columns.image)
    if description.part_column is None:
        return rows
    key = str(path)
    if key not in files_read:
        files_read[key] = list(rows)
    return iter(files_read[key])


def read_described(dataset_dir: Path, description: DatasetDescription, dataset: str) -> ReadRecords:
    """Every kept row of every part as a record (source train/val/test), closed questions with categories."""
    if description.columns.answer_type is None and description.answer_type_rule is None:
        raise ConfigError(f"{dataset_dir / 'dataset.yaml'}: the data has no answer type column; give "
                          "columns.answer_type, or answer_type_rule: yes_no (answers yes/no are CLOSED)")
    odd, warnings = OddRecords(), []
    records: list[QARecord] = []
    seen: set[str] = set()
    filtered = Counter()
    image_dir = description.images
    files_read: dict[str, list[dict[str, Any]]] = {}
    store = dataset_dir / IMAGE_STORE
    stored = {path.stem: path.name for path in store.iterdir() if not path.name.startswith(".")} if store.is_dir() else {}
    for part, pattern in description.part_files().items():
        paths = part_paths(dataset_dir, pattern)
        if not paths or not all(p.exists() for p in paths):
            raise DataError(f"{dataset_dir / pattern} not found; dataset.yaml's parts.{part} (or file) names it")
        position, kept_before = 0, len(records)
        for path in paths:
            for index, row in enumerate(_file_rows(path, description, files_read)):
                if index == 0:
                    _check_columns(path, row, description)
                if description.part_column is not None:
                    if str(row.get(description.part_column)).strip() not in getattr(description.part_values, part):
                        continue
                position += 1
                if not _kept(row, description):
                    filtered[part] += 1
                    continue
                record = _record(row, part, position - 1, dataset_dir, description, image_dir, odd, stored)
                if record is None:
                    continue
                if record.qid in seen:
                    odd.add("duplicated qid", record.qid)
                    continue
                seen.add(record.qid)
                records.append(record)
        if len(records) == kept_before:
            warnings.append(f"{dataset}: the {part} part has no question ({pattern})")
    if description.part_column is not None:
        listed = {v for name in PARTS for v in getattr(description.part_values, name)}
        for rows in files_read.values():
            for row in rows:
                if str(row.get(description.part_column)).strip() not in listed:
                    odd.add(f"{description.part_column} not in part_values", str(row.get(description.columns.qid)
                                                                              if description.columns.qid else "?"))
    for part, n in sorted(filtered.items()):
        warnings.append(f"{dataset}: {n} {part} rows not kept by the filter ({description.filter})")
    return ReadRecords(derive_categories(records, description.question_type_field), odd, warnings, dataset)


def _record(row: Mapping[str, Any], part: str, position: int, dataset_dir: Path, description: DatasetDescription,
            image_dir: str | None, odd: OddRecords, stored: dict[str, str]) -> QARecord | None:
    columns = description.columns
    question = _text(row.get(columns.question))
    qid = _text(row.get(columns.qid)) if columns.qid else None
    if qid is None:
        qid = derived_qid(part, position, question or "")
    if question is None:
        odd.add("no question", qid)
        return None
    answer = _text(row.get(columns.answer))
    if answer is None:
        odd.add("no answer", qid)
        return None
    answer_type = _answer_type(row, answer, description)
    if answer_type is None:
        odd.add("answer type neither OPEN nor CLOSED", qid)
        return None
    value = row.get(columns.image)
    try:
        if isinstance(value, Mapping) and value.get("bytes"):
            image = _stored_image(dataset_dir, bytes(value["bytes"]), value.get("path"), stored)
            img_name = str(value.get("path") or Path(image).name)
        else:
            name = _text(value.get("path") if isinstance(value, Mapping) else value)
            if name is None:
                odd.add("no image", qid)
                return None
            img_name = name  # the dataset's own name of the image (written to test_results.json)
            name = description.image_pattern.format(image=name, part=part)
            image = f"{image_dir}/{name}" if image_dir else name
            if not (dataset_dir / image).is_file():
                odd.add("image not found", qid)
                return None
    except ValueError:
        odd.add("image cannot be decoded", qid)
        return None
    fields = {name: row.get(name) for name in description.shift_fields if name in row}
    if description.question_type_field and description.question_type_field not in fields:
        fields[description.question_type_field] = row.get(description.question_type_field)
    return QARecord(qid=qid, image=image, img_name=img_name, question=question, answer=answer,
                    answer_type=answer_type, source=part, fields=fields)
