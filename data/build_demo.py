"""Builds the demo dataset (SLAKE's raw format, from images that ship in Python packages).

    python data/build_demo.py [root=OUT_DIR]      # the same as: sure-vqa prepare demo-data [root=OUT_DIR]

`root` defaults to $DATASET_ROOT_DIR/demo. See data/README_demo.md. Exit code 2 when the folder holds different
files of the same names.
"""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["prepare", "demo-data", *sys.argv[1:]])
