"""Prepares MIMIC-CXR-VQA (docs/method.md#datasets): string answers, answer types and patient demographics.

    python data/prepare_mimic.py [root=$DATASET_ROOT_DIR/MIMIC] [questions=DIR] [hosp=DIR] [images=DIR]
                                                                  # the same as: sure-vqa prepare mimic [...]

Reads the builder's mimic-cxr-vqa/mimiccxrvqa/dataset/{train,valid,test}.json and MIMIC-IV's hosp/patients.csv
and hosp/admissions.csv, and writes train.json, validate.json and test.json into the MIMIC folder.
See data/README_MIMIC.md for the folder layout.
"""

import sys

from sure_vqa.cli import main

if __name__ == "__main__":
    main(["prepare", "mimic", *sys.argv[1:]])
