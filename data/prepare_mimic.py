"""Prepares MIMIC-CXR-VQA (docs/method.md#datasets): string answers, answer types and patient demographics.

    python data/prepare_mimic.py [--root $DATASET_ROOT_DIR/MIMIC] [--questions DIR] [--hosp DIR] [--images DIR]

Reads the builder's mimic-cxr-vqa/mimiccxrvqa/dataset/{train,valid,test}.json and MIMIC-IV's hosp/patients.csv
and hosp/admissions.csv, and writes train.json, validate.json and test.json into the MIMIC folder.
See data/README_MIMIC.md for the folder layout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sure_vqa import config
from sure_vqa.data.mimic_prepare import HOSP_DIR, QUESTIONS_DIR, prepare
from sure_vqa.data.readers import mimic


@config.run_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Prepare MIMIC-CXR-VQA for SURE-VQA.")
    parser.add_argument(
        "--root", type=Path, default=None, help="the MIMIC folder (default: $DATASET_ROOT_DIR/MIMIC)"
    )
    parser.add_argument(
        "--questions", type=Path, default=None, help=f"the builder's output (default: <root>/{QUESTIONS_DIR})"
    )
    parser.add_argument(
        "--hosp", type=Path, default=None, help=f"MIMIC-IV's hosp/ folder (default: <root>/{HOSP_DIR})"
    )
    parser.add_argument(
        "--images", type=Path, default=None, help=f"MIMIC-CXR-JPG files/ (default: <root>/{mimic.IMAGE_DIR})"
    )
    args = parser.parse_args(argv)
    config.load_env()
    root = (
        args.root
        or config.require_path(config.env_path("DATASET_ROOT_DIR"), "--root", "DATASET_ROOT_DIR") / "MIMIC"
    )
    root = config.require_path(root, "--root")
    for filename, n in prepare(root, args.questions, args.hosp, args.images).items():
        print(f"{root / filename}: {n} questions")


if __name__ == "__main__":
    main()
