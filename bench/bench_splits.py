"""How long split files take to build, to reuse, and to validate, on synthetic datasets of MIMIC-like size.

    python bench/bench_splits.py [--questions 100000] [--images-per-question 0.1]

Writes two datasets with that many questions into a temporary folder, a SLAKE-format JSON one and one laid out as
the Hugging Face hub publishes datasets (parquet shards with the image bytes inside, described by a dataset.yaml),
and prints, side by side, the time of each way a stage meets a split file: built from the raw files (for the
parquet one: its images written out once), reused while up to date, reused after the raw files were only
touched (re-hashed, not rebuilt), built again from the raw files once the images exist, and the start-up check
of a shift; with the process's peak memory (RSS) after each step.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sure_vqa.data.splits import check_shift, split_records

MODALITIES = ("CT", "MRI", "X-Ray")
LOCATIONS = ("Abdomen", "Brain", "Lung", "Chest_heart", "Neck", "Pelvic Cavity")
CONTENT = ("Organ", "Position", "Size", "Abnormality", "Modality", "Plane", "Quantity")


def write_dataset(folder: Path, questions: int) -> None:
    folder.mkdir(parents=True)
    sizes = {"train.json": questions * 7 // 10, "validate.json": questions // 10}
    sizes["test.json"] = questions - sum(sizes.values())
    qid = 0
    for filename, n in sizes.items():
        rows = []
        for _ in range(n):
            image = qid // 10
            closed = qid % 2 == 0
            rows.append(
                {
                    "qid": qid,
                    "img_id": image,
                    "img_name": f"xmlab{image}/source.jpg",
                    "q_lang": "en",
                    "question": f"Does the picture contain organ {qid % 50}?"
                    if closed
                    else f"What is seen {qid % 97}?",
                    "answer": ("Yes" if qid % 3 else "No") if closed else f"organ {qid % 31}",
                    "answer_type": "CLOSED" if closed else "OPEN",
                    "modality": MODALITIES[image % 3],
                    "location": LOCATIONS[image % 6],
                    "content_type": CONTENT[qid % 7],
                    "base_type": "vqa",
                }
            )
            qid += 1
        (folder / filename).write_text(json.dumps(rows))


def write_parquet_dataset(folder: Path, questions: int, images_per_question: float) -> None:
    """The hub's layout: data/{train,test}-0000N-of-0000M.parquet shards of 10,000 rows, an image struct of
    PNG bytes and path, question, answer and a site column; and the dataset.yaml that describes it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    n_images = max(1, int(questions * images_per_question))
    rng = np.random.default_rng(0)
    pngs = []
    for _ in range(n_images):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    image_type = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    schema = pa.schema([pa.field("image", image_type), pa.field("question", pa.string()),
                        pa.field("answer", pa.string()), pa.field("site", pa.string())])
    sizes = {"train": questions * 8 // 10, "test": questions - questions * 8 // 10}
    qid = 0
    for part, n in sizes.items():
        shards = max(1, -(-n // 10_000))
        for shard in range(shards):
            rows = []
            for _ in range(shard * n // shards, (shard + 1) * n // shards):
                image = qid % n_images
                closed = qid % 2 == 0
                rows.append({"image": {"bytes": pngs[image], "path": f"img{image}.png"},
                             "question": f"Is organ {qid % 50} seen?" if closed else f"What is seen {qid % 97}?",
                             "answer": ("yes" if qid % 3 else "no") if closed else f"organ {qid % 31}",
                             "site": ("north", "south", "east")[image % 3]})
                qid += 1
            path = folder / "data" / f"{part}-{shard:05d}-of-{shards:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    (folder / "dataset.yaml").write_text(
        "parts: {train: data/train-*.parquet, test: data/test-*.parquet}\nanswer_type_rule: yes_no\n"
        "shift_fields: [site]\nimage_level_fields: [site]\n", encoding="utf-8")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(root: Path, dataset: str, shift: tuple[str, str], rebuild: Callable[[], None] | None = None
            ) -> list[tuple[str, float, float]]:
    """(step, seconds, peak RSS in MB after it) for each way a stage meets the ood test split."""

    def ood_test() -> object:
        return split_records(root, dataset, "test", "ood", *shift)

    rows = [("build (raw files read, categories derived)", timed(ood_test), peak_rss_mb())]
    rows.append(("reuse, up to date", timed(ood_test), peak_rss_mb()))
    for raw in (root / dataset).rglob("*.json" if dataset == "SLAKE" else "*.parquet"):
        os.utime(raw)
    rows.append(("reuse after the raw files were touched", timed(ood_test), peak_rss_mb()))
    if rebuild is not None:
        rebuild()
        rows.append(("build again, the images already written", timed(ood_test), peak_rss_mb()))
    rows.append(("start-up check of the shift (cached)", timed(lambda: check_shift(root, dataset, *shift)),
                 peak_rss_mb()))
    rows.append(("build a second split of the same shift",
                 timed(lambda: split_records(root, dataset, "train", "iid", *shift)), peak_rss_mb()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--images-per-question", type=float, default=0.1, help="distinct images per question")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root / "SLAKE", args.questions)
        slake = measure(root, "SLAKE", ("modality", "X-Ray"))
        write_parquet_dataset(root / "hub", args.questions, args.images_per_question)

        def forget_split_files() -> None:  # the raw files again, with the images already written
            shutil.rmtree(root / "hub" / "split_files")

        hub = measure(root, "hub", ("site", "south"), rebuild=forget_split_files)
        n_images = len(list((root / "hub" / "images").iterdir()))
        shards = len(list((root / "hub" / "data").iterdir()))
    print(f"{args.questions} questions; SLAKE-format JSON, and hub parquet ({shards} shards, {n_images} images "
          "written once)")
    steps = [name for name, *_ in hub]
    width = max(len(name) for name in steps)
    print(f"{'step'.ljust(width)}  {'JSON':>10}  {'parquet':>10}  {'peak RSS MB':>12}")
    by_step = {name: (s, r) for name, s, r in slake}, {name: (s, r) for name, s, r in hub}
    for name in steps:
        cells = [f"{by[name][0] * 1000:8.0f} ms" if name in by else f"{'-':>11}" for by in by_step]
        print(f"{name.ljust(width)}  {cells[0]:>10}  {cells[1]:>10}  {by_step[1].get(name, (0, 0))[1]:12.0f}")


if __name__ == "__main__":
    main()
