"""How long split files take to build, to reuse, and to validate, on a synthetic dataset of MIMIC-like size.

    python bench/bench_splits.py [--questions 100000]

Writes a SLAKE-format dataset with that many questions into a temporary folder and prints, side by side, the
time of each way a stage meets a split file: built from the raw files, reused while up to date, reused after
the raw files were only touched (re-hashed, not rebuilt), and the start-up check of a shift.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root / "SLAKE", args.questions)
        shift = ("modality", "X-Ray")

        def ood_test() -> object:
            return split_records(root, "SLAKE", "test", "ood", *shift)

        rows = [("build (raw files read, categories derived)", timed(ood_test))]
        rows.append(("reuse, up to date", timed(ood_test)))
        for raw in (root / "SLAKE").glob("*.json"):
            os.utime(raw)
        rows.append(("reuse after the raw files were touched", timed(ood_test)))
        rows.append(
            ("start-up check of the shift (cached)", timed(lambda: check_shift(root, "SLAKE", *shift)))
        )
        rows.append(
            (
                "build a second split of the same shift",
                timed(lambda: split_records(root, "SLAKE", "train", "iid", *shift)),
            )
        )
        n_test = len(ood_test())
    print(f"{args.questions} questions, ood test split of {n_test}")
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"{name.ljust(width)}  {seconds * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
