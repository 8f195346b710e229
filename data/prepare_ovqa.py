"""Cleans OVQA in place (docs/method.md#datasets), keeping each original file as <name>_old.json.

    python data/prepare_ovqa.py [--root $DATASET_ROOT_DIR/OVQA]

Keeps every open question and every closed question answered yes/no; of the other closed questions only the three
modality questions stay. Running it again changes nothing. See data/README_OVQA.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sure_vqa import config
from sure_vqa.data.readers import ovqa


@config.run_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Clean the OVQA question files in place, with backups.")
    parser.add_argument(
        "--root", type=Path, default=None, help="the OVQA folder (default: $DATASET_ROOT_DIR/OVQA)"
    )
    args = parser.parse_args(argv)
    config.load_env()
    root = (
        args.root
        or config.require_path(config.env_path("DATASET_ROOT_DIR"), "--root", "DATASET_ROOT_DIR") / "OVQA"
    )
    root = config.require_path(root, "--root")
    for filename, counts in ovqa.clean(root).items():
        print(
            f"{root / filename}: {counts['entries']} questions, kept {counts['kept']}, dropped {counts['dropped']}"
        )


if __name__ == "__main__":
    main()
