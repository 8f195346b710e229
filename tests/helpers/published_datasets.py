"""Tiny datasets laid out exactly as their publishers ship them (file names, field names, value vocabularies,
the hub's parquet schema), with tiny real images: what a researcher puts into DATASET_ROOT_DIR.

- VQA-RAD as released on OSF: "VQA_RAD Dataset Public.json" (a JSON list; fields qid, image_name, image_organ,
  answer, answer_type, question_type, question, phrase_type, qid_linked_id, evaluation, question_rephrase,
  question_frame) and "VQA_RAD Image Folder/".
- The Hugging Face hub's parquet layout (flaviagiammarino/vqa-rad, path-vqa): data/{split}-00000-of-00001-{hash}.parquet
  with an image column struct<bytes: binary, path: string> and string columns, and the `huggingface` schema
  metadata that `datasets` writes (its features), so that the hub's own loader reads them as images.
- PathVQA as released: qas/{part}/{part}_qa.pkl (a pickled list of dicts image/question/answer) and
  images/{part}/{stem}.jpg.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

# (qid, image_name, image_organ, answer, answer_type, question_type, question, phrase_type)
VQA_RAD_ROWS = [
    (1, "synpic54610.jpg", "HEAD", "Yes", "CLOSED", "PRES", "Are regions of the brain infarcted?", "freeform"),
    (2, "synpic54610.jpg", "HEAD", "Yes", "CLOSED", "PRES", "Are brain regions infarcted?", "para"),
    (3, "synpic29265.jpg", "CHEST", "Right", "OPEN", "POS", "Which side is the lesion on?", "freeform"),
    (4, "synpic29265.jpg", "CHEST", "No", "CLOSED", "ABN", "Is the heart enlarged?", "test_freeform"),
    (5, "synpic42202.jpg", "ABD", "CT", "OPEN", "MODALITY", "What imaging modality is this?", "freeform"),
    (6, "synpic42202.jpg", "ABD", "Axial", "OPEN", "PLANE", "In what plane is this image?", "test_para"),
    (7, "synpic31757.jpg", "HEAD", "MRI", "OPEN", "MODALITY", "How was this image taken?", "test_freeform"),
    (8, "synpic31757.jpg", "HEAD", "Yes", "CLOSED", "PRES, POS", "Is there a mass in the left hemisphere?", "para"),
]
COLOURS = {"synpic54610.jpg": (200, 40, 40), "synpic29265.jpg": (40, 200, 40), "synpic42202.jpg": (40, 40, 200),
           "synpic31757.jpg": (200, 200, 40)}


def image_bytes(colour: tuple[int, int, int], fmt: str = "JPEG", size: int = 12) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def write_vqa_rad_release(root: Path) -> Path:
    """`{root}/VQA-RAD` as released: the JSON file and the image folder (names with spaces, as published)."""
    folder = root / "VQA-RAD"
    images = folder / "VQA_RAD Image Folder"
    images.mkdir(parents=True)
    for name, colour in COLOURS.items():
        (images / name).write_bytes(image_bytes(colour))
    entries = [{"qid": qid, "image_name": image, "image_organ": organ, "answer": answer, "answer_type": answer_type,
                "question_type": question_type, "question": question, "phrase_type": phrase, "qid_linked_id": "NULL",
                "evaluation": "given", "question_rephrase": "NULL", "question_frame": "NULL"}
               for qid, image, organ, answer, answer_type, question_type, question, phrase in VQA_RAD_ROWS]
    (folder / "VQA_RAD Dataset Public.json").write_text(json.dumps(entries, indent=4), encoding="utf-8")
    return folder


def _hub_schema_metadata(columns: Sequence[str]) -> dict[bytes, bytes]:
    """The `huggingface` schema metadata `datasets` writes into parquet files: the features of each column."""
    features = {name: ({"_type": "Image"} if name == "image" else {"dtype": "string", "_type": "Value"})
                for name in columns}
    return {b"huggingface": json.dumps({"info": {"features": features}}).encode("utf-8")}


def write_hub_parquet(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """One parquet shard with the hub's schema: image struct<bytes, path>, then string columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(rows[0])
    fields = [pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())]))
              if name == "image" else pa.field(name, pa.string()) for name in columns]
    schema = pa.schema(fields, metadata=_hub_schema_metadata(columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
    return path


def hub_rows(entries: Sequence[tuple[str, str, str]], colours: Sequence[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """(question, answer, image path) with the image's bytes, as the hub stores an Image feature."""
    return [{"image": {"bytes": image_bytes(colour), "path": path}, "question": question, "answer": answer}
            for (question, answer, path), colour in zip(entries, colours, strict=True)]


VQA_RAD_HUB_TRAIN = [("are regions of the brain infarcted?", "yes", "synpic54610.jpg"),
                     ("which side is the lesion on?", "right", "synpic29265.jpg"),
                     ("what imaging modality is this?", "ct", "synpic42202.jpg")]
VQA_RAD_HUB_TEST = [("is the heart enlarged?", "no", "synpic29265.jpg"),
                    ("how was this image taken?", "mri", "synpic31757.jpg")]


def write_vqa_rad_hub(root: Path) -> Path:
    """`{root}/VQA-RAD` as the hub publishes it (flaviagiammarino/vqa-rad, its shard names)."""
    folder = root / "VQA-RAD"
    write_hub_parquet(folder / "data" / "train-00000-of-00001-eb8844602202be60.parquet",
                      hub_rows(VQA_RAD_HUB_TRAIN, [COLOURS[p] for _, _, p in VQA_RAD_HUB_TRAIN]))
    write_hub_parquet(folder / "data" / "test-00000-of-00001-e5bc3d208bb4deeb.parquet",
                      hub_rows(VQA_RAD_HUB_TEST, [COLOURS[p] for _, _, p in VQA_RAD_HUB_TEST]))
    return folder


PATHVQA_PARTS = {
    "train": [("train_0001", "where are liver stem cells (oval cells) located?", "in the canals of hering"),
              ("train_0001", "are liver stem cells located in the canals of hering?", "yes"),
              ("train_0002", "is this a lesion?", "no")],
    "val": [("val_0261", "what have lost their nuclei?", "neutrophils")],
    "test": [("test_0003", "does the image show nodular tumor?", "yes"),
             ("test_0004", "what does this image show?", "granulomas")],
}


def write_pathvqa_release(root: Path) -> Path:
    """`{root}/PathVQA` as released: qas/{part}/{part}_qa.pkl and images/{part}/{stem}.jpg."""
    folder = root / "PathVQA"
    for part, rows in PATHVQA_PARTS.items():
        (folder / "qas" / part).mkdir(parents=True)
        (folder / "images" / part).mkdir(parents=True, exist_ok=True)
        for i, (stem, _, _) in enumerate(rows):
            (folder / "images" / part / f"{stem}.jpg").write_bytes(image_bytes((10 * i, 100, 200)))
        entries = [{"image": stem, "question": question, "answer": answer} for stem, question, answer in rows]
        (folder / "qas" / part / f"{part}_qa.pkl").write_bytes(pickle.dumps(entries))
    return folder


def write_pathvqa_hub(root: Path) -> Path:
    """`{root}/PathVQA` as the hub publishes it (flaviagiammarino/path-vqa: train, validation, test shards)."""
    folder = root / "PathVQA"
    for part, shard in (("train", "train"), ("val", "validation"), ("test", "test")):
        rows = PATHVQA_PARTS[part]
        write_hub_parquet(folder / "data" / f"{shard}-00000-of-00001.parquet",
                          hub_rows([(q, a, f"{stem}.jpg") for stem, q, a in rows],
                                   [(10 * i, 100, 200) for i in range(len(rows))]))
    return folder
