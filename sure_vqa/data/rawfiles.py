"""Reading the raw JSON files of a dataset, with errors that name the file, the entry and the field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sure_vqa.config import DataError
from sure_vqa.data.odd_records import OddRecords
from sure_vqa.data.records import CLOSED, OPEN, QARecord


def read_json(path: Path, hint: str = "") -> Any:
    """Parsed JSON of `path`; a missing or unparsable file is a DataError that says what to do (`hint`)."""
    if not path.is_file():
        raise DataError(f"{path} not found" + (f"; {hint}" if hint else ""))
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err})") from None


def read_rows(path: Path, required: Sequence[str], hint: str = "") -> list[dict[str, Any]]:
    """The entries of a raw question file: a JSON list of objects, each holding every `required` key."""
    rows = read_json(path, hint)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DataError(f"{path} must hold a JSON list with one object per question")
    for index, row in enumerate(rows):
        missing = [key for key in required if key not in row]
        if missing:
            raise DataError(
                f"{path}: entry {index} (qid {row.get('qid', row.get('idx'))!r}) lacks "
                f"{', '.join(missing)}; every entry needs {', '.join(required)}"
            )
    return rows


def question_rows(path: Path, required: Sequence[str], hint: str, odd: OddRecords,
                  id_key: str = "qid") -> list[dict[str, Any]]:
    """The entries of a raw question file that can become records; the others are counted in `odd` (an entry
    lacking a required key, without a question or an answer, or whose answer type is neither OPEN nor CLOSED)
    instead of aborting the dataset. A file that is not a JSON list of objects is still a DataError."""
    rows = read_json(path, hint)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DataError(f"{path} must hold a JSON list with one object per question")
    kept = []
    for index, row in enumerate(rows):
        qid = str(row.get(id_key, f"{path.name}#{index}"))
        missing = [key for key in required if key not in row]
        if missing:
            odd.add(f"lacks {', '.join(missing)}", qid)
        elif not str(row.get("question") or "").strip():
            odd.add("no question", qid)
        elif row.get("answer") is None or isinstance(row["answer"], dict | list) or not str(row["answer"]).strip():
            odd.add("no answer", qid)
        elif str(row.get("answer_type", "")).strip().upper() not in (OPEN, CLOSED):
            odd.add("answer type neither OPEN nor CLOSED", qid)
        else:
            kept.append(row)
    return kept


def repeated_ids(records: Sequence[QARecord], dataset: str) -> list[str]:
    """A note for each qid that two raw files share (they land in different splits, so no split file repeats it,
    but a result file names the question ambiguously)."""
    sources: dict[str, list[str]] = {}
    for record in records:
        sources.setdefault(record.qid, []).append(record.source)
    shared = [(qid, parts) for qid, parts in sources.items() if len(set(parts)) > 1]
    if not shared:
        return []
    examples = ", ".join(f"{qid} ({'/'.join(parts)})" for qid, parts in shared[:5])
    return [f"{dataset}: {len(shared)} {'qids occur' if len(shared) > 1 else 'qid occurs'} in more than one raw file, "
            f"e.g. {examples}"]


def scalar_text(value: Any) -> str:
    """A string or number as text, stripped; a whole number written as a float (2.0, as JSON, pandas and pyarrow
    may hold it) becomes "2". Shared by every reader (this one and sure_vqa.data.described)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def answer_text(row: dict[str, Any], path: Path, key: str = "answer") -> str:
    """The answer as a string: numbers in the JSON (SLAKE "How many ...": 2) become "2"."""
    value = row[key]
    if value is None or isinstance(value, dict | list):
        raise DataError(
            f"{path}: entry qid {row.get('qid')!r} has {key}={value!r}; it must be a string or number"
        )
    return scalar_text(value)


def answer_type(row: dict[str, Any], path: Path, key: str = "answer_type") -> str:
    value = str(row[key]).strip().upper()
    if value not in (OPEN, CLOSED):
        raise DataError(
            f"{path}: entry qid {row.get('qid')!r} has {key}={row[key]!r}; valid: {OPEN}, {CLOSED}"
        )
    return value


def json_rows_text(rows: Sequence[dict[str, Any]]) -> str:
    """A JSON list with one entry per line: valid JSON that stays small and readable (and diffs well)."""
    if not rows:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n"


def qa_record(row: dict[str, Any], path: Path, source: str, image_key: str, image_dir: str,
              shift_fields: Sequence[str]) -> QARecord:
    """A raw entry of a SLAKE-style file (SLAKE, OVQA, demo) as a record: the readers differ only in the key of
    the image name, the image folder and the shift fields."""
    return QARecord(
        qid=str(row["qid"]),
        image=f"{image_dir}/{row[image_key]}",
        img_name=str(row[image_key]),
        question=str(row["question"]).strip(),
        answer=answer_text(row, path),
        answer_type=answer_type(row, path),
        source=source,
        fields={key: row[key] for key in shift_fields if key in row},
    )
