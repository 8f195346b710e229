"""The one QA record type that every dataset reader produces and every split file stores."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

OPEN = "OPEN"
CLOSED = "CLOSED"


@dataclass(frozen=True)
class QARecord:
    """One question about one image, as every later stage sees it.

    `image` is relative to the dataset folder (`{DATASET_ROOT_DIR}/{dataset}`) so that split files stay valid
    when the data moves; `img_name` is the dataset's own name for the image (written to test_results.json).
    `fields` holds the attributes a shift can use (modality, location, content_type, age, ...).
    `categories` are the answer options of a closed question (docs/method.md#datasets), None for open questions.
    `source` is the raw file the record came from (train, validate/valid, test).
    """

    qid: str
    image: str
    img_name: str
    question: str
    answer: str
    answer_type: str
    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    categories: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """A split-file row: `id` plus the record; the shift fields are also flattened to the top level."""
        # Built field by field rather than with dataclasses.asdict, whose deep copies made writing a large split
        # file (MIMIC: 10^5 rows) take seconds; the rows are the same.
        row: dict[str, Any] = {"id": self.qid}
        for item in dataclass_fields(self):
            if item.name != "qid":
                value = getattr(self, item.name)
                row[item.name] = value.copy() if isinstance(value, dict | list) else value
        for key, value in self.fields.items():
            row.setdefault(key, value)
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> QARecord:
        return cls(
            qid=str(row["id"]),
            image=row["image"],
            img_name=row["img_name"],
            question=row["question"],
            answer=str(row["answer"]),
            answer_type=row["answer_type"],
            source=row.get("source", ""),
            fields=dict(row.get("fields", {})),
            categories=row.get("categories"),
        )


def records_digest(records: Sequence[QARecord]) -> str:
    """A hash of what a model is asked (qid, question, answer, image, categories), in split order: inference
    records it with its answers, and the report compares it with the split file as it is now."""
    digest = hashlib.sha256()
    for record in records:
        row = [record.qid, record.question, record.answer, record.answer_type, record.image, record.categories]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()
