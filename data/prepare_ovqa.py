"""Cleans OVQA in place (docs/method.md#datasets), keeping each original file as <name>_old.json.

    python data/prepare_ovqa.py [root=$DATASET_ROOT_DIR/OVQA]     # the same as: sure-vqa prepare ovqa [root=...]

Keeps every open question and every closed question answered yes/no; of the other closed questions only the three
modality questions stay. Running it again changes nothing. See data/README_OVQA.md.
"""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["prepare", "ovqa", *sys.argv[1:]])
