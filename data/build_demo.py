"""Builds the demo dataset (SLAKE's raw format, from images that ship in Python packages) into OUT_DIR.

    python data/build_demo.py OUT_DIR        # e.g. "$DATASET_ROOT_DIR/demo"

See data/README_demo.md. Exit code 2 when OUT_DIR holds different files of the same names.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# Run as a script from anywhere: the package lives one folder up (the project is not pip-installed).
from sure_vqa.config import run_entry
from sure_vqa.demo.dataset import build_demo, summary


@run_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="the dataset folder to write, e.g. $DATASET_ROOT_DIR/demo")
    args = parser.parse_args()
    start = time.perf_counter()
    out_dir = build_demo(args.out_dir)
    print(summary(out_dir))
    print(f"demo dataset ready in {out_dir} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
